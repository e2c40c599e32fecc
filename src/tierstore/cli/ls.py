"""``tierstore ls``: the stored pages, one a row.

Contract: without options, one listing of the store (a few requests however many pages it holds): artifact id,
stored size and time. ``--long`` (implied by a filter) reads every page's metadata as well (one request a page,
concurrently, bounded by the concurrency setting, with a progress bar on a terminal): tier, modality, created
time, storage class and page id. ``--json`` gives the same fields; the table clips long page ids. A page whose
metadata cannot be read (damaged) stops nothing: the others are listed, it is named on stderr, and the exit code is
4 (integrity error).
"""

from __future__ import annotations

import argparse
import sys

from tierstore.cli.context import AddCommand, Invocation, choice
from tierstore.cli.exit_codes import INTEGRITY
from tierstore.cli.render import Column, ProgressBar, human_size, limit_option, limited, print_json, print_table
from tierstore.concurrency import bounded_gather
from tierstore.enums import Modality
from tierstore.errors import IntegrityError
from tierstore.models import PageMetadata

STORED_TIERS = ("L2", "L3", "L4")
MODALITIES = tuple(m.value for m in Modality)
PAGE_ID_WIDTH = 40

# On a narrow terminal, columns go in the order of ``drop``; the artifact id never does, and is never cut.
_SHORT = (
    Column("artifact_id", "ARTIFACT"),
    Column("size", "SIZE", drop=2),
    Column("last_modified", "STORED", drop=1),
)
_LONG = (
    Column("artifact_id", "ARTIFACT"),
    Column("tier", "TIER", drop=5),
    Column("modality", "MODALITY", drop=3),
    Column("size", "SIZE", drop=4),
    Column("created_at", "CREATED", drop=2),
    Column("storage_class", "STORAGE CLASS", drop=1),
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
    async with inv.bridge() as bridge:
        entries = await bridge.list_page_entries()
        total = len(entries)
        if not filtered:  # the limit applies before the metadata is read: one request a page shown
            entries = limited(entries, getattr(args, "limit", None), total, "pages")
        stored = {e.artifact_id: e.last_modified for e in entries}
        if not (args.long or filtered):
            # The JSON fields are named as in ``ls -l --json`` and Python's PageEntry/PageMetadata: one set of names.
            if inv.json:
                print_json(entries)
            else:
                print_table([{**e.model_dump(), "size": human_size(e.size_bytes)} for e in entries], _SHORT)
            return 0
        damaged: list[str] = []

        async def describe(key: str) -> PageMetadata | None:
            try:
                return await bridge.get_metadata(key)
            except IntegrityError as exc:
                damaged.append(f"{key}: {exc}")
                return None

        with ProgressBar("reading metadata", "pages") as bar:
            found = await bounded_gather(
                (describe(e.artifact_id) for e in entries), inv.settings.concurrency, progress=bar
            )
    listed = [m for m in found if m is not None and _matches(m, args)]
    if filtered:
        listed = limited(listed, getattr(args, "limit", None), len(listed), "pages")
    rows = [{**m.model_dump(), "last_modified": stored.get(m.artifact_id or "")} for m in listed]
    if inv.json:
        print_json(rows)
    else:
        print_table([{**row, "size": human_size(row["size_bytes"])} for row in rows], _LONG)
    for line in sorted(damaged):
        print(f"tierstore: damaged, not listed: {line}", file=sys.stderr)
    return INTEGRITY if damaged else 0
