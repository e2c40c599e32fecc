"""PageTable: where every page lives (tier, artifact id) and its state (dirty, access), without its content."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from tierstore.enums import CompressionLevel, Modality, PageType, StorageTier
from tierstore.models import MemoryPage


def _now() -> datetime:
    return datetime.now(UTC)


class PageTableEntry(BaseModel):
    page_id: str
    tier: StorageTier
    artifact_id: str | None = None
    compression_level: CompressionLevel = CompressionLevel.FULL
    page_type: PageType = PageType.TRANSCRIPT
    modality: Modality = Modality.TEXT
    provenance: list[str] = Field(default_factory=list)
    dirty: bool = False
    pinned: bool = False
    last_flushed: datetime | None = None
    last_accessed: datetime = Field(default_factory=_now)
    access_count: int = 0
    size_tokens: int | None = None


class PageTable:
    """An index of pages by id, with tier and dirty-page queries."""

    def __init__(self) -> None:
        self._entries: dict[str, PageTableEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, page_id: object) -> bool:
        return page_id in self._entries

    def register(self, page: MemoryPage) -> PageTableEntry:
        """Add (or replace) the entry of a page, taking its location and state from the page."""
        entry = PageTableEntry(
            page_id=page.page_id,
            tier=page.storage_tier,
            artifact_id=page.artifact_id,
            compression_level=page.compression_level,
            page_type=page.page_type,
            modality=page.modality,
            provenance=list(page.provenance),
            dirty=page.dirty,
            pinned=page.pinned,
            last_accessed=page.last_accessed,
            access_count=page.access_count,
            size_tokens=page.size_tokens if page.size_tokens is not None else page.estimate_tokens(),
        )
        self._entries[page.page_id] = entry
        return entry

    def lookup(self, page_id: str) -> PageTableEntry | None:
        return self._entries.get(page_id)

    def remove(self, page_id: str) -> PageTableEntry | None:
        return self._entries.pop(page_id, None)

    def update_location(
        self,
        page_id: str,
        tier: StorageTier,
        artifact_id: str | None = None,
        compression_level: CompressionLevel | None = None,
    ) -> bool:
        """Record that a page moved; False when the page is not registered."""
        entry = self._entries.get(page_id)
        if entry is None:
            return False
        entry.tier = tier
        if artifact_id is not None:
            entry.artifact_id = artifact_id
        if compression_level is not None:
            entry.compression_level = compression_level
        return True

    def mark_accessed(self, page_id: str) -> bool:
        entry = self._entries.get(page_id)
        if entry is None:
            return False
        entry.last_accessed = _now()
        entry.access_count += 1
        return True

    def mark_dirty(self, page_id: str) -> bool:
        entry = self._entries.get(page_id)
        if entry is None:
            return False
        entry.dirty = True
        return True

    def mark_clean(self, page_id: str) -> bool:
        entry = self._entries.get(page_id)
        if entry is None:
            return False
        entry.dirty = False
        entry.last_flushed = _now()
        return True

    def get_by_tier(self, tier: StorageTier) -> list[PageTableEntry]:
        return [e for e in self._entries.values() if e.tier == tier]

    def get_by_modality(self, modality: Modality) -> list[PageTableEntry]:
        return [e for e in self._entries.values() if e.modality == modality]

    def get_dirty_pages(self) -> list[PageTableEntry]:
        return [e for e in self._entries.values() if e.dirty]

    def get_working_set(self) -> list[PageTableEntry]:
        return self.get_by_tier(StorageTier.L0) + self.get_by_tier(StorageTier.L1)

    def get_eviction_candidates(self, tier: StorageTier = StorageTier.L1, limit: int = 10) -> list[PageTableEntry]:
        """Unpinned pages of a tier, least recently accessed first."""
        candidates = [e for e in self.get_by_tier(tier) if not e.pinned]
        return sorted(candidates, key=lambda e: e.last_accessed)[:limit]

    def get_total_tokens(self, tiers: Iterable[StorageTier] | None = None) -> int:
        wanted = set(tiers) if tiers is not None else None
        return sum(e.size_tokens or 0 for e in self._entries.values() if wanted is None or e.tier in wanted)
