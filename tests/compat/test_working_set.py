"""WorkingSetManager, its budget, pins and anti-thrash policy behave as chuk-ai-session-manager 0.11.2's do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.compat.libs import Lib, both, each_page_class
from tierstore import MemoryPage, Modality, StorageTier
from tierstore.chuk.working_set import WorkingSetConfig, WorkingSetManager

CHUK_COUNTS_AGAIN = (
    "chuk counts a page added to L0 twice with its tokens twice; tierstore counts it once, so the budget stays the "
    "sum of the pages in L0 (README: Compatibility with chuk-ai-session-manager)"
)
CHUK_KEEPS_TOKENS = (
    "chuk's WorkingSetManager.remove drops an L0 page's id but keeps its tokens in the budget; tierstore gives them "
    "back (README: Compatibility with chuk-ai-session-manager)"
)


def page(lib: Lib, page_id: str, tokens: int = 100, **fields: Any) -> Any:
    fields.setdefault("modality", lib.Modality.TEXT)
    return lib.MemoryPage(page_id=page_id, size_tokens=tokens, **fields)


def small(lib: Lib, max_l0_tokens: int = 1_000, **config: Any) -> Any:
    """A manager whose usable L0 budget is ``max_l0_tokens`` (nothing reserved)."""
    return lib.WorkingSetManager(config=lib.WorkingSetConfig(max_l0_tokens=max_l0_tokens, reserved_tokens=0, **config))


@both()
def test_defaults(lib: Lib) -> None:
    manager = lib.WorkingSetManager()
    config = manager.config
    assert (config.max_l0_tokens, config.max_l1_pages, config.reserved_tokens) == (128_000, 100, 4_000)
    assert (config.eviction_threshold, config.target_utilization) == (0.85, 0.70)
    assert (manager.budget.total_limit, manager.budget.reserved) == (128_000, 4_000)
    assert (manager.tokens_used, manager.tokens_available, manager.utilization) == (0, 124_000, 0.0)
    assert (manager.current_turn, len(manager), manager.l0_count, manager.l1_count) == (0, 0, 0, 0)


@both()
def test_the_budget_follows_the_config_unless_given_one_of_the_same_size(lib: Lib) -> None:
    config = lib.WorkingSetConfig(max_l0_tokens=1_000, reserved_tokens=100)
    assert (lib.WorkingSetManager(config=config).budget.total_limit, config.reserved_tokens) == (1_000, 100)
    kept = lib.WorkingSetManager(config=config, budget=lib.TokenBudget(total_limit=1_000, reserved=0))
    assert kept.tokens_available == 1_000
    replaced = lib.WorkingSetManager(config=config, budget=lib.TokenBudget(total_limit=5, reserved=0))
    assert (replaced.budget.total_limit, replaced.tokens_available) == (1_000, 900)


@both()
@each_page_class()
def test_add_to_l0_counts_tokens_and_refuses_what_does_not_fit(lib: Lib, page_lib: Lib) -> None:
    manager = small(lib)
    first = page(page_lib, "a", 600, modality=page_lib.Modality.IMAGE)
    assert manager.add_to_l0(first) is True
    assert (first.storage_tier, first.access_count) == ("L0", 1)
    assert (manager.tokens_used, manager.tokens_available, manager.utilization) == (600, 400, 0.6)
    assert manager.budget.image_tokens == 600
    assert manager.is_in_l0("a")
    assert manager.is_in_working_set("a")
    too_big = page(page_lib, "b", 401)
    assert manager.add_to_l0(too_big) is False
    assert (manager.tokens_used, manager.is_in_l0("b"), too_big.storage_tier) == (600, False, "L1")
    assert manager.can_fit(400)
    assert not manager.can_fit(401)


@both()
def test_tokens_come_from_the_content_without_size_tokens(lib: Lib) -> None:
    manager = small(lib)
    assert manager.add_to_l0(lib.MemoryPage(page_id="a", modality=lib.Modality.TEXT, content="x" * 400))
    assert manager.tokens_used == 100


@both()
def test_l0_keeps_its_order_and_l1_holds_pages(lib: Lib) -> None:
    manager = small(lib)
    for name in ("c", "a", "b"):
        manager.add_to_l0(page(lib, name))
    cached = page(lib, "d")
    assert manager.add_to_l1(cached) is True
    assert cached.storage_tier == "L1"
    assert manager.get_l0_page_ids() == ["c", "a", "b"]
    assert manager.get_l1_pages() == [cached]
    assert manager.get_page("d") is cached
    assert manager.get_page("a") is None  # L0 holds page ids only
    assert (len(manager), manager.l0_count, manager.l1_count) == (4, 3, 1)


@both()
def test_moving_between_l0_and_l1(lib: Lib) -> None:
    manager = small(lib)
    moving = page(lib, "a", 300)
    assert manager.promote_to_l0(moving) is False  # not in L1
    assert manager.demote_to_l1(moving) is False  # not in L0
    manager.add_to_l1(moving)
    assert manager.promote_to_l0(moving) is True
    assert (manager.is_in_l0("a"), manager.is_in_l1("a"), manager.tokens_used) == (True, False, 300)
    assert manager.demote_to_l1(moving) is True
    assert (manager.is_in_l0("a"), manager.is_in_l1("a"), manager.tokens_used) == (False, True, 0)
    assert moving.storage_tier == "L1"


@both()
def test_l1_refuses_pages_beyond_its_size(lib: Lib) -> None:
    manager = small(lib, max_l1_pages=2)
    assert manager.add_to_l1(page(lib, "a"))
    assert manager.add_to_l1(page(lib, "b"))
    assert manager.add_to_l1(page(lib, "c")) is False
    assert [p.page_id for p in manager.get_l1_pages()] == ["a", "b"]


@both()
def test_remove_from_l0_gives_the_tokens_back(lib: Lib) -> None:
    manager = small(lib)
    kept, removed = page(lib, "a", 200), page(lib, "b", 300)
    manager.add_to_l0(kept)
    manager.add_to_l0(removed)
    assert manager.remove_from_l0("b", removed) is True
    assert (manager.get_l0_page_ids(), manager.tokens_used) == (["a"], 200)
    assert manager.remove_from_l0("b", removed) is False


@both()
def test_remove_returns_an_l1_page(lib: Lib) -> None:
    manager = small(lib)
    cached = page(lib, "a")
    manager.add_to_l1(cached)
    assert manager.remove("a") is cached
    assert manager.remove("a") is None
    assert len(manager) == 0


@both(chuk_differs=CHUK_KEEPS_TOKENS)
def test_remove_of_an_l0_page_gives_its_tokens_back(lib: Lib) -> None:
    manager = small(lib)
    manager.add_to_l0(page(lib, "a", 300))
    assert manager.remove("a") is None  # L0 holds ids only
    assert (manager.is_in_l0("a"), manager.tokens_used) == (False, 0)


@both(chuk_differs=CHUK_COUNTS_AGAIN)
def test_adding_a_page_already_in_l0_counts_it_once(lib: Lib) -> None:
    manager = small(lib)
    again = page(lib, "a", 300)
    assert manager.add_to_l0(again)
    assert manager.add_to_l0(again)
    assert (manager.get_l0_page_ids(), manager.tokens_used) == (["a"], 300)


@both()
def test_update_page_tokens_recounts_an_l0_page(lib: Lib) -> None:
    manager = small(lib)
    resized = page(lib, "a", 500)
    manager.add_to_l0(resized)
    manager.update_page_tokens("a", 500, 120)
    assert manager.tokens_used == 120
    manager.update_page_tokens("not_in_l0", 0, 999)
    assert manager.tokens_used == 120
    resized.size_tokens = 120
    assert manager.remove_from_l0("a", resized)
    assert manager.tokens_used == 0


@both()
def test_needs_eviction_above_the_threshold_only(lib: Lib) -> None:
    manager = small(lib, eviction_threshold=0.8)
    manager.add_to_l0(page(lib, "a", 800))
    assert manager.needs_eviction() is False  # at the threshold
    manager.add_to_l0(page(lib, "b", 1))
    assert manager.needs_eviction() is True


@both()
def test_calculate_eviction_target(lib: Lib) -> None:
    manager = small(lib, target_utilization=0.5)
    manager.add_to_l0(page(lib, "a", 700))
    assert manager.calculate_eviction_target() == 200
    assert manager.calculate_eviction_target(tokens_needed=150) == 350
    assert small(lib).calculate_eviction_target(tokens_needed=100) == 0


@both()
def test_l0_candidates_oldest_first_with_chuks_scores(lib: Lib) -> None:
    manager = small(lib)
    for i in range(4):
        manager.add_to_l0(page(lib, f"p{i}"))
    candidates = manager.get_eviction_candidates()
    assert [pid for pid, _ in candidates] == ["p0", "p1", "p2", "p3"]
    # position share x 0.4 + importance (0.5 without an override) x 0.4 + anti-thrash penalty x 0.2
    assert [score for _, score in candidates] == pytest.approx([0.2, 0.3, 0.4, 0.5])
    assert manager.get_eviction_candidates(tokens_needed=100, from_tier=lib.StorageTier.L0) == candidates


@both()
def test_importance_overrides_reorder_l0_and_are_clamped(lib: Lib) -> None:
    manager = small(lib)
    for i in range(3):
        manager.add_to_l0(page(lib, f"p{i}"))
    manager.set_importance("p0", 7.0)
    manager.set_importance("p2", -1.0)
    assert manager.importance_overrides == {"p0": 1.0, "p2": 0.0}
    assert [pid for pid, _ in manager.get_eviction_candidates()] == ["p2", "p1", "p0"]
    manager.clear_importance("p0")
    manager.clear_importance("never_set")
    assert manager.importance_overrides == {"p2": 0.0}


@both()
def test_pinned_pages_are_never_candidates(lib: Lib) -> None:
    manager = small(lib)
    for i in range(3):
        manager.add_to_l0(page(lib, f"p{i}"))
    manager.pin_page("p0")
    manager.pinned_set.auto_pin("p1")
    assert (manager.is_pinned("p0"), manager.is_pinned("p1"), manager.is_pinned("p2")) == (True, True, False)
    assert [pid for pid, _ in manager.get_eviction_candidates()] == ["p2"]
    manager.unpin_page("p0")
    assert [pid for pid, _ in manager.get_eviction_candidates()] == ["p0", "p2"]


@both()
def test_anti_thrash_protects_recent_faults_and_evictions(lib: Lib) -> None:
    manager = small(lib)
    for name in ("faulted", "evicted", "plain"):
        manager.add_to_l0(page(lib, name))
    manager.record_fault("faulted")
    manager.record_eviction("evicted")
    assert [pid for pid, _ in manager.get_eviction_candidates()] == ["plain"]
    manager.new_turn()
    manager.new_turn()
    assert manager.current_turn == 2
    # Fault protection (2 turns) is over; the eviction cooldown (3 turns) is not.
    assert [pid for pid, _ in manager.get_eviction_candidates()] == ["faulted", "plain"]
    manager.new_turn()
    assert [pid for pid, _ in manager.get_eviction_candidates()] == ["faulted", "evicted", "plain"]


@both()
def test_l1_candidates_score_recency_frequency_and_importance(lib: Lib) -> None:
    manager = small(lib)
    long_ago = datetime.now(UTC) - timedelta(days=30)
    for name, importance in (("keep", 0.9), ("drop", 0.1), ("middle", 0.5)):
        manager.l1_cache[name] = page(lib, name, importance=importance, last_accessed=long_ago)
    manager.l1_cache["pinned"] = page(lib, "pinned", importance=0.0, pinned=True, last_accessed=long_ago)
    candidates = manager.get_eviction_candidates(from_tier=lib.StorageTier.L1)
    assert [pid for pid, _ in candidates] == ["drop", "middle", "keep"]
    manager.set_importance("keep", 0.0)
    assert manager.get_eviction_candidates(from_tier=lib.StorageTier.L1)[0][0] == "keep"


@both()
def test_stats(lib: Lib) -> None:
    manager = small(lib, eviction_threshold=0.5)
    manager.add_to_l0(page(lib, "a", 600, modality=lib.Modality.AUDIO))
    manager.add_to_l1(page(lib, "b"))
    stats = manager.get_stats()
    assert (stats.l0_pages, stats.l1_pages, stats.total_pages) == (1, 1, 2)
    assert (stats.tokens_used, stats.tokens_available, stats.utilization, stats.needs_eviction) == (600, 400, 0.6, True)
    assert stats.tokens_by_modality[lib.Modality.AUDIO] == 600


@both()
def test_clear_empties_the_working_set(lib: Lib) -> None:
    manager = small(lib)
    manager.add_to_l0(page(lib, "a"))
    manager.add_to_l1(page(lib, "b"))
    manager.set_importance("a", 0.9)
    manager.pin_page("a")
    manager.clear()
    assert (len(manager), manager.tokens_used, manager.importance_overrides) == (0, 0, {})
    assert manager.is_pinned("a")


@both()
def test_token_budget(lib: Lib) -> None:
    budget = lib.TokenBudget(total_limit=1_000, reserved=200)
    assert budget.add(500, lib.Modality.TEXT) is True
    assert budget.add(301, lib.Modality.IMAGE) is False
    assert budget.add(300, lib.Modality.IMAGE) is True
    assert (budget.used, budget.available, budget.utilization) == (800, 0, 1.0)
    assert (budget.text_tokens, budget.image_tokens, budget.audio_tokens) == (500, 300, 0)
    assert (budget.video_tokens, budget.structured_tokens) == (0, 0)
    budget.remove(1_000, lib.Modality.TEXT)
    assert (budget.text_tokens, budget.used, budget.can_fit(500), budget.can_fit(501)) == (0, 300, True, False)
    assert lib.TokenBudget(total_limit=100, reserved=100).utilization == 1.0


@both()
def test_token_budget_get_and_set_tokens(lib: Lib) -> None:
    budget = lib.TokenBudget(total_limit=1_000, reserved=200)
    assert budget.get_tokens(lib.Modality.AUDIO) == 0
    budget.tokens_by_modality.pop(lib.Modality.VIDEO)
    assert budget.get_tokens(lib.Modality.VIDEO) == 0  # one never counted
    budget.set_tokens(lib.Modality.TEXT, 900)  # more than fits: set anyway
    assert (budget.get_tokens(lib.Modality.TEXT), budget.used, budget.available, budget.utilization) == (
        900,
        900,
        0,
        1.0,
    )
    budget.set_tokens(lib.Modality.TEXT, -5)
    assert (budget.get_tokens(lib.Modality.TEXT), budget.text_tokens) == (0, 0)
    budget.set_tokens(lib.Modality.IMAGE, 40)
    assert (budget.get_tokens(lib.Modality.IMAGE), budget.image_tokens, budget.used) == (40, 40, 40)


@both()
def test_pinned_set(lib: Lib) -> None:
    pins = lib.PinnedSet()
    assert (pins.auto_pin_last_n_turns, pins.auto_pin_system_prompt, pins.auto_pin_claims) == (3, True, True)
    pins.pin("explicit")
    pins.auto_pin("auto")
    assert pins.get_all_pinned() == {"explicit", "auto"}
    assert pins.count() == 2
    pins.clear_auto_pins()
    assert (pins.is_pinned("explicit"), pins.is_pinned("auto")) == (True, False)
    pins.auto_pin("both")
    pins.pin("both")
    pins.unpin("both")
    assert not pins.is_pinned("both")


@both()
def test_anti_thrash_policy_windows_and_penalties(lib: Lib) -> None:
    policy = lib.AntiThrashPolicy(eviction_cooldown_turns=4, fault_protection_turns=2)
    assert (policy.can_evict("x", 0), policy.get_eviction_penalty("x", 0)) == (True, 0.0)
    policy.record_fault("f", turn=10)
    assert [policy.can_evict("f", t) for t in (10, 11, 12)] == [False, False, True]
    assert [policy.get_eviction_penalty("f", t) for t in (10, 11, 12)] == [1.0, 0.5, 0.0]
    policy.record_eviction("e", turn=10)
    assert [policy.can_evict("e", t) for t in (13, 14)] == [False, True]
    assert [policy.get_eviction_penalty("e", t) for t in (10, 12, 14)] == [0.5, 0.25, 0.0]
    policy.record_fault("e", turn=13)
    assert policy.get_eviction_penalty("e", 13) == 1.0  # capped
    policy.cleanup_old_history(current_turn=40, max_age=20)
    assert policy.can_evict("f", 10)  # history older than max_age is forgotten


def test_plan_eviction_picks_just_enough_tokens() -> None:
    """tierstore's addition to chuk's API: the candidates, in eviction order, until their tokens suffice."""
    manager = WorkingSetManager(config=WorkingSetConfig(max_l0_tokens=1_000, reserved_tokens=0))
    for i, tokens in enumerate((100, 250, 300)):
        manager.add_to_l0(MemoryPage(page_id=f"p{i}", modality=Modality.TEXT, size_tokens=tokens))
    manager.new_turn()
    assert manager.turn == manager.current_turn == 1
    plan = manager.plan_eviction(tokens_needed=300)
    assert [(c.page_id, c.tier, c.tokens) for c in plan] == [("p0", StorageTier.L0, 100), ("p1", StorageTier.L0, 250)]
    assert [c.score for c in plan] == pytest.approx([0.2, 0.2 + 0.4 / 3])
    assert [c.page_id for c in manager.plan_eviction()] == ["p0", "p1", "p2"]
    manager.add_to_l1(MemoryPage(page_id="cached", modality=Modality.TEXT, size_tokens=40))
    assert [(c.page_id, c.tokens) for c in manager.plan_eviction(from_tier=StorageTier.L1)] == [("cached", 40)]
