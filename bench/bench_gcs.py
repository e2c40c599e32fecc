"""GCS on fake-gcs-server: GCSBackend and ArtifactsBridge against the raw library, 500 x 2 KiB, concurrency 16.

Run: ``.venv/bin/python -m bench.bench_gcs`` (starts its own fake-gcs-server through the test rig). The baseline
is google-cloud-storage's ``upload_from_string`` + ``download_as_bytes`` on 16 threads of its own; the backend
runs the same calls on its 16-thread pool. Prints ratios only: absolute figures on an emulator say little
about GCS itself.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from requests.adapters import HTTPAdapter
from tests.rigs import gcs as rig

from bench._harness import Case, backend_round, bridge_round, main, put_then_get, run_cases
from tierstore import ArtifactsBridge

COUNT = 500
SIZE = 2 * 1024
CONCURRENCY = 16
PAYLOAD = os.urandom(SIZE)


def raw_bucket(server: rig.Server, name: str) -> Any:
    client = server.client()
    # The same connection pool the backend gives itself, so both sides differ only by the adapter's work.
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=CONCURRENCY)
    client._http.mount("http://", adapter)
    return client.bucket(name)


async def raw_round(bucket: Any, pool: ThreadPoolExecutor) -> None:
    loop = asyncio.get_running_loop()

    async def put(i: int) -> None:
        blob = bucket.blob(f"mem_L3_{i}")
        await loop.run_in_executor(pool, lambda: blob.upload_from_string(PAYLOAD))

    async def get(i: int) -> None:
        blob = bucket.blob(f"mem_L3_{i}")
        await loop.run_in_executor(pool, blob.download_as_bytes)

    await put_then_get(COUNT, CONCURRENCY, put, get)


async def bench(server: rig.Server) -> None:
    raw_spec, backend_spec, bridge_spec = server.new_store(), server.new_store(), server.new_store()
    bucket = raw_bucket(server, raw_spec["bucket"])
    options = {"max_workers": CONCURRENCY}
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        async with (
            rig.open_backend(backend_spec, **options) as backend,
            rig.open_backend(bridge_spec, **options) as bridge_backend,
        ):
            bridge = ArtifactsBridge(backend=bridge_backend, concurrency=CONCURRENCY)
            cases = [
                Case("raw upload_from_string + download_as_bytes", lambda: raw_round(bucket, pool), 2 * COUNT),
                Case("GCSBackend put + get", lambda: backend_round(backend, PAYLOAD, COUNT, CONCURRENCY), 2 * COUNT),
                Case(
                    "ArtifactsBridge store_page + load_page",
                    lambda: bridge_round(bridge, PAYLOAD, COUNT, CONCURRENCY),
                    2 * COUNT,
                ),
            ]
            await run_cases(f"fake-gcs-server, {COUNT} x {SIZE // 1024} KiB, concurrency {CONCURRENCY}", cases)


async def run() -> None:
    with tempfile.TemporaryDirectory() as workdir, rig.serve(Path(workdir)) as server:
        await bench(server)


if __name__ == "__main__":
    main(run)
