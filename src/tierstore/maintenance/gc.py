"""``gc``: delete what failures left behind, once it is older than a grace period.

* Orphans (see :mod:`tierstore.maintenance.fsck`) go through :meth:`tierstore.protocol.references.References.sweep`,
  the same protocol as ``delete_checkpoint``: a checkpoint that is still running (its lease is live, however long it
  has run) or that reuses an artifact keeps it.
* Stray temporary files of killed writers, expired leases, tomb records older than ``tomb_retention``, version
  records naming no page (:mod:`tierstore.versions`) and catalog snapshots another supersedes or that cannot be read
  (:mod:`tierstore.catalog.upkeep`) older than the grace period. A version record is deleted only while it is the
  record judged stale, and never before the store's settle period, whatever the grace
  (:mod:`tierstore.record_deletes`: a store in flight, or one that took its number since, keeps it). A record
  that cannot be read is deleted by the same rules (a lease that cannot be read expires six hours after its last
  write, protecting everything until then: :mod:`tierstore.protocol`); one the backend refuses to delete (a directory
  with files in it) is kept and logged. An erasing tomb is never pruned: only its erasure ends it
  (:mod:`tierstore.protocol.erasure`).

Every age is measured in the store's own time, never this host's: ``gc`` first writes a record and reads the time the
store gave it (:meth:`~tierstore.protocol.references.References.store_time`), and compares the last-modified times of
orphans, strays, leases and tombs with that. So a host whose clock is a day ahead collects nothing early, and one
whose clock is behind nothing late. Where the store cannot take that write (full, read-only) or with ``dry_run``, the
time is estimated from what was listed, which can only keep more. The grace period covers writes that are slow to
land; orphans younger than it are kept, and reported as kept."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from itertools import chain

from tierstore import ids
from tierstore.backends.base import StorageBackend
from tierstore.bridge import ArtifactsBridge
from tierstore.catalog.upkeep import collectable
from tierstore.clock import Clock
from tierstore.concurrency import Progress
from tierstore.maintenance.doctor import require_store
from tierstore.maintenance.fsck import fsck
from tierstore.maintenance.reports import GcReport, Running
from tierstore.protocol import as_utc
from tierstore.protocol.records import is_erasing_tomb
from tierstore.record_deletes import stale_grace

logger = logging.getLogger(__name__)


async def gc(
    bridge: ArtifactsBridge,
    *,
    grace: timedelta = timedelta(hours=1),
    tomb_retention: timedelta = timedelta(days=7),
    dry_run: bool = False,
    progress: Progress | None = None,
    clock: Clock | None = None,
    settle: timedelta | None = None,
) -> GcReport:
    """Delete orphans and strays older than ``grace``, expired leases, and tombs older than ``tomb_retention``,
    all in the store's time (see the module docstring). ``clock``: this host's clocks (default: the bridge's), which
    name records and bound an estimate, nothing more. ``settle``: the longest a ``store_page`` may take (default:
    the store's settle period); a stale version record younger than it is kept whatever ``grace`` is.

    ``tomb_retention`` must exceed the longest a checkpoint runs: a running checkpoint checks the tombs written
    since it began. While a manifest cannot be read, what it references is unknown, so no orphan is deleted; the
    rest of the clean-up runs and the report names it (``unreadable_manifests``). NotAStoreError for a local path
    that holds no store (nothing is written there).
    """
    refs = bridge.references("gc")
    require_store(bridge.backend)
    report = GcReport()
    now = None if dry_run else await refs.store_time()
    found = await fsck(bridge, verify=False, progress=progress, clock=clock, store_time=now)
    leases = await refs.leases()
    tombs = [t for t in await refs.listed(ids.TOMB_PREFIX) if ids.is_tomb_key(t.key)]
    if now is None:
        now = refs.estimated_store_time(
            chain(
                (o.last_modified for o in found.orphans),
                (s.last_modified for s in found.strays),
                (lease.renewed for lease in leases),
                (t.last_modified for t in tombs),
                (v.last_modified for v in found.stale_versions),
            ),
            clock,
        )
    old = {o.key: o.checkpoint for o in found.orphans if _aged(o.last_modified, now, grace)}
    report.orphans_kept = [o for o in found.orphans if o.key not in old]
    old_strays = [s.name for s in found.strays if _aged(s.last_modified, now, grace)]
    # Never younger than the settle period, whatever the grace: a store in flight shows as a stale record too.
    backend = bridge.backend
    version_grace = stale_grace(backend, grace, settle) if isinstance(backend, StorageBackend) else grace
    old_versions = [v.key for v in found.stale_versions if _aged(v.last_modified, now, version_grace)]
    old_snapshots = collectable(await refs.catalog_snapshots(), now, grace)
    expired_leases = [lease for lease in leases if now is not None and not lease.live(now)]
    expired = [i.key for i in expired_leases]
    # An erasing tomb stays until its erasure (or the call resuming it) ends: it refuses the scope's checkpoints.
    old_tombs = [t.key for t in tombs if _aged(t.last_modified, now, tomb_retention) and not is_erasing_tomb(t.key)]
    report.in_progress = sorted(
        (
            Running(i.checkpoint, None if i.renewed is None else i.renewed + i.ttl)
            for i in leases
            if i.live(now) and not i.protects_everything
        ),
        key=lambda r: r.checkpoint,
    )
    if dry_run:
        report.unreadable_manifests = (await refs.manifests.listed())[1]
        report.intents_removed, report.tombs_pruned = len(expired), len(old_tombs)
        report.orphans_deleted, report.strays_removed = sorted(old), old_strays
        report.versions_deleted, report.snapshots_deleted = old_versions, old_snapshots
        return report
    report.strays_removed = await refs.delete_strays(old_strays)
    for name in report.strays_removed:
        logger.info("gc: deleted stray temporary file %s", name)
    report.intents_removed = len(await refs.end_expired(expired_leases, now))
    report.tombs_pruned = len(await refs.prune(old_tombs, "tomb past its retention"))
    if now is not None:  # else none is old
        report.versions_deleted = await refs.prune_stale_versions(old_versions, now - version_grace)
    report.snapshots_deleted = await refs.prune(old_snapshots, "catalog snapshot superseded or unreadable")
    report.orphans_deleted = await refs.sweep(old)
    for key in report.orphans_deleted:
        logger.info("gc: deleted orphan %s", key)
    report.unreadable_manifests = (await refs.manifests.listed())[1]
    return report


def _aged(written: datetime | None, now: datetime | None, age: timedelta) -> bool:
    """At least ``age`` old in the store's time; unknown times are never old."""
    written = as_utc(written)
    return now is not None and written is not None and written <= now - age
