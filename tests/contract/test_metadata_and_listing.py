"""Capability: core. Metadata without the body, listing past one page of results, statistics."""

from __future__ import annotations

import asyncio

import pytest

from tests.contract.conftest import text_page
from tierstore import ArtifactsBridge, Modality, StorageTier, ids
from tierstore.backends import slices
from tierstore.backends.base import StorageBackend


async def test_metadata_describes_the_stored_page(bridge: ArtifactsBridge) -> None:
    page = text_page("msg_042", "x" * 1000, storage_tier=StorageTier.L3)
    artifact = await bridge.store_page(page)
    metadata = await bridge.get_metadata(artifact)
    assert metadata is not None
    assert metadata.page_id == "msg_042"
    assert metadata.modality == "text"
    assert metadata.tier == "L3"
    assert metadata.compression_level == 0
    assert metadata.created_at == page.created_at
    assert metadata.checksum is not None
    assert metadata.checksum.startswith("sha256:")
    assert metadata.size_bytes > 1000
    assert metadata.artifact_id == artifact


async def test_metadata_of_a_page_id_too_long_for_object_metadata(bridge: ArtifactsBridge) -> None:
    page_id = "页" * 340  # 1,020 bytes of UTF-8, 3,060 characters once percent-encoded
    artifact = await bridge.store_page(text_page(page_id))
    metadata = await bridge.get_metadata(artifact)
    assert metadata is not None
    assert metadata.page_id == page_id
    assert metadata.modality == "text"


async def test_listing_beyond_one_thousand_artifacts(bridge: ArtifactsBridge, backend: StorageBackend) -> None:
    semaphore = asyncio.Semaphore(32)

    async def store(i: int) -> str:
        async with semaphore:
            return await bridge.store_page(text_page(f"p{i}", "."))

    stored = await asyncio.gather(*(store(i) for i in range(1100)))
    assert len(set(stored)) == 1100
    listed = await bridge.list_pages()
    assert sorted(listed) == sorted(stored)
    stats = await bridge.collect_stats()
    assert stats.pages_stored == 1100
    # `ls -l` streams a cloud's listing page by page on its promise to list in key order (tierstore.cli.ls_pages).
    assert slices.lists_in_order(backend) == (backend.name not in ("in-memory", "filesystem"))
    keys = [entry.key async for entry in backend.list(ids.PAGE_PREFIX)]
    streamed = [entry.key async for entry in slices.list_streamed(backend, ids.PAGE_PREFIX)]  # its first page small
    if slices.lists_in_order(backend):
        assert keys == streamed == sorted(stored)
    assert sorted(keys) == sorted(streamed) == sorted(stored)


@pytest.mark.bridge_only
async def test_listing_and_stats_leave_out_checkpoint_manifests(bridge: ArtifactsBridge) -> None:
    artifact = await bridge.store_page(text_page("a"))
    checkpoint = await bridge.checkpoint([text_page("b")], name="one")
    manifest = await bridge.get_checkpoint_manifest(checkpoint)
    assert manifest is not None
    listed = await bridge.list_pages()
    assert sorted(listed) == sorted([artifact, manifest.pages[0].artifact_id])
    assert checkpoint not in listed
    exact = await bridge.collect_stats()
    assert (exact.pages_stored, exact.checkpoints) == (2, 1)
    stats = bridge.get_stats()
    assert stats.pages_stored == 2
    assert stats.total_bytes == exact.total_bytes


async def test_stats_name_the_backend(bridge: ArtifactsBridge, backend: StorageBackend) -> None:
    stats = bridge.get_stats()
    assert stats.backend == backend.name
    assert stats.persistent == backend.persistent


async def test_raw_protocol_round_trip(backend: StorageBackend) -> None:
    metadata = {"pageid": "abc%2Fdef", "modality": "image", "checksum": "sha256:00"}
    await backend.put("mem_L3_1", b"0123456789", metadata=metadata, tags={"tier": "L3"}, tier=StorageTier.L3)
    assert await backend.get("mem_L3_1") == b"0123456789"
    assert await backend.get_range("mem_L3_1", 2, 3) == b"234"
    info = await backend.head("mem_L3_1")
    assert info is not None
    assert dict(info.metadata) == metadata
    assert info.size == 10
    assert info.tier == StorageTier.L3
    assert await backend.head("mem_L3_2") is None
    assert await backend.get("mem_L3_2") is None
    await backend.put("mem_L3_1", b"new", tier=StorageTier.L3)
    assert await backend.get("mem_L3_1") == b"new"
    assert await backend.delete("mem_L3_1") is True
    assert await backend.delete("mem_L3_1") is False


async def test_list_filters_by_prefix_and_delete_many(backend: StorageBackend) -> None:
    keys = [f"mem_L3_{i}" for i in range(5)] + ["ckpt_1", "tomb_1"]
    for key in keys:
        await backend.put(key, key.encode())
    assert sorted([e.key async for e in backend.list("mem_")]) == sorted(keys[:5])
    assert [e.size async for e in backend.list("ckpt_")] == [6]
    await backend.delete_many(keys[:5])
    assert sorted([e.key async for e in backend.list("")]) == ["ckpt_1", "tomb_1"]


async def test_modality_of_every_kind_is_listed_in_metadata(bridge: ArtifactsBridge) -> None:
    for modality in Modality:
        page = text_page(f"m-{modality.value}", modality=modality)
        metadata = await bridge.get_metadata(await bridge.store_page(page))
        assert metadata is not None
        assert metadata.modality == modality.value


async def test_a_prefix_lists_exactly_its_names_among_neighbours(backend: StorageBackend) -> None:
    # Names that sort just before, between and just after the prefixes listed below, in the key alphabet's order
    # ("-" < "." < digits < capitals < "_" < small letters): a listing that starts or stops one name off shows.
    keys = ["me", "mem", "mem-1", "mem.x", "mem9", "memZ", "mem_", "mem_L3_1", "mem_L3_10", "mem_L3_2", "mema", "mf"]
    for key in keys:
        await backend.put(key, key.encode())
    for prefix in ("", "m", "me", "mem", "mem_", "mem_L3_1", "mem_L3_10", "mem_L3_100", "mem-", "memZ", "mf", "n"):
        listed = sorted([e.key async for e in backend.list(prefix)])
        assert listed == sorted(k for k in keys if k.startswith(prefix)), prefix
