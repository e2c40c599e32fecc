"""A version record is deleted only as it was judged (:mod:`tierstore.record_deletes`, issue 28: the latest version
is the last one stored).

Every deleter of version records (``gc``, ``fsck --repair``, ``delete_page``, ``delete_page_id``) is stopped before
each of its calls on the scope's version records (on a cloud, ``delete_page`` before each call on the record but its
listings); there, another deleter removes the record it is judging (as a second ``gc`` run would) and a new store of
the page id takes the number so freed, its record at that very key. Then the deleter goes on. The new store's
version must stay the latest, and listed. And a store stopped between its record and its page keeps its record
through ``gc --grace 0s`` and ``fsck --repair --grace 0s``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import LOCAL_RIGS, Store
from tests.contract.conftest import text_page
from tests.wrappers import Journal, Paused
from tierstore import ArtifactsBridge
from tierstore.backends.base import StorageBackend
from tierstore.backends.memory import InMemoryBackend
from tierstore.clock import ManualClock
from tierstore.maintenance import gc
from tierstore.maintenance.repair import repair
from tierstore.protocol.erasure import LOCAL_SETTLE
from tierstore.scopes import scope_prefix
from tierstore.versions import VERSIONS_PREFIX, version_key

DELETERS = ("gc", "repair", "delete_page", "delete_page_id")
NOW = timedelta(0)


def _on_records(scope: str) -> Callable[[tuple[str, str, tuple[str, ...]]], bool]:
    return lambda call: any(key.startswith(scope + VERSIONS_PREFIX) for key in call[2])


async def _prepare(plain: StorageBackend, deleter: str, user: str) -> str:
    """Two versions of ``p`` in scope ``user`` (the second's page gone, for gc and repair: a crashed store); returns
    the second's artifact."""
    bridge = ArtifactsBridge(plain, user_id=user, session_id="s1")
    await bridge.store_page(text_page("p", "v1"))
    second = await bridge.store_page(text_page("p", "v2"))
    if deleter in ("gc", "repair"):
        await plain.delete(scope_prefix(user, "s1") + second)  # a store that crashed after its record
    return second


async def _one_stop(
    store: Store, plain: StorageBackend, deleter: str, user: str, second: str, stop: int | None, grace: timedelta
) -> tuple[list[int], list[tuple[str, str, tuple[str, ...]]]]:
    """``deleter`` in scope ``user``, stopped before its call ``stop`` while the record it judges goes and a new
    store takes its number; then the new store's version must be the latest. Returns the indices of the deleter's
    calls on version records, and its calls."""
    scope = scope_prefix(user, "s1")
    journal = Journal()
    paused = Paused(store.open(), "other", journal)
    bridge = ArtifactsBridge(plain, user_id=user, session_id="s1")
    deleting = ArtifactsBridge(paused, user_id=user, session_id="s1")
    judged = scope + version_key("p", 2)

    def start() -> Awaitable[Any]:
        if deleter == "gc":
            return gc(deleting, grace=grace, settle=NOW)
        if deleter == "repair":
            return repair(deleting, grace=grace, settle=NOW)
        if deleter == "delete_page":
            return deleting.delete_page(second)
        return deleting.delete_page_id("p")

    paused.stop_at = stop
    task = asyncio.ensure_future(start())
    stopped = asyncio.create_task(paused.stopped.wait())
    await asyncio.wait({stopped, task}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    newest = None
    if not task.done():
        await plain.delete(judged)  # another deleter takes the record judged (a second gc run, say)
        newest = await bridge.store_page(text_page("p", "v3, the newest"))
        # It took the freed number (delete_page_id may have deleted version 1's record too: then that one).
        taken = [scope + version_key("p", n) for n in (1, 2)] if deleter == "delete_page_id" else [judged]
        assert [k for k in taken if await plain.get(k) is not None], "the new store took another number"
        paused.release(None)
    await task
    if newest is not None and await plain.head(scope + newest) is not None:
        latest = await bridge.load_page_id("p")
        where = f"{deleter} stopped before its call {stop}: {journal.calls[stop or 0 :][:1]}"
        assert latest is not None, f"the newest version is lost ({where})"
        assert latest.content == "v3, the newest", f"an older version loads as the latest ({where})"
        assert newest in [v.artifact_id for v in await bridge.list_versions("p")], f"unlisted ({where})"
    await paused.aclose()
    return [at for at, call in enumerate(journal.calls) if _on_records(scope)(call)], journal.calls


async def _every_stop(store: Store, deleter: str) -> None:
    plain = store.open()
    second = await _prepare(plain, deleter, "alone")
    # Alone, to learn its calls: a grace below zero judges the record old whatever the store's clock resolution.
    on_records, calls = await _one_stop(store, plain, deleter, "alone", second, None, timedelta(seconds=-5))
    assert on_records, f"{deleter} never touched a version record"
    judged = version_key("p", 2)
    if store.rig not in LOCAL_RIGS:  # the windows after its judgment of the record taken only (every one locally)
        on_records = [at for at in on_records if calls[at][1] != "list" and calls[at][2][0].endswith(judged)]
    stops = sorted(set(on_records))
    made = [await _prepare(plain, deleter, f"u{n}") for n in range(len(stops))]
    for n, stop in enumerate(stops):
        await _one_stop(store, plain, deleter, f"u{n}", made[n], stop, NOW)
    await plain.aclose()


@pytest.mark.bridge_only  # each store's side, the conditional delete, is proven on every rig below
@pytest.mark.parametrize("deleter", DELETERS)
async def test_a_record_deletion_never_takes_a_later_stores_record_at_a_freed_number(
    store: Store, deleter: str
) -> None:
    await _every_stop(store, deleter)


@pytest.mark.one_data_path  # both data paths' conditional deletes: tests/contract/test_gc_leases.py, every rig
async def test_a_record_deleted_as_judged_on_this_store_is_the_one_read(store: Store) -> None:
    """Every deleter deletes through one call (:func:`tierstore.record_deletes.delete_as_judged`): on each store,
    ``delete_page`` stopped between its read of the record and its conditional delete."""
    await _every_stop(store, "delete_page")


async def _stopped_store(
    store: Store, plain: StorageBackend, user: str, stop: int | None
) -> tuple[Paused, asyncio.Task[str]]:
    """A second store of ``p`` in scope ``user``, stopped before its call ``stop``."""
    journal = Journal()
    writing = Paused(store.open(), "writer", journal)
    await ArtifactsBridge(plain, user_id=user, session_id="s1").store_page(text_page("p", "v1"))
    writer = ArtifactsBridge(writing, user_id=user, session_id="s1")
    writing.stop_at = stop
    task = asyncio.ensure_future(writer.store_page(text_page("p", "v2, in flight")))
    stopped = asyncio.create_task(writing.stopped.wait())
    await asyncio.wait({stopped, task}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    return writing, task


@pytest.mark.bridge_only  # the floor is the bridge's (its length on each store: settle_period)
@pytest.mark.parametrize("deleter", ["gc", "repair"])
async def test_a_store_between_its_record_and_its_page_keeps_its_record_through_grace_0(
    store: Store, deleter: str
) -> None:
    plain = store.open()
    alone, done = await _stopped_store(store, plain, "alone", None)
    await done
    await alone.aclose()
    scope = scope_prefix("alice", "s1")
    puts = [at for at, (_who, name, keys) in enumerate(alone.journal.calls) if name == "put"]
    page_put = next(at for at in puts if any(".mem_" in key for key in alone.journal.calls[at][2]))
    writing, task = await _stopped_store(store, plain, "alice", page_put)
    assert not task.done(), "the store never reached its page's put"
    assert [e.key async for e in plain.list(scope + VERSIONS_PREFIX)], "its record is not written yet"
    collector = ArtifactsBridge(plain, user_id="alice", session_id="s1")
    settle = timedelta(hours=1)  # the longest a store may take here: at least as long as this one is stopped
    if deleter == "gc":
        assert (await gc(collector, grace=NOW, settle=settle)).versions_deleted == []
    else:
        assert (await repair(collector, grace=NOW, settle=settle)).records_deleted == []
    writing.release(None)
    stored = await task
    latest = await collector.load_page_id("p")
    assert latest is not None
    assert latest.content == "v2, in flight"
    assert stored in [v.artifact_id for v in await collector.list_versions("p")]
    await writing.aclose()
    await plain.aclose()


async def test_grace_0_keeps_a_stale_record_for_the_stores_settle_period() -> None:
    clock = ManualClock()
    backend = InMemoryBackend(clock=clock)
    bridge = ArtifactsBridge(backend, user_id="alice", session_id="s1", clock=clock)
    await bridge.store_page(text_page("p", "v1"))
    crashed = await bridge.store_page(text_page("p", "v2"))
    await backend.delete(scope_prefix("alice", "s1") + crashed)  # record, no page: in flight or crashed
    stale = [version_key("p", 2)]
    clock.advance(LOCAL_SETTLE - timedelta(seconds=1))
    assert (await gc(bridge, grace=NOW)).versions_deleted == []
    assert (await repair(bridge, grace=NOW)).records_deleted == []
    clock.advance(timedelta(seconds=2))
    assert (await gc(bridge, grace=NOW)).versions_deleted == stale
