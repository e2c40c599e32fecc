"""A catalog snapshot: rows of cached ``head`` answers, each tied to what a listing showed of its key.

Contract:

* A row is the listing's change token, size and storage class of one key (:class:`~tierstore.backends.base.ListEntry`)
  with the :class:`~tierstore.backends.base.ObjectInfo` that ``head`` gave for it then. :meth:`Row.proven_by` holds only
  when a listing entry shows the same key with the same token (not None), size and storage class: only then may the
  row stand for a ``head``.
* Only an answer that stays true while the token does is a row (:func:`foldable`): an object's archive and restore
  state moves with time and restores, not with its token, so such an object is never a row (it is asked each time).
  Only an answer consistent with the listed entry is a row: one whose size or storage class differs from the
  listing's was given after a change the listing did not show (a tier change, a rewrite between the listing and the
  ``head``), so pairing it with the listed token would let a token that comes back prove a wrong answer.
* A snapshot is a record frame (:mod:`tierstore.codec.documents`) bound to its whole key: a JSON object
  ``{"catalog": 1, "rows": {key: [token, size, class, metadata, tier, head class, modified, head version]}}``.
  :func:`decode_snapshot` checks every field's type and every key's shape; a damaged, truncated, misplaced or
  malformed snapshot is :class:`~tierstore.errors.IntegrityError` as a whole, never some of its rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from tierstore.backends.base import ListEntry, ObjectInfo, check_key
from tierstore.codec import documents
from tierstore.enums import StorageTier
from tierstore.errors import IntegrityError, InvalidInputError

FORMAT: Final = 1
_TIERS: Final = {tier.value: tier for tier in StorageTier}


@dataclass(frozen=True, slots=True)
class Row:
    """One cached ``head`` answer and the listing it was seen with (module contract)."""

    token: str
    size: int
    listed_class: str | None
    info: ObjectInfo

    def proven_by(self, entry: ListEntry) -> bool:
        """Whether ``entry`` (of the same key, listed now) shows the object as it was when the row was made."""
        return (
            entry.version is not None
            and entry.version == self.token
            and entry.size == self.size
            and entry.storage_class == self.listed_class
        )


def foldable(entry: ListEntry, info: ObjectInfo) -> Row | None:
    """The row of ``head``'s answer ``info`` to the listed ``entry``, or None when it may not be cached: the listing
    gave no token, the answer disagrees with what the listing showed (its size, its storage class where the listing
    gives one: the object changed between the two, and the answer is not what the token stands for), or the answer
    has an archive or restore state."""
    if entry.version is None or info.size != entry.size or info.archived or info.restore is not None:
        return None
    if entry.storage_class is not None and info.storage_class != entry.storage_class:
        return None
    return Row(entry.version, entry.size, entry.storage_class, info)


def encode_snapshot(bound: str, rows: Mapping[str, Row]) -> bytes:
    """The frame of a snapshot of ``rows``, bound to ``bound`` (its whole key in the store)."""
    body = {"catalog": FORMAT, "rows": {key: _row_fields(row) for key, row in rows.items()}}
    return documents.encode_record(bound, body).data


def decode_snapshot(data: bytes | bytearray | memoryview, bound: str) -> dict[str, Row]:
    """The rows of the snapshot stored under ``bound``, verified (module contract)."""
    record = documents.decode_record(data, bound)
    rows = record.get("rows")
    if record.get("catalog") != FORMAT or not isinstance(rows, dict):
        raise IntegrityError("catalog snapshot of an unknown format")
    try:
        return {check_key(key): _row(key, fields) for key, fields in rows.items()}
    except (InvalidInputError, TypeError, ValueError) as exc:
        raise IntegrityError(f"catalog snapshot holds a malformed row: {exc}") from None


def _row_fields(row: Row) -> list[Any]:
    info = row.info
    modified = None if info.last_modified is None else info.last_modified.isoformat()
    tier = None if info.tier is None else info.tier.value
    metadata = dict(info.metadata)
    return [row.token, row.size, row.listed_class, metadata, tier, info.storage_class, modified, info.version]


def _row(key: str, fields: Any) -> Row:
    if not isinstance(fields, list) or len(fields) != 8:
        raise ValueError(f"row of {key!r} is not a list of 8")
    token, size, listed_class, metadata, tier, head_class, modified, version = fields
    if not isinstance(token, str) or type(size) is not int or size < 0 or not isinstance(metadata, dict):
        raise ValueError(f"row of {key!r}")
    if not all(isinstance(name, str) and isinstance(value, str) for name, value in metadata.items()):
        raise ValueError(f"metadata of {key!r}")
    for text in (listed_class, head_class, modified, version):
        if text is not None and not isinstance(text, str):
            raise ValueError(f"row of {key!r}")
    if tier is not None and tier not in _TIERS:
        raise ValueError(f"tier of {key!r}")
    info = ObjectInfo(
        key=key,
        size=size,
        metadata=metadata,
        last_modified=None if modified is None else datetime.fromisoformat(modified),
        tier=None if tier is None else _TIERS[tier],
        storage_class=head_class,
        version=version,
    )
    return Row(token, size, listed_class, info)
