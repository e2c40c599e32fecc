"""An id a session deleted, issued again into its user's shared scope once block records are lost, stays absent for
that session (issue 28; ``src/tierstore/artifacts/lookup.py`` says why and how): whatever call the session makes with
the id it kept, it never reaches the user's new page, while the user's other sessions see that page as theirs."""

from __future__ import annotations

import asyncio

import pytest

from tierstore import ArtifactsBridge, InMemoryBackend, MemoryPage, Modality, StorageTier, Store
from tierstore.backends.base import StorageBackend
from tierstore.errors import ObjectNotFoundError


def _page(page_id: str, content: str) -> MemoryPage:
    return MemoryPage(page_id=page_id, modality=Modality.TEXT, content=content)


def test_an_id_deleted_in_a_session_and_issued_again_to_its_user_stays_absent_for_the_session() -> None:
    async def scenario() -> None:
        backend = InMemoryBackend()
        session = ArtifactsBridge(backend, user_id="alice", session_id="s1")
        kept = await session.store_page(_page("a", "the session's page"))
        gone = await session.store_page(_page("b", "deleted by the session"))
        assert await session.delete_page(gone)
        for key in [entry.key async for entry in backend.list("alloc_")]:
            await backend.delete(key)  # every block record lost: ids start again from the first block
        user = Store(backend).bridge(user_id="alice")
        issued = [await user.store_page(_page(f"u{i}", f"shared {i}")) for i in range(3)]
        assert gone in issued, "the scenario needs the deleted id issued again"

        for bridge in (session, ArtifactsBridge(backend, user_id="alice", session_id="s1")):  # cached, and fresh
            assert await bridge.load_page(gone) is None
            assert await bridge.get_metadata(gone) is None
            assert gone not in await bridge.list_pages()
            assert kept in await bridge.list_pages()
            with pytest.raises(ObjectNotFoundError):
                await bridge.set_tier(gone, StorageTier.L4)
            assert await bridge.delete_page(gone) is False
        other = ArtifactsBridge(backend, user_id="alice", session_id="s2")
        shared = await other.load_page(gone)
        assert shared is not None
        assert shared.page_id in {"u0", "u1", "u2"}  # the user's page, untouched by the session's calls

    asyncio.run(asyncio.wait_for(scenario(), 30))


async def test_the_calls_by_page_id_hide_it_too(backend: StorageBackend) -> None:
    """``load_page_id`` (latest and a given version), ``list_versions`` and ``delete_page_id`` of the session apply
    the same tombs as ``load_page``: the user's page holding the id the session deleted is absent to them, on every
    rig; another session of the user finds it by its page id, and the session's own delete leaves it."""
    session = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    gone = await session.store_page(_page("b", "deleted by the session"))
    assert await session.delete_page(gone)
    for key in [entry.key async for entry in backend.list("alloc_")]:
        await backend.delete(key)
    user = Store(backend).bridge(user_id="alice")
    issued = {await user.store_page(_page(f"u{i}", f"shared {i}"), scope="user"): f"u{i}" for i in range(3)}
    assert gone in issued, "the scenario needs the deleted id issued again"
    page_id = issued[gone]
    for bridge in (session, ArtifactsBridge(backend, user_id="alice", session_id="s1")):
        assert await bridge.load_page(gone) is None
        assert await bridge.load_page_id(page_id) is None
        assert await bridge.load_page_id(page_id, 1) is None
        assert await bridge.load_page_id(page_id, scope="user") is None
        assert await bridge.list_versions(page_id) == []
        assert await bridge.delete_page_id(page_id) == 0
    other = ArtifactsBridge(backend, user_id="alice", session_id="s2")
    shared = await other.load_page_id(page_id)
    assert shared is not None
    assert shared.content == f"shared {page_id[1:]}"
    assert [v.artifact_id for v in await other.list_versions(page_id)] == [gone]
