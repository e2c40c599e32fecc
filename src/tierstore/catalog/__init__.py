"""The catalog: a cache of ``head`` answers, keyed by what the listing proves (issue 28, ``docs/design/scopes.md``).

It knows nothing of pages: it caches :class:`~tierstore.backends.base.ObjectInfo` by key, for one store or one
scope's view of it. Contract:

* **Trust.** A row stands for a ``head`` only while the current listing shows its key with the same change token
  (:attr:`~tierstore.backends.base.ListEntry.version`, never None), size and storage class
  (:meth:`~tierstore.catalog.snapshot.Row.proven_by`). Anything else is asked of the store. So a stale, damaged,
  truncated or misplaced snapshot costs requests, never a wrong answer; a listing that gives no token (Azure's obstore
  data path, Azure with tiers sharing an access tier, a custom backend) makes every row untrusted: every entry is a
  ``head``, as without a catalog.
* **Damage.** A ``head`` that raises IntegrityError (the disk store's damaged file header) is one entry's answer,
  not the whole description's: :meth:`Catalog.describe` hands it to the caller's ``damaged`` and goes on (the
  entry is given as None and never becomes a row); only a caller that gives no ``damaged`` sees it raised.
* **Snapshots.** ``cat_{UTC time}_{random}`` in the store (or scope), each a *full* snapshot: every row its writer
  knew, none naming another. Newest means by the store's time (the listing's last-modified), the name only breaking
  ties (:func:`newest_first`): a writer's clock names, never orders. A reader takes the newest snapshot of the
  listing that decodes (at most
  :data:`READ_AT_MOST` tried, newest first; an unreadable one is skipped and logged); rows are never merged across
  snapshots, so no chain exists to bound. Full, not deltas: one GET whatever the history, and nothing a lost or
  damaged base could break; a snapshot's bytes grow with the store (about 0.2-0.6 KB a page), its requests do not.
* **Folding.** :meth:`Catalog.fold` writes a new snapshot (create-if-absent, a new key) of the rows the open snapshot
  proved and the answers :meth:`Catalog.describe` fetched since, when at least :data:`FOLD_AT` were fetched: so a
  later reader asks only what changed since (O(changes) to keep). It never raises for a lost race, a refusal or an
  unavailable store: it logs and says False. ``gc`` deletes the snapshots the newest readable one supersedes, past the
  grace period (:mod:`tierstore.catalog.upkeep`).
* **Folding against an erasure** (:mod:`tierstore.protocol.erasure`). A snapshot holds its pages' ids and metadata,
  so one landing in an erased scope would bring them back. A fold is therefore as safe as a ``store_page``: it notes
  the monotonic time, lists the erasing tombs of its scope and of the scopes it was told to watch (a session's
  catalog watches its user's: a session's listing does not show its user's tombs), then the pages; it writes nothing
  when an erasing tomb is listed, keeps only the rows that listing still proves (so a fold after an erasure ended
  writes none of the erased pages), and issues its one put only while less than the settle period S minus one
  request deadline D has passed since the time noted. Why that suffices: a fold whose tomb listing came after E1
  sees the tomb; one whose listing began before E1 issues its put before that moment + S - D, and a call ends
  within D, so the put lands before E1 + S, before E4's last listing (which follows E1 by at least S), and E4
  deletes it. A put that left after the window is not sent (logged). A put that lands later still (its process
  stopped between the window's check and the put, or an eraser that settles for less than this reader's settle
  period) is caught by the fold's fence: after its put, the fold lists the erasing tombs and the pages again and
  deletes its snapshot unless no tomb is listed and every row is still proven: an erasure that deleted any of its
  pages before the put landed is seen, and one that had not yet deleted them lists the snapshot and deletes it.
  A put that failed (it may have landed, its answer lost) and a fence that cannot list are treated alike: the
  snapshot is withdrawn, with every version a bucket keeps of it. Only a store that refuses that delete too, or a
  process killed between its put and its fence, can leave one (README).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Final

from tierstore import ids
from tierstore.backends import slices
from tierstore.backends.base import ListEntry, ObjectInfo, StorageBackend
from tierstore.catalog.snapshot import Row, decode_snapshot, encode_snapshot, foldable
from tierstore.clock import SYSTEM_CLOCK, Clock
from tierstore.concurrency import bounded_in_order
from tierstore.errors import ArchivedPageError, IntegrityError, TierstoreError
from tierstore.protocol.records import as_utc, is_erasing_tomb

logger = logging.getLogger(__name__)

READ_AT_MOST: Final = 3
"""Snapshots a reader tries, newest first, before it goes without one."""
_NEVER: Final = datetime.min.replace(tzinfo=UTC)
Damaged = Callable[[ListEntry, IntegrityError], None]
"""Told of each entry whose ``head`` raised IntegrityError (a damaged object), and why."""
FOLD_AT: Final = 16
"""Answers fetched since the snapshot was read before :meth:`Catalog.fold` writes a new one."""


def bound_key(backend: StorageBackend, key: str) -> str:
    """The whole key in the store of ``key`` in ``backend`` (a scope's view adds its prefix): snapshots name it."""
    from tierstore.artifacts.scoped import PrefixedBackend  # the view imports the bridge's layers; keep them out

    return backend.prefix + key if isinstance(backend, PrefixedBackend) else key


def whole_store(backend: StorageBackend) -> StorageBackend:
    """The store a scope's view (or views of views) opens onto; ``backend`` itself when it is no view."""
    while isinstance(getattr(backend, "inner", None), StorageBackend):
        backend = backend.inner  # type: ignore[attr-defined]
    return backend


def fold_window(backend: StorageBackend) -> float:
    """Seconds after its evidence was gathered that a fold may still issue its put: the erasure's settle period of
    ``backend`` minus one request deadline (module contract)."""
    from tierstore.protocol.erasure import settle_period  # erasure imports the scopes' layers; keep them out

    store = whole_store(backend)
    retry = getattr(getattr(store, "options", None), "retry", None)
    deadline = getattr(retry, "deadline", None)
    return settle_period(store).total_seconds() - (deadline if isinstance(deadline, int | float) else 0.0)


def newest_first(entries: Iterable[ListEntry]) -> list[ListEntry]:
    """Catalog snapshots' entries, newest first by the store's time (their listed last-modified; none: oldest), the
    name (the writer's wall clock, which may be wrong) only breaking ties: a host whose clock runs ahead cannot make
    its snapshot the newest for good."""
    snapshots = [entry for entry in entries if ids.is_catalog_key(entry.key)]
    return sorted(snapshots, key=lambda entry: (as_utc(entry.last_modified) or _NEVER, entry.key), reverse=True)


def snapshot_keys(listing: Sequence[ListEntry]) -> list[str]:
    """The catalog snapshots of a listing, newest first (:func:`newest_first`)."""
    return [entry.key for entry in newest_first(listing)]


async def read_snapshot(backend: StorageBackend, key: str) -> dict[str, Row] | None:
    """The rows of the snapshot at ``key``; None when it is gone; IntegrityError when it is unreadable."""
    try:
        data = await backend.get(key)
    except ArchivedPageError as exc:
        raise IntegrityError(f"catalog snapshot {key} is archived", key=key) from exc
    return None if data is None else decode_snapshot(data, bound_key(backend, key))


class Catalog:
    """Cached ``head`` answers of one store or scope (module contract)."""

    def __init__(
        self,
        backend: StorageBackend,
        rows: dict[str, Row],
        source: str | None,
        clock: Clock = SYSTEM_CLOCK,
        watch: Sequence[StorageBackend] = (),
    ) -> None:
        self.backend = backend
        self.watch = tuple(watch)
        """Wider scopes whose erasing tombs forbid a fold here too (a session's catalog watches its user's)."""
        self.source = source
        """The snapshot the rows came from (None: none was readable)."""
        self._rows = rows
        self._learnt: dict[str, Row] = {}
        self._clock = clock

    @classmethod
    async def open(
        cls,
        backend: StorageBackend,
        listing: Sequence[ListEntry],
        *,
        clock: Clock = SYSTEM_CLOCK,
        watch: Sequence[StorageBackend] = (),
    ) -> Catalog:
        """The catalog of ``backend`` from ``listing`` (what ``backend.list("")`` gave, or at least its snapshots
        and the entries to describe): the newest readable snapshot's rows that ``listing`` still proves. ``watch``:
        the wider scopes whose erasing tombs forbid a fold (module contract)."""
        catalog = await cls.read(backend, listing, clock=clock, watch=watch)
        current = {entry.key: entry for entry in listing}
        catalog._rows = {k: row for k, row in catalog._rows.items() if k in current and row.proven_by(current[k])}
        return catalog

    @classmethod
    async def read(
        cls,
        backend: StorageBackend,
        snapshots: Sequence[ListEntry],
        *,
        clock: Clock = SYSTEM_CLOCK,
        watch: Sequence[StorageBackend] = (),
    ) -> Catalog:
        """The catalog of ``backend`` from the newest readable of ``snapshots`` (a listing of them), every row kept
        until an entry is described: :meth:`known` proves each against the entry it is asked for, so a reader can
        open the catalog before (or while) it lists the pages."""
        for key in snapshot_keys(snapshots)[:READ_AT_MOST]:
            try:
                rows = await read_snapshot(backend, key)
            except IntegrityError as exc:
                logger.warning("catalog snapshot %s is unreadable, skipped (fsck reports it): %s", key, exc)
                continue
            except TierstoreError as exc:  # unavailable, refused: go without, as with no snapshot
                logger.info("catalog snapshot %s could not be read (%s): every entry is asked", key, exc)
                break
            if rows is not None:
                return cls(backend, rows, key, clock, watch)
        return cls(backend, {}, None, clock, watch)

    @property
    def rows(self) -> int:
        """How many rows are held (the open snapshot's that its listing proved, or all of them when :meth:`read`,
        and those learnt since)."""
        return len(self._rows) + len(self._learnt)

    def known(self, entry: ListEntry) -> ObjectInfo | None:
        """The cached answer for ``entry`` when its row is proven by it (no I/O); else None."""
        row = self._learnt.get(entry.key) or self._rows.get(entry.key)
        return row.info if row is not None and row.proven_by(entry) else None

    async def answer(self, entry: ListEntry) -> ObjectInfo | None:
        """``entry``'s answer (None: gone): its proven row at once, else a ``head``, kept as a row when foldable.
        IntegrityError when the ``head`` says the object is damaged."""
        known = self.known(entry)
        if known is not None:
            return known
        info = await self.backend.head(entry.key)
        row = None if info is None else foldable(entry, info)
        if row is not None:
            self._learnt[entry.key] = row
        return info

    async def _describe_one(self, entry: ListEntry, damaged: Damaged | None) -> tuple[ListEntry, ObjectInfo | None]:
        try:
            return entry, await self.answer(entry)
        except IntegrityError as exc:  # a damaged object (the disk store's header): one entry, not the whole answer
            if damaged is None:
                raise
            damaged(entry, exc)
            return entry, None

    async def describe(
        self, entries: Sequence[ListEntry], *, concurrency: int = 32, damaged: Damaged | None = None
    ) -> AsyncGenerator[tuple[ListEntry, ObjectInfo | None], None]:
        """Each entry with its answer (None: gone), in the given order, each as soon as it and all before it are
        ready: a proven row at once, else a ``head`` (at most ``concurrency`` in flight). A ``head`` that raises
        IntegrityError (a damaged object) is handed to ``damaged`` with its entry, which is then given as None and
        never becomes a row; without ``damaged`` it is raised (a caller describing one entry reports it itself)."""
        batches = bounded_in_order((self._describe_one(entry, damaged) for entry in entries), concurrency)
        try:
            async for batch in batches:
                for pair in batch:
                    yield pair
        finally:
            await batches.aclose()

    async def _erasing(self) -> bool:
        """Whether an erasing tomb is listed in this scope or a watched one (logged)."""
        for backend in (self.backend, *self.watch):
            erasing = [entry.key async for entry in backend.list(ids.TOMB_PREFIX) if is_erasing_tomb(entry.key)]
            if erasing:
                logger.info("catalog not folded: %s is being erased (%s)", bound_key(backend, ""), erasing[0])
                return True
        return False

    async def _proven(self, rows: dict[str, Row]) -> dict[str, Row]:
        """The rows of ``rows`` a listing made now proves."""
        listed = {entry.key: entry async for entry in self.backend.list(slices.common_prefix(list(rows)))}
        return {k: row for k, row in rows.items() if k in listed and row.proven_by(listed[k])}

    async def _still_true(self, key: str, rows: dict[str, Row]) -> bool:
        """The fold's fence, after its put has landed: the snapshot at ``key`` stays only while no erasing tomb is
        listed and a listing still proves every row; else it is deleted (module contract: a writer stopped past the
        window, or an eraser settling for less than this reader assumes, cannot leave an erased scope's rows)."""
        try:
            if not await self._erasing() and len(await self._proven(rows)) == len(rows):
                return True
            logger.info("catalog snapshot %s withdrawn: its rows changed while it was written", key)
        except TierstoreError as exc:
            logger.info("catalog snapshot %s withdrawn: it could not be checked after its write (%s)", key, exc)
        await self._withdraw(key)
        return False

    async def _withdraw(self, key: str) -> None:
        """Delete the snapshot at ``key`` of this fold, with every version a bucket keeps of it; nothing when it is
        not there. A store that refuses even that leaves it (logged: erasing the scope again removes it)."""
        from tierstore.protocol.history import HistoryPurged, delete_leaving_no_history  # erasure's layers

        whole = bound_key(self.backend, key)
        try:
            await delete_leaving_no_history(whole_store(self.backend), whole, [whole], HistoryPurged())
            return
        except TierstoreError as exc:
            why = exc
        with contextlib.suppress(TierstoreError):
            await self.backend.delete(key)  # the object itself at least, when its history could not be listed
        logger.warning(
            "catalog snapshot %s, or its history, may be left (%s): erasing its scope again removes it", whole, why
        )

    async def fold(self, *, at_least: int = FOLD_AT) -> bool:
        """Write a new snapshot when at least ``at_least`` answers were fetched since the open one, no erasing tomb
        is listed and the put can still be issued in time (module contract); True when written. Never raises for a
        lost race or an unavailable store (logged)."""
        if len(self._learnt) < at_least:
            return False
        started = self._clock.monotonic()
        try:
            if await self._erasing():
                return False
            held = {**self._rows, **self._learnt}
            rows = await self._proven(held)
        except TierstoreError as exc:
            logger.info("catalog not folded (%s): the next reader asks again", exc)
            return False
        if not rows:
            return False
        key = ids.timestamped(ids.CATALOG_PREFIX, self._clock.now())
        data = encode_snapshot(bound_key(self.backend, key), rows)
        if self._clock.monotonic() - started >= fold_window(self.backend):
            logger.info("catalog snapshot %s not written: its evidence is older than an erasure's settle period", key)
            return False
        try:  # no await between the window's check and the put's issue
            await self.backend.put(key, data, if_absent=True)
        except TierstoreError as exc:
            logger.info("catalog snapshot %s not written (%s): the next reader asks again", key, exc)
            await self._withdraw(key)  # the put may have landed and its answer been lost
            return False
        if not await self._still_true(key, rows):
            return False
        self._rows, self._learnt, self.source = rows, {}, key
        logger.debug("catalog snapshot %s written: %d rows", key, len(rows))
        return True
