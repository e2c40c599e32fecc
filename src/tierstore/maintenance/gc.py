"""``gc``: delete what failures left behind, once it is older than a grace period.

* Orphans (see :mod:`tierstore.maintenance.fsck`) go through :meth:`tierstore.refs.References.sweep`, the same
  protocol as ``delete_checkpoint``: a checkpoint that is still running (its lease is live, however long it has
  run) or that reuses an artifact keeps it.
* Stray temporary files of killed writers, expired leases, and tomb records older than ``tomb_retention``.

The grace period guards against clocks that disagree and writes that are slow to land; orphans younger than it
are kept, and reported as kept.
"""

from __future__ import annotations

from datetime import timedelta

from tierstore import ids
from tierstore.bridge import ArtifactsBridge
from tierstore.clock import Clock
from tierstore.concurrency import Progress
from tierstore.maintenance.fsck import fsck, listed, older_than
from tierstore.maintenance.reports import GcReport


async def gc(
    bridge: ArtifactsBridge,
    *,
    grace: timedelta = timedelta(hours=1),
    tomb_retention: timedelta = timedelta(days=7),
    dry_run: bool = False,
    progress: Progress | None = None,
    clock: Clock | None = None,
) -> GcReport:
    """Delete orphans and strays older than ``grace``, expired leases, and tombs older than ``tomb_retention``.

    ``tomb_retention`` must exceed the longest a checkpoint runs: a running checkpoint checks the tombs written
    since it began. Raises IntegrityError (after the other clean-up) while a manifest cannot be read, since what it
    references is unknown. ``clock``: this host's clocks (default: the bridge's, see :mod:`tierstore.clock`).
    """
    refs = bridge.references("gc")
    backend = refs.backend
    report = GcReport()
    clock = clock if clock is not None else bridge.clock
    now = clock.now()
    cutoff = now - grace
    found = await fsck(bridge, verify=False, progress=progress, clock=clock)
    old = {o.key: o.checkpoint for o in found.orphans if older_than(o.last_modified, cutoff)}
    report.orphans_kept = [o for o in found.orphans if o.key not in old]
    old_strays = [s.name for s in found.strays if older_than(s.last_modified, cutoff)]
    expired = [i.key for i in await refs.intents() if not i.live(now)]
    old_tombs = [
        e.key for e in await listed(backend, ids.TOMB_PREFIX) if older_than(e.last_modified, now - tomb_retention)
    ]
    report.intents_removed, report.tombs_pruned = len(expired), len(old_tombs)
    if dry_run:
        report.orphans_deleted, report.strays_removed = sorted(old), old_strays
        return report
    delete_strays = getattr(backend, "delete_strays", None)
    if delete_strays is not None and old_strays:
        report.strays_removed = list(await delete_strays(old_strays))
    await backend.delete_many(expired + old_tombs)
    report.orphans_deleted = await refs.sweep(old)
    return report
