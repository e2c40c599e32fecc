"""Capability: core. Pages come back exactly as they were stored."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from tests.contract.conftest import text_page
from tierstore import ArtifactsBridge, CompressionLevel, MemoryPage, Modality, PageType, StorageTier


async def test_text_page_round_trips_every_field(bridge: ArtifactsBridge) -> None:
    page = MemoryPage(
        page_id="msg_001",
        session_id="s1",
        modality=Modality.TEXT,
        page_type=PageType.CLAIM,
        provenance=["msg_000"],
        represents="msg_000",
        representation_level=CompressionLevel.ABSTRACT,
        storage_tier=StorageTier.L2,
        content="Important message content",
        compression_level=CompressionLevel.REDUCED,
        representations={CompressionLevel.ABSTRACT: "mem_L3_9"},
        size_bytes=26,
        size_tokens=6,
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        access_count=3,
        importance=0.9,
        dirty=True,
        pinned=True,
        parent_page_id="msg_000",
        metadata={"nested": {"list": [1, 2.5, None, True]}},
    )
    artifact = await bridge.store_page(page)
    assert artifact == "mem_L2_1"
    assert await bridge.load_page(artifact) == page


async def test_unicode_round_trips(bridge: ArtifactsBridge) -> None:
    content = "naïve café — 東京 🚀 \u200b\U0010ffff"
    page = text_page("ünï/../cødé 🚀", content, caption="é", metadata={"ключ": "значение"})
    loaded = await bridge.load_page(await bridge.store_page(page))
    assert loaded == page


async def test_ten_mebibytes_of_bytes_round_trip(bridge: ArtifactsBridge) -> None:
    blob = os.urandom(10 * 1024 * 1024)
    page = MemoryPage(
        page_id="img_001", modality=Modality.IMAGE, content=blob, mime_type="image/png", dimensions=(640, 480)
    )
    artifact = await bridge.store_page(page)
    loaded = await bridge.load_page(artifact)
    assert loaded is not None
    assert loaded.content == blob
    assert loaded.dimensions == (640, 480)
    metadata = await bridge.get_metadata(artifact)
    assert metadata is not None
    assert 10 * 1024 * 1024 < metadata.size_bytes < 10 * 1024 * 1024 + 4096


async def test_structured_and_empty_content_round_trip(bridge: ArtifactsBridge) -> None:
    structured = MemoryPage(page_id="s", modality=Modality.STRUCTURED, content={"rows": [[1, "a"], [2, "b"]]})
    empty = MemoryPage(page_id="v", modality=Modality.VIDEO, content=None, transcript="hello", duration_seconds=1.5)
    for page in (structured, empty):
        assert await bridge.load_page(await bridge.store_page(page)) == page


async def test_missing_artifact_loads_as_none(bridge: ArtifactsBridge) -> None:
    assert await bridge.load_page("mem_L3_404") is None
    assert await bridge.get_metadata("mem_L3_404") is None
    assert await bridge.delete_page("mem_L3_404") is False


@pytest.mark.bridge_only
async def test_tier_defaults_and_explicit_tier(bridge: ArtifactsBridge) -> None:
    in_context = text_page("a", storage_tier=StorageTier.L0)
    archived = text_page("b", storage_tier=StorageTier.L4)
    assert (await bridge.store_page(in_context)).startswith("mem_L3_")
    assert (await bridge.store_page(archived)).startswith("mem_L4_")
    assert (await bridge.store_page(in_context, tier=StorageTier.L2)).startswith("mem_L2_")


async def test_delete_removes_the_page(bridge: ArtifactsBridge) -> None:
    artifact = await bridge.store_page(text_page("gone"))
    assert await bridge.delete_page(artifact) is True
    assert await bridge.load_page(artifact) is None
    assert artifact not in await bridge.list_pages()
