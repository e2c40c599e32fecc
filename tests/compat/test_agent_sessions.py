"""A chuk agent works in its ``MemoryManager``'s session scope (``tierstore.chuk.binding``): ``attach`` binds it there
and refuses another session; an erasure of the session waits for the running agent. Its state from before scopes (a
checkpoint at the root of the store) reaches the session, and nothing at the root changes: restored by its id, it is
read from the root, verified, and written as the session's first checkpoint; a kill at any step of that leaves the
root as it was and lists nothing half-made in the session; old and new processes at once on one session lose nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from chuk_ai_session_manager.memory import MemoryManager

from tests.compat.agent import SESSION, before_scopes, new_agent, report
from tests.compat.test_restarts import AGENT_RIGS, Agent, each_agent_rig
from tests.conftest import ROOT, Store
from tests.soak import scaled
from tierstore import ArchivedPageError, ArtifactsBridge, InvalidInputError, MemoryPage, Modality, ObjectNotFoundError
from tierstore.backends.base import ListEntry, StorageBackend
from tierstore.chuk.state import STATE_PAGE_ID
from tierstore.errors import InUseError, ScopeErasingError
from tierstore.integrations.chuk import TierstoreBridge, attach, checkpoint, restore
from tierstore.maintenance.fsck import fsck
from tierstore.maintenance.gc import gc
from tierstore.protocol.erasure import ErasureOptions, erase_session

SEEN = ("available", "working_set", "found", "l0", "pinned", "archived", "context")
"""What the model sees of a restored agent (``tests.compat.agent.report``), less where its pages are stored."""


async def an_agent_before_scopes(store: Store, session_id: str = SESSION) -> tuple[str, dict[str, Any]]:
    """An agent of the last release: 9 pages, 6 evicted (3 to L4), checkpointed at the root; its checkpoint id and
    what the model saw."""
    vm = MemoryManager(session_id=session_id)
    with before_scopes():
        adapter = attach(vm, ArtifactsBridge(store.open()))
    assert adapter.bridge.session_id is None
    await new_agent(vm, 9)
    checkpoint_id = await checkpoint(vm, "before scopes")
    seen = await report(vm)
    await adapter.aclose()
    return checkpoint_id, seen


async def snapshot(backend: StorageBackend) -> dict[str, tuple[object, ...]]:
    """Every object of the store outside every scope (the root, as a release before scopes sees it): its bytes
    where they can be read (not archived), its size, time and tier."""
    found: dict[str, tuple[object, ...]] = {}
    async for entry in backend.list(""):
        if not entry.key.startswith("u-"):
            info = await backend.head(entry.key)
            assert info is not None
            data = None if info.archived else await backend.get(entry.key)
            body = None if data is None else bytes(data)
            found[entry.key] = (body, info.size, info.last_modified, info.tier)
    return found


def root_unchanged(before: dict[str, tuple[object, ...]], after: dict[str, tuple[object, ...]]) -> None:
    """Nothing the root held changed or went; what is new there is the store's id blocks and the scopes' registry."""
    assert {k: v for k, v in after.items() if k in before} == before
    assert [k for k in after if k not in before and not k.startswith(("alloc_", "scope_"))] == []


async def restored(store: Store, checkpoint_id: str, **settings: Any) -> tuple[Any, TierstoreBridge]:
    vm = MemoryManager(session_id=SESSION)
    adapter = attach(vm, ArtifactsBridge(store.open(), **settings))
    await restore(vm, checkpoint_id)
    return vm, adapter


async def bring_back_archived(opened: Callable[[], StorageBackend], checkpoint_id: str) -> None:
    """What the error says to do at the root (``tierstore checkpoints restore ID``, no --session)."""
    root = ArtifactsBridge(opened())
    manifest = await root.get_checkpoint_manifest(checkpoint_id)
    assert manifest is not None
    await bring_back_archived_pages(root, [e.artifact_id for e in manifest.pages])


async def bring_back_archived_pages(bridge: ArtifactsBridge, artifacts: list[str]) -> None:
    for artifact in artifacts:
        meta = await bridge.get_metadata(artifact)
        if meta is not None and meta.archived:
            assert (await bridge.restore_page(artifact)).state in ("restored", "pending")


@pytest.mark.bridge_only
async def test_a_checkpoint_merely_named_like_a_copy_is_never_restored_for_the_roots(store: Store) -> None:
    """Names are free text: a checkpoint of the session named as a copy of the root's, holding the same page ids
    with other content, is not that copy while the root's is there."""
    root_id, before = await an_agent_before_scopes(store)
    await bring_back_archived(store.open, root_id)
    manifest = await ArtifactsBridge(store.open()).get_checkpoint_manifest(root_id)
    assert manifest is not None
    session = ArtifactsBridge(store.open(), session_id=SESSION)
    others = [MemoryPage(page_id=e.page_id, modality=Modality.TEXT, content="another") for e in manifest.pages]
    for name in (f"carried over from {root_id}", f"mine (carried over from {root_id})"):
        await session.checkpoint(others, name)
    vm, _ = await restored(store, root_id)
    assert seen(await report(vm)) == seen(before)
    again, _ = await restored(store, root_id)  # now the copy answers: nothing copied again
    assert (seen(await report(again)), len(await session.list_checkpoints())) == (seen(before), 3)


@pytest.mark.bridge_only  # above the backend protocol; S3's archive: the agents' race below, on moto
async def test_a_checkpoint_from_before_scopes_is_carried_into_the_session_and_the_root_is_only_read(
    store: Store,
) -> None:
    root_id, before = await an_agent_before_scopes(store)
    other_id, _ = await an_agent_before_scopes(store, "another_session")
    original = await snapshot(store.open())
    session = ArtifactsBridge(store.open(), session_id=SESSION)
    assert await session.list_checkpoints() == []  # the root's checkpoints are not the session's

    vm = MemoryManager(session_id=SESSION)
    attach(vm, ArtifactsBridge(store.open()))
    if any(before["archived"].values()):  # copying needs the bytes: the error says how to bring them back
        with pytest.raises(
            ArchivedPageError, match=rf"{root_id} was made before scopes.*tierstore checkpoints restore"
        ):
            await restore(vm, root_id)
        assert (len(vm.page_table), await session.list_checkpoints()) == (0, [])
        await bring_back_archived(store.open, root_id)
        original = await snapshot(store.open())
    await restore(vm, root_id)
    after = await report(vm)
    assert {k: after[k] for k in SEEN if k != "archived"} == {k: before[k] for k in SEEN if k != "archived"}
    assert after["artifacts"].keys() == before["artifacts"].keys()
    carried = await session.list_checkpoints()
    assert len(carried) == 1
    manifest = await session.get_checkpoint_manifest(carried[0])
    assert manifest is not None
    assert manifest.name == f"before scopes (carried over from {root_id})"
    assert set(after["artifacts"].values()) <= set(await session.list_pages())  # the session's own copies
    root_unchanged(original, await snapshot(store.open()))

    pages = await session.list_pages()
    again, _ = await restored(store, root_id)  # asked for again: the session's copy, nothing copied
    assert (await session.list_checkpoints(), await session.list_pages()) == (carried, pages)
    assert (await report(again))["artifacts"] == after["artifacts"]
    root_unchanged(original, await snapshot(store.open()))

    assert await session.delete_checkpoint(carried[0])  # the copy deleted from the session: carried over anew
    await gc(session, grace=timedelta(0))
    anew, _ = await restored(store, root_id)
    assert seen(await report(anew)) == seen(before)
    assert len(recarried := await session.list_checkpoints()) == 1
    await bring_back_archived(store.open, root_id)
    assert await ArtifactsBridge(store.open()).delete_checkpoint(root_id)  # an old process deletes it at the root
    last, _ = await restored(store, root_id)  # the session's copy still answers
    assert seen(await report(last)) == seen(before)
    assert await session.list_checkpoints() == recarried

    with pytest.raises(ObjectNotFoundError, match=rf"{other_id} is not in session .*for session 'another_session'"):
        await restored(store, other_id)
    with pytest.raises(ObjectNotFoundError):
        await restored(store, "ckpt_20200101T000000000000_00000000")
    assert await session.list_checkpoints() == recarried


@pytest.mark.bridge_only
async def test_attach_binds_the_managers_session_and_refuses_another(store: Store) -> None:
    vm = MemoryManager(session_id=SESSION)
    given = ArtifactsBridge(store.open(), compression="zstd", concurrency=3)
    adapter = attach(vm, given, user_id="alice")
    bound = adapter.bridge
    assert (bound.user_id, bound.session_id, bound.backend) == ("alice", SESSION, given.backend)
    assert (bound.compression, bound.concurrency) == ("zstd", 3)  # the given bridge's settings
    assert attach(MemoryManager(session_id=SESSION), bound).bridge is bound  # bound to that scope already
    users = ArtifactsBridge(store.open(), user_id="alice")  # a user's bridge: bound to the manager's session of it
    assert (attach(MemoryManager(session_id="s2"), users).bridge.user_id, users.session_id) == ("alice", None)
    with pytest.raises(InvalidInputError, match="bound to user 'alice', not to user_id 'bob'"):
        attach(MemoryManager(session_id="s2"), users, user_id="bob")
    with pytest.raises(InvalidInputError, match=f"bound to session {SESSION!r}, and the MemoryManager's session"):
        attach(MemoryManager(session_id="another"), bound)
    with pytest.raises(InvalidInputError, match="bound to user 'alice', not to user_id 'bob'"):
        attach(MemoryManager(session_id=SESSION), bound, user_id="bob")
    with pytest.raises(InvalidInputError, match="session_id 'a/b' cannot name a tierstore scope"):
        attach(MemoryManager(session_id="a/b"), given)
    with pytest.raises(InvalidInputError, match="'other' is not the session this bridge is bound to"):
        await vm.configure_bridge(session_id="other")
    await new_agent(vm, 3)  # msg_1 evicted to L3, msg_2 to L4, in the first session
    vm.update_session_id("rolled_over")  # chuk's segment rollover: the storage stays the old session's
    with pytest.raises(InvalidInputError, match=r"attach\(manager\) again"):
        await checkpoint(vm, "after a rollover")
    await bring_back_archived_pages(bound, [vm.page_table.lookup(p).artifact_id for p in ("msg_1", "msg_2")])
    rolled = attach(vm, given, user_id="alice").bridge
    assert (rolled.user_id, rolled.session_id) == ("alice", "rolled_over")
    rolled_over = await checkpoint(vm, "after a rollover")  # the pages evicted before come along into the new one
    assert len(await rolled.list_pages()) == 4  # msg_0 to msg_2 and the manager's state, stored anew there
    await whole(rolled, rolled_over, 4)
    await adapter.aclose()
    await given.aclose()


@pytest.mark.bridge_only
async def test_attach_takes_the_user_from_the_settings(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERSTORE_USER_ID", "carol")
    vm = MemoryManager(session_id=SESSION)
    assert attach(vm, ArtifactsBridge(store.open())).bridge.user_id == "carol"
    assert attach(MemoryManager(session_id=SESSION), ArtifactsBridge(store.open()), user_id="dan").bridge.user_id == (
        "dan"
    )


async def test_attach_without_a_bridge_takes_the_settings_scope(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIERSTORE_URL", (tmp_path / "store").as_uri())
    monkeypatch.setenv("TIERSTORE_USER_ID", "carol")
    bound = attach(MemoryManager(session_id=SESSION)).bridge
    assert (bound.user_id, bound.session_id) == ("carol", SESSION)
    monkeypatch.setenv("TIERSTORE_SESSION_ID", SESSION)  # the manager's: the settings' bridge as it is
    assert attach(MemoryManager(session_id=SESSION)).bridge.session_id == SESSION
    monkeypatch.setenv("TIERSTORE_SESSION_ID", "another")
    with pytest.raises(InvalidInputError, match="bound to session 'another'"):
        attach(MemoryManager(session_id=SESSION))


class Killed(Exception):
    """The process died: this call and every later one never reach the store."""


class DiesAt:
    """A backend whose process dies at its ``at``-th call once armed (counted across every call, listings too)."""

    CALLS = ("put", "get", "get_range", "head", "delete", "delete_many", "set_tier", "restore")

    def __init__(self, inner: StorageBackend, at: int | None) -> None:
        self.inner, self.at, self.calls, self.dead = inner, at, 0, False

    def _step(self) -> None:
        if self.at is None:
            return
        self.calls += 1
        self.dead = self.dead or self.calls >= self.at
        if self.dead:
            raise Killed(f"killed at call {self.at}")

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in self.CALLS:
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            self._step()
            return await attribute(*args, **kwargs)

        return call

    def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        async def entries() -> AsyncIterator[ListEntry]:
            self._step()
            async for entry in self.inner.list(prefix):
                yield entry

        return entries()


async def whole(bridge: ArtifactsBridge, checkpoint_id: str, pages: int = 10) -> None:
    """The checkpoint names ``pages`` pages (the agent's and its state), each stored as its entry says (archived ones
    too)."""
    manifest = await bridge.get_checkpoint_manifest(checkpoint_id)
    assert manifest is not None
    assert (manifest.page_count, len(manifest.pages)) == (pages, pages)
    for entry in manifest.pages:
        meta = await bridge.get_metadata(entry.artifact_id)
        assert meta is not None
        assert (meta.page_id, meta.checksum) == (entry.page_id, entry.checksum)


@pytest.mark.bridge_only
async def test_a_carry_over_killed_at_any_call_leaves_the_root_as_it_was_and_lists_nothing_half_made(
    store: Store,
) -> None:
    root_id, before = await an_agent_before_scopes(store)
    await bring_back_archived(store.open, root_id)
    original = await snapshot(store.open())
    session = ArtifactsBridge(store.open(), session_id=SESSION)
    at, finished = 1, False
    while not finished:  # killed before its 1st, 2nd, ... call to the store, until one run ends unkilled
        dying = DiesAt(store.open(), None)
        vm = MemoryManager(session_id=SESSION)
        running = attach(vm, ArtifactsBridge(dying, lease_ttl=timedelta(seconds=1)))
        dying.at = dying.calls + at
        try:
            await restore(vm, root_id)
            finished, dying.at = True, None  # this run was not killed: it goes on
        except Killed:
            pass  # ended with the kill itself: nothing turned it into a result or another error
        root_unchanged(original, await snapshot(store.open()))
        for listed in await session.list_checkpoints():  # every listed copy is whole
            await whole(session, listed)
        at += 1
    assert at > 10  # the kills landed at every call of a carry-over: manifest, pages, lease, uploads
    assert (await report(vm))["found"] == before["found"]
    await running.aclose()  # the run that ended: its agent ends
    await asyncio.sleep(1.5)  # the killed runs' leases lapse
    await gc(session, grace=timedelta(0))
    found = await fsck(session)
    assert (found.orphans, found.problems, found.in_progress) == ([], [], [])
    restarted, adapter = await restored(store, (await session.list_checkpoints())[-1])
    assert {k: (await report(restarted))[k] for k in ("available", "found", "l0", "pinned")} == {
        k: before[k] for k in ("available", "found", "l0", "pinned")
    }
    await adapter.aclose()
    root_unchanged(original, await snapshot(store.open()))


@pytest.fixture
def agent(fresh_store: Callable[[str], dict[str, Any]], agent_rig: str) -> Agent:
    return Agent(agent_rig, fresh_store(agent_rig))


def start(agent: Agent, *args: str) -> subprocess.Popen[str]:
    """An agent process (``tests.compat.agent``) started now, beside whatever else runs."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.compat.agent", agent.rig, json.dumps(agent.spec), *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def ended(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def seen(report: dict[str, Any]) -> dict[str, Any]:
    return {k: report[k] for k in SEEN if k != "archived"}


@each_agent_rig
async def test_old_and_new_agents_of_one_session_at_once_lose_nothing_and_list_only_whole_checkpoints(
    agent: Agent,
) -> None:
    """Each round, on one store at once: two new processes carry the root checkpoint over into the session, and an
    old one (before scopes) restores it at the root, changes a page, checkpoints there and deletes it. A new process
    either carries it over whole or fails typed (the checkpoint, or its changed page, deleted under it); the root
    loses only what the old one deleted; every checkpoint listed in the session is whole, and its pages are all
    that the session keeps."""
    with before_scopes():
        first = await agent.run_here("new", "9", "--before-scopes")
    base, carried, failed, rng = first["checkpoint"], 0, [], random.Random(28)
    session = agent.session()
    for _ in range(scaled(1)):
        await bring_back_archived(agent.open, base)
        manifest = await ArtifactsBridge(agent.open()).get_checkpoint_manifest(base)
        assert manifest is not None
        changed = {"msg_1", STATE_PAGE_ID}  # the old one changes msg_1, so the page table, in its state page
        deletable = {base, *(e.artifact_id for e in manifest.pages if e.page_id in changed)}
        original = await snapshot(agent.open())
        old_flags = ("--before-scopes", "--delete-base", "--change", "msg_1")
        runs = [start(agent, "restart", base, *old_flags)]
        for late in (0.0, rng.uniform(0, 1.0)):  # as the old one gets on: some carry over before its deletion, some not
            await asyncio.sleep(late)
            runs.append(start(agent, "restart", base))
        old, *new = [ended(run) for run in runs]
        assert seen(old["restored"]) == seen(first["before"])
        for result in new:
            if "error" in result:
                failed.append(result["error"])
            else:
                carried += 1
                assert seen(result["restored"]) == seen(first["before"])
        after = await snapshot(agent.open())
        gone = {k for k in original if k not in after}
        assert gone <= deletable  # the old one's deletion of its base: the manifest, and what only it named
        assert {k: after[k] for k in original if k not in gone} == {k: original[k] for k in original if k not in gone}
        base = old["checkpoint"]
    assert set(failed) <= {"IntegrityError", "ObjectNotFoundError"}
    listed = await session.list_checkpoints()
    copies = len(listed) - carried  # each carried over (or found a copy listed already), then checkpointed its run
    assert min(carried, 1) <= copies <= carried
    for checkpoint_id in listed:
        await whole(session, checkpoint_id)
    await gc(session, grace=timedelta(0))  # what the failed ones uploaded
    found = await fsck(session)
    assert (found.orphans, found.problems, found.in_progress) == ([], [], [])
    referenced = set()
    for checkpoint_id in listed:
        manifest = await session.get_checkpoint_manifest(checkpoint_id)
        assert manifest is not None
        referenced |= {e.artifact_id for e in manifest.pages}
    assert set(await session.list_pages()) == referenced
    await bring_back_archived(agent.open, base)
    last = await agent.run_here("restart", base)  # the old one's latest, carried over by a new process
    assert seen(last["restored"]) == seen(first["before"])
    with before_scopes():  # and still the old one's, at the root
        assert seen((await agent.run_here("restart", base, "--before-scopes"))["restored"]) == seen(first["before"])


@pytest.mark.bridge_only
async def test_erasing_a_running_agents_session_waits_for_it_and_ends_once_it_has(store: Store) -> None:
    """The agent's lease lives in its session's scope, as long as the agent: an erasure of that session waits for
    it, then refuses (InUseError) and leaves the session erasing, deleting nothing the agent relies on; the agent's
    checkpoints are refused meanwhile (ScopeErasingError, nothing listed); once it has ended, the erasure resumes
    and leaves nothing of the session."""
    vm = MemoryManager(session_id=SESSION)
    adapter = attach(vm, ArtifactsBridge(store.open()))
    await new_agent(vm, 6)
    first = await checkpoint(vm, "before the erasure")
    quick = ErasureOptions(settle=timedelta(0), patience=timedelta(seconds=1), poll=timedelta(seconds=0.1))
    with pytest.raises(InUseError):
        await erase_session(store.open(), None, SESSION, quick)
    with pytest.raises(ScopeErasingError):
        await checkpoint(vm, "during the erasure")
    vm.new_turn()
    result = await vm.handle_fault("msg_1", target_level=0)  # an evicted page: still there
    assert result.success, result.error
    session = ArtifactsBridge(store.open(), session_id=SESSION)
    assert await session.list_checkpoints() == [first]
    await adapter.aclose()  # the agent ends
    assert (await erase_session(store.open(), None, SESSION, quick)).resumed
    assert (await session.list_checkpoints(), await session.list_pages()) == ([], [])
    found = await fsck(session)
    assert (found.checkpoints, found.orphans, found.in_progress, found.problems) == (0, [], [], [])
    with pytest.raises(ObjectNotFoundError):  # not at the root either: nothing to carry over
        await restored(store, first)


@pytest.mark.parametrize("agent_rig", [r for r in AGENT_RIGS if r == "filesystem"])  # where a kill leaves most
async def test_carry_overs_killed_by_sigkill_leave_the_root_as_it_was_and_list_nothing_half_made(agent: Agent) -> None:
    """Processes carrying the root checkpoint over, each killed (SIGKILL: no clean-up, no exit hook, its lease left
    to expire) as it makes a call to the store chosen at random among the carry-over's; then one that is not."""
    with before_scopes():
        first = await agent.run_here("new", "9", "--before-scopes")
    base = first["checkpoint"]
    await bring_back_archived(agent.open, base)
    original = await snapshot(agent.open())
    session = agent.session()
    mid_restore = 0
    for at in sorted(random.Random(6).sample(range(1, 56), scaled(3))):  # a carry-over makes about 60 calls
        killed = start(agent, "restart", base, "--die-at", str(at), "--crash", "--lease-ttl", "1")
        out, _ = killed.communicate(timeout=300)
        assert killed.returncode == -signal.SIGKILL
        mid_restore += out == ""  # else its restore had ended (a copy listed already makes it short): killed after
        root_unchanged(original, await snapshot(agent.open()))
        for listed in await session.list_checkpoints():
            await whole(session, listed)
    assert mid_restore >= 1
    await asyncio.sleep(1.5)  # the killed processes' leases lapse
    await gc(session, grace=timedelta(0))
    found = await fsck(session)
    assert (found.orphans, found.strays, found.problems, found.in_progress) == ([], [], [], [])
    last = await agent.run_here("restart", base)
    assert seen(last["restored"]) == seen(first["before"])
    root_unchanged(original, await snapshot(agent.open()))
