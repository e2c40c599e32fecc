"""``find_pages`` on moto with and without a catalog snapshot, in requests on the wire and wall time (issue 28).

Run: ``.venv/bin/python -m bench.bench_catalog`` (starts its own moto server on 127.0.0.1 through the test rig).
``TIERSTORE_BENCH_CATALOG`` sets the number of pages (default ``3000``). A bridge bound to a user and session stores
that many pages, one in a hundred with ``topic=needle`` in its own metadata, through the SDK data path (the obstore
path's listing gives no change token: there every page is a ``head``, as cold). Then, in each of 3 rounds, side by
side through a counting proxy: *cold* (the scope's snapshots deleted first: every page a ``head``, then a fold),
*warm* (the snapshot that call folded), and *after 100 more stores* (100 pages stored just before, none of them in the
snapshot; measured 6 s later, once S3's listing proves them: within 5 s of a change a page has no token and is a
``head`` each time, never folded). Each figure is the median (min-max) of the rounds; requests are counted by S3
operation.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from tests.emulators_s3 import Server, s3_operation
from tests.faults import FaultProxy
from tests.rigs import load

from bench._harness import bounded, figure, main
from tierstore import ArtifactsBridge, MemoryPage, Modality
from tierstore.artifacts.scoped import PrefixedBackend
from tierstore.backends.s3 import S3Backend
from tierstore.backends.s3.wire import LISTING_SETTLED
from tierstore.scopes import scope_prefix

PAGES = int(os.environ.get("TIERSTORE_BENCH_CATALOG", "3000"))
ROUNDS = 3
USER, SESSION = "bench-user", "bench-session"


def sdk_backend(server: Server, bucket: str, endpoint: str | None = None) -> S3Backend:
    backend: S3Backend = load("s3_moto").open_backend(
        {"endpoint": endpoint or server.endpoint, "bucket": bucket, "client": "sdk"}
    )
    return backend


def page(n: int) -> MemoryPage:
    topic = "needle" if n % 100 == 7 else f"t{n % 100}"
    return MemoryPage(page_id=f"msg_{n}", modality=Modality.TEXT, content=f"page {n} " * 40, metadata={"topic": topic})


async def bench_catalog(server: Server) -> None:
    bucket = server.new_store()["bucket"]
    async with sdk_backend(server, bucket) as backend:
        writer = ArtifactsBridge(backend=backend, user_id=USER, session_id=SESSION, concurrency=64)
        started = time.perf_counter()
        await bounded(PAGES, 64, lambda i: writer.store_page(page(i)))
        print(f"\n(stored {PAGES:,} pages in {time.perf_counter() - started:.1f} s, not counted below)")
        await asyncio.sleep(LISTING_SETTLED + 1)  # so their listing proves them (S3: a token 5 s past the last change)
        scope = PrefixedBackend(backend, scope_prefix(USER, SESSION))

        calls: Counter[str] = Counter()

        def count(request: web.Request) -> None:
            calls[s3_operation(request.method, request.path, request.query, request.headers)] += 1

        results: dict[str, list[tuple[float, int, Counter[str]]]] = {"cold": [], "warm": [], "after 100 stores": []}
        stored = PAGES
        async with FaultProxy(server.endpoint, decide=count) as proxy, sdk_backend(server, bucket, proxy.url) as seen:
            reader = ArtifactsBridge(backend=seen, user_id=USER, session_id=SESSION)

            async def measured(label: str, before: Callable[[], Awaitable[object]] | None = None) -> None:
                if before is not None:
                    await before()
                calls.clear()
                started = time.perf_counter()
                found = await reader.find_pages(metadata={"topic": "needle"})
                results[label].append((time.perf_counter() - started, sum(calls.values()), Counter(calls)))
                assert len(found) == len([n for n in range(stored) if n % 100 == 7]), (label, len(found))

            async def forget() -> None:
                await scope.delete_many([e.key async for e in scope.list("cat_")])

            async def store_more() -> None:
                nonlocal stored
                await bounded(100, 32, lambda i: writer.store_page(page(stored + i)))
                stored += 100
                await asyncio.sleep(LISTING_SETTLED + 1)

            for _round in range(ROUNDS):
                await measured("cold", forget)
                await measured("warm")
                await measured("after 100 stores", store_more)
    for label, runs in results.items():
        seconds = [run[0] for run in runs]
        requests = [run[1] for run in runs]
        figure(
            f"find_pages(metadata topic=needle) among {PAGES:,} pages on moto (SDK path): {label}",
            seconds=f"{statistics.median(seconds):.2f} ({min(seconds):.2f}-{max(seconds):.2f})",
            requests=f"{statistics.median(requests):.0f} ({min(requests)}-{max(requests)})",
            last_round=dict(runs[-1][2]),
        )


async def bench() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="bench-catalog-") as workdir,
        load("s3_moto").serve(Path(workdir)) as server,
    ):
        await bench_catalog(server)


if __name__ == "__main__":
    main(bench)
