"""What a :class:`~tierstore.chuk.working_set.WorkingSetManager` decides with: its configuration and statistics, the
token budget of L0, the pinned set, the anti-thrash policy, and the eviction candidates it proposes.

Fields, defaults and scores are chuk-ai-session-manager 0.11's, so its code and its dumps work with these classes.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field, PrivateAttr

from tierstore.enums import Modality, StorageTier


class WorkingSetConfig(BaseModel):
    """The working set's limits: L0's token budget, L1's size, and when to evict and down to what."""

    max_l0_tokens: int = Field(default=128_000, gt=0)
    max_l1_pages: int = Field(default=100, ge=0)
    eviction_threshold: float = Field(default=0.85, ge=0.0, le=1.0)
    """Share of the usable L0 budget above which :meth:`WorkingSetManager.needs_eviction` is true."""
    target_utilization: float = Field(default=0.70, ge=0.0, le=1.0)
    """Share of the usable L0 budget that :meth:`WorkingSetManager.calculate_eviction_target` evicts down to."""
    reserved_tokens: int = Field(default=4_000, ge=0)
    """Tokens kept free in L0 for the system prompt, tools and the reply."""


class TokenBudget(BaseModel):
    """Tokens in L0, by modality, against the context window's size."""

    total_limit: int = 128_000
    reserved: int = 4_000
    tokens_by_modality: dict[Modality, int] = Field(default_factory=lambda: dict.fromkeys(Modality, 0))

    @property
    def text_tokens(self) -> int:
        """Tokens of text pages in L0."""
        return self.tokens_by_modality.get(Modality.TEXT, 0)

    @property
    def image_tokens(self) -> int:
        """Tokens of image pages in L0."""
        return self.tokens_by_modality.get(Modality.IMAGE, 0)

    @property
    def audio_tokens(self) -> int:
        """Tokens of audio pages in L0."""
        return self.tokens_by_modality.get(Modality.AUDIO, 0)

    @property
    def video_tokens(self) -> int:
        """Tokens of video pages in L0."""
        return self.tokens_by_modality.get(Modality.VIDEO, 0)

    @property
    def structured_tokens(self) -> int:
        """Tokens of structured pages in L0."""
        return self.tokens_by_modality.get(Modality.STRUCTURED, 0)

    @property
    def used(self) -> int:
        """Tokens in L0, all modalities."""
        return sum(self.tokens_by_modality.values())

    @property
    def available(self) -> int:
        """Tokens that still fit: the limit less the reserve and what is used (never below 0)."""
        return max(0, self.total_limit - self.reserved - self.used)

    @property
    def utilization(self) -> float:
        """The used share of the usable budget (limit less reserve), 0.0 to 1.0."""
        usable = self.total_limit - self.reserved
        return 1.0 if usable <= 0 else min(1.0, self.used / usable)

    def can_fit(self, tokens: int) -> bool:
        """Whether ``tokens`` more fit."""
        return tokens <= self.available

    def add(self, tokens: int, modality: Modality) -> bool:
        """Count ``tokens`` more; False (and no change) when they do not fit."""
        if not self.can_fit(tokens):
            return False
        self.tokens_by_modality[modality] = self.tokens_by_modality.get(modality, 0) + tokens
        return True

    def remove(self, tokens: int, modality: Modality) -> None:
        """Count ``tokens`` fewer of ``modality`` (never below 0)."""
        self.tokens_by_modality[modality] = max(0, self.tokens_by_modality.get(modality, 0) - tokens)

    def get_tokens(self, modality: Modality) -> int:
        """Tokens of ``modality`` in L0 (0 when none were counted)."""
        return self.tokens_by_modality.get(modality, 0)

    def set_tokens(self, modality: Modality, tokens: int) -> None:
        """Count ``tokens`` of ``modality``, whatever was counted before and whether or not they fit (never below
        0)."""
        self.tokens_by_modality[modality] = max(0, tokens)


class WorkingSetStats(BaseModel):
    """A snapshot of the working set: pages in L0 and L1, tokens, and whether to evict."""

    l0_pages: int = 0
    l1_pages: int = 0
    total_pages: int = 0
    tokens_used: int = 0
    tokens_available: int = 0
    utilization: float = 0.0
    needs_eviction: bool = False
    tokens_by_modality: dict[Modality, int] = Field(default_factory=dict)


class PinnedSet(BaseModel):
    """Pages never to evict: pinned explicitly, or automatically (recent turns, claims, the system prompt)."""

    pinned: set[str] = Field(default_factory=set)
    auto_pinned: set[str] = Field(default_factory=set)
    auto_pin_last_n_turns: int = 3
    auto_pin_system_prompt: bool = True
    auto_pin_claims: bool = True

    def pin(self, page_id: str) -> None:
        """Pin a page explicitly."""
        self.pinned.add(page_id)

    def unpin(self, page_id: str) -> None:
        """Lift both the explicit and the automatic pin."""
        self.pinned.discard(page_id)
        self.auto_pinned.discard(page_id)

    def is_pinned(self, page_id: str) -> bool:
        """Whether a page is pinned, explicitly or automatically."""
        return page_id in self.pinned or page_id in self.auto_pinned

    def auto_pin(self, page_id: str) -> None:
        """Pin a page automatically (lifted by :meth:`clear_auto_pins`)."""
        self.auto_pinned.add(page_id)

    def clear_auto_pins(self) -> None:
        """Lift every automatic pin; explicit pins stay."""
        self.auto_pinned.clear()

    def get_all_pinned(self) -> set[str]:
        """Every pinned page id, explicit or automatic."""
        return self.pinned | self.auto_pinned

    def count(self) -> int:
        """How many pages are pinned."""
        return len(self.get_all_pinned())


class AntiThrashPolicy(BaseModel):
    """Protects pages just faulted in, and pages just evicted, from (another) eviction for a few turns."""

    eviction_cooldown_turns: int = 3
    fault_protection_turns: int = 2
    _evicted_at: dict[str, int] = PrivateAttr(default_factory=dict)
    _faulted_at: dict[str, int] = PrivateAttr(default_factory=dict)

    def record_eviction(self, page_id: str, turn: int) -> None:
        """Note that a page was evicted in ``turn``."""
        self._evicted_at[page_id] = turn

    def record_fault(self, page_id: str, turn: int) -> None:
        """Note that a page was faulted in in ``turn``."""
        self._faulted_at[page_id] = turn

    def can_evict(self, page_id: str, current_turn: int) -> bool:
        """False while a page is protected: faulted in or evicted too few turns ago."""
        faulted = self._faulted_at.get(page_id)
        if faulted is not None and current_turn - faulted < self.fault_protection_turns:
            return False
        evicted = self._evicted_at.get(page_id)
        return evicted is None or current_turn - evicted >= self.eviction_cooldown_turns

    def get_eviction_penalty(self, page_id: str, current_turn: int) -> float:
        """0.0 to 1.0, higher the more recently the page was faulted in (fully) or evicted (half as much)."""
        penalty = 0.0
        faulted = self._faulted_at.get(page_id)
        if faulted is not None and current_turn - faulted < self.fault_protection_turns:
            penalty += 1.0 - (current_turn - faulted) / self.fault_protection_turns
        evicted = self._evicted_at.get(page_id)
        if evicted is not None and current_turn - evicted < self.eviction_cooldown_turns:
            penalty += 0.5 * (1.0 - (current_turn - evicted) / self.eviction_cooldown_turns)
        return min(1.0, penalty)

    def cleanup_old_history(self, current_turn: int, max_age: int = 20) -> None:
        """Forget faults and evictions more than ``max_age`` turns old."""
        self._faulted_at = {p: t for p, t in self._faulted_at.items() if current_turn - t <= max_age}
        self._evicted_at = {p: t for p, t in self._evicted_at.items() if current_turn - t <= max_age}


@dataclass(frozen=True, slots=True)
class EvictionCandidate:
    """A page :meth:`~tierstore.chuk.working_set.WorkingSetManager.plan_eviction` proposes to evict."""

    page_id: str
    tier: StorageTier
    score: float
    """Lower is evicted first (chuk-ai-session-manager's scale)."""
    tokens: int
    """Tokens the page is counted with (L0), or would cost in L0 (L1)."""
