"""``tierstore ls -l`` describes pages through the store's catalog: a second listing reads no page that did not
change, a changed or new page is read again, and the rows are those ``get_metadata`` gives, at the root and in a
scope (a session's pages and its user's, a user page its session deleted left out). The filters (``--tier``,
``--modality``, ``--page-type``, ``--prefix``, ``--meta KEY=VALUE``) give exactly the pages that match.

The command runs in this process on the rig's store through a wrapper counting its ``head`` requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import Store
from tierstore import ArtifactsBridge, MemoryPage, Modality, PageType, StorageTier, ids
from tierstore.backends import disk_format
from tierstore.backends.base import ListEntry, ObjectInfo, StorageBackend
from tierstore.catalog import FOLD_AT
from tierstore.cli import app, exit_codes
from tierstore.cli.context import Invocation
from tierstore.cli.render import to_plain
from tierstore.errors import (
    AccessDeniedError,
    BackendUnavailableError,
    ConflictError,
    StorageFullError,
    TierstoreError,
)
from tierstore.scopes import scope_prefix

pytestmark = pytest.mark.bridge_only  # the catalog's trust in each rig's listing is proven by its own contract tests


@pytest.fixture(autouse=True)
def settled_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local disk withholds a file's change token for 2 s after a write (a write in the same clock tick could
    leave it unchanged: tierstore.backends.disk_format); these tests wait for none, the catalog's own do."""
    monkeypatch.setattr(disk_format, "SETTLED_NS", 0)


PAGES = FOLD_AT + 4
"""Enough answers for the first listing to write a snapshot."""
SCOPE = ["--user", "u", "--session", "s"]


class CountingHeads:
    """``inner``, counting its ``head`` requests."""

    def __init__(self, inner: StorageBackend) -> None:
        self.inner = inner
        self.heads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def head(self, key: str) -> ObjectInfo | None:
        self.heads += 1
        return await self.inner.head(key)


class InOrderByThrees:
    """``inner``, listing its keys sorted, three at a time with a turn of the event loop between (as a cloud's
    listing pages come), and saying so (``ordered_listing``): ``ls -l`` merges such places as their pages come."""

    ordered_listing = True

    def __init__(self, inner: StorageBackend) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        entries = sorted([entry async for entry in self.inner.list(prefix)], key=lambda entry: entry.key)
        for n, entry in enumerate(entries):
            if n % 3 == 0:
                await asyncio.sleep(0)
            yield entry


def ls(store: Store, monkeypatch: pytest.MonkeyPatch, *args: str, ordered: bool = False) -> tuple[int, str, int]:
    """``tierstore ls ARGS`` in this process on ``store`` (``ordered``: through :class:`InOrderByThrees`): exit
    code, stdout, and the heads it made."""
    out = io.StringIO()
    opened: list[CountingHeads] = []

    def backend(self: Invocation, url: str | None = None, *, existing: bool = True) -> StorageBackend:
        inner = store.open()
        opened.append(CountingHeads(InOrderByThrees(inner) if ordered else inner))
        return opened[-1]

    monkeypatch.setattr(Invocation, "backend", backend)
    with contextlib.redirect_stdout(out):
        code = app.main(["ls", "--url", "memory://", *args])
    return code, out.getvalue(), sum(o.heads for o in opened)


def page(n: int, **fields: Any) -> MemoryPage:
    kinds = list(PageType)
    return MemoryPage(
        page_id=f"page_{n}",
        modality=[Modality.TEXT, Modality.IMAGE][n % 2],
        page_type=kinds[n % len(kinds)],
        content=str(n),
        metadata={"team": ["red", "blue"][n % 2], "n": str(n), "odd=key": "a=b"},
        **fields,
    )


async def store_pages(backend: StorageBackend, pages: list[MemoryPage], **scope: Any) -> list[str]:
    async with ArtifactsBridge(backend=backend, **scope) as bridge:
        tiers = [StorageTier.L2, StorageTier.L3]  # no archive tier: an archived page is never cached (asked each time)
        return [await bridge.store_page(p, tier=tiers[i % 2]) for i, p in enumerate(pages)]


async def truth(backend: StorageBackend, **scope: Any) -> list[dict[str, Any]]:
    """What ``ls -l --json`` must print: every listed page's ``get_metadata``, with its stored time, in key order."""
    async with ArtifactsBridge(backend=backend, **scope) as bridge:
        rows = []
        for entry in sorted(await bridge.list_page_entries(), key=lambda entry: entry.artifact_id):
            meta = await bridge.get_metadata(entry.artifact_id)
            assert meta is not None
            rows.append({**meta.model_dump(), "last_modified": entry.last_modified})
        plain: list[dict[str, Any]] = json.loads(json.dumps(to_plain(rows)))
        return plain


def as_rows(stdout: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(stdout)
    return rows


def snapshots(store: Store) -> list[str]:
    async def run() -> list[str]:
        return [e.key async for e in store.open().list("") if e.key.startswith("cat_") or ".cat_" in e.key]

    return asyncio.run(run())


def test_a_second_listing_reads_only_the_pages_that_changed(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    artifacts = asyncio.run(store_pages(store.open(), [page(n) for n in range(PAGES)]))
    code, first, heads = ls(store, monkeypatch, "-l", "--json")
    assert (code, heads) == (0, PAGES)  # no snapshot yet: every page asked
    assert len(snapshots(store)) == 1  # what it read is kept
    code, second, heads = ls(store, monkeypatch, "-l", "--json")
    assert (code, heads) == (0, 0)
    assert second == first
    assert [row["artifact_id"] for row in as_rows(second)] == sorted(artifacts)

    async def change() -> str:
        async with ArtifactsBridge(backend=store.open()) as bridge:
            await bridge.set_tier(artifacts[0], StorageTier.L3)  # stored in L2
            await bridge.delete_page(artifacts[1])
            return await bridge.store_page(page(PAGES))

    added = asyncio.run(change())
    code, third, heads = ls(store, monkeypatch, "-l", "--json")
    assert (code, heads) == (0, 2)  # the page moved and the new one
    assert as_rows(third) == asyncio.run(truth(store.open()))
    assert added in {row["artifact_id"] for row in as_rows(third)}
    assert artifacts[1] not in {row["artifact_id"] for row in as_rows(third)}


@pytest.mark.parametrize("ordered", [False, True], ids=["listed-whole", "listed-in-order-by-threes"])
def test_a_scope_lists_its_sessions_and_its_users_pages_through_their_catalogs(
    store: Store, monkeypatch: pytest.MonkeyPatch, ordered: bool
) -> None:
    backend = store.open()
    shared = asyncio.run(store_pages(backend, [page(n) for n in range(PAGES)], user_id="u"))
    asyncio.run(store_pages(backend, [page(100 + n) for n in range(PAGES)], user_id="u", session_id="s"))
    asyncio.run(store_pages(backend, [page(200 + n) for n in range(3)]))  # the root's: not listed in the scope

    async def delete_a_shared_page_in_the_session() -> None:
        async with ArtifactsBridge(backend=store.open(), user_id="u", session_id="s") as bridge:
            assert await bridge.delete_page(shared[2])

    asyncio.run(delete_a_shared_page_in_the_session())
    expected = asyncio.run(truth(store.open(), user_id="u", session_id="s"))
    assert {row["page_id"] for row in expected} >= {"page_0", "page_100"}  # both scopes' pages are there
    code, first, heads = ls(store, monkeypatch, "-l", "--json", *SCOPE, ordered=ordered)
    assert code == 0
    assert as_rows(first) == expected
    code, second, heads = ls(store, monkeypatch, "-l", "--json", *SCOPE, ordered=ordered)
    assert (code, heads, second) == (0, 0, first)


class OneListingFails(InOrderByThrees):
    """Lists in order by threes, but the listing of one place's pages (under ``failing``) fails while every other
    place's listing of its pages is still waiting for its first page."""

    failing = ""

    async def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        if prefix == self.failing:
            await asyncio.sleep(0)
            raise BackendUnavailableError("injected: the listing broke off")
        if prefix.endswith(ids.PAGE_PREFIX + "L"):
            await asyncio.Event().wait()  # until cancelled
        async for entry in super().list(prefix):
            yield entry


@pytest.mark.parametrize("place", ["user", "session"])
@pytest.mark.parametrize("output", [[], ["--json"]])
def test_a_listing_failing_in_one_place_while_another_lists_ends_as_errors_do(
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    place: str,
    output: list[str],
) -> None:
    asyncio.run(store_pages(store.open(), [page(n) for n in range(PAGES)], user_id="u"))
    asyncio.run(store_pages(store.open(), [page(100 + n) for n in range(PAGES)], user_id="u", session_id="s"))
    scope = scope_prefix("u", "s" if place == "session" else None)
    monkeypatch.setattr(OneListingFails, "failing", scope + "mem_L")
    monkeypatch.setattr(Invocation, "backend", lambda self, url=None, existing=True: OneListingFails(store.open()))
    code = app.main(["ls", "--url", "memory://", "-l", *output, *SCOPE])
    err = capsys.readouterr().err
    assert code == exit_codes.of_error(BackendUnavailableError("x"))
    assert "BackendUnavailableError: injected: the listing broke off" in err
    assert "Traceback" not in err
    assert "RuntimeError" not in err


@pytest.mark.parametrize(
    "args",
    [
        ["--tier", "L3"],
        ["--modality", "image"],
        ["--page-type", "summary"],
        ["--page-type", "transcript", "--modality", "text"],
        ["--prefix", "page_1"],
        ["--meta", "team=red"],
        ["--meta", "team=blue", "--meta", "n=3"],
        ["--meta", "odd=key=a=b", "--tier", "L2"],
        ["--meta", "team=green"],
        ["--meta", "team=red", "--prefix", "page_1", "--limit", "2"],
        ["--meta", "team=red", "--limit", "3"],  # the first rows in key order (mem_L3_11 before mem_L3_3)
        ["--page-type", "claim", "--limit", "1"],
        ["--meta", "team=red", "--limit", "0"],
        ["--tier", "L2", "--limit", "0"],
    ],
    ids=" ".join,
)
def test_a_filter_lists_exactly_the_pages_that_match(
    store: Store, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    pages = [page(n) for n in range(PAGES)]
    artifacts = asyncio.run(store_pages(store.open(), pages))
    by_artifact = dict(zip(artifacts, pages, strict=True))
    every = asyncio.run(truth(store.open()))
    wanted = dict(zip(args[::2], args[1::2], strict=True))
    metas = [a.partition("=")[::2] for flag, a in zip(args[::2], args[1::2], strict=True) if flag == "--meta"]

    def matches(row: dict[str, Any]) -> bool:
        own = by_artifact[row["artifact_id"]].metadata
        return (
            row["tier"] == wanted.get("--tier", row["tier"])
            and row["modality"] == wanted.get("--modality", row["modality"])
            and row["page_type"] == wanted.get("--page-type", row["page_type"])
            and row["page_id"].startswith(wanted.get("--prefix", ""))
            and all(own.get(key) == value for key, value in metas)
        )

    expected = [row for row in every if matches(row)][: int(wanted.get("--limit", len(every)))]
    code, stdout, _ = ls(store, monkeypatch, "--json", *args)
    assert code == 0
    assert as_rows(stdout) == expected


@pytest.mark.parametrize("bad", ["novalue", "=value"])
def test_a_meta_filter_needs_a_key_and_an_equals_sign(
    store: Store, monkeypatch: pytest.MonkeyPatch, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        ls(store, monkeypatch, "--meta", bad)
    assert exited.value.code == exit_codes.USAGE
    assert "KEY=VALUE" in capsys.readouterr().err


class RefusingWrites(CountingHeads):
    """``inner``, every write refused with ``error``: a read-only store, a full one, one that went away."""

    def __init__(self, inner: StorageBackend, error: TierstoreError) -> None:
        super().__init__(inner)
        self.error = error

    async def put(self, *args: Any, **kwargs: Any) -> None:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        AccessDeniedError("read-only credentials"),
        StorageFullError("no space left"),
        BackendUnavailableError("gone away"),
        ConflictError("another wrote it"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_store_that_refuses_the_snapshot_is_listed_all_the_same(
    store: Store, monkeypatch: pytest.MonkeyPatch, error: TierstoreError, capsys: pytest.CaptureFixture[str]
) -> None:
    """``ls`` reads: a store it may not write to (or cannot, now) is listed in full, exit 0, each time asking every
    page, and nothing is said about the catalog it could not keep."""
    artifacts = asyncio.run(store_pages(store.open(), [page(n) for n in range(PAGES)]))
    monkeypatch.setattr(
        Invocation, "backend", lambda self, url=None, existing=True: RefusingWrites(store.open(), error)
    )
    for _ in range(2):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = app.main(["ls", "--url", "memory://", "-l", "--json"])
        assert code == 0
        assert [row["artifact_id"] for row in as_rows(out.getvalue())] == sorted(artifacts)
    assert snapshots(store) == []
    assert "catalog" not in capsys.readouterr().err
