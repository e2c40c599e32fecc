"""Version records' keys, their content, and the ``stored`` stamp of a versioned page (issue 28;
:mod:`tierstore.versions` argues the protocol that writes and reads them).

Contract: version record *n* of a page id in a scope is ``v.{P}.{9999999999 - n}`` (``P`` =
:func:`tierstore.scopes.segment` of the page id), so the newest lists first; :class:`VersionRecord` is what such a
record holds, and :meth:`VersionRecord.parse` refuses (IntegrityError) one that does not say what its key does.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from tierstore import ids
from tierstore.backends.base import ListEntry
from tierstore.concurrency import bounded_gather
from tierstore.enums import StorageTier
from tierstore.errors import IntegrityError
from tierstore.scopes import segment

if TYPE_CHECKING:
    from tierstore.protocol.references import References

VERSIONS_PREFIX: Final = ids.VERSION_RECORD_PREFIX
LAST_VERSION: Final = 9_999_999_999
"""The highest version number: ``LAST_VERSION - n`` in a key is 10 digits, so the newest lists first in key order."""
DIGITS: Final = ids.VERSION_DIGITS
VER: Final = "ver"
"""Object metadata of a versioned page: its version number."""
STORED: Final = "stored"
"""Object metadata of a versioned page: the storing host's time of its store (its record's ``created``). Unlike the
page's last-modified time, which ``set_tier`` moves (a disk rewrite, an S3 or GCS copy in place), it stays what it
was: ``fsck --repair`` orders pages whose records were lost by it (:mod:`tierstore.maintenance.repair`)."""


def stored_stamp(when: datetime) -> str:
    """The value of :data:`STORED` for a store at ``when``: UTC, to the microsecond, ASCII."""
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def read_stored_stamp(value: str | None) -> datetime | None:
    """What :func:`stored_stamp` wrote; None for anything else (a page stored before pages carried it)."""
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def versions_prefix(page_id: str) -> str:
    """The prefix of every version record of ``page_id`` in a scope (``v.{P}.``)."""
    return f"{VERSIONS_PREFIX}{segment('page', page_id)}."


def version_key(page_id: str, version: int) -> str:
    """The key of version record ``version`` of ``page_id`` in a scope."""
    return f"{versions_prefix(page_id)}{LAST_VERSION - version:0{DIGITS}d}"


def listed_version(key: str, prefix: str) -> int | None:
    """The version number a listed key under ``prefix`` names; None for any other key."""
    rest = key[len(prefix) :]
    if not key.startswith(prefix) or len(rest) != DIGITS or not rest.isdigit():
        return None
    version = LAST_VERSION - int(rest)
    return version if version >= 1 else None


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """A version record as stored: which artifact holds version ``version`` of ``page_id``, and what it held."""

    key: str
    version: int
    page_id: str
    artifact_id: str
    tier: str
    size: int
    created: datetime
    modality: str
    page_type: str
    checksum: str
    rebuilt: bool = False
    """Written again by ``fsck --repair`` from its page, not by its store: the time the store dates it is the
    repair's, which says nothing of when its number was claimed (:mod:`tierstore.maintenance.repair`)."""

    def fields(self) -> dict[str, Any]:
        """The record's content, as its frame holds it (``rebuilt`` only when true: a store's record is as ever)."""
        return {
            "version": self.version,
            "page_id": self.page_id,
            "artifact": self.artifact_id,
            "tier": self.tier,
            "size": self.size,
            "created": self.created.isoformat(),
            "modality": self.modality,
            "page_type": self.page_type,
            "checksum": self.checksum,
        } | ({"rebuilt": True} if self.rebuilt else {})

    @classmethod
    def parse(cls, key: str, record: dict[str, Any], page_id: str) -> VersionRecord:
        """The record decoded from the frame at ``key``; IntegrityError when it does not say what its key does."""
        try:
            parsed = cls(
                key=key,
                version=record["version"],
                page_id=record["page_id"],
                artifact_id=record["artifact"],
                tier=StorageTier(record["tier"]).value,
                size=record["size"],
                created=datetime.fromisoformat(record["created"]),
                modality=record["modality"],
                page_type=record["page_type"],
                checksum=record["checksum"],
                rebuilt=record.get("rebuilt", False),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"version record {key} is malformed ({exc})", key=key) from exc
        well_typed = all(isinstance(v, int) and not isinstance(v, bool) for v in (parsed.version, parsed.size))
        well_typed = well_typed and isinstance(parsed.rebuilt, bool)
        if not well_typed or not all(isinstance(v, str) for v in (parsed.page_id, parsed.artifact_id)):
            raise IntegrityError(f"version record {key} is malformed", key=key)
        if parsed.page_id != page_id or key != version_key(page_id, parsed.version):
            raise IntegrityError(f"version record {key} names another version or page id", key=key)
        if ids.parse_artifact_id(parsed.artifact_id) is None:
            raise IntegrityError(f"version record {key} names no artifact", key=key)
        return parsed


async def stale_records(
    refs: References, pages: Collection[str], concurrency: int, named: dict[str, str] | None = None
) -> tuple[list[ListEntry], list[str]]:
    """The version records of the scope of ``refs`` (maintenance's handle on it) that name no page among ``pages``
    (listed before them: a store in flight shows here too, which is why ``gc`` waits its grace period), and the keys
    of those that cannot be read (``named`` gets what each other names). One listing and one read a record."""
    entries = [e for e in await refs.listed(VERSIONS_PREFIX) if ids.is_version_record_key(e.key)]

    async def judge(entry: ListEntry) -> str | None:
        data = await refs.read(entry.key)
        if data is None:
            return None  # deleted meanwhile
        try:
            fields = refs.codec.decode_record(data, entry.key)
            record = VersionRecord.parse(entry.key, fields, str(fields.get("page_id")))  # its key must name it
        except IntegrityError:
            return "damaged"
        (named if named is not None else {})[entry.key] = record.artifact_id
        return None if record.artifact_id in pages else "stale"

    judged = await bounded_gather((judge(entry) for entry in entries), concurrency)
    stale = [entry for entry, verdict in zip(entries, judged, strict=True) if verdict == "stale"]
    return stale, [entry.key for entry, verdict in zip(entries, judged, strict=True) if verdict == "damaged"]
