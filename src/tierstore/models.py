"""The page and the records the bridge returns about stored pages and checkpoints.

``MemoryPage`` accepts every field of chuk-ai-session-manager's page, with the same types and defaults, so a page
dumped by one library validates in the other.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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
        created = self.created_at if self.created_at.tzinfo else self.created_at.replace(tzinfo=UTC)
        return (_now() - created).total_seconds() / 3600

    def mark_accessed(self) -> None:
        self.last_accessed = _now()
        self.access_count += 1

    def mark_dirty(self) -> None:
        self.dirty = True

    def mark_clean(self) -> None:
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


class CheckpointEntry(BaseModel):
    page_id: str
    artifact_id: str
    modality: str
    tier: str
    checksum: str | None = None
    size_bytes: int = 0
    identity: str | None = None
    """The page's identity (``codec.PreparedPage.identity``): what lets a later checkpoint reuse the artifact."""
    state: PageState | None = None


class CheckpointManifest(BaseModel):
    name: str
    created_at: datetime
    """Naive UTC, so that it compares with ``datetime.utcnow()`` as the spec's cleanup example does."""
    page_count: int
    pages: list[CheckpointEntry]
    checkpoint_id: str = ""
    format: int = 1


class StorageStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    backend: str
    persistent: bool
    pages_stored: int
    total_bytes: int
    checkpoints: int | None = None
    exact: bool = True
    """False when the backend cannot count without I/O: then the figures are what this bridge stored and deleted
    since it opened; ``await bridge.collect_stats()`` counts by listing."""
