"""Damage anywhere in a page stops no ``find_pages`` on any rig (round 6a, break 1): a page's frame flipped in its
prefix, its header or its body, or cut short (one page each, beside sound ones), under its own object metadata,
whether its own metadata sits in its object metadata or only in its frame (read by a ranged GET of the header).
Every query finds every sound page that matches; a damaged one is left out, or found with the very description it
had before the damage (its object metadata, which the damage did not touch, still describes it). The local disk's
own damage (its file header, which makes ``head`` raise) is attacked with every odd entry in
``tests/test_filesystem_foreign_entries.py`` and under ``fsck --repair`` here; a ``head`` that raises is handed to
the caller's ``damaged`` by the catalog, on every rig.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Store
from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality
from tierstore.artifacts.scoped import PrefixedBackend
from tierstore.backends.base import ListEntry, ObjectInfo, StorageBackend
from tierstore.backends.memory import InMemoryBackend
from tierstore.catalog import Catalog
from tierstore.codec.frame import HEADER_START
from tierstore.enums import StorageTier
from tierstore.errors import IntegrityError
from tierstore.maintenance import fsck
from tierstore.maintenance.repair import repair
from tierstore.models import PageMetadata
from tierstore.scopes import scope_prefix


def _flipped(at: Callable[[int], int]) -> Callable[[bytes], bytes]:
    def damage(data: bytes) -> bytes:
        spoilt = bytearray(data)
        spoilt[at(len(data))] ^= 0x10
        return bytes(spoilt)

    return damage


DAMAGES: dict[str, Callable[[bytes], bytes]] = {
    "a bit flipped in its frame's prefix": _flipped(lambda size: 9),
    "a bit flipped in its frame's header": _flipped(lambda size: HEADER_START + 3),
    "a bit flipped in its body": _flipped(lambda size: size - 2),
    "cut short": lambda data: data[: len(data) // 2],
}
VICTIMS: dict[str, dict[str, str]] = {
    "own metadata in its object metadata": {"k": "v"},
    "own metadata only in its frame": {"k": "v", "big": "x" * 3000},
}
QUERIES: list[dict[str, Any]] = [
    {},
    {"modality": "text"},
    {"tier": "L3"},
    {"page_type": "transcript"},
    {"metadata": {"k": "v"}},
    {"metadata": {"k": "v", "big": "x" * 3000}},
]
SOUND = 3


def _page(page_id: str, metadata: dict[str, str]) -> MemoryPage:
    return MemoryPage(page_id=page_id, modality=Modality.TEXT, content=f"content of {page_id}", metadata=metadata)


async def _damaged_place(backend: StorageBackend, bound: bool, victim: str) -> None:
    """Sound pages and one page spoilt by each damage, in one place; every query checked."""
    scope = {"user_id": "u", "session_id": "s"} if bound else {}
    bridge = ArtifactsBridge(backend, **scope)  # type: ignore[arg-type]
    sound = {await bridge.store_page(_page(f"sound {n}", VICTIMS[victim])) for n in range(SOUND)}
    before: dict[str, PageMetadata | None] = {}
    for damage in DAMAGES.values():
        spoilt = await bridge.store_page(_page("victim", VICTIMS[victim]))
        before[spoilt] = await bridge.get_metadata(spoilt)
        key = (scope_prefix("u", "s") if bound else "") + spoilt
        data, info = await backend.get(key), await backend.head(key)
        assert data is not None
        assert info is not None
        await backend.put(key, damage(bytes(data)), metadata=dict(info.metadata), tier=info.tier or StorageTier.L3)
    for query in QUERIES:
        found = {meta.artifact_id or "": meta for meta in await bridge.find_pages(**query)}
        wanted = {aid for aid in sound if "big" in VICTIMS[victim] or "big" not in query.get("metadata", {})}
        assert set(found) - set(before) == wanted, (query, sorted(found))
        for spoilt in sorted(set(found) & set(before)):  # found from what the damage did not touch: exactly as before
            assert _same(found[spoilt], before[spoilt]), (query, spoilt)


def _same(found: PageMetadata, before: PageMetadata | None) -> bool:
    assert before is not None
    return found.model_dump() == before.model_dump()


@pytest.mark.parametrize("victim", VICTIMS)
def test_damage_anywhere_in_a_page_stops_no_find_pages(store: Store, victim: str) -> None:
    backend = store.open()
    for bound in (False, True):
        asyncio.run(_damaged_place(backend, bound, victim))


class _HeadRaises:
    """A store whose ``head`` of one key raises IntegrityError, as the disk store's does for a damaged header."""

    def __init__(self, inner: StorageBackend, damaged: str) -> None:
        self.inner, self.damaged = inner, damaged

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def head(self, key: str) -> ObjectInfo | None:
        if key == self.damaged:
            raise IntegrityError(f"object file {key!r} has a damaged header", key=key)
        return await self.inner.head(key)


def test_a_head_that_raises_is_handed_to_damaged_and_stops_no_description() -> None:
    async def run() -> None:
        backend = InMemoryBackend()
        for n in range(5):
            await backend.put(f"obj_{n}", b"x" * (n + 1), metadata={"n": str(n)})
        entries = [entry async for entry in backend.list("obj_")]
        raising: Any = _HeadRaises(backend, "obj_2")
        told: list[tuple[ListEntry, IntegrityError]] = []
        catalog = Catalog(raising, {}, None)
        answers = [pair async for pair in catalog.describe(entries, damaged=lambda e, why: told.append((e, why)))]
        assert [(entry.key, info is None) for entry, info in answers] == [(f"obj_{n}", n == 2) for n in range(5)]
        assert [entry.key for entry, _ in told] == ["obj_2"]
        with pytest.raises(IntegrityError):  # without ``damaged``, the caller reports it itself
            async for _pair in Catalog(raising, {}, None).describe(entries):
                pass

    asyncio.run(run())


async def _tokened(backend: StorageBackend) -> None:
    """Until every page's listing gives a token (the disk withholds it 2 s after a change): a row needs one."""
    for _ in range(60):
        if all([entry.version is not None async for entry in backend.list("") if "mem_" in entry.key]):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the disk's listing gave no token within 6 s")


def test_fsck_repair_completes_every_catalog_beside_a_page_whose_disk_header_is_damaged(tmp_path: Path) -> None:
    """Round 6a, break 2: ``fsck --repair`` aborted on one damaged page file (the disk's ``head`` raised inside the
    catalog's completion). The repair reports it (``fsck``), writes each catalog with every sound page as a row,
    and a second repair writes none."""
    backend = FileSystemBackend(tmp_path)
    session = scope_prefix("u", "s")

    async def run() -> None:
        victims = []
        for scope in ({}, {"user_id": "u", "session_id": "s"}):
            bridge = ArtifactsBridge(backend, **scope)  # type: ignore[arg-type]
            for n in range(SOUND):
                await bridge.store_page(_page(f"sound {n}", {"k": "v"}))
            victims.append(await bridge.store_page(_page("victim", {"k": "v"})))
        for path in (tmp_path / "objects" / victims[0], tmp_path / "objects" / (session + victims[1])):
            spoilt = bytearray(path.read_bytes())
            spoilt[20] ^= 0xFF  # in the disk's own header: head raises IntegrityError
            path.write_bytes(bytes(spoilt))
        await _tokened(backend)
        report = await repair(ArtifactsBridge(backend), grace=timedelta(0))
        assert len(report.catalogs_written) == 2, report.catalogs_written
        for view, victim in ((backend, victims[0]), (PrefixedBackend(backend, session), victims[1])):
            listing = [entry async for entry in view.list("")]
            catalog = await Catalog.open(view, listing)
            pages = [entry for entry in listing if entry.key.startswith("mem_")]
            assert {entry.key for entry in pages if catalog.known(entry) is None} == {victim}
        checked = await fsck(ArtifactsBridge(backend))
        assert victims[0] in [problem.key for problem in checked.problems]
        assert (await repair(ArtifactsBridge(backend), grace=timedelta(0))).catalogs_written == []

    asyncio.run(run())
