"""The first writes into an empty directory, at once (found by the model: `tierstore migrate` into a new directory
failed with NotAStoreError about one run in three). A writer makes the store's layout, then its mark; another, looking
between the two, saw the first one's pages (a scope's keys, which no earlier version wrote) and no mark yet, and took
the directory for someone else's. ``disk_root.inspect`` looks for the mark once more before it says so."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.soak import scaled
from tierstore import FileSystemBackend
from tierstore.backends import disk_root
from tierstore.errors import NotAStoreError
from tierstore.scopes import scope_prefix


def test_a_mark_made_while_the_directory_is_looked_at_makes_it_a_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "store"
    (root / "objects").mkdir(parents=True)
    (root / "tmp").mkdir()
    (root / "objects" / (scope_prefix("alice", "s1") + "mem_L3_1")).write_bytes(b"a scope's page")
    with pytest.raises(NotAStoreError):
        disk_root.inspect(root)  # no mark, and a key no earlier version wrote: not a store
    earlier = disk_root._made_by_an_earlier_version

    def mark_meanwhile(where: Path, names: list[str]) -> bool:
        (where / disk_root.MARK).write_bytes(b"")  # another writer finishes making the store now
        return earlier(where, names)

    monkeypatch.setattr(disk_root, "_made_by_an_earlier_version", mark_meanwhile)
    assert disk_root.inspect(root) == "marked"


def test_many_first_writes_of_scoped_keys_into_an_empty_directory_all_succeed(tmp_path: Path) -> None:
    async def burst(root: Path) -> None:
        backend = FileSystemBackend(root)
        prefix = scope_prefix("alice", "s1")
        await asyncio.gather(*(backend.put(f"{prefix}mem_L3_{n}", b"page") for n in range(1, 33)))
        assert len([entry async for entry in backend.list(prefix)]) == 32

    for round_ in range(scaled(10)):
        root = tmp_path / f"store{round_}"
        root.mkdir()
        asyncio.run(burst(root))
