"""What the model-based machine found (``FOUND.md``), replayed as plain tests: each fails if its bug comes back."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Store
from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality, StorageTier, maintenance
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


async def test_migrate_reports_a_manifest_the_source_refuses_to_read_and_copies_the_rest(
    store: Store, tmp_path: Path
) -> None:
    backend = store.open()
    bridge = ArtifactsBridge(backend=backend)
    healthy = await bridge.checkpoint([_page("a", "one")], name="healthy")
    damaged = await bridge.checkpoint([_page("b", "two")], name="damaged")
    info = await backend.head(damaged)
    data = await backend.get(damaged)
    assert info is not None
    assert data is not None
    if store.rig == "filesystem":  # the disk store refuses to read an object file longer than what was written
        with (Path(store.spec["root"]) / "objects" / damaged).open("ab") as f:
            f.write(b"appended")
    else:
        await backend.put(damaged, bytes(data) + b"appended", metadata=info.metadata)
    destination = FileSystemBackend(tmp_path / "copy")
    report = await maintenance.migrate(backend, destination)
    assert [p.key for p in report.problems] == [damaged]
    copy = ArtifactsBridge(backend=destination)
    assert await copy.list_checkpoints() == [healthy]
    assert [p.page_id for p in await copy.restore_checkpoint(healthy)] == ["a"]
    await backend.aclose()


async def test_fsck_calls_nothing_an_orphan_while_a_manifest_cannot_be_read(store: Store) -> None:
    """The damaged manifest may name an artifact written for another checkpoint (reused), so no artifact of any
    checkpoint is an orphan while it cannot be read."""
    backend = store.open()
    bridge = ArtifactsBridge(backend=backend)
    pages = [_page("a", "one"), _page("b", "two")]
    first = await bridge.checkpoint(pages, name="first")
    second = await bridge.checkpoint(pages, name="second")  # reuses the artifacts written for the first
    await bridge.delete_checkpoint(first)
    data = bytearray(bytes(await backend.get(second) or b""))
    data[len(data) // 2] ^= 0x10
    info = await backend.head(second)
    assert info is not None
    await backend.put(second, bytes(data), metadata=info.metadata)
    report = await maintenance.fsck(ArtifactsBridge(backend=store.open()))
    assert [p.key for p in report.problems] == [second]
    assert report.orphans == []
    await backend.aclose()
