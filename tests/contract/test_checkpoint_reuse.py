"""Capability: core. Checkpoint reuse re-checks every artifact it reuses, whatever happened to it since.

The class attacked: an artifact named by an earlier checkpoint, with any history (deleted, its tomb pruned by gc,
removed by hand, a bit flipped anywhere, truncated, swapped with another artifact, moved to L4, restored, moved back)
x every way a checkpoint finds artifacts to reuse (the bridge that made them, a new process reading the newest
manifests, a bridge that restored them). The new checkpoint must restore exactly; what was damaged is uploaded anew
and what is intact is still reused. Each history runs twice: on artifacts never verified since they were written
(the proof reads them whole) and on artifacts whose version token a checkpoint recorded (the proof is one head).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Store
from tests.contract.conftest import text_page
from tests.soak import scaled
from tests.wrappers import Observed
from tierstore import ArtifactsBridge, IntegrityError, MemoryPage, StorageTier, TierstoreError
from tierstore.backends.base import Buffer, StorageBackend
from tierstore.backends.disk_format import SETTLED_NS
from tierstore.maintenance import gc

SETTLE = SETTLED_NS / 1e9 + 0.1
"""How long a disk store's file must stand before its change time serves as a version token."""


@dataclass
class Scene:
    store: Store
    backend: StorageBackend
    bridge: ArtifactsBridge
    spare: str
    """An intact artifact of another page, for swaps."""


History = Callable[[Scene, str], Awaitable[None]]


async def _rewrite(scene: Scene, key: str, change: Callable[[bytes], bytes], *, like: str | None = None) -> None:
    """Overwrite ``key`` with changed bytes, keeping the object metadata (of ``like`` if given) and the tier."""
    info = await scene.backend.head(key)
    source = await scene.backend.head(like or key)
    data = await scene.backend.get(key)
    assert info is not None
    assert source is not None
    assert data is not None
    assert info.tier is not None
    tags = {"tier": info.tier.value}
    await scene.backend.put(key, change(bytes(data)), metadata=dict(source.metadata), tags=tags, tier=info.tier)


def _flip(position: float) -> Callable[[bytes], bytes]:
    def change(data: bytes) -> bytes:
        at = min(int(len(data) * position), len(data) - 1)
        return data[:at] + bytes([data[at] ^ 0x04]) + data[at + 1 :]

    return change


async def _delete_page(scene: Scene, key: str) -> None:
    assert await scene.bridge.delete_page(key)


async def _delete_page_then_prune_its_tomb(scene: Scene, key: str) -> None:
    assert await scene.bridge.delete_page(key)
    # What gc does once the retention has passed in the store's time (retention 0 here: no store clock to move).
    await gc(scene.bridge, tomb_retention=timedelta(0))
    tombs = [entry.key async for entry in scene.backend.list("tomb_")]
    assert tombs == [], "the tomb is pruned: nothing but the missing object tells of the deletion"


async def _remove_by_hand(scene: Scene, key: str) -> None:
    assert await scene.backend.delete(key)


async def _swap_bytes(scene: Scene, key: str) -> None:
    spare = await scene.backend.get(scene.spare)
    assert spare is not None
    await _rewrite(scene, key, lambda _data: bytes(spare))


async def _swap_whole(scene: Scene, key: str) -> None:
    spare = await scene.backend.get(scene.spare)
    assert spare is not None
    await _rewrite(scene, key, lambda _data: bytes(spare), like=scene.spare)


async def _archive(scene: Scene, key: str) -> None:
    await scene.bridge.set_tier(key, StorageTier.L4)


async def _archive_and_restore(scene: Scene, key: str) -> None:
    await scene.bridge.set_tier(key, StorageTier.L4)
    await scene.bridge.restore_page(key)


async def _archive_restore_and_move_back(scene: Scene, key: str) -> None:
    await scene.bridge.set_tier(key, StorageTier.L4)
    await scene.bridge.restore_page(key)
    try:
        await scene.bridge.set_tier(key, StorageTier.L3)
    except TierstoreError:
        return  # left in L4 where the store will not move it back: the artifact must not be reused either way


def _object_file(scene: Scene, key: str) -> Path:
    return Path(scene.store.spec["root"]) / "objects" / key


def _in_place(change: Callable[[bytearray], None]) -> History:
    """Damage of the file itself (same inode): what bit rot or a stray writer does to a disk store."""

    async def damage(scene: Scene, key: str) -> None:
        path = _object_file(scene, key)
        data = bytearray(path.read_bytes())
        change(data)
        with path.open("r+b") as f:
            f.write(data)
            f.truncate(len(data))

    return damage


def _flip_at(index: int) -> Callable[[bytearray], None]:
    def change(data: bytearray) -> None:
        data[index] ^= 0x20

    return change


HISTORIES: dict[str, History] = {
    "deleted, tomb pruned a week later": _delete_page_then_prune_its_tomb,  # first: gc prunes every tomb
    "deleted": _delete_page,
    "removed by hand": _remove_by_hand,
    "first byte flipped": lambda scene, key: _rewrite(scene, key, _flip(0.0)),
    "middle byte flipped": lambda scene, key: _rewrite(scene, key, _flip(0.5)),
    "last byte flipped": lambda scene, key: _rewrite(scene, key, _flip(1.0)),
    "truncated": lambda scene, key: _rewrite(scene, key, lambda data: data[:-1]),
    "extended": lambda scene, key: _rewrite(scene, key, lambda data: data + b"\x00"),
    "swapped with another artifact's bytes": _swap_bytes,
    "swapped with another artifact whole": _swap_whole,
}
RETIERED: dict[str, History] = {
    "moved to L4": _archive,
    "moved to L4 and restored": _archive_and_restore,
}
"""Not to be reused wherever the store then reports the artifact outside L3 or archived (fake-gcs-server keeps the
storage class; a rehydrated Azure blob is back in an online tier)."""
DISK_HISTORIES: dict[str, History] = {
    "file: body bit flipped in place": _in_place(_flip_at(-1)),
    "file: header bit flipped in place": _in_place(_flip_at(20)),
    "file: truncated in place": _in_place(lambda data: data.__delitem__(slice(-3, None))),
    "file: replaced by an empty file": _in_place(lambda data: data.clear()),
}
INTACT: dict[str, History] = {
    "untouched": lambda scene, key: asyncio.sleep(0),
    "moved to L4, restored, moved back to L3": _archive_restore_and_move_back,
}
"""Histories after which the artifact may still be reused (the second only if it verifies)."""


class Reuser:
    """One way of coming to a checkpoint that reuses artifacts."""

    def __init__(self, path: str, store: Store) -> None:
        self.path = path
        self.store = store
        self.same = ArtifactsBridge(backend=store.open())
        self.restorer: ArtifactsBridge | None = None

    async def before_damage(self, latest: str) -> None:
        if self.path == "restored":
            self.restorer = ArtifactsBridge(backend=self.store.open())
            await self.restorer.restore_checkpoint(latest)

    async def checkpoint(self, pages: list[MemoryPage], name: str) -> str:
        if self.path == "same bridge":
            return await self.same.checkpoint(pages, name)
        if self.path == "restored" and self.restorer is not None:
            return await self.restorer.checkpoint(pages, name)
        async with ArtifactsBridge(backend=self.store.open()) as fresh:
            return await fresh.checkpoint(pages, name)


async def _moved(backend: StorageBackend, key: str) -> bool:
    info = await backend.head(key)
    assert info is not None
    return info.tier != StorageTier.L3 or info.archived


async def _artifacts(backend: StorageBackend, checkpoint: str) -> list[str]:
    manifest = await ArtifactsBridge(backend=backend).get_checkpoint_manifest(checkpoint)
    assert manifest is not None
    return [entry.artifact_id for entry in manifest.pages]


async def test_a_checkpoint_reuses_only_artifacts_it_proves(store: Store) -> None:
    """A new process: it reads every manifest and version token from the store, on every rig."""
    await _reuse_after_every_history(store, "new process")


@pytest.mark.bridge_only  # what differs from a new process is the bridge's memory, not the backend
@pytest.mark.parametrize("path", ["same bridge", "restored"])
async def test_a_bridge_reuses_only_artifacts_it_proves_of_checkpoints_it_made_or_restored(
    store: Store, path: str
) -> None:
    await _reuse_after_every_history(store, path)


async def _reuse_after_every_history(store: Store, path: str) -> None:
    histories = {**HISTORIES, **(DISK_HISTORIES if store.rig == "filesystem" else {})}
    everything = {**histories, **RETIERED, **INTACT}
    names = list(everything)
    pages = [text_page(f"page_{i:03d}", f"content {i}: {name}") for i, name in enumerate(names)]
    pages += [text_page(f"extra_{i:03d}") for i in range(scaled(2))]
    backend = store.open()
    reuser = Reuser(path, store)
    latest = await reuser.checkpoint(pages, "base")

    for round_ in ("read whole", "version token"):
        if round_ == "version token":
            if store.rig == "filesystem":
                await asyncio.sleep(SETTLE)  # a file's change time settles before it can serve as a token
            latest = await reuser.checkpoint(pages, "records the tokens")
            manifest = await ArtifactsBridge(backend=backend).get_checkpoint_manifest(latest)
            assert manifest is not None
            assert all(entry.version for entry in manifest.pages)
        before = await _artifacts(backend, latest)
        await reuser.before_damage(latest)
        scene = Scene(store, backend, ArtifactsBridge(backend=backend), spare=before[-1])
        for i, name in enumerate(names):
            await everything[name](scene, before[i])
        damaging = list(histories) + [name for name in RETIERED if await _moved(backend, before[names.index(name)])]
        if store.rig in ("memory", "filesystem"):
            assert set(RETIERED) <= set(damaging)

        checkpoint = await reuser.checkpoint(pages, f"after damage, {round_}")

        assert checkpoint in await ArtifactsBridge(backend=store.open()).list_checkpoints()
        assert await ArtifactsBridge(backend=store.open()).restore_checkpoint(checkpoint) == pages
        after = await _artifacts(backend, checkpoint)
        reused = [name for i, name in enumerate(names) if after[i] == before[i]]
        assert [name for name in reused if name in damaging] == [], f"{round_}: reused damaged artifacts"
        assert "untouched" in reused, f"{round_}: an intact artifact was uploaded again"
        assert after[len(names) :] == before[len(names) :], f"{round_}: intact artifacts were uploaded again"
        latest = checkpoint


@pytest.mark.bridge_only
async def test_the_proof_costs_heads_not_uploads(store: Store) -> None:
    """The incremental benefit holds: a third checkpoint of unchanged pages uploads nothing but its records."""
    observed = Observed(store.open())
    counted = _Counted(observed)
    bridge = ArtifactsBridge(backend=counted)
    pages = [text_page(f"msg_{i:03d}") for i in range(scaled(20))]
    await bridge.checkpoint(pages, "first")
    if store.rig == "filesystem":
        await asyncio.sleep(SETTLE)
    pages[0].content = "changed"
    await bridge.checkpoint(pages, "second: the reused are read once, to record their tokens")
    assert observed.puts["mem"] == len(pages) + 1
    counted.reset()
    pages[1].content = "changed too"
    await bridge.checkpoint(pages, "third: one head per reused artifact")
    assert observed.puts["mem"] == len(pages) + 2
    assert counted.calls["head_mem"] == len(pages) - 1  # every page but the one changed now
    assert counted.calls["get_mem"] == 1  # the page uploaded by the second checkpoint: verified once, now


class _Counted:
    """Counts heads and gets of artifacts (``mem_`` keys) on the way through."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def reset(self) -> None:
        self.calls = {}

    def _count(self, call: str, key: str) -> None:
        if key.startswith("mem_"):
            self.calls[f"{call}_mem"] = self.calls.get(f"{call}_mem", 0) + 1

    async def head(self, key: str) -> Any:
        self._count("head", key)
        return await self.inner.head(key)

    async def get(self, key: str) -> Buffer | None:
        self._count("get", key)
        result: Buffer | None = await self.inner.get(key)
        return result


@pytest.mark.bridge_only
@pytest.mark.parametrize("deletion", ["delete_page", "delete_checkpoint", "delete_checkpoint, then gc"])
async def test_a_deletion_after_the_proof_never_breaks_the_checkpoint(store: Store, deletion: str) -> None:
    """The deletion lands between the proofs and the manifest write (at the lease's renewal, W1): the tomb
    protocol covers what the proof cannot. ``delete_page`` deletes at once (W2 finds its tomb, the page is uploaded
    again); ``delete_checkpoint`` of the checkpoint whose artifacts are reused sweeps them (D2 finds the lease)."""
    backend = store.open()
    pages = [text_page(f"msg_{i:03d}") for i in range(scaled(6))]
    first = await ArtifactsBridge(backend=backend).checkpoint(pages, "first")
    victim = (await _artifacts(backend, first))[2]
    deleter = ArtifactsBridge(backend=store.open())

    async def delete() -> None:
        if deletion == "delete_page":
            assert await deleter.delete_page(victim)
            return
        assert await deleter.delete_checkpoint(first)
        if deletion.endswith("gc"):
            await gc(deleter, grace=timedelta(0), tomb_retention=timedelta(0))

    class DeleteAtRenewal(Observed):
        renewals = 0

        async def put(
            self,
            key: str,
            data: Buffer,
            *,
            metadata: Mapping[str, str] | None = None,
            tags: Mapping[str, str] | None = None,
            tier: StorageTier = StorageTier.L3,
            if_absent: bool = False,
        ) -> None:
            if key.startswith("intent_") and not if_absent and not self.renewals:  # W1, after the proofs
                self.renewals += 1
                await delete()
            await super().put(key, data, metadata=metadata, tags=tags, tier=tier, if_absent=if_absent)

    second = await ArtifactsBridge(backend=DeleteAtRenewal(store.open())).checkpoint(pages, "second")
    if deletion == "delete_page":
        assert victim not in await _artifacts(backend, second)
    assert await ArtifactsBridge(backend=store.open()).restore_checkpoint(second) == pages
    listed = await ArtifactsBridge(backend=store.open()).list_checkpoints()
    assert listed == ([first, second] if deletion == "delete_page" else [second])


async def test_a_version_token_stays_while_nothing_writes_and_changes_with_every_write(store: Store) -> None:
    """The backend contract reuse relies on (``ObjectInfo.version``): equal tokens, same bytes."""
    backend = store.open()
    await backend.put("mem_L3_1", b"first", metadata={"checksum": "a"})
    if store.rig == "filesystem":
        await asyncio.sleep(SETTLE)
    first = await backend.head("mem_L3_1")
    assert first is not None
    assert first.version is not None
    await backend.get("mem_L3_1")
    assert (await backend.head("mem_L3_1")) == first
    for data in (b"firsT", b"first and more"):  # (the same bytes again may keep the token: S3's ETag is their MD5)
        await backend.put("mem_L3_1", data, metadata={"checksum": "a"})
        again = await backend.head("mem_L3_1")
        assert again is not None
        assert again.version != first.version, data


async def test_restore_never_returns_another_version_of_the_named_page(store: Store) -> None:
    """An artifact replaced whole (bytes and metadata) by an older artifact of the same page (same page id, other
    content): the bridge that restored it before, and a new one, refuse it rather than return the older page."""
    backend = store.open()
    bridge = ArtifactsBridge(backend=backend)
    pages = [text_page("msg_000", "version 1"), text_page("msg_001")]
    older = await bridge.checkpoint(pages, "older")
    pages[0].content = "version 2"
    newer = await bridge.checkpoint(pages, "newer")
    assert await bridge.restore_checkpoint(newer) == pages
    old_artifact, new_artifact = (await _artifacts(backend, older))[0], (await _artifacts(backend, newer))[0]
    assert old_artifact != new_artifact
    old_bytes = await backend.get(old_artifact)
    assert old_bytes is not None
    scene = Scene(store, backend, bridge, spare=old_artifact)
    await _rewrite(scene, new_artifact, lambda _data: bytes(old_bytes), like=old_artifact)
    for restorer in (bridge, ArtifactsBridge(backend=store.open())):
        with pytest.raises(IntegrityError):
            await restorer.restore_checkpoint(newer)
    assert [page.content for page in await bridge.restore_checkpoint(older)] == ["version 1", "content of msg_001"]


@pytest.mark.bridge_only
async def test_big_artifacts_are_proved_a_few_at_a_time(store: Store) -> None:
    """A whole read holds the artifact in memory: the proofs of big pages never read many side by side."""
    backend = store.open()
    pages = [text_page(f"big_{i}", f"{i}" * (3 << 19)) for i in range(scaled(6))]
    await ArtifactsBridge(backend=backend).checkpoint(pages, "first")
    reading = at_most = 0

    class Watched(Observed):
        async def get(self, key: str) -> Buffer | None:
            nonlocal reading, at_most
            reading += 1
            at_most = max(at_most, reading)
            try:
                await asyncio.sleep(0.01)
                result: Buffer | None = await self.inner.get(key)
                return result
            finally:
                reading -= 1

    watched = Watched(store.open())
    checkpoint = await ArtifactsBridge(backend=watched).checkpoint(pages, "second")
    assert watched.puts["mem"] == 0
    assert 1 <= at_most <= 2
    assert await ArtifactsBridge(backend=backend).restore_checkpoint(checkpoint) == pages
