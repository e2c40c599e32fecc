"""PageTable: where every page lives (tier, artifact id) and its state (dirty, access), without its content.

The public API is chuk-ai-session-manager 0.11's (``entries``, ``register``, ``register_entry``, ``get_stats``, ...),
so code written against its ``PageTable`` runs unchanged; the one deliberate difference is in
:meth:`PageTable.get_eviction_candidates` (see there).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import Enum

from pydantic import BaseModel, Field

from tierstore.enums import CompressionLevel, Modality, PageType, StorageTier
from tierstore.models import MemoryPage


def _now() -> datetime:
    return datetime.now(UTC)


class Affinity(str, Enum):  # noqa: UP042 - (str, Enum) like tierstore.enums, for chuk's formatting
    """Where a page's storage is, relative to the process (a locality hint)."""

    LOCAL = "local"
    REMOTE = "remote"
    SHARED = "shared"


# How readily each page type is evicted (lower keeps a page longer); chuk-ai-session-manager's weights.
_TYPE_WEIGHTS: dict[PageType, float] = {
    PageType.CLAIM: 0.1,
    PageType.INDEX: 0.2,
    PageType.PROCEDURE: 0.3,
    PageType.SUMMARY: 0.4,
    PageType.ARTIFACT: 0.6,
    PageType.TRANSCRIPT: 0.7,
}


class PageTableEntry(BaseModel):
    """One page's row: where it lives (tier, artifact id) and its state, without its content."""

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
    affinity: Affinity = Affinity.LOCAL

    def mark_accessed(self) -> None:
        """Count one access, now."""
        self.last_accessed = _now()
        self.access_count += 1

    @property
    def eviction_priority(self) -> float:
        """How readily the page is evicted, by its type: 0.0 when pinned, lower keeps it longer."""
        return 0.0 if self.pinned else _TYPE_WEIGHTS.get(self.page_type, 0.5)


class PageTableStats(BaseModel):
    """Counts of a page table's entries, by tier and modality."""

    total_pages: int
    dirty_pages: int
    pages_by_tier: dict[StorageTier, int]
    pages_by_modality: dict[Modality, int]

    @property
    def working_set_size(self) -> int:
        """Pages in L0 and L1."""
        return self.pages_by_tier.get(StorageTier.L0, 0) + self.pages_by_tier.get(StorageTier.L1, 0)


class PageTable(BaseModel):
    """An index of pages by id, with tier, modality, type and dirty-page queries."""

    entries: dict[str, PageTableEntry] = Field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, page_id: object) -> bool:
        return page_id in self.entries

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
            size_tokens=page.size_tokens or page.estimate_tokens(),
        )
        self.entries[page.page_id] = entry
        return entry

    def register_entry(self, entry: PageTableEntry) -> None:
        """Add (or replace) an entry as it is; another library's entry with the same fields is copied in."""
        if not isinstance(entry, PageTableEntry):
            entry = PageTableEntry.model_validate(entry, from_attributes=True)
        self.entries[entry.page_id] = entry

    def lookup(self, page_id: str) -> PageTableEntry | None:
        """The entry, without counting an access (that is :meth:`mark_accessed`)."""
        return self.entries.get(page_id)

    def remove(self, page_id: str) -> PageTableEntry | None:
        """Drop a page's entry; returns it, or None when there was none."""
        return self.entries.pop(page_id, None)

    def update_location(
        self,
        page_id: str,
        tier: StorageTier,
        artifact_id: str | None = None,
        compression_level: CompressionLevel | None = None,
    ) -> bool:
        """Record that a page moved; False when the page is not registered."""
        entry = self.entries.get(page_id)
        if entry is None:
            return False
        entry.tier = tier
        if artifact_id is not None:
            entry.artifact_id = artifact_id
        if compression_level is not None:
            entry.compression_level = compression_level
        return True

    def update_compression(self, page_id: str, compression_level: CompressionLevel) -> bool:
        """Record a page's new compression level; False when it has no entry."""
        entry = self.entries.get(page_id)
        if entry is None:
            return False
        entry.compression_level = compression_level
        return True

    def mark_accessed(self, page_id: str) -> bool:
        """Count one access of a page; False when it has no entry."""
        entry = self.entries.get(page_id)
        if entry is None:
            return False
        entry.mark_accessed()
        return True

    def mark_dirty(self, page_id: str) -> bool:
        """Mark a page changed since it was last stored; False when it has no entry."""
        entry = self.entries.get(page_id)
        if entry is None:
            return False
        entry.dirty = True
        return True

    def mark_clean(self, page_id: str) -> bool:
        """Mark a page stored as it is (now the time of its last flush); False when it has no entry."""
        entry = self.entries.get(page_id)
        if entry is None:
            return False
        entry.dirty = False
        entry.last_flushed = _now()
        return True

    def get_by_tier(self, tier: StorageTier) -> list[PageTableEntry]:
        """The entries in ``tier``."""
        return [e for e in self.entries.values() if e.tier == tier]

    def get_by_modality(self, modality: Modality) -> list[PageTableEntry]:
        """The entries of ``modality``."""
        return [e for e in self.entries.values() if e.modality == modality]

    def get_by_type(self, page_type: PageType) -> list[PageTableEntry]:
        """The entries of ``page_type``."""
        return [e for e in self.entries.values() if e.page_type == page_type]

    def get_dirty_pages(self) -> list[PageTableEntry]:
        """The entries changed since they were last stored."""
        return [e for e in self.entries.values() if e.dirty]

    def get_working_set(self) -> list[PageTableEntry]:
        """The entries in L0 and L1."""
        return self.get_by_tier(StorageTier.L0) + self.get_by_tier(StorageTier.L1)

    def get_eviction_candidates(self, tier: StorageTier = StorageTier.L1, limit: int = 10) -> list[PageTableEntry]:
        """Unpinned pages of a tier, least recently accessed first.

        chuk-ai-session-manager's ``PageTable`` lists pinned pages here too; a pinned page is never evicted, so
        tierstore leaves them out.
        """
        candidates = [e for e in self.get_by_tier(tier) if not e.pinned]
        return sorted(candidates, key=lambda e: _aware(e.last_accessed))[:limit]

    def get_stats(self) -> PageTableStats:
        """Counts of the entries, by tier and modality."""
        by_tier = dict.fromkeys(StorageTier, 0)
        by_modality = dict.fromkeys(Modality, 0)
        for entry in self.entries.values():
            by_tier[entry.tier] += 1
            by_modality[entry.modality] += 1
        return PageTableStats(
            total_pages=len(self.entries),
            dirty_pages=len(self.get_dirty_pages()),
            pages_by_tier=by_tier,
            pages_by_modality=by_modality,
        )

    def get_total_tokens(self, tiers: Iterable[StorageTier] | None = None) -> int:
        """Tokens of the pages in ``tiers``; every page when ``tiers`` is None or empty (as in chuk)."""
        wanted = set(tiers or ())
        return sum(e.size_tokens or 0 for e in self.entries.values() if not wanted or e.tier in wanted)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
