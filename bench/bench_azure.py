"""Azure Blob on Azurite: AzureBlobBackend and ArtifactsBridge against the raw SDK, 500 x 2 KiB, concurrency 32.

Run: ``.venv/bin/python -m bench.bench_azure`` (starts its own Azurite through the test rig). Prints ratios only;
absolute figures on an emulator say little about Azure itself.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from azure.storage.blob.aio import BlobServiceClient
from tests.rigs import azure as rig

from bench._harness import Case, main, run_cases
from tierstore import ArtifactsBridge, MemoryPage, Modality
from tierstore.backends.azure import AzureBlobBackend

COUNT = 500
SIZE = 2 * 1024
CONCURRENCY = 32
PAYLOAD = os.urandom(SIZE)


async def bounded(count: int, work: Callable[[int], Awaitable[object]]) -> None:
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(index: int) -> None:
        async with limit:
            await work(index)

    await asyncio.gather(*(one(i) for i in range(count)))


async def put_then_get(put: Callable[[int], Awaitable[object]], get: Callable[[int], Awaitable[object]]) -> None:
    await bounded(COUNT, put)
    await bounded(COUNT, get)


async def bench(server: rig.Server) -> None:
    raw_spec, backend_spec, bridge_spec = server.new_store(), server.new_store(), server.new_store()
    async with BlobServiceClient.from_connection_string(server.connection_string) as service:
        raw = service.get_container_client(raw_spec["container"])

        async def raw_put(i: int) -> None:
            await raw.upload_blob(f"mem_L3_{i}", PAYLOAD, overwrite=True)

        async def raw_get(i: int) -> None:
            await (await raw.download_blob(f"mem_L3_{i}")).readall()

        async with rig.open_backend(backend_spec) as backend, rig.open_backend(bridge_spec) as bridge_backend:
            bridge = ArtifactsBridge(backend=bridge_backend)
            cases = [
                Case("raw SDK upload_blob + download_blob", lambda: put_then_get(raw_put, raw_get), 2 * COUNT),
                Case("AzureBlobBackend put + get", lambda: backend_round(backend), 2 * COUNT),
                Case("ArtifactsBridge store_page + load_page", lambda: bridge_round(bridge), 2 * COUNT),
            ]
            await run_cases(f"Azurite, {COUNT} x {SIZE // 1024} KiB, concurrency {CONCURRENCY}", cases)


async def backend_round(backend: AzureBlobBackend) -> None:
    async def put(i: int) -> None:
        await backend.put(f"mem_L3_{i}", PAYLOAD, metadata={"size": str(SIZE)})

    async def get(i: int) -> None:
        await backend.get(f"mem_L3_{i}")

    await put_then_get(put, get)


async def bridge_round(bridge: ArtifactsBridge) -> None:
    content = PAYLOAD.hex()[:SIZE]
    artifact_ids: list[str] = []

    async def store(i: int) -> None:
        page = MemoryPage(page_id=f"page_{i}", modality=Modality.TEXT, content=content)
        artifact_ids.append(await bridge.store_page(page))

    async def load(i: int) -> None:
        await bridge.load_page(artifact_ids[i])

    await put_then_get(store, load)


async def run() -> None:
    with tempfile.TemporaryDirectory() as workdir, rig.serve(Path(workdir)) as server:
        await bench(server)


if __name__ == "__main__":
    main(run)
