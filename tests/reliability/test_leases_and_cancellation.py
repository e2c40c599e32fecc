"""Checkpoints against maintenance and cancellation, on every backend.

* ``gc`` with no grace period, run over and over while a checkpoint uploads for many times its lease's lifetime,
  takes nothing from it: the checkpoint completes and restores. Its lease, renewed while it runs, protects it.
* A checkpoint is cancelled at every one of its storage calls in turn, once just before the call and once just
  after it took effect (an answer lost on the way back, or a disk write that finished in its thread). After each,
  every listed checkpoint restores; once the leases expire, ``gc`` leaves exactly what listed checkpoints and
  stored pages reference, and ``fsck`` is clean.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Literal

import pytest

from tests.conftest import Store
from tests.contract.conftest import text_page
from tests.reliability.figures import record
from tierstore import ArtifactsBridge, MemoryPage, StorageTier
from tierstore.backends.base import Buffer, StorageBackend
from tierstore.maintenance import fsck, gc
from tierstore.protocol.records import STORE_TIME_RESOLUTION

LEASE = timedelta(seconds=1)


class Slowed:
    """Delegates to ``inner``; every page upload first waits ``delay`` seconds (so the checkpoint outlives its lease
    however fast the machine is), and every ``gate``-th then waits until the test says another gc sweep has ended
    (``swept``; so sweeps run during the checkpoint however slow the machine makes them)."""

    def __init__(self, inner: StorageBackend, delay: float, gate: int) -> None:
        self.inner = inner
        self.delay = delay
        self.gate = gate
        self.uploads = 0
        self.swept = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def put(self, key: str, data: Buffer, **options: Any) -> None:
        if key.startswith("mem_"):
            self.uploads += 1
            await asyncio.sleep(self.delay)
            if self.uploads % self.gate == 0:
                self.swept.clear()
                await self.swept.wait()
        await self.inner.put(key, data, **options)


@pytest.mark.bridge_only
async def test_gc_never_takes_what_a_running_checkpoint_wrote(store: Store, rig: str) -> None:
    writer_backend, collector_backend = store.open(), store.open()
    try:
        slowed = Slowed(writer_backend, 0.05, gate=20)
        writer = ArtifactsBridge(backend=slowed, lease_ttl=LEASE, concurrency=2)
        collector = ArtifactsBridge(backend=collector_backend)
        pages = [text_page(f"slow{i}", f"content {i}") for i in range(60)]
        # A store to collect from before the checkpoint starts: gc refuses a path that holds no store yet.
        await writer.store_page(text_page("before", "a page stored before the checkpoint"))
        running = asyncio.ensure_future(writer.checkpoint(pages, name="slow"))
        sweeps = 0
        while not running.done():
            report = await gc(collector, grace=timedelta(0))
            assert report.orphans_deleted == [], "gc deleted an upload of a running checkpoint"
            sweeps += 1
            slowed.swept.set()
            await asyncio.sleep(0.01)  # the in-memory store never suspends: let the writer run
        checkpoint = await running
        assert await ArtifactsBridge(backend=collector_backend).restore_checkpoint(checkpoint) == pages
        assert (await fsck(collector)).ok
        assert sweeps >= 3, "the checkpoint did not outlive several gc sweeps, so the test proved nothing"
        record("gc sweeps run during a slow checkpoint without taking from it", sweeps, rig)
    finally:
        await writer_backend.aclose()
        await collector_backend.aclose()


When = Literal["before", "after"]


class CancelAt:
    """Delegates to ``inner``; cancels the calling task at its ``at``-th storage call, before or after the call."""

    def __init__(self, inner: StorageBackend, at: int, when: When) -> None:
        self.inner = inner
        self.at = at
        self.when = when
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if name not in {"put", "get", "get_range", "head", "delete", "delete_many"}:
            return value
        return self._counted(value)

    async def list(self, prefix: str = "") -> Any:
        if not self._tick():
            async for entry in self.inner.list(prefix):
                yield entry
            return
        if self.when == "before":
            raise asyncio.CancelledError
        entries = [entry async for entry in self.inner.list(prefix)]
        await self._cancel_me()
        for entry in entries:
            yield entry

    def _tick(self) -> bool:
        task = asyncio.current_task()
        if task is not None and task.get_name().startswith("tierstore-lease"):
            return False  # the lease's renewals run on their own schedule: not steps of the checkpoint
        self.calls += 1
        return self.calls == self.at

    def _counted(self, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            if not self._tick():
                return await call(*args, **kwargs)
            if self.when == "before":
                raise asyncio.CancelledError
            result = await call(*args, **kwargs)
            await self._cancel_me()
            return result

        return counted

    async def _cancel_me(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)


def _edited(pages: list[MemoryPage], round_: int) -> list[MemoryPage]:
    changed = [p.model_copy() for p in pages]
    for page in changed[::3]:
        page.content = f"round {round_}"
    for page in changed[1::3]:
        page.mark_accessed()
    return changed


async def _references(bridge: ArtifactsBridge) -> set[str]:
    referenced: set[str] = set()
    for checkpoint in await bridge.list_checkpoints():
        manifest = await bridge.get_checkpoint_manifest(checkpoint)
        assert manifest is not None
        referenced.update(e.artifact_id for e in manifest.pages)
        restored = await ArtifactsBridge(backend=bridge.backend).restore_checkpoint(checkpoint)
        assert len(restored) == manifest.page_count
    return referenced


@pytest.mark.bridge_only
@pytest.mark.parametrize("when", ["before", "after"])
async def test_a_checkpoint_cancelled_at_any_call_leaves_nothing_broken(
    backend: StorageBackend, when: When, rig: str
) -> None:
    bridge = ArtifactsBridge(backend=backend, lease_ttl=LEASE)
    stored = await bridge.store_page(text_page("kept", storage_tier=StorageTier.L2))
    pages = [text_page(f"p{i}", f"v0 {i}") for i in range(9)]
    await bridge.checkpoint(pages, name="base")
    cancelled = 0
    for at in itertools.count(1):  # until a checkpoint makes fewer calls than the one to cancel at
        attacked = CancelAt(backend, at=at, when=when)
        try:
            await ArtifactsBridge(backend=attacked, lease_ttl=LEASE).checkpoint(_edited(pages, at), name=f"c{at}")
        except asyncio.CancelledError:
            cancelled += 1
        else:
            assert attacked.calls < at, f"the cancellation at call {at} was swallowed"
            break
        await _references(bridge)
    assert cancelled >= 10
    # leases left by checkpoints cancelled mid-manifest expire, also where the store counts whole seconds
    await asyncio.sleep((LEASE + STORE_TIME_RESOLUTION).total_seconds() + 0.5)
    await gc(bridge, grace=timedelta(0))
    report = await fsck(bridge)
    assert report.ok, report.problems
    assert (report.orphans, report.strays) == ([], [])
    assert set(await bridge.list_pages()) == await _references(bridge) | {stored}
    record(f"checkpoints cancelled at each call ({when} it took effect)", cancelled, rig)
