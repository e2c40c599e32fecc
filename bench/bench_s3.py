"""S3 on moto's server: S3Backend and ArtifactsBridge against the raw SDK and obstore, and memory for big pages.

Run: ``.venv/bin/python -m bench.bench_s3`` (starts its own moto server through the test rig). Prints ratios and
counts only; absolute figures on an emulator say little about S3 itself. ``TIERSTORE_BENCH_PAGES`` sets the page
count of the checkpoint section (default 2000); ``TIERSTORE_BENCH_BIG_MIB`` the size of the big page (256).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aioboto3
import obstore
import psutil
from obstore.store import S3Store
from tests.emulators_s3 import ACCESS_KEY, REGION, SECRET_KEY
from tests.rigs import s3_moto as rig

from bench._harness import Case, backend_round, bounded, bridge_round, main, put_then_get, run_cases
from tierstore import ArtifactsBridge, MemoryPage, Modality
from tierstore.backends.s3 import S3Backend

COUNT = 500
SIZE = 2 * 1024
CONCURRENCY = 32
PAYLOAD = os.urandom(SIZE)
PAGES = int(os.environ.get("TIERSTORE_BENCH_PAGES", "2000"))
BIG_MIB = int(os.environ.get("TIERSTORE_BENCH_BIG_MIB", "256"))
MiB = 1024 * 1024


def text_page(i: int, version: int = 0) -> MemoryPage:
    body = f"v{version}:{i}:".encode().hex()
    return MemoryPage(page_id=f"page{i}", modality=Modality.TEXT, content=(body * (SIZE // len(body) + 1))[:SIZE])


async def count_puts(backend: S3Backend) -> Counter[str]:
    seen: Counter[str] = Counter()

    def before_call(model: Any, **_: Any) -> None:
        seen[model.name] += 1

    (await backend.sdk_client()).meta.events.register("before-call.s3", before_call)
    return seen


# -- (1) and (2): put+get at concurrency 32 -------------------------------------------------------------------


async def bench_round_trips(server: rig.Server) -> None:
    raw_spec, backend_spec, bridge_spec = server.new_store(), server.new_store(), server.new_store()
    session = aioboto3.Session()
    client_options = {
        "endpoint_url": server.endpoint,
        "region_name": REGION,
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
    }
    async with session.client("s3", **client_options) as raw:

        async def raw_put(i: int) -> None:
            await raw.put_object(Bucket=raw_spec["bucket"], Key=f"mem_L3_{i}", Body=PAYLOAD)

        async def raw_get(i: int) -> None:
            answer = await raw.get_object(Bucket=raw_spec["bucket"], Key=f"mem_L3_{i}")
            async with answer["Body"] as body:
                await body.read()

        async with rig.open_backend(backend_spec) as backend, rig.open_backend(bridge_spec) as bridge_backend:
            bridge = ArtifactsBridge(backend=bridge_backend, concurrency=CONCURRENCY)

            cases = [
                Case(
                    "raw aioboto3 put_object + get_object",
                    lambda: put_then_get(COUNT, CONCURRENCY, raw_put, raw_get),
                    2 * COUNT,
                ),
                Case("S3Backend put + get", lambda: backend_round(backend, PAYLOAD, COUNT, CONCURRENCY), 2 * COUNT),
                Case(
                    "ArtifactsBridge store_page + load_page",
                    lambda: bridge_round(bridge, PAYLOAD, COUNT, CONCURRENCY),
                    2 * COUNT,
                ),
            ]
            await run_cases(f"S3 on moto: {COUNT} x {SIZE // 1024} KiB, concurrency {CONCURRENCY}", cases)


# -- (3): checkpoints -------------------------------------------------------------------------------------


async def bench_checkpoints(server: rig.Server) -> None:
    pages = [text_page(i) for i in range(PAGES)]
    obstore_spec = server.new_store()
    store = S3Store(
        obstore_spec["bucket"],
        config={
            "endpoint": server.endpoint,
            "region": REGION,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
        },
        client_options={"allow_http": True},
    )
    payloads = [str(p.content).encode() for p in pages]

    async def obstore_puts() -> None:
        await bounded(PAGES, CONCURRENCY, lambda i: obstore.put_async(store, f"mem_L3_{i}", payloads[i]))

    async def fresh_bridge() -> tuple[ArtifactsBridge, S3Backend]:
        backend = rig.open_backend(server.new_store())
        return ArtifactsBridge(backend=backend, concurrency=CONCURRENCY), backend

    async def checkpoint() -> None:
        bridge, backend = await fresh_bridge()
        async with backend:
            await bridge.checkpoint(pages, "bench")

    async def one_at_a_time() -> None:
        bridge, backend = await fresh_bridge()
        async with backend:
            for page in pages:
                await bridge.store_page(page)

    cases = [
        Case(f"obstore put_async x {PAGES}, concurrency {CONCURRENCY}", obstore_puts, PAGES),
        Case(f"bridge.checkpoint of {PAGES} pages", checkpoint, PAGES),
        Case(f"store_page loop, one at a time ({PAGES})", one_at_a_time, PAGES),
    ]
    await run_cases(f"Checkpoint of {PAGES} x {SIZE // 1024} KiB pages on moto", cases, repeat=1)
    await bench_incremental_checkpoint(server, pages)


async def bench_incremental_checkpoint(server: rig.Server, pages: list[MemoryPage]) -> None:
    changed = max(1, len(pages) // 100)
    async with rig.open_backend(server.new_store()) as backend:
        bridge = ArtifactsBridge(backend=backend, concurrency=CONCURRENCY)
        seen = await count_puts(backend)
        started = time.perf_counter()
        await bridge.checkpoint(pages, "full")
        full_seconds, full_puts = time.perf_counter() - started, seen["PutObject"]
        seen.clear()
        second = [text_page(i, version=1) if i < changed else page for i, page in enumerate(pages)]
        started = time.perf_counter()
        await bridge.checkpoint(second, "incremental")
        incremental_seconds, incremental_puts = time.perf_counter() - started, seen["PutObject"]
    print(f"\n## Second checkpoint with {changed} of {len(pages)} pages changed (1%)")
    print(f"{'checkpoint':<24} {'PutObject calls':>16} {'seconds':>10} {'ratio':>7}")
    print(f"{'full':<24} {full_puts:>16} {full_seconds:>10.3f} {1.0:>7.2f}")
    print(
        f"{'1% changed':<24} {incremental_puts:>16} {incremental_seconds:>10.3f} "
        f"{incremental_seconds / full_seconds:>7.2f}"
    )


# -- (4): memory for one big page -------------------------------------------------------------------------


class PeakRss:
    """Samples this process's resident set size every few milliseconds in a thread; keeps the peak."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._stop = threading.Event()
        self.baseline = self._process.memory_info().rss
        self.peak = self.baseline
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


async def bench_big_page(server: rig.Server) -> None:
    size = BIG_MIB * MiB
    content = os.urandom(size)
    async with rig.open_backend(server.new_store()) as backend:
        bridge = ArtifactsBridge(backend=backend)
        with PeakRss() as store_rss:
            started = time.perf_counter()
            artifact = await bridge.store_page(MemoryPage(page_id="big", modality=Modality.IMAGE, content=content))
            store_seconds = time.perf_counter() - started
        with PeakRss() as load_rss:
            started = time.perf_counter()
            loaded = await bridge.load_page(artifact)
            load_seconds = time.perf_counter() - started
        assert loaded is not None
        assert loaded.content == content
        del loaded
    print(f"\n## One {BIG_MIB} MiB image page through the bridge (RSS above the process's RSS before the call)")
    print(f"{'step':<12} {'seconds':>10} {'peak extra RSS MiB':>20} {'x page size':>12}")
    for step, seconds, rss in (("store_page", store_seconds, store_rss), ("load_page", load_seconds, load_rss)):
        extra = (rss.peak - rss.baseline) / MiB
        print(f"{step:<12} {seconds:>10.2f} {extra:>20.0f} {extra / BIG_MIB:>12.2f}")


async def bench() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as workdir, rig.serve(Path(workdir)) as server:
        await bench_round_trips(server)
        await bench_checkpoints(server)
        await bench_big_page(server)


if __name__ == "__main__":
    main(bench)
