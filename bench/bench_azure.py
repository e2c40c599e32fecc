"""Azure Blob on Azurite: AzureBlobBackend and ArtifactsBridge against the raw SDK, 500 x 2 KiB, concurrency 32.

Run: ``.venv/bin/python -m bench.bench_azure`` (starts its own Azurite through the test rig). Prints ratios only;
absolute figures on an emulator say little about Azure itself.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from azure.storage.blob.aio import BlobServiceClient
from tests.rigs import azure as rig

from bench._harness import Case, backend_round, bridge_round, main, put_then_get, run_cases
from tierstore import ArtifactsBridge

COUNT = 500
SIZE = 2 * 1024
CONCURRENCY = 32
PAYLOAD = os.urandom(SIZE)


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
                Case(
                    "raw SDK upload_blob + download_blob",
                    lambda: put_then_get(COUNT, CONCURRENCY, raw_put, raw_get),
                    2 * COUNT,
                ),
                Case(
                    "AzureBlobBackend put + get", lambda: backend_round(backend, PAYLOAD, COUNT, CONCURRENCY), 2 * COUNT
                ),
                Case(
                    "ArtifactsBridge store_page + load_page",
                    lambda: bridge_round(bridge, PAYLOAD, COUNT, CONCURRENCY),
                    2 * COUNT,
                ),
            ]
            await run_cases(f"Azurite, {COUNT} x {SIZE // 1024} KiB, concurrency {CONCURRENCY}", cases)


async def run() -> None:
    with tempfile.TemporaryDirectory() as workdir, rig.serve(Path(workdir)) as server:
        await bench(server)


if __name__ == "__main__":
    main(run)
