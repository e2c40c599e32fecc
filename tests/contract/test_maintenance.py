"""Capability: core. fsck finds damage and orphans, gc removes orphans safely, migrate copies a store verified."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from tests.conftest import Store
from tests.contract.conftest import text_page
from tests.wrappers import Observed
from tierstore import AccessDeniedError, ArtifactsBridge, BackendUnavailableError, InMemoryBackend, StorageTier
from tierstore.backends.base import ListEntry, StorageBackend
from tierstore.maintenance import fsck, gc, migrate
from tierstore.scopes import RECORD_PREFIX, SCOPED_PREFIX, scope_prefix

LOOKALIKES = (
    "mem_notes.txt",
    "ckpt_plan.json",
    "tomb_stone.txt",
    "tomb_20260101T000000000000_0123abcd_x",
    "alloc_ation.csv",
    "scope_backup.bak",
    "v.mine",
    "intent_letter.doc",
    "cat_pictures.zip",
)
"""A user's own object names that merely start like a kind of key tierstore writes."""


async def _crashed_checkpoint(backend: StorageBackend) -> None:
    """A checkpoint whose manifest write fails after its pages were written, and whose cleanup fails too."""
    failing = Observed(backend, fail_put=lambda key: key.startswith("ckpt_"), error=AccessDeniedError)
    failing.delete_many = _refuse  # type: ignore[attr-defined]
    bridge = ArtifactsBridge(backend=failing)
    with pytest.raises(AccessDeniedError):
        await bridge.checkpoint([text_page(f"o{i}") for i in range(3)], name="crashed")


async def _refuse(keys: object) -> None:
    raise BackendUnavailableError("injected: cleanup failed too")


@pytest.mark.bridge_only
async def test_fsck_of_a_healthy_store(bridge: ArtifactsBridge) -> None:
    await bridge.store_page(text_page("live"))
    await bridge.checkpoint([text_page("a"), text_page("b")], name="c")
    report = await fsck(bridge)
    assert report.ok
    assert (report.pages, report.checkpoints, report.verified) == (3, 1, 3)
    assert report.orphans == []


@pytest.mark.bridge_only
async def test_fsck_reports_damage_missing_pages_and_orphans(bridge: ArtifactsBridge, backend: StorageBackend) -> None:
    checkpoint = await bridge.checkpoint([text_page("a"), text_page("b")], name="c")
    await _crashed_checkpoint(backend)
    manifest = await bridge.get_checkpoint_manifest(checkpoint)
    assert manifest is not None
    damaged, missing = (e.artifact_id for e in manifest.pages)
    stored = await backend.get(damaged)
    assert stored is not None
    await backend.put(damaged, stored[:-1])
    await backend.delete(missing)  # lost behind tierstore's back
    report = await fsck(bridge)
    assert {(p.key, p.kind) for p in report.problems} == {(damaged, "corrupt"), (missing, "missing")}
    assert len(report.orphans) == 3


async def test_gc_removes_only_old_orphans(bridge: ArtifactsBridge, backend: StorageBackend) -> None:
    live = await bridge.store_page(text_page("live"))
    checkpoint = await bridge.checkpoint([text_page("kept")], name="kept")
    await _crashed_checkpoint(backend)
    young = await gc(bridge, grace=timedelta(hours=1))
    assert young.orphans_deleted == []
    report = await gc(bridge, grace=timedelta(0))
    assert len(report.orphans_deleted) == 3
    assert (await fsck(bridge)).orphans == []
    assert await bridge.load_page(live) is not None
    assert len(await ArtifactsBridge(backend=backend).restore_checkpoint(checkpoint)) == 1


@pytest.mark.bridge_only
async def test_migrate_copies_everything_verified_and_resumes(store: Store) -> None:
    source = store.open()
    bridge = ArtifactsBridge(backend=source)
    artifact = await bridge.store_page(text_page("p", storage_tier=StorageTier.L2))
    checkpoint = await bridge.checkpoint([text_page("a"), text_page("b")], name="c")
    destination = InMemoryBackend()
    report = await migrate(source, destination)
    # 3 pages, the manifest, and the two block records (L2, L3) that keep the copy from issuing their ids again
    assert (report.copied, report.checkpoints_copied, report.problems) == (6, 1, [])
    copy = ArtifactsBridge(backend=destination)
    assert await copy.load_page(artifact) == await bridge.load_page(artifact)
    assert len(await copy.restore_checkpoint(checkpoint)) == 2
    again = await migrate(source, destination)
    assert (again.copied, again.skipped) == (0, 6)
    await source.aclose()


@pytest.mark.bridge_only
async def test_migrate_neither_copies_nor_reports_a_users_own_objects(store: Store) -> None:
    """tierstore touches only what it wrote: objects that merely start like its keys, at the root and in a scope, are
    left where they are, not copied and not reported as damaged pages."""
    source = store.open()
    bridge = ArtifactsBridge(backend=source, user_id="alice", session_id="s1")
    await bridge.store_page(text_page("p"))
    await bridge.checkpoint([text_page("a")], name="c")
    foreign = [prefix + name for prefix in ("", scope_prefix("alice", "s1")) for name in LOOKALIKES]
    for key in foreign:
        await source.put(key, b"the user's own")
    destination = InMemoryBackend()
    report = await migrate(source, destination)
    assert (report.problems, report.checkpoints_copied) == ([], 1)
    copied = [entry.key async for entry in destination.list("")]
    assert set(copied).isdisjoint(foreign)
    assert await ArtifactsBridge(backend=destination, user_id="alice", session_id="s1").list_pages()
    for key in foreign:
        assert await source.get(key) == b"the user's own"
    await source.aclose()


@pytest.mark.bridge_only
async def test_fsck_and_gc_take_a_users_own_objects_for_foreign_not_for_damage(
    bridge: ArtifactsBridge, backend: StorageBackend
) -> None:
    """An object that merely starts like a page, manifest or block record is foreign to fsck, no problem; gc neither
    deletes it nor stops collecting orphans for it (an unreadable manifest would protect every page)."""
    checkpoint = await bridge.checkpoint([text_page("a")], name="c")
    await _crashed_checkpoint(backend)
    for key in LOOKALIKES:
        await backend.put(key, b"the user's own")
    found = await fsck(bridge)
    assert (found.problems, len(found.orphans)) == ([], 3)
    assert "mem_notes.txt" in found.foreign
    assert await bridge.list_checkpoints() == [checkpoint]
    collected = await gc(bridge, grace=timedelta(0))
    assert (collected.unreadable_manifests, len(collected.orphans_deleted)) == ([], 3)
    for key in LOOKALIKES:
        assert await backend.get(key) == b"the user's own"
    assert len(await bridge.restore_checkpoint(checkpoint)) == 1


class _ListingsCounted(Observed):
    """Counts the listings made, by prefix."""

    def __init__(self, inner: StorageBackend) -> None:
        super().__init__(inner)
        self.listed: Counter[str] = Counter()

    def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        self.listed[prefix] += 1
        return self.inner.list(prefix)


@pytest.mark.bridge_only
async def test_fsck_of_the_root_lists_the_registry_and_every_scoped_key_once(backend: StorageBackend) -> None:
    await ArtifactsBridge(backend=backend, user_id="alice", session_id="s1").store_page(text_page("p"))
    counted = _ListingsCounted(backend)
    assert (await fsck(ArtifactsBridge(backend=counted))).ok
    assert (counted.listed[RECORD_PREFIX], counted.listed[SCOPED_PREFIX]) == (1, 1)
