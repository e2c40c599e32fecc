"""FileSystemBackend: atomic writes, restarts, and nothing leaves the root."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tierstore import ArtifactsBridge, FileSystemBackend, InvalidInputError, MemoryPage, Modality


def _page(i: int) -> MemoryPage:
    return MemoryPage(page_id=f"../../etc/passwd/{i}", modality=Modality.TEXT, content=f"c{i}")


async def test_a_new_process_sees_everything_and_never_reuses_an_id(tmp_path: Path) -> None:
    first = ArtifactsBridge(backend=FileSystemBackend(tmp_path))
    stored = [await first.store_page(_page(i)) for i in range(5)]
    checkpoint = await first.checkpoint([_page(9)], name="c")
    await first.delete_page(stored[-1])
    restarted = ArtifactsBridge(backend=FileSystemBackend(tmp_path))
    assert await restarted.list_pages() == [*stored[:-1], "mem_L3_6"]
    assert len(await restarted.restore_checkpoint(checkpoint)) == 1
    assert await restarted.store_page(_page(10)) == "mem_L3_1001"  # a block of its own


async def test_page_ids_and_metadata_never_become_paths(tmp_path: Path) -> None:
    bridge = ArtifactsBridge(backend=FileSystemBackend(tmp_path / "root"))
    for i in range(3):
        await bridge.store_page(_page(i))
    created = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())  # noqa: ASYNC240
    objects = Path("root/objects")
    assert created == [objects / "alloc_L3_0", objects / "mem_L3_1", objects / "mem_L3_2", objects / "mem_L3_3"]


@pytest.mark.parametrize("key", ["../x", "a/b", "", ".", "..", "a\x00b", "ü"])
async def test_unsafe_keys_are_refused_before_touching_the_disk(tmp_path: Path, key: str) -> None:
    backend = FileSystemBackend(tmp_path)
    with pytest.raises(InvalidInputError):
        await backend.put(key, b"x")
    with pytest.raises(InvalidInputError):
        await backend.get(key)
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240


async def test_create_if_absent_holds_across_threads(tmp_path: Path) -> None:
    backends = [FileSystemBackend(tmp_path) for _ in range(8)]

    async def attempt(backend: FileSystemBackend, i: int) -> bool:
        try:
            await backend.put("mem_L3_1", bytes([i]), if_absent=True)
        except Exception:  # noqa: BLE001 - counting outcomes, the type is checked below
            return False
        return True

    outcomes = await asyncio.gather(*(attempt(b, i) for i, b in enumerate(backends)))
    assert outcomes.count(True) == 1
    assert await backends[0].get("mem_L3_1") == bytes([outcomes.index(True)])


async def test_a_crash_before_rename_leaves_no_object(tmp_path: Path) -> None:
    backend = FileSystemBackend(tmp_path)
    await backend.put("mem_L3_1", b"whole")
    (tmp_path / "tmp" / "put-crashed").write_bytes(b"half")  # what a crash mid-write leaves
    assert [e.key async for e in backend.list("")] == ["mem_L3_1"]
    assert await backend.get("mem_L3_1") == b"whole"


async def test_writes_are_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    await FileSystemBackend(tmp_path).put("mem_L3_1", b"x")
    assert len(synced) == 2  # the file, then its directory
