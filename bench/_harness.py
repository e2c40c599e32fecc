"""A tiny benchmark harness: time async workloads in one process and print ratios against a baseline.

Benchmarks never assert on time; they print. Each ``bench_*.py`` builds a list of :class:`Case` and calls
:func:`run_cases`, whose first case is the baseline the others are compared with.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from tierstore import ArtifactsBridge, MemoryPage, Modality
from tierstore.backends.base import StorageBackend


@dataclass
class Case:
    name: str
    run: Callable[[], Awaitable[object]]
    """One repetition of the workload; setup that should not be timed belongs outside it."""
    ops: int = 1
    """Operations per repetition, to print a rate."""


async def time_case(case: Case, repeat: int) -> float:
    """Median wall time of ``repeat`` runs, after one untimed warm-up run."""
    await case.run()
    samples = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        await case.run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def run_cases(title: str, cases: list[Case], *, repeat: int = 3) -> dict[str, float]:
    timings = {case.name: await time_case(case, repeat) for case in cases}
    baseline = cases[0]
    base = timings[baseline.name]
    print(f"\n## {title}  (median of {repeat}; ratio = time / time of {baseline.name!r})")
    print(f"{'case':<48} {'seconds':>10} {'ops/s':>10} {'ratio':>7}")
    for case in cases:
        seconds = timings[case.name]
        print(f"{case.name:<48} {seconds:>10.4f} {case.ops / seconds:>10.0f} {seconds / base:>7.2f}")
    return timings


async def bounded(count: int, concurrency: int, work: Callable[[int], Awaitable[object]]) -> None:
    """Run ``work(0) .. work(count - 1)`` with at most ``concurrency`` in flight."""
    limit = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with limit:
            await work(index)

    await asyncio.gather(*(one(i) for i in range(count)))


async def put_then_get(
    count: int, concurrency: int, put: Callable[[int], Awaitable[object]], get: Callable[[int], Awaitable[object]]
) -> None:
    await bounded(count, concurrency, put)
    await bounded(count, concurrency, get)


async def backend_round(backend: StorageBackend, payload: bytes, count: int, concurrency: int) -> None:
    """``count`` puts then ``count`` gets of ``payload`` through a tierstore backend."""

    async def put(i: int) -> None:
        await backend.put(f"mem_L3_{i}", payload, metadata={"size": str(len(payload))})

    async def get(i: int) -> None:
        await backend.get(f"mem_L3_{i}")

    await put_then_get(count, concurrency, put, get)


async def bridge_round(bridge: ArtifactsBridge, payload: bytes, count: int, concurrency: int) -> None:
    """``count`` text pages of ``len(payload)`` characters stored, then loaded, through the bridge."""
    content = payload.hex()[: len(payload)]
    artifact_ids: dict[int, str] = {}

    async def store(i: int) -> None:
        page = MemoryPage(page_id=f"page_{i}", modality=Modality.TEXT, content=content)
        artifact_ids[i] = await bridge.store_page(page)

    async def load(i: int) -> None:
        await bridge.load_page(artifact_ids[i])

    await put_then_get(count, concurrency, store, load)


def main(coro: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(coro())
