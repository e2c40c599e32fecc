"""Worker threads for blocking calls, answering the event loop directly.

Contract: ``await threads.run(call, *args)`` runs ``call(*args)`` on one of at most ``size`` threads and returns
its result or raises its exception. If the awaiting task is cancelled, a call that has not started never will,
and a call that has started is waited for before the cancellation goes through, so nothing it began lands after
``run`` returned. Threads start as calls need them, up to ``size``; more calls wait their turn. They are daemon
threads: a process that exits while a call runs abandons it, as a kill would. A forked child starts afresh (its
parent's threads are not in it). :func:`shared` gives every user of one size and name the same threads, so that
a new backend starts none of its own.

Why not ``loop.run_in_executor``: each call there builds a ``concurrent.futures.Future`` (a condition and its
locks), wakes a thread through a semaphore, and takes one more turn of the loop to copy the outcome over. For a
small page's write and read, on a busy machine, those locks and turns cost more than the disk; here a call is one
put on a lock-free queue and one ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from tierstore.concurrency import uncancellable

T = TypeVar("T")


class _Call(Generic[T]):
    __slots__ = ("args", "call", "finished", "landed", "loop", "outcome", "unclaimed")

    def __init__(self, loop: asyncio.AbstractEventLoop, call: Callable[..., T], args: tuple[Any, ...]) -> None:
        self.loop = loop
        self.call = call
        self.args = args
        self.outcome: asyncio.Future[T] = loop.create_future()
        self.finished = False
        self.unclaimed = [True]
        """Popped by whoever comes first, the thread that would run the call or the caller giving up on it (one
        ``list.pop`` is atomic, so exactly one of them gets it)."""
        self.landed: asyncio.Future[None] | None = None
        """Created only when the awaiting task was cancelled and waits for the call to end."""

    def settle(self, result: T, error: BaseException | None) -> None:
        """On the loop: hand over the outcome (unless nobody waits for it any more)."""
        self.finished = True
        if not self.outcome.cancelled():
            if error is None:
                self.outcome.set_result(result)
            else:
                self.outcome.set_exception(error)
        if self.landed is not None and not self.landed.done():
            self.landed.set_result(None)


class WorkerThreads:
    """At most ``size`` threads for blocking calls, started as calls need them (see the module docstring)."""

    def __init__(self, size: int, name: str) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self._size = size
        self._name = name
        self._start_afresh()

    def _start_afresh(self) -> None:
        self._queue: queue.SimpleQueue[_Call[Any]] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._unfinished = 0
        self._lock = threading.Lock()

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)`` on a worker thread: its result or its exception; a cancelled caller leaves nothing behind."""
        job = _Call(asyncio.get_running_loop(), call, args)
        with self._lock:
            self._unfinished += 1
            if self._unfinished > len(self._threads) and len(self._threads) < self._size:
                name = f"{self._name}-{len(self._threads)}"
                thread = threading.Thread(target=self._work, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)
            self._queue.put(job)
        try:
            return await job.outcome
        except asyncio.CancelledError:
            if _claim(job):
                self._one_less()
                raise  # not started, and now never will be
            if not job.finished:
                job.landed = job.loop.create_future()
                with contextlib.suppress(asyncio.CancelledError):
                    await uncancellable(job.landed)
            raise

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if not _claim(job):
                continue  # its caller gave up on it before it started
            result: Any = None
            error: BaseException | None = None
            try:
                result = job.call(*job.args)
            except BaseException as exc:  # noqa: BLE001 - raised again by the awaiting task
                error = exc
            try:
                job.loop.call_soon_threadsafe(self._settle, job, result, error)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                self._settle(job, result, error)
            del job, result, error

    def _settle(self, job: _Call[Any], result: Any, error: BaseException | None) -> None:
        """On the loop, unless it is closed (so that a worker thread holding the GIL does not wait for this lock)."""
        self._one_less()
        if not job.loop.is_closed():
            job.settle(result, error)

    def _one_less(self) -> None:
        with self._lock:
            self._unfinished -= 1


_SHARED: dict[tuple[int, str], WorkerThreads] = {}


def _claim(job: _Call[Any]) -> bool:
    try:
        return job.unclaimed.pop()
    except IndexError:
        return False


def shared(size: int, name: str) -> WorkerThreads:
    """The process's one set of ``size`` worker threads called ``name``."""
    threads = _SHARED.get((size, name))
    if threads is None:
        threads = _SHARED.setdefault((size, name), WorkerThreads(size, name))
    return threads


def _after_fork_in_child() -> None:
    for threads in _SHARED.values():
        threads._start_afresh()


os.register_at_fork(after_in_child=_after_fork_in_child)
