"""Ids of a bound bridge (issue 28): one store-wide id space (the root's ``alloc_`` records), and an id deleted in a
scope is never issued again into that scope, even once every block record is lost (a store put back from a backup):
the allocator reads the tombs, pages and records of the bridge's own scopes, not only the root's."""

from __future__ import annotations

import pytest

from tierstore import ArtifactsBridge, MemoryPage, Modality, ids
from tierstore.backends.memory import InMemoryBackend
from tierstore.scopes import scope_prefix


def page(name: str) -> MemoryPage:
    return MemoryPage(page_id=name, modality=Modality.TEXT, content=name)


async def lose_block_records(backend: InMemoryBackend) -> None:
    await backend.delete_many([entry.key async for entry in backend.list(ids.ALLOC_PREFIX)])


@pytest.mark.parametrize("deleted_in", ["session", "user"])
@pytest.mark.parametrize("stored_in", ["session", "user"])
async def test_an_id_deleted_in_a_scope_is_never_issued_there_again(deleted_in: str, stored_in: str) -> None:
    backend = InMemoryBackend()
    first = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    doomed = await first.store_page(page("doomed"), scope=deleted_in)  # type: ignore[arg-type]
    assert await first.delete_page(doomed)
    await lose_block_records(backend)
    again = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    issued = await again.store_page(page("new"), scope=stored_in)  # type: ignore[arg-type]
    assert issued != doomed
    assert await again.load_page(doomed) is None


async def test_scopes_share_one_id_space_and_a_start_without_block_records_goes_past_the_scopes_pages() -> None:
    backend = InMemoryBackend()
    alice = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    bob = ArtifactsBridge(backend, user_id="bob")
    root = ArtifactsBridge(backend)
    issued = [await b.store_page(page("p")) for b in (alice, bob, root, alice)]
    assert len(set(issued)) == 4
    assert [e.key async for e in backend.list(ids.ALLOC_PREFIX)] == ["alloc_L3_0", "alloc_L3_1", "alloc_L3_2"]
    await lose_block_records(backend)
    again = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    # its scope's pages are the evidence a start without block records goes by (another scope's id may come again:
    # under this scope's prefix it names no object of the other's)
    assert await again.store_page(page("q")) not in (issued[0], issued[3])
    assert [await again.load_page(kept) is not None for kept in (issued[0], issued[3])] == [True, True]
    assert len([e.key async for e in backend.list(scope_prefix("alice", "s1") + ids.PAGE_PREFIX)]) == 3
