"""GCS on fake-gcs-server: GCSBackend and ArtifactsBridge against the raw library, 500 x 2 KiB, concurrency 32.

Run: ``.venv/bin/python -m bench.bench_gcs`` (starts its own fake-gcs-server through the test rig). Every case
makes the same requests: a create-if-absent upload (``ifGenerationMatch=0``) of each page, then a download of each.
The baseline is google-cloud-storage called directly on a 32-thread pool of its own, with one pooled connection
per thread, as the backend does. Cases run through the harness's ``compare`` (interleaved, rotated,
``TIERSTORE_BENCH_ROUNDS``); ratios, not absolute figures on an emulator, are the point.

There is no obstore data path on GCS: obstore's GCS store uploads through the XML API, which fake-gcs-server does
not accept (see ``tierstore.backends.gcs``). A second section compares reads alone, which it does serve: the raw
library's download against obstore's ``get`` of the same objects, to show what reads through obstore would gain.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import obstore
from obstore.store import GCSStore
from requests.adapters import HTTPAdapter
from tests.rigs import gcs as rig

from bench._harness import Case, bounded, compare, main, put_then_get
from tierstore import ArtifactsBridge, MemoryPage, Modality
from tierstore.backends.cloud import CloudOptions
from tierstore.backends.gcs import GCSBackend

COUNT = 500
SIZE = 2 * 1024
CONCURRENCY = 32
PAYLOAD = os.urandom(SIZE)
_runs = itertools.count()


def raw_bucket(server: rig.Server, name: str) -> Any:
    client = server.client()
    # The same connection pool the backend gives itself, so both sides differ only by the adapter's work.
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=CONCURRENCY, max_retries=0)
    client._http.mount("http://", adapter)
    return client.bucket(name)


async def raw_round(bucket: Any, pool: ThreadPoolExecutor) -> None:
    loop = asyncio.get_running_loop()
    run = next(_runs)

    async def put(i: int) -> None:
        blob = bucket.blob(f"raw_{run}_{i}")
        await loop.run_in_executor(
            pool, lambda: blob.upload_from_string(PAYLOAD, if_generation_match=0, retry=None, timeout=(5, 30))
        )

    async def get(i: int) -> None:
        blob = bucket.blob(f"raw_{run}_{i}")
        await loop.run_in_executor(pool, lambda: blob.download_as_bytes(retry=None, timeout=(5, 30)))

    await put_then_get(COUNT, CONCURRENCY, put, get)


async def backend_round(backend: GCSBackend) -> None:
    run = next(_runs)

    async def put(i: int) -> None:
        await backend.put(f"be_{run}_{i}", PAYLOAD, metadata={"size": str(SIZE)}, if_absent=True)

    async def get(i: int) -> None:
        await backend.get(f"be_{run}_{i}")

    await put_then_get(COUNT, CONCURRENCY, put, get)


async def bridge_round(bridge: ArtifactsBridge) -> None:
    content = PAYLOAD.hex()[:SIZE]
    artifact_ids: dict[int, str] = {}

    async def store(i: int) -> None:
        page = MemoryPage(page_id=f"page_{i}", modality=Modality.TEXT, content=content)
        artifact_ids[i] = await bridge.store_page(page)

    async def load(i: int) -> None:
        await bridge.load_page(artifact_ids[i])

    await put_then_get(COUNT, CONCURRENCY, store, load)


async def raw_gets(bucket: Any, pool: ThreadPoolExecutor, names: list[str]) -> None:
    loop = asyncio.get_running_loop()

    async def get(i: int) -> None:
        blob = bucket.blob(names[i])
        await loop.run_in_executor(pool, lambda: blob.download_as_bytes(retry=None, timeout=(5, 30)))

    await bounded(len(names), CONCURRENCY, get)


async def obstore_gets(store: GCSStore, names: list[str]) -> None:
    async def get(i: int) -> None:
        await (await obstore.get_async(store, names[i])).bytes_async()

    await bounded(len(names), CONCURRENCY, get)


def obstore_store(url: str, bucket: str, workdir: Path) -> GCSStore:
    """obstore onto the emulator: a key file that turns OAuth off and points the XML API at the emulator."""
    key = workdir / "obstore-key.json"
    fields = {"disable_oauth": True, "client_email": "", "private_key": "", "private_key_id": "", "gcs_base_url": url}
    key.write_text(json.dumps(fields))
    return GCSStore(bucket, service_account_path=str(key), client_options={"allow_http": True})


async def bench(server: rig.Server) -> None:
    raw_spec, backend_spec, bridge_spec = server.new_store(), server.new_store(), server.new_store()
    bucket = raw_bucket(server, raw_spec["bucket"])
    options = CloudOptions(pool_size=CONCURRENCY)
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        async with (
            rig.open_backend(backend_spec, options) as backend,
            rig.open_backend(bridge_spec, options) as bridge_backend,
        ):
            bridge = ArtifactsBridge(backend=bridge_backend, concurrency=CONCURRENCY)
            cases = [
                Case("raw SDK upload(ifGenerationMatch=0) + download", lambda: raw_round(bucket, pool), 2 * COUNT),
                Case("GCSBackend put(if_absent) + get (SDK path)", lambda: backend_round(backend), 2 * COUNT),
                Case("ArtifactsBridge store_page + load_page (SDK path)", lambda: bridge_round(bridge), 2 * COUNT),
            ]
            title = f"fake-gcs-server, {COUNT} x {SIZE // 1024} KiB, concurrency {CONCURRENCY}"
            await compare(title, cases)


async def bench_reads(server: rig.Server, workdir: Path) -> None:
    spec = server.new_store()
    bucket = raw_bucket(server, spec["bucket"])
    names = [f"mem_L3_{i}" for i in range(COUNT)]
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        loop = asyncio.get_running_loop()

        async def upload(i: int) -> None:
            await loop.run_in_executor(pool, lambda: bucket.blob(names[i]).upload_from_string(PAYLOAD))

        await bounded(COUNT, CONCURRENCY, upload)
        store = obstore_store(server.url, spec["bucket"], workdir)
        cases = [
            Case("raw SDK download_as_bytes", lambda: raw_gets(bucket, pool, names), COUNT),
            Case("raw obstore get (XML API)", lambda: obstore_gets(store, names), COUNT),
        ]
        await compare(f"reads only, {COUNT} x {SIZE // 1024} KiB, concurrency {CONCURRENCY}", cases)


async def run() -> None:
    with tempfile.TemporaryDirectory() as workdir, rig.serve(Path(workdir), public_host=True) as server:
        await bench(server)
        await bench_reads(server, Path(workdir))


if __name__ == "__main__":
    main(run)
