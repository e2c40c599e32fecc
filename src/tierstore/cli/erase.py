"""``tierstore users rm USER_ID`` and ``tierstore sessions rm SESSION_ID``: erase a user or a session (issue 28).

Contract: ``users rm`` erases the user named (its shared pages, every session of it, their checkpoints, versions,
records) and ``sessions rm`` one session of ``--user`` (else ``TIERSTORE_USER_ID``; neither: a session of no user),
through :class:`tierstore.store.Store` (:mod:`tierstore.protocol.erasure`). Ids and ``--settle`` are checked before
any I/O (exit 2). Erasing what holds nothing succeeds and says so, as a request to erase is met when nothing is left.
The command waits for the scope's running checkpoints and then, once, for stores in flight to land (``--settle``, a
duration by the settings' rule; default: the backend's request deadline times its attempts); a lease that stays
live (a running agent) ends it with InUseError (exit 8), the scope left erasing, and the same command run again
resumes it. On a bucket that keeps versions it also says how many it purged, each one the bucket kept (Object
Lock), and what the bucket keeps beyond any request (soft delete). ``users`` and ``sessions`` with no action, or
``list``, list them (:mod:`tierstore.cli.scopes`).
"""

from __future__ import annotations

import argparse

from tierstore.cli.context import Invocation, Run, common_options
from tierstore.cli.durations import parse_duration
from tierstore.cli.escape import escaped
from tierstore.cli.render import print_json, to_plain
from tierstore.protocol.erasure import Erased
from tierstore.scopes import check_scope_id
from tierstore.store import Store


def add_actions(
    users: argparse.ArgumentParser, sessions: argparse.ArgumentParser, list_users: Run, list_sessions: Run
) -> None:
    """Give ``users`` and ``sessions`` their actions: ``list`` (the default) and ``rm``."""
    common = common_options(type(users))
    for parser, listing, what, remove in (
        (users, list_users, "user", remove_user),
        (sessions, list_sessions, "session", remove_session),
    ):
        actions = parser.add_subparsers(dest="action", metavar="ACTION")
        actions.add_parser("list", help=f"list the {what}s (the default)", parents=[common]).set_defaults(run=listing)
        whose = "" if what == "user" else " of --user (default: of no user)"
        help = f"erase a {what}{whose}: every page, checkpoint and record of it, whatever runs meanwhile"
        rm = actions.add_parser("rm", help=help, description=help, parents=[common])
        rm.add_argument("id", metavar=f"{what.upper()}_ID", help=f"the {what} id")
        rm.add_argument(
            "--settle",
            type=parse_duration,
            default=None,
            metavar="DURATION",
            help="how long to wait for stores in flight to land, e.g. 90, 30s, 5m (default: the request deadline "
            "times its attempts)",
        )
        rm.set_defaults(run=remove)


async def remove_user(inv: Invocation) -> int:
    """``tierstore users rm USER_ID``."""
    user_id = check_scope_id(inv.args.id, "user id")
    settle = inv.args.settle
    async with Store(inv.backend(), concurrency=inv.settings.concurrency) as store:
        erased = await store.delete_user(user_id, settle=settle)
    return _report(inv, erased, f"user {escaped(user_id)}", {"user_id": user_id})


async def remove_session(inv: Invocation) -> int:
    """``tierstore sessions rm SESSION_ID``."""
    user_id, session_id = inv.user_id, check_scope_id(inv.args.id, "session id")
    settle = inv.args.settle
    async with Store(inv.backend(), concurrency=inv.settings.concurrency) as store:
        erased = await store.delete_session(user_id, session_id, settle=settle)
    whose = "" if user_id is None else f" of user {escaped(user_id)}"
    return _report(inv, erased, f"session {escaped(session_id)}{whose}", {"user_id": user_id, "session_id": session_id})


def _report(inv: Invocation, erased: Erased, what: str, ids: dict[str, str | None]) -> int:
    if inv.json:  # the history is in the document: nothing else goes to stdout
        print_json({**ids, "erased": to_plain(erased)})
        return 0
    if erased.deleted or erased.records:
        resumed = " (an earlier erasure resumed)" if erased.resumed else ""
        print(f"erased {what}: {erased.deleted} objects and {len(erased.records)} registry records deleted{resumed}")
    else:
        print(f"erased {what}: nothing was stored for it")
    history = erased.history
    if history.purged:
        print(f"  {history.purged} noncurrent versions and delete markers purged from the bucket's history")
    for line in history.left:
        print(f"  left in the bucket's history: {line}")
    for note in history.notes if history.supported else ():
        print(f"  note: {note}")
    return 0
