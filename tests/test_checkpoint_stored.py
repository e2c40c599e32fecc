"""``checkpoint(stored=...)``: entries a caller keeps alive under a lease of its own are named without being read,
but never trusted: each is shown there as stored (one ``head``) before the manifest is written, so a checkpoint
naming one that was deleted (its tomb pruned or not), removed by hand or replaced is never listed, and an archived
one needs no restore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import Store
from tierstore import ArtifactsBridge, IntegrityError, MemoryPage, Modality, StorageTier, ids
from tierstore.maintenance.gc import gc

DAMAGE = ["delete_page, its tomb pruned", "delete_page, its tomb kept", "removed by hand", "another page put there"]


def _page(name: str) -> MemoryPage:
    return MemoryPage(page_id=name, modality=Modality.TEXT, content=f"the content of {name}")


@pytest.mark.parametrize("damage", DAMAGE)
async def test_a_stored_entry_that_is_not_there_as_stored_fails_the_checkpoint(store: Store, damage: str) -> None:
    bridge = ArtifactsBridge(store.open())
    owner = "ckpt_20300101T000000000000_00000001"
    lease = bridge.references("test").lease(owner, [])
    await lease.start()
    kept = await bridge.store_leased(_page("kept"), StorageTier.L3, owner=owner)
    archived = await bridge.store_leased(_page("archived"), StorageTier.L4, owner=owner)
    other = ArtifactsBridge(store.open())
    if damage.startswith("delete_page"):
        assert await other.delete_page(kept.artifact_id)
        if damage.endswith("pruned"):
            assert (await gc(other, grace=timedelta(0), tomb_retention=timedelta(0))).tombs_pruned
    elif damage == "removed by hand":
        await store.open().delete(kept.artifact_id)
    else:
        backend = store.open()
        stranger = await other.store_page(_page("kept"), StorageTier.L3)  # the same page, another write
        data = await backend.get(stranger)
        assert data is not None
        await backend.put(kept.artifact_id, data)
    with pytest.raises(IntegrityError, match=r"page 'kept' .*store the page again") as refused:
        await bridge.checkpoint([_page("in memory")], "refused", stored=[archived, kept])
    assert refused.value.key == kept.artifact_id
    assert await other.list_checkpoints() == []
    listed = await bridge.checkpoint([_page("in memory")], "archived, unread", stored=[archived])
    assert await other.list_checkpoints() == [listed]
    await lease.release()


@pytest.mark.parametrize("odd", [b"not a frame", b""], ids=["garbage", "empty"])
async def test_an_unreadable_tomb_refuses_no_stored_entry(store: Store, odd: bytes) -> None:
    """No deleter writes a tomb that cannot be read (each is one whole put before it deletes), so one stands for no
    deletion: entries kept under the caller's lease, which cannot be uploaded anew, are listed once shown there."""
    bridge = ArtifactsBridge(store.open())
    owner = "ckpt_20300101T000000000000_00000002"
    lease = bridge.references("test").lease(owner, [])
    await lease.start()
    kept = await bridge.store_leased(_page("kept"), StorageTier.L3, owner=owner)
    await store.open().put(ids.timestamped(ids.TOMB_PREFIX, datetime.now(UTC)) + "_d", odd)
    listed = await bridge.checkpoint([_page("in memory")], "unreadable tomb", stored=[kept])
    assert [p.page_id for p in await ArtifactsBridge(store.open()).restore_checkpoint(listed)] == ["in memory", "kept"]
    await lease.release()
