"""What the model-based machine found (``FOUND.md``), replayed as plain tests: each fails if its bug comes back."""

from __future__ import annotations

from tests.conftest import Store
from tierstore import ArtifactsBridge, MemoryPage, Modality, StorageTier, maintenance
from tierstore.backends.memory import InMemoryBackend


def _page(page_id: str, content: str) -> MemoryPage:
    return MemoryPage(page_id=page_id, modality=Modality.TEXT, content=content)


async def test_setting_the_tier_an_archived_page_has_keeps_its_restored_copy() -> None:
    bridge = ArtifactsBridge(backend=InMemoryBackend(archive_tiers=[StorageTier.L4]))
    page = _page("p", "archived and brought back")
    key = await bridge.store_page(page, StorageTier.L4)
    assert (await bridge.restore_page(key)).state == "restored"
    await bridge.set_tier(key, StorageTier.L4)
    assert await bridge.load_page(key) == page


async def test_fsck_calls_no_artifact_of_a_checkpoint_with_a_damaged_manifest_an_orphan(store: Store) -> None:
    backend = store.open()
    bridge = ArtifactsBridge(backend=backend)
    checkpoint = await bridge.checkpoint([_page("a", "one"), _page("b", "two")], name="s")
    data = bytearray(bytes(await backend.get(checkpoint) or b""))
    data[len(data) // 2] ^= 0x10
    info = await backend.head(checkpoint)
    assert info is not None
    await backend.put(checkpoint, bytes(data), metadata=info.metadata)
    report = await maintenance.fsck(ArtifactsBridge(backend=store.open()))
    assert [p.key for p in report.problems] == [checkpoint]
    assert report.orphans == []
    await backend.aclose()
