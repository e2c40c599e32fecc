"""Two erasures at once (issue 28): of one user twice, of a user and one of its sessions, of one session twice, of two
sessions; every storage call of both delayed by a random number of event-loop steps, so they interleave differently
per seed. Each call returns only once everything it was asked to erase is gone (``src/tierstore/protocol/erasure.py``:
an erasure whose tomb another erasure deleted marks its scope again and goes on), and nothing else is touched."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import pytest

from tests.soak import scaled
from tests.wrappers import Jittered
from tierstore import ArtifactsBridge, InMemoryBackend, MemoryPage, Modality
from tierstore.protocol.erasure import ErasureOptions, erase_session, erase_user
from tierstore.scope_records import session_key, user_key
from tierstore.scopes import scope_prefix

SEEDS = scaled(12)
NO_WAIT = timedelta(0)
Erasure = tuple[str, str | None]
"""("user", None) or ("session", its id) of the user alice."""


def _page(content: str) -> MemoryPage:
    return MemoryPage(page_id=content, modality=Modality.TEXT, content=content)


async def _keys(backend: InMemoryBackend, prefix: str) -> list[str]:
    return [entry.key async for entry in backend.list(prefix)]


def _erase(backend: Any, erasure: Erasure) -> Any:
    kind, session = erasure
    if kind == "user":
        return erase_user(backend, "alice", ErasureOptions(settle=NO_WAIT))
    assert session is not None
    return erase_session(backend, "alice", session, ErasureOptions(settle=NO_WAIT))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("user", None), ("session", "s1")),
        (("user", None), ("user", None)),
        (("session", "s1"), ("session", "s1")),
        (("session", "s1"), ("session", "s2")),
    ],
    ids=["user-and-its-session", "user-twice", "session-twice", "two-sessions"],
)
def test_two_erasures_at_once_each_end_with_all_they_were_asked_to_erase_gone(first: Erasure, second: Erasure) -> None:
    async def scenario(seed: int) -> None:
        store = InMemoryBackend()
        s1 = ArtifactsBridge(store, user_id="alice", session_id="s1")
        s2 = ArtifactsBridge(store, user_id="alice", session_id="s2")
        bob = ArtifactsBridge(store, user_id="bob", session_id="s1")
        await s1.store_page(_page("s1's"))
        await s2.store_page(_page("s2's"))
        await s2.checkpoint([_page("s2's checkpoint")], name="c")
        await s1.store_page(_page("alice's shared"), scope="user")
        bobs = await bob.store_page(_page("bob's"))
        rng = random.Random(seed)
        await asyncio.gather(_erase(Jittered(store, rng), first), _erase(Jittered(store, rng), second))

        erased = {first, second}
        if ("user", None) in erased:
            assert await _keys(store, scope_prefix("alice")) == [], f"seed {seed}"
            assert await _keys(store, user_key("alice")) == [], f"seed {seed}: the registry still names alice"
        for _kind, session in erased:
            if session is not None:
                assert await _keys(store, scope_prefix("alice", session)) == [], f"seed {seed}: {session} is left"
                assert await _keys(store, session_key("alice", session)) == [], f"seed {seed}: {session} registered"
        if ("user", None) not in erased:
            assert [p.page_id for p in await _loaded(s2 if ("session", "s2") not in erased else s1)] == [
                "alice's shared",
                *(["s2's", "s2's checkpoint"] if ("session", "s2") not in erased else []),
            ], f"seed {seed}: a scope no erasure named lost a page"
        assert await bob.load_page(bobs) is not None, f"seed {seed}: bob's page is gone"

    for seed in range(SEEDS):
        asyncio.run(asyncio.wait_for(scenario(seed), 30))


async def _loaded(bridge: ArtifactsBridge) -> list[MemoryPage]:
    pages = [await bridge.load_page(key) for key in await bridge.list_pages()]
    return sorted((page for page in pages if page is not None), key=lambda page: page.page_id)
