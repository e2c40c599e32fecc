"""``tierstore ls``: the stored pages, one a row, filtered by tier, modality or page-id prefix.

Contract: every page's metadata is read (concurrently, bounded by the concurrency setting, with a progress bar on
a terminal); ``--json`` gives the full metadata, the table clips long page ids.
"""

from __future__ import annotations

import argparse

from tierstore.cli.context import AddCommand, Invocation
from tierstore.cli.render import Column, ProgressBar, human_size, print_json, print_table
from tierstore.concurrency import bounded_gather
from tierstore.enums import Modality
from tierstore.models import PageMetadata

STORED_TIERS = ("L2", "L3", "L4")
PAGE_ID_WIDTH = 40

_COLUMNS = (
    Column("artifact_id", "ARTIFACT"),
    Column("tier", "TIER"),
    Column("modality", "MODALITY"),
    Column("size", "SIZE"),
    Column("created_at", "CREATED"),
    Column("storage_class", "STORAGE CLASS"),
    Column("page_id", "PAGE", max_width=PAGE_ID_WIDTH),
)


def register(add: AddCommand) -> None:
    ls = add("ls", run, "list stored pages: tier, modality, size, created time, storage class and page id")
    ls.add_argument("--tier", choices=STORED_TIERS, help="only pages in this tier (pages are stored in L2-L4)")
    ls.add_argument("--modality", choices=[m.value for m in Modality], help="only pages of this modality")
    ls.add_argument("--prefix", help="only pages whose page id starts with this")


def _matches(meta: PageMetadata, args: argparse.Namespace) -> bool:
    if args.tier and meta.tier != args.tier:
        return False
    if args.modality and meta.modality != args.modality:
        return False
    return not args.prefix or meta.page_id.startswith(args.prefix)


async def run(inv: Invocation) -> int:
    async with inv.bridge() as bridge:
        artifact_ids = await bridge.list_pages()
        with ProgressBar("reading metadata", "pages") as bar:
            found = await bounded_gather(
                (bridge.get_metadata(a) for a in artifact_ids), inv.settings.concurrency, progress=bar
            )
    listed = [m for m in found if m is not None and _matches(m, inv.args)]
    if inv.json:
        print_json(listed)
    else:
        print_table([{**m.model_dump(), "size": human_size(m.size_bytes)} for m in listed], _COLUMNS)
    return 0
