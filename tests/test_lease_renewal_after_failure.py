"""A lease renewal that fails (a full or read-only disk, an outage) is tried again within a second, not at the next
quarter of the lease's life: the moment the store takes writes again is when a ``gc`` could find the lease expired."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import timedelta

from tierstore.backends.base import Body
from tierstore.backends.memory import InMemoryBackend
from tierstore.enums import StorageTier
from tierstore.errors import StorageFullError
from tierstore.protocol.keeper import RETRY_FAILED_RENEWAL, LeaseKeeper

TTL = timedelta(seconds=20)  # renewals every 5 s


class FullFor(InMemoryBackend):
    """Refuses every write as a full disk does while ``full`` is set, and notes when each lease write was tried."""

    def __init__(self) -> None:
        super().__init__()
        self.full = False
        self.tried: list[tuple[float, bool]] = []

    async def put(
        self,
        key: str,
        data: Body,
        *,
        metadata: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        tier: StorageTier = StorageTier.L3,
        if_absent: bool = False,
    ) -> None:
        self.tried.append((time.monotonic(), self.full))
        if self.full:
            raise StorageFullError("no space left on device")
        await super().put(key, data, metadata=metadata, tags=tags, tier=tier, if_absent=if_absent)


async def test_a_failed_renewal_is_tried_again_within_a_second_and_lands_once_writes_are_taken() -> None:
    backend = FullFor()
    keeper = LeaseKeeper(backend, "ckpt_20261205T000000000000_00000000", [], TTL)
    await keeper.start()
    backend.full = True
    while not any(full for _, full in backend.tried):  # noqa: ASYNC110 - the first renewal, at a quarter of the ttl, fails
        await asyncio.sleep(0.05)
    failed_at = max(at for at, full in backend.tried if full)
    backend.full = False
    while not any(not full and at > failed_at for at, full in backend.tried):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    landed_at = min(at for at, full in backend.tried if not full and at > failed_at)
    await keeper.release()
    # Tried again after RETRY_FAILED_RENEWAL (1 s), not after the next quarter of the ttl (5 s): the bound leaves
    # room for a loaded machine and still tells the two apart.
    assert landed_at - failed_at < TTL.total_seconds() / 4 - 1.5, landed_at - failed_at
    assert TTL.total_seconds() / 4 > RETRY_FAILED_RENEWAL
