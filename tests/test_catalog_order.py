"""Catalog snapshots are ordered by the store's time, never by their names (the writers' wall clocks): a snapshot
named a day in the future by a host whose clock runs ahead, then one by a correct host, then one named a day in
the past, written in that order. A reader opens the last written; ``survey`` (gc, fsck) calls it current and the
other two superseded, so gc deletes them, never it."""

from __future__ import annotations

from datetime import timedelta

from tests.test_catalog_attacks import filled, listed
from tierstore.backends.memory import InMemoryBackend
from tierstore.catalog import Catalog
from tierstore.catalog.upkeep import collectable, survey
from tierstore.clock import ManualClock


async def _fold(backend: InMemoryBackend, host: ManualClock) -> str:
    entries = await listed(backend)
    catalog = Catalog(backend, {}, None, host)
    async for _pair in catalog.describe([entry for entry in entries if entry.key.startswith("obj_")]):
        pass
    assert await catalog.fold(at_least=1)
    assert catalog.source is not None
    return catalog.source


async def test_the_newest_snapshot_is_the_last_the_store_took_whatever_its_name() -> None:
    store_clock = ManualClock()
    backend = InMemoryBackend(clock=store_clock)
    await filled(backend)
    written = []
    for skew in (timedelta(days=1), timedelta(0), timedelta(days=-1)):
        host = ManualClock(store_clock.now() + skew)
        written.append(await _fold(backend, host))
        store_clock.advance(timedelta(minutes=1))
    future, correct, past = written
    assert future > correct > past  # by name, the wrong order
    opened = await Catalog.open(backend, await listed(backend))
    assert opened.source == past
    found = await survey(backend)
    assert found.current is not None
    assert found.current.key == past
    assert sorted(entry.key for entry in found.superseded) == sorted([future, correct])
    assert collectable(found, store_clock.now(), timedelta(0)) == sorted([future, correct])
