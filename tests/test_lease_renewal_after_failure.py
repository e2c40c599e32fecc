"""A lease renewal that fails (a full or read-only disk, an outage) is tried again within a second, not at the next
quarter of the lease's life: the moment the store takes writes again is when a ``gc`` could find the lease expired."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.wrappers import Observed
from tierstore.backends.memory import InMemoryBackend
from tierstore.errors import StorageFullError
from tierstore.protocol import keeper as keeper_module
from tierstore.protocol.keeper import RETRY_FAILED_RENEWAL, LeaseKeeper

TTL = timedelta(seconds=20)  # renewals every 5 s


async def test_a_failed_renewal_is_tried_again_within_a_second_and_lands_once_writes_are_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The renewal task's waits, as it asks for them: a quarter of the ttl while renewals land, a second after one
    failed, a quarter again once one landed."""
    full = False
    backend = Observed(InMemoryBackend(), fail_put=lambda key: full, error=StorageFullError)  # a full disk
    waits: list[float] = []
    outcomes: list[bool] = []
    turn = asyncio.Event()

    async def pause(seconds: float) -> None:
        waits.append(seconds)
        outcomes.append(not full)
        turn.set()
        await asyncio.sleep(0)

    monkeypatch.setattr(keeper_module, "_pause", pause)
    keeper = LeaseKeeper(backend, "ckpt_20261205T000000000000_00000000", [], TTL)  # type: ignore[arg-type]  # Observed delegates the rest
    await keeper.start()

    async def renewals(count: int) -> None:
        while len(waits) < count:
            turn.clear()
            await turn.wait()

    await renewals(2)  # the first wait, then a renewal that landed
    full = True
    await renewals(4)  # renewals that failed
    full = False
    await renewals(6)
    await keeper.release()
    quarter = TTL.total_seconds() / 4
    assert waits[:2] == [quarter, quarter]
    assert waits[2:4] == [RETRY_FAILED_RENEWAL, RETRY_FAILED_RENEWAL], waits
    assert waits[5] == quarter, waits
    assert quarter > RETRY_FAILED_RENEWAL
