"""``tierstore ls -l`` as it was before it streamed, kept for ``bench_listing``'s side-by-side comparison: every
page's metadata read (bounded as the command reads it), then the table printed at once with each column as wide
as its widest cell.

Run: ``python -m bench._ls_before ls -l --url URL`` — the command line itself, with ``ls``'s long listing swapped
for the old one, so its start-up (interpreter, SDK, settings, listing) is the same as the command's.
"""

from __future__ import annotations

import sys

from tierstore.cli import app, ls
from tierstore.cli.context import Invocation
from tierstore.cli.render import ProgressBar, human_size, print_table
from tierstore.concurrency import bounded_gather
from tierstore.models import PageMetadata


async def read_all_then_print(inv: Invocation) -> int:
    """The long listing read whole, then printed (no filters, no ``--json``, no damaged pages: what the bench asks)."""
    if not inv.args.long or inv.json or inv.args.tier or inv.args.modality or inv.args.prefix:
        raise SystemExit("bench._ls_before runs `ls -l` without filters or --json only")
    async with inv.bridge() as bridge:
        entries = await bridge.list_page_entries()
        stored = {e.artifact_id: e.last_modified for e in entries}
        with ProgressBar("reading metadata", "pages") as bar:
            found: list[PageMetadata | None] = await bounded_gather(
                (bridge.get_metadata(e.artifact_id) for e in entries), inv.settings.concurrency, progress=bar
            )
    rows = [{**m.model_dump(), "last_modified": stored.get(m.artifact_id or "")} for m in found if m is not None]
    print_table([{**row, "size": human_size(row["size_bytes"])} for row in rows], ls.LONG_COLUMNS)
    return 0


if __name__ == "__main__":
    ls.run = read_all_then_print  # register() hands the parser ``ls.run`` as it finds it when main() builds it
    sys.exit(app.main(sys.argv[1:]))
