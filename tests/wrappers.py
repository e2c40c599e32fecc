"""Backends wrapped to observe or fail calls, so tests can interrupt the bridge at exact points.

They wrap a real backend of the rig under test; every call still reaches it. :class:`Paused` stops an actor (a
checkpoint, a deletion, an erasure) before a chosen storage call and :func:`run_schedule` drives two of them through
a :data:`Schedule` of such stops, writing every call to a :class:`Journal`; :func:`every_schedule` lists the two- and
three-phase schedules of two actors; :class:`Jittered` delays each call by a random number of event-loop steps;
:class:`HeldVersionPuts` holds a put of a version record in flight.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tierstore import ids
from tierstore.backends.base import Buffer, ListEntry, StorageBackend
from tierstore.enums import StorageTier
from tierstore.errors import BackendUnavailableError, TierstoreError
from tierstore.scopes import scope_of


class Observed:
    """Delegates every call to ``inner``; counts puts by key prefix, can fail chosen puts, and can check each
    put's arguments (``check_put(key, metadata, tags)``) before it goes out."""

    def __init__(
        self,
        inner: StorageBackend,
        fail_put: Callable[[str], bool] = lambda key: False,
        check_put: Callable[[str, Mapping[str, str] | None, Mapping[str, str] | None], object] | None = None,
        error: type[TierstoreError] = BackendUnavailableError,
    ) -> None:
        self.inner = inner
        self.fail_put = fail_put
        self.error = error
        self.check_put = check_put
        self.puts: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def put(
        self,
        key: str,
        data: Buffer,
        *,
        metadata: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        tier: StorageTier = StorageTier.L3,
        if_absent: bool = False,
    ) -> None:
        if self.check_put is not None:
            self.check_put(key, metadata, tags)
        if self.fail_put(key):
            raise self.error(f"injected failure writing {key}")
        self.puts[key.split("_", 1)[0]] += 1
        await self.inner.put(key, data, metadata=metadata, tags=tags, tier=tier, if_absent=if_absent)


class MoveAt:
    """Delegates to ``inner``; before the ``at``-th call of the checkpoint (the lease's renewals aside) it awaits
    ``move()`` to completion."""

    def __init__(self, inner: StorageBackend, at: int, move: Callable[[], Awaitable[str]]) -> None:
        self.inner = inner
        self.at = at
        self.move = move
        self.calls = 0
        self.outcome: str | None = None

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name in ("put", "get", "get_range", "head", "delete", "delete_many", "set_tier", "restore"):

            async def counted(*args: Any, **kwargs: Any) -> Any:
                await self._tick()
                return await attribute(*args, **kwargs)

            return counted
        return attribute

    def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        async def entries() -> AsyncIterator[ListEntry]:
            await self._tick()
            async for entry in self.inner.list(prefix):
                yield entry

        return entries()

    async def _tick(self) -> None:
        task = asyncio.current_task()
        if task is not None and task.get_name().startswith("tierstore-lease"):
            return
        self.calls += 1
        if self.calls == self.at:
            self.outcome = await self.move()


class Counted:
    """Delegates every call to ``inner`` and counts the requests it stands for, by call: one per call, and for a
    listing one per 1,000 keys listed (every cloud's page size, at most), at least one."""

    REQUESTS = ("put", "get", "get_range", "head", "delete", "delete_many", "set_tier", "restore")

    def __init__(self, inner: StorageBackend) -> None:
        self.inner = inner
        self.requests: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name in self.REQUESTS:

            async def counted(*args: Any, **kwargs: Any) -> Any:
                self.requests[name] += 1
                return await attribute(*args, **kwargs)

            return counted
        return attribute

    def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        async def entries() -> AsyncIterator[ListEntry]:
            listed = 0
            self.requests["list"] += 1
            async for entry in self.inner.list(prefix):
                listed += 1
                if listed % 1000 == 1 and listed > 1:
                    self.requests["list"] += 1
                yield entry

        return entries()

    def total(self) -> int:
        """Requests counted since the last :meth:`reset`."""
        return sum(self.requests.values())

    def reset(self) -> None:
        self.requests.clear()


PAUSED_CALLS = (
    "put",
    "get",
    "get_range",
    "head",
    "delete",
    "delete_many",
    "delete_if_version",
    "delete_if_judged",
    "set_tier",
    "restore",
)
"""The storage calls :class:`Paused` counts, stops before and journals (and ``list``)."""


@dataclass
class Journal:
    """Every storage call both actors made, in the order they were made: ``(actor, method, keys)``."""

    calls: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)

    def first_prefixed(self, actor: str, method: str, prefix: str) -> int | None:
        """Where ``actor`` first called ``method`` on a key starting ``prefix`` (None: never)."""
        found = self._prefixed(actor, method, prefix)
        return found[0] if found else None

    def last_prefixed(self, actor: str, method: str, prefix: str) -> int:
        """Where ``actor`` last called ``method`` on a key starting ``prefix`` (-1: never)."""
        found = self._prefixed(actor, method, prefix)
        return found[-1] if found else -1

    def _prefixed(self, actor: str, method: str, prefix: str) -> list[int]:
        return [
            at
            for at, (who, name, keys) in enumerate(self.calls)
            if who == actor and name == method and any(k.startswith(prefix) for k in keys)
        ]


class Paused:
    """Delegates to ``inner``; stops before its ``stop_at``-th storage call (counting every call but the lease
    keeper's timed renewals) until :meth:`release` names the next stop, and writes each call to the journal."""

    def __init__(self, inner: StorageBackend, actor: str, journal: Journal) -> None:
        self.inner = inner
        self.actor = actor
        self.journal = journal
        self.calls = 0
        self.stop_at: int | None = None
        self.stopped = asyncio.Event()
        self._go = asyncio.Event()

    def release(self, stop_at: int | None) -> None:
        """Go on, to stop again before call ``stop_at`` (None: to the end)."""
        self.stop_at = stop_at
        self.stopped.clear()
        self._go.set()
        self._go.clear()  # the waiter is woken already; the next stop waits again

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in PAUSED_CALLS:
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            keys = args[0] if args and isinstance(args[0], list) else [args[0]] if args else []
            await self._tick(name, tuple(keys))
            return await attribute(*args, **kwargs)

        return call

    def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        async def entries() -> AsyncIterator[ListEntry]:
            await self._tick("list", (prefix,))
            async for entry in self.inner.list(prefix):
                yield entry

        return entries()

    async def _tick(self, name: str, keys: tuple[str, ...]) -> None:
        task = asyncio.current_task()
        if task is not None and task.get_name().startswith("tierstore-lease"):
            return
        while self.stop_at is not None and self.calls >= self.stop_at:
            self.stopped.set()
            await self._go.wait()
        self.calls += 1
        self.journal.calls.append((self.actor, name, keys))


Schedule = tuple[tuple[str, int | None], ...]
"""Which of two actors (``writer`` and ``other``) goes on next and before which of its calls it stops again (None:
to its end)."""


def two_phase(first: str, i: int, j: int) -> Schedule:
    """``first`` makes ``i`` calls, the other ``j``, then ``first`` ends, then the other."""
    second = "other" if first == "writer" else "writer"
    return ((first, i), (second, j), (first, None), (second, None))


def three_phase(first: str, i: int, j: int, k: int) -> Schedule:
    """``first`` makes ``i`` calls, the other ``j``, ``first`` goes on to ``k``, the other ends, then ``first``."""
    second = "other" if first == "writer" else "writer"
    return ((first, i), (second, j), (first, k), (second, None), (first, None))


def every_schedule(calls: Mapping[str, int]) -> list[Schedule]:
    """Every two-phase schedule of ``writer`` and ``other``, each followed by its three-phase ones (one actor stopped
    inside while the other ends), given how many calls each makes when run alone."""
    schedules: list[Schedule] = []
    for first in ("writer", "other"):
        second = "other" if first == "writer" else "writer"
        for i in range(calls[first] + 1):
            for j in range(calls[second] + 1):
                schedules.append(two_phase(first, i, j))
                schedules.extend(three_phase(first, i, j, k) for k in range(i + 1, calls[first] + 1))
    return schedules


async def run_schedule(
    schedule: Schedule, actors: Mapping[str, Paused], start: Callable[[str], Awaitable[Any]]
) -> dict[str, asyncio.Task[Any]]:
    """Drive the actors through ``schedule``: each named actor is started (``start(name)``) or released, and awaited
    until it stops or ends. Returns each actor's task, done unless a later step of the schedule was to end it."""
    tasks: dict[str, asyncio.Task[Any]] = {}
    for name, stop in schedule:
        if name in tasks:
            actors[name].release(stop)
        else:
            actors[name].stop_at = stop
            tasks[name] = asyncio.ensure_future(start(name))
        stopped = asyncio.create_task(actors[name].stopped.wait())
        await asyncio.wait({stopped, tasks[name]}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
    return tasks


class Jittered:
    """Delegates to ``inner``; each call (a listing too) first waits a random number (0-3) of event-loop steps
    drawn from ``rng``, so concurrent actors interleave differently per seed."""

    def __init__(self, inner: StorageBackend, rng: random.Random) -> None:
        self.inner = inner
        self.rng = rng

    async def _jitter(self) -> None:
        for _ in range(self.rng.randrange(4)):
            await asyncio.sleep(0)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name == "list":

            async def listing(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                await self._jitter()
                async for entry in attribute(*args, **kwargs):
                    yield entry

            return listing
        if not asyncio.iscoroutinefunction(attribute):
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            await self._jitter()
            return await attribute(*args, **kwargs)

        return call


class HeldVersionPuts:
    """``inner``, whose process stops inside each put of a version record (any scope's) until ``go`` is set;
    ``putting`` is set once one is held."""

    def __init__(self, inner: StorageBackend) -> None:
        self.inner, self.putting, self.go = inner, asyncio.Event(), asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def put(self, key: str, data: Any, **kwargs: Any) -> None:
        if ids.is_version_record_key(key[len(scope_of(key)) :]):
            self.putting.set()
            await self.go.wait()
        await self.inner.put(key, data, **kwargs)
