"""A long-lived bridge that read a manifest once sees what became of it since: deleted by another bridge (restore and
``get_checkpoint_manifest`` find nothing, as a new bridge does) or damaged (``fsck`` and restore report it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract.conftest import text_page
from tierstore import ArtifactsBridge, FileSystemBackend, StorageTier
from tierstore.backends.base import StorageBackend
from tierstore.backends.memory import InMemoryBackend
from tierstore.errors import IntegrityError, ObjectNotFoundError
from tierstore.maintenance import fsck


def _backend(where: str, tmp_path: Path) -> StorageBackend:
    return InMemoryBackend() if where == "memory" else FileSystemBackend(tmp_path / "store")


@pytest.mark.parametrize("where", ["memory", "filesystem"])
async def test_a_manifest_deleted_by_another_bridge_is_gone_for_one_that_read_it(where: str, tmp_path: Path) -> None:
    backend = _backend(where, tmp_path)
    reader = ArtifactsBridge(backend=backend)
    pages = [text_page(f"p{i}") for i in range(3)]
    first = await reader.checkpoint(pages, "first")
    await reader.checkpoint(pages, "second")  # shares the artifacts, so they stay
    assert await reader.restore_checkpoint(first) == pages
    assert await ArtifactsBridge(backend=backend).delete_checkpoint(first)
    assert await reader.get_checkpoint_manifest(first) is None
    with pytest.raises(ObjectNotFoundError):
        await reader.restore_checkpoint(first)


@pytest.mark.parametrize("where", ["memory", "filesystem"])
async def test_a_manifest_damaged_after_a_bridge_read_it_is_reported_to_that_bridge(where: str, tmp_path: Path) -> None:
    backend = _backend(where, tmp_path)
    reader = ArtifactsBridge(backend=backend)
    checkpoint = await reader.checkpoint([text_page("p")], "c")
    assert await reader.get_checkpoint_manifest(checkpoint) is not None
    assert (await fsck(reader)).ok
    data = await backend.get(checkpoint)
    info = await backend.head(checkpoint)
    assert data is not None
    assert info is not None
    damaged = bytearray(data)
    damaged[-3] ^= 0xFF
    await backend.delete(checkpoint)
    await backend.put(checkpoint, bytes(damaged), metadata=dict(info.metadata), tier=StorageTier.L3, if_absent=True)
    report = await fsck(reader)
    assert [p.key for p in report.problems] == [checkpoint]
    with pytest.raises(IntegrityError):
        await reader.restore_checkpoint(checkpoint)
