"""What an attached chuk agent may rely on: a fault returns the page asked for or an error (also for pages chuk's own
bridge stored before ``attach``), archived pages ride through checkpoints and restores unread (on every rig), and
neither ``delete_checkpoint`` nor ``gc`` takes what a running agent refers to, while ``gc`` takes the rest.
``bridge_only`` tests prove the integration above the backend protocol (see tests/conftest.py); the restarts on the
disk and S3 are in test_restarts.py."""

from __future__ import annotations

import asyncio
import gc as gc_module
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from chuk_ai_session_manager.memory import MemoryManager, StorageTier as ChukTier

from tests.conftest import Store
from tests.soak import scaled
from tests.test_checkpoint_order import until_the_store_passes
from tests.test_custom_backend import DictBackend
from tierstore import (
    ArchivedPageError,
    ArtifactsBridge,
    FileSystemBackend,
    IntegrityError,
    InvalidInputError,
    MemoryPage,
    Modality,
    NotSupportedError,
    StorageTier,
    SyncBridge,
)
from tierstore.backends.memory import InMemoryBackend
from tierstore.chuk.state import STATE_PAGE_ID as STATE
from tierstore.cli import exit_codes, main
from tierstore.clock import SkewedClock
from tierstore.integrations.chuk import TierstoreBridge, attach, checkpoint, restore, restore_archived
from tierstore.maintenance.fsck import fsck
from tierstore.maintenance.gc import gc
from tierstore.maintenance.migrate import migrate
from tierstore.scopes import scope_prefix

ARCHIVING_RIGS = {"memory", "s3_moto", "s3_moto_obstore", "s3_localstack", "s3_localstack_obstore", "azure"}
ARCHIVING_RIGS |= {"azure_obstore"}
"""Rigs whose L4 is an archive class: reading needs a restore first (GCS's ARCHIVE and the disk read directly)."""


def session(store: Store, session_id: str = "s", **settings: Any) -> ArtifactsBridge:
    """Another bridge onto the agent's session scope, where an attached agent's pages, lease and checkpoints are."""
    return ArtifactsBridge(store.open(), session_id=session_id, **settings)


async def pages(vm: Any, *names: str) -> None:
    for name in names:
        page = vm.create_page(f"the content of {name}", page_id=name, hint=f"about {name}")
        assert await vm.add_to_working_set(page)


async def content(vm: Any, page_id: str) -> str:
    result = await vm.handle_fault(page_id, target_level=0)
    assert result.success, result.error
    assert result.page.page_id == page_id
    text: str = result.page.content
    return text


@pytest.mark.bridge_only
async def test_pages_chuks_bridge_stored_before_attach_fault_as_themselves_and_move_over(store: Store) -> None:
    vm = MemoryManager(session_id="old_code")
    await vm.configure_bridge()  # chuk's own (in-memory) bridge, as code written before tierstore does
    await pages(vm, "msg_A", "msg_B", "msg_C")
    assert await vm.evict_page("msg_A", ChukTier.L3)
    assert await vm.evict_page("msg_C", ChukTier.L3)
    chuk_ids = {p: vm.page_table.lookup(p).artifact_id for p in ("msg_A", "msg_C")}
    assert chuk_ids == {"msg_A": "mem_L3_1", "msg_C": "mem_L3_2"}  # chuk's ids, shaped like tierstore's

    chuks_bridge = vm._bridge
    attach(vm, ArtifactsBridge(store.open()))
    assert await vm.evict_page("msg_B", ChukTier.L3)
    assert vm.page_table.lookup("msg_B").artifact_id == "mem_L3_1"  # tierstore's first id: the same text
    assert await content(vm, "msg_A") == "the content of msg_A"  # from chuk's bridge, not tierstore's mem_L3_1
    assert await content(vm, "msg_B") == "the content of msg_B"

    checkpoint_id = await checkpoint(vm, "carried over")  # msg_C moves into tierstore's store
    assert await chuks_bridge.delete_page(chuk_ids["msg_C"])  # chuk's copy is no longer needed
    moved = await session(store, "old_code").load_page(vm.page_table.lookup("msg_C").artifact_id)
    assert moved is not None
    assert (moved.page_id, moved.content) == ("msg_C", "the content of msg_C")
    restarted = MemoryManager(session_id="old_code")
    attach(restarted, ArtifactsBridge(store.open()))
    await restore(restarted, checkpoint_id)
    assert await content(restarted, "msg_C") == "the content of msg_C"


@pytest.mark.bridge_only
async def test_a_fault_refuses_an_artifact_that_holds_another_page(store: Store) -> None:
    vm = MemoryManager(session_id="s")
    attach(vm, ArtifactsBridge(store.open()))
    await pages(vm, "msg_A", "msg_B")
    assert await vm.evict_page("msg_A", ChukTier.L3)
    assert await vm.evict_page("msg_B", ChukTier.L3)
    vm.page_table.lookup("msg_A").artifact_id = vm.page_table.lookup("msg_B").artifact_id
    with pytest.raises(IntegrityError, match="holds page 'msg_B', not page 'msg_A'"):
        await vm.handle_fault("msg_A")
    vm.page_table.lookup("msg_A").artifact_id = "mem_L3_999999"
    with pytest.raises(IntegrityError, match="does not hold"):
        await vm.handle_fault("msg_A")
    assert "msg_A" not in vm.working_set.get_l0_page_ids()


async def test_archived_pages_are_checkpointed_and_restored_unread(store: Store) -> None:
    vm = MemoryManager(session_id="s")
    attach(vm, ArtifactsBridge(store.open()))
    await pages(vm, "msg_0", "msg_1", "msg_2")
    assert await vm.evict_page("msg_1", ChukTier.L4)
    assert await vm.evict_page("msg_2", ChukTier.L3)
    checkpoint_id = await checkpoint(vm, "with an archived page")

    restarted = MemoryManager(session_id="s")
    attach(restarted, ArtifactsBridge(store.open()))
    await restore(restarted, checkpoint_id)
    entry = restarted.page_table.lookup("msg_1")
    assert (entry.tier, entry.artifact_id) == (ChukTier.L4, vm.page_table.lookup("msg_1").artifact_id)
    meta = await session(store).get_metadata(entry.artifact_id)
    assert meta is not None
    assert meta.archived is (store.rig in ARCHIVING_RIGS)  # left as it was: not restored from the archive
    assert await content(restarted, "msg_2") == "the content of msg_2"
    if meta.archived:
        with pytest.raises(ArchivedPageError, match=r"restore_archived\(vm, 'msg_1'\)"):
            await restarted.handle_fault("msg_1")
        assert (await restore_archived(restarted, "msg_1")).state in ("restored", "pending")
    assert await content(restarted, "msg_1") == "the content of msg_1"


@pytest.mark.bridge_only
async def test_a_running_agent_keeps_its_pages_and_gc_takes_them_once_it_ends(store: Store) -> None:
    first = MemoryManager(session_id="s")
    first_bridge = attach(first, ArtifactsBridge(store.open()))
    await pages(first, "msg_0", "msg_1", "msg_2", "msg_3")
    for page_id in ("msg_1", "msg_2"):
        assert await first.evict_page(page_id, ChukTier.L3)
    checkpoint_id = await checkpoint(first, "turn 1")
    await first_bridge.aclose()

    running = MemoryManager(session_id="s")
    running_bridge = attach(running, ArtifactsBridge(store.open()))
    await restore(running, checkpoint_id)
    assert await running.evict_page("msg_3", ChukTier.L3)  # named by no checkpoint
    other = session(store)
    assert await other.delete_checkpoint(checkpoint_id)
    await gc(other, grace=timedelta(0))
    for page_id in ("msg_1", "msg_2", "msg_3"):
        assert await content(running, page_id) == f"the content of {page_id}"
    assert await running.evict_page("msg_1", ChukTier.L3)

    await running_bridge.aclose()  # the agent ends without a checkpoint: nothing refers to its pages any more
    report = await gc(other, grace=timedelta(0))
    assert len(report.orphans_deleted) == 3
    assert await other.list_pages() == []


@pytest.mark.bridge_only
async def test_an_agent_used_after_its_bridge_closed_takes_a_new_lease_naming_its_pages(store: Store) -> None:
    vm = MemoryManager(session_id="s")
    bridge = ArtifactsBridge(store.open())
    attach(vm, bridge)
    await pages(vm, "msg_0", "msg_1", "msg_2")
    assert await vm.evict_page("msg_1", ChukTier.L3)
    await bridge.aclose()
    other = session(store)
    assert (await fsck(other, verify=False)).in_progress == []
    assert await vm.evict_page("msg_2", ChukTier.L3)  # used again: a new lease, naming msg_1 again
    assert len((await fsck(other, verify=False)).in_progress) == 1
    assert (await gc(other, grace=timedelta(0))).orphans_deleted == []
    for name in ("msg_1", "msg_2"):
        vm.new_turn()
        assert await content(vm, name) == f"the content of {name}"
    await bridge.aclose()
    assert len((await gc(other, grace=timedelta(0))).orphans_deleted) == 2


@pytest.mark.bridge_only
async def test_agents_sharing_a_bridge_end_one_by_one_or_all_with_it(store: Store) -> None:
    bridge = ArtifactsBridge(store.open())
    agents = [MemoryManager(session_id=f"s{i}") for i in range(3)]
    adapters = [attach(vm, bridge) for vm in agents]  # each in its own session's scope, ended with the bridge
    others = [session(store, f"s{i}") for i in range(3)]

    async def running() -> list[int]:
        return [len((await fsck(other, verify=False)).in_progress) for other in others]

    for vm in agents:
        await pages(vm, "msg_0", "msg_1")
        assert await vm.evict_page("msg_1", ChukTier.L3)
    assert await running() == [1, 1, 1]
    await adapters[0].aclose()  # that agent alone ends
    assert await running() == [0, 1, 1]
    del agents[1], adapters[1]  # dropped without being closed
    gc_module.collect()
    await asyncio.sleep(0)  # its lease is released on this loop
    await asyncio.gather(*(t for t in asyncio.all_tasks() if t.get_name().startswith("tierstore release")))
    assert await running() == [0, 0, 1]
    assert agents[-1] is not None  # still attached, and running
    await bridge.aclose()  # every agent attached with it ends
    assert await running() == [0, 0, 0]
    assert [len((await gc(other, grace=timedelta(0))).orphans_deleted) for other in others] == [1, 1, 1]


@pytest.mark.bridge_only
def test_a_syncbridge_over_an_agents_bridge_closed_or_dropped_leaves_the_agent_running(store: Store) -> None:
    vm = MemoryManager(session_id="s")
    bridge = ArtifactsBridge(store.open())
    attach(vm, bridge)
    asyncio.run(pages(vm, "msg_0", "msg_1"))
    assert asyncio.run(vm.evict_page("msg_1", ChukTier.L3))
    with SyncBridge(bridge) as closed:  # sync code beside the agent, on a loop of its own
        assert closed.list_checkpoints() == []
    dropped = SyncBridge(bridge)
    assert dropped.list_checkpoints() == []
    del dropped
    gc_module.collect()  # its finalizer stops its loop
    other = session(store)
    assert len(asyncio.run(fsck(other, verify=False)).in_progress) == 1
    assert asyncio.run(gc(other, grace=timedelta(0))).orphans_deleted == []
    asyncio.run(bridge.aclose())
    assert asyncio.run(fsck(other, verify=False)).in_progress == []


@pytest.mark.bridge_only
@pytest.mark.parametrize("wrapped", ["attach's adapter", "a TierstoreBridge", "not a bridge"])
def test_a_syncbridge_refuses_what_is_not_a_bridge_saying_what_to_pass(store: Store, wrapped: str) -> None:
    vm = MemoryManager(session_id="s")
    bridge = ArtifactsBridge(store.open())
    adapter = attach(vm, bridge)
    given = {"attach's adapter": adapter, "a TierstoreBridge": TierstoreBridge(bridge), "not a bridge": vm}[wrapped]
    with pytest.raises(InvalidInputError, match="ArtifactsBridge") as refused:
        SyncBridge(given)
    assert ("SyncBridge(adapter.bridge)" in str(refused.value)) == (wrapped != "not a bridge")
    asyncio.run(pages(vm, "msg_0"))
    assert asyncio.run(vm.evict_page("msg_0", ChukTier.L3))
    with SyncBridge(adapter.bridge) as sync:  # what the error says to pass works
        metadata = [sync.get_metadata(key) for key in sync.list_pages()]
        assert [m.page_id if m else None for m in metadata] == ["msg_0"]
        assert sync.list_checkpoints() == []
    assert asyncio.run(content(vm, "msg_0")) == "the content of msg_0"  # the agent goes on
    asyncio.run(bridge.aclose())


async def test_rm_refuses_the_pages_of_a_running_agent_until_it_ends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"file://{tmp_path / 'store'}"
    vm = MemoryManager(session_id="s")
    bridge = ArtifactsBridge(FileSystemBackend(tmp_path / "store"))
    attach(vm, bridge)
    await pages(vm, "msg_0", "msg_1", "msg_2")
    assert await vm.evict_page("msg_1", ChukTier.L3)
    other = ArtifactsBridge(FileSystemBackend(tmp_path / "store"), session_id="s")  # the agent's scope
    assert await other.delete_checkpoint(await checkpoint(vm, "turn 1"))  # msg_1: named by the lease alone
    assert await vm.evict_page("msg_2", ChukTier.L3)  # msg_2: written under the lease, not named yet
    leased = [vm.page_table.lookup(p).artifact_id for p in ("msg_1", "msg_2")]
    for artifact in leased:
        assert await asyncio.to_thread(main, ["rm", artifact, "--url", url, "--session", "s"]) == exit_codes.USAGE
        assert f"{artifact}: in use by a running chuk agent" in capsys.readouterr().err
    assert sorted(await other.list_pages()) == sorted(leased)
    await bridge.aclose()  # the agent ends
    assert await asyncio.to_thread(main, ["rm", *leased, "--url", url, "--session", "s"]) == 0
    assert await other.list_pages() == []


@pytest.mark.bridge_only
async def test_migrate_copies_a_running_agents_unnamed_pages_as_orphans_that_gc_takes_there(store: Store) -> None:
    vm = MemoryManager(session_id="s")
    adapter = attach(vm, ArtifactsBridge(store.open()))
    await pages(vm, "msg_0", "msg_1", "msg_2")
    assert await vm.evict_page("msg_1", ChukTier.L3)
    checkpoint_id = await checkpoint(vm, "turn 1")
    assert await vm.evict_page("msg_2", ChukTier.L3)  # no checkpoint names it; the agent's lease protects it
    unnamed = vm.page_table.lookup("msg_2").artifact_id
    copy = ArtifactsBridge(InMemoryBackend(), session_id="s")
    assert (await migrate(store.open(), copy.backend)).problems == []  # type: ignore[arg-type]
    found = await fsck(copy)  # pages keep their owner; leases are not copied: no agent runs there
    assert (found.in_progress, [o.key for o in found.orphans]) == ([], [unnamed])
    assert (await gc(copy, grace=timedelta(0))).orphans_deleted == [unnamed]
    restored = {p.page_id for p in await copy.restore_checkpoint(checkpoint_id)}
    assert restored == {"msg_0", "msg_1", "msg_2", STATE}
    assert unnamed in await session(store).list_pages()  # the running agent's store keeps it
    await adapter.aclose()


@pytest.mark.bridge_only
async def test_a_checkpoint_without_the_managers_state_restores_referring_to_its_pages(store: Store) -> None:
    bridge = session(store)  # in the agent's session (a root checkpoint is carried over: test_agent_sessions.py)
    kept = MemoryPage(page_id="msg_0", modality=Modality.TEXT, content="in context", storage_tier=StorageTier.L0)
    evicted = MemoryPage(page_id="msg_1", modality=Modality.TEXT, content="stored", storage_tier=StorageTier.L3)
    checkpoint_id = await bridge.checkpoint([kept, evicted], name="made by the bridge alone")
    stored = await bridge.list_pages()

    vm = MemoryManager(session_id="s")
    attach(vm, ArtifactsBridge(store.open()))
    await restore(vm, checkpoint_id)
    assert vm.working_set.get_l0_page_ids() == ["msg_0"]
    assert vm.page_table.lookup("msg_1").tier == ChukTier.L3
    assert await bridge.list_pages() == stored  # referred to, not copied
    assert await content(vm, "msg_1") == "stored"


async def test_on_a_custom_backend_checkpoints_and_restores_copy_evicted_pages() -> None:
    bridge = ArtifactsBridge(DictBackend())
    vm = MemoryManager(session_id="s")
    assert attach(vm, bridge).bridge is bridge  # no scopes on the spec's interface: the agent works at its root
    with pytest.raises(NotSupportedError, match="bound to a user or session"):  # a user asked for cannot be had
        attach(MemoryManager(session_id="s"), bridge, user_id="alice")
    await pages(vm, "msg_0", "msg_1")
    assert await vm.evict_page("msg_1", ChukTier.L3)
    checkpoint_id = await checkpoint(vm, "custom")
    assert len(await bridge.list_pages()) == 4  # the eviction, and the checkpoint's copies of both and the state

    restarted = MemoryManager(session_id="s")
    attach(restarted, bridge)
    await restore(restarted, checkpoint_id)
    assert restarted.working_set.get_l0_page_ids() == ["msg_0"]
    assert sorted(restarted.page_table.entries) == ["msg_0", "msg_1"]
    assert await bridge.delete_checkpoint(checkpoint_id)  # the restored manager holds copies of its own
    assert await content(restarted, "msg_1") == "the content of msg_1"


@pytest.mark.bridge_only
async def test_tombs_of_deletions_that_ended_or_crashed_neither_copy_nor_stop_an_agent(store: Store) -> None:
    first = MemoryManager(session_id="s")
    first_bridge = attach(first, ArtifactsBridge(store.open()))
    await pages(first, "msg_0", "msg_1", "msg_2")
    assert await first.evict_page("msg_1", ChukTier.L4)
    assert await first.evict_page("msg_2", ChukTier.L3)
    checkpoint_id = await checkpoint(first, "turn 1")
    await first_bridge.aclose()
    archived, readable = (first.page_table.lookup(p).artifact_id for p in ("msg_1", "msg_2"))
    refs = session(store).references("test")
    leftover = await refs.write_tomb("pending", [archived, readable])  # a deletion killed mid-way, long ago
    lease_ttl = timedelta(seconds=1)
    await asyncio.sleep(1.5)  # that tomb is now older than the lease time of the agents below
    stored = await session(store).list_pages()

    second = MemoryManager(session_id="s")
    attach(second, ArtifactsBridge(store.open(), lease_ttl=lease_ttl))
    await restore(second, checkpoint_id)
    assert [second.page_table.lookup(p).artifact_id for p in ("msg_1", "msg_2")] == [archived, readable]
    assert await checkpoint(second, "turn 2")
    assert await session(store).list_pages() == stored  # nothing copied

    await refs.backend.delete(leftover)  # pruned by gc
    running = await refs.write_tomb("pending", [archived, readable])  # a deletion that may not see the next agent
    third = MemoryManager(session_id="s")
    attach(third, ArtifactsBridge(store.open()))  # a lease time of 10 minutes: that tomb is recent
    restoring = asyncio.create_task(restore(third, checkpoint_id))
    await asyncio.sleep(0.3)
    await refs.backend.delete(running)  # the deletion ends, having spared them (another checkpoint names them)
    await restoring  # it waited for the deletion, and neither failed nor copied
    assert [third.page_table.lookup(p).artifact_id for p in ("msg_1", "msg_2")] == [archived, readable]

    await refs.write_tomb("deleted", [readable])  # deleted: a restore relies on a copy of its own
    fourth = MemoryManager(session_id="s")
    attach(fourth, ArtifactsBridge(store.open()))
    await restore(fourth, checkpoint_id)
    assert fourth.page_table.lookup("msg_2").artifact_id != readable
    assert await content(fourth, "msg_2") == "the content of msg_2"

    await refs.write_tomb("deleted", [archived])  # deleted by hand: a checkpoint naming it would not restore
    with pytest.raises(IntegrityError, match=f"page 'msg_1' is evicted to artifact {archived}, which was deleted"):
        await checkpoint(second, "turn 3")
    fifth = MemoryManager(session_id="s")
    attach(fifth, ArtifactsBridge(store.open()))
    if store.rig in ARCHIVING_RIGS:  # no copy can be read: the restore says so and changes nothing
        with pytest.raises(IntegrityError, match=r"'msg_1' of this checkpoint .* cannot be copied"):
            await restore(fifth, checkpoint_id)
        assert len(fifth.page_table) == 0
    else:
        await restore(fifth, checkpoint_id)
        assert fifth.page_table.lookup("msg_1").artifact_id != archived


@pytest.mark.bridge_only
async def test_routine_maintenance_beside_a_running_agent_never_fails_it(store: Store) -> None:
    rng = random.Random(24)
    vm = MemoryManager(session_id="s")
    agent_bridge = attach(vm, ArtifactsBridge(store.open()))
    names = [f"msg_{i}" for i in range(scaled(12))]
    await pages(vm, *names)
    expected = {name: f"the content of {name}" for name in names}
    for name in names[1:]:
        assert await vm.evict_page(name, ChukTier.L3)
    latest = await checkpoint(vm, "turn 0")
    maintenance = session(store)  # in the agent's scope, where its checkpoints are
    done = asyncio.Event()

    async def maintain() -> int:
        sweeps = 0
        while not done.is_set():
            await gc(maintenance, grace=timedelta(0))
            for old in (await maintenance.list_checkpoints())[:-1]:
                await maintenance.delete_checkpoint(old)  # a retention of one, racing the agent's own
            sweeps += 1
        return sweeps

    running = asyncio.create_task(maintain())
    try:
        for turn in range(1, scaled(8) + 1):
            vm.new_turn()  # chuk allows two faults a turn
            for name in rng.sample(names[1:], 2):
                assert await content(vm, name) == expected[name]
                if rng.random() < 0.5:
                    vm._page_store[name].content = expected[name] = f"{name} changed in turn {turn}"
                assert await vm.evict_page(name, rng.choice([ChukTier.L2, ChukTier.L3]))
            previous, latest = latest, await checkpoint(vm, f"turn {turn}")
            await maintenance.delete_checkpoint(previous)
            await asyncio.sleep(0)
    finally:
        done.set()
        sweeps = await running
    assert sweeps >= 1
    restarted = MemoryManager(session_id="s")
    attach(restarted, ArtifactsBridge(store.open()))
    await restore(restarted, latest)
    for name in names[1:]:
        restarted.new_turn()
        assert await content(restarted, name) == expected[name]
    await agent_bridge.aclose()


@pytest.mark.bridge_only
def test_an_agent_driven_by_a_new_event_loop_each_call_keeps_its_pages(store: Store) -> None:
    vm = MemoryManager(session_id="s")
    bridge = ArtifactsBridge(store.open())
    attach(vm, bridge)
    asyncio.run(pages(vm, "msg_0", "msg_1", "msg_2"))
    for name in ("msg_1", "msg_2"):
        assert asyncio.run(vm.evict_page(name, ChukTier.L3))  # the lease renews on the loop that wrote it
    checkpoint_id = asyncio.run(checkpoint(vm, "sync code"))  # so a new loop writes a new one
    other = session(store)
    assert len(asyncio.run(fsck(other, verify=False)).in_progress) == 1  # each new lease released the last
    asyncio.run(other.delete_checkpoint(checkpoint_id))
    asyncio.run(gc(other, grace=timedelta(0)))
    for name in ("msg_1", "msg_2"):
        vm.new_turn()
        assert asyncio.run(content(vm, name)) == f"the content of {name}"
    asyncio.run(bridge.aclose())  # on yet another loop than the lease's
    assert asyncio.run(fsck(other, verify=False)).in_progress == []
    assert asyncio.run(gc(other, grace=timedelta(0))).orphans_deleted  # msg_1 and msg_2: nothing refers to them


async def test_an_agent_restoring_the_latest_checkpoint_gets_the_last_one_made_whatever_the_clocks(
    store: Store,
) -> None:
    """A host a day ahead checkpoints first, a host with the right clock restores that and checkpoints again: the
    latest listed checkpoint is the second, though its id is dated a day earlier."""
    ahead = MemoryManager(session_id="agent")
    backend = store.open()
    async with ArtifactsBridge(backend, clock=SkewedClock(timedelta(days=1))) as bridge:
        attach(ahead, bridge)
        await pages(ahead, "msg_0", "msg_1")
        assert await ahead.evict_page("msg_1", ChukTier.L3)
        first = await checkpoint(ahead, "ahead")
        await until_the_store_passes(backend, scope_prefix(None, "agent") + first)
    right = MemoryManager(session_id="agent")
    async with ArtifactsBridge(store.open()) as bridge:
        agent = attach(right, bridge).bridge  # the session's scope, where its checkpoints are
        await restore(right, (await agent.list_checkpoints())[-1])
        await pages(right, "msg_2")
        second = await checkpoint(right, "right")
    assert second < first  # by the ids, the first is the newer
    restarted = MemoryManager(session_id="agent")
    async with ArtifactsBridge(store.open()) as bridge:
        agent = attach(restarted, bridge).bridge
        assert await agent.list_checkpoints() == [first, second]
        await restore(restarted, (await agent.list_checkpoints())[-1])
        assert sorted(restarted.page_table.entries) == ["msg_0", "msg_1", "msg_2"]


async def _delete_page_and_prune_its_tomb(store: Store, artifact: str) -> None:
    other = session(store)
    assert await other.delete_page(artifact)
    assert (await gc(other, grace=timedelta(0), tomb_retention=timedelta(0))).tombs_pruned


async def _delete_page(store: Store, artifact: str) -> None:
    assert await session(store).delete_page(artifact)


async def _remove_by_hand(store: Store, artifact: str) -> None:
    await store.open().delete(scope_prefix(None, "s") + artifact)  # no tomb, no protocol: as by a person


DELETIONS = {
    "delete_page, its tomb pruned": _delete_page_and_prune_its_tomb,
    "delete_page, its tomb kept": _delete_page,
    "removed by hand": _remove_by_hand,
}


async def test_drop_missing_keeps_a_page_that_is_there_but_not_as_stored(store: Store) -> None:
    """``drop_missing`` drops only what is gone: an artifact replaced by other bytes (damage) fails the checkpoint
    with or without it, and the manager keeps the page."""
    vm = MemoryManager(session_id="s")
    attach(vm, ArtifactsBridge(store.open()))
    await pages(vm, "msg_0", "msg_1")
    assert await vm.evict_page("msg_1", ChukTier.L3)
    backend = store.open()
    stranger = await session(store).store_page(MemoryPage(page_id="msg_1", modality=Modality.TEXT))
    data = await backend.get(scope_prefix(None, "s") + stranger)
    assert data is not None
    await backend.put(scope_prefix(None, "s") + vm.page_table.lookup("msg_1").artifact_id, data)
    for drop_missing in (False, True):
        with pytest.raises(IntegrityError, match=r"page 'msg_1' .*is not as it was stored"):
            await checkpoint(vm, "damaged", drop_missing=drop_missing)
    assert "msg_1" in vm.page_table.entries
    assert await session(store).list_checkpoints() == []


@pytest.mark.parametrize("deletion", DELETIONS)
async def test_a_page_deleted_under_a_running_agent_is_never_listed_and_the_error_says_what_to_do(
    store: Store, deletion: str
) -> None:
    """Another process deletes an evicted page the agent still refers to: no checkpoint naming it is listed (the
    agent shows each evicted page stored before its manifest is written, tombs or none), the error names the page
    and the way on, and ``drop_missing=True`` checkpoints without it. An archived page still needs no read."""
    vm = MemoryManager(session_id="s")
    attach(vm, ArtifactsBridge(store.open()))
    await pages(vm, "msg_0", "msg_1", "msg_2", "msg_3")
    assert await vm.evict_page("msg_1", ChukTier.L4)
    for name in ("msg_2", "msg_3"):
        assert await vm.evict_page(name, ChukTier.L3)
    first = await checkpoint(vm, "before")
    await DELETIONS[deletion](store, vm.page_table.lookup("msg_2").artifact_id)
    with pytest.raises(IntegrityError, match=r"page 'msg_2' .*does not hold.*drop_missing=True"):
        await vm.handle_fault("msg_2")

    for _ in range(2):  # every checkpoint refuses, the same way, while the manager refers to the page
        with pytest.raises(IntegrityError, match=r"page 'msg_2' .*drop_missing=True"):
            await checkpoint(vm, "after")
    assert await session(store).list_checkpoints() == [first]
    assert "msg_2" in vm.page_table.entries  # left as it was

    second = await checkpoint(vm, "without it", drop_missing=True)
    assert "msg_2" not in vm.page_table.entries
    assert "msg_2" not in [hit.page_id for hit in (await vm.search_pages("msg_2")).results]
    restarted = MemoryManager(session_id="s")
    attach(restarted, ArtifactsBridge(store.open()))
    await restore(restarted, second)
    assert sorted(restarted.page_table.entries) == ["msg_0", "msg_1", "msg_3"]
    assert await content(restarted, "msg_3") == "the content of msg_3"
    meta = await session(store).get_metadata(restarted.page_table.lookup("msg_1").artifact_id)
    assert meta is not None
    assert meta.archived is (store.rig in ARCHIVING_RIGS)  # checkpointed twice and restored, never read
