"""The registry of scopes (issue 28): one record a user and one a session, at the root of the store.

Keys (``docs/design/scopes.md``; they name stored objects, so tests pin them): ``scope_{U}`` for a user and
``scope_{U}.{S}`` for a session of that user, ``U`` and ``S`` the :func:`tierstore.scopes.segment` digests of the
ids (a session of no user belongs to the user ``""``, whose record names no user). A record is a frame of kind
``record`` bound to its key, holding the ids in clear (``user``, ``session``) and when it was written (``created``,
this host's clock: a label, never compared with another host's). Later per-scope state (a wrapped data key, quotas)
goes in the same record.

Contract (:class:`Registration`, which a bridge bound to a scope holds): the scope's records are looked at (one
HEAD each, at once: the user's, and the session's for a session's scope) by every write that can leave a page or a
checkpoint there, and those not there are written, create-if-absent (a record already there, whatever its time, is
kept: the scope's first write names it), user's first, before that write's page or manifest. No look is remembered
from one write to the next: an erasure, or ``fsck --repair`` deleting a damaged record, may have deleted the records
since, and the scope's next write must name it again (issue 28, round 13a). Where each write looks, and why that
never brings an erased scope's record back while its erasure runs: :mod:`tierstore.artifacts.scoped`. Records are the
index of scopes, not their content: ``tierstore users`` and ``sessions`` list them and count each scope's pages from
the store's listings.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tierstore.backends.base import StorageBackend
from tierstore.clock import Clock
from tierstore.codec import Codec
from tierstore.concurrency import bounded_gather
from tierstore.errors import ConflictError, IntegrityError
from tierstore.scopes import (
    RECORD_PREFIX,
    is_user_scope,
    record_key,
    scope_of_record,
    scope_prefix,
    user_prefix,
)

logger = logging.getLogger(__name__)

__all__ = [
    "RECORD_PREFIX",
    "Registration",
    "ScopeRecord",
    "is_user_key",
    "read_records",
    "register",
    "session_key",
    "user_key",
]


def user_key(user_id: str | None) -> str:
    """The key of a user's record (``None``: the user of sessions that have none)."""
    return record_key(user_prefix(user_id))


def session_key(user_id: str | None, session_id: str) -> str:
    """The key of a session's record."""
    return record_key(scope_prefix(user_id, session_id))


@dataclass(frozen=True, slots=True)
class ScopeRecord:
    """One registry record as read: the ids it names (``user_id`` None: no user; ``session_id`` None: a user's
    record) and when its scope was first written."""

    key: str
    user_id: str | None
    session_id: str | None
    created: datetime | None


async def register(
    backend: StorageBackend, codec: Codec, clock: Clock, user_id: str | None, session_id: str | None
) -> None:
    """Write the records of the scope of ``user_id`` and ``session_id`` that are not there yet (user's first)."""
    now = clock.now().isoformat()
    records: list[tuple[str, dict[str, Any]]] = [(user_key(user_id), {"user": user_id, "created": now})]
    if session_id is not None:
        records.append((session_key(user_id, session_id), {"user": user_id, "session": session_id, "created": now}))
    for key, record in records:
        with contextlib.suppress(ConflictError):  # there already: the scope's first write named it
            await backend.put(key, codec.encode_record(key, record).data, metadata={"kind": "scope"}, if_absent=True)


class Registration:
    """The registry records of one scope (a user's, or a session's with its user's), as the bridge bound to it looks
    at them and writes them (module contract). ``backend`` is the whole store (records are at its root)."""

    def __init__(
        self, backend: StorageBackend, codec: Codec, clock: Clock, user_id: str | None, session_id: str | None
    ) -> None:
        self._backend = backend
        self._codec = codec
        self._clock = clock
        self.user_id = user_id
        self.session_id = session_id
        user = user_key(user_id)
        self.keys: tuple[str, ...] = (user,) if session_id is None else (user, session_key(user_id, session_id))
        """The scope's records, the user's first."""

    async def missing(self) -> list[str]:
        """The scope's records not there now (one HEAD each, at once), user's first."""
        found = await bounded_gather((self._backend.head(key) for key in self.keys), len(self.keys))
        return [key for key, info in zip(self.keys, found, strict=True) if info is None]

    async def write(self) -> None:
        """Write the scope's records, create-if-absent, user's first (:func:`register`)."""
        await register(self._backend, self._codec, self._clock, self.user_id, self.session_id)


def is_user_key(key: str) -> bool:
    """Whether ``key`` is a user's record (else a session's, or no record of ours)."""
    prefix = scope_of_record(key)
    return prefix is not None and is_user_scope(prefix)


async def read_records(
    backend: StorageBackend, codec: Codec, prefix: str = RECORD_PREFIX, *, concurrency: int = 32
) -> list[ScopeRecord]:
    """Every record under ``prefix`` (the whole registry, or ``user_key(...) + "."`` for a user's sessions), read.
    One that cannot be read is left out and logged (``fsck`` is where damage is reported); a key that is no record's
    (a user's ``scope_notes``) is not one, and is left out silently."""
    keys = [entry.key async for entry in backend.list(prefix) if scope_of_record(entry.key) is not None]

    async def read(key: str) -> ScopeRecord | None:
        try:
            data = await backend.get(key)
            if data is None:
                return None
            record = codec.decode_record(data, key)
            created = record.get("created")
            return ScopeRecord(
                key,
                _id_or_none(record.get("user")),
                _id_or_none(record.get("session")),
                datetime.fromisoformat(created) if isinstance(created, str) else None,
            )
        except (IntegrityError, ValueError) as exc:
            logger.warning("scope record %s cannot be read: %s", key, exc)
            return None

    found = await bounded_gather((read(key) for key in keys), concurrency)
    return [record for record in found if record is not None]


def _id_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
