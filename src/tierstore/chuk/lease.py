"""What keeps a running chuk agent's stored pages alive, and lets ``gc`` take them once nothing needs them.

An attached agent holds a lease (:class:`~tierstore.protocol.LeaseKeeper`, an ``intent_`` record renewed in the
background) whose ``reuse`` names every artifact its page table refers to, and stamps its own writes with the lease's
id (object metadata ``ckpt``). Sweeps (``delete_checkpoint``, ``gc``) keep what a live lease names or owns, so:

* while the agent runs, nothing it refers to is swept. Its own writes are protected by their owner from the moment
  they land (``gc`` passes each orphan's owner to the sweep), and by name once the lease has been rewritten, which
  the agent does before any manifest can name them (:meth:`AgentLease.name`), so a ``delete_checkpoint`` sweep,
  which looks at names only, finds them named. Pages it took from a checkpoint are named before it relies on
  them, and a tomb seen right after (a deletion that may have missed the lease: the writer's W2 step of
  :mod:`tierstore.protocol`) is reported to the caller, who copies those pages or refuses them. A pending tomb older
  than the lease time is taken for the leftover of a deletion killed mid-way (see :meth:`AgentLease._tombs`);
  a deleted tomb always counts;
* what it stops referring to (a page stored again after a change) drops out of the lease at the next rewrite; and
  once the agent is gone (lease released, or expired ``lease_ttl`` after its last renewal), what no manifest names is
  an orphan that ``gc`` deletes after its grace period.

A rewrite is a new lease (a new id) written before the old one is deleted, so some lease names every referenced
artifact at every moment. A deleter lists leases before it reads them, so it could list the old lease, miss the new
one, and read the old one after it was deleted; such a deleter wrote its pending tomb before listing, so whenever a
pending tomb is there when the new lease is in place, the old lease is left to expire instead of being deleted.

Writes and rewrites are serialised (one lock), so a write never lands owned by a lease already deleted. The
renewal runs on the event loop the lease was written from; when the agent is next used from another loop (a new
``asyncio.run``), the lease is rewritten there and the old one released from there (its renewal stopped on its own
loop). An agent whose loop stalls for longer than ``lease_ttl`` loses this protection meanwhile: a page swept then
faults as ``IntegrityError`` (missing), never as another page.

How an agent ends, and when its lease goes: ``aclose()`` of the bridge ``attach`` returns (that agent alone) or of
the bridge it was given (every agent attached with it), or leaving ``async with`` either, releases it at once, from
whichever loop (closing a ``SyncBridge`` over it does not: that closes only its own loop); an agent dropped without
being closed (its manager and bridge collected) has its lease released on its loop while that loop runs; a process
that exits normally without closing releases it as it exits (an ``atexit`` hook, on a loop of its own, waiting 5 s
at most: a lease it could not delete by then expires); a process killed (SIGKILL, or SIGTERM without a handler)
leaves it to expire ``lease_ttl`` after its last renewal. An agent used again after a release takes a new lease
naming what the old one named; what ``gc`` took meanwhile faults as missing. A forked child never releases its
parent's lease.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from tierstore import ids
from tierstore.bridge import ArtifactsBridge
from tierstore.enums import StorageTier
from tierstore.errors import TierstoreError
from tierstore.models import CheckpointEntry, MemoryPage
from tierstore.protocol import LeaseKeeper, References, Tomb, as_utc

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Threats:
    """What tombs say of some artifacts right after the lease named them."""

    deleted: frozenset[str] = frozenset()
    """Named by a deleted tomb: gone, or about to go."""
    pending: frozenset[str] = frozenset()
    """Named by a deletion that may still run and may have missed the lease: wait for it, or do not rely on them."""


class AgentLease:
    """The lease of one running agent on one store (see the module docstring)."""

    def __init__(self, refs: References) -> None:
        self._refs = refs
        self._lease: LeaseKeeper | None = None
        self._owner = ""
        self._named: frozenset[str] = frozenset()
        self._written: set[str] = set()
        """Written under the current lease since it was written: protected by their owner, not yet by name."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = os.getpid()
        """The process that wrote the current lease: only it ends the lease."""
        self._lock: asyncio.Lock | None = None
        self._dropped: weakref.finalize[..., AgentLease] | None = None
        """Releases the current lease on its loop if this object is collected (the agent dropped, never closed)."""
        _LIVE.add(self)

    @property
    def owner(self) -> str:
        """The id the current lease protects writes under ("" before the first write)."""
        return self._owner

    def _guard(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock = asyncio.Lock()
        return self._lock

    async def store(
        self, bridge: ArtifactsBridge, page: MemoryPage, tier: StorageTier, reuse: CheckpointEntry | None
    ) -> CheckpointEntry:
        """Store ``page`` owned by this agent's live lease (or return ``reuse`` when the page still equals it)."""
        async with self._guard():
            if self._lease is None or self._loop is not asyncio.get_running_loop():
                await self._rewrite(self._named | self._written)
            entry = await bridge.store_leased(page, tier, owner=self._owner, reuse=reuse)
            if entry.artifact_id not in self._named:
                self._written.add(entry.artifact_id)
            return entry

    async def name(self, artifacts: Iterable[str]) -> Threats:
        """Make the live lease name exactly ``artifacts`` (every artifact the agent refers to); returns what tombs
        say of them right after. Nothing when the lease named them already (it has protected them since)."""
        wanted = frozenset(artifacts)
        if not wanted and self._lease is None:
            return Threats()
        async with self._guard():
            current = self._lease is not None and self._loop is asyncio.get_running_loop()
            if current and wanted == self._named and not self._written:
                return Threats()
            return _within(await self._rewrite(wanted), wanted)

    async def threats(self, artifacts: Iterable[str]) -> Threats:
        """What tombs say now of ``artifacts`` (named by the lease): a pending deletion may have ended meanwhile."""
        wanted = frozenset(artifacts)
        return _within((await self._tombs())[0], wanted)

    async def _rewrite(self, artifacts: frozenset[str]) -> Threats:
        loop = asyncio.get_running_loop()
        owner = ids.timestamped(ids.CHECKPOINT_PREFIX, datetime.now(UTC))
        lease = self._refs.lease(owner, artifacts)
        await lease.start()
        old, old_loop, old_pid = self._lease, self._loop, self._pid
        self._lease, self._owner, self._named, self._loop = lease, owner, artifacts, loop
        self._pid, self._written = os.getpid(), set()
        self._on_drop(lease)
        threats, sweeping = await self._tombs()
        if old is not None and old_pid == self._pid:  # a forked child leaves its parent's lease alone
            await self._end(old, old_loop, keep=sweeping)
        return threats

    async def _end(self, lease: LeaseKeeper, loop: asyncio.AbstractEventLoop | None, *, keep: bool) -> None:
        """Stop renewing ``lease`` (started on ``loop``) and delete it, or with ``keep`` leave it to expire."""
        if loop is asyncio.get_running_loop():
            await (lease.abandon() if keep else lease.release())
            return
        if loop is not None and not loop.is_closed():  # its renewal lives there: stopped there, never waited for
            with contextlib.suppress(RuntimeError):  # closed meanwhile: no renewal left to stop
                loop.call_soon_threadsafe(_abandon_here, lease)
        if not keep:  # a renewal sent before it stopped may write it again: it then expires, as a kill's would
            with contextlib.suppress(TierstoreError):
                await lease.delete()

    async def _tombs(self) -> tuple[Threats, bool]:
        """What tombs name now, and whether a deletion may be running.

        A pending tomb whose deletion ended leaves nothing behind; one left by a deletion that crashed stays until
        ``gc`` prunes it (days). A pending tomb older than the lease time (by the store's clock) is taken for such
        a leftover, as a deleter stalled that long mid-way is taken for crashed: otherwise every restore and
        checkpoint after a crash in the middle of a deletion would copy, or for archived pages fail, for days.
        """
        tombs, damaged = await self._refs.tombs()
        if damaged:  # what it names is unknown: anything may be being deleted
            return Threats(pending=self._named | frozenset(self._written)), True
        deleted = frozenset().union(*(t.artifacts for t in tombs if t.state == "deleted"))
        pending = [t for t in tombs if t.state == "pending" and t.artifacts]
        if not pending:
            return Threats(deleted=deleted), False
        written = {e.key: as_utc(e.last_modified) for e in await self._refs.listed(ids.TOMB_PREFIX)}
        now = await self._refs.store_time()

        def stale(tomb: Tomb) -> bool:
            when = written.get(tomb.key)
            return now is not None and when is not None and now - when >= self._refs.lease_ttl

        live = [t for t in pending if not stale(t)]
        return Threats(deleted=deleted, pending=frozenset().union(*(t.artifacts for t in live))), bool(live)

    async def release(self) -> None:
        """The agent is done: its lease goes (from any event loop), and what only it protected becomes
        collectable. Safe to await again; a later write takes a new lease naming what this one named."""
        lease, self._lease = self._lease, None
        self._on_drop(None)
        if lease is not None and self._pid == os.getpid():
            await self._end(lease, self._loop, keep=False)

    def _on_drop(self, lease: LeaseKeeper | None) -> None:
        """Have ``lease`` (written on the running loop) released there should this object be collected."""
        if self._dropped is not None:
            self._dropped.detach()
        self._dropped = None
        if lease is not None:
            self._dropped = weakref.finalize(self, _release_dropped, lease, asyncio.get_running_loop(), os.getpid())
            self._dropped.atexit = False  # at exit, _release_at_exit does it


_LIVE: weakref.WeakSet[AgentLease] = weakref.WeakSet()
_EXIT_WAIT: Final = 5.0
"""Seconds a process exiting waits for its agents' leases to be deleted."""
_ABANDONING: set[asyncio.Task[None]] = set()
"""Leases being stopped or released on their own loop, held until done (asyncio holds tasks weakly)."""


def _abandon_here(lease: LeaseKeeper) -> None:
    task = asyncio.get_running_loop().create_task(lease.abandon())
    _ABANDONING.add(task)
    task.add_done_callback(_ABANDONING.discard)


def _release_dropped(lease: LeaseKeeper, loop: asyncio.AbstractEventLoop, pid: int) -> None:
    """An agent dropped without being closed: its lease is released on its loop while that loop runs, else left
    to expire (a loop that ended stopped renewing it)."""
    if pid == os.getpid() and not loop.is_closed():
        with contextlib.suppress(RuntimeError):  # closed meanwhile
            loop.call_soon_threadsafe(_release_here, lease)


def _release_here(lease: LeaseKeeper) -> None:
    task = asyncio.get_running_loop().create_task(lease.release(), name=f"tierstore release of {lease.key}")
    _ABANDONING.add(task)
    task.add_done_callback(_ABANDONING.discard)
    logger.info("released the lease of a chuk agent dropped without being closed")


@atexit.register
def _release_at_exit() -> None:
    """A process ending without closing its agents' bridges releases their leases (a killed one cannot)."""
    ending = [agent for agent in list(_LIVE) if agent._lease is not None and agent._pid == os.getpid()]
    if not ending:
        return

    async def release_all() -> None:
        releases = asyncio.gather(*(agent.release() for agent in ending), return_exceptions=True)
        with contextlib.suppress(TimeoutError):  # an unreachable store must not hold the exit up: they expire
            await asyncio.wait_for(releases, _EXIT_WAIT)

    try:
        asyncio.run(release_all())
        logger.info("released the leases of %d chuk agents still attached at exit", len(ending))
    except Exception:  # at exit nothing can be reported to a caller: the leases expire instead
        logger.info("could not release the leases of chuk agents at exit; they expire", exc_info=True)


def _within(threats: Threats, artifacts: frozenset[str]) -> Threats:
    return Threats(deleted=threats.deleted & artifacts, pending=threats.pending & artifacts)
