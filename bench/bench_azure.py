"""Azure Blob on Azurite: 500 x 2 KiB pages stored and loaded at concurrency 32, through the bridge on each data
path (the SDK, obstore) and with the raw SDK and raw obstore making the same requests.

Run: ``.venv/bin/python -m bench.bench_azure`` (starts its own Azurite through the test rig). The cases run through
the harness's ``compare`` (interleaved, rotated, ``TIERSTORE_BENCH_ROUNDS``); each repetition gets a fresh container.
Ratios are to the raw SDK; absolute figures on an emulator say little about Azure itself.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import obstore
from azure.storage.blob import ContentSettings, StandardBlobTier
from azure.storage.blob.aio import BlobServiceClient
from obstore.store import AzureStore
from tests.rigs import azure as rig

from bench._harness import Case, bridge_round, compare, main, put_then_get
from tierstore import ArtifactsBridge
from tierstore.backends.cloud import CloudOptions

COUNT = 500
SIZE = 2 * 1024
CONCURRENCY = 32
PAYLOAD = os.urandom(SIZE)
# What the bridge sends with a page, so the raw cases make the same requests.
METADATA = {"pageid": "page_0", "modality": "text", "tier": "L3", "checksum": "sha256%3A" + "0" * 64}
TAGS = {"tier": "L3", "modality": "text", "pagetype": "transcript", "tierstore-tier": "L3"}

Workload = Callable[[dict[str, Any]], Awaitable[None]]


def raw_sdk(service: BlobServiceClient) -> Workload:
    async def run(spec: dict[str, Any]) -> None:
        container = service.get_container_client(spec["container"])
        digest = bytearray(hashlib.md5(PAYLOAD, usedforsecurity=False).digest())

        async def put(i: int) -> None:
            await container.upload_blob(
                f"mem_L3_{i}",
                PAYLOAD,
                overwrite=False,
                if_none_match="*",
                metadata=METADATA,
                tags=TAGS,
                standard_blob_tier=StandardBlobTier.HOT,
                content_settings=ContentSettings(content_md5=digest),
            )

        async def get(i: int) -> None:
            await (await container.download_blob(f"mem_L3_{i}")).readall()

        await put_then_get(COUNT, CONCURRENCY, put, get)

    return run


def raw_obstore(port: int) -> Workload:
    async def run(spec: dict[str, Any]) -> None:
        store = AzureStore(
            spec["container"],
            config={
                "account_name": rig.ACCOUNT,
                "account_key": rig.ACCOUNT_KEY,
                "endpoint": f"http://127.0.0.1:{port}/{rig.ACCOUNT}",
            },
            client_options={"allow_http": True},
            retry_config={"max_retries": 0},
        )

        async def put(i: int) -> None:
            attributes = {**METADATA, "Storage-Class": "Hot"}
            await obstore.put_async(store, f"mem_L3_{i}", PAYLOAD, attributes=attributes, tags=TAGS, mode="create")

        async def get(i: int) -> None:
            await (await obstore.get_async(store, f"mem_L3_{i}")).bytes_async()

        await put_then_get(COUNT, CONCURRENCY, put, get)

    return run


def through_bridge(client: str) -> Workload:
    async def run(spec: dict[str, Any]) -> None:
        options = CloudOptions(client="sdk" if client == "sdk" else "obstore")
        async with rig.open_backend({**spec, "client": client}, options) as backend:
            await bridge_round(ArtifactsBridge(backend=backend, concurrency=CONCURRENCY), PAYLOAD, COUNT, CONCURRENCY)

    return run


async def bench(server: rig.Server) -> None:
    async with BlobServiceClient.from_connection_string(server.connection_string) as service:
        workloads: dict[str, Workload] = {
            "raw SDK upload_blob + download_blob": raw_sdk(service),
            "raw obstore put_async + get_async": raw_obstore(server.port),
            "bridge store_page + load_page, SDK path": through_bridge("sdk"),
            "bridge store_page + load_page, obstore path": through_bridge("obstore"),
        }
        await compare(
            f"Azurite, {COUNT} x {SIZE // 1024} KiB pages stored then loaded, concurrency {CONCURRENCY}",
            [in_a_fresh_container(server, name, workload) for name, workload in workloads.items()],
        )


def in_a_fresh_container(server: rig.Server, name: str, workload: Workload) -> Case:
    """A case whose every repetition gets a container of its own (made untimed)."""
    store: dict[str, Any] = {}

    async def setup() -> None:
        store.update(server.new_store())

    async def run() -> None:
        await workload(store)

    return Case(name, run, 2 * COUNT, setup)


async def run() -> None:
    with tempfile.TemporaryDirectory() as workdir, rig.serve(Path(workdir)) as server:
        await bench(server)


if __name__ == "__main__":
    main(run)
