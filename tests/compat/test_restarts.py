"""chuk agents restarted as new processes on one store (``tests.compat.agent``), on the local disk and on S3 (moto,
where L4 is GLACIER, an archive): what the model sees survives, nothing is copied, the store does not grow, and
``gc`` takes only what no checkpoint and no running agent refers to. An agent that ended, whichever way but a kill,
is no longer running for ``fsck`` and ``gc`` in another process; a killed one is until its lease expires."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.compat.agent import ENDS, SESSION, parse, run
from tests.conftest import ROOT
from tests.rigs import load
from tests.soak import scaled
from tierstore import ArtifactsBridge
from tierstore.backends.base import StorageBackend
from tierstore.chuk.state import STATE_PAGE_ID
from tierstore.maintenance.fsck import fsck
from tierstore.maintenance.gc import gc

AGENT_RIGS = [r for r in ("filesystem", "s3_moto") if r in os.environ.get("TIERSTORE_TEST_RIGS", r).split(",")]
ARCHIVES = {"s3_moto"}
"""Rigs whose L4 is an archive class (a read needs a restore first)."""

each_agent_rig = pytest.mark.parametrize("agent_rig", AGENT_RIGS)


class Agent:
    """Runs agent processes onto one store and looks at the store between them."""

    def __init__(self, rig: str, spec: dict[str, Any]) -> None:
        self.rig, self.spec = rig, spec

    def run(self, action: str, arg: str = "", *flags: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "tests.compat.agent", self.rig, json.dumps(self.spec), action, arg, *flags],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == (-signal.SIGKILL if "--crash" in flags else 0), done.stderr
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    async def run_here(self, action: str, arg: str = "", *flags: str) -> dict[str, Any]:
        """The same run in this process (a new MemoryManager and bridge, but not a new process)."""
        return await run(parse([self.rig, json.dumps(self.spec), action, arg, *flags]))

    def open(self) -> StorageBackend:
        backend: StorageBackend = load(self.rig).open_backend(self.spec)
        return backend

    async def objects(self) -> list[str]:
        """Every object in the store, a checkpoint's manifest counted as ``ckpt_``."""
        backend = self.open()
        try:
            keys = [entry.key async for entry in backend.list("")]
        finally:
            await backend.aclose()
        return sorted("ckpt_" if key.rpartition(".")[2].startswith("ckpt_") else key for key in keys)

    def session(self, session_id: str = SESSION) -> ArtifactsBridge:
        """A bridge onto an agent's session scope, where its pages, lease and checkpoints are."""
        return ArtifactsBridge(self.open(), session_id=session_id)

    async def referenced(self) -> set[str]:
        """Every artifact some listed checkpoint of the agent's session names."""
        async with self.session() as bridge:
            manifests = [await bridge.get_checkpoint_manifest(c) for c in await bridge.list_checkpoints()]
            return {e.artifact_id for m in manifests if m is not None for e in m.pages}

    async def pages(self) -> list[str]:
        async with self.session() as bridge:
            return await bridge.list_pages()


@pytest.fixture
def agent(fresh_store: Callable[[str], dict[str, Any]], agent_rig: str) -> Agent:
    return Agent(agent_rig, fresh_store(agent_rig))


def the_model_sees(report: dict[str, Any]) -> dict[str, Any]:
    return {k: report[k] for k in ("available", "working_set", "found", "l0", "pinned", "artifacts", "context")}


@each_agent_rig
async def test_restarts_with_nothing_changed_keep_what_the_model_sees_and_store_nothing(agent: Agent) -> None:
    first = await agent.run_here("new", "9")
    hints = {pid: hint for pid, _tier, hint in first["before"]["available"]}
    assert hints == {f"msg_{i}": f"topic {i} notes" for i in (1, 2, 4, 5, 7, 8)}  # evicted; 0, 3, 6 stay in L0
    objects = await agent.objects()
    base = first["checkpoint"]
    for _ in range(scaled(2)):
        restart = agent.run("restart", base, "--delete-base")  # a new process each time
        # What chuk's manifest and search_pages show the model, and where each evicted page lives, are the same.
        assert the_model_sees(restart["restored"]) == the_model_sees(first["before"])
        assert restart["restored"]["found"] == [f"msg_{i}" for i in range(9)]
        assert await agent.objects() == objects  # the new checkpoint replaced the old: nothing else stored
        base = restart["checkpoint"]
    assert sorted(first["before"]["artifacts"]) == ["msg_1", "msg_2", "msg_4", "msg_5", "msg_7", "msg_8"]
    if agent.rig in ARCHIVES:
        archived = restart["restored"]["archived"]
        assert sorted(archived) == ["msg_2", "msg_5", "msg_8"]  # still archived: neither read nor restored
        assert "restore_archived(vm, 'msg_2')" in archived["msg_2"]
    else:
        assert restart["restored"]["archived"] == {}
    assert (await gc(agent.session(), grace=timedelta(0))).orphans_deleted == []


@each_agent_rig
async def test_what_no_checkpoint_and_no_running_agent_refers_to_is_collected(agent: Agent) -> None:
    first = await agent.run_here("new", "9")
    # An agent that changes an evicted page stores it anew; one that only reads a page stores nothing.
    second = agent.run("restart", first["checkpoint"], "--change", "msg_1", "--fault", "msg_4")
    assert second["before"]["artifacts"]["msg_4"] == first["before"]["artifacts"]["msg_4"]
    changed = second["before"]["artifacts"]["msg_1"]
    assert changed != first["before"]["artifacts"]["msg_1"]
    # An agent killed after storing a page no checkpoint names (its lease taken for one second).
    agent.run("restart", second["checkpoint"], "--change", "msg_7", "--crash", "--lease-ttl", "1")
    third = await agent.run_here("restart", second["checkpoint"], "--change", "msg_4")
    bridge = agent.session()
    for old in (first["checkpoint"], second["checkpoint"]):
        assert await bridge.delete_checkpoint(old)
    await asyncio.sleep(1.5)  # the killed agent's lease, renewed last before it ended, lapses
    report = await gc(bridge, grace=timedelta(0))
    assert report.orphans_deleted  # the killed agent's msg_7 and the superseded msg_1 and msg_4
    assert set(await agent.pages()) == await agent.referenced()
    restarted = await agent.run_here("restart", third["checkpoint"])
    assert the_model_sees(restarted["restored"]) == the_model_sees(third["before"])
    assert changed == third["before"]["artifacts"]["msg_1"]
    assert STATE_PAGE_ID not in restarted["restored"]["artifacts"]


@each_agent_rig
async def test_an_agent_that_ended_any_way_but_a_kill_leaves_nothing_running_and_gc_takes_its_pages(
    agent: Agent,
) -> None:
    evicted: dict[str, list[str]] = agent.run("ends")  # one process, an agent ending each way, then exiting
    assert set(evicted) == set(ENDS)
    assert all(len(artifacts) == 2 for artifacts in evicted.values())  # each agent's msg_1 (L3) and msg_2 (L4)
    for way, artifacts in evicted.items():  # each agent in its session's scope (named after its way)
        bridge = agent.session(way)
        found = await fsck(bridge, verify=False)
        assert (way, found.in_progress) == (way, [])
        orphans = {o.key for o in found.orphans}
        assert orphans.issuperset(artifacts), way
        report = await gc(bridge, grace=timedelta(0))
        assert (report.in_progress, sorted(report.orphans_deleted)) == ([], sorted(orphans))
        assert await bridge.list_pages() == []


@each_agent_rig
async def test_a_killed_agent_is_running_until_its_lease_expires_and_gc_keeps_its_pages_meanwhile(
    agent: Agent,
) -> None:
    agent.run("new", "9", "--crash")  # killed before a checkpoint, its lease taken for 10 minutes
    bridge = agent.session()
    found = await fsck(bridge, verify=False)
    assert (len(found.in_progress), found.orphans) == (1, [])
    report = await gc(bridge, grace=timedelta(0))
    assert (report.orphans_deleted, [r.checkpoint for r in report.in_progress]) == ([], found.in_progress)
    assert report.in_progress[0].lease_expires is not None
    assert len(await bridge.list_pages()) == 6  # the lease lapsing is test_what_no_checkpoint_and_no_running_...
