"""Capability: core (issue 28). Users and sessions kept apart, on every rig and both data paths: a bridge bound to a
session sees its session's pages and its user's shared pages, and every other scope's pages and checkpoints (another
user's, another session of its own user, the unscoped root's) exactly as absent ones; ids are checked before any I/O;
an object copied from one scope's prefix into another's fails verification; the root's maintenance leaves scoped keys
alone.

One store holds two users of two sessions each, each user's shared scope and the legacy root; every call that takes an
artifact or checkpoint id is tried with the ids of every scope."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from tests.contract.conftest import text_page
from tests.soak import scaled
from tierstore import (
    ArtifactsBridge,
    IntegrityError,
    InvalidInputError,
    ObjectNotFoundError,
    StorageTier,
    Store,
)
from tierstore.backends.base import StorageBackend
from tierstore.backends.memory import InMemoryBackend
from tierstore.maintenance import fsck, gc, migrate
from tierstore.models import CheckpointEntry
from tierstore.scopes import scope_prefix

USERS = ("alice", "bob")
SESSIONS = ("s1", "s2")
HOSTILE_IDS: list[Any] = [
    "",
    "a/b",
    "a\\b",
    ".",
    "..",
    "tab\there",
    "nul\x00",
    "line\u2028sep",
    "e\u0301",  # decomposed: not NFC
    "\ud800",
    "x" * 129,
    "\u00e9" * 65,  # 130 bytes of UTF-8
    7,
    b"alice",
]


@dataclass
class Scene:
    """Who stored what: each viewer's bridge, and per scope (its prefix) the artifacts and checkpoints in it."""

    bridges: dict[str, ArtifactsBridge]
    artifacts: dict[str, list[str]] = field(default_factory=dict)
    """Per scope, the pages stored there: every call is tried with each of them from every scope."""
    written: dict[str, list[str]] = field(default_factory=dict)
    """Per scope, the artifacts its checkpoint wrote (listed with its pages; the same kind of id as theirs)."""
    checkpoints: dict[str, str] = field(default_factory=dict)
    entries: dict[str, CheckpointEntry] = field(default_factory=dict)


def viewer_name(user: str | None, session: str | None) -> str:
    return f"{user}/{session}"


def scopes_seen(user: str | None, session: str | None) -> set[str]:
    """The prefixes a bridge bound so reads: its session's and its user's; the root for an unbound one."""
    if user is None:
        return {scope_prefix(user, session)}  # the root, or a session of no user (which has no shared scope)
    return {scope_prefix(user, session), scope_prefix(user)}


async def build(backend: StorageBackend) -> Scene:
    viewers = [(None, None)] + [(u, s) for u in USERS for s in SESSIONS]
    scene = Scene({viewer_name(u, s): ArtifactsBridge(backend, user_id=u, session_id=s) for u, s in viewers})
    pages = scaled(1)

    async def fill(user: str | None, session: str | None) -> None:
        bridge = scene.bridges[viewer_name(user, session)]
        home = scope_prefix(user, session)
        stored = [await bridge.store_page(text_page(f"{user}-{session}-{i}")) for i in range(pages)]
        scene.artifacts.setdefault(home, []).extend(stored)
        if session == SESSIONS[0]:  # the first session of each user also shares a page with the user's sessions
            shared = await bridge.store_page(text_page(f"{user}-shared"), scope="user")
            scene.artifacts.setdefault(scope_prefix(user), []).append(shared)
        checkpoint = await bridge.checkpoint([text_page(f"{user}-{session}-ckpt")], name="turn")
        manifest = await bridge.get_checkpoint_manifest(checkpoint)
        assert manifest is not None
        scene.checkpoints[home] = checkpoint
        scene.entries[home] = manifest.pages[0]
        scene.written[home] = [manifest.pages[0].artifact_id]

    await asyncio.gather(*(fill(u, s) for u, s in viewers))
    return scene


async def test_every_scope_sees_only_its_session_and_its_users_shared_pages(backend: StorageBackend) -> None:
    scene = await build(backend)
    every_artifact = {a: prefix for prefix, listed in scene.artifacts.items() for a in listed}
    everything = [a for listed in (*scene.artifacts.values(), *scene.written.values()) for a in listed]
    assert len(set(everything)) == len(everything)  # one store-wide id space

    order = list(scene.bridges)  # each viewer names the next one's artifact in a checkpoint (one request each):
    # root -> a session, a session -> its sibling, -> another user's session, and the last session -> the root

    async def attack(user: str | None, session: str | None) -> None:
        bridge = scene.bridges[viewer_name(user, session)]
        following = order[(order.index(viewer_name(user, session)) + 1) % len(order)]
        victim = "" if following == "None/None" else scope_prefix(*following.split("/"))
        seen = scopes_seen(user, session)
        mine = {a for a, prefix in every_artifact.items() if prefix in seen}
        mine |= {a for prefix in seen for a in scene.written.get(prefix, [])}
        assert set(await bridge.list_pages()) == mine
        assert {e.artifact_id for e in await bridge.list_page_entries()} == mine

        async def artifact_call(artifact: str, prefix: str) -> None:
            if prefix in seen:
                page = await bridge.load_page(artifact)
                described = await bridge.get_metadata(artifact)
                assert page is not None
                assert described is not None
                assert described.page_id == page.page_id
                return
            assert await bridge.load_page(artifact) is None, (artifact, prefix)
            assert await bridge.get_metadata(artifact) is None
            assert not await bridge.delete_page(artifact)
            with pytest.raises(ObjectNotFoundError):
                await bridge.set_tier(artifact, StorageTier.L2)
            with pytest.raises(ObjectNotFoundError):
                await bridge.restore_page(artifact)

        async def checkpoint_call(prefix: str, checkpoint: str) -> None:
            assert await bridge.get_checkpoint_manifest(checkpoint) is None
            with pytest.raises(ObjectNotFoundError):
                await bridge.restore_checkpoint(checkpoint)
            assert not await bridge.delete_checkpoint(checkpoint)

        async def steal(prefix: str) -> None:
            with pytest.raises(IntegrityError):  # another scope's artifact cannot be named into this one's checkpoint
                await bridge.checkpoint([], name="stolen", stored=[scene.entries[prefix]])

        home = scope_prefix(user, session)
        assert await bridge.list_checkpoints() == [scene.checkpoints[home]]
        await asyncio.gather(
            *(artifact_call(artifact, prefix) for artifact, prefix in every_artifact.items()),
            *(checkpoint_call(prefix, c) for prefix, c in scene.checkpoints.items() if prefix != home),
            steal(victim),
        )
        assert await bridge.list_checkpoints() == [scene.checkpoints[home]]

    await asyncio.gather(*(attack(None, None) if v == "None/None" else attack(*v.split("/")) for v in scene.bridges))
    # nothing was deleted, moved or written by any of that: every scope still restores what it stored
    for name, bridge in scene.bridges.items():
        user, session = (None, None) if name == "None/None" else name.split("/")
        restored = await bridge.restore_checkpoint(scene.checkpoints[scope_prefix(user, session)])
        assert [p.page_id for p in restored] == [f"{user}-{session}-ckpt"]
    legacy = {*scene.artifacts[""], *scene.written[""]}
    assert set(await ArtifactsBridge(backend).list_pages()) == legacy  # a new root bridge


async def test_a_users_shared_page_is_every_session_of_that_user_s(backend: StorageBackend) -> None:
    first = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    second = ArtifactsBridge(backend, user_id="alice", session_id="s2")
    alone = ArtifactsBridge(backend, user_id="alice")
    shared = await first.store_page(text_page("shared"), scope="user")
    own = await alone.store_page(text_page("alice's"))  # a bridge bound to a user alone stores in the user's scope
    for bridge in (first, second, alone):
        assert set(await bridge.list_pages()) == {shared, own}
    await second.set_tier(shared, StorageTier.L2)
    described = await first.get_metadata(shared)
    assert described is not None
    assert described.tier == StorageTier.L2.value
    assert await second.delete_page(shared)
    assert await first.load_page(shared) is None
    assert await alone.list_pages() == [own]


async def test_an_object_copied_into_another_scope_fails_verification(backend: StorageBackend) -> None:
    root = ArtifactsBridge(backend)
    alice = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    bob = ArtifactsBridge(backend, user_id="bob", session_id="s1")
    alices = await alice.store_page(text_page("alice's secret"))
    legacy = await root.store_page(text_page("legacy"))
    moves = [
        (scope_prefix("alice", "s1"), alices, scope_prefix("bob", "s1"), bob),
        (scope_prefix("alice", "s1"), alices, scope_prefix("bob"), bob),
        (scope_prefix("alice", "s1"), alices, "", root),
        ("", legacy, scope_prefix("alice", "s1"), alice),
    ]
    for source, artifact, target, reader in moves:
        data = await backend.get(source + artifact)
        info = await backend.head(source + artifact)
        assert data is not None
        assert info is not None
        await backend.put(target + artifact, bytes(data), metadata=dict(info.metadata))
        with pytest.raises(IntegrityError):
            await reader.load_page(artifact)
        with pytest.raises(IntegrityError):
            await reader.get_metadata(artifact)
        await backend.delete(target + artifact)
    # a manifest copied across scopes names its whole key too; chuk's plain JSON names none, so no scope reads one
    checkpoint = await alice.checkpoint([text_page("alice's checkpoint")], name="alice's")
    manifest = await backend.get(scope_prefix("alice", "s1") + checkpoint)
    assert manifest is not None
    await backend.put(scope_prefix("bob", "s1") + checkpoint, bytes(manifest))
    with pytest.raises(IntegrityError):
        await bob.get_checkpoint_manifest(checkpoint)
    with pytest.raises(IntegrityError):
        await bob.restore_checkpoint(checkpoint)
    plain = "mem_L3_999999"
    await backend.put(scope_prefix("alice", "s1") + plain, text_page("chuk's JSON").model_dump_json().encode())
    with pytest.raises(IntegrityError):
        await alice.load_page(plain)
    with pytest.raises(IntegrityError):
        await alice.get_metadata(plain)


async def test_the_roots_maintenance_leaves_scoped_keys_alone(backend: StorageBackend) -> None:
    root = ArtifactsBridge(backend)
    alice = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    legacy = await root.store_page(text_page("legacy"))
    scoped = await alice.store_page(text_page("scoped"))
    shared = await alice.store_page(text_page("shared"), scope="user")
    checkpoint = await alice.checkpoint([text_page("in a checkpoint")], name="c")
    report = await fsck(root)
    assert (report.problems, report.orphans, report.foreign, report.pages) == ([], [], [], 1)
    collected = await gc(root, grace=timedelta(0), tomb_retention=timedelta(0))
    assert collected.orphans_deleted == []
    assert await root.list_pages() == [legacy]
    assert set(await alice.list_pages()) >= {scoped, shared}
    assert [p.page_id for p in await alice.restore_checkpoint(checkpoint)] == ["in a checkpoint"]
    assert (await fsck(alice)).problems == []  # a bound bridge's fsck checks its own scope, frames bound to it


@pytest.mark.bridge_only
async def test_hostile_user_and_session_ids_are_refused_before_any_io(backend: StorageBackend) -> None:
    for hostile in HOSTILE_IDS:
        for binding in ({"user_id": hostile}, {"session_id": hostile}, {"user_id": "alice", "session_id": hostile}):
            with pytest.raises(InvalidInputError):
                ArtifactsBridge(backend, **binding)
    async for entry in backend.list():
        pytest.fail(f"a refused id wrote {entry.key}")
    sessionless = ArtifactsBridge(backend, session_id="s1")
    with pytest.raises(InvalidInputError, match="bound to no user"):
        await sessionless.store_page(text_page("p"), scope="user")
    with pytest.raises(InvalidInputError, match="'session' or 'user'"):
        await sessionless.store_page(text_page("p"), scope="everyone")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="bound to no session"):
        await ArtifactsBridge(backend, user_id="alice").store_page(text_page("p"), scope="session")
    with pytest.raises(AttributeError):
        sessionless.session_id = "s2"  # type: ignore[misc]


async def test_the_registry_lists_users_and_sessions(backend: StorageBackend) -> None:
    store = Store(backend)
    first = store.bridge(user_id="alice", session_id="s1")
    stored = [await first.store_page(text_page("a")), await first.store_page(text_page("shared"), scope="user")]
    await store.bridge(user_id="alice", session_id="s2").checkpoint([], name="nothing yet")
    await store.bridge(user_id="bob", session_id="s1").store_page(text_page("b"))
    await store.legacy().store_page(text_page("legacy"))
    sizes = sum(e.size_bytes for e in await first.list_page_entries())
    assert sorted(await first.list_pages()) == sorted(stored)
    users = [(u.user_id, u.sessions, u.pages, u.bytes) for u in await store.users()]
    assert users == [("alice", 2, 2, sizes), ("bob", 1, 1, users[1][3])]
    assert [(s.session_id, s.pages) for s in await store.sessions("alice")] == [("s1", 1), ("s2", 0)]


async def test_migrate_carries_every_scope_and_the_registry(backend: StorageBackend) -> None:
    source = Store(backend)
    alice = source.bridge(user_id="alice", session_id="s1")
    kept = await alice.store_page(text_page("kept"))
    shared = await alice.store_page(text_page("shared"), scope="user")
    checkpoint = await alice.checkpoint([text_page("in a checkpoint")], name="c")
    assert await alice.delete_page(await alice.store_page(text_page("deleted")))  # a tomb in the scope
    legacy = await source.legacy().store_page(text_page("legacy"))
    destination = InMemoryBackend()
    report = await migrate(backend, destination)
    assert (report.problems, report.incomplete_checkpoints, report.checkpoints_copied) == ([], [], 1)
    copy = Store(destination)
    assert [(u.user_id, u.sessions, u.pages) for u in await copy.users()] == [("alice", 1, 3)]
    moved = copy.bridge(user_id="alice", session_id="s1")
    assert await moved.list_pages() == await alice.list_pages()
    assert {kept, shared} <= set(await moved.list_pages())
    assert [p.page_id for p in await moved.restore_checkpoint(checkpoint)] == ["in a checkpoint"]
    assert await copy.legacy().list_pages() == [legacy]
    again = await migrate(backend, destination)  # resumable: everything verifies as the source's
    assert (again.copied, again.problems, again.checkpoints_skipped) == (0, [], 1)
