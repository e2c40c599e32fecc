"""``tierstore demo``: the spec's complete example, run so that it is safe to run any number of times.

Contract: by default it runs in a new temporary local-disk store, removed afterwards. ``--url`` or ``--root`` run it
on that store and remove what it wrote afterwards; ``--keep`` keeps what it wrote (on the configured store when
no store is named) and prints where, and the commands that look at it and remove it. ``--url`` with ``--root`` is
refused (exit 2).
"""

from __future__ import annotations

import contextlib
import shlex
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from tierstore.backends.base import StorageBackend
from tierstore.backends.filesystem import FileSystemBackend
from tierstore.cli.context import AddCommand, Invocation
from tierstore.cli.render import print_json
from tierstore.config import redact_url
from tierstore.demo import DemoResult, remove_demo, run_demo
from tierstore.errors import InvalidInputError
from tierstore.maintenance.doctor import describe


def register(add: AddCommand) -> None:
    """Add ``tierstore demo`` (``--root``, ``--keep``) to the parser."""
    demo = add(
        "demo",
        run,
        "run the spec's complete example in a temporary store (or on --url/--root), leaving no trace unless --keep",
    )
    demo.add_argument("--root", metavar="DIR", help="run it on the local-disk store in DIR (as --url DIR does)")
    demo.add_argument(
        "--keep",
        action="store_true",
        help="keep its pages and checkpoint, on --url/--root or else the store the other commands use",
    )


@dataclass
class _Place:
    backend: StorageBackend
    temporary: bool
    option: str
    """What the follow-up commands need to reach the same store (``--url X``), or nothing."""


@contextlib.contextmanager
def _place(inv: Invocation) -> Iterator[_Place]:
    root, url = inv.args.root, inv.explicit_url
    if root and url:
        raise InvalidInputError("--root and --url both name a store for the demo: give one of them")
    if root:
        yield _Place(FileSystemBackend(root), temporary=False, option=f" --url {shlex.quote(root)}")
    elif url:
        yield _Place(inv.backend(existing=False), temporary=False, option=f" --url {shlex.quote(redact_url(url))}")
    elif inv.args.keep:
        yield _Place(inv.backend(existing=False), temporary=False, option="")
    else:
        with tempfile.TemporaryDirectory(prefix="tierstore-demo-") as directory:
            yield _Place(FileSystemBackend(directory), temporary=True, option="")


async def run(inv: Invocation) -> int:
    """``tierstore demo``: the spec's example in a temporary store, or on the store named (kept with ``--keep``)."""
    with _place(inv) as place:
        where = (
            describe(place.backend).replace("the ", "a temporary ", 1) if place.temporary else describe(place.backend)
        )
        if not inv.json:
            print(f"tierstore demo: the spec's complete example, in {where}\n")
        async with inv.bridge(place.backend) as bridge:
            result = await run_demo(bridge, say=(lambda _line: None) if inv.json else print)
            stats = bridge.get_stats()
            kept = inv.args.keep and place.backend.persistent
            if not kept and place.backend.persistent and not place.temporary:
                await remove_demo(bridge, result)
    follow_up = place.option + _scope_options(inv)
    removal = _removal(result, follow_up) if kept else []
    if inv.json:
        print_json(
            {
                "store": where,
                "temporary": place.temporary,
                "kept": kept,
                "checkpoint_id": result.checkpoint_id,
                "artifacts": result.artifacts,
                "stats": stats,
                "remove": removal,
            }
        )
        return 0
    print()
    if kept:
        print(f"Kept {len(result.artifacts)} pages and checkpoint {result.checkpoint_id} in {where}.")
        print(f"  look at them:  tierstore ls{follow_up}")
        print(f"  remove them:   {' && '.join(removal)}")
    elif not place.backend.persistent:
        print("The in-memory store ends with this command: nothing is kept.")
    elif place.temporary:
        print("The temporary store is removed again. `tierstore demo --keep` keeps the pages, in the store the")
        print("other commands use (--url, $TIERSTORE_URL, else the data directory), to look at with `tierstore ls`.")
    else:
        print(
            f"Removed its {len(result.artifacts)} pages and its checkpoint again (small tomb records of the "
            "deletion stay until `tierstore gc` prunes them after 7 days); --keep keeps them."
        )
    return 0


def _scope_options(inv: Invocation) -> str:
    """The scope the demo ran in, for the follow-up commands (a setting may not be there when they run)."""
    user, session = inv.user_id, inv.session_id
    return (f" --user {shlex.quote(user)}" if user is not None else "") + (
        f" --session {shlex.quote(session)}" if session is not None else ""
    )


def _removal(result: DemoResult, option: str) -> list[str]:
    return [
        f"tierstore checkpoints delete {result.checkpoint_id}{option}",
        f"tierstore rm {' '.join(result.evicted)}{option}",
    ]
