"""The benchmark harness: contenders timed side by side in one process, so that their ratios mean something.

Benchmarks never assert on time; they print, and write what they printed to ``.bench/<bench>.json``. Every
comparison (:func:`compare`):

* runs each contender once untimed (warm-up), then ``TIERSTORE_BENCH_ROUNDS`` rounds (default 5, at least 3);
* interleaves the contenders inside a round and rotates their order from round to round, so a machine that gets
  busier or quieter during the run weighs on all of them alike;
* measures wall time (or this process's CPU time, for client-side cost), and prints per contender the median and
  the min-max of its times and of its ratio to the baseline (the first contender) within the same round.

The header of every run states the date, the machine and its load average, since ratios move with load.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from tierstore import ArtifactsBridge, MemoryPage, Modality
from tierstore.backends.base import StorageBackend
from tierstore.maintenance import fsck, gc as collect

ROUNDS = max(3, int(os.environ.get("TIERSTORE_BENCH_ROUNDS", "5")))
OUT = Path(os.environ.get("TIERSTORE_BENCH_OUT", Path(__file__).resolve().parent.parent / ".bench"))

Measure = Literal["wall", "cpu"]


@dataclass
class Case:
    name: str
    run: Callable[[], Awaitable[object]]
    """One repetition of the workload."""
    ops: int = 1
    """Operations per repetition, for a rate and a per-operation figure."""
    setup: Callable[[], Awaitable[object]] | None = None
    """Untimed work before each repetition (e.g. a fresh store)."""


@dataclass
class Result:
    name: str
    seconds: list[float]
    ratios: list[float]
    ops: int

    def row(self) -> dict[str, Any]:
        return {
            "case": self.name,
            "median_s": statistics.median(self.seconds),
            "min_s": min(self.seconds),
            "max_s": max(self.seconds),
            "per_op_us": statistics.median(self.seconds) / self.ops * 1e6,
            "ratio_median": statistics.median(self.ratios),
            "ratio_min": min(self.ratios),
            "ratio_max": max(self.ratios),
        }


@dataclass
class Report:
    """Everything one benchmark module printed, written to ``.bench/<name>.json`` at the end."""

    name: str
    machine: dict[str, Any] = field(default_factory=dict)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    figures: list[dict[str, Any]] = field(default_factory=list)


_report: Report | None = None


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "load_average_1m_5m_15m": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "rounds": ROUNDS,
    }


async def _measure(case: Case, measure: Measure) -> float:
    if case.setup is not None:
        await case.setup()
    gc.collect()
    clock = time.process_time if measure == "cpu" else time.perf_counter
    started = clock()
    await case.run()
    return clock() - started


async def compare(
    title: str, cases: Sequence[Case], *, measure: Measure = "wall", rounds: int = ROUNDS
) -> list[Result]:
    """Time ``cases`` interleaved and rotated over ``rounds``; print and record medians and min-max."""
    for case in cases:
        await _measure(case, measure)  # warm-up
    seconds: dict[str, list[float]] = {case.name: [] for case in cases}
    ratios: dict[str, list[float]] = {case.name: [] for case in cases}
    for round_ in range(rounds):
        order = [cases[(i + round_) % len(cases)] for i in range(len(cases))]
        timed = {case.name: await _measure(case, measure) for case in order}
        for case in cases:
            seconds[case.name].append(timed[case.name])
            ratios[case.name].append(timed[case.name] / timed[cases[0].name])
    results = [Result(case.name, seconds[case.name], ratios[case.name], case.ops) for case in cases]
    what = "CPU seconds of this process" if measure == "cpu" else "seconds"
    print(f"\n## {title}\n({what}; {rounds} rounds, order rotated; ratio to {cases[0].name!r} within each round)")
    print(f"{'case':<54} {'median':>9} {'min-max':>17} {'per op':>10} {'ratio':>6} {'min-max':>11}")
    for result in results:
        row = result.row()
        spread = f"{row['min_s']:.3f}-{row['max_s']:.3f}"
        ratio_spread = f"{row['ratio_min']:.2f}-{row['ratio_max']:.2f}"
        per_op = f"{row['per_op_us']:.0f} µs"
        print(
            f"{result.name:<54} {row['median_s']:>9.3f} {spread:>17} {per_op:>10} "
            f"{row['ratio_median']:>6.2f} {ratio_spread:>11}"
        )
    if _report is not None:
        _report.comparisons.append(
            {"title": title, "measure": measure, "rounds": rounds, "results": [r.row() for r in results]}
        )
    return results


def figure(title: str, **values: Any) -> None:
    """A measured figure that is not a timing (a count, a peak memory): printed and recorded."""
    print(f"\n## {title}")
    for name, value in values.items():
        print(f"  {name}: {value}")
    if _report is not None:
        _report.figures.append({"title": title, **values})


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


def text_pages(count: int, size: int, stem: str = "page") -> list[MemoryPage]:
    return [
        MemoryPage(page_id=f"{stem}_{i}", modality=Modality.TEXT, content=os.urandom(size // 2).hex())
        for i in range(count)
    ]


async def bridge_round(bridge: ArtifactsBridge, payload: bytes, count: int, concurrency: int) -> None:
    """``count`` text pages of ``len(payload)`` characters stored, then loaded, through the bridge."""
    content = payload.hex()[: len(payload)]
    pages = [MemoryPage(page_id=f"page_{i}", modality=Modality.TEXT, content=content) for i in range(count)]
    await store_and_load(bridge, pages, concurrency)


async def store_and_load(bridge: ArtifactsBridge, pages: Sequence[MemoryPage], concurrency: int) -> None:
    """Store ``pages``, then load each back, through the bridge."""
    artifact_ids: dict[int, str] = {}

    async def store(i: int) -> None:
        artifact_ids[i] = await bridge.store_page(pages[i])

    async def load(i: int) -> None:
        await bridge.load_page(artifact_ids[i])

    await put_then_get(len(pages), concurrency, store, load)


async def run_cases(title: str, cases: list[Case], *, repeat: int = ROUNDS) -> dict[str, float]:
    """:func:`compare` under the name the cloud benchmarks use; returns the median seconds per case."""
    return {r.name: statistics.median(r.seconds) for r in await compare(title, cases)}


def main(
    name: str | Callable[[], Coroutine[Any, Any, None]], coro: Callable[[], Coroutine[Any, Any, None]] | None = None
) -> None:
    """Run one benchmark module's cases and write ``.bench/<name>.json`` (``main(coro)``: named after the script)."""
    global _report
    if coro is None:
        assert callable(name)
        coro, name = name, Path(sys.argv[0]).stem
    assert isinstance(name, str)
    _report = Report(name, machine())
    print(f"# {name}: {json.dumps(_report.machine)}")
    print(f"# {sys.argv[0]} {' '.join(sys.argv[1:])}".rstrip())
    asyncio.run(coro())
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(_report.__dict__, indent=2, default=str) + "\n")


async def populate(bridge: ArtifactsBridge, objects: int) -> None:
    """``objects`` pages of 512 bytes, half of them in a checkpoint (setup, not timed)."""
    pages = text_pages(objects, 512, stem=f"s{objects}")
    half = objects // 2
    await bridge.checkpoint(pages[:half], name="half")
    await bounded(objects - half, 64, lambda i: bridge.store_page(pages[half + i]))


async def compare_maintenance(bridge: ArtifactsBridge, objects: int, where: str) -> None:
    """Listing, statistics, ``fsck`` and ``gc`` over a store of ``objects`` pages: time per object is the point."""

    async def listing() -> None:
        await bridge.list_pages()

    async def stats() -> None:
        await bridge.collect_stats()

    async def check() -> None:
        await fsck(bridge)

    async def sweep() -> None:
        await collect(bridge, grace=timedelta(0))

    await compare(
        f"maintenance over {objects:,} objects {where} (per op = per object)",
        [
            Case("list_pages", listing, objects),
            Case("collect_stats", stats, objects),
            Case("fsck (every frame verified)", check, objects),
            Case("gc (fsck without verifying, then the sweep)", sweep, objects),
        ],
    )
