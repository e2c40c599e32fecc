"""What every command gets: the parsed arguments, the settings, and the backend or bridge they name.

Contract: the backend is ``--url``, else ``TIERSTORE_URL``, else the local-disk store in the data directory; the
scope is ``--user``/``--session``, else ``TIERSTORE_USER_ID``/``_SESSION_ID``, else the root; ids typed by the
user are checked here, before any I/O, and echoed clipped, with a pointer to the right command when
an artifact id is given where a checkpoint id belongs or the other way round.
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from tierstore import ids
from tierstore.backends import registry
from tierstore.backends.base import MAX_KEY_LENGTH, StorageBackend
from tierstore.cli.render import shown
from tierstore.config import TierstoreSettings, backend_from_url
from tierstore.errors import InvalidInputError
from tierstore.scopes import check_scope_id

if TYPE_CHECKING:
    from tierstore.bridge import ArtifactsBridge

P = TypeVar("P", bound=argparse.ArgumentParser)
_KEY = re.compile(r"[A-Za-z0-9._-]+")


def choice(values: Sequence[str]) -> Callable[[str], str]:
    """An argparse ``type`` for ``choices=values``: the value it names, whatever its case (``l4`` is ``L4``), as
    settings read their choices."""
    by_folded = {value.casefold(): value for value in values}

    def named(text: str) -> str:
        return by_folded.get(text.strip().casefold(), text)

    named.__name__ = "choice"
    return named


@dataclass
class Invocation:
    """One run of a command: its parsed arguments and the settings, and the store they name."""

    args: argparse.Namespace
    settings: TierstoreSettings

    @property
    def json(self) -> bool:
        """Whether ``--json`` asked for one JSON document on stdout."""
        return bool(getattr(self.args, "json", False))

    @property
    def explicit_url(self) -> str | None:
        """``--url`` as given on the command line, if it was."""
        url: str | None = getattr(self.args, "url", None)
        return url

    def backend(self, url: str | None = None, *, existing: bool = True) -> StorageBackend:
        """The backend ``url`` (else ``--url``, else the settings) names; ``existing``: refuse a local path that
        holds no store, rather than treat it as an empty one (only commands that write may create a store)."""
        from tierstore.maintenance.doctor import require_store  # imported by the commands that open a store only

        backend = backend_from_url(url or self.explicit_url or self.settings.url, self.settings)
        if existing:
            require_store(backend)
        return backend

    @property
    def user_id(self) -> str | None:
        """The user the command is bound to: ``--user``, else ``TIERSTORE_USER_ID``; checked (InvalidInputError)."""
        user = getattr(self.args, "user", None)  # given, even empty (refused), it wins over the settings
        user = self.settings.user_id if user is None else user
        return None if user is None else check_scope_id(user, "user id")

    @property
    def session_id(self) -> str | None:
        """The session the command is bound to: ``--session``, else ``TIERSTORE_SESSION_ID``; checked."""
        session = getattr(self.args, "session", None)
        session = self.settings.session_id if session is None else session
        return None if session is None else check_scope_id(session, "session id")

    def bridge(self, backend: StorageBackend | None = None) -> ArtifactsBridge:
        """A bridge on ``backend`` (else the store the invocation names), bound to the command's user and session
        (checked before any I/O), with the settings' compression and concurrency."""
        from tierstore.bridge import ArtifactsBridge  # imported by the commands that open a store only

        user_id, session_id = self.user_id, self.session_id
        return ArtifactsBridge(
            backend=backend if backend is not None else self.backend(),
            user_id=user_id,
            session_id=session_id,
            compression=self.settings.compression,
            concurrency=self.settings.concurrency,
        )


@contextlib.asynccontextmanager
async def closing(backend: StorageBackend) -> AsyncIterator[StorageBackend]:
    """``backend``, closed when the block ends however it ends."""
    try:
        yield backend
    finally:
        await backend.aclose()


def artifact_id(value: str, *, checkpoint_command: str | None = None) -> str:
    """A page's artifact id (``mem_L3_1``); for a checkpoint id, the message names ``checkpoint_command``."""
    _check_key(value, "artifact id")
    if value.startswith(ids.CHECKPOINT_PREFIX):
        instead = f": `tierstore checkpoints {checkpoint_command} {value}`" if checkpoint_command else ""
        raise InvalidInputError(f"{shown(value)} is a checkpoint id, not an artifact id{instead}")
    if not value.startswith(ids.PAGE_PREFIX):
        raise InvalidInputError(f"{shown(value)} is not an artifact id (mem_<tier>_<n>, e.g. mem_L3_1)")
    return value


def checkpoint_id(value: str, *, artifact_command: str | None = None) -> str:
    """A checkpoint id (``ckpt_…``); for an artifact id, the message names ``artifact_command``."""
    _check_key(value, "checkpoint id")
    if value.startswith(ids.PAGE_PREFIX):
        instead = f": `tierstore {artifact_command} {value}`" if artifact_command else ""
        raise InvalidInputError(f"{shown(value)} is an artifact id, not a checkpoint id{instead}")
    if not value.startswith(ids.CHECKPOINT_PREFIX):
        raise InvalidInputError(
            f"{shown(value)} is not a checkpoint id (ckpt_<time>_<random>; see `tierstore checkpoints`)"
        )
    return value


def _check_key(value: str, what: str) -> None:
    if len(value) > MAX_KEY_LENGTH:
        raise InvalidInputError(f"invalid {what} {shown(value)}: at most {MAX_KEY_LENGTH} characters")
    if not _KEY.fullmatch(value) or value in {".", ".."}:
        raise InvalidInputError(f"invalid {what} {shown(value)}: expected A-Z a-z 0-9 . _ -")


Run = Callable[[Invocation], Awaitable[int]]


class AddCommand(Protocol):
    """Adds a subcommand that runs ``run``; returns its parser, for the command's own arguments."""

    def __call__(
        self, name: str, run: Run, help: str, *, aliases: Sequence[str] = (), url: bool = True
    ) -> argparse.ArgumentParser: ...


def common_options(kind: type[P], *, url: bool = True) -> P:
    """A ``kind`` parser to inherit from: ``--url`` (unless ``url`` is False: a command that names its stores
    otherwise) and ``--json``, accepted before or after any command."""
    common = kind(add_help=False)
    if url:
        common.add_argument(
            "--url",
            default=argparse.SUPPRESS,
            help=f"backend URL: {registry.url_forms()} "
            "(default: $TIERSTORE_URL, else the local-disk store in the data directory)",
        )
    if url:
        common.add_argument(
            "--user",
            default=argparse.SUPPRESS,
            metavar="USER_ID",
            help="work in this user's scope: its shared pages, and with --session that session's "
            "(default: $TIERSTORE_USER_ID; neither: the pages written without a scope)",
        )
        common.add_argument(
            "--session",
            default=argparse.SUPPRESS,
            metavar="SESSION_ID",
            help="work in this session's scope (default: $TIERSTORE_SESSION_ID)",
        )
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts")
    return common
