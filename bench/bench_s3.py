"""S3 on moto's server: the bridge on each data path (aioboto3, obstore) against the raw SDK and raw obstore
sending the same requests; checkpoints; memory for one big page.

Run: ``.venv/bin/python -m bench.bench_s3`` (starts its own moto server through the test rig; ``--localstack``
runs the round trips on LocalStack instead; ``--cpu`` runs the client-CPU comparison alone). Prints ratios and
counts; absolute figures on an emulator say little about S3 itself. ``TIERSTORE_BENCH_PAGES`` sets the page count
of the checkpoint section (default 10000, 0 skips it); ``TIERSTORE_BENCH_BIG_MIB`` the size of the big page (256,
0 skips it); ``TIERSTORE_BENCH_SCALE`` the store sizes of the maintenance section (``1000,10000``; empty skips it).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aioboto3
import obstore
import psutil
from aiohttp import web
from obstore.store import S3Store
from tests.emulators_s3 import ACCESS_KEY, REGION, SECRET_KEY, Server, s3_operation
from tests.faults import FaultProxy
from tests.rigs import load

from bench._harness import (
    ROUNDS,
    Case,
    bounded,
    compare,
    compare_maintenance,
    figure,
    main,
    populate,
    put_then_get,
    store_and_load,
    text_pages,
)
from tierstore import ArtifactsBridge, MemoryPage, Modality
from tierstore.backends.base import METADATA_BUDGET
from tierstore.backends.s3 import S3Backend
from tierstore.backends.s3.wire import TIER_MARKER, encode_tags
from tierstore.validate import as_page, resolve_tier

COUNT = 500
SIZE = 2 * 1024
CONCURRENCY = 32
CPU_ROUNDS = 9
"""Rounds of the client-CPU comparison, at least: a round is under half a second of CPU, and on a shared 2-core
machine one round can be off by a third either way, so its median needs more rounds than the others."""
PAGES = int(os.environ.get("TIERSTORE_BENCH_PAGES", "10000"))
BIG_MIB = int(os.environ.get("TIERSTORE_BENCH_BIG_MIB", "256"))
SCALE = [int(n) for n in os.environ.get("TIERSTORE_BENCH_SCALE", "1000,10000").split(",") if n]
MiB = 1024 * 1024


def open_backend(server: Server, client: str) -> S3Backend:
    backend: S3Backend = load("s3_moto").open_backend({**server.new_store(), "client": client})
    return backend


# -- (1): 500 x 2 KiB pages stored and loaded at concurrency 32 --------------------------------------------------


async def what_the_bridge_sends(server: Server) -> tuple[bytes, dict[str, str], dict[str, str]]:
    """One page's stored bytes, user metadata and tags, so that the raw clients send requests of the same size."""
    async with open_backend(server, "sdk") as backend:
        bridge = ArtifactsBridge(backend=backend)
        artifact = await bridge.store_page(text_pages(1, SIZE)[0])
        body = bytes(await backend.get(artifact) or b"")
    head = server.client.head_object(Bucket=backend.container, Key=artifact)
    tags = server.client.get_object_tagging(Bucket=backend.container, Key=artifact)["TagSet"]
    return body, dict(head["Metadata"]), {t["Key"]: t["Value"] for t in tags}


async def bench_round_trips(server: Server) -> None:
    body, metadata, tags = await what_the_bridge_sends(server)
    pages = text_pages(COUNT, SIZE)
    credentials = {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY}
    session = aioboto3.Session()
    async with session.client("s3", endpoint_url=server.endpoint, region_name=REGION, **credentials) as raw:
        store = raw_store(server)
        raw_bucket = server.new_store()["bucket"]
        rounds = Counter[str]()

        def raw_sdk() -> Awaitable[None]:
            rounds["sdk"] += 1
            stem = f"r{rounds['sdk']}_"

            async def put(i: int) -> None:
                await raw_sdk_put(raw, raw_bucket, f"{stem}{i}", body, metadata, tags)

            async def get(i: int) -> None:
                answer = await raw.get_object(Bucket=raw_bucket, Key=f"{stem}{i}")
                async with answer["Body"] as stream:
                    await stream.read()

            return put_then_get(COUNT, CONCURRENCY, put, get)

        def raw_obstore() -> Awaitable[None]:
            rounds["obstore"] += 1
            stem = f"r{rounds['obstore']}_"
            attributes = {**metadata, "Storage-Class": "STANDARD"}

            async def put(i: int) -> None:
                await obstore.put_async(store, f"{stem}{i}", body, attributes=attributes, tags=tags, mode="create")

            async def get(i: int) -> None:
                await (await obstore.get_async(store, f"{stem}{i}")).bytes_async()

            return put_then_get(COUNT, CONCURRENCY, put, get)

        bridges: dict[str, ArtifactsBridge] = {}
        backends: dict[str, S3Backend] = {}

        def fresh(client: str) -> Callable[[], Awaitable[object]]:
            async def setup() -> None:  # untimed: a new store each round, so ids and objects start from nothing
                if client in backends:
                    await backends[client].aclose()
                backends[client] = open_backend(server, client)
                bridges[client] = ArtifactsBridge(backend=backends[client], concurrency=CONCURRENCY)

            return setup

        def through_bridge(client: str) -> Callable[[], Awaitable[object]]:
            return lambda: store_and_load(bridges[client], pages, CONCURRENCY)

        cases = [
            Case("raw aioboto3 put_object(If-None-Match) + get_object", raw_sdk, 2 * COUNT),
            Case("raw obstore put_async(create) + get_async", raw_obstore, 2 * COUNT),
            Case("bridge store_page + load_page, aioboto3 path", through_bridge("sdk"), 2 * COUNT, fresh("sdk")),
            Case("bridge store_page + load_page, obstore path", through_bridge("obstore"), 2 * COUNT, fresh("obstore")),
        ]
        await compare(f"S3 ({server.endpoint}): {COUNT} x {SIZE // 1024} KiB pages, concurrency {CONCURRENCY}", cases)
        for backend in backends.values():
            await backend.aclose()


# -- (1b): client CPU of one store_page ---------------------------------------------------------------------


async def raw_sdk_put(
    raw: Any, bucket: str, key: str, body: bytes, metadata: dict[str, str], tags: dict[str, str]
) -> None:
    """What the bridge's aioboto3 path sends for one page, by hand."""
    await raw.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        Metadata=metadata,
        Tagging=encode_tags(tags),
        StorageClass="STANDARD",
        IfNoneMatch="*",
    )


def raw_store(server: Server) -> S3Store:
    return S3Store(
        server.new_store()["bucket"],
        endpoint=server.endpoint,
        region=REGION,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        client_options={"allow_http": True},
    )


async def bench_client_cpu(server: Server) -> None:
    """CPU this process spends per stored 2 KiB page (the emulator runs in another process)."""
    body, metadata, tags = await what_the_bridge_sends(server)
    pages = text_pages(COUNT, SIZE)
    attributes = {**metadata, "Storage-Class": "STANDARD"}
    credentials = {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY}
    async with aioboto3.Session().client("s3", endpoint_url=server.endpoint, region_name=REGION, **credentials) as raw:
        stores: dict[str, S3Store] = {}
        buckets: dict[str, str] = {}
        # Like the raw aioboto3 client, each bridge is built once, and warmed (its SDK client made, its block of
        # ids claimed) before anything is timed; every repetition then only stores pages.
        bridges = {
            c: ArtifactsBridge(backend=open_backend(server, c), concurrency=CONCURRENCY) for c in ("sdk", "obstore")
        }
        for bridge in bridges.values():
            await bridge.store_page(pages[0])

        async def setup() -> None:
            stores["raw"] = raw_store(server)
            buckets["raw"] = server.new_store()["bucket"]

        async def raw_obstore() -> None:
            await bounded(
                COUNT,
                CONCURRENCY,
                lambda i: obstore.put_async(
                    stores["raw"], f"p{i}", body, attributes=attributes, tags=tags, mode="create"
                ),
            )

        async def raw_sdk() -> None:
            async def put(i: int) -> None:
                await raw_sdk_put(raw, buckets["raw"], f"p{i}", body, metadata, tags)

            await bounded(COUNT, CONCURRENCY, put)

        codec = bridges["obstore"].codec

        async def floor_put(i: int) -> None:
            # What store_page must do for any page, and nothing of its layers: validate, encode, frame under the
            # key, describe as metadata and tags; then the one request, as raw obstore sends it.
            page = as_page(pages[i])
            tier = resolve_tier(page, None)
            key = f"f{i}"
            encoded = codec.frame_page(codec.prepare_page(page), key)
            described = codec.object_metadata(page, tier, None, encoded, key, METADATA_BUDGET)
            sent = {**described, TIER_MARKER: tier.value, "Storage-Class": "STANDARD"}
            data = encoded.head + bytes(encoded.body)
            await obstore.put_async(
                stores["raw"], key, data, attributes=sent, tags=dict(codec.page_tags(page, tier)), mode="create"
            )

        async def floor() -> None:
            await bounded(COUNT, CONCURRENCY, floor_put)

        def bridged(client: str) -> Callable[[], Awaitable[object]]:
            return lambda: bounded(COUNT, CONCURRENCY, lambda i: bridges[client].store_page(pages[i]))

        results = await compare(
            f"client CPU per stored {SIZE // 1024} KiB page, S3 ({server.endpoint}), concurrency {CONCURRENCY}",
            [
                Case("raw obstore put_async(create)", raw_obstore, COUNT, setup),
                Case("raw aioboto3 put_object(If-None-Match)", raw_sdk, COUNT, setup),
                Case("floor: store_page's encoding, raw obstore put", floor, COUNT, setup),
                Case("bridge store_page, obstore path", bridged("obstore"), COUNT, setup),
                Case("bridge store_page, aioboto3 path", bridged("sdk"), COUNT, setup),
            ],
            measure="cpu",
            rounds=max(ROUNDS, CPU_ROUNDS),
        )
        for bridge in bridges.values():
            await bridge.aclose()
        del results


# -- (2): checkpoints ---------------------------------------------------------------------------------------


async def bench_checkpoints(server: Server) -> None:
    pages = [
        MemoryPage(page_id=f"page{i}", modality=Modality.TEXT, content=f"{i}:" * (SIZE // 4)) for i in range(PAGES)
    ]
    body, metadata, tags = await what_the_bridge_sends(server)
    attributes = {**metadata, "Storage-Class": "STANDARD"}

    def raw_obstore() -> Callable[[], Awaitable[object]]:
        async def run() -> None:
            store = raw_store(server)
            await bounded(
                PAGES,
                CONCURRENCY,
                lambda i: obstore.put_async(store, f"p{i}", body, attributes=attributes, tags=tags, mode="create"),
            )

        return run

    def checkpoint(client: str) -> Callable[[], Awaitable[object]]:
        async def run() -> None:
            async with open_backend(server, client) as backend:
                await ArtifactsBridge(backend=backend, concurrency=CONCURRENCY).checkpoint(pages, "bench")

        return run

    cases = [
        Case(f"raw obstore put_async(create) of {PAGES} bodies, concurrency {CONCURRENCY}", raw_obstore(), PAGES),
        Case(f"bridge.checkpoint of {PAGES} pages, obstore path", checkpoint("obstore"), PAGES),
        Case(f"bridge.checkpoint of {PAGES} pages, aioboto3 path", checkpoint("sdk"), PAGES),
    ]
    await compare(f"Checkpoint of {PAGES} x {SIZE // 1024} KiB pages", cases)
    await bench_incremental_checkpoint(server, pages)


async def bench_incremental_checkpoint(server: Server, pages: list[MemoryPage]) -> None:
    puts: Counter[str] = Counter()

    def count(request: web.Request) -> None:
        puts[s3_operation(request.method, request.path, request.query, request.headers)] += 1

    changed = max(1, len(pages) // 100)
    async with FaultProxy(server.endpoint, decide=count) as proxy:
        spec = {**server.new_store(), "endpoint": proxy.url}
        async with load("s3_moto").open_backend(spec) as backend:
            bridge = ArtifactsBridge(backend=backend, concurrency=CONCURRENCY)
            await bridge.checkpoint(pages, "full")
            full = puts["PutObject"]
            puts.clear()
            second = [
                MemoryPage(page_id=p.page_id, modality=p.modality, content=f"changed {i}") if i < changed else p
                for i, p in enumerate(pages)
            ]
            await bridge.checkpoint(second, "incremental")
            proved_by_reading = Counter(puts)
            puts.clear()
            third = [
                MemoryPage(page_id=p.page_id, modality=p.modality, content=f"again {i}") if i < 2 * changed else p
                for i, p in enumerate(second)
            ]
            await bridge.checkpoint(third, "incremental, tokens recorded")
    figure(
        f"PutObject calls of a second checkpoint with {changed} of {len(pages)} pages changed",
        full=full,
        second=proved_by_reading["PutObject"],
    )
    # Each reused artifact is proved: the first reuse reads it whole (HeadObject + GetObject) and records its
    # ETag; later reuses need one HeadObject.
    for label, calls in (("second", proved_by_reading), ("third (another 1 % changed)", puts)):
        figure(
            f"Requests of the {label} checkpoint, {len(pages)} pages",
            **{operation: calls[operation] for operation in ("PutObject", "HeadObject", "GetObject")},
        )


# -- (3): memory for one big page ---------------------------------------------------------------------------


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


async def bench_big_page(server: Server, client: str) -> None:
    size = BIG_MIB * MiB
    content = os.urandom(size)
    async with open_backend(server, client) as backend:
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
    figure(
        f"One {BIG_MIB} MiB image page through the bridge, {client} path (peak RSS above the RSS before the call)",
        store_seconds=round(store_seconds, 2),
        store_extra_rss_x_page=round((store_rss.peak - store_rss.baseline) / size, 2),
        load_seconds=round(load_seconds, 2),
        load_extra_rss_x_page=round((load_rss.peak - load_rss.baseline) / size, 2),
    )


async def bench_scale(server: Server) -> None:
    """Maintenance over 1,000 and 10,000 objects on moto, through the default data path."""
    for objects in SCALE:
        async with open_backend(server, "auto") as backend:
            await populate(ArtifactsBridge(backend=backend, concurrency=CONCURRENCY), objects)
            await compare_maintenance(ArtifactsBridge(backend=backend), objects, "on moto")


async def bench() -> None:
    rig = "s3_localstack" if "--localstack" in sys.argv else "s3_moto"
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as workdir, load(rig).serve(Path(workdir)) as server:
        if "--cpu" in sys.argv:  # the client-CPU comparison alone, for repeated runs of it
            await bench_client_cpu(server)
            return
        await bench_round_trips(server)
        await bench_client_cpu(server)
        if PAGES and rig == "s3_moto":
            await bench_checkpoints(server)
        if rig == "s3_moto":
            await bench_scale(server)
        if BIG_MIB and rig == "s3_moto":
            for client in ("sdk", "obstore"):
                await bench_big_page(server, client)


if __name__ == "__main__":
    main(bench)
