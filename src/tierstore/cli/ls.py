"""``tierstore ls``: the stored pages, one a row.

Contract: without options, one listing of the store (a few requests however many pages it holds): artifact id,
stored size and time. ``--long`` (implied by a filter) reads every page's metadata as well (one request a page,
concurrently, bounded by the concurrency setting, with a progress bar on a terminal): tier, modality, created
time, storage class and page id. It streams: the header follows the listing, and each row is printed as soon as
its page's metadata and every row's before it have come, in the listing's order (``ls -l | head`` shows its first
rows after the listing and a request, and stops the reading when it exits). So the columns are as wide as their
values can be, not as the widest value listed: tier 4, modality 10, size 10, created 19 characters, storage class
13 (longer classes clipped), the artifact id as the longest listed; page ids clipped at 40 (on a terminal, the
room left). ``--json`` gives the same fields, streamed too: the same JSON document, item by item. A page whose
metadata cannot be read (damaged) stops nothing: the others are listed, it is named on stderr at the end, and the
exit code is 4 (integrity error). Any other error stops the listing where it is: the rows printed stay (``--json``:
an unfinished document, then the error's), the error follows as for every command.

With a filter, ``--limit N`` stops reading at the N-th page that matches: without an index, every page's metadata
is the only place its page id, tier and modality are found, so a filter without a limit reads every page's.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tierstore.cli.context import AddCommand, Invocation, choice
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
from tierstore.concurrency import bounded_in_order
from tierstore.enums import Modality, StorageTier
from tierstore.errors import IntegrityError, InvalidInputError

if TYPE_CHECKING:
    from tierstore.bridge import ArtifactsBridge
    from tierstore.models import PageEntry, PageMetadata

STORED_TIERS = ("L2", "L3", "L4")
MODALITIES = tuple(m.value for m in Modality)
PAGE_ID_WIDTH = 40
SIZE_WIDTH = len("1023.9 MiB")
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
    ls.add_argument("--prefix", help="only pages whose page id starts with this")
    limit_option(ls, "pages")


def _matches(meta: PageMetadata, args: argparse.Namespace) -> bool:
    if args.tier and meta.tier != args.tier:
        return False
    if args.modality and meta.modality != args.modality:
        return False
    return not args.prefix or meta.page_id.startswith(args.prefix)


async def run(inv: Invocation) -> int:
    """``tierstore ls``: the stored pages, one a row (see the module's contract); exit 4 when one could not be read."""
    args = inv.args
    filtered = bool(args.tier or args.modality or args.prefix)
    limit: int | None = getattr(args, "limit", None)
    async with inv.bridge() as bridge:
        entries = await bridge.list_page_entries()
        if not filtered:  # the limit applies before the metadata is read: one request a page shown
            entries = limited(entries, limit, len(entries), "pages")
        elif limit is not None and limit < 0:
            raise InvalidInputError(f"--limit must be 0 or more, not {limit}")
        if not (args.long or filtered):
            # The JSON fields are named as in ``ls -l --json`` and Python's PageEntry/PageMetadata: one set of names.
            if inv.json:
                print_json(entries)
            else:
                print_table([{**e.model_dump(), "size": human_size(e.size_bytes)} for e in entries], _SHORT)
            return 0
        damaged = await _stream_long(inv, bridge, entries, limit if filtered else None)
    for line in sorted(damaged):
        print(f"tierstore: damaged, not listed: {line}", file=sys.stderr)
    return INTEGRITY if damaged else 0


async def _stream_long(
    inv: Invocation, bridge: ArtifactsBridge, entries: list[PageEntry], limit: int | None
) -> list[str]:
    """Print the long listing of ``entries`` row by row as their metadata comes (module contract); the pages that
    could not be read (damaged)."""
    args = inv.args
    damaged: list[str] = []

    async def describe(entry: PageEntry) -> tuple[PageEntry, PageMetadata | None]:
        try:
            return entry, await bridge.get_metadata(entry.artifact_id)
        except IntegrityError as exc:
            damaged.append(f"{entry.artifact_id}: {exc}")
            return entry, None

    out: JsonArray | StreamedTable = JsonArray() if inv.json else StreamedTable(long_columns(entries))
    shown = 0
    with contextlib.ExitStack() as stack:
        if isinstance(out, JsonArray):
            stack.enter_context(out)
        if limit == 0:
            return damaged
        bar = stack.enter_context(ProgressBar("reading metadata", "pages", rows_below=True))
        described = bounded_in_order((describe(e) for e in entries), inv.settings.concurrency, progress=bar)
        async with contextlib.aclosing(described):
            async for batch in described:
                found = [
                    {**meta.model_dump(), "last_modified": entry.last_modified}
                    for entry, meta in batch
                    if meta is not None and _matches(meta, args)
                ]
                rows = found if limit is None else found[: limit - shown]
                if isinstance(out, JsonArray):
                    out.add(rows)
                else:
                    out.rows([{**row, "size": human_size(row["size_bytes"])} for row in rows])
                shown += len(rows)
                if shown == limit:
                    break
    if limit is not None and shown == limit:
        print(
            f"tierstore: showing the first {limit} matching pages, reading no further (--limit {limit})",
            file=sys.stderr,
        )
    return damaged


def long_columns(entries: list[PageEntry]) -> list[Column]:
    """The long table's columns, each as wide as its values can be (module contract)."""
    ids = max((len(e.artifact_id) for e in entries), default=0)
    return [replace(c, width=ids) if c.field == "artifact_id" else c for c in _LONG]
