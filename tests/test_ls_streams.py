"""``tierstore ls -l`` streams: each row is printed once its page's metadata and every row's before it have come,
not after every page's (the command run in this process, on a backend that holds back the metadata of all but the
first pages until it has looked at what was printed). No clock: the held-back reads wait for the event loop to have
turned, a bounded number of times, after the first pages' reads returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import json
from typing import Any

import pytest

from tests.conftest import Store
from tierstore import ArtifactsBridge, MemoryPage, Modality
from tierstore.backends.base import ObjectInfo, StorageBackend
from tierstore.cli import app, exit_codes
from tierstore.cli.context import Invocation
from tierstore.concurrency import bounded_in_order
from tierstore.errors import BackendUnavailableError

pytestmark = pytest.mark.bridge_only  # the command sees nothing but the bridge; the rigs' heads are proven elsewhere

PAGES = 12
FIRST = 3
"""The pages whose metadata comes at once; the others' waits until the loop has turned after those came."""
TURNS = 1000
"""Event-loop turns a held-back read allows for the first rows to be printed: they take a handful."""


class HeldBack:
    """Delegates to ``inner``; the first ``first`` heads go through, the others wait until those have returned and
    the loop has turned (at most ``TURNS`` times, until ``printed()`` reaches ``first``), note ``printed()``, then go
    through too (or fail, with ``fail``)."""

    def __init__(self, inner: StorageBackend, first: int, printed: Any, fail: bool = False) -> None:
        self.inner = inner
        self.first = first
        self.printed = printed
        self.fail = fail
        self.heads = 0
        self.returned = 0
        self.first_returned = asyncio.Event()
        self.seen_while_held: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def head(self, key: str) -> ObjectInfo | None:
        self.heads += 1
        if self.heads <= self.first:
            try:
                return await self.inner.head(key)
            finally:
                self.returned += 1
                if self.returned == self.first:
                    self.first_returned.set()
        await self.first_returned.wait()
        for _ in range(TURNS):
            if self.printed() >= self.first:
                break
            await asyncio.sleep(0)
        self.seen_while_held.append(self.printed())
        if self.fail:
            raise BackendUnavailableError(f"injected: no metadata for {key}")
        return await self.inner.head(key)


def fill(store: Store, pages: int) -> list[str]:
    async def run() -> list[str]:
        async with ArtifactsBridge(backend=store.open()) as bridge:
            return [
                await bridge.store_page(MemoryPage(page_id=f"page_{n}", modality=Modality.TEXT, content=str(n)))
                for n in range(pages)
            ]

    return asyncio.run(run())


def printed_rows(out: io.StringIO, json_lines: bool) -> int:
    text = out.getvalue()
    return text.count('"page_id"') if json_lines else max(0, text.count("\n") - 1)  # the header's line


def run_ls(
    store: Store, monkeypatch: pytest.MonkeyPatch, *args: str, first: int = FIRST, fail: bool = False
) -> tuple[int, str, HeldBack]:
    """``tierstore ls ARGS`` in this process on ``store`` through a :class:`HeldBack`; exit code, stdout, wrapper."""
    out = io.StringIO()
    held: list[HeldBack] = []

    def backend(self: Invocation, url: str | None = None, *, existing: bool = True) -> StorageBackend:
        held.append(HeldBack(store.open(), first, lambda: printed_rows(out, "--json" in args), fail))
        return held[-1]

    monkeypatch.setattr(Invocation, "backend", backend)
    monkeypatch.setenv("TIERSTORE_CONCURRENCY", "4")
    with contextlib.redirect_stdout(out):
        code = app.main(["ls", "--url", "memory://", *args])
    return code, out.getvalue(), held[0]


@pytest.mark.parametrize("output", ["table", "json"])
def test_the_first_rows_are_printed_before_the_other_pages_metadata_comes(
    store: Store, monkeypatch: pytest.MonkeyPatch, output: str
) -> None:
    artifacts = sorted(fill(store, PAGES))  # key order: mem_L3_10 before mem_L3_2
    code, stdout, held = run_ls(store, monkeypatch, "-l", *(["--json"] if output == "json" else []))
    assert code == 0
    assert held.seen_while_held[0] == FIRST  # printed while every other page's metadata was still held back
    assert held.heads == PAGES
    if output == "json":
        listed = json.loads(stdout)  # still one JSON document, the same as printed at once
        assert stdout == json.dumps(listed, indent=2, ensure_ascii=False) + "\n"
        assert [row["artifact_id"] for row in listed] == artifacts
    else:
        assert [line.split()[0] for line in stdout.splitlines()[1:]] == artifacts  # the listing's order


def test_a_filter_with_a_limit_stops_reading_at_the_last_match(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    artifacts = fill(store, PAGES)
    page_of = {artifact: f"page_{n}" for n, artifact in enumerate(artifacts)}
    listed = sorted(artifacts)
    match = next(i for i, artifact in enumerate(listed) if page_of[artifact].startswith("page_1"))
    code, stdout, held = run_ls(store, monkeypatch, "--prefix", "page_1", "--limit", "1", "--json", first=match + 1)
    assert code == 0
    assert [row["page_id"] for row in json.loads(stdout)] == [page_of[listed[match]]]
    assert held.heads <= match + 1 + 4  # at most a window (4) of reads begin after the first match


@pytest.mark.parametrize("output", ["table", "json"])
def test_an_error_midway_keeps_the_rows_printed_and_ends_as_errors_do(
    store: Store, monkeypatch: pytest.MonkeyPatch, output: str, capsys: pytest.CaptureFixture[str]
) -> None:
    artifacts = sorted(fill(store, PAGES))
    as_json = ["--json"] if output == "json" else []
    code, stdout, held = run_ls(store, monkeypatch, "-l", *as_json, fail=True)
    assert code == exit_codes.of_error(BackendUnavailableError("x"))
    assert held.seen_while_held[0] == FIRST
    assert "BackendUnavailableError: injected: no metadata for" in capsys.readouterr().err
    if output == "json":
        with pytest.raises(json.JSONDecodeError):
            json.loads(stdout)  # no parser takes the unfinished listing for a whole one
        body, error = stdout.split("\n{\n", 1)
        assert [row["artifact_id"] for row in json.loads(body + "\n]")] == artifacts[:FIRST]
        assert json.loads("{" + error)["error"] == "BackendUnavailableError"  # the error's document, as ever
    else:
        assert [line.split()[0] for line in stdout.splitlines()[1:]] == artifacts[:FIRST]


def test_results_come_in_order_as_soon_as_those_before_them_are_done() -> None:
    async def run() -> None:
        gates = [asyncio.Event() for _ in range(8)]
        running: set[int] = set()

        async def job(n: int) -> int:
            running.add(n)
            try:
                await gates[n].wait()
                if n == 5:
                    raise BackendUnavailableError("the sixth")
                return n
            finally:
                running.discard(n)

        jobs = [job(n) for n in range(8)]
        results = bounded_in_order(jobs, 3)
        async with contextlib.aclosing(results):
            gates[1].set()
            gates[0].set()
            assert await anext(results) == [0, 1]  # done together: one batch
            assert running == {2, 3, 4}  # at most 3 at once; 2 is the one waited for
            gates[4].set()
            gates[3].set()
            await asyncio.sleep(0)
            assert running == {2, 5, 6}  # 3 and 4 are done, and wait for 2
            gates[2].set()
            assert await anext(results) == [2, 3, 4]
        assert running == set()  # closed early: what ran is cancelled and awaited, what never started is closed
        assert inspect.getcoroutinestate(jobs[7]) == inspect.CORO_CLOSED

        jobs = [job(n) for n in range(8)]
        for gate in gates:
            gate.set()
        seen: list[int] = []

        async def consume() -> None:
            async with contextlib.aclosing(bounded_in_order(jobs, 3)) as failing:
                async for batch in failing:
                    seen.extend(batch)

        with pytest.raises(BackendUnavailableError, match="the sixth"):
            await consume()
        assert seen == [0, 1, 2, 3, 4][: len(seen)]  # the failure is raised at the consumer's next step
        assert running == set()
        assert {inspect.getcoroutinestate(job) for job in jobs} == {inspect.CORO_CLOSED}

    asyncio.run(run())
