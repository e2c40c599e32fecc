"""Bounded concurrency: the helpers the bridge, maintenance and the command line run many transfers with.

Contract: at most ``limit`` awaitables run at once, results come back in input order, and nothing is left running
when the call returns or raises. On the first failure (or a cancellation of the caller) the awaitables still
running are cancelled and awaited, and those not yet started are closed, before the error propagates; so a caller
that cleans up after a failure never races work of its own that is still in flight. :func:`bounded_gather` returns
every result at once; :func:`bounded_in_order` yields each as soon as it and every one before it are done (a
listing printed as it comes: those done together come as one batch), with the same guarantees once the consumer
stops, whichever way it stops. :func:`alongside` awaits one awaitable while another runs, with the same guarantees.
:func:`in_chunks` reads an async iterator ahead in a task of its own and hands
what has come as lists (a listing's pages as they arrive), with the same guarantee: closing it stops the reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, Literal, TypeVar, cast, overload

T = TypeVar("T")

Progress = Callable[[int, int], None]
"""Called with ``(done, total)`` each time one awaitable finishes."""


@overload
async def bounded_gather(
    awaitables: Iterable[Awaitable[T]],
    limit: int,
    *,
    progress: Progress | None = None,
    settle: Literal[False] = False,
) -> list[T]: ...


@overload
async def bounded_gather(
    awaitables: Iterable[Awaitable[T]],
    limit: int,
    *,
    progress: Progress | None = None,
    settle: Literal[True],
) -> list[T | Exception]: ...


async def bounded_gather(
    awaitables: Iterable[Awaitable[T]],
    limit: int,
    *,
    progress: Progress | None = None,
    settle: bool = False,
) -> list[T] | list[T | Exception]:
    """Await everything with at most ``limit`` in flight; results in order.

    With ``settle=True`` an awaitable's ``Exception`` is returned in its place instead of stopping the rest
    (cancellation and other ``BaseException`` still stop everything).
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    todo = list(awaitables)
    results: list[Any] = [None] * len(todo)
    started = 0
    done = 0

    async def worker() -> None:
        nonlocal started, done
        while started < len(todo):
            index = started
            started += 1
            try:
                results[index] = await todo[index]
            except Exception as exc:
                if not settle:
                    raise
                results[index] = exc
            done += 1
            if progress is not None:
                progress(done, len(todo))

    workers = [asyncio.ensure_future(worker()) for _ in range(min(limit, len(todo)))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for awaitable in todo[started:]:
            if inspect.iscoroutine(awaitable):
                awaitable.close()
        raise
    return results


async def alongside(main: Awaitable[T], other: Awaitable[object]) -> T:
    """``main``'s result, ``other`` awaited at the same time: both are done before it returns; on a failure of either
    the other is cancelled and awaited before the error propagates (:func:`bounded_gather`)."""
    results: list[object] = await bounded_gather([main, other], 2)
    return cast("T", results[0])


async def bounded_in_order(
    awaitables: Iterable[Awaitable[T]], limit: int, *, progress: Progress | None = None
) -> AsyncGenerator[list[T], None]:
    """The results of ``awaitables`` in input order, each as soon as it and all before it are done, with at most
    ``limit`` in flight (done results wait, in memory, for those before them): each batch yielded holds every
    result done, in order, after the previous batch's last (so a burst is printed in one write, not one a result).

    The first failure is raised at the consumer's next step, whatever its position. Iterate it inside
    ``contextlib.aclosing``: whether the consumer finishes, fails, breaks off or is cancelled, closing it cancels
    and awaits what is running and closes what never started.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    todo = list(awaitables)
    loop = asyncio.get_running_loop()
    slots: list[asyncio.Future[T]] = [loop.create_future() for _ in todo]
    failure: asyncio.Future[None] = loop.create_future()
    started = done = 0

    async def worker() -> None:
        nonlocal started, done
        while started < len(todo) and not failure.done():
            index = started
            started += 1
            try:
                slots[index].set_result(await todo[index])
            except Exception as exc:  # noqa: BLE001 - handed to the consumer, raised there
                if not failure.done():
                    failure.set_exception(exc)
                return
            except BaseException:  # a cancellation from inside the awaitable, or ours: the consumer stops too
                if not failure.done():
                    failure.cancel()
                raise
            done += 1
            if progress is not None:
                progress(done, len(todo))

    workers = [asyncio.ensure_future(worker()) for _ in range(min(limit, len(todo)))]
    try:
        next_slot = 0
        while next_slot < len(slots):
            if not slots[next_slot].done() and not failure.done():
                await asyncio.wait((slots[next_slot], failure), return_when=asyncio.FIRST_COMPLETED)
            if failure.done():
                failure.result()
            batch = []
            while next_slot < len(slots) and slots[next_slot].done():
                batch.append(slots[next_slot].result())
                next_slot += 1
            yield batch
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for awaitable in todo[started:]:
            if inspect.iscoroutine(awaitable):
                awaitable.close()
        if failure.done() and not failure.cancelled():
            failure.exception()  # retrieved: it was raised above, or the consumer stopped before it could be


async def uncancellable(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` to its end even if the caller is cancelled, then let the cancellation through.

    For work that cannot be stopped once begun (a blocking call in a worker thread): returning early would let
    it finish later, behind the back of whoever handles the cancellation.
    """
    future = asyncio.ensure_future(awaitable)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                continue
            except Exception:  # noqa: BLE001 - the cancellation below is what the caller gets
                break
        if not future.cancelled():
            future.exception()  # retrieved, so it is not reported as never retrieved
        raise


async def in_chunks(source: AsyncIterator[T], *, ahead: int) -> AsyncGenerator[list[T], None]:
    """The items of ``source`` in order, as lists: each holds every item that came since the last (at least one),
    read by a task of its own while the consumer works, at most ``ahead`` items waiting. The source's error is
    raised after the items before it. Iterate it inside ``contextlib.aclosing``: closing it cancels the reading and
    awaits it."""
    if ahead < 1:
        raise ValueError("ahead must be at least 1")
    waiting: list[T] = []
    arrived = asyncio.Event()
    room = asyncio.Event()
    room.set()

    async def read() -> None:
        try:
            async for item in source:
                waiting.append(item)
                arrived.set()
                if len(waiting) >= ahead:
                    room.clear()
                    await room.wait()
        finally:
            close = getattr(source, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
            arrived.set()  # last, with no await after it: the consumer it wakes sees this task done

    reader = asyncio.ensure_future(read())
    try:
        while True:
            if waiting:
                chunk = waiting[:]
                waiting.clear()
                room.set()
                yield chunk
            elif reader.done():
                reader.result()  # the source's error, if it failed
                return
            else:  # nothing waiting and still reading: cleared only now, so no arrival is missed
                arrived.clear()
                await arrived.wait()
    finally:
        reader.cancel()
        await asyncio.wait([reader])
