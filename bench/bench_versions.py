"""Finding a page id's latest version on moto, in requests on the wire (issue 28: one page id among 10,000 pages in at
most 3 requests), beside what a store without versions needs (``bench.bench_listing`` measures that scan).

Run: ``.venv/bin/python -m bench.bench_versions`` (starts its own moto server on 127.0.0.1 through the test rig).
``TIERSTORE_BENCH_VERSIONS`` sets the store sizes (default ``1000``; the issue's is ``10000``, a few minutes on a busy
2-core machine: each store of a bound bridge is a listing and two writes). A bridge bound to a user and session stores
that many pages of distinct page ids, and one page id three times more (versions); then every HTTP request reaching
moto is counted by operation through a counting proxy for: the latest version, a given version, a page id that only
the user's scope holds (a listing of each scope), an absent page id, and ``list_versions``. Counts do not depend on
the store's size: only the page id's own records are listed.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from pathlib import Path

from aiohttp import web
from tests.emulators_s3 import Server, s3_operation
from tests.faults import FaultProxy
from tests.rigs import load

from bench._harness import bounded, figure, main, text_pages
from bench.bench_listing import open_backend
from tierstore import ArtifactsBridge, MemoryPage, Modality

SIZES = [int(n) for n in os.environ.get("TIERSTORE_BENCH_VERSIONS", "1000").split(",") if n]
USER, SESSION = "bench-user", "bench-session"


async def bench_size(server: Server, pages: int) -> None:
    bucket = server.new_store()["bucket"]
    async with open_backend(server, bucket) as backend:
        bridge = ArtifactsBridge(backend=backend, user_id=USER, session_id=SESSION, concurrency=64)
        stored = text_pages(pages, 512, stem="msg")
        started = time.perf_counter()
        await bounded(pages, 64, lambda i: bridge.store_page(stored[i]))
        for n in range(3):
            await bridge.store_page(MemoryPage(page_id="target", modality=Modality.TEXT, content=f"version {n + 1}"))
        await bridge.store_page(MemoryPage(page_id="shared", modality=Modality.TEXT, content="x"), scope="user")
        print(f"\n(stored {pages + 4:,} pages in {time.perf_counter() - started:.1f} s, not counted below)")

    calls: Counter[str] = Counter()

    def count(request: web.Request) -> None:
        calls[s3_operation(request.method, request.path, request.query, request.headers)] += 1

    async with FaultProxy(server.endpoint, decide=count) as proxy, open_backend(server, bucket, proxy.url) as backend:
        bridge = ArtifactsBridge(backend=backend, user_id=USER, session_id=SESSION)
        lookups: dict[str, tuple[str, int | None, str | None]] = {
            "the latest version": ("target", None, "version 3"),
            "version 1": ("target", 1, "version 1"),
            "a page id only the user's scope holds": ("shared", None, "x"),
            "an absent page id": ("absent", None, None),
        }
        for label, (page_id, version, expected) in lookups.items():
            calls.clear()
            loaded = await bridge.load_page_id(page_id, version)
            assert (None if loaded is None else loaded.content) == expected, label
            figure(f"load_page_id among {pages:,} pages on moto: {label}", requests=sum(calls.values()), **calls)
        calls.clear()
        versions = await bridge.list_versions("target")
        assert [v.version for v in versions] == [3, 2, 1]
        figure(f"list_versions of 3 versions among {pages:,} pages on moto", requests=sum(calls.values()), **calls)


async def bench() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="bench-versions-") as workdir,
        load("s3_moto").serve(Path(workdir)) as server,
    ):
        for pages in SIZES:
            await bench_size(server, pages)


if __name__ == "__main__":
    main(bench)
