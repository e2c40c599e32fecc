"""``tierstore.concurrency.in_chunks``, on which ``ls -l`` reads a cloud's listing ahead: every item once, in order,
in non-empty chunks, whether the source yields with or without a turn of the event loop between items (a whole
listing page comes at once) and however the consumer paces itself; the source's error after the items before it; at
most ``ahead`` items waiting; closing stops the reading and closes the source."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import pytest

from tierstore.concurrency import in_chunks


async def source(
    count: int, *, page: int, log: list[str] | None = None, fail_at: int | None = None
) -> AsyncGenerator[int, None]:
    """``count`` items, a turn of the loop before each ``page`` of them (0: none at all), failing at ``fail_at``."""
    try:
        for n in range(count):
            if n == fail_at:
                raise ConnectionError(f"failed at {n}")
            if page and n % page == 0:
                await asyncio.sleep(0)
            if log is not None:
                log.append(f"read {n}")
            yield n
    finally:
        if log is not None:
            log.append("source closed")


@pytest.mark.parametrize("count", [0, 1, 5, 1000])
@pytest.mark.parametrize("page", [0, 1, 3, 1000])
@pytest.mark.parametrize("consumer_turns", [0, 1, 7])
def test_every_item_comes_once_in_order_in_non_empty_chunks(count: int, page: int, consumer_turns: int) -> None:
    async def run() -> list[list[int]]:
        got = []
        chunks = in_chunks(source(count, page=page), ahead=50)
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                got.append(chunk)
                for _ in range(consumer_turns):
                    await asyncio.sleep(0)
        return got

    chunks = asyncio.run(asyncio.wait_for(run(), 10))
    assert [n for chunk in chunks for n in chunk] == list(range(count))
    assert all(chunks)


@pytest.mark.parametrize("page", [0, 2])
def test_the_sources_error_comes_after_the_items_before_it(page: int) -> None:
    got: list[int] = []

    async def run() -> None:
        chunks = in_chunks(source(10, page=page, fail_at=7), ahead=50)
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                got.extend(chunk)

    with pytest.raises(ConnectionError, match="failed at 7"):
        asyncio.run(asyncio.wait_for(run(), 10))
    assert got == list(range(7))


def test_at_most_ahead_items_wait_and_closing_stops_the_reading() -> None:
    async def run() -> list[str]:
        log: list[str] = []
        chunks = in_chunks(source(100, page=1, log=log), ahead=4)
        async with contextlib.aclosing(chunks):
            first = await anext(chunks)
            for _ in range(20):  # the reader runs on while the consumer does not ask
                await asyncio.sleep(0)
            assert len(first) + 4 >= sum(1 for line in log if line.startswith("read"))
        return log

    log = asyncio.run(asyncio.wait_for(run(), 10))
    assert log[-1] == "source closed"
    assert sum(1 for line in log if line.startswith("read")) < 100
