"""``gc``: delete orphans older than a grace period, stale intents, and old tomb records.

Orphans are deleted through the same race-safe protocol as ``delete_checkpoint``, so a checkpoint racing with
``gc`` keeps its artifacts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tierstore import ids
from tierstore.backends.base import ListEntry
from tierstore.bridge import ArtifactsBridge
from tierstore.concurrency import Progress
from tierstore.maintenance.fsck import _keys, fsck
from tierstore.maintenance.reports import GcReport


async def gc(
    bridge: ArtifactsBridge,
    *,
    grace: timedelta = timedelta(hours=1),
    tomb_retention: timedelta = timedelta(days=7),
    dry_run: bool = False,
    progress: Progress | None = None,
) -> GcReport:
    """Delete orphans older than ``grace``, stale intents, and tomb records older than ``tomb_retention``.

    Younger orphans are kept, and reported as kept: a checkpoint may still be writing them.

    ``tomb_retention`` must exceed the ``reuse_window`` of every bridge writing to the store (default one day):
    a bridge never reuses an artifact it recorded longer ago than that, so pruned records cannot be missed.
    """
    backend = bridge._require_rich("gc")
    report = GcReport()
    now = datetime.now(UTC)
    fsck_report = await fsck(bridge, verify=False, progress=progress)
    old = {o.key for o in fsck_report.orphans if o.last_modified is None or o.last_modified < now - grace}
    report.orphans_deleted = sorted(old)
    report.orphans_kept = [o for o in fsck_report.orphans if o.key not in old]
    stale_intents = [e.key for e in await _keys(backend, ids.INTENT_PREFIX) if _older(e, now - bridge.intent_ttl)]
    old_tombs = [e.key for e in await _keys(backend, ids.TOMB_PREFIX) if _older(e, now - tomb_retention)]
    report.intents_removed, report.tombs_pruned = len(stale_intents), len(old_tombs)
    if not dry_run:
        await bridge._sweep(old)
        await backend.delete_many(stale_intents + old_tombs)
    return report


def _older(entry: ListEntry, cutoff: datetime) -> bool:
    return entry.last_modified is not None and entry.last_modified < cutoff
