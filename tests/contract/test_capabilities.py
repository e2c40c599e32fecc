"""Capabilities beyond the core: each backend declares what it offers, and refuses the rest clearly.

``tiers``: an object's tier can be changed in place. ``archive``: some tier is an archive class that must be
restored before reading. A backend without ``archive`` reads every tier directly and ``restore`` says so.
"""

from __future__ import annotations

from collections.abc import Awaitable

import pytest

from tests.contract.conftest import text_page
from tierstore import ArchivedPageError, ArtifactsBridge, InvalidInputError, ObjectNotFoundError, StorageTier
from tierstore.backends.base import StorageBackend
from tierstore.maintenance import ArchivedCheckpoint, fsck


async def test_set_tier_moves_an_artifact(bridge: ArtifactsBridge, backend: StorageBackend) -> None:
    assert "tiers" in backend.capabilities, "every built-in backend records a tier per object"
    page = text_page("a")
    artifact = await bridge.store_page(page)
    await bridge.set_tier(artifact, StorageTier.L2)
    info = await backend.head(artifact)
    assert info is not None
    assert info.tier == StorageTier.L2
    assert await bridge.load_page(artifact) == page
    with pytest.raises(ObjectNotFoundError):
        await bridge.set_tier("mem_L3_999", StorageTier.L4)
    with pytest.raises(InvalidInputError):
        await bridge.set_tier(artifact, StorageTier.L0)


async def test_every_refusal_of_an_archived_page_of_a_scope_names_its_artifact_id(backend: StorageBackend) -> None:
    """The id an ArchivedPageError names is the one ``restore_page`` takes, whichever call refused: never the
    scope's whole key (S3's refusal to change an archived object's class named it)."""
    bridge = ArtifactsBridge(backend=backend, user_id="alice", session_id="s1")
    moved, artifact = [await bridge.store_page(text_page(n, storage_tier=StorageTier.L4)) for n in ("moved", "cold")]
    calls: list[tuple[Awaitable[object], str]] = [
        (bridge.set_tier(moved, StorageTier.L3), moved),  # S3 refuses: it copies an object to move it
        (bridge.load_page(artifact), artifact),
        (bridge.load_page_id("cold"), artifact),
    ]
    refusals: list[tuple[str, ArchivedPageError]] = []
    for call, named in calls:
        try:
            await call
        except ArchivedPageError as exc:
            refusals.append((named, exc))
    for named, refused in refusals:
        assert refused.key == named
        assert f"restore_page({named!r})" in str(refused)
    assert len(refusals) >= (2 if "archive" in backend.capabilities else 0)
    if refusals:
        assert (await bridge.restore_page(artifact)).state in {"pending", "restored"}


async def test_archive_tier_needs_a_restore(bridge: ArtifactsBridge, backend: StorageBackend) -> None:
    page = text_page("cold", storage_tier=StorageTier.L4)
    artifact = await bridge.store_page(page)
    if "archive" not in backend.capabilities:
        assert await bridge.load_page(artifact) == page
        status = await bridge.restore_page(artifact)
        assert status.state == "not-archived"
        return
    with pytest.raises(ArchivedPageError, match="restore_page"):
        await bridge.load_page(artifact)
    metadata = await bridge.get_metadata(artifact)
    assert metadata is not None
    assert metadata.archived
    report = await fsck(bridge)
    assert report.ok, "an archived page is not a damaged one"
    assert report.archived == [artifact]
    status = await bridge.restore_page(artifact, days=1)
    assert status.state in {"pending", "restored"}
    if status.state == "restored":
        assert await bridge.load_page(artifact) == page


async def test_a_checkpoint_whose_page_was_archived_since_names_the_pages_to_restore(
    bridge: ArtifactsBridge, backend: StorageBackend
) -> None:
    """Issue 21 item 3: a user may archive a page a listed checkpoint names (chuk agents do); the checkpoint then
    cannot be restored until that page is, and ``restore_checkpoint`` and ``fsck`` say so, naming the pages and the
    command that restores them; it is no damage."""
    checkpoint = await bridge.checkpoint([text_page("warm"), text_page("cold")], "c1")
    manifest = await bridge.get_checkpoint_manifest(checkpoint)
    assert manifest is not None
    cold = next(e.artifact_id for e in manifest.pages if e.page_id == "cold")
    await bridge.set_tier(cold, StorageTier.L4)
    if "archive" not in backend.capabilities:
        assert [p.page_id for p in await bridge.restore_checkpoint(checkpoint)] == ["warm", "cold"]
        return
    command = f"tierstore checkpoints restore {checkpoint}"
    with pytest.raises(ArchivedPageError, match=rf"{checkpoint} .*page 'cold' \({cold}\).*{command}") as refused:
        await bridge.restore_checkpoint(checkpoint)
    assert (refused.value.key, refused.value.checkpoint, refused.value.archived) == (cold, checkpoint, {cold: "cold"})
    report = await fsck(bridge)
    assert report.ok, "a page archived by its user is no damage"
    assert report.archived_checkpoints == [ArchivedCheckpoint(checkpoint, [cold], command)]
    assert [p.page_id for p in await bridge.restore_checkpoint(checkpoint, only=["warm"])] == ["warm"]
    if (await bridge.restore_page(cold, days=1)).state == "restored":
        assert [p.page_id for p in await bridge.restore_checkpoint(checkpoint)] == ["warm", "cold"]
        assert (await fsck(bridge)).archived_checkpoints == []
