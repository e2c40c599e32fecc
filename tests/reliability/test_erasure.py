"""Erasure of a user or a session (:mod:`tierstore.protocol.erasure`) on every rig: it leaves nothing under the
scope's prefix and no registry record of it, touches nothing of any other scope, the unscoped root or the id blocks,
``fsck`` of the erased scope finds nothing, and an erasure stopped at any storage call (cancelled, as a crash would
leave it) is finished by the next call. While an erasing tomb is there, a checkpoint of the scope fails with
ScopeErasingError, listing and leaving nothing, and ``gc`` never prunes the tomb.

One store holds two users of two sessions each, each user's shared scope (with a checkpoint of a user-bound bridge),
the legacy root, and each scope's registry records (``scope_{U}``, ``scope_{U}.{S}``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Store as Rig
from tests.contract.conftest import text_page
from tests.reliability.figures import record
from tests.soak import scaled
from tests.wrappers import Journal, Paused
from tierstore import ArtifactsBridge, FileSystemBackend, ScopeErasingError
from tierstore.backends.base import StorageBackend
from tierstore.cli.app import main
from tierstore.clock import ManualClock
from tierstore.errors import InvalidInputError
from tierstore.maintenance import fsck, gc
from tierstore.protocol.erasure import ErasureOptions, erase_scope, erase_session, erase_user, erasing
from tierstore.protocol.records import is_erasing_tomb
from tierstore.scope_records import session_key, user_key
from tierstore.scopes import scope_prefix
from tierstore.store import Store

USERS = ("alice", "bob")
SESSIONS = ("s1", "s2")


async def no_wait(seconds: float) -> None:
    """The erasure's sleep hook where nothing needs to expire: waits for nothing."""
    await asyncio.sleep(0)


def registry_keys(user: str, session: str | None = None) -> str:
    return user_key(user) if session is None else session_key(user, session)


@dataclass
class Scene:
    """What one store holds before an erasure: every scope's pages and checkpoints, the root's."""

    checkpoints: dict[tuple[str | None, str | None], str]
    pages: dict[tuple[str | None, str | None], list[str]]


async def build(backend: StorageBackend) -> Scene:
    """Two users of two sessions each, their shared scopes, the root; a page and a checkpoint in each scope, and
    each scope's registry records."""
    scene = Scene({}, {})
    for user in USERS:
        await fill_user(backend, scene, user)
    root = ArtifactsBridge(backend)
    scene.pages[None, None] = [await root.store_page(text_page("legacy"))]
    scene.checkpoints[None, None] = await root.checkpoint([text_page("legacy")], name="legacy")
    return scene


async def fill_user(backend: StorageBackend, scene: Scene, user: str) -> None:
    """Pages and a checkpoint in a user's shared scope and each of its sessions (whose bridges register them)."""
    for session in [None, *SESSIONS]:
        bridge = ArtifactsBridge(backend, user_id=user, session_id=session)
        pages = [text_page(f"{user}-{session}-{i}") for i in range(scaled(1))]
        scene.pages[user, session] = [await bridge.store_page(page) for page in pages]
        scene.checkpoints[user, session] = await bridge.checkpoint(pages, name=f"{user}-{session}")


async def keys(backend: StorageBackend, prefix: str = "") -> set[str]:
    return {entry.key async for entry in backend.list(prefix)}


async def assert_scope_whole(backend: StorageBackend, scene: Scene, user: str | None, session: str | None) -> None:
    """The scope's pages load and its checkpoint restores, as stored."""
    bridge = ArtifactsBridge(backend, user_id=user, session_id=session)
    for artifact in scene.pages[user, session]:
        assert await bridge.load_page(artifact) is not None, f"{user}/{session} lost {artifact}"
    assert scene.checkpoints[user, session] in await bridge.list_checkpoints()
    assert await bridge.restore_checkpoint(scene.checkpoints[user, session])


async def assert_scope_empty(backend: StorageBackend, user: str, session: str | None) -> None:
    """Nothing under the scope's prefix, no registry record, and its bridge and fsck see nothing."""
    prefix = scope_prefix(user, session)
    assert await keys(backend, prefix) == set(), f"erasure of {user}/{session} left {await keys(backend, prefix)}"
    assert await keys(backend, registry_keys(user, session)) == set()
    bridge = ArtifactsBridge(backend, user_id=user, session_id=session)
    assert await bridge.list_checkpoints() == []
    assert await bridge.list_pages() == [] or session is not None  # a session's bridge also lists its user's pages
    report = await fsck(bridge)
    assert report.ok
    assert report.checkpoints == 0
    assert not report.orphans
    assert not report.in_progress


async def test_erasure_leaves_nothing_of_the_scope_and_touches_nothing_else(store: Rig, rig: str) -> None:
    backend = store.open()
    try:
        scene = await build(backend)
        before = await keys(backend)
        alice_s1 = scope_prefix("alice", "s1")

        handle = Store(backend)
        erased = await handle.delete_session("alice", "s1", sleep=no_wait)
        assert [s.session_id for s in await handle.sessions("alice")] == ["s2"]
        assert erased.deleted > 0
        assert erased.records == [registry_keys("alice", "s1")]
        await assert_scope_empty(backend, "alice", "s1")
        outside = {k for k in before if not k.startswith(alice_s1) and k != registry_keys("alice", "s1")}
        assert await keys(backend) == outside, "erasure of one session touched another scope's objects"
        for user, session in [(u, s) for u in USERS for s in [None, *SESSIONS]] + [(None, None)]:
            if (user, session) != ("alice", "s1"):
                await assert_scope_whole(backend, scene, user, session)

        erased = await handle.delete_user("alice", sleep=no_wait)
        assert [u.user_id for u in await handle.users()] == ["bob"]
        assert registry_keys("alice") in erased.records
        for session in [None, *SESSIONS]:
            await assert_scope_empty(backend, "alice", session)
        alice = scope_prefix("alice")
        outside = {k for k in before if not k.startswith(alice) and not k.startswith(registry_keys("alice"))}
        assert await keys(backend) == outside, "erasure of a user touched another user's or the root's objects"
        for session in [None, *SESSIONS]:
            await assert_scope_whole(backend, scene, "bob", session)
        await assert_scope_whole(backend, scene, None, None)
        assert (await fsck(ArtifactsBridge(backend))).ok
        record("scopes erased leaving nothing of theirs and touching nothing else", 2, rig)
    finally:
        await backend.aclose()


async def test_a_checkpoint_into_an_erasing_scope_fails_listing_and_leaving_nothing(store: Rig, rig: str) -> None:
    """A crashed erasure's tomb (E1 done, nothing more) refuses the scope's checkpoints until the erasure is resumed;
    other scopes checkpoint as before; ``gc`` never prunes the tomb; the resumed erasure ends it."""
    backend = store.open()
    try:
        bridge = ArtifactsBridge(backend, user_id="alice", session_id="s1")
        kept = await bridge.checkpoint([text_page("before")], name="before")
        view_prefix = scope_prefix("alice", "s1")
        stopped = Paused(backend, "eraser", Journal())
        stopped.stop_at = 2  # E1's listing of tombs and its erasing tomb: then the erasure "crashes"
        task = asyncio.ensure_future(erase_scope(stopped, view_prefix, options=ErasureOptions(sleep=no_wait)))
        await stopped.stopped.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await erasing(backend, view_prefix)
        before = await keys(backend, view_prefix)
        with pytest.raises(ScopeErasingError):
            await bridge.checkpoint([text_page("during"), text_page("before")], name="during")
        assert await keys(backend, view_prefix) == before, "a refused checkpoint left something behind"
        assert await bridge.list_checkpoints() == [kept]
        other = ArtifactsBridge(backend, user_id="alice", session_id="s2")
        assert await other.checkpoint([text_page("elsewhere")], name="elsewhere")
        await gc(bridge, grace=timedelta(0), tomb_retention=timedelta(0))
        assert await erasing(backend, view_prefix), "gc pruned an erasing tomb"

        resumed = await erase_session(backend, "alice", "s1", ErasureOptions(sleep=no_wait))
        assert resumed.resumed
        await assert_scope_empty(backend, "alice", "s1")
        assert await bridge.checkpoint([text_page("after")], name="after"), "the scope's next life checkpoints"
    finally:
        await backend.aclose()


@pytest.mark.parametrize("stop_at", [3, 4, 5])
async def test_a_sessions_checkpoint_fails_while_its_users_erasure_stopped_before_marking_it(
    store: Rig, rig: str, stop_at: int
) -> None:
    """A user's erasure crashed after its own erasing tomb, before (or while) it marks the user's sessions (E1 of
    the user, the listing, E1 of the session): a checkpoint of a session of that user is refused all the same
    (``ScopeErasingError``, nothing listed nor left), as the README promises while an erasing tomb is there; another
    user's session checkpoints; the resumed erasure leaves nothing."""
    backend = store.open()
    try:
        bridge = ArtifactsBridge(backend, user_id="alice", session_id="s1")
        kept = await bridge.checkpoint([text_page("before")], name="before")
        stopped = Paused(backend, "eraser", Journal())
        stopped.stop_at = stop_at
        task = asyncio.ensure_future(erase_user(stopped, "alice", ErasureOptions(sleep=no_wait)))
        await stopped.stopped.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        prefix = scope_prefix("alice", "s1")
        before = await keys(backend, prefix)
        with pytest.raises(ScopeErasingError):
            await bridge.checkpoint([text_page("during"), text_page("before")], name="during")
        assert await keys(backend, prefix) == before, "a refused checkpoint left something behind"
        assert await bridge.list_checkpoints() == [kept]
        assert await ArtifactsBridge(backend, user_id="bob", session_id="s1").checkpoint(
            [text_page("bob's")], name="bob"
        )
        await erase_user(backend, "alice", ErasureOptions(sleep=no_wait))
        await assert_scope_empty(backend, "alice", "s1")
    finally:
        await backend.aclose()


async def test_an_erasure_stopped_at_any_storage_call_is_finished_by_the_next(store: Rig, rig: str) -> None:
    """An erasure of a user is cancelled before each of its storage calls in turn (every one on memory, a sample
    elsewhere): until it ends, the user is erasing whenever anything of it is left (the erasing tomb goes last), and
    once its record is gone ``fsck`` reports the erasure unfinished; then erased again: the second finishes it,
    leaving nothing of the user, no erasing tomb and no registry record, and nothing else touched."""
    backend = store.open()
    try:
        scene = await build(backend)
        before = await keys(backend)
        alice = scope_prefix("alice")
        outside = {k for k in before if not k.startswith(alice) and not k.startswith(registry_keys("alice"))}
        journal = Journal()
        counted = Paused(backend, "eraser", journal)
        options = ErasureOptions(sleep=no_wait)
        await erase_scope(counted, alice, registry=registry_keys("alice"), options=options)  # how many calls it makes
        calls = counted.calls
        cuts = list(range(calls))
        if rig != "memory":  # the same calls through the disk's or a cloud's: a sample
            cuts = sorted(random.Random(rig).sample(cuts, min(len(cuts), scaled(3 if rig == "filesystem" else 1))))
        unfinished = 0
        for cut in cuts:
            await fill_user(backend, scene, "alice")
            present = {k for k in await keys(backend) if k.startswith(alice) or k.startswith(registry_keys("alice"))}
            stopped = Paused(backend, "eraser", Journal())
            stopped.stop_at = cut
            task = asyncio.ensure_future(erase_user(stopped, "alice", ErasureOptions(sleep=no_wait)))
            await _stopped_or_done(stopped, task)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            left = {k for k in await keys(backend) if k.startswith(alice) or k.startswith(registry_keys("alice"))}
            touched = left != present
            assert not left or not touched or await erasing(backend, alice), f"stopped at {cut}: {left} left"
            if await erasing(backend, alice) and registry_keys("alice") not in left:  # users no longer lists it
                found = await fsck(ArtifactsBridge(backend))
                assert {p.kind for p in found.problems if p.key.startswith(alice)} == {"unfinished"}
                unfinished += 1
            await erase_user(backend, "alice", ErasureOptions(sleep=no_wait))
            for session in [None, *SESSIONS]:
                await assert_scope_empty(backend, "alice", session)
            assert {k for k in await keys(backend) if not k.startswith("alloc_")} == {
                k for k in outside if not k.startswith("alloc_")
            }, f"an erasure stopped at call {cut} and resumed touched another scope"
            for session in [None, *SESSIONS]:
                await assert_scope_whole(backend, scene, "bob", session)
        record("erasures stopped at a storage call and finished by the next", len(cuts), rig)
        assert unfinished or rig != "memory", "no cut fell between the registry record's deletion and the tomb's"
    finally:
        await backend.aclose()


async def _stopped_or_done(actor: Paused, task: asyncio.Task[Any]) -> None:
    stopped = asyncio.create_task(actor.stopped.wait())
    await asyncio.wait({stopped, task}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()


def test_the_settle_period_is_a_store_page_s_longest_time() -> None:
    """E4 waits the request deadline times its attempts on a cloud (its settings), a fixed time elsewhere."""
    from tierstore.backends.cloud import CloudOptions, RetryPolicy
    from tierstore.backends.memory import InMemoryBackend
    from tierstore.protocol.erasure import LOCAL_SETTLE, settle_period

    class Cloudy(InMemoryBackend):
        options = CloudOptions(retry=RetryPolicy(max_attempts=4, deadline=12.5))

    assert settle_period(Cloudy()) == timedelta(seconds=50)
    assert settle_period(InMemoryBackend()) == LOCAL_SETTLE
    assert settle_period(InMemoryBackend(clock=ManualClock())) == LOCAL_SETTLE
    assert is_erasing_tomb("tomb_20261205T000000000000_0123abcd_e")
    assert not is_erasing_tomb("tomb_stone_e")
    assert not is_erasing_tomb("tomb_x_d")


def test_the_command_line_erases_a_user_and_a_session(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tierstore sessions rm`` and ``users rm`` erase through the store handle; an id is checked before any I/O;
    a user with nothing stored is erased, saying so; ``users`` with no action still lists."""
    monkeypatch.delenv("TIERSTORE_USER_ID", raising=False)
    monkeypatch.delenv("TIERSTORE_SESSION_ID", raising=False)
    url = ("--url", str(tmp_path), "--settle", "0")
    scene = asyncio.run(build(FileSystemBackend(tmp_path)))
    assert main(["sessions", "rm", "s1", "--user", "alice", *url]) == 0
    assert "erased session s1 of user alice" in capsys.readouterr().out
    assert main(["users", "rm", "alice", "--json", *url]) == 0
    erased = json.loads(capsys.readouterr().out)
    assert erased["user_id"] == "alice"
    assert registry_keys("alice") in erased["erased"]["records"]
    assert main(["users", "rm", "carol", *url]) == 0
    assert "nothing was stored" in capsys.readouterr().out
    assert main(["users", "rm", "a/b", *url]) == 2
    assert "InvalidInputError" in capsys.readouterr().err
    assert main(["users", "--json", "--url", str(tmp_path)]) == 0
    assert [u["user_id"] for u in json.loads(capsys.readouterr().out)["users"]] == ["bob"]

    async def check() -> None:
        backend = FileSystemBackend(tmp_path)
        for session in [None, *SESSIONS]:
            await assert_scope_empty(backend, "alice", session)
            await assert_scope_whole(backend, scene, "bob", session)

    asyncio.run(check())


@pytest.mark.parametrize(
    ("field", "value"),
    [("settle", timedelta(seconds=-1)), ("patience", 5), ("poll", timedelta(-1)), ("concurrency", 0)],
)
def test_erasure_options_refuse_what_cannot_be_waited(field: str, value: object) -> None:
    with pytest.raises(InvalidInputError, match=f"erasure option {field} must be"):
        ErasureOptions(**{field: value})  # type: ignore[arg-type]
