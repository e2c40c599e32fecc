"""What keeps an artifact alive: manifests, the leases of checkpoints in progress, and tombs of deletions.

Used by the bridge (checkpoints, ``delete_checkpoint``, ``delete_page``) and by maintenance (``fsck``, ``gc``), so
that every deletion goes through one protocol.

Records (frames of kind ``record``, see :mod:`tierstore.codec`):

* ``intent_{checkpoint}`` - the lease of a checkpoint in progress: the artifacts it reuses, and when it was last
  renewed. A running checkpoint renews it every ``ttl / 4`` (its event loop's monotonic clock); once ``ttl``
  passes without renewal (the writer crashed), in the store's time, it protects nothing any more. Artifacts
  written for a checkpoint carry its id (object metadata ``ckpt``), so a live lease protects them too, however
  long the checkpoint runs.
* ``tomb_{time}_{random}_p`` / ``_d`` - artifacts about to be deleted (pending) / deleted. Kept until ``gc``
  prunes them after its tomb retention.

The order that makes this safe. A writer: (W0) writes its lease naming the artifacts it may reuse, proves them
(below) and uploads anew every page whose artifact it cannot prove, uploads its new artifacts, (W1) renews the
lease, (W2) lists tombs and uploads again any of its artifacts they name, (W3) writes the manifest, (W4) deletes
the lease. A deleter (:meth:`References.sweep`): (D1) writes a pending tomb naming its candidates, (D2) lists
leases, (D3) lists manifests, (D4) writes a deleted tomb and deletes the candidates that no live lease and no
manifest protects. If D1 came before W2, the writer sees the tomb and does not use those artifacts. If D1 came
after W2, then D2 came after W1, so D2 sees the lease (live, as W3 finishes well within ``ttl`` of W1: the
writer sends W3 only while less than ``ttl / 2`` has passed since it sent W1, by its monotonic clock, and else
does W1 and W2 again), or, once W4 is done, D3 sees the manifest. Either way no listed checkpoint loses an
artifact. The same holds for artifacts a checkpoint uploaded itself: a deleter only takes them while the lease
naming their checkpoint is not live, and W2 then finds the tomb. (``delete_page`` writes its tomb and deletes,
checking nothing: if its tomb comes after W2, it deletes a page of a listed checkpoint, as it may.)

Time. Hosts' wall clocks disagree, step back and jump ahead, so no decision here compares one host's clock with
another's or with the store's. An age is the store's own time (a record written now, as :meth:`References.store_time`
reads it: the deleter's pending tomb, or ``gc``'s probe) minus an object's last-modified time as the backend reports
it (set by the server: S3 ``LastModified``, GCS ``updated``, Azure ``Last-Modified``, a file's mtime from the kernel,
the in-memory store's own clock), to within the store's resolution (a second on S3 and Azure). A lease is live until
``ttl`` after its last write in that time, whatever time its writer put inside it; orphans, strays and tombs age the
same way. Where no record can be written (a full store) or for read-only callers, the store's time is estimated as the
newest last-modified time listed, never past this host's clock: an earlier estimate only keeps more. A host's clock
(:mod:`tierstore.clock`) names records and checkpoints, and says nothing about what may be deleted; the writer's
renewal period is measured with its monotonic clock.

Reuse never trusts a reference (an entry of a listed manifest, or of a checkpoint this process made or restored):
tombs tell only of deletions under way or recent, and nothing tells of damage, removal by hand or a tier change.
So after W0 the writer *proves* each artifact it would reuse
(:meth:`tierstore.artifacts.objects.ObjectArtifacts.prove`): one ``head`` shows it there, not archived, in the
entry's tier, of the entry's size, with its checksum (unique to one write), and with the version token
(``ObjectInfo.version``: ETag, generation, on disk inode and change time) recorded when it was last verified;
without that token (none recorded, none given, or another) the artifact is read whole and its frame verified
against the checksum, and the new manifest records the token of that ``head``. What fails is uploaded anew. A
deletion that finished before the proof fails it, whether or not ``gc`` has pruned its tomb since. One that had
not yet deleted the artifact wrote its tomb first (D1): W2 finds it, or D2 came after W1 and sees the lease that
names the artifact (W0 came before the proof), as above. That holds while W0 to W2 takes less than the tomb
retention of ``gc`` (7 days). A tier change (``set_tier``) is ordered like a deletion (:meth:`References.retier`): a
``moving`` tomb first, then the leases, and it refuses (InUseError) an artifact that a live lease names or whose
checkpoint runs; so one that lands after the proof makes the writer upload anew (W2 sees its tomb) or is refused.
Damage after the proof goes through no protocol, like damage after the manifest is written: ``fsck`` and
``restore_checkpoint`` report it. A tier change by another program (a lifecycle rule) is such damage.

A record that cannot be read (bytes that are no frame, another record's frame; on disk a directory, FIFO, socket or
link at its key) protects everything it could: an unreadable lease counts as live and protecting every artifact
until ``_UNREADABLE_LEASE_TTL`` after its last write, when ``gc`` deletes it as any expired lease; an unreadable tomb
makes every checkpoint upload anew what it would reuse, until ``gc`` prunes it after the tomb retention; an unreadable
manifest stops every sweep. Nothing stops on one: ``fsck`` names it by its key (tests/test_odd_records.py).

On a full store (:class:`~tierstore.errors.StorageFullError`) a deletion cannot write its tomb first; it then
deletes first and writes the tomb after, so that deleting still frees space. In that narrow case a checkpoint
reusing the very artifact being deleted at that moment could list it; ``fsck`` reports it as missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from tierstore import ids
from tierstore.backends.base import StorageBackend
from tierstore.clock import SYSTEM_CLOCK, Clock
from tierstore.codec import PLAIN, Codec
from tierstore.concurrency import bounded_gather
from tierstore.enums import StorageTier
from tierstore.errors import (
    AccessDeniedError,
    BackendUnavailableError,
    IntegrityError,
    InUseError,
    ObjectNotFoundError,
    StorageFullError,
    TierstoreError,
)
from tierstore.models import CheckpointManifest

logger = logging.getLogger(__name__)

DEFAULT_LEASE_TTL: Final = timedelta(minutes=10)
_UNREADABLE_LEASE_TTL: Final = timedelta(hours=6)
"""How long a lease that cannot be read counts as live (from its last write), protecting everything; ``gc`` then
deletes it as it deletes any expired lease."""
_RENEW_ATTEMPTS: Final = 3
_STOP_WAIT: Final = 60.0

TombState = Literal["pending", "deleted", "moving"]
_SUFFIX: Final[dict[TombState, str]] = {"pending": "p", "deleted": "d", "moving": "m"}


@dataclass(frozen=True, slots=True)
class Intent:
    """The lease of a checkpoint in progress."""

    key: str
    checkpoint: str
    reuse: frozenset[str]
    renewed: datetime | None
    """When the store last wrote the lease (its last-modified, the store's time); None where it does not say."""
    ttl: timedelta
    protects_everything: bool = False
    """Set for a lease that could not be read: until it expires nothing may be deleted."""

    def live(self, now: datetime | None) -> bool:
        """Live unless ``now`` (the store's time, see :meth:`References.store_time`) is ``ttl`` past its last
        write; a lease whose age cannot be told is live."""
        return now is None or self.renewed is None or now < self.renewed + self.ttl


@dataclass(frozen=True, slots=True)
class Tomb:
    key: str
    state: TombState
    artifacts: frozenset[str]
    at: datetime


@dataclass(frozen=True, slots=True)
class Doomed:
    """Artifacts named by tombs: being deleted or deleted. ``everything`` when a tomb could not be read."""

    artifacts: frozenset[str]
    everything: bool = False
    deleted: frozenset[str] = frozenset()
    """Those of ``artifacts`` a deleted tomb names: gone, or about to go whatever leases say."""

    def __contains__(self, artifact: object) -> bool:
        return self.everything or artifact in self.artifacts


def _when(value: Any) -> datetime:
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    if parsed is None:
        raise IntegrityError("record has no valid time")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _names(value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise IntegrityError("record does not hold a list of keys")
    return frozenset(value)


class Manifests:
    """Checkpoint manifests, read once each (a manifest never changes)."""

    def __init__(self, backend: StorageBackend, concurrency: int, codec: Codec = PLAIN) -> None:
        self._backend = backend
        self._concurrency = concurrency
        self._codec = codec
        self._cache: dict[str, CheckpointManifest] = {}

    async def get(self, key: str) -> CheckpointManifest | None:
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        data = await self._backend.get(key)
        if data is None:
            return None
        try:
            manifest = self._codec.decode_manifest(data, key)
        except IntegrityError as exc:
            raise IntegrityError(f"{key}: {exc}", key=key) from exc
        self._cache[key] = manifest
        return manifest

    def remember(self, manifest: CheckpointManifest) -> None:
        self._cache[manifest.checkpoint_id] = manifest

    def forget(self, key: str) -> None:
        self._cache.pop(key, None)

    async def keys(self) -> list[str]:
        """Ids of the listed checkpoints, oldest first."""
        return sorted([entry.key async for entry in self._backend.list(ids.CHECKPOINT_PREFIX)])

    async def listed(self, keys: Iterable[str] | None = None) -> tuple[dict[str, CheckpointManifest], list[str]]:
        """The listed manifests (or those of ``keys``), and the keys of those that could not be read."""
        todo = await self.keys() if keys is None else list(keys)

        async def read(key: str) -> CheckpointManifest | None:
            return await self.get(key)

        results = await bounded_gather((read(k) for k in todo), self._concurrency, settle=True)
        manifests: dict[str, CheckpointManifest] = {}
        damaged: list[str] = []
        for key, result in zip(todo, results, strict=True):
            if isinstance(result, IntegrityError):
                damaged.append(key)
            elif isinstance(result, Exception):
                raise result
            elif result is not None:
                manifests[key] = result
        return manifests, damaged


class Lease:
    """A checkpoint's lease (``intent_`` record), renewed in the background while the checkpoint runs."""

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
        self._checkpoint = checkpoint
        self._reuse = sorted(set(reuse))
        self._ttl = ttl
        self._task: asyncio.Task[None] | None = None
        self._written_at: float | None = None
        """This process's monotonic time when the last write of the lease that succeeded was sent."""

    def fresh(self) -> bool:
        """Whether the lease was written less than ``ttl / 2`` ago, by this process's monotonic clock: time enough
        for the manifest to land while every deleter still sees the lease live (see the module docstring)."""
        if self._written_at is None:
            return False
        return self._clock.monotonic() - self._written_at < self._ttl.total_seconds() / 2

    async def _write(self, *, if_absent: bool) -> None:
        sent = self._clock.monotonic()
        await self._backend.put(self.key, self._record(), if_absent=if_absent)
        self._written_at = sent if self._written_at is None else max(self._written_at, sent)

    def _record(self) -> bytes:
        record = {
            "checkpoint": self._checkpoint,
            "reuse": self._reuse,
            "renewed": self._clock.now().isoformat(),
            "ttl": self._ttl.total_seconds(),
        }
        return self._codec.encode_record(self.key, record).data

    async def start(self) -> None:
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
        while True:
            await asyncio.sleep(period)
            with contextlib.suppress(TierstoreError):
                await self.renew()

    async def _stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # Bounded: a renewal stuck past its own deadline must not hold up the checkpoint that owns it.
            await asyncio.wait({task}, timeout=_STOP_WAIT)

    async def release(self) -> None:
        """The checkpoint is complete or cleaned up: the lease goes."""
        await self._stop()
        await _quietly(self._backend.delete(self.key))

    async def abandon(self) -> None:
        """Stop renewing but leave the lease to expire: what it protects may still be named by a manifest that
        is being written (a cancelled write that lands later)."""
        await self._stop()


class References:
    """The deletion protocol of the module docstring, on one backend."""

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
        self.clock = clock
        self.codec = codec
        """How records and manifests are framed (the bridge's codec)."""
        self._backend = backend
        self._concurrency = concurrency
        self.lease_ttl = lease_ttl
        self.manifests = Manifests(backend, concurrency, codec)
        self._tombs: dict[str, Tomb] = {}

    def lease(self, checkpoint: str, reuse: Iterable[str]) -> Lease:
        return Lease(self._backend, checkpoint, reuse, self.lease_ttl, self.clock, self.codec)

    # -- reading the records -------------------------------------------------------------------------------

    async def intents(self) -> list[Intent]:
        """Every lease in the store, read afresh (they change as they are renewed)."""
        entries = [entry async for entry in self._backend.list(ids.INTENT_PREFIX)]

        async def read(key: str, written: datetime | None) -> Intent | None:
            try:  # the backend may refuse the read itself (on disk: a FIFO, directory or link at the key)
                data = await self._backend.get(key)
                if data is None:
                    return None
                return _intent(key, self.codec.decode_record(data, key), written)
            except IntegrityError:
                logger.info("lease %s cannot be read: nothing is deleted until it expires", key)
                return Intent(key, "", frozenset(), written, _UNREADABLE_LEASE_TTL, protects_everything=True)

        found = await bounded_gather((read(e.key, e.last_modified) for e in entries), self._concurrency)
        return [intent for intent in found if intent is not None]

    async def tombs(self) -> tuple[list[Tomb], list[str]]:
        """Every tomb in the store (cached: a tomb never changes), and the keys of those that could not be read."""
        keys = [entry.key async for entry in self._backend.list(ids.TOMB_PREFIX)]
        damaged: list[str] = []

        async def read(key: str) -> Tomb | None:
            if key in self._tombs:
                return self._tombs[key]
            try:  # the backend may refuse the read itself (on disk: a FIFO, directory or link at the key)
                data = await self._backend.get(key)
                if data is None:
                    return None
                tomb = _tomb(key, self.codec.decode_record(data, key))
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
        return [tomb for tomb in found if tomb is not None], damaged

    async def doomed(self) -> Doomed:
        tombs, damaged = await self.tombs()
        deleted = frozenset().union(*(t.artifacts for t in tombs if t.state == "deleted"))
        return Doomed(frozenset().union(*(t.artifacts for t in tombs)), everything=bool(damaged), deleted=deleted)

    async def protection(self, now: datetime | None = None) -> tuple[set[str], set[str], bool]:
        """What live leases protect: ``(artifacts they reuse, their checkpoints, everything)``. ``now``: a moment
        the store's clock has reached (:meth:`store_time`); without it, estimated from the leases themselves."""
        return self.protection_of(await self.intents(), now)

    def protection_of(self, intents: list[Intent], now: datetime | None) -> tuple[set[str], set[str], bool]:
        """:meth:`protection` from leases already read."""
        if now is None:
            now = self.estimated_store_time(i.renewed for i in intents)
        live = [intent for intent in intents if intent.live(now)]
        artifacts = set().union(*(intent.reuse for intent in live))
        checkpoints = {intent.checkpoint for intent in live if not intent.protects_everything}
        return artifacts, checkpoints, any(i.protects_everything for i in live)

    async def unreadable_blocks(self) -> list[str]:
        """Keys of ``alloc_`` block records that cannot be read (only their names are ever used: fsck reports
        them)."""
        keys = [entry.key async for entry in self._backend.list(ids.ALLOC_PREFIX)]

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
            await _quietly(self._backend.delete(key))
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
        now = self.clock.now()
        key = f"{ids.timestamped(ids.TOMB_PREFIX, now)}_{_SUFFIX[state]}"
        record = {"state": state, "artifacts": sorted(artifacts), "at": now.isoformat()}
        await self._backend.put(key, self.codec.encode_record(key, record).data, if_absent=True)
        return key

    async def delete_recorded(self, artifacts: list[str]) -> None:
        """Delete artifacts outright (``delete_page``): tomb first, so a checkpoint about to reuse them sees it."""
        try:
            await self.write_tomb("deleted", artifacts)
        except StorageFullError:
            await self._backend.delete_many(artifacts)
            await _quietly(self.write_tomb("deleted", artifacts))
            return
        await self._backend.delete_many(artifacts)

    async def retier(self, key: str, tier: StorageTier) -> None:
        """``set_tier`` through the protocol, so that no checkpoint lists ``key`` in a tier it no longer has: (M1)
        write a ``moving`` tomb naming it, (M2) list leases, (M3) refuse with InUseError while a live lease reuses it
        or the checkpoint it was written for runs, else move it, (M4) delete the tomb. A writer whose W2 came after
        M1 sees the tomb and uploads the page anew; one whose W2 came before M1 renewed its lease (W1) before M2, so
        M2 sees it live until the manifest is written. An unreadable lease refuses every move until it expires."""
        moving = await self.write_tomb("moving", [key])
        try:
            intents = await self.intents()
            if intents:  # judged in the store's time at the tomb, as a sweep judges them
                info = await self._backend.head(moving)
                reused, live, everything = self.protection_of(intents, as_utc(info.last_modified) if info else None)
            else:
                reused, live, everything = set(), set(), False
            owner = None
            if live:
                found = await self._backend.head(key)
                if found is None:
                    raise ObjectNotFoundError(key)
                owner = found.metadata.get("ckpt")
            if everything or key in reused or owner in live:
                holder = "a lease that cannot be read" if everything else "a checkpoint in progress"
                logger.info("set_tier of %s refused: %s names it", key, holder)
                raise InUseError(key, holder)
            await self._backend.set_tier(key, tier, tags={"tier": tier.value})
        finally:
            await _quietly(self._backend.delete(moving))

    async def sweep(self, candidates: Mapping[str, str | None]) -> list[str]:
        """Delete those of ``candidates`` (artifact -> the checkpoint it was written for, if any) that no manifest
        and no live lease protects; returns what was deleted. Raises IntegrityError, deleting nothing, while a
        listed manifest cannot be read: what it references is unknown."""
        if not candidates:
            return []
        pending: str | None = None
        try:
            pending = await self.write_tomb("pending", candidates)
        except StorageFullError:
            pending = None  # see the module docstring: on a full store the tomb follows the deletion
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
                    await self._backend.delete_many(doomed)
                    await _quietly(self.write_tomb("deleted", doomed))
                else:
                    try:
                        await self.write_tomb("deleted", doomed)
                    except StorageFullError:  # the pending tomb fit, this one not: it names them while they go
                        await self._backend.delete_many(doomed)
                        await _quietly(self.write_tomb("deleted", doomed))
                        return doomed
                    await self._backend.delete_many(doomed)
            return doomed
        finally:
            if pending is not None:
                await _quietly(self._backend.delete(pending))


def _intent(key: str, record: dict[str, Any], written: datetime | None) -> Intent:
    checkpoint = record.get("checkpoint")
    ttl = record.get("ttl")
    if not isinstance(checkpoint, str) or not isinstance(ttl, int | float) or ttl <= 0:
        raise IntegrityError(f"lease {key} is malformed")
    _when(record.get("renewed"))  # the writer's own clock: for people to read, never for deciding
    return Intent(key, checkpoint, _names(record.get("reuse")), as_utc(written), timedelta(seconds=ttl))


def as_utc(when: datetime | None) -> datetime | None:
    """A backend's time as an aware UTC datetime (a naive one is read as UTC)."""
    if when is None:
        return None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def _tomb(key: str, record: dict[str, Any]) -> Tomb:
    state = record.get("state")
    if state not in _SUFFIX:
        raise IntegrityError(f"tomb {key} is malformed")
    tomb_state: TombState = state
    return Tomb(key, tomb_state, _names(record.get("artifacts")), _when(record.get("at")))


async def _quietly(awaitable: Awaitable[Any]) -> None:
    """Clean-up that must not mask the error being handled; what it leaves behind, ``gc`` collects."""
    try:
        await awaitable
    except Exception:  # noqa: BLE001 - deliberately broad: this runs while another error propagates
        return
