"""Artifact ids that are unique across processes and restarts sharing one store.

``mem_{tier}_{n}``: on first use of a tier the allocator lists the store once (live artifacts and the tomb records
of deleted ones) and starts above the highest ``n`` it finds; each id is then claimed with a create-if-absent
write. On conflict (another process took it) it moves ahead by a random stride that doubles with each
consecutive conflict, so two writers that started from the same number drift apart instead of colliding on
every id; numbers may then have gaps. Ids are never reused while a tomb record of their deletion is kept, and
nothing is ever overwritten.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from tierstore import codec, ids
from tierstore.backends.base import StorageBackend
from tierstore.enums import StorageTier
from tierstore.errors import ConflictError

_MAX_STRIDE_DOUBLINGS = 10
_RESCAN_AFTER = 64
"""Consecutive conflicts after which the allocator lists the store again (a writer far ahead of this one)."""
_GIVE_UP_AFTER = 10_000


class IdAllocator:
    def __init__(self, backend: StorageBackend) -> None:
        self._backend = backend
        self._next: dict[StorageTier, int] = {}
        self._locks: dict[StorageTier, asyncio.Lock] = {}

    async def claim(self, tier: StorageTier, write: Callable[[str], Awaitable[None]]) -> str:
        """Run ``write(key)`` (a create-if-absent put) on fresh keys until one succeeds; returns that key."""
        conflicts = 0
        while True:
            number = await self._take(tier)
            key = ids.artifact_id(tier, number)
            try:
                await write(key)
                return key
            except ConflictError:
                conflicts += 1
                if conflicts >= _GIVE_UP_AFTER:
                    raise
                stride = random.randrange(1, 2 ** min(conflicts, _MAX_STRIDE_DOUBLINGS) + 1)  # noqa: S311
                self._next[tier] = max(self._next[tier], number + stride)
                if conflicts % _RESCAN_AFTER == 0:
                    await self._rescan(tier)

    async def _take(self, tier: StorageTier) -> int:
        if tier not in self._next:
            lock = self._locks.setdefault(tier, asyncio.Lock())
            async with lock:
                if tier not in self._next:
                    self._next[tier] = await self._highest(tier) + 1
        number = self._next[tier]
        self._next[tier] = number + 1
        return number

    async def _rescan(self, tier: StorageTier) -> None:
        self._next[tier] = max(self._next[tier], await self._highest(tier) + 1)

    async def _highest(self, tier: StorageTier) -> int:
        highest = 0
        prefix = ids.artifact_id(tier, 0)[:-1]
        async for entry in self._backend.list(prefix):
            parsed = ids.parse_artifact_id(entry.key)
            if parsed:
                highest = max(highest, parsed[1])
        async for entry in self._backend.list(ids.TOMB_PREFIX):
            data = await self._backend.get(entry.key)
            if data is None:
                continue
            for key in codec.decode_record(data).get("deleted", ()):
                parsed = ids.parse_artifact_id(key)
                if parsed and parsed[0] == tier:
                    highest = max(highest, parsed[1])
        return highest
