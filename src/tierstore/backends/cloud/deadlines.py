"""Per-call deadlines with one timer per event loop, for the retry loop of :mod:`tierstore.backends.cloud.retry`.

Contract: :func:`watch` starts a deadline for the running task; when it passes before :meth:`Deadline.end`, the
task is cancelled, and ``end`` (however the call ended) takes that cancellation back from the task's count and
says whether it was the deadline's alone. That is ``asyncio.timeout``'s bookkeeping, without its cost per call: a
timer handle pushed on and cancelled from the loop's heap, and an object with two coroutine methods. Here a call
is one entry in a dict; the loop's single timer sleeps until the earliest deadline it knows of, and is only moved
earlier. Deadlines may nest (a multipart upload's requests inside its ``put``): each entry is its own.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Callable
from typing import Final

_EARLY: Final = 0.001
"""A deadline this close (seconds) is due: the loop may run a timer a clock tick before its time."""


class Deadline:
    """One call's deadline: the task it cancels when ``when`` (loop time) comes, unless :meth:`end` comes first."""

    __slots__ = ("_cancelling", "_ended", "_watchdog", "fired", "task", "when")

    def __init__(self, watchdog: _Watchdog, task: asyncio.Task[object], when: float) -> None:
        self._watchdog = watchdog
        self._cancelling = task.cancelling()
        self._ended: bool | None = None
        self.task = task
        self.when = when
        self.fired = False

    def end(self) -> bool:
        """Stop watching (once; later calls repeat the answer). True when the deadline cancelled the task and no
        one else did: a ``CancelledError`` being handled is then a timeout; otherwise it must go on."""
        if self._ended is None:
            self._watchdog.remove(self)
            self._ended = self.fired and self.task.uncancel() <= self._cancelling
        return self._ended


class _Watchdog:
    """The deadlines running on one event loop and the one timer that enforces them."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._running: dict[Deadline, None] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._wakes_at = math.inf

    def add(self, deadline: Deadline) -> None:
        self._running[deadline] = None
        if deadline.when < self._wakes_at:
            self._wake_at(deadline.when)

    def remove(self, deadline: Deadline) -> None:
        self._running.pop(deadline, None)

    def _wake_at(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._wakes_at = when
        self._timer = self.loop.call_at(when, self._expire)

    def _expire(self) -> None:
        self._timer, self._wakes_at = None, math.inf
        due = self.loop.time() + _EARLY
        for deadline in [d for d in self._running if d.when <= due]:
            del self._running[deadline]
            deadline.fired = True
            deadline.task.cancel()
        if self._running:
            self._wake_at(min(d.when for d in self._running))


_WATCHDOGS: Final[weakref.WeakValueDictionary[int, _Watchdog]] = weakref.WeakValueDictionary()
"""Each loop's watchdog by the loop's id, held weakly: only the loop's armed timer and the running deadlines keep
it, so a loop that closed is freed with its watchdog (keyed by the loop itself, the watchdog would keep it)."""


def _nothing() -> _Watchdog | None:
    return None


_last: Callable[[], _Watchdog | None] = _nothing
"""The watchdog of the loop of the last call, held weakly (as :data:`_WATCHDOGS` holds them): most calls come
from the same loop, and a weak dictionary's lookup costs more than the call's own bookkeeping."""


def watch(seconds: float) -> Deadline:
    """Cancel the running task if it is still within this deadline ``seconds`` from now."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task(loop)
    if task is None:
        raise RuntimeError("a deadline needs a running task")
    global _last
    watchdog = _last()
    if watchdog is None or watchdog.loop is not loop:  # another loop than the last call's: look it up
        watchdog = _WATCHDOGS.get(id(loop))
        if watchdog is None or watchdog.loop is not loop:
            watchdog = _WATCHDOGS[id(loop)] = _Watchdog(loop)
        _last = weakref.ref(watchdog)
    deadline = Deadline(watchdog, task, loop.time() + seconds)
    watchdog.add(deadline)
    return deadline
