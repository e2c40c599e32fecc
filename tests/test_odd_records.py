"""Bookkeeping records that cannot be read (issue 21): every odd entry at every kind of record, then every call that
reads records.

A lease (``intent_``), tomb (``tomb_``), manifest (``ckpt_``) or block record (``alloc_``) may stand in the store
as something that cannot be read: bytes that are no frame, an empty object, another record's frame, and on the
local disk a directory, FIFO, socket or symbolic link at its key. Whatever it is, ``checkpoint`` and
``restore_checkpoint`` work as before (an unreadable tomb only makes a checkpoint upload what it would reuse),
``set_tier`` of an absent id is not found (not in use, whatever the record might name), ``fsck``
names the record by its key, and ``gc`` deletes nothing the record could protect: an unreadable lease protects
everything until it expires (six hours after its last write, in the store's time), then ``gc`` deletes it as any
expired lease; an unreadable tomb goes after the tomb retention as any tomb; an unreadable manifest stops ``gc``'s
sweep (what it names is unknown), as documented in :mod:`tierstore.maintenance.gc`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tierstore import (
    ArtifactsBridge,
    FileSystemBackend,
    InMemoryBackend,
    MemoryPage,
    Modality,
    codec,
    ids,
)
from tierstore.backends.base import StorageBackend
from tierstore.clock import ManualClock
from tierstore.enums import StorageTier
from tierstore.errors import IntegrityError, ObjectNotFoundError
from tierstore.maintenance import fsck, gc

RECORDS: dict[str, Callable[[], str]] = {
    "lease": lambda: ids.INTENT_PREFIX + ids.timestamped(ids.CHECKPOINT_PREFIX, datetime.now(UTC)),
    "tomb": lambda: ids.timestamped(ids.TOMB_PREFIX, datetime.now(UTC)) + "_d",
    "manifest": lambda: ids.timestamped(ids.CHECKPOINT_PREFIX, datetime.now(UTC)),
    "alloc": lambda: ids.alloc_key(StorageTier.L3, 7),
}
ANY_BACKEND = ("garbage bytes", "empty object", "another record's frame")
DISK_ONLY = (
    "empty directory",
    "directory with a file",
    "named pipe",
    "socket",
    "symlink to a record",
    "dangling symlink",
)
CASES = [
    *(
        pytest.param("memory", record, entry, id=f"memory-{record}-{entry}")
        for record in RECORDS
        for entry in ANY_BACKEND
    ),
    *(
        pytest.param("filesystem", record, entry, id=f"filesystem-{record}-{entry}")
        for record in RECORDS
        for entry in ANY_BACKEND + DISK_ONLY
    ),
]
STAYS_FOR_GOOD = ("directory with a file",)
"""Entries ``gc`` never deletes, whatever their age: files in a directory are not tierstore's."""


def _pages() -> list[MemoryPage]:
    return [MemoryPage(page_id=f"p{i}", modality=Modality.TEXT, content=f"content {i}") for i in range(3)]


async def _plant(backend: StorageBackend, root: Path | None, key: str, entry: str, outside: Path) -> None:
    if entry == "garbage bytes":
        await backend.put(key, b"not a frame at all")
    elif entry == "empty object":
        await backend.put(key, b"")
    elif entry == "another record's frame":
        other = RECORDS["tomb"]()
        await backend.put(key, codec.PLAIN.encode_record(other, {"state": "deleted", "artifacts": [], "at": "x"}).data)
    else:
        assert root is not None
        path = root / "objects" / key
        if entry == "empty directory":
            path.mkdir()
        elif entry == "directory with a file":
            path.mkdir()
            (path / "notes.txt").write_text("a user's file")
        elif entry == "named pipe":
            os.mkfifo(path)
        elif entry == "socket":
            short = Path(tempfile.gettempdir()) / f"ts-{secrets.token_hex(4)}.sock"
            with socket.socket(socket.AF_UNIX) as server:
                server.bind(str(short))
            os.rename(short, path)
        elif entry == "symlink to a record":
            target = outside / "record"
            target.write_bytes((root / "objects" / _any_record(root)).read_bytes())
            path.symlink_to(target)
        elif entry == "dangling symlink":
            path.symlink_to(outside / "nothing-here")
        else:
            raise AssertionError(entry)


def _any_record(root: Path) -> str:
    return next(p.name for p in sorted((root / "objects").iterdir()) if p.name.startswith(ids.ALLOC_PREFIX))


def _age(root: Path | None, clock: ManualClock, by: timedelta) -> None:
    """Let ``by`` pass in the store's time: the memory store's clock, or every entry's time on disk set back."""
    if root is None:
        clock.advance(by)
        return
    for path in (root / "objects").iterdir():
        when = path.lstat().st_mtime - by.total_seconds()
        os.utime(path, (when, when), follow_symlinks=False)


@pytest.mark.parametrize(("where", "record", "entry"), CASES)
def test_an_unreadable_record_never_stops_a_checkpoint_and_protects_what_it_could(
    where: str, record: str, entry: str, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    clock = ManualClock()
    memory = InMemoryBackend(clock=clock)
    root = tmp_path / "store" if where == "filesystem" else None

    def backend() -> StorageBackend:
        return memory if root is None else FileSystemBackend(root)

    async def scenario() -> None:
        pages = _pages()
        bridge = ArtifactsBridge(backend=backend())
        first = await bridge.checkpoint(pages, name="first")
        ghost = ids.timestamped(ids.CHECKPOINT_PREFIX, datetime.now(UTC))
        extra = MemoryPage(page_id="orphan", modality=Modality.TEXT, content="written for a checkpoint that died")
        orphan = (await bridge.store_leased(extra, owner=ghost)).artifact_id
        key = RECORDS[record]()
        await _plant(bridge.references("test").backend, root, key, entry, outside)

        fresh = ArtifactsBridge(backend=backend())  # nothing cached
        second = await fresh.checkpoint(pages, name="second")
        assert await fresh.restore_checkpoint(second) == pages
        assert await fresh.restore_checkpoint(first) == pages
        third = await fresh.checkpoint(pages, name="third")  # reuses what the second wrote or reused
        assert await fresh.restore_checkpoint(third) == pages

        with pytest.raises(ObjectNotFoundError):  # what a record cannot protect is absent, not in use
            await fresh.set_tier("mem_L3_999999", StorageTier.L4)

        report = await fsck(fresh)
        assert [p.key for p in report.problems] == [key], report.problems
        assert "" not in report.in_progress

        cleaned = await gc(fresh, grace=timedelta(0))
        assert all(r.checkpoint for r in cleaned.in_progress)
        if record in ("lease", "manifest"):  # what an unreadable manifest names is unknown: nothing is an orphan
            assert cleaned.orphans_deleted == [], f"gc deleted while a {record} could not be read"
            assert orphan in await fresh.list_pages()
        else:
            assert cleaned.orphans_deleted == [orphan]
        listed = [e.key async for e in fresh.references("test").backend.list(key)]
        assert listed == [key], "gc deleted a record it could not read while it was young"
        for checkpoint in (first, second, third):
            assert await fresh.restore_checkpoint(checkpoint) == pages

        # Once old enough, by the documented rule: an expired lease and an old tomb go, whatever they hold.
        _age(root, clock, timedelta(days=8))
        aged = ArtifactsBridge(backend=backend())
        cleaned = await gc(aged, grace=timedelta(0))
        assert cleaned.orphans_deleted == ([] if record == "manifest" else [orphan] if record == "lease" else [])
        gone = record in ("lease", "tomb") and entry not in STAYS_FOR_GOOD
        listed = [e.key async for e in aged.references("test").backend.list(key)]
        assert listed == ([] if gone else [key])
        for checkpoint in (first, second, third):
            assert await aged.restore_checkpoint(checkpoint) == pages

    asyncio.run(asyncio.wait_for(scenario(), 60))


@pytest.mark.parametrize(
    ("where", "entry"), [pytest.param(c.values[0], c.values[2], id=c.id) for c in CASES if c.values[1] == "alloc"]
)
def test_the_newest_block_record_lost_and_an_odd_entry_at_the_first_never_reissue_a_deleted_id(
    where: str, entry: str, tmp_path: Path
) -> None:
    """Issue 21 item 14: the newest ``alloc_`` record lost and something unreadable in place of the one before: a
    new bridge still issues no id of the lost record's block, which a tomb names as deleted."""
    outside = tmp_path / "outside"
    outside.mkdir()
    memory = InMemoryBackend()
    root = tmp_path / "store" if where == "filesystem" else None

    def backend() -> StorageBackend:
        return memory if root is None else FileSystemBackend(root)

    async def scenario() -> None:
        await ArtifactsBridge(backend=backend()).store_page(_pages()[0])
        deleting = ArtifactsBridge(backend=backend())
        deleted = await deleting.store_page(_pages()[1])
        assert await deleting.delete_page(deleted)
        await backend().delete(ids.alloc_key(StorageTier.L3, 0))
        await _plant(backend(), root, ids.alloc_key(StorageTier.L3, 0), entry, outside)
        await backend().delete(ids.alloc_key(StorageTier.L3, 1))
        fresh = ArtifactsBridge(backend=backend())
        issued = await fresh.store_page(_pages()[2])
        assert issued not in (deleted, "mem_L3_1")
        assert await fresh.load_page(deleted) is None

    asyncio.run(scenario())


async def _artifacts(bridge: ArtifactsBridge, checkpoint: str) -> list[str]:
    manifest = await bridge.get_checkpoint_manifest(checkpoint)
    assert manifest is not None
    return [entry.artifact_id for entry in manifest.pages]


@pytest.mark.parametrize(
    ("where", "entry"), [pytest.param(c.values[0], c.values[2], id=c.id) for c in CASES if c.values[1] == "tomb"]
)
def test_an_unreadable_tomb_never_refuses_entries_kept_stored_under_the_callers_lease(
    where: str, entry: str, tmp_path: Path
) -> None:
    """A chuk agent's evicted pages (``checkpoint(stored=...)``) cannot be uploaded anew: an unreadable tomb, which no
    deleter writes, lets them be listed once shown there, while a real deletion beside it still refuses its page; a
    page the checkpoint would reuse is uploaded anew while that tomb stands (it may name the reused artifact)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    memory = InMemoryBackend()
    root = tmp_path / "store" if where == "filesystem" else None

    def backend() -> StorageBackend:
        return memory if root is None else FileSystemBackend(root)

    async def scenario() -> None:
        bridge = ArtifactsBridge(backend=backend())
        owner = ids.timestamped(ids.CHECKPOINT_PREFIX, datetime.now(UTC))
        lease = bridge.references("test").lease(owner, [])
        await lease.start()
        evicted = await bridge.store_leased(_pages()[0], StorageTier.L3, owner=owner)
        deleted = await bridge.store_leased(_pages()[1], StorageTier.L3, owner=owner)
        unchanged = _pages()[2]
        earlier = [await _artifacts(bridge, await bridge.checkpoint([unchanged], "earlier")) for _ in range(2)]
        assert earlier[0] == earlier[1], "an unchanged page was not reused: nothing to attack"
        await _plant(backend(), root, RECORDS["tomb"](), entry, outside)
        checkpoint = await bridge.checkpoint([unchanged], "agent", stored=[evicted])
        uploaded, kept = await _artifacts(bridge, checkpoint)
        assert uploaded != earlier[0][0], "reused an artifact while a tomb that may name it cannot be read"
        assert kept == evicted.artifact_id
        restored = await ArtifactsBridge(backend=backend()).restore_checkpoint(checkpoint)
        assert [p.content for p in restored] == [_pages()[2].content, _pages()[0].content]
        assert await ArtifactsBridge(backend=backend()).delete_page(deleted.artifact_id)
        with pytest.raises(IntegrityError, match="p1"):
            await bridge.checkpoint([_pages()[2]], "refused", stored=[evicted, deleted])
        await lease.release()

    asyncio.run(scenario())
