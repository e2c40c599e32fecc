"""Capability: core. Checkpoints are atomic, verified, incremental, and deleted without breaking others."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.contract.conftest import text_page
from tests.wrappers import Observed
from tierstore import (
    AccessDeniedError,
    ArtifactsBridge,
    BackendUnavailableError,
    IntegrityError,
    MemoryPage,
    Modality,
    ObjectNotFoundError,
    StorageTier,
)
from tierstore.backends.base import StorageBackend
from tierstore.maintenance import gc


def _pages(n: int) -> list[MemoryPage]:
    return [text_page(f"msg_{i:03d}", f"Message {i}") for i in range(n)]


async def test_checkpoint_restores_every_page(bridge: ArtifactsBridge) -> None:
    pages = [*_pages(5), MemoryPage(page_id="img_001", modality=Modality.IMAGE, content=b"\x89PNG\x00\xff")]
    checkpoint = await bridge.checkpoint(pages=pages, name="session_checkpoint_v1")
    assert await bridge.list_checkpoints() == [checkpoint]
    manifest = await bridge.get_checkpoint_manifest(checkpoint)
    assert manifest is not None
    assert (manifest.name, manifest.page_count) == ("session_checkpoint_v1", 6)
    assert [e.page_id for e in manifest.pages] == [p.page_id for p in pages]
    fresh = ArtifactsBridge(backend=bridge.backend)
    assert await fresh.restore_checkpoint(checkpoint) == pages


@pytest.mark.bridge_only
async def test_checkpoints_list_oldest_first(bridge: ArtifactsBridge) -> None:
    made = [await bridge.checkpoint(_pages(1), name=f"c{i}") for i in range(3)]
    assert await bridge.list_checkpoints() == made


@pytest.mark.bridge_only
async def test_a_manifest_write_that_may_have_landed_keeps_its_pages_until_its_lease_expires(
    backend: StorageBackend,
) -> None:
    failing = Observed(backend, fail_put=lambda key: key.startswith("ckpt_"))
    bridge = ArtifactsBridge(backend=failing, lease_ttl=timedelta(seconds=1))
    with pytest.raises(BackendUnavailableError):
        await bridge.checkpoint(_pages(10), name="doomed")
    assert await bridge.list_checkpoints() == []
    # An unknown outcome: the manifest might still land, so nothing it would name may go yet.
    assert (await gc(bridge, grace=timedelta(0))).orphans_deleted == []
    assert len(await bridge.list_pages()) == 10
    await asyncio.sleep(1.5)  # the abandoned lease expires; no manifest appeared
    assert len((await gc(bridge, grace=timedelta(0))).orphans_deleted) == 10
    assert await bridge.list_pages() == []


@pytest.mark.bridge_only
async def test_a_refused_manifest_write_discards_its_pages_at_once(backend: StorageBackend) -> None:
    failing = Observed(backend, fail_put=lambda key: key.startswith("ckpt_"), error=AccessDeniedError)
    bridge = ArtifactsBridge(backend=failing)
    with pytest.raises(AccessDeniedError):
        await bridge.checkpoint(_pages(10), name="doomed")
    assert await bridge.list_checkpoints() == []
    assert await bridge.list_pages() == []


@pytest.mark.bridge_only
async def test_a_failed_page_fails_the_checkpoint_and_leaves_only_collectable_orphans(backend: StorageBackend) -> None:
    failing = Observed(backend, fail_put=lambda key: key == "mem_L3_7")
    bridge = ArtifactsBridge(backend=failing, concurrency=4)
    with pytest.raises(BackendUnavailableError, match="mem_L3_7"):
        await bridge.checkpoint(_pages(40), name="doomed")
    assert await bridge.list_checkpoints() == []
    await gc(bridge, grace=timedelta(0))  # uploads cancelled in flight may have landed: they are orphans
    assert await bridge.list_pages() == []


@pytest.mark.bridge_only
async def test_second_checkpoint_uploads_only_changed_pages(backend: StorageBackend) -> None:
    observed = Observed(backend)
    bridge = ArtifactsBridge(backend=observed)
    pages = _pages(50)
    first = await bridge.checkpoint(pages, name="full")
    assert observed.puts["mem"] == 50
    pages[7].content = "changed"
    second = await bridge.checkpoint(pages, name="incremental")
    assert observed.puts["mem"] == 51
    assert await ArtifactsBridge(backend=backend).restore_checkpoint(second) == pages
    await bridge.delete_checkpoint(first)
    assert await ArtifactsBridge(backend=backend).restore_checkpoint(second) == pages
    assert len(await bridge.list_pages()) == 50


@pytest.mark.bridge_only
async def test_restored_checkpoint_is_the_base_of_the_next_one(backend: StorageBackend) -> None:
    first = await ArtifactsBridge(backend=backend).checkpoint(_pages(20), name="before restart")
    observed = Observed(backend)
    restarted = ArtifactsBridge(backend=observed)
    pages = await restarted.restore_checkpoint(first)
    pages[0].content = "edited after restart"
    await restarted.checkpoint(pages, name="after restart")
    assert observed.puts["mem"] == 1


@pytest.mark.bridge_only
async def test_a_new_process_uploads_only_what_changed_and_restores_the_latest_bookkeeping(
    backend: StorageBackend,
) -> None:
    """No restore in between: the new bridge finds the earlier artifacts in the store's newest checkpoints."""
    pages = _pages(100)
    await ArtifactsBridge(backend=backend).checkpoint(pages, name="before restart")
    edited, accessed, moved = pages[:1], pages[10:30], pages[40:45]
    for page in edited:
        page.content = "edited after the restart"
    for page in accessed:
        page.mark_accessed()
        page.mark_accessed()
    for page in moved:
        page.storage_tier = StorageTier.L1  # moved between in-process tiers: still the same artifact
    observed = Observed(backend)
    checkpoint = await ArtifactsBridge(backend=observed).checkpoint(pages, name="after restart")
    assert observed.puts["mem"] == len(edited)
    restored = await ArtifactsBridge(backend=backend).restore_checkpoint(checkpoint)
    assert restored == pages  # bookkeeping (access count, last access, tier) as it was at the checkpoint
    assert [p.access_count for p in restored[10:30]] == [2] * 20


@pytest.mark.bridge_only
async def test_delete_checkpoint_keeps_shared_artifacts(bridge: ArtifactsBridge) -> None:
    pages = _pages(4)
    first = await bridge.checkpoint(pages, name="a")
    pages[0].content = "new"
    second = await bridge.checkpoint(pages, name="b")
    assert await bridge.delete_checkpoint(first) is True
    assert await bridge.delete_checkpoint(first) is False
    assert await bridge.list_checkpoints() == [second]
    assert await bridge.restore_checkpoint(second) == pages
    assert len(await bridge.list_pages()) == 4
    await bridge.delete_checkpoint(second)
    assert await bridge.list_pages() == []


@pytest.mark.bridge_only
async def test_restore_refuses_a_checkpoint_with_a_missing_page(bridge: ArtifactsBridge) -> None:
    checkpoint = await bridge.checkpoint(_pages(3), name="c")
    manifest = await bridge.get_checkpoint_manifest(checkpoint)
    assert manifest is not None
    await bridge.backend.delete(manifest.pages[1].artifact_id)
    with pytest.raises(IntegrityError, match="msg_001"):
        await ArtifactsBridge(backend=bridge.backend).restore_checkpoint(checkpoint)


@pytest.mark.bridge_only
async def test_unknown_checkpoint(bridge: ArtifactsBridge) -> None:
    assert await bridge.get_checkpoint_manifest("ckpt_20260101T000000000000_00000000") is None
    assert await bridge.delete_checkpoint("ckpt_20260101T000000000000_00000000") is False
    with pytest.raises(ObjectNotFoundError):
        await bridge.restore_checkpoint("ckpt_20260101T000000000000_00000000")
