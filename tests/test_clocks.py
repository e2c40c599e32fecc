"""Clocks: every host has its own, and none of them decides what is safe to delete."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.wrappers import Observed
from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality, ids
from tierstore.backends.base import StorageBackend
from tierstore.backends.memory import InMemoryBackend
from tierstore.clock import SYSTEM_CLOCK, Clock, ManualClock, SkewedClock
from tierstore.errors import (
    AccessDeniedError,
    BackendUnavailableError,
    IntegrityError,
    InvalidInputError,
    StorageFullError,
    TierstoreError,
)
from tierstore.maintenance import fsck, gc

START = datetime(2030, 1, 1, tzinfo=UTC)


def test_a_manual_clock_moves_only_when_told_and_its_wall_clock_can_step_back() -> None:
    clock = ManualClock(START)
    assert (clock.now(), clock.monotonic()) == (START, 0.0)
    clock.advance(timedelta(minutes=2))
    clock.step(-timedelta(hours=1))
    assert clock.now() == START + timedelta(minutes=2) - timedelta(hours=1)
    assert clock.monotonic() == 120.0
    with pytest.raises(ValueError, match="only advances"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="aware"):
        ManualClock(datetime(2030, 1, 1))


def test_every_clock_is_a_clock_and_other_things_are_refused() -> None:
    for clock in (SYSTEM_CLOCK, ManualClock(), SkewedClock(timedelta(days=1))):
        assert isinstance(clock, Clock)
    assert SkewedClock(timedelta(days=1)).now() - SYSTEM_CLOCK.now() > timedelta(hours=23)
    with pytest.raises(InvalidInputError, match="clock"):
        ArtifactsBridge(clock=datetime.now)  # type: ignore[arg-type]


async def test_names_and_records_take_the_hosts_time_and_objects_the_stores() -> None:
    store_clock, host_clock = ManualClock(START), ManualClock(START + timedelta(days=3))
    backend = InMemoryBackend(clock=store_clock)
    bridge = ArtifactsBridge(backend=backend, clock=host_clock)
    checkpoint = await bridge.checkpoint([MemoryPage(page_id="p", modality=Modality.TEXT, content="x")], "c")
    assert checkpoint.startswith("ckpt_20300104T")
    assert {e.last_modified async for e in backend.list()} == {START}


class _HeldAtManifest:
    """A backend whose checkpoint-manifest writes wait until ``release`` is set: a checkpoint held mid-run, its
    lease written and its pages uploaded."""

    def __init__(self, inner: StorageBackend) -> None:
        self.inner = inner
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def put(self, key: str, data: Any, **options: Any) -> None:
        if key.startswith(ids.CHECKPOINT_PREFIX):
            self.reached.set()
            await self.release.wait()
        await self.inner.put(key, data, **options)


def _pages(prefix: str, count: int) -> list[MemoryPage]:
    return [MemoryPage(page_id=f"{prefix}{i}", modality=Modality.TEXT, content=f"{prefix} {i}") for i in range(count)]


async def _crash_a_checkpoint(backend: StorageBackend, clock: Clock) -> list[str]:
    """A crashed checkpoint whose lease is gone: its pages are fresh orphans. Returns them."""
    before = set(await ArtifactsBridge(backend=backend).list_pages())
    failing = Observed(backend, fail_put=lambda key: key.startswith(ids.CHECKPOINT_PREFIX), error=AccessDeniedError)
    failing.delete_many = _refuse  # type: ignore[attr-defined]
    with pytest.raises(AccessDeniedError):
        await ArtifactsBridge(backend=failing, clock=clock).checkpoint(_pages("o", 3), name="crashed")
    await backend.delete_many([entry.key async for entry in backend.list(ids.INTENT_PREFIX)])
    return sorted(set(await ArtifactsBridge(backend=backend).list_pages()) - before)


async def _refuse(*args: object) -> None:
    raise BackendUnavailableError("injected: clean-up fails too")


# Hosts whose clocks are wrong in every way at once: a day ahead, a day behind, a month ahead, and one that steps
# back an hour between two runs (a correction), then jumps ahead a year.
_COLLECTOR_OFFSETS = [timedelta(days=1), -timedelta(days=1), timedelta(days=30), timedelta(days=30, hours=-1)]


async def test_no_wrong_clock_lets_gc_take_what_is_live_or_young(backend: StorageBackend) -> None:
    writer_clock = ManualClock(datetime.now(UTC) - timedelta(days=1))  # a writer whose clock is a day behind
    writer = ArtifactsBridge(backend=backend, clock=writer_clock)
    stored = await writer.store_page(MemoryPage(page_id="live", modality=Modality.TEXT, content="stored"))
    deleted = await writer.store_page(MemoryPage(page_id="gone", modality=Modality.TEXT, content="deleted"))
    first = await writer.checkpoint(_pages("p", 4), name="first")
    assert await writer.delete_page(deleted)  # a fresh tomb, which no host's clock may prune
    orphans = await _crash_a_checkpoint(backend, SkewedClock(timedelta(days=2)))

    held = _HeldAtManifest(backend)
    holder = ArtifactsBridge(backend=held, clock=writer_clock)
    running = asyncio.create_task(holder.checkpoint([*_pages("p", 4), *_pages("n", 3)], name="second"))
    await asyncio.wait_for(held.reached.wait(), 60)
    writer_clock.step(-timedelta(hours=3))  # the writer's clock steps back while its checkpoint runs
    collector_clock = SkewedClock()
    collector = ArtifactsBridge(backend=backend, clock=collector_clock)
    before = set(await collector.list_pages())
    for offset in [*_COLLECTOR_OFFSETS, timedelta(days=365)]:
        collector_clock.offset = offset
        report = await gc(collector)
        assert (report.orphans_deleted, report.intents_removed, report.tombs_pruned) == ([], 0, 0), offset
        assert sorted(o.key for o in report.orphans_kept) == orphans, offset
        assert len((await fsck(collector)).in_progress) == 1, offset
        assert set(await collector.list_pages()) == before, offset
    held.release.set()
    second = await asyncio.wait_for(running, 60)

    assert await collector.load_page(stored) is not None
    assert await collector.load_page(deleted) is None
    for checkpoint, count in ((first, 4), (second, 7)):
        assert len(await collector.restore_checkpoint(checkpoint)) == count
    collector_clock.offset = -timedelta(days=1)
    assert sorted((await gc(collector, grace=timedelta(0))).orphans_deleted) == sorted(orphans)
    assert (await fsck(collector)).orphans == []
    for checkpoint, count in ((first, 4), (second, 7)):
        assert len(await collector.restore_checkpoint(checkpoint)) == count


async def test_no_wrong_clock_lets_delete_checkpoint_take_what_a_live_lease_names(backend: StorageBackend) -> None:
    """The sweep judges leases in the store's time at its pending tomb: a deleter whose clock is off either way
    neither takes what a running checkpoint reuses nor keeps what nothing names."""
    writer = ArtifactsBridge(backend=backend)
    for offset in [*_COLLECTOR_OFFSETS, timedelta(days=365), -timedelta(days=365)]:
        checkpoint = await writer.checkpoint(_pages(f"d{offset.days}_", 2), name="doomed")
        manifest = await writer.get_checkpoint_manifest(checkpoint)
        assert manifest is not None
        named, alone = (entry.artifact_id for entry in manifest.pages)
        running = ids.timestamped(ids.CHECKPOINT_PREFIX, writer.clock.now())
        lease = writer.references("test").lease(running, [named])  # a running checkpoint reusing ``named``
        await lease.start()
        try:
            await ArtifactsBridge(backend=backend, clock=SkewedClock(offset)).delete_checkpoint(checkpoint)
            assert await backend.head(named) is not None, f"a deleter {offset} off took what a live lease names"
            assert await backend.head(alone) is None, offset
        finally:
            await lease.release()


async def test_leases_orphans_and_tombs_age_in_the_stores_time_alone() -> None:
    store_clock = ManualClock(START)
    backend = InMemoryBackend(clock=store_clock)
    ttl = timedelta(minutes=10)
    writer = ArtifactsBridge(backend=backend, clock=ManualClock(START + timedelta(days=3)), lease_ttl=ttl)
    await writer.delete_page(await writer.store_page(MemoryPage(page_id="x", modality=Modality.TEXT, content="x")))
    failing = Observed(backend, fail_put=lambda key: key.startswith(ids.CHECKPOINT_PREFIX))  # an unknown outcome
    with pytest.raises(BackendUnavailableError):
        await ArtifactsBridge(backend=failing, clock=writer.clock, lease_ttl=ttl).checkpoint(_pages("a", 3), "lost")
    written = set(await writer.list_pages())
    assert len(written) == 3
    hosts = [ManualClock(START + timedelta(days=400)), ManualClock(START - timedelta(days=400))]
    # (store time since the writes, pages left, leases removed, orphans deleted, tombs pruned); each step runs on a
    # host whose clock is over a year off, ahead and behind in turn: only the store's time moves anything.
    steps = [
        (timedelta(0), 3, 0, 0, 0),
        (timedelta(minutes=9), 3, 0, 0, 0),  # the lease still protects what the lost manifest might name
        (timedelta(minutes=11), 3, 1, 0, 0),  # expired, but its pages are younger than the grace period
        (timedelta(minutes=61), 0, 0, 3, 0),
        (timedelta(days=7, minutes=-1), 0, 0, 0, 0),  # the tomb of the deleted page is kept for 7 days after its write
        (timedelta(days=7, minutes=2), 0, 0, 0, 1),
    ]
    for n, (elapsed, left, leases, orphans, tombs) in enumerate(steps):
        store_clock.advance(START + elapsed - store_clock.now())
        report = await gc(ArtifactsBridge(backend=backend, clock=hosts[n % 2]))
        outcome = (len(report.orphans_deleted), report.intents_removed, report.tombs_pruned)
        assert outcome == (orphans, leases, tombs), elapsed
        assert len(await writer.list_pages()) == left, elapsed


class _SlowTombListing:
    """Reading the tombs after the lease was renewed (W2) takes ``delay`` of the host's monotonic time, the first
    ``times`` times."""

    def __init__(self, inner: Observed, clock: ManualClock, delay: timedelta, times: int) -> None:
        self.inner, self.clock, self.delay, self.times = inner, clock, delay, times

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def list(self, prefix: str = "") -> Any:
        if prefix == ids.TOMB_PREFIX and self.inner.puts["intent"] >= 2 and self.times > 0:
            self.times -= 1
            self.clock.advance(self.delay)
        return self.inner.list(prefix)


@pytest.mark.parametrize("slow_rounds", [0, 1, 2, 3])
async def test_a_checkpoint_writes_its_manifest_only_soon_after_renewing_its_lease(slow_rounds: int) -> None:
    """Deleters judge a lease by when the store last wrote it, so the writer makes sure, by its own monotonic clock,
    that the manifest goes out well within the lease's time after the renewal that preceded the tomb check."""
    ttl = timedelta(minutes=10)
    host = ManualClock(START)
    observed = Observed(InMemoryBackend())
    bridge = ArtifactsBridge(backend=_SlowTombListing(observed, host, ttl / 2, slow_rounds), clock=host, lease_ttl=ttl)
    if slow_rounds == 3:  # it never could: it gives up without a manifest
        with pytest.raises(IntegrityError, match="lease could not be renewed in time"):
            await bridge.checkpoint(_pages("p", 2), name="slow")
        assert await bridge.list_checkpoints() == []
    else:
        assert len(await bridge.restore_checkpoint(await bridge.checkpoint(_pages("p", 2), name="slow"))) == 2
    assert observed.puts["intent"] == 1 + min(slow_rounds + 1, 3)  # the first write, then one renewal a round


@pytest.mark.parametrize("refusal", [StorageFullError, AccessDeniedError], ids=["full", "read-only"])
@pytest.mark.parametrize("where", ["memory", "filesystem"])
async def test_an_object_dated_in_the_future_ages_nothing_when_the_store_time_cannot_be_probed(
    tmp_path: Path, where: str, refusal: type[TierstoreError]
) -> None:
    """``gc`` on a store that takes no write (full, or a read-only credential) estimates the store's time from what
    it lists: a tomb dated a day ahead must not make fresh orphans old; once they are old by this host's clock
    too, they go."""
    clock = ManualClock(datetime.now(UTC))  # the memory store's clock and its host's; the disk's is the kernel's
    backend: StorageBackend = InMemoryBackend(clock=clock) if where == "memory" else FileSystemBackend(tmp_path)
    host: Clock = clock if where == "memory" else SYSTEM_CLOCK
    orphans = await _crash_a_checkpoint(backend, host)
    bridge = ArtifactsBridge(backend=backend, clock=host)
    clock.step(timedelta(days=1))
    assert await bridge.delete_page(await bridge.store_page(_pages("f", 1)[0]))
    clock.step(-timedelta(days=1))
    tombs = [entry.key async for entry in backend.list(ids.TOMB_PREFIX)]
    assert tombs
    if where == "filesystem":
        ahead = time.time() + 86400
        for key in tombs:
            os.utime(tmp_path / "objects" / key, (ahead, ahead))
    refusing = Observed(backend, fail_put=lambda key: key.startswith(ids.TOMB_PREFIX), error=refusal)
    collector = ArtifactsBridge(backend=refusing, clock=host)
    report = await gc(collector)
    assert report.orphans_deleted == [], "an object dated in the future aged fresh orphans past the grace period"
    assert sorted(o.key for o in report.orphans_kept) == orphans
    if where == "memory":
        clock.advance(timedelta(hours=2))
    else:
        for key in orphans:
            earlier = time.time() - 7200
            os.utime(tmp_path / "objects" / key, (earlier, earlier))
    assert sorted((await gc(collector, dry_run=True)).orphans_deleted) == orphans  # what a writable store would
