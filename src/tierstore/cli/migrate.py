"""``tierstore migrate SRC DST``: copy every page and checkpoint between two backends, keeping their ids.

Contract: exit 1 when something was left behind (archived pages, problems, incomplete checkpoints); a re-run
verifies what is already there, copies only what is missing and replaces damaged copies (exit 0, listed as repaired).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any

from tierstore import maintenance
from tierstore.backends.base import StorageBackend
from tierstore.backends.filesystem import FileSystemBackend
from tierstore.cli.context import AddCommand, Invocation, closing
from tierstore.cli.render import ProgressBar, print_json, print_report, to_plain
from tierstore.config import redact_url
from tierstore.errors import InvalidInputError, TierstoreError
from tierstore.maintenance.doctor import describe

LABELS = {
    "copied": "objects copied",
    "skipped": "already there",
    "checkpoints_skipped": "checkpoints already there",
    "repaired": "damaged copies replaced",
}
HINTS = {
    "archived": "not copied: `tierstore restore ID` each, then run migrate again",
    "incomplete_checkpoints": "not copied: some of their pages could not be copied",
    "repaired": "did not verify at the destination: replaced by the source's verified copy",
    "erasing": "scopes being erased at the source: not copied, or erased at the destination again; finish `tierstore "
    "users rm` / `sessions rm` at the source",
}


def register(add: AddCommand) -> None:
    """Add ``tierstore migrate SRC DST`` to the parser."""
    migrate = add("migrate", run, "copy every page and checkpoint from one backend to another (resumable)", url=False)
    migrate.add_argument("source", metavar="SRC", help="source backend URL")
    migrate.add_argument("destination", metavar="DST", help="destination backend URL")


async def run(inv: Invocation) -> int:
    """``tierstore migrate``: copy every page and checkpoint from SRC to DST, verified and resumable."""
    if inv.explicit_url:
        raise InvalidInputError("migrate takes no --url: it copies from SRC to DST, both given as arguments")
    source = inv.backend(inv.args.source)
    destination = inv.backend(inv.args.destination, existing=False)
    if same_store(source, destination):
        raise InvalidInputError(f"SRC and DST are the same store ({describe(source)}): there is nothing to copy")
    source_url, destination_url = redact_url(inv.args.source), redact_url(inv.args.destination)
    async with closing(source), closing(destination):
        with ProgressBar("migrating", "objects") as bar:
            report = await maintenance.migrate(
                Side(source, f"the source, {source_url}"),
                Side(destination, f"the destination, {destination_url}"),
                concurrency=inv.settings.concurrency,
                progress=bar,
            )
    code = 1 if report.problems or report.archived or report.incomplete_checkpoints or report.erasing else 0
    if inv.json:
        print_json({"source": source_url, "destination": destination_url, **to_plain(report)})
        return code
    print(f"migrated {source_url} -> {destination_url}")
    print_report(report, labels=LABELS, hints=HINTS)
    return code


def same_store(a: StorageBackend, b: StorageBackend) -> bool:
    """Do two backends name one store? The same directory (through any symlink), or the same bucket or container,
    prefix and endpoint (what a cloud backend's repr shows)."""
    if isinstance(a, FileSystemBackend) and isinstance(b, FileSystemBackend):
        return a.root.resolve() == b.root.resolve()
    return type(a) is type(b) and a.persistent and repr(a) == repr(b)


class Side:
    """One side of a migration: its backend, whose errors carry a note naming the side (``app.message`` shows it),
    so a failure says whether the source or the destination failed."""

    def __init__(self, backend: StorageBackend, side: str) -> None:
        self._backend = backend
        self._side = side

    def __getattr__(self, name: str) -> Any:
        member = getattr(self._backend, name)
        if inspect.iscoroutinefunction(member):

            async def call(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await member(*args, **kwargs)
                except TierstoreError as exc:
                    self._note(exc)
                    raise

            return call
        if inspect.isasyncgenfunction(member):

            async def listing(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                try:
                    async for item in member(*args, **kwargs):
                        yield item
                except TierstoreError as exc:
                    self._note(exc)
                    raise

            return listing
        return member

    def _note(self, exc: TierstoreError) -> None:
        if self._side not in getattr(exc, "__notes__", []):
            exc.add_note(self._side)
