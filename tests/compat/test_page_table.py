"""PageTable and PageTableEntry behave as chuk-ai-session-manager 0.11.2's do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.compat.libs import Lib, both, each_page_class


def page(lib: Lib, page_id: str, **fields: Any) -> Any:
    fields.setdefault("modality", lib.Modality.TEXT)
    return lib.MemoryPage(page_id=page_id, **fields)


def at(minutes: int) -> datetime:
    return datetime(2026, 3, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=minutes)


@both()
def test_register_takes_location_and_state_from_the_page(lib: Lib) -> None:
    table = lib.PageTable()
    source = page(
        lib,
        "claim_1",
        storage_tier=lib.StorageTier.L2,
        artifact_id="mem_L2_7",
        page_type=lib.PageType.CLAIM,
        modality=lib.Modality.IMAGE,
        provenance=["msg_1"],
        dirty=True,
        pinned=True,
        access_count=4,
        compression_level=lib.CompressionLevel.REDUCED,
    )
    entry = table.register(source)
    assert (entry.page_id, entry.tier, entry.artifact_id) == ("claim_1", "L2", "mem_L2_7")
    assert (entry.page_type, entry.modality, entry.provenance) == ("claim", "image", ["msg_1"])
    assert (entry.dirty, entry.pinned, entry.access_count, entry.compression_level) == (True, True, 4, 1)
    assert "claim_1" in table
    assert "other" not in table
    assert len(table) == 1
    assert table.lookup("claim_1") is entry
    assert table.lookup("other") is None
    assert table.entries == {"claim_1": entry}


@both()
def test_register_counts_tokens_from_size_tokens_else_the_content(lib: Lib) -> None:
    table = lib.PageTable()
    assert table.register(page(lib, "a", size_tokens=40, content="x" * 400)).size_tokens == 40
    assert table.register(page(lib, "b", content="x" * 400)).size_tokens == 100
    assert table.get_total_tokens() == 140


@both()
def test_lookup_does_not_count_an_access_and_mark_accessed_does(lib: Lib) -> None:
    table = lib.PageTable()
    table.register(page(lib, "a", last_accessed=at(0)))
    table.lookup("a")
    assert table.lookup("a").access_count == 0
    assert table.mark_accessed("a") is True
    entry = table.lookup("a")
    assert entry.access_count == 1
    assert entry.last_accessed > at(0)
    assert table.mark_accessed("missing") is False


@both()
def test_register_entry_adds_or_replaces_an_entry_and_the_tier_queries_follow(lib: Lib) -> None:
    table = lib.PageTable()
    table.register_entry(lib.PageTableEntry(page_id="a", tier=lib.StorageTier.L3, artifact_id="mem_L3_1", dirty=True))
    assert [e.page_id for e in table.get_by_tier(lib.StorageTier.L3)] == ["a"]
    assert [e.page_id for e in table.get_dirty_pages()] == ["a"]
    table.register_entry(lib.PageTableEntry(page_id="a", tier=lib.StorageTier.L1))
    assert table.get_by_tier(lib.StorageTier.L3) == []
    assert [e.page_id for e in table.get_by_tier(lib.StorageTier.L1)] == ["a"]
    assert table.get_dirty_pages() == []
    assert table.lookup("a").artifact_id is None


@both()
def test_update_location_moves_a_page_between_tiers(lib: Lib) -> None:
    table = lib.PageTable()
    table.register(page(lib, "a", storage_tier=lib.StorageTier.L0))
    assert table.update_location("a", lib.StorageTier.L3, artifact_id="mem_L3_1") is True
    assert table.update_location("a", lib.StorageTier.L4, compression_level=lib.CompressionLevel.ABSTRACT) is True
    entry = table.lookup("a")
    assert (entry.tier, entry.artifact_id, entry.compression_level) == ("L4", "mem_L3_1", 2)
    assert table.get_by_tier(lib.StorageTier.L0) == []
    assert [e.page_id for e in table.get_by_tier(lib.StorageTier.L4)] == ["a"]
    assert table.update_location("missing", lib.StorageTier.L3) is False


@both()
def test_update_compression_changes_only_the_level(lib: Lib) -> None:
    table = lib.PageTable()
    table.register(page(lib, "a", storage_tier=lib.StorageTier.L1))
    assert table.update_compression("a", lib.CompressionLevel.REFERENCE) is True
    assert (table.lookup("a").compression_level, table.lookup("a").tier) == (3, "L1")
    assert table.update_compression("missing", lib.CompressionLevel.FULL) is False


@both()
def test_dirty_pages_are_tracked_until_flushed(lib: Lib) -> None:
    table = lib.PageTable()
    table.register(page(lib, "a"))
    table.register(page(lib, "b"))
    assert table.mark_dirty("b") is True
    assert [e.page_id for e in table.get_dirty_pages()] == ["b"]
    assert table.lookup("b").last_flushed is None
    assert table.mark_clean("b") is True
    assert table.get_dirty_pages() == []
    assert table.lookup("b").last_flushed is not None
    assert table.mark_dirty("missing") is False
    assert table.mark_clean("missing") is False


@both()
def test_remove_returns_the_entry_and_forgets_it_everywhere(lib: Lib) -> None:
    table = lib.PageTable()
    table.register(page(lib, "a", dirty=True, storage_tier=lib.StorageTier.L2))
    removed = table.remove("a")
    assert removed is not None
    assert removed.page_id == "a"
    assert table.remove("a") is None
    assert (len(table), table.get_dirty_pages(), table.get_by_tier(lib.StorageTier.L2)) == (0, [], [])


@both()
def test_queries_by_modality_type_and_working_set(lib: Lib) -> None:
    table = lib.PageTable()
    table.register(page(lib, "text0", storage_tier=lib.StorageTier.L0))
    table.register(page(lib, "img1", storage_tier=lib.StorageTier.L1, modality=lib.Modality.IMAGE))
    table.register(page(lib, "claim3", storage_tier=lib.StorageTier.L3, page_type=lib.PageType.CLAIM))
    assert sorted(e.page_id for e in table.get_by_modality(lib.Modality.TEXT)) == ["claim3", "text0"]
    assert [e.page_id for e in table.get_by_modality(lib.Modality.IMAGE)] == ["img1"]
    assert [e.page_id for e in table.get_by_type(lib.PageType.CLAIM)] == ["claim3"]
    assert table.get_by_type(lib.PageType.SUMMARY) == []
    assert [e.page_id for e in table.get_working_set()] == ["text0", "img1"]


@both()
def test_eviction_candidates_are_the_least_recently_used_of_a_tier(lib: Lib) -> None:
    table = lib.PageTable()
    for i, minutes in enumerate([30, 10, 20, 40]):
        table.register(page(lib, f"p{i}", storage_tier=lib.StorageTier.L1, last_accessed=at(minutes)))
    table.register(page(lib, "in_l0", storage_tier=lib.StorageTier.L0, last_accessed=at(0)))
    assert [e.page_id for e in table.get_eviction_candidates()] == ["p1", "p2", "p0", "p3"]
    assert [e.page_id for e in table.get_eviction_candidates(limit=2)] == ["p1", "p2"]
    assert [e.page_id for e in table.get_eviction_candidates(tier=lib.StorageTier.L0)] == ["in_l0"]


@both(
    chuk_differs="chuk's PageTable.get_eviction_candidates lists pinned pages; tierstore leaves them out because a "
    "pinned page is never evicted (README: Compatibility with chuk-ai-session-manager)"
)
def test_pinned_pages_are_not_eviction_candidates(lib: Lib) -> None:
    table = lib.PageTable()
    table.register(page(lib, "pinned", storage_tier=lib.StorageTier.L1, pinned=True, last_accessed=at(0)))
    table.register(page(lib, "free", storage_tier=lib.StorageTier.L1, last_accessed=at(5)))
    assert [e.page_id for e in table.get_eviction_candidates()] == ["free"]


@both()
@pytest.mark.parametrize(
    ("page_type", "priority"),
    [("claim", 0.1), ("index", 0.2), ("procedure", 0.3), ("summary", 0.4), ("artifact", 0.6), ("transcript", 0.7)],
)
def test_eviction_priority_follows_the_page_type_and_is_zero_when_pinned(
    lib: Lib, page_type: str, priority: float
) -> None:
    entry = lib.PageTableEntry(page_id="a", tier=lib.StorageTier.L1, page_type=lib.PageType(page_type))
    assert entry.eviction_priority == priority
    entry.pinned = True
    assert entry.eviction_priority == 0.0


@both()
def test_entry_mark_accessed(lib: Lib) -> None:
    entry = lib.PageTableEntry(page_id="a", tier=lib.StorageTier.L1, last_accessed=at(0))
    entry.mark_accessed()
    assert (entry.access_count, entry.last_accessed > at(0)) == (1, True)
    assert entry.affinity == "local"


@both()
def test_stats_count_every_tier_and_modality(lib: Lib) -> None:
    table = lib.PageTable()
    table.register(page(lib, "a", storage_tier=lib.StorageTier.L0, dirty=True))
    table.register(page(lib, "b", storage_tier=lib.StorageTier.L1, modality=lib.Modality.AUDIO))
    table.register(page(lib, "c", storage_tier=lib.StorageTier.L3))
    stats = table.get_stats()
    assert (stats.total_pages, stats.dirty_pages, stats.working_set_size) == (3, 1, 2)
    assert stats.pages_by_tier == {"L0": 1, "L1": 1, "L2": 0, "L3": 1, "L4": 0}
    assert stats.pages_by_modality == {"text": 2, "image": 0, "audio": 1, "video": 0, "structured": 0}


@both()
def test_total_tokens_by_tier(lib: Lib) -> None:
    table = lib.PageTable()
    table.register(page(lib, "a", storage_tier=lib.StorageTier.L0, size_tokens=10))
    table.register(page(lib, "b", storage_tier=lib.StorageTier.L1, size_tokens=20))
    table.register(page(lib, "c", storage_tier=lib.StorageTier.L3, size_tokens=40))
    assert table.get_total_tokens() == 70
    assert table.get_total_tokens([lib.StorageTier.L0, lib.StorageTier.L3]) == 50
    assert table.get_total_tokens([lib.StorageTier.L2]) == 0
    assert table.get_total_tokens([]) == 70  # no tiers given: every page, as chuk counts


@both()
@each_page_class()
def test_pages_and_entries_of_either_library_register(lib: Lib, page_lib: Lib) -> None:
    table = lib.PageTable()
    table.register(page(page_lib, "a", storage_tier=page_lib.StorageTier.L3, size_tokens=5))
    table.register_entry(page_lib.PageTableEntry(page_id="b", tier=page_lib.StorageTier.L3, size_tokens=7))
    assert sorted(e.page_id for e in table.get_by_tier(lib.StorageTier.L3)) == ["a", "b"]
    assert table.get_total_tokens([lib.StorageTier.L3]) == 12
    assert table.get_stats().pages_by_tier[lib.StorageTier.L3] == 2
    assert table.update_location("b", lib.StorageTier.L2) is True
    assert [e.page_id for e in table.get_by_tier(page_lib.StorageTier.L2)] == ["b"]
