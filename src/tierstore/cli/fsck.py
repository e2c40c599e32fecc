"""``tierstore fsck``: verify every page and manifest of the store, and list what a crash left behind.

Contract: exit 1 when objects are missing or damaged; orphans alone do not fail (``gc`` collects them). Every field of
the report is printed, so fields added to ``FsckReport`` show up in both outputs. ``--repair`` first rewrites the
scopes' version records from their pages and deletes unreadable registry records and stale version records past
``--grace`` (:mod:`tierstore.maintenance.repair`: never a page, never in a scope being erased), prints what it did
(``repaired`` in ``--json``), then checks as without it.
"""

from __future__ import annotations

from datetime import timedelta

from tierstore import maintenance
from tierstore.cli.context import AddCommand, Invocation
from tierstore.cli.durations import parse_duration
from tierstore.cli.render import ProgressBar, print_json, print_report, to_plain

HINTS = {
    "archived": "in an archive class: `tierstore restore ID` brings one back",
    "archived_checkpoints": "restore once their archived pages are restored: run the command shown",
    "orphans": "written for a checkpoint that does not reference them; `tierstore gc` removes them",
    "foreign": "not written by tierstore: left as they are",
}


def register(add: AddCommand) -> None:
    """Add ``tierstore fsck`` (``--no-verify``) to the parser."""
    fsck = add("fsck", run, "verify every page and manifest, and list damaged or missing objects and orphans")
    fsck.add_argument("--no-verify", action="store_true", help="list and cross-check only; do not read page bodies")
    fsck.add_argument(
        "--repair",
        action="store_true",
        help="first rewrite version records from their pages, delete unreadable registry records and stale version"
        " records (never a page)",
    )
    fsck.add_argument(
        "--grace", type=parse_duration, default=timedelta(hours=1), help="--repair: stale records older than this"
    )


async def run(inv: Invocation) -> int:
    """``tierstore fsck``: verify every page and manifest and list what is damaged, missing or orphaned."""
    async with inv.bridge() as bridge:
        repaired = None
        if inv.args.repair:
            from tierstore.maintenance.repair import repair  # on use: only --repair needs it

            repaired = await repair(bridge, grace=inv.args.grace, concurrency=inv.settings.concurrency)
        with ProgressBar("checking", "pages") as bar:
            report = await maintenance.fsck(
                bridge, verify=not inv.args.no_verify, concurrency=inv.settings.concurrency, progress=bar
            )
    code = 0 if report.ok else 1
    if inv.json:
        print_json({"ok": report.ok, **to_plain(report), **({"repaired": to_plain(repaired)} if repaired else {})})
        return code
    if repaired is not None:
        print("repaired:")
        print_report(repaired)
        print()
    skipped = {"verified": "skipped (--no-verify)"} if inv.args.no_verify else {}
    print_report(report, values=skipped, hints=HINTS)
    print("\nok" if report.ok else "\nproblems found")
    return code
