"""Crashes and races, on every backend.

* A writer process is SIGKILLed at random moments of a checkpoint (``TIERSTORE_CRASHES`` times, default 20): no
  partial checkpoint is ever listed or restorable, ``fsck`` finds every orphan and ``gc`` removes them, and the
  earlier checkpoint still restores intact. The in-memory store lives in one process, so there the checkpoint
  task is cancelled at random moments instead.
* Two processes store ``TIERSTORE_RACE_PAGES`` pages each (default 5,000) into one store: no id is issued twice
  and no object is overwritten.
* Two processes checkpoint, restore and delete checkpoints concurrently: every listed checkpoint restores.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from datetime import timedelta

from tests.conftest import Store
from tests.reliability.figures import record
from tests.rigs.child import churn
from tierstore import ArtifactsBridge, MemoryPage, Modality
from tierstore.backends.base import StorageBackend
from tierstore.maintenance import fsck, gc

CRASHES = int(os.environ.get("TIERSTORE_CRASHES", "20"))
RACE_PAGES = int(os.environ.get("TIERSTORE_RACE_PAGES", "5000"))
CHURN_ROUNDS = int(os.environ.get("TIERSTORE_CHURN_ROUNDS", "15"))


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


def _kill_during_checkpoint(store: Store, base: str, delay: float) -> bool:
    """Start a checkpointing child and SIGKILL it ``delay`` seconds into its checkpoint; True if it was killed."""
    child = store.run_child("checkpoint", 40, base)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    time.sleep(delay)
    killed = child.poll() is None
    if killed:
        child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    return killed


async def _time_one_checkpoint(store: Store, base: str) -> float:
    child = store.run_child("checkpoint", 40, base)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    started = time.monotonic()
    await asyncio.to_thread(child.wait, 120)
    assert child.returncode == 0
    return time.monotonic() - started


async def test_killed_checkpoints_leave_nothing_listed_and_gc_cleans_up(store: Store, rig: str) -> None:
    backend = store.open()
    bridge = ArtifactsBridge(backend=backend)
    base_pages = _pages(20, "base")
    base = await bridge.checkpoint(base_pages, name="base")
    rng = random.Random(1)
    killed = 0
    if backend.persistent:
        duration = await _time_one_checkpoint(store, base)
        for _ in range(CRASHES):
            delay = rng.uniform(0, duration * 1.2)
            killed += await asyncio.to_thread(_kill_during_checkpoint, store, base, delay)
            await _every_listed_checkpoint_restores(bridge)
    else:
        started = time.monotonic()
        await bridge.checkpoint(_pages(200, "timing"), name="timing")
        duration = time.monotonic() - started
        for attempt in range(CRASHES):
            writer = asyncio.ensure_future(bridge.checkpoint(_pages(200, f"crash {attempt}"), name="cancelled"))
            await asyncio.sleep(rng.uniform(0, duration))
            if not writer.done():
                writer.cancel()
                killed += 1
            await asyncio.gather(writer, return_exceptions=True)
            await _every_listed_checkpoint_restores(bridge)

    listed_before_gc = await _every_listed_checkpoint_restores(bridge)
    report = await fsck(bridge)
    assert report.ok, report.problems
    await gc(bridge, grace=timedelta(0))
    after = await fsck(bridge)
    assert after.orphans == []
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
    record("writers killed mid-checkpoint", killed, rig)
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
