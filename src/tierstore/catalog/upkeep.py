"""Keeping catalog snapshots: which ones ``gc`` may delete, which ones ``fsck`` reports, and a rebuild from the store.

Contract, for one store or one scope's view of it (a :class:`~tierstore.artifacts.scoped.PrefixedBackend`):

* :func:`survey` reads the snapshots newest first (the store's time: :func:`~tierstore.catalog.newest_first`)
  until one decodes: that one is *current*; every older one is *superseded* (a reader never reads past a current one
  it can decode, and a full snapshot holds all a reader needs); every one that does not decode is *damaged* (readers
  skip it; ``fsck`` reports it). Snapshots are rebuildable caches: deleting one costs a later reader heads, never an
  answer.
* :func:`collectable` is what ``gc`` deletes: superseded and damaged snapshots older than the grace period, never the
  current one (a reader may be reading it; a snapshot written meanwhile is newer, and younger than the grace period).
* :func:`rebuild_catalog` describes every page afresh (one ``head`` each) and writes a new snapshot of them (anyone,
  any time: it is create-if-absent under a new key). :func:`complete_catalog` is what ``fsck --repair`` does: it
  describes only the pages the current snapshot does not prove (a damaged one is skipped, as readers skip it) and
  writes a snapshot only when there were some, so a second repair writes nothing. In both, a page whose ``head``
  says it is damaged (the disk store's header) gets no row and stops nothing (logged; ``fsck`` reports it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tierstore import ids
from tierstore.backends.base import ListEntry, StorageBackend
from tierstore.catalog import Catalog, newest_first, read_snapshot
from tierstore.errors import IntegrityError
from tierstore.protocol.records import as_utc

logger = logging.getLogger(__name__)


def _left_out(entry: ListEntry, why: IntegrityError) -> None:
    """A page whose ``head`` says it is damaged: no row, nothing stopped (``fsck`` reports it)."""
    logger.warning("%s left out of the catalog, damaged (fsck reports it): %s", entry.key, why)


@dataclass
class Survey:
    """The snapshots of one store or scope (module contract)."""

    current: ListEntry | None = None
    superseded: list[ListEntry] = field(default_factory=list)
    damaged: list[ListEntry] = field(default_factory=list)


async def survey(backend: StorageBackend) -> Survey:
    """Read the snapshots newest first until one decodes (module contract)."""
    found = Survey()
    listed = newest_first([entry async for entry in backend.list(ids.CATALOG_PREFIX)])
    for entry in listed:
        if found.current is not None:
            found.superseded.append(entry)
            continue
        try:
            rows = await read_snapshot(backend, entry.key)
        except IntegrityError:
            found.damaged.append(entry)
            continue
        if rows is not None:
            found.current = entry
    return found


async def damaged_snapshots(backend: StorageBackend) -> list[str]:
    """The snapshots that cannot be read, for ``fsck`` to report."""
    return sorted(entry.key for entry in (await survey(backend)).damaged)


def collectable(found: Survey, now: datetime | None, grace: timedelta) -> list[str]:
    """The snapshots ``gc`` deletes: superseded or damaged, older than ``grace`` in the store's time ``now``."""
    if now is None:
        return []
    aged = [entry for entry in (*found.superseded, *found.damaged) if _before(entry.last_modified, now - grace)]
    return sorted(entry.key for entry in aged)


def _before(when: datetime | None, cutoff: datetime) -> bool:
    written = as_utc(when)
    return written is not None and written <= cutoff


async def rebuild_catalog(backend: StorageBackend, *, concurrency: int = 32) -> str | None:
    """Describe every page of ``backend`` afresh and write a snapshot of them; its key, or None when none could be
    written (a listing without tokens, an unavailable or read-only store: logged by the fold)."""
    pages = [entry async for entry in backend.list(ids.PAGE_PREFIX) if ids.parse_artifact_id(entry.key)]
    catalog = Catalog(backend, {}, None)
    async for _pair in catalog.describe(pages, concurrency=concurrency, damaged=_left_out):
        pass
    return catalog.source if await catalog.fold(at_least=1) else None


async def complete_catalog(backend: StorageBackend, *, concurrency: int = 32) -> str | None:
    """Describe the pages of ``backend`` that its current snapshot does not prove and write a snapshot with them; its
    key, or None when every page was proven already or none could be written (module contract)."""
    pages = [entry async for entry in backend.list(ids.PAGE_PREFIX) if ids.parse_artifact_id(entry.key)]
    snapshots = [entry async for entry in backend.list(ids.CATALOG_PREFIX)]
    catalog = await Catalog.open(backend, [*pages, *snapshots])
    unproven = [entry for entry in pages if catalog.known(entry) is None]
    async for _pair in catalog.describe(unproven, concurrency=concurrency, damaged=_left_out):
        pass
    return catalog.source if unproven and await catalog.fold(at_least=1) else None
