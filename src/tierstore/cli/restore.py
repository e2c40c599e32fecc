"""``tierstore restore ID``: ask the backend to bring an archived page back from its archive class.

Contract: this starts a restore (S3 GLACIER/DEEP_ARCHIVE, Azure Archive) and reports its state; the page can be
read once the state is ``restored`` or ``not-archived``. ``checkpoints restore`` does it for every page of a
checkpoint.
"""

from __future__ import annotations

import argparse
from typing import get_args

from tierstore.backends.base import RestoreSpeed
from tierstore.cli.context import AddCommand, Invocation, artifact_id, choice
from tierstore.cli.render import print_json, to_plain

SPEEDS: tuple[str, ...] = get_args(RestoreSpeed)

_MEANING = {
    "not-archived": "is not archived: it can be loaded now",
    "pending": "is being restored: load it once the restore completes (run this again to see its state)",
    "restored": "is restored: it can be loaded now",
    "archived": "is still archived",
}


def register(add: AddCommand) -> None:
    """Add ``tierstore restore ID`` (``--days``, ``--speed``) to the parser."""
    restore = add(
        "restore",
        run,
        "bring an archived page (L4 on S3 or Azure) back so it can be read, and report the restore's state",
    )
    restore.add_argument("id", help="artifact id, e.g. mem_L4_7")
    options(restore)


def options(parser: argparse.ArgumentParser) -> None:
    """``--days`` and ``--speed``, shared with ``checkpoints restore``."""
    parser.add_argument("--days", type=int, default=1, help="days the restored copy stays readable (S3; default 1)")
    parser.add_argument("--speed", type=choice(SPEEDS), choices=SPEEDS, default="standard", help="default: standard")


async def run(inv: Invocation) -> int:
    """``tierstore restore``: bring one archived page back, or report how far that is."""
    key = artifact_id(inv.args.id, checkpoint_command="verify")
    async with inv.bridge() as bridge:
        status = await bridge.restore_page(key, days=inv.args.days, speed=inv.args.speed)
    if inv.json:
        print_json({"artifact_id": key, **to_plain(status)})
        return 0
    until = f" (until {status.expires_at:%Y-%m-%d %H:%M} UTC)" if status.expires_at else ""
    print(f"{key} {_MEANING[status.state]}{until}")
    return 0
