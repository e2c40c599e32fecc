"""``tierstore users`` and ``tierstore sessions``: who the store holds pages for (issue 28).

Contract: ``users`` lists every user the store's registry names (the sessions of no user as ``(none)``), with its
sessions' count and the pages and bytes of all its scopes; ``sessions`` lists the sessions of ``--user`` (else
``TIERSTORE_USER_ID``; neither: the sessions of no user) with their pages and bytes. Counts come from listings,
never from reading pages (:class:`tierstore.store.Store`). A user or session being erased (an erasure running, or
one that stopped: ``users rm`` / ``sessions rm`` again resumes it) shows ``erasing`` under STATE, and
``"erasing": true`` in ``--json``. Ids are printed escaped in the tables (:mod:`tierstore.cli.escape`: a bidi override
in an id cannot reorder its row) and raw in ``--json``.
"""

from __future__ import annotations

from typing import Any

from tierstore.cli import erase
from tierstore.cli.context import AddCommand, Invocation
from tierstore.cli.escape import escaped
from tierstore.cli.render import Column, human_size, print_json, print_table, to_plain
from tierstore.store import Store

_USERS = [
    Column("user_id", "USER", max_width=60, min_width=12),
    Column("sessions", "SESSIONS", drop=3),
    Column("pages", "PAGES", drop=2),
    Column("size", "SIZE", drop=1),
    Column("created", "CREATED", drop=4),
    Column("state", "STATE"),
]
_SESSIONS = [
    Column("session_id", "SESSION", max_width=60, min_width=12),
    Column("pages", "PAGES", drop=2),
    Column("size", "SIZE", drop=1),
    Column("created", "CREATED", drop=3),
    Column("state", "STATE"),
]


def register(add: AddCommand) -> None:
    """Add ``tierstore users`` and ``tierstore sessions`` to the parser."""
    users = add("users", run_users, "list the users the store holds pages for, with their sessions, pages and bytes")
    sessions = add(
        "sessions", run_sessions, "list the sessions of --user (default: of no user), with their pages and bytes"
    )
    erase.add_actions(users, sessions, run_users, run_sessions)  # rm: erase one (tierstore.cli.erase)


async def run_users(inv: Invocation) -> int:
    """``tierstore users``."""
    async with Store(inv.backend(), concurrency=inv.settings.concurrency) as store:
        users = await store.users()
    if inv.json:
        print_json({"users": to_plain(users)})
        return 0
    rows: list[dict[str, Any]] = [
        {
            **to_plain(u),
            "user_id": escaped(u.user_id) if u.user_id is not None else "(none)",
            "size": human_size(u.bytes),
            "state": _state(u.erasing),
        }
        for u in users
    ]
    print_table(rows, _USERS)
    return 0


async def run_sessions(inv: Invocation) -> int:
    """``tierstore sessions``."""
    user_id = inv.user_id
    async with Store(inv.backend(), concurrency=inv.settings.concurrency) as store:
        sessions = await store.sessions(user_id)
    if inv.json:
        print_json({"user_id": user_id, "sessions": to_plain(sessions)})
        return 0
    rows = [
        {**to_plain(s), "session_id": escaped(s.session_id), "size": human_size(s.bytes), "state": _state(s.erasing)}
        for s in sessions
    ]
    print_table(rows, _SESSIONS)
    return 0


def _state(erasing: bool) -> str:
    return "erasing" if erasing else "live"
