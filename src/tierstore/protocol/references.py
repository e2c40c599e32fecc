"""The records on one backend, and the deleter's side of the protocol: :class:`References`.

Reading: every lease afresh (they change as they are renewed), every tomb once (a tomb never changes), manifests
through :class:`~tierstore.protocol.manifests.Manifests`; a record that cannot be read stands for what it could say
(an unreadable lease protects everything, an unreadable tomb dooms everything). Deleting and moving: ``delete_recorded``
(``delete_page``), ``sweep`` (``delete_checkpoint``, ``gc``) and ``retier`` (``set_tier``), each in the order
:mod:`tierstore.protocol` argues. Decisions are logged at INFO on this module's logger.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from tierstore import ids
from tierstore.backends.base import ListEntry, ObjectInfo, RestoreSpeed, RestoreStatus, StorageBackend
from tierstore.clock import SYSTEM_CLOCK, Clock
from tierstore.codec import PLAIN, Buffer, Codec
from tierstore.concurrency import bounded_gather
from tierstore.enums import StorageTier
from tierstore.errors import (
    AccessDeniedError,
    IntegrityError,
    InUseError,
    NotSupportedError,
    ObjectNotFoundError,
    StorageFullError,
)
from tierstore.protocol.keeper import LeaseKeeper
from tierstore.protocol.manifests import Manifests
from tierstore.protocol.records import (
    DEFAULT_LEASE_TTL,
    Doomed,
    Lease,
    Tomb,
    TombState,
    as_utc,
    encode_tomb,
    is_erasing_tomb,
    quietly,
)
from tierstore.record_deletes import delete_stale

if TYPE_CHECKING:
    from tierstore.catalog.upkeep import Survey

logger = logging.getLogger(__name__)

RELISTS: Final = 4
"""Listings of the tombs in a row that may each find a tomb gone before it could be read (:meth:`References.tombs`)."""
RECORD_LIMIT: Final = 256 * 2**20
"""The largest lease or tomb read (a tomb of a million artifacts is some 20 MiB): a larger object at a record's key is
unreadable, judged by the size its listing gives, so no odd object there makes a reader hold it in memory."""


def _too_large(key: str, size: int) -> bytes:
    raise IntegrityError(f"{key} is {size} bytes, more than any record tierstore writes", key=key)


class References:
    """The protocol's records on one backend, and the deleter's side of it (:mod:`tierstore.protocol`): reads
    leases, tombs and manifests, tells the store's time, and deletes (``delete_recorded``, ``sweep``) and moves
    (``retier``) artifacts in the order that keeps every listed checkpoint whole. Maintenance (``fsck``, ``gc``), the
    CLI and the chuk integration work through it (``ArtifactsBridge.references``), reading what they need beyond the
    records with :meth:`listed`, :meth:`head` and :meth:`read`, never with the backend's own calls."""

    def __init__(
        self,
        backend: StorageBackend,
        *,
        concurrency: int,
        lease_ttl: timedelta = DEFAULT_LEASE_TTL,
        clock: Clock = SYSTEM_CLOCK,
        codec: Codec = PLAIN,
    ) -> None:
        self.backend = backend
        """The store itself, for tests and tools that plant or inspect raw objects; tierstore's own callers use the
        methods here (:meth:`listed`, :meth:`head`, :meth:`read`, :meth:`strays`...)."""
        self.clock = clock
        self._backend = backend
        self._concurrency = concurrency
        self.lease_ttl = lease_ttl
        self.codec = codec
        """How records and manifests are framed (the bridge's codec)."""
        self.manifests = Manifests(backend, concurrency, codec)
        self._tombs: dict[str, Tomb] = {}

    def lease(self, checkpoint: str, reuse: Iterable[str]) -> LeaseKeeper:
        """A lease for ``checkpoint`` naming ``reuse`` (not yet written: ``start()`` it)."""
        return LeaseKeeper(self._backend, checkpoint, reuse, self.lease_ttl, self.clock, self.codec)

    # -- reading the records -------------------------------------------------------------------------------

    async def leases(self) -> list[Lease]:
        """Every lease in the store, read afresh (they change as they are renewed)."""
        entries = [entry async for entry in self._backend.list(ids.INTENT_PREFIX) if ids.is_lease_key(entry.key)]

        async def read(key: str, written: datetime | None, size: int) -> Lease | None:
            try:  # the backend may refuse the read itself (on disk: a FIFO, directory or link at the key)
                data = await self._backend.get(key) if size <= RECORD_LIMIT else _too_large(key, size)
                if data is None:
                    return None
                return Lease.parse(key, data, written, self.codec)
            except IntegrityError:
                logger.info("lease %s cannot be read: nothing is deleted until it expires", key)
                return Lease.unreadable(key, written)

        found = await bounded_gather((read(e.key, e.last_modified, e.size) for e in entries), self._concurrency)
        return [lease for lease in found if lease is not None]

    async def tombs(self) -> tuple[list[Tomb], list[str]]:
        """Every tomb in the store (cached: a tomb never changes), and the keys of those that could not be read.

        A tomb listed but gone by the time it is read ended while this ran, and what its deleter wrote before
        ending it (a sweep's deleted tomb, written before its pending one goes) may have been missed by the
        listing; so the tombs are listed again until none vanished in between, :data:`RELISTS` times at most.
        Those still vanishing then are left out here (they no longer exist); :meth:`doomed` counts them as
        unreadable (everything reused is uploaded anew)."""
        tombs, damaged, _vanished = await self._settled_tombs()
        return tombs, damaged

    async def _settled_tombs(self) -> tuple[list[Tomb], list[str], list[str]]:
        vanished: list[str] = []
        for _ in range(RELISTS):
            tombs, damaged, vanished = await self._read_tombs()
            if not vanished:
                break
            logger.debug("tombs %s ended while being read: listing the tombs again", vanished)
        return tombs, damaged, vanished

    async def _read_tombs(self) -> tuple[list[Tomb], list[str], list[str]]:
        """One listing of the tombs, read: ``(tombs, unreadable keys, keys gone when read)``."""
        listing = self._backend.list(ids.TOMB_PREFIX)
        sizes = {entry.key: entry.size async for entry in listing if ids.is_tomb_key(entry.key)}
        keys = list(sizes)
        damaged: list[str] = []
        vanished: list[str] = []

        async def read(key: str) -> Tomb | None:
            if key in self._tombs:
                return self._tombs[key]
            try:  # the backend may refuse the read itself (on disk: a FIFO, directory or link at the key)
                data = await self._backend.get(key) if sizes[key] <= RECORD_LIMIT else _too_large(key, sizes[key])
                if data is None:
                    vanished.append(key)
                    return None
                tomb = Tomb.parse(key, data, self.codec)
            except IntegrityError:
                logger.info("tomb %s cannot be read: any artifact may be being deleted", key)
                damaged.append(key)
                return None
            self._tombs[key] = tomb
            return tomb

        found = await bounded_gather((read(k) for k in keys), self._concurrency)
        listed = set(keys)
        for key in [k for k in self._tombs if k not in listed]:
            del self._tombs[key]
        return [tomb for tomb in found if tomb is not None], damaged, vanished

    async def doomed(self) -> Doomed:
        """What the tombs say now (read by a writer after renewing its lease: W2)."""
        tombs, damaged, vanished = await self._settled_tombs()
        deleted = frozenset().union(*(t.artifacts for t in tombs if t.state == "deleted"))
        everything = bool(damaged or vanished)
        # An erasing tomb that cannot be read is still one, by its name: damage must not let a checkpoint be listed.
        erasing = any(t.state == "erasing" for t in tombs) or any(map(is_erasing_tomb, damaged))
        return Doomed(
            frozenset().union(*(t.artifacts for t in tombs)), everything=everything, deleted=deleted, erasing=erasing
        )

    async def protection(self, now: datetime | None = None) -> tuple[set[str], set[str], bool]:
        """What live leases protect: ``(artifacts they reuse, their checkpoints, everything)``. ``now``: a moment
        the store's clock has reached (:meth:`store_time`); without it, estimated from the leases themselves."""
        return self.protection_of(await self.leases(), now)

    def protection_of(self, leases: list[Lease], now: datetime | None) -> tuple[set[str], set[str], bool]:
        """:meth:`protection` from leases already read."""
        if now is None:
            now = self.estimated_store_time(lease.renewed for lease in leases)
        live = [lease for lease in leases if lease.live(now)]
        artifacts = set().union(*(lease.reuse for lease in live))
        checkpoints = {lease.checkpoint for lease in live if not lease.protects_everything}
        return artifacts, checkpoints, any(lease.protects_everything for lease in live)

    async def unreadable_blocks(self) -> list[str]:
        """Keys of ``alloc_`` block records that cannot be read (only their names are ever used: fsck reports
        them); a user's own ``alloc_ation.csv`` is none."""
        keys = [entry.key async for entry in self._backend.list(ids.ALLOC_PREFIX) if ids.parse_alloc_key(entry.key)]

        async def unreadable(key: str) -> bool:
            try:
                data = await self._backend.get(key)
                if data is not None:
                    self.codec.decode_record(data, key)
            except IntegrityError:
                return True
            return False

        found = await bounded_gather((unreadable(k) for k in keys), self._concurrency)
        return [key for key, bad in zip(keys, found, strict=True) if bad]

    # -- the store beyond the records: what maintenance reads ---------------------------------------------

    async def listed(self, prefix: str) -> list[ListEntry]:
        """Every object under ``prefix`` (``ids.PAGE_PREFIX``, ``ids.TOMB_PREFIX``...), listed once, in no order."""
        return [entry async for entry in self._backend.list(prefix)]

    async def head(self, key: str) -> ObjectInfo | None:
        """What the store tells of the object at ``key`` without reading it (size, time, metadata with the
        checkpoint it was written for, ``ckpt``); None when there is none."""
        return await self._backend.head(key)

    async def read(self, key: str) -> Buffer | None:
        """The object at ``key`` as stored, unverified (the caller decodes it); None when there is none."""
        return await self._backend.get(key)

    async def strays(self) -> list[ListEntry]:
        """Temporary files the store keeps outside its objects (the local disk's ``tmp/``); none elsewhere."""
        find = getattr(self._backend, "strays", None)
        return [] if find is None else list(await find())

    async def delete_strays(self, names: list[str]) -> list[str]:
        """Delete those of these temporary files that no write still holds; returns the names deleted."""
        delete = getattr(self._backend, "delete_strays", None)
        return [] if delete is None or not names else list(await delete(names))

    async def catalog_snapshots(self) -> Survey:
        """The catalog snapshots here: the current one, those it supersedes, the unreadable ones (``gc``, ``fsck``)."""
        from tierstore.catalog.upkeep import survey  # the catalog reads through the bridge's layers: not at import

        return await survey(self._backend)

    async def foreign(self) -> list[str]:
        """What the store holds that tierstore did not write (on the local disk), never touched; none elsewhere."""
        find = getattr(self._backend, "foreign", None)
        return [] if find is None else list(await find())

    async def restore(self, key: str, *, days: int, speed: RestoreSpeed) -> RestoreStatus:
        """Ask the store to bring the archived object at ``key`` back for ``days`` (``restore_page``): no record is
        written, as a restore changes neither an object's bytes nor its tier."""
        return await self._backend.restore(key, days=days, speed=speed)

    # -- the store's time ----------------------------------------------------------------------------------

    async def store_time(self) -> datetime | None:
        """A moment the store's clock has certainly reached: the last-modified time the store gives a record
        written now (an empty pending tomb, deleted again). None when the store cannot take a write (full, or a
        read-only credential) or reports no times."""
        try:
            key = await self.write_tomb("pending", [])
        except (StorageFullError, AccessDeniedError):
            return None
        try:
            info = await self._backend.head(key)
        finally:
            await quietly(self._backend.delete(key))
        return None if info is None else as_utc(info.last_modified)

    def estimated_store_time(self, times: Iterable[datetime | None], clock: Clock | None = None) -> datetime | None:
        """A moment the store's clock has reached, from the last-modified times of objects it listed: the newest,
        but never past this host's clock, so that one object dated in the future cannot age all the others (the
        host's clock can only make this earlier, i.e. keep more). For read-only callers, and when
        :meth:`store_time` cannot write."""
        newest = max((t for t in map(as_utc, times) if t is not None), default=None)
        return None if newest is None else min(newest, (clock or self.clock).now())

    # -- deleting ------------------------------------------------------------------------------------------

    async def write_tomb(self, state: TombState, artifacts: Iterable[str]) -> str:
        """Write a new tomb (create-if-absent); returns its key."""
        key, data = encode_tomb(state, artifacts, self.clock.now(), self.codec)
        await self._backend.put(key, data, if_absent=True)
        return key

    async def delete_recorded(self, artifacts: list[str]) -> None:
        """Delete artifacts outright (``delete_page``): tomb first, so a checkpoint about to reuse them sees it."""
        try:
            await self.write_tomb("deleted", artifacts)
        except StorageFullError:
            await self._backend.delete_many(artifacts)
            await quietly(self.write_tomb("deleted", artifacts))
            return
        await self._backend.delete_many(artifacts)

    async def retier(self, key: str, tier: StorageTier) -> None:
        """``set_tier`` through the protocol, so that no checkpoint being written lists ``key`` in a tier it no longer
        has (a listed one keeps naming it: an archive of a page a checkpoint names is the user's to make, and
        ``restore_checkpoint`` and ``fsck`` then name the pages to restore first): (M1)
        write a ``moving`` tomb naming it, (M2) list leases, (M3) refuse with InUseError while a live lease reuses it
        or the checkpoint it was written for runs, else move it, (M4) keep the tomb, for ``gc`` to prune after its
        retention as any other (deleted at once only when refused before the move was sent). A writer whose W2
        came after M1 sees the tomb, however long after the move, and uploads the page anew; one whose W2 came
        before M1 renewed its lease (W1) before M2, so M2 sees it live until the manifest is written. (A tomb
        deleted once the move ended would let a writer whose W0 came after M2 and whose proof came before M3 miss
        it at W2, and list the page in the tier it left.) An unreadable lease refuses every move until it expires."""
        moving = await self.write_tomb("moving", [key])
        moved = False  # once the move may have happened, its tomb stays until gc prunes it (M4)
        try:
            leases = await self.leases()
            if leases:  # judged in the store's time at the tomb, as a sweep judges them
                info = await self._backend.head(moving)
                reused, live, everything = self.protection_of(leases, as_utc(info.last_modified) if info else None)
            else:
                reused, live, everything = set(), set(), False
            owner = None
            if live or everything:  # an absent key is not found, whatever the leases say
                found = await self._backend.head(key)
                if found is None:
                    raise ObjectNotFoundError(key)
                owner = found.metadata.get("ckpt")
            if everything or key in reused or owner in live:
                holder = "a lease that cannot be read" if everything else "a checkpoint in progress"
                logger.info("set_tier of %s refused: %s names it", key, holder)
                raise InUseError(key, holder)
            moved = True
            await self._backend.set_tier(key, tier, tags={"tier": tier.value})
        finally:
            if not moved:
                await quietly(self._backend.delete(moving))

    async def end_expired(self, leases: list[Lease], now: datetime | None) -> list[str]:
        """``gc``'s end of leases found expired (by ``now``, the store's time); returns those deleted. Each is deleted
        only as it was when found expired: one renewed since (its writer was slow, not dead) is kept. The lease is
        read again (``head``) and deleted only while it is still expired, with a delete conditional on the version
        token that read gave, where the backend has one (``delete_if_version``: memory, S3, GCS, Azure), so a
        renewal landing between the read and the delete makes the delete fail, not the lease go. The local disk has
        no conditional unlink: there a renewal must land in the moment between the second read and the unlink (a
        few system calls) to be lost; its writer writes it again within a quarter of its lifetime, and a deleter
        sweeping inside that quarter could miss it. A lease that cannot be read is deleted outright once expired
        (it protects everything until then)."""
        conditional = getattr(self._backend, "delete_if_version", None)
        deleted: list[str] = []
        outright: list[str] = []
        for lease in leases:
            try:
                info = await self._backend.head(lease.key)
            except IntegrityError:
                outright.append(lease.key)
                continue
            if info is None:
                continue
            if replace(lease, renewed=as_utc(info.last_modified)).live(now):
                logger.info("kept lease %s: renewed since it was found expired", lease.key)
                continue
            if conditional is not None and info.version is not None:
                try:
                    gone = await conditional(lease.key, info.version)
                except NotSupportedError:
                    pass
                else:
                    if gone:
                        logger.info("deleted expired lease %s", lease.key)
                        deleted.append(lease.key)
                    else:
                        logger.info("kept lease %s: it changed since it was read", lease.key)
                    continue
            outright.append(lease.key)
        return deleted + await self.prune(outright, "expired lease")

    async def prune(self, keys: list[str], what: str) -> list[str]:
        """Delete bookkeeping records (``what`` they are, for the log: tombs past their retention, expired leases);
        returns those deleted. One the backend refuses to delete (on disk, a directory with files in it at the key)
        is kept and logged, and the others still go."""
        deleted = await self._delete_keeping_refused(keys, what)
        for key in deleted:
            logger.info("deleted %s %s", what, key)
        return deleted

    async def prune_stale_versions(self, keys: list[str], cutoff: datetime) -> list[str]:
        """Delete the stale version records at ``keys``, each only while the record there was written before
        ``cutoff`` (:mod:`tierstore.record_deletes`: a store that took its number since keeps it); returns those
        deleted."""
        return await delete_stale(self._backend, keys, cutoff, self._concurrency)

    async def _delete_keeping_refused(self, keys: list[str], what: str) -> list[str]:
        """Delete ``keys``; one the backend refuses (IntegrityError: on disk, a directory with files in it, which is
        not tierstore's) is kept and logged. Returns those deleted."""
        if not keys:
            return []
        try:
            await self._backend.delete_many(keys)
        except IntegrityError:
            deleted = []
            for key in keys:
                try:
                    await self._backend.delete(key)
                except IntegrityError as exc:
                    logger.info("kept %s %s: %s", what, key, exc)
                else:
                    deleted.append(key)
            return deleted
        return keys

    async def sweep(self, candidates: Mapping[str, str | None]) -> list[str]:
        """Delete those of ``candidates`` (artifact -> the checkpoint it was written for, if any) that no manifest
        and no live lease protects; returns what was deleted. Raises IntegrityError, deleting nothing, while a
        listed manifest cannot be read: what it references is unknown. One the backend refuses to delete (on disk,
        a directory with files in it at the key) is kept, logged and left out of the result; ``fsck`` names it."""
        if not candidates:
            return []
        pending: str | None = None
        try:
            pending = await self.write_tomb("pending", candidates)
        except StorageFullError:
            pending = None  # see :mod:`tierstore.protocol`: on a full store the tomb follows the deletion
        try:
            # The store's time at the pending tomb: every lease listed after it is judged by a time it has reached.
            info = None if pending is None else await self._backend.head(pending)
            reused, live_checkpoints, everything = await self.protection(as_utc(info.last_modified) if info else None)
            manifests, damaged = await self.manifests.listed()
            if damaged:
                raise IntegrityError(
                    f"checkpoint manifest {damaged[0]} cannot be read, so what it references is unknown: nothing was "
                    "deleted (run fsck; delete that checkpoint to go on)",
                    key=damaged[0],
                )
            if everything:
                return []
            referenced = reused.union(*({e.artifact_id for e in m.pages} for m in manifests.values()))
            doomed = sorted(
                key for key, owner in candidates.items() if key not in referenced and owner not in live_checkpoints
            )
            if doomed:
                if pending is None:
                    doomed = await self._delete_keeping_refused(doomed, "unreferenced artifact")
                    await quietly(self.write_tomb("deleted", doomed))
                else:
                    try:
                        await self.write_tomb("deleted", doomed)
                    except StorageFullError:  # the pending tomb fit, this one not: it names them while they go
                        doomed = await self._delete_keeping_refused(doomed, "unreferenced artifact")
                        await quietly(self.write_tomb("deleted", doomed))
                        return doomed
                    doomed = await self._delete_keeping_refused(doomed, "unreferenced artifact")
            return doomed
        finally:
            if pending is not None:
                await quietly(self._backend.delete(pending))
