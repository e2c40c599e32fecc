"""The writer's hold on its lease: :class:`LeaseKeeper` writes, renews and ends one checkpoint's (or agent's) lease.

Renewals run in a task of their own (named ``tierstore-lease ...``) every ``ttl / 4``; :meth:`LeaseKeeper.fresh` tells
the writer whether its last successful write is recent enough, by this process's monotonic clock, for a manifest to be
written while every deleter still sees the lease live (:mod:`tierstore.protocol` argues why ``ttl / 2``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Final

from tierstore import ids
from tierstore.backends.base import StorageBackend
from tierstore.clock import SYSTEM_CLOCK, Clock
from tierstore.codec import PLAIN, Codec
from tierstore.errors import BackendUnavailableError, TierstoreError
from tierstore.protocol.records import encode_lease, quietly

logger = logging.getLogger(__name__)
_pause = asyncio.sleep
"""How the renewal task waits (tests see the waits it asks for)."""

_RENEW_ATTEMPTS: Final = 3
RETRY_FAILED_RENEWAL: Final = 1.0
"""Seconds before a renewal that failed is tried again (instead of the next ``ttl / 4``)."""
_STOP_WAIT: Final = 60.0
"""Seconds a lease's end waits for a renewal in flight (one stuck past its own deadline must not hold it up)."""


class LeaseKeeper:
    """The writer's hold on its lease (:class:`~tierstore.protocol.records.Lease`): written at start, renewed in the
    background every ``ttl / 4`` while the checkpoint runs, deleted (or left to expire) at the end."""

    def __init__(
        self,
        backend: StorageBackend,
        checkpoint: str,
        reuse: Iterable[str],
        ttl: timedelta,
        clock: Clock = SYSTEM_CLOCK,
        codec: Codec = PLAIN,
    ) -> None:
        self._backend = backend
        self._clock = clock
        self._codec = codec
        self.key = ids.INTENT_PREFIX + checkpoint
        """The lease's key: ``intent_`` and the checkpoint id."""
        self._checkpoint = checkpoint
        self._reuse = sorted(set(reuse))
        self._ttl = ttl
        self._task: asyncio.Task[None] | None = None
        self._written_at: float | None = None
        """This process's monotonic time when the last write of the lease that succeeded was sent."""
        self._longest_gap = 0.0
        """The longest time between two successful writes of the lease since :meth:`mark`."""
        self.stalled = False
        """Whether two successful writes of the lease were ever ``ttl / 2`` or more apart since it was first written
        (not only since :meth:`mark`): an erasure (:mod:`tierstore.protocol.erasure`) may then have deleted what
        the writer uploaded or proved, and ended with its tomb, which no later W2 would see."""

    def fresh(self) -> bool:
        """Whether the lease was written less than ``ttl / 2`` ago, by this process's monotonic clock: time enough
        for the manifest to land while every deleter still sees the lease live (see :mod:`tierstore.protocol`)."""
        if self._written_at is None:
            return False
        return self._clock.monotonic() - self._written_at < self._ttl.total_seconds() / 2

    def mark(self) -> None:
        """Start measuring whether the lease stays held (W1: the renewal the writer's read of the tombs follows)."""
        self._longest_gap = 0.0

    async def held_throughout(self) -> bool:
        """Whether, since :meth:`mark`, no stretch of ``ttl / 2`` went by without a successful write of the lease, up
        to now, and the lease is still there: if a stretch did (the process was paused, or a write was slow), or a
        deleter removed the lease (``gc`` judging it expired as a renewal landed, on a store without conditional
        deletes), a deleter may have taken what it names."""
        if self._written_at is None:
            return False
        since_last = self._clock.monotonic() - self._written_at
        if max(self._longest_gap, since_last) >= self._ttl.total_seconds() / 2:
            return False
        try:
            return await self._backend.head(self.key) is not None
        except TierstoreError:
            return False

    async def _write(self, *, if_absent: bool) -> None:
        sent = self._clock.monotonic()
        await self._backend.put(self.key, self._record(), if_absent=if_absent)
        if self._written_at is not None:
            self._longest_gap = max(self._longest_gap, sent - self._written_at)
            self.stalled |= sent - self._written_at >= self._ttl.total_seconds() / 2
        self._written_at = sent if self._written_at is None else max(self._written_at, sent)

    def _record(self) -> bytes:
        return encode_lease(self._checkpoint, self._reuse, self._ttl, self._clock.now(), self._codec)[1]

    async def start(self) -> None:
        """Write the lease (create-if-absent) and start renewing it."""
        await self._write(if_absent=True)
        self._task = asyncio.get_running_loop().create_task(self._keep_renewing(), name=f"tierstore-lease {self.key}")

    async def renew(self) -> None:
        """Write the lease again with the time of now. The key is this checkpoint's alone, so the overwrite may be
        sent again when its answer was lost (a backend does not resend an overwrite whose outcome is unknown)."""
        for attempt in range(1, _RENEW_ATTEMPTS + 1):
            try:
                await self._write(if_absent=False)
                return
            except BackendUnavailableError:
                if attempt == _RENEW_ATTEMPTS:
                    raise

    async def _keep_renewing(self) -> None:
        period = self._ttl.total_seconds() / 4
        wait = period
        while True:
            await _pause(wait)
            try:
                await self.renew()
            except TierstoreError as exc:
                # A full disk, a read-only one, an outage: the lease ages meanwhile, so try again soon, for the
                # moment the store takes writes again is the moment a gc may judge the lease expired.
                wait = min(period, RETRY_FAILED_RENEWAL)
                logger.warning("lease %s could not be renewed (%s): trying again every %gs", self.key, exc, wait)
            else:
                wait = period

    async def _stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # Bounded: a renewal stuck past its own deadline must not hold up the checkpoint that owns it.
            await asyncio.wait({task}, timeout=_STOP_WAIT)

    async def release(self) -> None:
        """The checkpoint is complete or cleaned up: the lease goes."""
        await self._stop()
        await quietly(self._backend.delete(self.key))

    async def delete(self) -> None:
        """Delete the lease's record now, without stopping a renewal (an end from another event loop than the one
        it renews on, stopped there): a renewal sent before may write it again, and it then expires, as a killed
        writer's would."""
        await self._backend.delete(self.key)

    async def abandon(self) -> None:
        """Stop renewing but leave the lease to expire: what it protects may still be named by a manifest that
        is being written (a cancelled write that lands later)."""
        await self._stop()
