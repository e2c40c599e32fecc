"""Bounded concurrency: the one helper the bridge, maintenance and the command line run many transfers with.

Contract: at most ``limit`` awaitables run at once, results come back in input order, and nothing is left running
when the call returns or raises. On the first failure (or a cancellation of the caller) the awaitables still
running are cancelled and awaited, and those not yet started are closed, before the error propagates; so a caller
that cleans up after a failure never races work of its own that is still in flight.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal, TypeVar, overload

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
