"""A writer paused past its lease just before its manifest lands (SIGSTOP, a long GC pause, a suspended host, one
very slow request): a ``gc`` on another host meanwhile finds its lease expired and takes its uploads. The manifest
that lands after is shown to name only what is there, or deleted at once and the checkpoint fails: no checkpoint
stays listed that cannot restore."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from tests.contract.conftest import text_page
from tests.wrappers import Observed
from tierstore import ArtifactsBridge, FileSystemBackend
from tierstore.errors import IntegrityError
from tierstore.maintenance import fsck, gc

TTL = timedelta(seconds=1)


def _paused_before_manifest(root: Path) -> tuple[Observed, list[Callable[[], None]]]:
    """A disk store whose whole event loop blocks (as a stopped process is) before a manifest write, for as long as
    the pause put in the returned list runs."""
    pauses: list[Callable[[], None]] = []

    def before(key: str, _metadata: object, _tags: object) -> None:
        if key.startswith("ckpt_") and pauses:
            pauses[0]()

    return Observed(FileSystemBackend(root), check_put=before), pauses


@pytest.mark.parametrize("reused", [False, True], ids=["uploaded", "reused"])
async def test_a_writer_paused_past_its_lease_never_leaves_a_checkpoint_that_cannot_restore(
    reused: bool, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    pages = [text_page(f"p{i}") for i in range(3)]
    if reused:  # artifacts of an earlier checkpoint, since deleted, that the writer proves and reuses
        earlier = ArtifactsBridge(backend=FileSystemBackend(root))
        first = await earlier.checkpoint(pages, "first")
    backend, pauses = _paused_before_manifest(root)
    writer = ArtifactsBridge(backend=backend, lease_ttl=TTL)

    def collect() -> None:
        async def run() -> None:
            other = ArtifactsBridge(backend=FileSystemBackend(root))
            if reused:
                await other.delete_checkpoint(first)
            await gc(other, grace=timedelta(0))

        asyncio.run(run())

    def pause() -> None:
        time.sleep(TTL.total_seconds() * 2)  # the lease expires in the store's time (the disk's: this host's)
        collector = threading.Thread(target=collect)
        collector.start()
        collector.join()

    pauses.append(pause)
    try:
        listed = await writer.checkpoint(pages, "paused")
    except IntegrityError as exc:
        assert "ran past its lease" in str(exc)  # noqa: PT017 - either outcome is allowed, the refusal must say why
        listed = None
    pauses.clear()
    checker = ArtifactsBridge(backend=FileSystemBackend(root))
    for checkpoint in await checker.list_checkpoints():
        assert await checker.restore_checkpoint(checkpoint) == pages
    assert listed is None or listed in await checker.list_checkpoints()
    assert (await fsck(checker)).ok


async def test_a_lease_deleted_under_a_running_writer_never_leaves_a_checkpoint_that_cannot_restore(
    tmp_path: Path,
) -> None:
    """The local disk has no conditional delete: a ``gc`` that judged a lease expired can delete it just as its
    renewal lands, and a sweep then takes the writer's uploads. The writer sees its lease gone after its manifest
    write, shows its artifacts there again, and fails rather than stay listed."""
    root = tmp_path / "store"
    backend, pauses = _paused_before_manifest(root)
    writer = ArtifactsBridge(backend=backend)  # the default ttl: no pause, only the lease gone
    pages = [text_page(f"p{i}") for i in range(3)]

    def collect() -> None:
        async def run() -> None:
            other = FileSystemBackend(root)
            async for entry in other.list("intent_"):
                await other.delete(entry.key)
            await gc(ArtifactsBridge(backend=other), grace=timedelta(0))

        asyncio.run(run())

    def lose_the_lease() -> None:
        collector = threading.Thread(target=collect)
        collector.start()
        collector.join()

    pauses.append(lose_the_lease)
    with pytest.raises(IntegrityError, match="ran past its lease"):
        await writer.checkpoint(pages, "lease-lost")
    pauses.clear()
    checker = ArtifactsBridge(backend=FileSystemBackend(root))
    assert await checker.list_checkpoints() == []
    assert (await fsck(checker)).ok
