"""What a scope's registration costs a ``store_page`` on moto (round 13a: every write looks at the scope's registry
records, ``src/tierstore/artifacts/scoped.py``), side by side with a bridge that looks once and remembers (the old
behaviour, minus its re-registration once a minute).

Run: ``.venv/bin/python -m bench.bench_registration`` (starts its own moto server on 127.0.0.1 through the test rig).
Every HTTP request reaching moto is counted by operation through a counting proxy for one ``store_page`` into a
registered session's scope and into its user's; then ``TIERSTORE_BENCH_STORES`` (default 200) stores are timed one
after the other (the latency a caller sees) and 32 at a time, both ways, interleaved and rotated.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from tests.emulators_s3 import Server, s3_operation
from tests.faults import FaultProxy
from tests.rigs import load

from bench._harness import Case, bounded, compare, figure, main, text_pages
from bench.bench_listing import open_backend
from tierstore import ArtifactsBridge
from tierstore.artifacts.scoped import ScopedArtifacts

STORES = int(os.environ.get("TIERSTORE_BENCH_STORES", "200"))


def remembering(bridge: ArtifactsBridge) -> ArtifactsBridge:
    """``bridge`` with each scope's look made once and then remembered (what the look costs, taken away)."""
    for place in bridge._places.places:  # the bench takes the look out of a real bridge
        artifacts = place.artifacts
        assert isinstance(artifacts, ScopedArtifacts)
        looked: list[bool] = []
        ensure = artifacts.ensure_registered

        async def once(ensure: object = ensure, looked: list[bool] = looked) -> None:
            if not looked:
                await ensure()  # type: ignore[operator]
                looked.append(True)

        artifacts.ensure_registered = once  # type: ignore[method-assign]
    return bridge


async def bench_on(server: Server) -> None:
    bucket = server.new_store()["bucket"]
    calls: Counter[str] = Counter()

    def count(request: web.Request) -> None:
        calls[s3_operation(request.method, request.path, request.query, request.headers)] += 1

    async with FaultProxy(server.endpoint, decide=count) as proxy, open_backend(server, bucket, proxy.url) as backend:
        for name, bridge in {"every write looks": ArtifactsBridge(backend, user_id="u", session_id="s")}.items():
            for scope in ("session", "user"):
                for n in range(3):  # the first registers and claims a block of ids
                    calls.clear()
                    await bridge.store_page(text_pages(1, 512, stem=f"{scope}{n}")[0], scope=scope)
                figure(
                    f"one store_page into a registered {scope}'s scope on moto ({name})",
                    requests=sum(calls.values()),
                    **calls,
                )

    async with open_backend(server, bucket) as backend:
        looking = ArtifactsBridge(backend, user_id="u", session_id="s")
        remembered = remembering(ArtifactsBridge(backend, user_id="u", session_id="s"))
        pages = text_pages(STORES, 512, stem="timed")

        def stores(bridge: ArtifactsBridge, concurrency: int) -> Callable[[], Awaitable[None]]:
            return lambda: bounded(STORES, concurrency, lambda i: bridge.store_page(pages[i]))

        for concurrency in (1, 32):
            await compare(
                f"{STORES} store_page of 512 bytes into a session's scope on moto, {concurrency} at a time",
                [
                    Case(
                        f"remembers its look (before), {concurrency} at a time", stores(remembered, concurrency), STORES
                    ),
                    Case(f"every write looks (now), {concurrency} at a time", stores(looking, concurrency), STORES),
                ],
                rounds=3,
            )


async def bench() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="bench-registration-") as workdir,
        load("s3_moto").serve(Path(workdir)) as server,
    ):
        await bench_on(server)


if __name__ == "__main__":
    main(bench)
