"""Listing and finding pages on moto: ``tierstore ls -l`` as it streams now beside the read-everything-first listing
it replaced, and finding one page id; issue 28's comparison (its targets: first row of ``ls -l`` within 1 s, 3,000
pages within 3 s; one page id among 10,000 found in at most 3 requests).

Run: ``.venv/bin/python -m bench.bench_listing`` (starts its own moto server on 127.0.0.1 through the test rig).
``TIERSTORE_BENCH_LISTING`` sets the store sizes (default ``1000``, a few minutes on a busy 2-core machine); the
issue's sizes are ``TIERSTORE_BENCH_LISTING=3000,10000`` (about ten times as long: ``ls -l`` reads every page's
metadata, so its time grows with the store). ``TIERSTORE_BENCH_ROUNDS`` as for every benchmark (at least 3).

Per size:

* the command line, each run a subprocess as a user runs it (interpreter start included), interleaved and their
  order rotated from round to round; per run the time from start to its first row on stdout, to its last and to its
  exit, as median and min-max, with the load average seen over the rounds: ``ls -l`` of an empty store (start-up
  and one listing: the floor under every first row); ``ls`` (the listing alone) on the default data path and on the
  SDK's, and on the SDK's listed in 45 slices (``bench._ls_sliced``); ``ls -l`` before it streamed
  (``bench._ls_before``: every page's metadata read, then the table printed); ``ls`` and ``ls -l`` (a snapshot
  there) on the default data path listing through obstore as it did until 2026-12-06 (``bench._ls_obstore_listing``:
  no change token, so no catalog row proven) and as it does now (through the SDK), its first LIST page 100 keys,
  and with whole pages from the first as before 2026-12-06 (``bench._ls_whole_pages``); and on the SDK's, cold (every
  catalog snapshot deleted before the run: a ``head`` a page, then a snapshot written) and warm (a snapshot there);
* finding one page id, the requests counted by operation through a counting proxy: with the API
  (``list_page_entries`` then ``get_metadata`` until the page id matches), a scan that stops at the match (the page
  whose artifact lists in the middle, read a window of ``concurrency`` at a time) and the whole scan; and with the
  command line, ``ls --prefix ID`` (every page read) and ``ls --prefix ID --limit 1`` (reading stops at the match) on
  the default data path, and ``ls --prefix ID`` on the SDK's with a catalog snapshot there (no page read).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from tests.emulators_s3 import ACCESS_KEY, REGION, SECRET_KEY, Server, s3_operation
from tests.faults import FaultProxy
from tests.rigs import load

from bench._harness import ROUNDS, bounded, figure, main, text_pages
from tierstore import ArtifactsBridge
from tierstore.backends.s3 import S3Backend

SIZES = [int(n) for n in os.environ.get("TIERSTORE_BENCH_LISTING", "1000").split(",") if n]
CONCURRENCY = 32
"""The command line's default concurrency, used by the scans here too."""
ROOT = Path(__file__).resolve().parent.parent
BEFORE = "bench._ls_before"
"""The command line with ``ls -l`` as it was before it streamed (reads every page's metadata, then prints)."""
OBSTORE_LISTING = "bench._ls_obstore_listing"
"""The command line with S3's obstore path listing through obstore, as before 2026-12-06 (no token: no row proven)."""
SLICED = "bench._ls_sliced"
"""The command line with a cloud store listed in slices (no built-in backend says that pays off: measured here)."""
WHOLE_PAGES = "bench._ls_whole_pages"
"""The command line with ``ls -l`` streaming from a first LIST page of 1,000 keys, as before 2026-12-06."""


def open_backend(server: Server, bucket: str, endpoint: str | None = None) -> S3Backend:
    spec = {"endpoint": endpoint or server.endpoint, "bucket": bucket, "client": "auto"}
    backend: S3Backend = load("s3_moto").open_backend(spec)
    return backend


def command_environment(endpoint: str, client: str = "auto") -> dict[str, str]:
    """What reaches moto from the command line, through the data path ``client`` (``auto``: the default)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIERSTORE_", "AWS_"))}
    return env | {
        "TIERSTORE_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "TIERSTORE_CLIENT": client,
        "PYTHONPATH": os.pathsep.join(str(ROOT / part) for part in ("src", "")),  # bench._ls_before too
    }


async def timed_command(args: list[str], env: dict[str, str]) -> tuple[float, float, float, int]:
    """Seconds from start to the first row on stdout (the line after the table's header), to the last row, and to
    the process's exit; and the number of rows. stdout is a pipe, as in ``tierstore ls -l | head -2``. ``args``
    may start with ``-m MODULE`` (default ``-m tierstore``)."""
    module = ["-m", "tierstore"] if args[0] != "-m" else []
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, *module, *args, env=env, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    header = first = last = None
    lines = 0
    async for _line in process.stdout:
        lines += 1
        now = time.perf_counter() - started
        if lines == 1:
            header = now
        else:
            first = first or now
            last = now
    code = await process.wait()
    ended = time.perf_counter() - started
    if code != 0 or header is None:
        raise RuntimeError(f"tierstore {' '.join(args)} exited {code} after {lines} lines")
    return first or header, last or header, ended, lines - 1  # no rows (an empty store): the header is the answer


@dataclass(frozen=True)
class Contender:
    """One command line timed: its arguments, the data path it takes, the rows it must print, and whether the
    store's catalog snapshots are deleted before each run (cold) or made sure of (warm)."""

    args: list[str]
    client: str = "auto"
    rows: int | None = None
    catalog: str | None = None
    """None: left as it is; "cold": every snapshot deleted first; "warm": one there first (an untimed run)."""


def delete_snapshots(server: Server, bucket: str) -> int:
    """Delete the store's catalog snapshots (``cat_…``); how many there were."""
    listed = server.client.list_objects_v2(Bucket=bucket, Prefix="cat_").get("Contents", [])
    for item in listed:
        server.client.delete_object(Bucket=bucket, Key=item["Key"])
    return len(listed)


def snapshots(server: Server, bucket: str) -> int:
    return len(server.client.list_objects_v2(Bucket=bucket, Prefix="cat_").get("Contents", []))


async def bench_ls(server: Server, bucket: str, pages: int) -> None:
    url = f"s3://{bucket}"
    empty = f"s3://{server.new_store()['bucket']}"
    long = ["ls", "-l", "--url", url]
    contenders = {
        "empty store, ls -l": Contender(["ls", "-l", "--url", empty], rows=0),
        "ls": Contender(["ls", "--url", url]),
        "ls, 45 slices (sdk)": Contender(["-m", SLICED, "ls", "--url", url], client="sdk"),
        "ls (sdk)": Contender(["ls", "--url", url], client="sdk"),
        "ls -l before": Contender(["-m", BEFORE, *long]),
        "ls, obstore listing": Contender(["-m", OBSTORE_LISTING, "ls", "--url", url]),
        "ls -l warm, obstore listing": Contender(["-m", OBSTORE_LISTING, *long], catalog="warm"),
        "ls -l warm (auto)": Contender(long, catalog="warm"),
        "ls -l warm, whole pages": Contender(["-m", WHOLE_PAGES, *long], catalog="warm"),
        "ls -l cold (sdk)": Contender(long, client="sdk", catalog="cold"),
        "ls -l warm (sdk)": Contender(long, client="sdk", catalog="warm"),
    }
    names = list(contenders)

    async def run(name: str) -> tuple[float, float, float, int]:
        contender = contenders[name]
        if contender.catalog == "cold":
            delete_snapshots(server, bucket)
        elif contender.catalog == "warm" and not snapshots(server, bucket):
            await timed_command(contender.args, command_environment(server.endpoint, contender.client))
        return await timed_command(contender.args, command_environment(server.endpoint, contender.client))

    for name in names:  # warm-up: the interpreter's and the SDK's files in the page cache
        await run(name)
    times: dict[str, tuple[list[float], list[float], list[float]]] = {name: ([], [], []) for name in names}
    loads: list[float] = []
    for round_ in range(ROUNDS):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            loads.append(os.getloadavg()[0])
            first, last, ended, rows = await run(name)
            expected = pages if contenders[name].rows is None else contenders[name].rows
            assert rows == expected, f"{name} listed {rows} rows, not {expected}"
            for column, value in zip(times[name], (first, last, ended), strict=True):
                column.append(value)
    load = f"load {min(loads):.1f}-{max(loads):.1f}"
    print(f"\n## {pages:,} pages on moto, a subprocess per run, stdout a pipe ({ROUNDS} rounds, order rotated, {load})")
    print(f"{'seconds to':<28} {'first row':>10} {'min-max':>13} {'last row':>10} {'min-max':>13} {'exit':>7}")
    for name in names:
        firsts, lasts, ends = (sorted(column) for column in times[name])
        print(
            f"{name:<28} {statistics.median(firsts):>10.2f} {firsts[0]:>6.2f}-{firsts[-1]:<6.2f}"
            f" {statistics.median(lasts):>10.2f} {lasts[0]:>6.2f}-{lasts[-1]:<6.2f} {statistics.median(ends):>7.2f}"
        )
    for name in names:
        firsts, lasts, ends = (sorted(column) for column in times[name])
        figure(
            f"{name}, {pages:,} pages on moto (seconds)",
            first_row_median=round(statistics.median(firsts), 3),
            first_row_min_max=[round(firsts[0], 3), round(firsts[-1], 3)],
            last_row_median=round(statistics.median(lasts), 3),
            last_row_min_max=[round(lasts[0], 3), round(lasts[-1], 3)],
            exit_median=round(statistics.median(ends), 3),
            load_1m_min_max=[round(min(loads), 2), round(max(loads), 2)],
        )


async def find_by_scan(bridge: ArtifactsBridge, page_id: str, *, stop_at_match: bool) -> str | None:
    """Today's only way to find a page id: list the artifacts, read each one's metadata until it matches."""
    entries = await bridge.list_page_entries()
    keys = sorted(entry.artifact_id for entry in entries)
    found = None
    for start in range(0, len(keys), CONCURRENCY):
        window = keys[start : start + CONCURRENCY]
        described = await asyncio.gather(*(bridge.get_metadata(key) for key in window))
        for key, meta in zip(window, described, strict=True):
            if meta is not None and meta.page_id == page_id:
                found = key
        if found is not None and stop_at_match:
            break
    return found


async def bench_find(server: Server, bucket: str, pages: int, target: str, page_id: str) -> None:
    calls: Counter[str] = Counter()

    def count(request: web.Request) -> None:
        calls[s3_operation(request.method, request.path, request.query, request.headers)] += 1

    async with FaultProxy(server.endpoint, decide=count) as proxy, open_backend(server, bucket, proxy.url) as backend:
        bridge = ArtifactsBridge(backend=backend, concurrency=CONCURRENCY)
        for stop_at_match, label in ((True, "a scan that stops at the match"), (False, "the whole scan")):
            calls.clear()
            started = time.perf_counter()
            found = await find_by_scan(bridge, page_id, stop_at_match=stop_at_match)
            seconds = time.perf_counter() - started
            assert found == target, (found, target)
            figure(
                f"Finding one page id among {pages:,} pages on moto, the API: {label}",
                requests=sum(calls.values()),
                **dict(sorted(calls.items())),
                seconds_through_the_counting_proxy=round(seconds, 2),
            )
        runs = [
            ("auto", [], "ls --prefix ID"),
            ("auto", ["--limit", "1"], "ls --prefix ID --limit 1"),
            ("sdk", [], "ls --prefix ID, SDK path, a catalog snapshot there"),
        ]
        for client, limit, label in runs:
            if client == "sdk" and not snapshots(server, bucket):
                await timed_command(["ls", "-l", "--url", f"s3://{bucket}"], command_environment(proxy.url, client))
            calls.clear()
            started = time.perf_counter()
            args = ["ls", "--url", f"s3://{bucket}", "--prefix", page_id, *limit]
            _, _, _, rows = await timed_command(args, command_environment(proxy.url, client))
            seconds = time.perf_counter() - started
            assert rows == 1, f"{label} listed {rows} rows"
            figure(
                f"Finding one page id among {pages:,} pages on moto, the command line: {label}",
                requests=sum(calls.values()),
                **dict(sorted(calls.items())),
                seconds_through_the_counting_proxy=round(seconds, 2),
            )


async def bench_size(server: Server, pages: int) -> None:
    bucket = server.new_store()["bucket"]
    async with open_backend(server, bucket) as backend:
        bridge = ArtifactsBridge(backend=backend, concurrency=64)
        stored = text_pages(pages, 512, stem="msg")
        artifacts: dict[int, str] = {}

        async def store(i: int) -> None:
            artifacts[i] = await bridge.store_page(stored[i])

        started = time.perf_counter()
        await bounded(pages, 64, store)
        print(f"\n(stored {pages:,} pages of 512 bytes in {time.perf_counter() - started:.1f} s, not timed below)")
    middle = sorted(artifacts.values())[pages // 2]
    page_id = stored[next(i for i, a in artifacts.items() if a == middle)].page_id
    await bench_ls(server, bucket, pages)
    await bench_find(server, bucket, pages, middle, page_id)


async def bench() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="bench-listing-") as workdir,
        load("s3_moto").serve(Path(workdir)) as server,
    ):
        for pages in SIZES:
            await bench_size(server, pages)


if __name__ == "__main__":
    main(bench)
