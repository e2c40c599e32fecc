"""The registry of scopes (issue 28): one record a user and one a session, at the root of the store.

Keys (``docs/design/scopes.md``; they name stored objects, so tests pin them): ``scope_{U}`` for a user and
``scope_{U}.{S}`` for a session of that user, ``U`` and ``S`` the :func:`tierstore.scopes.segment` digests of the
ids (a session of no user belongs to the user ``""``, whose record names no user). A record is a frame of kind
``record`` bound to its key, holding the ids in clear (``user``, ``session``) and when it was written (``created``,
this host's clock: a label, never compared with another host's). Later per-scope state (a wrapped data key, quotas)
goes in the same record.

Contract: a bridge bound to a scope writes its records before its first page or manifest there, and again before a
write once a minute has passed (:data:`tierstore.artifacts.scoped.REGISTER_AGAIN_AFTER`), create-if-absent (a record
already there, whatever its time, is kept: the scope's first write names it), user record first; so every scope
holding a page or checkpoint has its records, unless they were deleted behind tierstore's back, or by an erasure
(which deletes them last) that a write outlived: that scope's next life is named again by its bridges' next write
after that minute (``docs/design/scopes.md``, Erasure). Records are the index of scopes, not their
content: ``tierstore users`` and ``sessions`` list them and count each scope's pages from the store's listings.
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

__all__ = ["RECORD_PREFIX", "ScopeRecord", "is_user_key", "read_records", "register", "session_key", "user_key"]


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
