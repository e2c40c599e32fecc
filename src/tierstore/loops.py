"""What must exist once per event loop: asyncio primitives and SDK clients bound to the loop that made them.

Contract: one bridge (and the backend under it) may be used from any number of event loops in turn (sync code that
calls it through ``asyncio.run`` once per call, a test runner's loop per test, :class:`tierstore.SyncBridge`'s own
loop). :class:`PerLoop` keeps one value per running loop, made on first use there. :class:`LoopClients` keeps one
client per loop, made on first use there, and closes it in that loop when the loop shuts down (``asyncio.run`` and
``asyncio.Runner`` cancel every task left at their end: a keeper task, cancelled so, closes the client) or when
``aclose`` is awaited in that loop. A loop closed by hand without cancelling its tasks drops its client unclosed.
Values are keyed by the loop weakly: a closed loop is freed with what it held. The keeper tasks themselves are held
by their loop's entry in a module-level table, not by the backend, so a backend dropped without ``aclose`` still has
its clients closed when their loop shuts down (asyncio holds tasks only weakly: a keeper held by nothing else would
be collected while pending, its client never closed). Each client made for a loop is logged at DEBUG.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
logger = logging.getLogger(__name__)


class PerLoop(Generic[T]):
    """``make()`` once per running event loop: ``PerLoop(asyncio.Lock).get()`` is a lock of the current loop."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._values: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()
        self._last: tuple[weakref.ref[asyncio.AbstractEventLoop], T] | None = None
        """The loop asked for last and its value: most calls come from the same loop, and a weak dictionary's
        lookup makes a weak reference each time."""

    def get(self) -> T:
        """The running loop's value, made on first use there."""
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0]() is loop:
            return last[1]
        value = self._values.get(loop)
        if value is None:
            value = self._values[loop] = self._make()
        self._last = (weakref.ref(loop), value)
        return value


_KEEPERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, set[asyncio.Task[None]]] = weakref.WeakKeyDictionary()
"""Every keeper task of a loop, held until it ends (see the module's contract)."""


class LoopClients(Generic[T]):
    """A client per running event loop, made by ``open()`` on first use there, closed by ``close(client)`` in that
    loop when it shuts down or on :meth:`aclose`."""

    def __init__(self, open: Callable[[], Awaitable[T]], close: Callable[[T], Awaitable[None]], name: str) -> None:
        self._open = open
        self._close = close
        self._name = name
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[T, asyncio.Task[None]]] = (
            weakref.WeakKeyDictionary()
        )
        self._locks = PerLoop(asyncio.Lock)

    def current(self) -> T | None:
        """The current loop's client, if it has one yet."""
        found = self._clients.get(asyncio.get_running_loop())
        return None if found is None else found[0]

    async def get(self) -> T:
        """The current loop's client, made on first use (one per loop, however many tasks ask at once)."""
        loop = asyncio.get_running_loop()
        found = self._clients.get(loop)
        if found is not None:
            return found[0]
        async with self._locks.get():
            found = self._clients.get(loop)
            if found is not None:
                return found[0]
            client = await self._open()
            logger.debug("made a %s client for event loop %#x", self._name, id(loop))
            keeper = loop.create_task(self._keep(client), name=f"tierstore {self._name} client of this loop")
            held = _KEEPERS.setdefault(loop, set())
            held.add(keeper)
            keeper.add_done_callback(held.discard)
            self._clients[loop] = (client, keeper)
            return client

    async def _keep(self, client: T) -> None:
        """Waits until cancelled (by the loop's shutdown or by ``aclose``), then closes the client."""
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            await self._close(client)

    async def aclose(self) -> None:
        """Close the current loop's client (the next call makes a new one). Other loops' clients close with their
        loops."""
        loop = asyncio.get_running_loop()
        found = self._clients.pop(loop, None)
        if found is None:
            return
        _client, keeper = found
        keeper.cancel()
        await asyncio.wait([keeper])  # a cancellation of this call still reaches it; the keeper's own does not
        if not keeper.cancelled() and keeper.exception() is not None:
            raise keeper.exception()  # type: ignore[misc]
