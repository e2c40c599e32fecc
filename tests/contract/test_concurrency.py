"""Capability: core. Create-if-absent holds, and bridges sharing one store never issue an id twice."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.conftest import Store
from tests.contract.conftest import text_page
from tierstore import ArtifactsBridge, ConflictError
from tierstore.backends.base import StorageBackend


async def test_create_if_absent_conflicts(backend: StorageBackend) -> None:
    await backend.put("mem_L3_7", b"first", if_absent=True)
    with pytest.raises(ConflictError):
        await backend.put("mem_L3_7", b"second", if_absent=True)
    assert await backend.get("mem_L3_7") == b"first"


async def test_create_if_absent_is_idempotent_by_content(backend: StorageBackend) -> None:
    await backend.put("mem_L3_8", b"same", if_absent=True)
    await backend.put("mem_L3_8", b"same", if_absent=True)
    assert await backend.get("mem_L3_8") == b"same"


@pytest.mark.atomic_create
async def test_racing_creates_have_one_winner(backend: StorageBackend) -> None:
    async def attempt(i: int) -> bool:
        try:
            await backend.put("mem_L3_1", f"writer {i}".encode(), if_absent=True)
        except ConflictError:
            return False
        return True

    outcomes = await asyncio.gather(*(attempt(i) for i in range(8)))
    assert outcomes.count(True) == 1
    winner = outcomes.index(True)
    assert await backend.get("mem_L3_1") == f"writer {winner}".encode()


@pytest.mark.atomic_create
async def test_two_bridges_on_one_store_never_collide(store: Store) -> None:
    first, second = store.open(), store.open()
    try:
        bridges = [ArtifactsBridge(backend=first), ArtifactsBridge(backend=second)]
        pages = [text_page(f"p{i}") for i in range(40)]
        ids = await asyncio.gather(*(bridges[i % 2].store_page(p) for i, p in enumerate(pages)))
        assert len(set(ids)) == len(pages)
        for artifact, page in zip(ids, pages, strict=True):
            assert await bridges[0].load_page(artifact) == page
    finally:
        await first.aclose()
        await second.aclose()


@pytest.mark.atomic_create
async def test_two_processes_on_one_store_never_collide(store: Store) -> None:
    probe = store.open()
    persistent = probe.persistent
    await probe.aclose()
    if not persistent:
        pytest.skip("an in-memory store lives inside one process by design; nothing to share")
    children = [store.run_child("store", 60) for _ in range(2)]
    results = [json.loads(child.communicate(timeout=300)[0]) for child in children]
    assert all(child.returncode == 0 for child in children)
    issued = results[0] + results[1]
    assert len(issued) == 120
    assert len(set(issued)) == 120
    backend = store.open()
    try:
        bridge = ArtifactsBridge(backend=backend)
        for artifact in issued:
            page = await bridge.load_page(artifact)
            assert page is not None
            assert page.content == f"{page.page_id[1:].split('_')[0]}:{page.page_id.split('_')[1]}"
    finally:
        await backend.aclose()


@pytest.mark.bridge_only
async def test_a_new_bridge_continues_numbering_after_a_restart(store: Store) -> None:
    backend = store.open()
    try:
        first = ArtifactsBridge(backend=backend)
        ids_before = [await first.store_page(text_page(f"a{i}")) for i in range(3)]
        assert ids_before == ["mem_L3_1", "mem_L3_2", "mem_L3_3"]
        await first.delete_page(ids_before[-1])
        again = ArtifactsBridge(backend=backend)
        assert await again.store_page(text_page("b")) == "mem_L3_1001"  # the next block of numbers
    finally:
        await backend.aclose()


@pytest.mark.atomic_create
async def test_identical_pages_stored_at_once_get_ids_of_their_own(store: Store) -> None:
    """Byte-identical pages from two bridges at once: every call its own artifact; deleting one keeps the other."""
    first, second = store.open(), store.open()
    try:
        bridges = [ArtifactsBridge(backend=first), ArtifactsBridge(backend=second)]
        same = text_page("same", "identical content")
        issued = await asyncio.gather(*(bridges[i % 2].store_page(same) for i in range(60)))
        assert len(set(issued)) == 60
        for victim, survivor in zip(issued[::2], issued[1::2], strict=True):
            assert await bridges[0].delete_page(victim)
            assert await bridges[1].load_page(survivor) == same
    finally:
        await first.aclose()
        await second.aclose()


@pytest.mark.atomic_create
async def test_an_id_deleted_by_one_bridge_is_never_issued_to_another(store: Store) -> None:
    first, second = store.open(), store.open()
    try:
        a, b = ArtifactsBridge(backend=first), ArtifactsBridge(backend=second)
        await a.store_page(text_page("warm-up"))  # a holds its block before b deletes anything
        deleted: set[str] = set()
        issued: list[str] = []
        for i in range(30):
            issued.append(await b.store_page(text_page(f"b{i}")))
            if i % 3 == 0:
                assert await b.delete_page(issued[-1])
                deleted.add(issued[-1])
            issued.append(await a.store_page(text_page(f"a{i}")))
        issued.append(await ArtifactsBridge(backend=first).store_page(text_page("late")))
        assert len(deleted) == 10
        assert len(set(issued)) == len(issued)  # deleted ids among them: none was issued a second time
    finally:
        await first.aclose()
        await second.aclose()
