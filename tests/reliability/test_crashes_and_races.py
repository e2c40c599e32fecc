"""Crashes and races, on every backend. Volumes scale with ``TIERSTORE_SOAK`` (``tests/soak.py``).

* A writer process is SIGKILLed at a random step of a checkpoint (12 times on the local disk, 4 per cloud rig):
  no partial checkpoint is ever listed or restorable; once the killed writers' leases expire, ``fsck`` finds every
  orphan and stray and ``gc`` removes them, and the earlier checkpoint still restores intact. Most kills must land
  mid-checkpoint (the writer's lease is there and its checkpoint is not), or the test proves nothing. The
  in-memory store lives in one process, so there the checkpoint task is cancelled at a random step instead.
  Steps are counted, never timed (a storage call of the writer; in memory, a step of the event loop): a delay on
  the wall clock, drawn from one timed checkpoint, lands after the checkpoint whenever the machine is less busy
  than when it was timed.
* Two processes store 100 pages each into one store (``atomic_create``: on LocalStack too): no id is issued twice
  and no object is overwritten. Then the same with byte-identical pages (a fifth as many): every call still gets
  an id of its own, and deleting one process's artifacts leaves every one of the other's.
* Two processes checkpoint, restore and delete checkpoints concurrently (8 rounds each): every listed checkpoint
  restores.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
from collections.abc import Awaitable
from datetime import timedelta

import pytest

from tests.conftest import LOCAL_RIGS, Store
from tests.reliability.figures import record
from tests.rigs.child import CHILD_LEASE_TTL, SAME_PAGE, churn
from tests.soak import scaled
from tierstore import ArtifactsBridge, MemoryPage, Modality
from tierstore.backends.base import StorageBackend
from tierstore.maintenance import fsck, gc
from tierstore.protocol.records import STORE_TIME_RESOLUTION

LOCAL_CRASHES = scaled(12, override="TIERSTORE_CRASHES")
"""Kills on the local disk, where a kill can also cut a file write short; cancellations in memory."""
CLOUD_CRASHES = scaled(4, override="TIERSTORE_CRASHES")
"""Kills per cloud rig: a cloud object is written whole or not at all, so a kill there leaves the states it leaves
anywhere (pages written, a lease, no manifest); what varies is the moment, asserted to be mid-checkpoint."""
RACE_PAGES = scaled(100, override="TIERSTORE_RACE_PAGES")
"""Per process. The processes' block claims race when they start (each claims one block of 1,000 numbers, the two
claims at once; a second claim each would take 1,000 pages a process); more pages check more ids, not more races."""
CHURN_ROUNDS = scaled(8, override="TIERSTORE_CHURN_ROUNDS")
"""Per process: 16 checkpoint/delete rounds interleaved per rig, on LocalStack too."""
CHECKPOINT_PAGES = 80
"""New pages in each killed writer's checkpoint: some hundred storage calls for a kill to land at."""


def _pages(n: int, tag: str) -> list[MemoryPage]:
    return [MemoryPage(page_id=f"base{i}", modality=Modality.TEXT, content=f"{tag} {i}") for i in range(n)]


async def _every_listed_checkpoint_restores(bridge: ArtifactsBridge) -> int:
    listed = await bridge.list_checkpoints()
    for checkpoint in listed:
        manifest = await bridge.get_checkpoint_manifest(checkpoint)
        assert manifest is not None
        restored = await ArtifactsBridge(backend=bridge.backend).restore_checkpoint(checkpoint)
        assert len(restored) == manifest.page_count
    return len(listed)


async def _leases(bridge: ArtifactsBridge) -> set[str]:
    return {lease.checkpoint for lease in await bridge.references("test").leases()}


def _kill_at_call(store: Store, base: str, at: int) -> bool:
    """Start a checkpointing child and SIGKILL it once the ``at``-th storage call of its checkpoint has gone out
    (it starts no later one: ``tests.rigs.child.StopAt``); True if it was killed, False if its checkpoint made
    fewer calls and completed."""
    child = store.run_child("checkpoint", CHECKPOINT_PAGES, base, str(at))
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    stopped = child.stdout.readline().strip() == "stopped"
    if stopped:
        child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    assert stopped or child.returncode == 0, f"the writer failed before its storage call {at}"
    return stopped


async def _calls_of_one_checkpoint(store: Store, base: str) -> int:
    """Storage calls a checkpoint of the child makes (its lease's renewals aside). A later child may make up to a
    tenth fewer: it may prove by version token (one ``head``) an artifact this one read whole, once this one's
    manifest recorded the token (on disk, only a file whose change time has settled has one). A draw past its
    manifest is then a kill between the manifest and the lease's release, not mid-checkpoint; the 40 % bound
    leaves room for those."""
    child = store.run_child("checkpoint", CHECKPOINT_PAGES, base)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    result = json.loads(await asyncio.to_thread(child.stdout.readline))
    await asyncio.to_thread(child.wait, 120)
    assert child.returncode == 0
    return int(result["calls"])


async def _loop_steps(work: Awaitable[object]) -> int:
    """Event-loop steps ``work`` takes to finish: the in-memory store never suspends, so a cancellation can land only
    between them, and their number, unlike the time they take, is the same however busy the machine is."""
    task = asyncio.ensure_future(work)
    steps = 0
    while not task.done():
        await asyncio.sleep(0)  # one step of the loop
        steps += 1
    await task
    return steps


@pytest.mark.one_data_path
async def test_killed_checkpoints_leave_nothing_listed_and_gc_cleans_up(store: Store, rig: str) -> None:
    backend = store.open()
    bridge = ArtifactsBridge(backend=backend, lease_ttl=CHILD_LEASE_TTL)
    base_pages = _pages(20, "base")
    base = await bridge.checkpoint(base_pages, name="base")
    rng = random.Random(1)
    killed = mid_checkpoint = 0
    crashes = LOCAL_CRASHES if rig in LOCAL_RIGS else CLOUD_CRASHES
    if backend.persistent:
        calls = await _calls_of_one_checkpoint(store, base)
        for _ in range(crashes):
            leases_before = await _leases(bridge)
            killed += await asyncio.to_thread(_kill_at_call, store, base, rng.randint(1, calls))
            left = await _leases(bridge) - leases_before
            mid_checkpoint += bool(left - set(await bridge.list_checkpoints()))
            await _every_listed_checkpoint_restores(bridge)
        assert mid_checkpoint >= crashes * 0.4, f"only {mid_checkpoint} of {crashes} kills landed mid-checkpoint"
    else:
        steps = await _loop_steps(bridge.checkpoint(_pages(200, "timing"), name="timing"))
        for attempt in range(crashes):
            writer = asyncio.ensure_future(bridge.checkpoint(_pages(200, f"crash {attempt}"), name="cancelled"))
            for _ in range(rng.randrange(1, steps)):  # after its first step, before its last
                await asyncio.sleep(0)
            if not writer.done():
                writer.cancel()
                killed += 1
                mid_checkpoint += 1
            await asyncio.gather(writer, return_exceptions=True)
            await _every_listed_checkpoint_restores(bridge)
        assert mid_checkpoint >= crashes * 0.4, (
            f"only {mid_checkpoint} of {crashes} cancellations landed mid-checkpoint"
        )
    # leases of killed writers (or abandoned ones) expire, also where the store counts whole seconds
    await asyncio.sleep((CHILD_LEASE_TTL + STORE_TIME_RESOLUTION).total_seconds() + 0.5)

    listed_before_gc = await _every_listed_checkpoint_restores(bridge)
    report = await fsck(bridge)
    assert report.ok, report.problems
    await gc(bridge, grace=timedelta(0))
    after = await fsck(bridge)
    assert after.orphans == []
    assert after.strays == []
    assert after.ok
    referenced: set[str] = set()
    for checkpoint in await bridge.list_checkpoints():
        manifest = await bridge.get_checkpoint_manifest(checkpoint)
        assert manifest is not None
        referenced.update(e.artifact_id for e in manifest.pages)
    assert set(await bridge.list_pages()) == referenced, "gc left an artifact no checkpoint references"
    assert await ArtifactsBridge(backend=backend).restore_checkpoint(base) == base_pages
    assert await _every_listed_checkpoint_restores(bridge) == listed_before_gc
    await backend.aclose()
    record("writers killed", killed, rig)
    record("writers killed mid-checkpoint", mid_checkpoint, rig)
    record("orphans found by fsck and removed by gc", len(report.orphans), rig)


async def _store_as(owner: int, backend: StorageBackend) -> list[str]:
    bridge = ArtifactsBridge(backend=backend)
    limit = asyncio.Semaphore(16)

    async def one(i: int) -> str:
        async with limit:
            return await bridge.store_page(
                MemoryPage(page_id=f"p{owner}_{i}", modality=Modality.TEXT, content=f"{owner}:{i}")
            )

    return list(await asyncio.gather(*(one(i) for i in range(RACE_PAGES))))


@pytest.mark.atomic_create
async def test_two_processes_storing_never_share_an_id(store: Store, rig: str) -> None:
    backend = store.open()
    try:
        issued: dict[int, list[str]]
        if backend.persistent:
            children = [store.run_child("store", RACE_PAGES, "16") for _ in range(2)]
            outputs = [await asyncio.to_thread(child.communicate, None, 900) for child in children]
            assert [child.returncode for child in children] == [0, 0]
            issued = {child.pid: json.loads(out[0]) for child, out in zip(children, outputs, strict=True)}
        else:  # two bridges in this process: the in-memory store cannot be shared between processes
            stored = await asyncio.gather(*(_store_as(owner, backend) for owner in (1, 2)))
            issued = dict(zip((1, 2), stored, strict=True))
        everything = [artifact for ids in issued.values() for artifact in ids]
        assert len(everything) == 2 * RACE_PAGES
        assert len(set(everything)) == len(everything), "an artifact id was issued twice"
        reader = ArtifactsBridge(backend=backend)
        limit = asyncio.Semaphore(32)

        async def owner_of(artifact: str) -> str:
            async with limit:
                page = await reader.load_page(artifact)
            assert page is not None
            return str(page.content).split(":")[0]

        for owner, ids in issued.items():
            owners = await asyncio.gather(*(owner_of(a) for a in ids))
            assert set(owners) == {str(owner)}, "an object was overwritten by the other writer"
        record("concurrent store_page calls raced", len(everything), rig)
    finally:
        await backend.aclose()


@pytest.mark.atomic_create
async def test_two_processes_storing_identical_pages_get_ids_of_their_own(store: Store, rig: str) -> None:
    backend = store.open()
    count = max(RACE_PAGES // 5, 10)
    try:
        if backend.persistent:
            children = [store.run_child("store-same", count, "16") for _ in range(2)]
            outputs = [await asyncio.to_thread(child.communicate, None, 900) for child in children]
            assert [child.returncode for child in children] == [0, 0]
            first, second = (json.loads(out[0]) for out in outputs)
        else:
            bridges = [ArtifactsBridge(backend=backend) for _ in range(2)]
            limit = asyncio.Semaphore(32)

            async def one(bridge: ArtifactsBridge) -> str:
                async with limit:
                    return await bridge.store_page(SAME_PAGE)

            issued = await asyncio.gather(*(one(bridges[i % 2]) for i in range(2 * count)))
            first, second = list(issued[0::2]), list(issued[1::2])
        assert len(set(first) | set(second)) == 2 * count, "two store_page calls got one artifact"
        reader = ArtifactsBridge(backend=backend)
        limit = asyncio.Semaphore(32)

        async def delete(artifact: str) -> bool:
            async with limit:
                return await reader.delete_page(artifact)

        async def load(artifact: str) -> MemoryPage | None:
            async with limit:
                return await reader.load_page(artifact)

        assert all(await asyncio.gather(*(delete(a) for a in first)))
        assert await asyncio.gather(*(load(a) for a in second)) == [SAME_PAGE] * count
        record("identical pages stored at once by two writers", 2 * count, rig)
    finally:
        await backend.aclose()


@pytest.mark.atomic_create
async def test_concurrent_checkpoint_and_delete_keep_listed_checkpoints_restorable(store: Store, rig: str) -> None:
    backend = store.open()
    try:
        if backend.persistent:
            children = [store.run_child("churn", CHURN_ROUNDS) for _ in range(2)]
            outputs = [await asyncio.to_thread(child.communicate, None, 900) for child in children]
            assert [child.returncode for child in children] == [0, 0]
            failures = [f for out in outputs for f in json.loads(out[0])]
        else:
            results = await asyncio.gather(*(churn(ArtifactsBridge(backend=backend), CHURN_ROUNDS) for _ in range(2)))
            failures = [f for r in results for f in r]
        assert failures == []
        bridge = ArtifactsBridge(backend=backend)
        assert await _every_listed_checkpoint_restores(bridge) >= 1
        report = await fsck(bridge)
        assert report.ok, report.problems
        record("checkpoint/delete rounds raced", 2 * CHURN_ROUNDS, rig)
    finally:
        await backend.aclose()
