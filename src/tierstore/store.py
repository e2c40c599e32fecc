"""The store-level handle (issue 28): a whole store, bound to no user, that lists users and sessions and hands out
bridges bound to any of them.

Contract of :class:`Store`:

* ``users()`` lists the users the registry names (:mod:`tierstore.scope_records`; sessions of no user under the user
  ``None``), each with its sessions' count and the pages and bytes of all its scopes (shared and sessions');
  ``sessions(user_id)`` lists a user's sessions with their pages and bytes. Each says whether it is being erased
  (``erasing``: an erasing tomb is in its scope, or its user's; an erasure running, or one that stopped, which the
  same ``delete_*`` call resumes). Counts come from the store's listings of
  each user's keys (one listing per user, paginated), never from reading pages. A scope whose registry record is gone
  (an erasure, a repair, or behind tierstore's back) is not listed until its next write registers it again
  (:mod:`tierstore.artifacts.scoped`: every write looks).
* ``bridge(user_id=, session_id=)`` is a bridge bound to that scope, for reading across scopes explicitly (one bridge
  a scope: nothing mixes them); ``legacy()`` is the unbound bridge of the root, where pages written before scopes
  stay. Ids are checked as everywhere (:func:`tierstore.scopes.check_scope_id`, InvalidInputError), before any I/O.
* ``delete_user(user_id)`` / ``delete_session(user_id, session_id)`` erase a user (its shared scope and every session)
  or one session: every page, version, checkpoint, lease, tomb and registry record, safely against checkpoints and
  stores of that scope running meanwhile (:mod:`tierstore.protocol.erasure` argues how and says what waits).

No I/O at construction; ``aclose()`` (or ``async with``) releases the backend's clients.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING

from tierstore import ids
from tierstore.backends.base import StorageBackend
from tierstore.bridge import ArtifactsBridge
from tierstore.clock import SYSTEM_CLOCK, Clock
from tierstore.codec import Codec, Compression
from tierstore.concurrency import bounded_gather
from tierstore.errors import NotSupportedError
from tierstore.protocol import DEFAULT_LEASE_TTL
from tierstore.protocol.erasure import Erased, ErasureOptions, Sleep, erase_session, erase_user
from tierstore.protocol.records import is_erasing_tomb
from tierstore.scope_records import ScopeRecord, is_user_key, read_records, user_key
from tierstore.scopes import check_scope_id, scope_of, scope_of_record, user_prefix
from tierstore.validate import type_name

if TYPE_CHECKING:
    from tierstore.config import TierstoreSettings


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user of the store: its id (None: the sessions of no user), its sessions, and its pages and bytes in all its
    scopes; ``created``: when its first page or checkpoint was written (its writer's clock)."""

    user_id: str | None
    sessions: int
    pages: int
    bytes: int
    created: datetime | None
    erasing: bool = False
    """An erasure of the user was asked for and has not ended (running, or stopped: ``delete_user`` resumes it)."""


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A session of a user: its id, its pages and bytes, and when its first page or checkpoint was written."""

    session_id: str
    user_id: str | None
    pages: int
    bytes: int
    created: datetime | None
    erasing: bool = False
    """An erasure of the session or of its user was asked for and has not ended (``delete_session`` or
    ``delete_user`` resumes it)."""


@dataclass(slots=True)
class _Tally:
    pages: int = 0
    bytes: int = 0
    sessions: dict[str, tuple[int, int]] = field(default_factory=dict)
    erasing: set[str] = field(default_factory=set)


class Store:
    """A whole store, bound to no user (module contract)."""

    def __init__(
        self,
        backend: StorageBackend,
        *,
        compression: Compression = "none",
        concurrency: int = 32,
        lease_ttl: timedelta = DEFAULT_LEASE_TTL,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not isinstance(backend, StorageBackend):
            raise NotSupportedError(
                f"a Store needs a backend implementing tierstore's StorageBackend protocol, not {type_name(backend)}"
            )
        self.backend = backend
        self._root = ArtifactsBridge(
            backend, compression=compression, concurrency=concurrency, lease_ttl=lease_ttl, clock=clock
        )
        self._codec = Codec(compression)
        self._lease_ttl = lease_ttl
        self._clock = clock

    def __repr__(self) -> str:
        return f"Store({self.backend!r})"

    @classmethod
    def from_env(cls, settings: TierstoreSettings | None = None) -> Store:
        """The store the ``TIERSTORE_*`` environment (or ``settings``) names, with its compression and concurrency
        for the bridges it hands out (``TIERSTORE_USER_ID`` / ``_SESSION_ID`` bind bridges, not a store). No I/O."""
        from tierstore.config import backend_from_url, load_settings

        settings = settings if settings is not None else load_settings()
        backend = backend_from_url(settings.url, settings)
        if not isinstance(backend, StorageBackend):  # every URL names a built-in backend: for the type checker
            raise NotSupportedError(f"{type_name(backend)} is not a StorageBackend")
        return cls(backend, compression=settings.compression, concurrency=settings.concurrency)

    # -- bridges -------------------------------------------------------------------------------------------

    def bridge(self, *, user_id: str | None = None, session_id: str | None = None) -> ArtifactsBridge:
        """A bridge bound to ``user_id`` and ``session_id`` (both None: the root, as :meth:`legacy`)."""
        return self._root.scoped(user_id=user_id, session_id=session_id)

    def legacy(self) -> ArtifactsBridge:
        """The unbound bridge of the root: pages and checkpoints written without a scope."""
        return self._root

    # -- users and sessions --------------------------------------------------------------------------------

    async def users(self) -> list[UserInfo]:
        """Every user the registry names, with its sessions' count and the pages and bytes of all its scopes, and
        whether it is being erased; the sessions of no user as the user None (first). Ordered by id."""
        records = await read_records(self.backend, self._codec, concurrency=self._root.concurrency)
        users = [record for record in records if is_user_key(record.key)]
        sessions = [record for record in records if not is_user_key(record.key)]

        async def describe(user: ScopeRecord) -> UserInfo:
            prefix = user_prefix(user.user_id)
            tally = await self._count(prefix)
            count = sum(1 for session in sessions if session.key.startswith(user.key + "."))
            return UserInfo(user.user_id, count, tally.pages, tally.bytes, user.created, prefix in tally.erasing)

        found = await bounded_gather((describe(user) for user in users), self._root.concurrency)
        return sorted(found, key=lambda user: (user.user_id is not None, user.user_id or ""))

    async def sessions(self, user_id: str | None = None) -> list[SessionInfo]:
        """The sessions of ``user_id`` (None: the sessions of no user) the registry names, each with its pages and
        bytes and whether it is being erased (itself, or as a session of a user being erased), ordered by id."""
        user = None if user_id is None else check_scope_id(user_id, "user id")
        records = await read_records(self.backend, self._codec, user_key(user) + ".")
        prefix = user_prefix(user)
        tally = await self._count(prefix)
        found = []
        for record in records:
            if record.session_id is None or record.user_id != user:
                continue
            scope = scope_of_record(record.key) or ""
            pages, size = tally.sessions.get(scope, (0, 0))
            erasing = bool({scope, prefix} & tally.erasing)
            found.append(SessionInfo(record.session_id, user, pages, size, record.created, erasing))
        return sorted(found, key=lambda session: session.session_id)

    async def _count(self, prefix: str) -> _Tally:
        """Pages and bytes under a user's prefix, shared and sessions' alike, each session's (by its scope prefix),
        and the scopes holding an erasing tomb, from one listing."""
        tally = _Tally()
        async for entry in self.backend.list(prefix):
            scope = scope_of(entry.key)
            tail = entry.key[len(scope) :]
            if is_erasing_tomb(tail):
                tally.erasing.add(scope)
            if ids.parse_artifact_id(tail) is None:
                continue
            tally.pages, tally.bytes = tally.pages + 1, tally.bytes + entry.size
            if scope != prefix:
                held = tally.sessions.get(scope, (0, 0))
                tally.sessions[scope] = (held[0] + 1, held[1] + entry.size)
        return tally

    # -- erasure --------------------------------------------------------------------------------------------

    async def delete_user(
        self, user_id: str | None, *, settle: timedelta | None = None, sleep: Sleep = asyncio.sleep
    ) -> Erased:
        """Erase ``user_id`` (None: every session of no user): its shared scope, every session of it, and their
        registry records (:func:`tierstore.protocol.erasure.erase_user`). It waits for the scope's running
        checkpoints and, once, for the settle period (``settle``, default: the backend's request deadline times
        its attempts); ``sleep`` is how it waits. InUseError when a lease stays live (a running agent): the user
        stays erasing, refusing checkpoints, and a later call resumes. Resumes one that crashed."""
        return await erase_user(self.backend, user_id, self._erasure(settle, sleep))

    async def delete_session(
        self,
        user_id: str | None,
        session_id: str,
        *,
        settle: timedelta | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> Erased:
        """Erase one session of ``user_id`` (None: a session of no user) and its registry record, as
        :meth:`delete_user` does a user's; the user's shared scope and other sessions stay."""
        return await erase_session(self.backend, user_id, session_id, self._erasure(settle, sleep))

    def _erasure(self, settle: timedelta | None, sleep: Sleep) -> ErasureOptions:
        """The erasure's options: the caller's two (keywords, as every other call of the store takes them), and the
        store's own lease lifetime, clock and concurrency, which are its bridges' (so a caller cannot pass an erasure
        a lease lifetime shorter than the leases it waits for)."""
        return ErasureOptions(
            settle=settle, sleep=sleep, lease_ttl=self._lease_ttl, clock=self._clock, concurrency=self._root.concurrency
        )

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Release the backend's clients (the store stays usable: a later call opens them again)."""
        await self._root.aclose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
