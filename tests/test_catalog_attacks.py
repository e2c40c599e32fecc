"""Attacks on the catalog (issue 28): a snapshot damaged at every offset class, truncated, copied to another key or
scope, stale, or forged with rows the listing does not prove; snapshots racing writers, deleters, tier changes and
each other; a store failing under a fold. Each costs requests, never a wrong answer: every answer is compared with
what ``head`` says now. The memory backend stands for every rig here: what the catalog relies on of a listing (a
token that changes with everything ``head`` says) is proven on every rig by ``tests/contract/test_catalog.py``."""

from __future__ import annotations

import asyncio

import pytest

from tests.soak import scaled
from tests.wrappers import Counted, Observed
from tierstore import ArtifactsBridge, MemoryPage, Modality
from tierstore.artifacts.scoped import PrefixedBackend
from tierstore.backends.base import ListEntry, ObjectInfo, StorageBackend
from tierstore.backends.memory import InMemoryBackend
from tierstore.catalog import FOLD_AT, Catalog, snapshot_keys
from tierstore.catalog.snapshot import Row, encode_snapshot, foldable
from tierstore.codec.frame import HEADER_START
from tierstore.enums import StorageTier
from tierstore.errors import BackendUnavailableError

COUNT = max(FOLD_AT, scaled(24))


async def filled(backend: StorageBackend, count: int = COUNT) -> None:
    for n in range(count):
        await backend.put(f"obj_{n}", b"x" * (n + 1), metadata={"n": str(n), "odd": "a=b&c%3D"}, tier=StorageTier.L1)


async def listed(backend: StorageBackend) -> list[ListEntry]:
    return [entry async for entry in backend.list("")]


async def folded(backend: StorageBackend) -> str:
    """A snapshot of every object: the key it was written under."""
    entries = await listed(backend)
    catalog = await Catalog.open(backend, entries)
    async for _pair in catalog.describe([e for e in entries if e.key.startswith("obj_")]):
        pass
    assert await catalog.fold(at_least=0)
    assert catalog.source is not None
    return catalog.source


async def answers_are_heads(backend: StorageBackend) -> tuple[Catalog, int]:
    """Open the catalog, describe every object, compare each answer with a fresh ``head``: the catalog, and the
    heads it asked for."""
    counted = Counted(backend)
    entries = await listed(backend)
    catalog = await Catalog.open(counted, entries)
    counted.reset()
    objects = [entry for entry in entries if entry.key.startswith("obj_")]
    async for entry, info in catalog.describe(objects):
        assert_same(info, await backend.head(entry.key))
    return catalog, counted.requests["head"]


def assert_same(cached: ObjectInfo | None, fresh: ObjectInfo | None) -> None:
    assert (cached is None) == (fresh is None)
    if cached is not None and fresh is not None:
        assert (cached.size, dict(cached.metadata), cached.tier, cached.storage_class, cached.version) == (
            fresh.size,
            dict(fresh.metadata),
            fresh.tier,
            fresh.storage_class,
            fresh.version,
        )


async def test_a_fold_spares_every_head_until_something_changes() -> None:
    backend = InMemoryBackend()
    await filled(backend)
    await folded(backend)
    catalog, heads = await answers_are_heads(backend)
    assert heads == 0
    assert catalog.rows == COUNT


def offsets(size: int) -> list[int]:
    """One offset of each class of a frame: magic, version, kind, flags, lengths, digest, header, body start,
    middle and end."""
    return sorted({0, 4, 5, 6, 8, 12, 16, 24, 40, HEADER_START, HEADER_START + 5, size // 2, size - 2, size - 1})


@pytest.mark.parametrize("damage", ["flip", "truncate"])
async def test_a_damaged_snapshot_at_any_offset_costs_heads_and_never_a_wrong_answer(damage: str) -> None:
    backend = InMemoryBackend()
    await filled(backend)
    key = await folded(backend)
    good = bytes(await backend.get(key) or b"")
    for offset in offsets(len(good)):
        bad = bytearray(good)
        if damage == "flip":
            bad[offset] ^= 0x41
        else:
            del bad[offset:]
        await backend.put(key, bytes(bad))
        catalog, heads = await answers_are_heads(backend)
        assert catalog.source is None, offset
        assert heads == COUNT


async def test_a_damaged_newest_snapshot_falls_back_to_the_one_before() -> None:
    backend = InMemoryBackend()
    await filled(backend)
    older = await folded(backend)
    newer = await folded(backend)
    await backend.put(newer, b"not a frame")
    catalog, heads = await answers_are_heads(backend)
    assert (catalog.source, heads) == (older, 0)


async def test_a_snapshot_copied_to_another_key_or_scope_is_not_read() -> None:
    backend = InMemoryBackend()
    scope = PrefixedBackend(backend, "u-a.")
    await filled(scope)
    key = await folded(scope)
    data = bytes(await backend.get("u-a." + key) or b"")
    other = PrefixedBackend(backend, "u-b.")
    await filled(other)
    await backend.put("u-b." + key, data)  # the same key in another scope
    catalog, heads = await answers_are_heads(other)
    assert (catalog.source, heads) == (None, COUNT)
    moved = key[:-1] + ("0" if key[-1] != "0" else "1")
    await backend.put("u-a." + moved, data)  # another key of the same scope, newer or older
    await backend.delete("u-a." + key)
    catalog, heads = await answers_are_heads(scope)
    assert (catalog.source, heads) == (None, COUNT)


async def test_a_stale_or_forged_snapshot_costs_heads_for_what_the_listing_does_not_prove() -> None:
    backend = InMemoryBackend()
    await filled(backend)
    entries = {entry.key: entry for entry in await listed(backend)}
    forged: dict[str, Row] = {}
    for n, (key, entry) in enumerate(sorted(entries.items())):
        info = await backend.head(key)
        assert info is not None
        lie = ObjectInfo(key, entry.size, {"n": "forged"}, tier=StorageTier.L4, storage_class="L4")
        token = entry.version or ""
        # Every way a row can fail to be proven: another token, size or class (and one proven row, honest).
        variants = [
            Row(token + "x", entry.size, entry.storage_class, lie),
            Row(token, entry.size + 1, entry.storage_class, lie),
            Row(token, entry.size, "L4", lie),
            Row(token, entry.size, entry.storage_class, info),
        ]
        forged[key] = variants[n % 4]
    forged["obj_gone"] = Row("1.L1", 1, "L1", ObjectInfo("obj_gone", 1))
    newest = "cat_20991231T235959000000_00000000"
    await backend.put(newest, encode_snapshot(newest, forged))
    catalog, heads = await answers_are_heads(backend)
    assert catalog.source == newest
    assert heads == COUNT - len([n for n in range(COUNT) if n % 4 == 3])


async def test_changes_racing_a_reader_and_its_fold_are_asked_for_by_the_next_reader() -> None:
    """Writers, deleters and tier changes between the listing and the heads, and between the heads and the fold."""
    backend = InMemoryBackend()
    await filled(backend)
    entries = await listed(backend)
    catalog = await Catalog.open(backend, entries)
    objects = [entry for entry in entries if entry.key.startswith("obj_")]
    await backend.set_tier("obj_0", StorageTier.L2)  # after the listing, before the head
    await backend.put("obj_1", b"other", metadata={"n": "new"})
    await backend.delete("obj_2")
    async for _pair in catalog.describe(objects):
        pass
    await backend.set_tier("obj_3", StorageTier.L0)  # after the head, before the fold
    await backend.put("obj_4", b"x" * 5, metadata={"n": "same size"})
    await backend.delete("obj_5")
    assert await catalog.fold()
    _catalog, heads = await answers_are_heads(backend)
    assert heads == 4  # obj_0, obj_1, obj_3, obj_4: each changed since its row's listing; obj_2, obj_5 gone


async def test_two_readers_folding_at_once_both_leave_a_usable_snapshot() -> None:
    backend = InMemoryBackend()
    await filled(backend)
    entries = await listed(backend)
    catalogs = [await Catalog.open(backend, entries) for _ in range(4)]
    for catalog in catalogs:
        async for _pair in catalog.describe([e for e in entries if e.key.startswith("obj_")]):
            pass
    written = await asyncio.gather(*(catalog.fold() for catalog in catalogs))
    assert all(written)
    assert len(snapshot_keys(await listed(backend))) == 4
    catalog, heads = await answers_are_heads(backend)
    assert catalog.source == snapshot_keys(await listed(backend))[0]
    assert heads == 0


async def test_a_fold_on_a_failing_store_says_false_and_raises_nothing() -> None:
    backend = InMemoryBackend()
    await filled(backend)
    failing = Observed(backend, fail_put=lambda key: True)
    entries = await listed(backend)
    catalog = await Catalog.open(failing, entries)  # type: ignore[arg-type]
    async for _pair in catalog.describe([e for e in entries if e.key.startswith("obj_")]):
        pass
    assert not await catalog.fold()
    assert snapshot_keys(await listed(backend)) == []
    failing.error = BackendUnavailableError
    assert (await answers_are_heads(backend))[1] == COUNT


async def test_a_fold_after_few_heads_writes_nothing() -> None:
    backend = InMemoryBackend()
    await filled(backend, FOLD_AT - 1)
    entries = await listed(backend)
    catalog = await Catalog.open(backend, entries)
    async for _pair in catalog.describe(entries):
        pass
    assert not await catalog.fold()


async def test_find_pages_warm_asks_only_for_its_matches_and_what_changed() -> None:
    """Cold: a head a page, then a fold; warm: one snapshot read and a head per match (each described afresh); after
    more stores: a head for each new page too, and a new fold."""
    counted = Counted(InMemoryBackend())
    bridge = ArtifactsBridge(counted, user_id="alice", session_id="s1")

    async def store(first: int, count: int) -> None:
        for n in range(first, first + count):
            topic = "needle" if n % 10 == 3 else f"t{n}"
            await bridge.store_page(MemoryPage(page_id=f"p{n}", modality=Modality.TEXT, metadata={"topic": topic}))

    async def find() -> int:
        counted.reset()
        return len(await bridge.find_pages(metadata={"topic": "needle"}))

    pages = max(2 * FOLD_AT, scaled(40))
    await store(0, pages)
    assert await find() == pages // 10
    assert (counted.requests["head"], counted.requests["put"]) == (pages, 1)
    assert await find() == pages // 10
    assert (counted.requests["head"], counted.requests["get"], counted.requests["put"]) == (pages // 10, 1, 0)
    await store(pages, FOLD_AT + 4)
    found = await find()
    assert found == len([n for n in range(pages + FOLD_AT + 4) if n % 10 == 3])
    assert (counted.requests["head"], counted.requests["put"]) == (FOLD_AT + 4 + pages // 10, 1)


@pytest.mark.parametrize("listed_class", ["L2", "L4", "STANDARD"])
def test_an_answer_of_another_storage_class_than_listed_is_never_a_row(listed_class: str) -> None:
    """Round 6a, break 3: an object moved between a reader's listing and its ``head`` is answered in its new class;
    that answer paired with the listed token would be proven by the same token coming back (a move undone)."""
    answer = ObjectInfo(key="k", size=3, metadata={}, tier=StorageTier.L3, storage_class="L3", version="1")
    assert foldable(ListEntry("k", 3, None, "t", listed_class), answer) is None
    assert foldable(ListEntry("k", 3, None, "t", "L3"), answer) == Row("t", 3, "L3", answer)
    assert foldable(ListEntry("k", 3, None, "t", None), answer) == Row("t", 3, None, answer)  # no class listed
