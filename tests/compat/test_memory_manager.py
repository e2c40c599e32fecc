"""chuk-ai-session-manager's MemoryManager on tierstore storage (``tierstore.integrations.chuk``), end to end:
evict, fault back, checkpoint, restart, restore; on every rig, the stores of both runs opened afresh."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from chuk_ai_session_manager.memory import MemoryManager, MemoryPage as ChukPage, StorageTier as ChukTier

from tests.conftest import ROOT, Store
from tierstore import (
    ArchivedPageError,
    ArtifactsBridge,
    FileSystemBackend,
    InMemoryBackend,
    IntegrityError,
    InvalidInputError,
    MemoryPage,
    NotSupportedError,
    ObjectNotFoundError,
    StorageTier,
)
from tierstore.integrations.chuk import TierstoreBridge, attach, checkpoint, restore, restore_archived


def manager(store: Store, session_id: str = "sess_1") -> tuple[Any, TierstoreBridge]:
    vm = MemoryManager(session_id=session_id)
    return vm, attach(vm, ArtifactsBridge(store.open()))


async def conversation(vm: Any, count: int = 5) -> list[Any]:
    pages = [vm.create_page(f"turn {i}: " + "words " * 20, page_id=f"msg_{i}", hint=f"turn {i}") for i in range(count)]
    for page in pages:
        assert await vm.add_to_working_set(page)
    return pages


async def test_evicted_pages_go_to_tierstore_and_fault_back_as_chuks_pages(store: Store) -> None:
    vm, bridge = manager(store)
    await conversation(vm)
    assert await vm.evict_page("msg_1", ChukTier.L3)
    entry = vm.page_table.lookup("msg_1")
    assert (entry.tier, entry.artifact_id) == (ChukTier.L3, "mem_L3_1")
    assert "msg_1" not in vm.working_set.get_l0_page_ids()
    assert [p.page_id for p in vm.get_l0_pages()] == ["msg_0", "msg_2", "msg_3", "msg_4"]

    # The page is on the store, as a tierstore artifact, for any other bridge onto the manager's session.
    stored = await ArtifactsBridge(store.open(), session_id="sess_1").load_page("mem_L3_1")
    assert type(stored) is MemoryPage
    assert (stored.page_id, stored.session_id) == ("msg_1", "sess_1")

    result = await vm.handle_fault("msg_1", target_level=0)
    assert result.success, result.error
    assert type(result.page) is ChukPage
    assert result.page.content.startswith("turn 1: ")
    assert result.source_tier == ChukTier.L3
    assert vm.working_set.get_l0_page_ids() == ["msg_0", "msg_2", "msg_3", "msg_4", "msg_1"]
    assert "turn 1: " in vm.build_context().developer_message
    assert type(await bridge.load_page("mem_L3_1")) is ChukPage


async def test_checkpoint_restart_restore(store: Store) -> None:
    vm, _ = manager(store)
    pages = await conversation(vm)
    vm.pin_page("msg_0")
    assert await vm.evict_page("msg_1", ChukTier.L3)
    assert await vm.evict_page("msg_2", ChukTier.L2)
    faulted = await vm.handle_fault("msg_1", target_level=0)
    assert faulted.success
    assert await vm.evict_page("msg_3", ChukTier.L3)
    extra = vm.create_page({"facts": ["a", "b"]}, page_id="claim_1", size_tokens=7)  # created, never in L0
    checkpoint_id = await checkpoint(vm, "before_restart")

    # A new process: a new manager and a new bridge on the same store.
    restarted, _ = manager(store)
    restored = await restore(restarted, checkpoint_id)
    assert all(type(p) is ChukPage for p in restored)
    assert {p.page_id for p in restored} == {p.page_id for p in pages} | {"claim_1"}
    assert restarted.working_set.get_l0_page_ids() == ["msg_0", "msg_4", "msg_1"]
    assert restarted.working_set.is_pinned("msg_0")
    assert not restarted.working_set.is_pinned("msg_4")
    tiers = {pid: e.tier for pid, e in restarted.page_table.entries.items()}
    assert tiers == {"msg_0": "L0", "msg_1": "L0", "msg_4": "L0", "msg_2": "L2", "msg_3": "L3", "claim_1": "L1"}
    assert restarted.working_set.tokens_used == vm.working_set.tokens_used
    assert [p.content for p in restarted.get_l0_pages()] == [pages[0].content, pages[4].content, pages[1].content]
    claim = await restarted.load("claim_1", ChukTier.L1)
    assert (claim.content, claim.size_tokens) == (extra.content, 7)

    # The evicted page was stored anew, so the restored session does not need the checkpoint any more.
    assert await restarted._bridge.bridge.delete_checkpoint(checkpoint_id)
    result = await restarted.handle_fault("msg_3", target_level=0)
    assert result.success, result.error
    assert result.page.content == pages[3].content
    result = await restarted.handle_fault("msg_2", target_level=0)
    assert result.success, result.error


async def test_a_failed_restore_changes_nothing(store: Store) -> None:
    vm, bridge = manager(store)
    await conversation(vm, 3)
    assert await vm.evict_page("msg_0", ChukTier.L3)
    damaged = await checkpoint(vm, "damaged")
    manifest = await bridge.bridge.get_checkpoint_manifest(damaged)
    assert manifest is not None
    assert await bridge.delete_page(manifest.pages[-1].artifact_id)

    fresh, _ = manager(store)
    with pytest.raises(ObjectNotFoundError):
        await restore(fresh, "ckpt_20260101T000000000000_deadbeef")
    with pytest.raises(IntegrityError, match="missing"):
        await restore(fresh, damaged)
    assert (len(fresh.page_table), fresh.working_set.get_l0_page_ids()) == (0, [])


async def test_chuks_configure_bridge_keeps_tierstore_storage(store: Store) -> None:
    vm, bridge = manager(store)
    await vm.configure_bridge()  # chuk's call, with the manager's own session: the bridge it is bound to
    assert vm._bridge is bridge
    assert (bridge.session_id, bridge.bridge.session_id) == ("sess_1", "sess_1")
    with pytest.raises(InvalidInputError, match="'renamed' is not the session this bridge is bound to, 'sess_1'"):
        await vm.configure_bridge(session_id="renamed")  # chuk's relabelling: a scope is never changed
    assert vm._bridge is bridge
    assert bridge.is_persistent is store.open().persistent
    await conversation(vm, 1)
    assert await vm.evict_page("msg_0", ChukTier.L3)
    stats = bridge.get_stats()
    assert (type(stats).__module__.startswith("chuk_ai_session_manager"), stats.session_id) == (True, "sess_1")
    assert stats.pages_stored == 1
    with pytest.raises(NotSupportedError, match="TIERSTORE_URL"):
        await vm.configure_bridge(artifact_store=object())


async def test_attach_reads_tierstore_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERSTORE_URL", (tmp_path / "store").as_uri())
    vm = MemoryManager(session_id="from_env")
    bridge = attach(vm)
    assert bridge.is_persistent
    await conversation(vm, 2)
    assert await vm.evict_page("msg_0", ChukTier.L3)
    elsewhere = ArtifactsBridge(FileSystemBackend(tmp_path / "store"), session_id="from_env")
    assert await elsewhere.list_pages() == [vm.page_table.lookup("msg_0").artifact_id]
    assert await ArtifactsBridge(FileSystemBackend(tmp_path / "store")).list_pages() == []  # not at the root


async def test_misuse_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="MemoryManager"):
        attach(object())
    vm = MemoryManager()
    with pytest.raises(InvalidInputError, match=r"attach\(manager\)"):
        await checkpoint(vm, "not attached")
    bridge = attach(vm, ArtifactsBridge())
    with pytest.raises(InvalidInputError, match="L2, L3 or L4"):
        await bridge.store_page(vm.create_page("x", page_id="p"), ChukTier.L1)
    with pytest.raises(InvalidInputError, match="tierstore's or chuk's"):
        await bridge.store_page({"page_id": "p"})


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def test_tierstore_itself_never_imports_chuk() -> None:
    result = run_python("""
        import sys, tierstore
        from tierstore import bridge, models, ArtifactsBridge
        from tierstore.chuk import calls, legacy_json, page_table, working_set
        import tierstore.integrations
        assert not [m for m in sys.modules if m.startswith("chuk_ai_session_manager")], sorted(sys.modules)
    """)
    assert result.returncode == 0, result.stderr


def test_without_chuk_the_integration_names_the_extra() -> None:
    result = run_python("""
        import sys
        sys.modules["chuk_ai_session_manager"] = None  # as if it were not installed
        from tierstore import MissingDependencyError
        try:
            import tierstore.integrations.chuk
        except MissingDependencyError as exc:
            print(exc)
    """)
    assert result.returncode == 0, result.stderr
    assert "pip install 'tierstore[chuk]'" in result.stdout


async def test_a_fault_on_an_archived_page_says_so_instead_of_not_found() -> None:
    vm = MemoryManager()
    attach(vm, ArtifactsBridge(InMemoryBackend(archive_tiers=[StorageTier.L4])))
    await conversation(vm, 1)
    assert await vm.evict_page("msg_0", ChukTier.L4)
    with pytest.raises(ArchivedPageError, match=r"msg_0.*restore_archived\(vm, 'msg_0'\)") as raised:
        await vm.handle_fault("msg_0")
    assert raised.value.key == vm.page_table.lookup("msg_0").artifact_id
    assert (await restore_archived(vm, "msg_0")).state == "restored"
    result = await vm.handle_fault("msg_0")
    assert result.success, result.error
