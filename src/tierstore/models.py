"""The page and the records the bridge returns about stored pages and checkpoints.

``MemoryPage`` accepts every field of chuk-ai-session-manager's page, with the same types and defaults, so a page
dumped by one library validates in the other.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tierstore.enums import CompressionLevel, Modality, PageType, StorageTier


def _now() -> datetime:
    return datetime.now(UTC)


class MemoryPage(BaseModel):
    """One unit of an agent's memory: text, image, audio, video or structured content, plus what describes it."""

    page_id: str
    session_id: str | None = None
    modality: Modality
    page_type: PageType = PageType.TRANSCRIPT
    provenance: list[str] = Field(default_factory=list)
    represents: str | None = None
    representation_level: CompressionLevel = CompressionLevel.FULL
    storage_tier: StorageTier = StorageTier.L1
    artifact_id: str | None = None
    content: Any | None = None
    compression_level: CompressionLevel = CompressionLevel.FULL
    representations: dict[CompressionLevel, str] = Field(default_factory=dict)
    size_bytes: int = 0
    size_tokens: int | None = None
    created_at: datetime = Field(default_factory=_now)
    last_accessed: datetime = Field(default_factory=_now)
    access_count: int = 0
    importance: float = Field(default=0.5, ge=0.0, le=1.0)
    dirty: bool = False
    pinned: bool = False
    parent_page_id: str | None = None
    mime_type: str | None = None
    duration_seconds: float | None = None
    dimensions: tuple[int, int] | None = None
    transcript: str | None = None
    caption: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def age_hours(self) -> float:
        """Hours since the page was created (a naive ``created_at`` read as UTC)."""
        created = self.created_at if self.created_at.tzinfo else self.created_at.replace(tzinfo=UTC)
        return (_now() - created).total_seconds() / 3600

    def mark_accessed(self) -> None:
        """Record a use: now is the last access, and the count goes up by one."""
        self.last_accessed = _now()
        self.access_count += 1

    def mark_dirty(self) -> None:
        """Record that the page changed since it was last stored."""
        self.dirty = True

    def mark_clean(self) -> None:
        """Record that the stored copy holds the page as it is."""
        self.dirty = False

    def estimate_tokens(self) -> int:
        """Tokens the page costs in a context window: ``size_tokens`` when known, else about 4 characters a token."""
        if self.size_tokens is not None:
            return self.size_tokens
        if self.content is None:
            return 0
        if isinstance(self.content, str):
            return len(self.content) // 4
        if isinstance(self.content, dict | list):
            return len(json.dumps(self.content, default=str)) // 4
        return self.size_bytes // 4 if self.size_bytes > 0 else 100


class PageEntry(BaseModel):
    """A stored page as the store's listing shows it (``list_page_entries``): its fields are named as
    :class:`PageMetadata`'s, and as ``tierstore ls --json`` prints them."""

    model_config = ConfigDict(frozen=True)

    artifact_id: str
    size_bytes: int
    """Bytes the stored object takes (the encoded page)."""
    last_modified: datetime | None = None
    """When the store last wrote it, by the store's clock."""


class PageVersion(BaseModel):
    """One version of a page id in a bound bridge's scope (``list_versions``): which artifact holds it, and when it
    was stored (the storing host's clock, from its version record); size and tier are the stored page's now."""

    model_config = ConfigDict(frozen=True)

    page_id: str
    version: int
    """1 for the first store of the page id in its scope, then one more than the newest remaining version."""
    artifact_id: str
    scope: Literal["session", "user"]
    tier: str
    created_at: datetime
    size_bytes: int
    """Bytes the stored object takes (the encoded page)."""


class PageMetadata(BaseModel):
    """What is known about a stored page without reading its body."""

    page_id: str
    modality: str
    tier: str
    compression_level: int
    size_bytes: int
    """Bytes the stored object takes (the encoded page)."""
    created_at: datetime
    checksum: str | None = None
    artifact_id: str | None = None
    page_type: str | None = None
    storage_class: str | None = None
    archived: bool = False
    """True when loading needs ``restore_page`` first."""
    restore_state: str | None = None
    restore_expires_at: datetime | None = None


class PageState(BaseModel):
    """A page's bookkeeping at checkpoint time (the codec's ``VOLATILE_FIELDS``): a checkpoint that reuses an
    artifact written earlier restores the page with these values, not the artifact's older ones."""

    last_accessed: datetime
    access_count: int
    dirty: bool
    storage_tier: StorageTier
    artifact_id: str | None = None


class UTCDateTime(datetime):
    """An aware UTC datetime that also orders against naive datetimes, reading them as UTC.

    Python refuses ``<`` and ``-`` between naive and aware datetimes. A checkpoint's ``created_at`` is compared
    with ``datetime.utcnow()`` (naive UTC, as the spec's cleanup example does) and with ``datetime.now(UTC)``
    (aware, as chuk-ai-session-manager writes), so both must work. Python gives a subclass's reflected operator
    priority, so ``naive < created_at`` and ``naive - created_at`` come here too. Hashing is that of the aware
    value: mixing naive and aware datetimes as dict keys stays unsupported, as in Python.
    """

    def _operand(self, other: object) -> datetime | None:
        if not isinstance(other, datetime):
            return None
        return other.replace(tzinfo=UTC) if other.tzinfo is None else other

    def __eq__(self, other: object) -> bool:
        operand = self._operand(other)
        return NotImplemented if operand is None else datetime.__eq__(self, operand)

    def __ne__(self, other: object) -> bool:
        operand = self._operand(other)
        return NotImplemented if operand is None else datetime.__ne__(self, operand)

    def __lt__(self, other: object) -> bool:
        operand = self._operand(other)
        return NotImplemented if operand is None else datetime.__lt__(self, operand)

    def __le__(self, other: object) -> bool:
        operand = self._operand(other)
        return NotImplemented if operand is None else datetime.__le__(self, operand)

    def __gt__(self, other: object) -> bool:
        operand = self._operand(other)
        return NotImplemented if operand is None else datetime.__gt__(self, operand)

    def __ge__(self, other: object) -> bool:
        operand = self._operand(other)
        return NotImplemented if operand is None else datetime.__ge__(self, operand)

    __hash__ = datetime.__hash__

    # A value derived out of UTC (naive, or another zone) is a plain datetime: reading a naive operand as UTC is
    # only right while this value is aware UTC, and ``created_at.replace(tzinfo=None)`` must act like any naive one.
    def replace(self, *args: Any, **kwargs: Any) -> datetime:  # type: ignore[override]
        """``datetime.replace``; the result stays a UTCDateTime only while it is aware UTC."""
        return _utc_or_plain(datetime.replace(self, *args, **kwargs))

    def astimezone(self, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
        """``datetime.astimezone``; the result stays a UTCDateTime only in UTC."""
        return _utc_or_plain(datetime.astimezone(self, tz))

    def __sub__(self, other: Any) -> Any:
        operand = self._operand(other)
        return datetime.__sub__(self, other if operand is None else operand)

    def __rsub__(self, other: Any) -> Any:
        operand = self._operand(other)
        return NotImplemented if operand is None else datetime.__sub__(operand, self)


def _utc_or_plain(value: datetime) -> datetime:
    if value.utcoffset() == timedelta(0) and value.tzinfo is UTC:
        return value if isinstance(value, UTCDateTime) else as_utc(value)
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        value.tzinfo,
        fold=value.fold,
    )


def as_utc(value: datetime) -> UTCDateTime:
    """``value`` as a :class:`UTCDateTime`; a naive value is taken to be UTC already."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return UTCDateTime.combine(aware.date(), aware.time(), UTC)


UTCTimestamp = Annotated[datetime, AfterValidator(as_utc)]
"""A datetime field stored as :class:`UTCDateTime`, whatever form (naive UTC or aware) it was given in."""


class CheckpointEntry(BaseModel):
    """One page of a checkpoint: the page, the artifact that holds it, and what lets a later checkpoint reuse it."""

    page_id: str
    artifact_id: str
    modality: str
    tier: str = "L3"
    """chuk-ai-session-manager's manifests have no tier: its ``store_checkpoint`` writes every page to L3."""
    checksum: str | None = None
    size_bytes: int = 0
    identity: str | None = None
    """The page's identity (``codec.PreparedPage.identity``): what lets a later checkpoint reuse the artifact."""
    state: PageState | None = None
    version: str | None = None
    """The artifact's version token (``ObjectInfo.version``) when it was last verified, if the backend gave one:
    a later checkpoint reuses the artifact on one ``head`` that shows the same token."""


class CheckpointManifest(BaseModel):
    """What a checkpoint holds: its name, when it was made, and one entry per page, in order."""

    model_config = ConfigDict(validate_assignment=True)

    name: str
    created_at: UTCTimestamp
    """Aware UTC, and comparable with naive UTC too (``datetime.utcnow()``): see :class:`UTCDateTime`."""
    page_count: int
    pages: list[CheckpointEntry] = Field(default_factory=list)
    checkpoint_id: str = ""
    format: int = 1


class StorageStats(BaseModel):
    """What a bridge's ``get_stats`` reports; every field chuk-ai-session-manager writes has its default here."""

    model_config = ConfigDict(frozen=True)

    backend: str
    persistent: bool = False
    session_id: str | None = None
    pages_stored: int = 0
    total_bytes: int = 0
    checkpoints: int | None = None
    exact: bool = True
    """False when the backend cannot count without I/O: then the figures are what this bridge stored and deleted
    since it opened; ``await bridge.collect_stats()`` counts by listing."""
