"""Backends wrapped to observe or fail calls, so tests can interrupt the bridge at exact points.

They wrap a real backend of the rig under test; every call still reaches it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from tierstore.backends.base import Buffer, ListEntry, StorageBackend
from tierstore.enums import StorageTier
from tierstore.errors import BackendUnavailableError, TierstoreError


class Observed:
    """Delegates every call to ``inner``; counts puts by key prefix, can fail chosen puts, and can check each
    put's arguments (``check_put(key, metadata, tags)``) before it goes out."""

    def __init__(
        self,
        inner: StorageBackend,
        fail_put: Callable[[str], bool] = lambda key: False,
        check_put: Callable[[str, Mapping[str, str] | None, Mapping[str, str] | None], object] | None = None,
        error: type[TierstoreError] = BackendUnavailableError,
    ) -> None:
        self.inner = inner
        self.fail_put = fail_put
        self.error = error
        self.check_put = check_put
        self.puts: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def put(
        self,
        key: str,
        data: Buffer,
        *,
        metadata: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        tier: StorageTier = StorageTier.L3,
        if_absent: bool = False,
    ) -> None:
        if self.check_put is not None:
            self.check_put(key, metadata, tags)
        if self.fail_put(key):
            raise self.error(f"injected failure writing {key}")
        self.puts[key.split("_", 1)[0]] += 1
        await self.inner.put(key, data, metadata=metadata, tags=tags, tier=tier, if_absent=if_absent)


class MoveAt:
    """Delegates to ``inner``; before the ``at``-th call of the checkpoint (the lease's renewals aside) it awaits
    ``move()`` to completion."""

    def __init__(self, inner: StorageBackend, at: int, move: Callable[[], Awaitable[str]]) -> None:
        self.inner = inner
        self.at = at
        self.move = move
        self.calls = 0
        self.outcome: str | None = None

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name in ("put", "get", "get_range", "head", "delete", "delete_many", "set_tier", "restore"):

            async def counted(*args: Any, **kwargs: Any) -> Any:
                await self._tick()
                return await attribute(*args, **kwargs)

            return counted
        return attribute

    def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        async def entries() -> AsyncIterator[ListEntry]:
            await self._tick()
            async for entry in self.inner.list(prefix):
                yield entry

        return entries()

    async def _tick(self) -> None:
        task = asyncio.current_task()
        if task is not None and task.get_name().startswith("tierstore-lease"):
            return
        self.calls += 1
        if self.calls == self.at:
            self.outcome = await self.move()


class Counted:
    """Delegates every call to ``inner`` and counts the requests it stands for, by call: one per call, and for a
    listing one per 1,000 keys listed (every cloud's page size, at most), at least one."""

    REQUESTS = ("put", "get", "get_range", "head", "delete", "delete_many", "set_tier", "restore")

    def __init__(self, inner: StorageBackend) -> None:
        self.inner = inner
        self.requests: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name in self.REQUESTS:

            async def counted(*args: Any, **kwargs: Any) -> Any:
                self.requests[name] += 1
                return await attribute(*args, **kwargs)

            return counted
        return attribute

    def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        async def entries() -> AsyncIterator[ListEntry]:
            listed = 0
            self.requests["list"] += 1
            async for entry in self.inner.list(prefix):
                listed += 1
                if listed % 1000 == 1 and listed > 1:
                    self.requests["list"] += 1
                yield entry

        return entries()

    def total(self) -> int:
        """Requests counted since the last :meth:`reset`."""
        return sum(self.requests.values())

    def reset(self) -> None:
        self.requests.clear()
