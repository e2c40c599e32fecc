"""``tierstore ls``: the stored pages, one a row, in key order (the artifact id as a string, ``mem_L3_10`` before
``mem_L3_2``: the order every cloud lists in, so rows can come as the listing does).

Contract: without options, one listing of the store (a few requests however many pages it holds): artifact id, stored
size and time. ``--long`` (implied by a filter) describes every page as well: tier, modality, created time, storage
class and page id, from the store's catalog where its listing proves a row (no request), else one request a page,
concurrently, bounded by the concurrency setting, with a progress bar on a terminal; at the end the catalog keeps what
was read (a new snapshot), so the next ``ls -l`` asks only for pages changed since (:mod:`tierstore.cli.ls_pages`). It
streams: the header comes at once, and each row is printed as soon as its page has been listed and described, and every
row's before it; on a cloud the listing is read page by page, so ``ls -l | head`` shows its first rows after the first
listing page (a small one, :data:`~tierstore.backends.slices.FIRST_PAGE` keys), and stops the reading when it exits. So
the columns are as wide as their values can be, not as the widest value listed: the artifact id 15 (a longer one, past
100 million pages a tier, pushes its row's other cells right), tier 4, modality 10, size 10, created 19 characters,
storage class 13 (longer classes clipped); page ids clipped at 40 (on a terminal, the room left). ``--json`` gives the
same fields, streamed too: the same JSON document, item by item. A page whose metadata cannot be read (damaged) stops
nothing: the others are listed, it is named on stderr at the end, and the exit code is 4 (integrity error). Any other
error stops the listing where it is: the rows printed stay (``--json``: an unfinished document, then the error's), the
error follows as for every command.

Filters: ``--tier``, ``--modality``, ``--page-type`` and ``--prefix`` (of the page id) are matched on each page's
description as ``--long`` reads it; ``--meta KEY=VALUE`` (repeatable: all must hold) on the page's own metadata,
answered by :meth:`~tierstore.bridge.ArtifactsBridge.find_pages` with the other filters (each match described
afresh; printed once all are found). ``--limit N`` stops at the N-th row (with ``--long`` or a filter: reading
stops there too, but for ``--meta``, whose rows come once every match is found).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from tierstore import ids
from tierstore.cli.context import AddCommand, Invocation, choice
from tierstore.cli.escape import escaped
from tierstore.cli.exit_codes import INTEGRITY
from tierstore.cli.render import (
    Column,
    JsonArray,
    ProgressBar,
    StreamedTable,
    cell,
    human_size,
    limit_option,
    limited,
    print_json,
    print_table,
)
from tierstore.enums import Modality, PageType, StorageTier
from tierstore.errors import IntegrityError, InvalidInputError

if TYPE_CHECKING:
    from tierstore.bridge import ArtifactsBridge
    from tierstore.cli.ls_pages import PageListing
    from tierstore.models import PageEntry, PageMetadata

STORED_TIERS = ("L2", "L3", "L4")
MODALITIES = tuple(m.value for m in Modality)
PAGE_TYPES = tuple(t.value for t in PageType)
PAGE_ID_WIDTH = 40
SIZE_WIDTH = len("1023.9 MiB")
ARTIFACT_WIDTH = len(ids.artifact_id(StorageTier.L3, 10**8 - 1))
"""The widest artifact id below 100 million pages a tier: the long table's first column, fixed before any page is
listed (so the table fits 80 columns with its CREATED column)."""
"""The widest size :func:`human_size` gives below 1,000 TiB."""

# On a narrow terminal, columns go in the order of ``drop``; the artifact id never does, and is never cut. The long
# table streams: its widths are those of the widest value each column can hold (the module's contract).
_SHORT = (
    Column("artifact_id", "ARTIFACT"),
    Column("size", "SIZE", drop=2),
    Column("last_modified", "STORED", drop=1),
)
_LONG = (
    Column("artifact_id", "ARTIFACT"),
    Column("tier", "TIER", drop=5, width=max(len(t.value) for t in StorageTier)),
    Column("modality", "MODALITY", drop=3, width=max(len(m) for m in MODALITIES)),
    Column("size", "SIZE", drop=4, width=SIZE_WIDTH),
    Column("created_at", "CREATED", drop=2, width=len(cell(datetime(2000, 1, 1, tzinfo=UTC)))),
    Column("storage_class", "STORAGE CLASS", max_width=len("STORAGE CLASS"), drop=1),
    Column("page_id", "PAGE", max_width=PAGE_ID_WIDTH, min_width=12),
)


def register(add: AddCommand) -> None:
    """Add ``tierstore ls`` and its options (``--long``, filters, ``--limit``) to the parser."""
    ls = add("ls", run, "list stored pages (with --long: tier, modality, created time, storage class, page id)")
    ls.add_argument("-l", "--long", action="store_true", help="read every page's metadata (one request a page)")
    ls.add_argument(
        "--tier",
        type=choice(STORED_TIERS),
        choices=STORED_TIERS,
        help="only pages in this tier (pages are stored in L2-L4)",
    )
    ls.add_argument("--modality", type=choice(MODALITIES), choices=MODALITIES, help="only pages of this modality")
    ls.add_argument(
        "--page-type", type=choice(PAGE_TYPES), choices=PAGE_TYPES, help="only pages of this type (default: transcript)"
    )
    ls.add_argument(
        "--meta",
        action="append",
        type=_key_value,
        metavar="KEY=VALUE",
        help="only pages whose own metadata holds KEY with exactly VALUE (repeatable: all must hold)",
    )
    ls.add_argument("--prefix", help="only pages whose page id starts with this")
    limit_option(ls, "pages")


def _key_value(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` split at its first ``=`` (the value may hold more); the key must not be empty."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return key, value


def _matches(meta: PageMetadata, args: argparse.Namespace) -> bool:
    if args.tier and meta.tier != args.tier:
        return False
    if args.modality and meta.modality != args.modality:
        return False
    if args.page_type and (meta.page_type or PageType.TRANSCRIPT.value) != args.page_type:
        return False
    return not args.prefix or meta.page_id.startswith(args.prefix)


async def run(inv: Invocation) -> int:
    """``tierstore ls``: the stored pages, one a row (see the module's contract); exit 4 when one could not be read."""
    args = inv.args
    filtered = bool(args.tier or args.modality or args.page_type or args.prefix or args.meta)
    limit: int | None = getattr(args, "limit", None)
    if limit is not None and limit < 0:
        raise InvalidInputError(f"--limit must be 0 or more, not {limit}")
    async with inv.bridge() as bridge:
        if args.meta:
            return await _found(inv, bridge, limit)
        if not (args.long or filtered):
            entries = sorted(await bridge.list_page_entries(), key=lambda entry: entry.artifact_id)
            entries = limited(entries, limit, len(entries), "pages")  # before any description: one request a page
            # The JSON fields are named as in ``ls -l --json`` and Python's PageEntry/PageMetadata: one set of names.
            if inv.json:
                print_json(entries)
            else:
                rows = [{**e.model_dump(), "size": human_size(e.size_bytes)} for e in entries]
                print_table([{**row, "artifact_id": escaped(row["artifact_id"])} for row in rows], _SHORT)
            return 0
        from tierstore.cli.ls_pages import PageListing

        async with PageListing(bridge) as listing:
            damaged = await _stream_long(inv, listing, limit, filtered)
            await listing.fold()
    for line in sorted(damaged):
        print(f"tierstore: damaged, not listed: {line}", file=sys.stderr)
    return INTEGRITY if damaged else 0


async def _stream_long(inv: Invocation, listing: PageListing, limit: int | None, filtered: bool) -> list[str]:
    """Print the long listing row by row as the descriptions come (module contract); the pages that could not be
    read (damaged)."""
    args = inv.args
    damaged: list[str] = []

    def note(entry: PageEntry, exc: IntegrityError) -> None:
        damaged.append(f"{entry.artifact_id}: {exc}")

    out = JsonArray() if inv.json else StreamedTable(LONG_COLUMNS)
    shown = 0
    with contextlib.ExitStack() as stack:
        if isinstance(out, JsonArray):
            stack.enter_context(out)
        if limit == 0:
            return damaged
        bar = stack.enter_context(ProgressBar("reading metadata", "pages", rows_below=True))
        described = listing.describe(inv.settings.concurrency, damaged=note, progress=bar)
        async with contextlib.aclosing(described):
            async for batch in described:
                found = [
                    {**meta.model_dump(), "last_modified": entry.last_modified}
                    for entry, meta in batch
                    if meta is not None and _matches(meta, args)
                ]
                rows = found if limit is None else found[: limit - shown]
                _print(out, rows)
                shown += len(rows)
                if shown == limit:
                    break
    _said_limit(limit, shown, filtered)
    return damaged


async def _found(inv: Invocation, bridge: ArtifactsBridge, limit: int | None) -> int:
    """``ls --meta KEY=VALUE ...``: the pages :meth:`~ArtifactsBridge.find_pages` finds, then ``--prefix``."""
    from tierstore.finding import Query, find_pages

    args = inv.args
    damaged: list[str] = []
    query = Query.of(args.modality, args.tier, args.page_type, dict(args.meta))
    found, entries = await asyncio.gather(
        find_pages(  # every match: the rows are in key order, find_pages' limit stops in its own order
            bridge._places,
            query,
            None,
            bridge.concurrency,
            lambda key, exc: damaged.append(f"{key}: {exc}"),
        ),
        bridge.list_page_entries(),
    )
    stored = {e.artifact_id: e.last_modified for e in entries}
    rows = [
        {**meta.model_dump(), "last_modified": stored.get(meta.artifact_id or "")}
        for meta in sorted(found, key=lambda meta: meta.artifact_id or "")
        if _matches(meta, args)
    ][:limit]
    out = JsonArray() if inv.json else StreamedTable(LONG_COLUMNS)
    with contextlib.ExitStack() as stack:
        if isinstance(out, JsonArray):
            stack.enter_context(out)
        _print(out, rows)
    _said_limit(limit, len(rows), True)
    for line in sorted(damaged):
        print(f"tierstore: damaged, not listed: {line}", file=sys.stderr)
    return INTEGRITY if damaged else 0


def _print(out: JsonArray | StreamedTable, rows: list[dict[str, Any]]) -> None:
    if isinstance(out, JsonArray):
        out.add(rows)
    else:
        out.rows([_shown(row) for row in rows])


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    """A long row as the table shows it: its size readable, its ids escaped (:mod:`tierstore.cli.escape`)."""
    ids = {name: escaped(row[name]) for name in ("artifact_id", "page_id") if isinstance(row.get(name), str)}
    return {**row, **ids, "size": human_size(row["size_bytes"])}


def _said_limit(limit: int | None, shown: int, filtered: bool) -> None:
    if limit and shown == limit:  # --limit 0 asked for nothing: nothing to say
        pages = "matching pages" if filtered else "pages"
        print(f"tierstore: showing the first {limit} {pages}, reading no further (--limit {limit})", file=sys.stderr)


LONG_COLUMNS: Final = tuple(replace(c, width=ARTIFACT_WIDTH) if c.field == "artifact_id" else c for c in _LONG)
"""The long table's columns, each as wide as its values can be (module contract)."""
