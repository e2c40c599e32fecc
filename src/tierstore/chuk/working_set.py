"""WorkingSetManager: the pages in the process - L0 (the context window, within a token budget) and L1 (a cache).

It decides what fits and what to evict; moving evicted pages to storage is the bridge's job. The public API and
scoring are chuk-ai-session-manager 0.11's (pinning, anti-thrash, importance overrides, ``(page_id, score)``
eviction candidates, lowest score first), so code written against its ``WorkingSetManager`` runs unchanged.
Deliberate differences, all in the token accounting: a page added to L0 twice is counted once, and
:meth:`WorkingSetManager.remove` and :meth:`~WorkingSetManager.remove_from_l0` give back the tokens the page was
counted with, so the budget never drifts from the pages in L0.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr

from tierstore.chuk.policies import (
    AntiThrashPolicy,
    EvictionCandidate,
    PinnedSet,
    TokenBudget,
    WorkingSetConfig,
    WorkingSetStats,
)
from tierstore.enums import Modality, StorageTier
from tierstore.models import MemoryPage

__all__ = [
    "AntiThrashPolicy",
    "EvictionCandidate",
    "PinnedSet",
    "TokenBudget",
    "WorkingSetConfig",
    "WorkingSetManager",
    "WorkingSetStats",
]


def _tokens(page: MemoryPage) -> int:
    return page.size_tokens or page.estimate_tokens()


class WorkingSetManager(BaseModel):
    """L0 (page ids in context order, within the token budget) and L1 (a bounded cache of pages)."""

    config: WorkingSetConfig = Field(default_factory=WorkingSetConfig)
    budget: TokenBudget = Field(default_factory=TokenBudget)
    l0_pages: list[str] = Field(default_factory=list)
    l1_cache: dict[str, MemoryPage] = Field(default_factory=dict)
    importance_overrides: dict[str, float] = Field(default_factory=dict)
    pinned_set: PinnedSet = Field(default_factory=PinnedSet)
    anti_thrash: AntiThrashPolicy = Field(default_factory=AntiThrashPolicy)
    current_turn: int = 0
    # Tokens and modality each L0 page was counted with, so that removing it gives back exactly that.
    _counted: dict[str, tuple[int, Modality]] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        """Size the token budget from the configuration when it was not given to match."""
        if self.budget.total_limit != self.config.max_l0_tokens:
            self.budget = TokenBudget(total_limit=self.config.max_l0_tokens, reserved=self.config.reserved_tokens)

    def __len__(self) -> int:
        return len(self.l0_pages) + len(self.l1_cache)

    @property
    def l0_count(self) -> int:
        """Pages in L0."""
        return len(self.l0_pages)

    @property
    def l1_count(self) -> int:
        """Pages in the L1 cache."""
        return len(self.l1_cache)

    @property
    def turn(self) -> int:
        """The same as :attr:`current_turn`."""
        return self.current_turn

    @property
    def utilization(self) -> float:
        """The used share of L0's usable token budget."""
        return self.budget.utilization

    @property
    def tokens_used(self) -> int:
        """Tokens in L0."""
        return self.budget.used

    @property
    def tokens_available(self) -> int:
        """Tokens that still fit in L0."""
        return self.budget.available

    def needs_eviction(self) -> bool:
        """Whether L0 is fuller than the configuration's eviction threshold."""
        return self.utilization > self.config.eviction_threshold

    def can_fit(self, tokens: int) -> bool:
        """Whether ``tokens`` more fit in L0."""
        return self.budget.can_fit(tokens)

    # -- moving pages ---------------------------------------------------------------------------------------

    def add_to_l0(self, page: MemoryPage) -> bool:
        """Put a page at the end of the context window; False (and no change) when it does not fit."""
        tokens = _tokens(page)
        counted, modality = self._counted.get(page.page_id, (0, page.modality))
        if page.page_id not in self.l0_pages:
            counted = 0
        if not self.budget.can_fit(tokens - counted):
            return False
        self.budget.remove(counted, modality)
        self.budget.add(tokens, page.modality)
        self._counted[page.page_id] = (tokens, page.modality)
        if page.page_id not in self.l0_pages:
            self.l0_pages.append(page.page_id)
        self.l1_cache.pop(page.page_id, None)
        page.storage_tier = StorageTier.L0
        page.mark_accessed()
        return True

    def add_to_l1(self, page: MemoryPage) -> bool:
        """Put a page in the L1 cache (out of L0 if it was there); False when the cache is full."""
        if len(self.l1_cache) >= self.config.max_l1_pages:
            return False
        if page.page_id in self.l0_pages:
            self._drop_from_l0(page.page_id, page)
        self.l1_cache[page.page_id] = page
        page.storage_tier = StorageTier.L1
        page.mark_accessed()
        return True

    def promote_to_l0(self, page: MemoryPage) -> bool:
        """Move a page from L1 into L0; False when it is not in L1 or does not fit."""
        return page.page_id in self.l1_cache and self.add_to_l0(page)

    def demote_to_l1(self, page: MemoryPage) -> bool:
        """Move a page from L0 into L1; False when it is not in L0 or L1 is full."""
        return page.page_id in self.l0_pages and self.add_to_l1(page)

    def remove(self, page_id: str) -> MemoryPage | None:
        """Take a page out of the working set; returns it when it was in L1 (L0 holds ids only)."""
        if page_id in self.l0_pages:
            self._drop_from_l0(page_id, None)
        return self.l1_cache.pop(page_id, None)

    def remove_from_l0(self, page_id: str, page: MemoryPage) -> bool:
        """Take a page out of L0, giving its tokens back; False when it is not in L0."""
        if page_id not in self.l0_pages:
            return False
        self._drop_from_l0(page_id, page)
        return True

    def _drop_from_l0(self, page_id: str, page: MemoryPage | None) -> None:
        self.l0_pages.remove(page_id)
        counted = self._counted.pop(page_id, None)
        if counted is None and page is not None:  # e.g. a manager rebuilt from a dump: count as chuk does
            counted = (_tokens(page), page.modality)
        if counted is not None:
            self.budget.remove(*counted)

    def update_page_tokens(
        self, page_id: str, old_tokens: int, new_tokens: int, modality: Modality = Modality.TEXT
    ) -> None:
        """Recount an L0 page whose size changed in place (e.g. compressed); no effect outside L0."""
        if page_id not in self.l0_pages:
            return
        self.budget.remove(old_tokens, modality)
        self.budget.add(new_tokens, modality)
        self._counted[page_id] = (new_tokens, modality)

    def clear(self) -> None:
        """Empty L0 and L1 and forget importance overrides; pins and anti-thrash history stay."""
        self.l0_pages.clear()
        self.l1_cache.clear()
        self._counted.clear()
        self.budget = TokenBudget(total_limit=self.config.max_l0_tokens, reserved=self.config.reserved_tokens)
        self.importance_overrides.clear()

    # -- queries ---------------------------------------------------------------------------------------------

    def get_page(self, page_id: str) -> MemoryPage | None:
        """A page of the L1 cache (L0 holds page ids only)."""
        return self.l1_cache.get(page_id)

    def is_in_l0(self, page_id: str) -> bool:
        """Whether a page is in L0."""
        return page_id in self.l0_pages

    def is_in_l1(self, page_id: str) -> bool:
        """Whether a page is in the L1 cache."""
        return page_id in self.l1_cache

    def is_in_working_set(self, page_id: str) -> bool:
        """Whether a page is in L0 or L1."""
        return self.is_in_l0(page_id) or self.is_in_l1(page_id)

    def get_l0_page_ids(self) -> list[str]:
        """L0's page ids, in context order."""
        return list(self.l0_pages)

    def get_l1_pages(self) -> list[MemoryPage]:
        """The pages of the L1 cache."""
        return list(self.l1_cache.values())

    def get_stats(self) -> WorkingSetStats:
        """A snapshot of the working set."""
        return WorkingSetStats(
            l0_pages=len(self.l0_pages),
            l1_pages=len(self.l1_cache),
            total_pages=len(self),
            tokens_used=self.tokens_used,
            tokens_available=self.tokens_available,
            utilization=self.utilization,
            needs_eviction=self.needs_eviction(),
            tokens_by_modality=dict(self.budget.tokens_by_modality),
        )

    # -- eviction --------------------------------------------------------------------------------------------

    def get_eviction_candidates(
        self,
        tokens_needed: int = 0,
        from_tier: StorageTier = StorageTier.L0,
        page_table: Any = None,
    ) -> list[tuple[str, float]]:
        """``(page_id, score)`` of every page of ``from_tier`` that may be evicted now, lowest score (evict) first.

        Pinned pages and pages under anti-thrash protection are left out. L0 pages score by position (older
        first), importance override (0.5 without one) and anti-thrash penalty; L1 pages by recency, access count,
        importance and penalty. ``tokens_needed`` and ``page_table`` are accepted for chuk's signature and unused,
        as there; :meth:`plan_eviction` stops once enough tokens are freed.
        """
        if from_tier == StorageTier.L0:
            scored = [(pid, self._l0_score(i, pid)) for i, pid in enumerate(self.l0_pages) if self._may_evict(pid)]
        else:
            now = datetime.now(UTC)
            scored = [
                (pid, self._l1_score(page, now))
                for pid, page in self.l1_cache.items()
                if not page.pinned and self._may_evict(pid)
            ]
        return sorted(scored, key=lambda c: c[1])

    def plan_eviction(self, tokens_needed: int = 0, from_tier: StorageTier = StorageTier.L0) -> list[EvictionCandidate]:
        """The candidates to evict, in order, until their tokens reach ``tokens_needed`` (all when it is 0)."""
        chosen: list[EvictionCandidate] = []
        freed = 0
        for page_id, score in self.get_eviction_candidates(tokens_needed, from_tier):
            if tokens_needed > 0 and freed >= tokens_needed:
                break
            if from_tier == StorageTier.L0:
                tokens = self._counted.get(page_id, (0, Modality.TEXT))[0]
            else:
                tokens = _tokens(self.l1_cache[page_id])
            chosen.append(EvictionCandidate(page_id, from_tier, score, tokens))
            freed += tokens
        return chosen

    def calculate_eviction_target(self, tokens_needed: int = 0) -> int:
        """Tokens to free to get down to ``target_utilization`` of the usable budget with ``tokens_needed`` added."""
        usable = self.config.max_l0_tokens - self.config.reserved_tokens
        target = int(usable * self.config.target_utilization)
        return max(0, self.budget.used - target + tokens_needed)

    def _may_evict(self, page_id: str) -> bool:
        return not self.pinned_set.is_pinned(page_id) and self.anti_thrash.can_evict(page_id, self.current_turn)

    def _l0_score(self, position: int, page_id: str) -> float:
        age = position / max(len(self.l0_pages), 1)
        importance = self.importance_overrides.get(page_id, 0.5)
        penalty = self.anti_thrash.get_eviction_penalty(page_id, self.current_turn)
        return age * 0.4 + importance * 0.4 + penalty * 0.2

    def _l1_score(self, page: MemoryPage, now: datetime) -> float:
        accessed = page.last_accessed if page.last_accessed.tzinfo else page.last_accessed.replace(tzinfo=UTC)
        recency = 1.0 / (1.0 + (now - accessed).total_seconds() / 3600)
        frequency = min(1.0, math.log1p(page.access_count) / 10.0)
        importance = self.importance_overrides.get(page.page_id, page.importance)
        penalty = self.anti_thrash.get_eviction_penalty(page.page_id, self.current_turn)
        return recency * 0.3 + frequency * 0.2 + importance * 0.3 + penalty * 0.2

    # -- turns, pins, importance ---------------------------------------------------------------------------

    def new_turn(self) -> None:
        """Start the next turn (anti-thrash history older than 20 turns is forgotten every 10)."""
        self.current_turn += 1
        if self.current_turn % 10 == 0:
            self.anti_thrash.cleanup_old_history(self.current_turn)

    def pin_page(self, page_id: str) -> None:
        """Pin a page: it is never evicted."""
        self.pinned_set.pin(page_id)

    def unpin_page(self, page_id: str) -> None:
        """Lift a page's pins."""
        self.pinned_set.unpin(page_id)

    def is_pinned(self, page_id: str) -> bool:
        """Whether a page is pinned."""
        return self.pinned_set.is_pinned(page_id)

    def record_fault(self, page_id: str) -> None:
        """Note a fault of a page in this turn (it is protected from eviction for a while)."""
        self.anti_thrash.record_fault(page_id, self.current_turn)

    def record_eviction(self, page_id: str) -> None:
        """Note an eviction of a page in this turn (it is protected from another for a while)."""
        self.anti_thrash.record_eviction(page_id, self.current_turn)

    def set_importance(self, page_id: str, importance: float) -> None:
        """Override a page's importance for eviction scoring, clamped to 0.0-1.0."""
        self.importance_overrides[page_id] = max(0.0, min(1.0, importance))

    def clear_importance(self, page_id: str) -> None:
        """Drop a page's importance override."""
        self.importance_overrides.pop(page_id, None)
