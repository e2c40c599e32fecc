"""Registration of scopes (:mod:`tierstore.artifacts.scoped`, round 13a): every write that can leave a page or a
checkpoint in a scope looks at the scope's registry records and writes those not there, remembering nothing from an
earlier write. So a bridge opened before an erasure of its scope, or before ``fsck --repair`` deleted its damaged
record, names the scope again with its next write, and ``Store.users()`` / ``sessions()`` list every scope holding
pages once the writes that put them there have returned; a registration never brings back the record of a scope its
erasure emptied; a ``store_page`` looks alongside its listing of the page id's versions (1 HEAD a record more, none
more in line).

The one case not covered, pinned here so that it stays exactly that: a ``store_page`` that looked before an erasure
deleted the records and whose page landed after the erasure's last listing (in flight across the erasure's very end)
leaves a page of the next life unlisted until the scope's next write; ``fsck`` lists it (``unregistered``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.contract.conftest import text_page
from tests.soak import scaled
from tests.wrappers import Counted, Journal, Observed, Paused, Schedule, run_schedule
from tierstore import ArtifactsBridge, InMemoryBackend, Store
from tierstore.backends.base import ListEntry, StorageBackend
from tierstore.ids import kind_of
from tierstore.maintenance import fsck
from tierstore.maintenance.repair import repair
from tierstore.protocol.erasure import ErasureOptions, erase_session, erase_user
from tierstore.scope_records import session_key, user_key
from tierstore.scopes import SCOPED_PREFIX, scope_of, scope_of_record, scope_prefix, user_prefix

SETTLED = timedelta(0)
OWNER = "ckpt_20300101T000000000000_0badcafe"
"""The lease ``store_leased`` names (a running agent's, as chuk's binding keeps one)."""


async def listed_scopes(backend: StorageBackend) -> set[str]:
    """The prefixes of the scopes ``Store.users()`` and ``sessions()`` list."""
    store = Store(backend)
    listed: set[str] = set()
    for user in await store.users():
        listed.add(user_prefix(user.user_id))
        listed.update(scope_prefix(user.user_id, s.session_id) for s in await store.sessions(user.user_id))
    return listed


async def scopes_holding_pages(backend: StorageBackend) -> set[str]:
    """The prefixes of the scopes holding a page or a checkpoint, and of their users."""
    held: set[str] = set()
    async for entry in backend.list(SCOPED_PREFIX):
        scope = scope_of(entry.key)
        if scope and kind_of(entry.key[len(scope) :]) in ("page", "manifest"):
            held.update({scope, scope[: scope.index(".") + 1]})
    return held


async def assert_every_scope_holding_pages_is_listed(backend: StorageBackend) -> None:
    held = await scopes_holding_pages(backend)
    assert held, "the write left no page"
    assert held <= await listed_scopes(backend), "a scope holding pages is not listed by users() / sessions()"
    assert (await fsck(ArtifactsBridge(backend))).unregistered == []


Write = Callable[[ArtifactsBridge], Awaitable[object]]
WRITES: dict[str, Write] = {
    "store_page": lambda b: b.store_page(text_page("next", "the next life")),
    "store_page, user's scope": lambda b: b.store_page(text_page("next", "shared"), scope="user"),
    "checkpoint": lambda b: b.checkpoint([text_page("next", "checkpointed")], name="next"),
    "store_leased": lambda b: b.store_leased(text_page("next", "an agent's"), owner=OWNER),
}


@pytest.mark.parametrize(
    ("erased", "write"),
    [*(("user", write) for write in WRITES), *(("session", w) for w in WRITES if w != "store_page, user's scope")],
)
async def test_a_bridge_opened_before_an_erasure_registers_its_scope_with_its_next_write(
    backend: StorageBackend, erased: str, write: str
) -> None:
    bridge = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    await bridge.store_page(text_page("old", "the old life"), scope="user")
    await bridge.checkpoint([text_page("old", "the old life")], name="old")
    store = Store(backend)
    if erased == "user":
        await store.delete_user("alice", settle=SETTLED)
    else:
        await store.delete_session("alice", "s1", settle=SETTLED)
    assert session_key("alice", "s1") not in {e.key async for e in backend.list("scope_")}
    await WRITES[write](bridge)
    await assert_every_scope_holding_pages_is_listed(backend)


async def test_a_user_bound_bridge_registers_its_user_again_after_the_erasure(backend: StorageBackend) -> None:
    bridge = ArtifactsBridge(backend, user_id="alice")
    await bridge.store_page(text_page("old", "the old life"))
    await Store(backend).delete_user("alice", settle=SETTLED)
    await bridge.store_page(text_page("next", "the next life"))
    await assert_every_scope_holding_pages_is_listed(backend)
    assert [u.user_id for u in await Store(backend).users()] == ["alice"]


@pytest.mark.parametrize("write", ["store_page", "checkpoint"])
@pytest.mark.parametrize("damaged", ["user", "session"])
async def test_a_write_after_repair_deleted_a_damaged_record_registers_the_scope_again(
    backend: StorageBackend, damaged: str, write: str
) -> None:
    bridge = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    await bridge.store_page(text_page("first", "registers the scope"))
    key = user_key("alice") if damaged == "user" else session_key("alice", "s1")
    data = await backend.get(key)
    assert data is not None
    await backend.put(key, bytes(data[:-2]) + bytes([data[-2] ^ 0xFF, data[-1]]))
    assert (await repair(ArtifactsBridge(backend))).records_deleted == [key]
    await WRITES[write](bridge)  # the same bridge: it registered the scope a moment ago
    await assert_every_scope_holding_pages_is_listed(backend)


class Ordered:
    """``inner``, noting when each listing ends and each head begins (in the order they happen)."""

    def __init__(self, inner: StorageBackend) -> None:
        self.inner = inner
        self.events: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def head(self, key: str) -> Any:
        self.events.append(f"head {key}")
        return await self.inner.head(key)

    def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        async def entries() -> AsyncIterator[ListEntry]:
            async for entry in self.inner.list(prefix):
                yield entry
            for _ in range(3):  # a listing's round trip: the heads go out meanwhile, unless they wait for it
                await asyncio.sleep(0)
            self.events.append(f"listed {prefix}")

        return entries()


@pytest.mark.bridge_only
@pytest.mark.parametrize("scope", ["session", "user"])
async def test_a_store_looks_at_its_records_alongside_its_version_listing(backend: StorageBackend, scope: str) -> None:
    """The requests of a ``store_page`` into a registered scope: 1 LIST, 2 PUT (record and page), and a HEAD of each
    of the scope's records (the session's and its user's, or the user's), sent while the LIST is in flight."""
    counted = Counted(backend)
    ordered = Ordered(counted)
    bridge = ArtifactsBridge(ordered, user_id="alice", session_id="s1")
    for n in range(2):  # the first registers the scope and claims a block of ids
        await bridge.store_page(text_page(f"p{n}"), scope=scope)  # type: ignore[arg-type]
    counted.reset()
    ordered.events.clear()
    await bridge.store_page(text_page("p"), scope=scope)  # type: ignore[arg-type]
    records = 2 if scope == "session" else 1
    assert dict(counted.requests) == {"list": 1, "head": records, "put": 2}
    assert ordered.events[-1].startswith("listed "), ordered.events  # both heads began before the listing ended


@pytest.mark.bridge_only
async def test_a_burst_of_writes_after_an_erasure_registers_the_scope_once(backend: StorageBackend) -> None:
    observed = Observed(backend)
    bridge = ArtifactsBridge(observed, user_id="alice", session_id="s1")
    await bridge.store_page(text_page("old"))
    await Store(backend).delete_user("alice", settle=SETTLED)
    observed.puts.clear()
    await asyncio.gather(*(bridge.store_page(text_page(f"p{i}")) for i in range(scaled(8))))
    assert observed.puts["scope"] == 2  # the user's record and the session's, once
    await assert_every_scope_holding_pages_is_listed(backend)


# -- a store_page and an erasure of its scope, interleaved at every storage call --------------------------------


async def _store_across_an_erasure(schedule: Schedule, erased: str) -> tuple[dict[str, int], str]:
    """One schedule of a ``store_page`` by a bridge that stored before, and the erasure of its session or user.
    Checks what must always hold and returns the calls each made and what the schedule came to."""
    memory = InMemoryBackend()
    journal = Journal()
    writer_store, eraser_store = Paused(memory, "writer", journal), Paused(memory, "other", journal)
    writer = ArtifactsBridge(writer_store, user_id="alice", session_id="s1")
    await writer.store_page(text_page("old", "before the erasure"))  # registers, claims a block of ids
    journal.calls.clear()
    writer_store.calls = 0
    records = {user_key("alice"), session_key("alice", "s1")} if erased == "user" else {session_key("alice", "s1")}

    async def no_wait(seconds: float) -> None:
        await asyncio.sleep(0)

    def start(name: str) -> Any:
        if name == "writer":
            return writer.store_page(text_page("new", "the next life, or erased"))
        options = ErasureOptions(settle=timedelta(seconds=10), sleep=no_wait)
        if erased == "user":
            return erase_user(eraser_store, "alice", options)
        return erase_session(eraser_store, "alice", "s1", options)

    actors = {"writer": writer_store, "other": eraser_store}
    tasks = await run_schedule(schedule, actors, start)
    await tasks["other"]
    stored = await tasks["writer"]
    survived = await ArtifactsBridge(memory, user_id="alice", session_id="s1").load_page(stored) is not None
    registry = {entry.key async for entry in memory.list("scope_")}
    if not survived:  # no record of the erased scope is brought back
        assert not registry & records, f"{registry & records} left without a page ({schedule})"
        assert {e.key async for e in memory.list(user_prefix("alice"))} == set(), schedule
        return {name: actor.calls for name, actor in actors.items()}, "erased with the scope"
    last_look = max(
        at
        for at, (who, _name, keys) in enumerate(journal.calls)
        if who == "writer" and any(k.startswith("scope_") for k in keys)
    )
    if records <= registry:
        outcome = "next life, registered"
    else:  # the case not covered, and only it: a record deleted after the store looked, its page after the last listing
        for missing in records - registry:
            deleted = [
                at
                for at, (who, name, keys) in enumerate(journal.calls)
                if who == "other" and name in ("delete", "delete_many") and missing in keys
            ]
            assert deleted, f"{missing} not written again ({schedule})"
            assert deleted[-1] > last_look, f"{missing} not written again ({schedule})"
        unregistered = {scope_of_record(key) for key in records - registry}
        assert set((await fsck(ArtifactsBridge(memory))).unregistered) >= unregistered, schedule
        await ArtifactsBridge(memory, user_id="alice", session_id="s1").store_page(text_page("later", "next write"))
        outcome = "next life, registered by the next write"
    await assert_every_scope_holding_pages_is_listed(memory)
    return {name: actor.calls for name, actor in actors.items()}, outcome


@pytest.mark.parametrize("erased", ["session", "user"])
async def test_a_store_stopped_at_any_call_of_an_erasure_leaves_its_scope_listed_or_erased(erased: str) -> None:
    """The store stopped before each of its calls while the erasure runs to its end, and the erasure stopped before
    each of its calls while the store runs to its end: a page the erasure did not take is in a listed scope (after
    the next write, where the store was in flight across the erasure's end: the case not covered), and a scope the
    erasure emptied has no record left."""
    calls, _ = await _store_across_an_erasure((("writer", None), ("other", None)), erased)
    schedules: list[Schedule] = [(("writer", i), ("other", None), ("writer", None)) for i in range(calls["writer"])]
    schedules += [(("other", j), ("writer", None), ("other", None)) for j in range(calls["other"] + 1)]
    outcomes: dict[str, int] = {}
    for schedule in schedules:
        _, outcome = await _store_across_an_erasure(schedule, erased)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert set(outcomes) == {
        "erased with the scope",
        "next life, registered",
        "next life, registered by the next write",
    }, outcomes
