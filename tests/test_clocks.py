"""Clocks: every host has its own, and none of them decides what is safe to delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tierstore import ArtifactsBridge, MemoryPage, Modality
from tierstore.backends.memory import InMemoryBackend
from tierstore.clock import SYSTEM_CLOCK, Clock, ManualClock, SkewedClock
from tierstore.errors import InvalidInputError

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
