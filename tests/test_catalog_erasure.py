"""A catalog fold against an erasure (:mod:`tierstore.catalog`, "Folding against an erasure"): a ``find_pages`` and an
erasure of its session (or of its user) interleaved at every step of each, on the in-memory store, whose
:class:`~tierstore.clock.ManualClock` the erasure's settle wait moves. Whatever the order, nothing of the erased scope
is left after the erasure: no snapshot holding the erased pages' ids and metadata.

Each actor stops just *after* one of its storage calls landed (:class:`_PausedAfter`), so an order may have the
reader's answers all in hand, or its snapshot's put landed, while the erasure runs. And a snapshot whose put lands
only after a whole erasure (its process stopped past the settle period, or an eraser that settles for less than the
reader assumes) is deleted by the fold's own fence.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.contract.conftest import text_page
from tests.wrappers import PAUSED_CALLS, Journal, Paused, run_schedule, two_phase
from tierstore.backends.base import ListEntry
from tierstore.backends.memory import InMemoryBackend
from tierstore.bridge import ArtifactsBridge
from tierstore.catalog import FOLD_AT
from tierstore.clock import ManualClock
from tierstore.errors import BackendUnavailableError
from tierstore.protocol.erasure import ErasureOptions, erase_session, erase_user
from tierstore.scopes import scope_prefix, user_prefix

SCOPE = scope_prefix("alice", "s1")


class _PausedAfter(Paused):
    """:class:`~tests.wrappers.Paused`, stopping after each call landed instead of before it is sent."""

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in PAUSED_CALLS:
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = await attribute(*args, **kwargs)
            await self._tick(name, (str(args[0]),) if args else ())
            return result

        return call

    def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        async def entries() -> AsyncIterator[ListEntry]:
            listed = [entry async for entry in self.inner.list(prefix)]
            await self._tick("list", (prefix,))
            for entry in listed:
                yield entry

        return entries()


async def _run(first: str, i: int, j: int, erased: str) -> tuple[int, int, list[str]]:
    """One two-phase order; the calls the reader and the eraser made, and what is left under the session."""
    clock = ManualClock()
    memory = InMemoryBackend(clock=clock)
    writer = ArtifactsBridge(memory, user_id="alice", session_id="s1", clock=clock)
    for n in range(FOLD_AT):
        await writer.store_page(text_page(f"secret{n}", "c", metadata={"ssn": f"{n:04d}"}))
    journal = Journal()
    reader_store = _PausedAfter(memory, "writer", journal)
    eraser_store = _PausedAfter(memory, "other", journal)
    reader = ArtifactsBridge(reader_store, user_id="alice", session_id="s1", clock=clock)

    async def advance(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    options = ErasureOptions(settle=timedelta(seconds=10), clock=clock, sleep=advance)

    def start(name: str) -> Any:
        if name == "writer":
            return reader.find_pages(modality="image")
        if erased == "user":
            return erase_user(eraser_store, "alice", options)
        return erase_session(eraser_store, "alice", "s1", options)

    actors = {"writer": reader_store, "other": eraser_store}
    tasks = await run_schedule(two_phase(first, i, j), actors, start)
    assert await tasks["writer"] == []
    await tasks["other"]
    left = [entry.key async for entry in memory.list(SCOPE)]
    return reader_store.calls, eraser_store.calls, left


@pytest.mark.parametrize("erased", ["session", "user"])
async def test_no_snapshot_of_an_erased_scope_survives_its_erasure(erased: str) -> None:
    clock = ManualClock()
    memory = InMemoryBackend(clock=clock)
    writer = ArtifactsBridge(memory, user_id="alice", session_id="s1", clock=clock)
    for n in range(FOLD_AT):
        await writer.store_page(text_page(f"secret{n}", "c"))
    journal = Journal()
    alone = ArtifactsBridge(Paused(memory, "writer", journal), user_id="alice", session_id="s1", clock=clock)
    assert await alone.find_pages(modality="image") == []
    assert [entry.key async for entry in memory.list(SCOPE + "cat_")], "the reader, run alone, folds"
    reader_calls = sum(1 for who, _, _ in journal.calls if who == "writer")
    _, eraser_calls, _ = await _run("writer", 0, 0, erased)  # the erasure alone (the reader after it)
    orders = [
        (first, i, j)
        for first, calls, others in (("writer", reader_calls, eraser_calls), ("other", eraser_calls, reader_calls))
        for i in range(calls + 1)
        for j in range(others + 1)
    ]
    for first, i, j in orders:
        _, _, left = await _run(first, i, j, erased)
        assert left == [], f"left under the erased session after {two_phase(first, i, j)}: {left}"


class _LateSnapshots(InMemoryBackend):
    """The in-memory store on which the next catalog snapshot's put lands only after ``before_put`` has run; then,
    with ``fault``, the put's answer is lost, or the fold's next listing (its fence's) fails."""

    before_put: Callable[[], Awaitable[object]] | None = None
    fault = "none"
    landed = False

    async def put(self, key: str, data: Any, **options: Any) -> None:
        hook, self.before_put = self.before_put, None
        if hook is None or "cat_" not in key:
            await super().put(key, data, **options)
            return
        await hook()
        await super().put(key, data, **options)
        self.landed = True
        if self.fault == "the put's answer lost":
            raise BackendUnavailableError("injected: the put landed, its answer was lost")

    async def delete(self, key: str) -> bool:
        if self.fault == "a withdrawal fails once" and "cat_" in key:
            self.fault = "none"
            raise BackendUnavailableError("injected: the withdrawal failed")
        return await super().delete(key)

    async def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        if self.landed and self.fault in ("the fence cannot list", "a withdrawal fails once"):
            self.landed = False
            raise BackendUnavailableError("injected: the fence's listing failed")
        async for entry in super().list(prefix):
            yield entry


@pytest.mark.parametrize("fault", ["none", "the put's answer lost", "the fence cannot list", "a withdrawal fails once"])
@pytest.mark.parametrize("erased", ["session", "user"])
async def test_a_snapshot_landing_after_a_whole_erasure_is_deleted_by_its_fold(erased: str, fault: str) -> None:
    memory = _LateSnapshots()
    memory.fault = fault
    writer = ArtifactsBridge(memory, user_id="alice", session_id="s1")
    for n in range(FOLD_AT):
        await writer.store_page(text_page(f"secret{n}", "c", metadata={"ssn": f"{n:04d}"}))
    options = ErasureOptions(settle=timedelta(0))  # the erasure ends before the reader's put lands

    async def erase() -> object:
        return await (
            erase_user(memory, "alice", options) if erased == "user" else erase_session(memory, "alice", "s1", options)
        )

    memory.before_put = erase
    reader = ArtifactsBridge(memory, user_id="alice", session_id="s1")
    assert await reader.find_pages(modality="image") == []
    assert memory.before_put is None, "the reader folded"
    prefix = user_prefix("alice") if erased == "user" else SCOPE
    assert [entry.key async for entry in memory.list(prefix)] == []
