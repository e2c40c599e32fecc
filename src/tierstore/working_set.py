"""WorkingSetManager: the pages in the process - L0 (the context window, within a token budget) and L1 (a cache).

It decides what fits and what to evict; moving evicted pages to storage is the bridge's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from tierstore.enums import StorageTier
from tierstore.models import MemoryPage


class WorkingSetConfig(BaseModel):
    max_l0_tokens: int = Field(default=128_000, gt=0)
    reserved_tokens: int = Field(default=4_000, ge=0)
    """Tokens kept free in L0 for the system prompt and the reply."""
    max_l1_pages: int = Field(default=100, gt=0)
    eviction_threshold: float = Field(default=0.85, gt=0, le=1)
    """Share of the L0 budget above which :meth:`WorkingSetManager.needs_eviction` is true."""


@dataclass(frozen=True, slots=True)
class EvictionCandidate:
    page_id: str
    tier: StorageTier
    score: float
    """Higher is a better page to evict: unimportant, long unused, large."""
    tokens: int


class WorkingSetManager:
    def __init__(self, config: WorkingSetConfig | None = None) -> None:
        self.config = config or WorkingSetConfig()
        self._l0: dict[str, MemoryPage] = {}
        self._l1: dict[str, MemoryPage] = {}
        self._tokens: dict[str, int] = {}
        self.turn = 0

    def __len__(self) -> int:
        return len(self._l0) + len(self._l1)

    @property
    def l0_count(self) -> int:
        return len(self._l0)

    @property
    def l1_count(self) -> int:
        return len(self._l1)

    @property
    def budget(self) -> int:
        return max(0, self.config.max_l0_tokens - self.config.reserved_tokens)

    @property
    def tokens_used(self) -> int:
        return sum(self._tokens[p] for p in self._l0)

    @property
    def tokens_available(self) -> int:
        return max(0, self.budget - self.tokens_used)

    @property
    def utilization(self) -> float:
        return self.tokens_used / self.budget if self.budget else 1.0

    def needs_eviction(self) -> bool:
        return self.utilization >= self.config.eviction_threshold

    def can_fit(self, tokens: int) -> bool:
        return tokens <= self.tokens_available

    def add_to_l0(self, page: MemoryPage) -> bool:
        """Put a page in the context window; False (and no change) when it does not fit the budget."""
        tokens = page.estimate_tokens()
        current = self._tokens.get(page.page_id, 0) if page.page_id in self._l0 else 0
        if tokens - current > self.tokens_available:
            return False
        self._l1.pop(page.page_id, None)
        self._l0[page.page_id] = page
        self._tokens[page.page_id] = tokens
        page.storage_tier = StorageTier.L0
        return True

    def add_to_l1(self, page: MemoryPage) -> bool:
        """Put a page in the L1 cache; False when the cache is full (evict first)."""
        if page.page_id not in self._l1 and len(self._l1) >= self.config.max_l1_pages:
            return False
        self._l0.pop(page.page_id, None)
        self._l1[page.page_id] = page
        self._tokens[page.page_id] = page.estimate_tokens()
        page.storage_tier = StorageTier.L1
        return True

    def promote_to_l0(self, page: MemoryPage) -> bool:
        return self.add_to_l0(page)

    def demote_to_l1(self, page: MemoryPage) -> bool:
        if page.page_id not in self._l0:
            return False
        return self.add_to_l1(page)

    def remove(self, page_id: str) -> MemoryPage | None:
        self._tokens.pop(page_id, None)
        return self._l0.pop(page_id, None) or self._l1.pop(page_id, None)

    def get_page(self, page_id: str) -> MemoryPage | None:
        return self._l0.get(page_id) or self._l1.get(page_id)

    def is_in_l0(self, page_id: str) -> bool:
        return page_id in self._l0

    def is_in_l1(self, page_id: str) -> bool:
        return page_id in self._l1

    def is_in_working_set(self, page_id: str) -> bool:
        return page_id in self._l0 or page_id in self._l1

    def get_eviction_candidates(
        self, tokens_needed: int = 0, tier: StorageTier = StorageTier.L0
    ) -> list[EvictionCandidate]:
        """Unpinned pages of L0 or L1, best to evict first; for L0 with ``tokens_needed``, just enough to free them."""
        pages = self._l0 if tier == StorageTier.L0 else self._l1
        now = datetime.now(UTC)
        ranked = sorted(
            (
                EvictionCandidate(p.page_id, tier, self._score(p, now), self._tokens[p.page_id])
                for p in pages.values()
                if not p.pinned
            ),
            key=lambda c: c.score,
            reverse=True,
        )
        if tokens_needed <= 0:
            return ranked
        chosen, freed = [], 0
        for candidate in ranked:
            if freed >= tokens_needed:
                break
            chosen.append(candidate)
            freed += candidate.tokens
        return chosen

    def _score(self, page: MemoryPage, now: datetime) -> float:
        accessed = page.last_accessed if page.last_accessed.tzinfo else page.last_accessed.replace(tzinfo=UTC)
        idle_minutes = max(0.0, (now - accessed).total_seconds() / 60)
        size = self._tokens.get(page.page_id, 0)
        return (1.0 - page.importance) * 10 + min(idle_minutes, 60.0) / 6 + min(size, 10_000) / 10_000

    def new_turn(self) -> None:
        self.turn += 1
