"""What keeps a running chuk agent's stored pages alive, and lets ``gc`` take them once nothing needs them.

An attached agent holds a lease (:class:`tierstore.refs.Lease`, an ``intent_`` record renewed in the background)
whose ``reuse`` names every artifact its page table refers to, and stamps its own writes with the lease's id (object
metadata ``ckpt``). Sweeps (``delete_checkpoint``, ``gc``) keep what a live lease names or owns, so:

* while the agent runs, nothing it refers to is swept. Its own writes are protected by their owner from the moment
  they land (``gc`` passes each orphan's owner to the sweep), and by name once the lease has been rewritten, which
  the agent does before any manifest can name them (:meth:`AgentLease.name`), so a ``delete_checkpoint`` sweep,
  which looks at names only, finds them named. Pages it took from a checkpoint are named before it relies on
  them, and a tomb seen right after (a deletion that may have missed the lease: the writer's W2 step of
  :mod:`tierstore.refs`) is reported to the caller, who copies those pages or refuses them. A pending tomb older
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
``asyncio.run``), the lease is rewritten there. An agent whose loop stalls for longer than ``lease_ttl`` loses this
protection meanwhile: a page swept then faults as ``IntegrityError`` (missing), never as another page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from tierstore import ids
from tierstore.bridge import ArtifactsBridge
from tierstore.enums import StorageTier
from tierstore.models import CheckpointEntry, MemoryPage
from tierstore.refs import Lease, References, Tomb, as_utc


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
        self._lease: Lease | None = None
        self._owner = ""
        self._named: frozenset[str] = frozenset()
        self._written: set[str] = set()
        """Written under the current lease since it was written: protected by their owner, not yet by name."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

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
        old, old_loop = self._lease, self._loop
        self._lease, self._owner, self._named, self._loop = lease, owner, artifacts, loop
        self._written = set()
        threats, sweeping = await self._tombs()
        if old is not None and old_loop is loop:
            if sweeping:
                await old.abandon()
            else:
                await old.release()
        # A lease started on another loop renewed itself there; that loop is gone or elsewhere: it expires.
        return threats

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
        written = {e.key: as_utc(e.last_modified) async for e in self._refs.backend.list(ids.TOMB_PREFIX)}
        now = await self._refs.store_time()

        def stale(tomb: Tomb) -> bool:
            when = written.get(tomb.key)
            return now is not None and when is not None and now - when >= self._refs.lease_ttl

        live = [t for t in pending if not stale(t)]
        return Threats(deleted=deleted, pending=frozenset().union(*(t.artifacts for t in live))), bool(live)

    async def release(self) -> None:
        """The agent is done: its lease goes, and what only it protected becomes collectable."""
        lease, self._lease = self._lease, None
        if lease is not None and self._loop is asyncio.get_running_loop():
            await lease.release()
        self._named = frozenset()


def _within(threats: Threats, artifacts: frozenset[str]) -> Threats:
    return Threats(deleted=threats.deleted & artifacts, pending=threats.pending & artifacts)
