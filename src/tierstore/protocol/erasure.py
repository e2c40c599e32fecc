"""Erasure of a scope (``delete_user``, ``delete_session``; issue 28): every page, version, checkpoint, lease, tomb
and registry record under a scope's key prefix goes, safely against checkpoints and stores of that scope running at
the same time. :func:`erase_scope` does it for any prefix; :func:`erase_user` and :func:`erase_session` name the
prefix and registry records of a user (all their sessions too, nested under its prefix) or of one session.

The whole prefix is listed, and what tierstore writes in a scope (pages, manifests, leases, tombs, version records)
is deleted, each recognised by the whole shape of its name (:func:`tierstore.ids.kind_of`); a key of any other shape
(a user's file in the store's directory, ``tomb_stone.txt`` too) or one the store refuses to delete as not
tierstore's is left and reported (``Erased.foreign``). Nothing outside the prefix is ever touched, but the
scope's registry records (``scope_{U}``, ``scope_{U}.{S}`` at the root) at the very end. A user's prefix holds its
shared scope and, nested under it, each of its sessions' scopes (``u-{U}.s-{S}.``): each is a scope of the protocol
of its own (its own leases, tombs, manifests), so each gets its own erasing tomb before anything in it is deleted.

The steps, for the prefix and for each scope nested in it as it is first listed:

* (E1) write an *erasing* tomb (``tomb_{time}_{random}_e``, create-if-absent, naming nothing) in the scope.
  Every checkpoint's W2 (:mod:`tierstore.protocol.writer`) reads the scope's tombs, and a session's checkpoint lists
  its user's too (a user's erasure may stop between its own E1 and the session's); one that finds an erasing tomb
  fails with :class:`~tierstore.errors.ScopeErasingError`, deleting what it uploaded and its lease, before any
  manifest is written. ``gc`` never prunes an erasing tomb: only its erasure ends it.
* (E2) list the scope's leases and wait until each live one is deleted or expired, in the store's time.
* (E3) list the whole prefix; a scope listed for the first time gets its erasing tomb (E1) and its leases waited for
  (E2), and the prefix is listed again; a live lease listed: wait for it (E2), and list again; else delete what was
  listed but erasing tombs, manifests first (so no checkpoint is ever listed without its pages while it goes), and
  list again, until a listing finds nothing but erasing tombs.
* (E4) wait one settle period (the longest a ``store_page`` may take, :func:`settle_period`), and E3 again.
* After E4, what killed writers left of writes under the prefix that is no object is discarded where the backend
  can (``discard_unfinished``): the local disk's temporary files no write holds, S3's unfinished multipart uploads.
* On a bucket that keeps versions, the prefix's history is purged (:mod:`tierstore.protocol.history`) after E4's
  last deletion, while the scope is still erasing.
* (E5) delete the scope's registry records, sessions' before the user's, and purge their history; then, last, the
  erasing tombs that last listing found, sessions' before the user's, each with its versions (deleted by version
  id: no delete marker is left). Every step before the last tomb goes leaves it there: a crash anywhere leaves the
  scope erasing (refusing checkpoints), ``tierstore users`` shows it erasing while its record is there, ``fsck``
  reports it as an erasure to run again once the record is gone, and the same call resumes it. Only keys that are
  exactly the records of the scope and of the scopes nested in it (:func:`~tierstore.scopes.scope_of_record`) are
  deleted or purged at the root: another root key beginning like one (``scope_{U}-notes``) is foreign.

Why no checkpoint of an erased scope is ever listed afterwards, nor any listed half-erased. A checkpoint whose W2
came after E1 of its scope sees the erasing tomb and fails (listing nothing; it or ``gc`` after it deletes what it
uploaded, and what is left when E3 lists is deleted there). One whose W2 came before E1 had written its lease (W0)
before that, so E2 lists it: E2 waits until its lease is deleted (W4, its manifest is then there for E3 to delete, with
every page it uploaded, all uploaded before W2) or expired (its writer sends W3 only within ``ttl / 2`` of W1, so an
expired lease writes no manifest any more; a writer paused past that is caught by its own fence,
``_fence`` in :mod:`.writer`). A checkpoint whose lease lands after E1 either has its lease listed by E3 or E4 (waited
for, then deleted with its work) or lands after their last listing, and then its W2 sees the tomb and it fails, or
its W2 comes after E5 and it belongs to the scope's next life, whole: nothing of the next life was listed, so
nothing of it was deleted. A scope nested in the prefix (a session of the user being erased) that first appears in
E3 is the same argument started at its own E1, which precedes every deletion in it. Reuse cannot list what E3
deleted: a checkpoint proving an artifact E3 then deletes has its W2 after E1 (it fails), or its lease was listed
and waited for before anything was deleted. Deletion goes manifests first, so while an erasure runs a listed
checkpoint is whole or gone.

Why no page stored before the erasure survives it. ``store_page`` takes no lease and reads no tomb (see the
README). One that ended before the erasure began is listed by E3. One still running when E4's wait begins ends within
the settle period, or fails, and E4's E3 lists it. One started during the erasure may be ordered after it: a store
that outlives E4 (a process stopped for longer than the settle period) may land after E5, as a page of the scope's
next life, whose registry record that store writes again (every write looks: :mod:`tierstore.artifacts.scoped`). Object
stores have no multi-object transaction: this is the guarantee, stated as such in the README.

Waiting. Every wait goes through ``sleep`` (default :func:`asyncio.sleep`) and is measured on ``clock``'s monotonic
time, so tests pass a hook and wait for nothing; both, and every other knob, are fields of one
:class:`ErasureOptions`. A lease still live after ``patience`` of waiting (a running chuk
agent's, which lives as long as its agent) ends the call with :class:`~tierstore.errors.InUseError`; so does a scope
written faster than it can be emptied (more than :data:`ROUNDS` listings in a row find new objects). The scope then
stays erasing: its checkpoints are refused, and the next call resumes it.

Two erasures at once (of one scope, or of a user and one of its sessions) each write their own tomb in each scope
they erase, and each ends (E5) by deleting the erasing tombs of its last listing, the other's too. So an erasure never
takes its own tomb's absence as another's success (a session's erasure is not its user's): before each deletion it
checks that its tombs are all still there, and writes a scope's again where one is gone (E1), waits for that scope's
leases (E2) and lists again, so it deletes nothing a checkpoint begun while the scope was unmarked could be writing
without having waited for it first. Each erasure ends after its own E5, so this re-marking ends too. A crashed
erasure's tomb is one of these: the next call deletes it at its E5.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from tierstore import ids
from tierstore.backends.base import ListEntry, StorageBackend
from tierstore.clock import SYSTEM_CLOCK, Clock
from tierstore.errors import AccessDeniedError, IntegrityError, InUseError, InvalidInputError, NotSupportedError
from tierstore.protocol.history import HistoryPurged, delete_leaving_no_history, purge_history
from tierstore.protocol.records import DEFAULT_LEASE_TTL, is_erasing_tomb
from tierstore.protocol.references import References
from tierstore.scope_codec import ScopedCodec
from tierstore.scope_records import session_key, user_key
from tierstore.scopes import check_scope_id, scope_of, scope_of_record, scope_prefix, user_prefix

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
"""How an erasure waits ``seconds`` (tests pass a hook that moves a clock instead)."""

LOCAL_SETTLE: Final = timedelta(seconds=10)
"""The settle period on a store without request deadlines (memory, the local disk): a ``store_page`` there is a few
system calls, long done after this unless its process is stopped."""
ROUNDS: Final = 32
"""Listings in a row of E3 that may each find objects to delete, before an erasure gives up on a scope still being
written (InUseError; the scope stays erasing)."""
POLL: Final = timedelta(seconds=1)
"""How often a live lease is looked at again while an erasure waits for it."""


def settle_period(backend: StorageBackend) -> timedelta:
    """E4's wait: the longest a ``store_page`` may take on ``backend``. On a cloud, its request deadline times its
    attempts (``CloudOptions.retry``: 30 s x 6 by default): a ``store_page`` makes fewer calls one after the other
    than that, each ending within one deadline, all its attempts included (a page moved takes a second more per
    MiB: pass ``settle=`` for stores of pages far over a MiB). Elsewhere :data:`LOCAL_SETTLE`."""
    retry = getattr(getattr(backend, "options", None), "retry", None)
    deadline, attempts = getattr(retry, "deadline", None), getattr(retry, "max_attempts", None)
    if not isinstance(deadline, int | float) or not isinstance(attempts, int):
        return LOCAL_SETTLE
    return timedelta(seconds=deadline * attempts)


@dataclass(slots=True)
class Erased:
    """What an erasure did: the prefix, the scopes erased in it (their prefixes), objects and registry records
    deleted, leases it waited for, and whether it found an earlier erasure's tomb (it resumed one)."""

    prefix: str
    scopes: list[str] = field(default_factory=list)
    deleted: int = 0
    records: list[str] = field(default_factory=list)
    waited_for: int = 0
    resumed: bool = False
    foreign: list[str] = field(default_factory=list)
    """Keys under the prefix that tierstore never writes there (a user's file in the store's directory), or that the
    store refused to delete as not tierstore's (a directory with files in it): left as they were."""
    unfinished: int = 0
    """Unfinished writes of the scope's keys discarded after E4: killed writers' temporary files on the local disk,
    unfinished multipart uploads on S3 (GCS and Azure: README, erasure)."""
    unfinished_left: str = ""
    """Why unfinished writes could not be looked for or discarded (the credentials may not), else empty."""
    history: HistoryPurged = field(default_factory=HistoryPurged)
    """The noncurrent versions and delete markers of the scope's keys purged from a versioned bucket, and what was
    not (:mod:`tierstore.protocol.history`)."""


@dataclass(slots=True)
class _Scope:
    prefix: str
    refs: References
    tomb: str
    """This erasure's erasing tomb, as a key of the whole store."""


class _Erasure:
    def __init__(
        self,
        backend: StorageBackend,
        prefix: str,
        registry: str | None,
        *,
        settle: timedelta,
        patience: timedelta,
        poll: timedelta,
        lease_ttl: timedelta,
        clock: Clock,
        sleep: Sleep,
        concurrency: int,
    ) -> None:
        self.backend = backend
        self.prefix = prefix
        self.registry = registry
        self.settle = settle
        self.patience = patience
        self.poll = poll
        self.lease_ttl = lease_ttl
        self.clock = clock
        self.sleep = sleep
        self.concurrency = concurrency
        self.scopes: dict[str, _Scope] = {}
        self.report = Erased(prefix)
        self.erasing_tombs: list[str] = []

    async def run(self) -> Erased:
        await self._mark(self.prefix)  # E1
        for scope in sorted({self._scope_of(e.key) for e in await self._listed()} - {self.prefix}):
            await self._mark(scope)
        for marked in list(self.scopes.values()):  # E2
            await self._wait_for_leases(marked)
        await self._clear()  # E3
        logger.info("erasure of %s: waiting %s for stores in flight to land", self.prefix, self.settle)
        await self.sleep(self.settle.total_seconds())  # E4
        await self._clear()
        await self._discard_unfinished()
        await purge_history(self.backend, self.prefix, self._tierstores, self.report.history)  # the history, erasing
        # E5: the registry records and their history, then the erasing tombs (sessions' before the user's), last.
        if self.registry is not None:
            listed = [entry.key for entry in await self._listed(self.registry)]
            for key in listed:
                if not self._own_record(key):
                    self._foreign(key)
            records = sorted(filter(self._own_record, listed), key=len, reverse=True)
            for key in records:  # one at a time, sessions' first: a crash leaves the user's record, naming it
                await self.backend.delete(key)
            self.report.records = records
            await purge_history(self.backend, self.registry, self._own_record, self.report.history)
        tombs = sorted(self.erasing_tombs, key=len, reverse=True)
        await delete_leaving_no_history(self.backend, self.prefix, tombs, self.report.history)
        self.report.scopes = sorted(self.scopes)
        logger.info("erasure of %s: done, %d objects deleted", self.prefix, self.report.deleted)
        return self.report

    def _tierstores(self, key: str) -> bool:
        """Is ``key`` one tierstore writes in a scope (a page, manifest, lease, tomb, version record or catalog
        snapshot, by its whole shape: :func:`tierstore.ids.kind_of`) and one the store has not refused to delete as
        another's? Anything else is left, and reported as foreign."""
        if ids.kind_of(key[len(self._scope_of(key)) :]) is None or key in self.report.foreign:
            self._foreign(key)
            return False
        return True

    def _own_record(self, key: str) -> bool:
        """Is ``key`` exactly the registry record of the erased scope or of a scope nested in it (a session of the
        erased user)? A root key that merely starts like one (``scope_{U}-notes``) is another's."""
        scope = scope_of_record(key)
        return scope is not None and scope.startswith(self.prefix)

    def _foreign(self, key: str) -> None:
        if key not in self.report.foreign:
            logger.warning("erasure of %s: %s is not tierstore's, left as it is", self.prefix, key)
            self.report.foreign.append(key)

    def _scope_of(self, key: str) -> str:
        """The scope a key under the prefix belongs to: a session's nested under a user's prefix, or the prefix
        (a key under a session's prefix that only resembles a nested scope's stays the session's)."""
        scope = scope_of(key)
        return scope if scope.startswith(self.prefix) else self.prefix

    async def _listed(self, prefix: str | None = None) -> list[ListEntry]:
        return [entry async for entry in self.backend.list(self.prefix if prefix is None else prefix)]

    async def _mark(self, prefix: str) -> _Scope:
        """E1 in the scope at ``prefix``: its erasing tomb, before anything in it is deleted."""
        from tierstore.artifacts.scoped import PrefixedBackend  # on use: tierstore.artifacts imports the protocol

        view = PrefixedBackend(self.backend, prefix)
        refs = References(
            view,
            concurrency=self.concurrency,
            lease_ttl=self.lease_ttl,
            clock=self.clock,
            codec=ScopedCodec("none", prefix),
        )
        if any([is_erasing_tomb(entry.key) async for entry in view.list(ids.TOMB_PREFIX)]):
            self.report.resumed = True
        scope = _Scope(prefix, refs, prefix + await refs.write_tomb("erasing", []))
        self.scopes[prefix] = scope
        logger.info("erasure of %s: erasing tomb %s written", self.prefix, scope.tomb)
        return scope

    async def _wait_for_leases(self, scope: _Scope) -> bool:
        """E2 in ``scope``: wait until no lease there is live, in the store's time; whether any was. InUseError
        after ``patience`` of waiting."""
        started = self.clock.monotonic()
        waited: set[str] = set()
        while True:
            leases = await scope.refs.leases()
            if not leases:
                break
            now = await scope.refs.store_time()
            if now is None:
                now = scope.refs.estimated_store_time((lease.renewed for lease in leases), self.clock)
            live = [lease for lease in leases if lease.live(now)]
            if not live:
                break
            waited.update(lease.key for lease in live)
            if self.clock.monotonic() - started >= self.patience.total_seconds():
                raise InUseError(
                    scope.prefix + live[0].key,
                    "a running checkpoint or agent of the scope being erased (the scope stays erasing, refusing "
                    "checkpoints: erase it again once that has ended)",
                )
            logger.info("erasure of %s: waiting for %d live leases in %s", self.prefix, len(live), scope.prefix)
            await self.sleep(self.poll.total_seconds())
        self.report.waited_for += len(waited)
        return bool(waited)

    async def _clear(self) -> None:
        """E3: delete everything under the prefix but erasing tombs, until a listing finds nothing else."""
        for _ in range(ROUNDS):
            entries = await self._listed()
            self.erasing_tombs = [e.key for e in entries if is_erasing_tomb(e.key[len(self._scope_of(e.key)) :])]
            tombs = set(self.erasing_tombs)
            rest = [e.key for e in entries if e.key not in tombs and self._tierstores(e.key)]
            if not rest:
                return
            new = sorted({self._scope_of(key) for key in rest} - set(self.scopes))
            waited = False
            for prefix in new:
                await self._wait_for_leases(await self._mark(prefix))
                waited = True
            lease_scopes = {self._scope_of(key) for key in rest if ids.is_lease_key(key[len(self._scope_of(key)) :])}
            for prefix in sorted(lease_scopes - set(new)):
                waited |= await self._wait_for_leases(self.scopes[prefix])
            if waited or await self._marked_again():
                continue  # what those checkpoints did since is in the next listing
            await self._delete(rest)
        raise InUseError(self.prefix, "writers still storing into the scope being erased (it stays erasing)")

    async def _marked_again(self) -> bool:
        """Whether a tomb of this erasure was gone (another erasure's E5 took it), and so written again (E1) and that
        scope's leases waited for (E2): what was listed before must then be listed again."""
        again = False
        for prefix, scope in list(self.scopes.items()):
            if await self.backend.head(scope.tomb) is None:
                logger.info(
                    "erasure of %s: its tomb in %s was deleted by another erasure: marked again", self.prefix, prefix
                )
                del self.scopes[prefix]
                await self._wait_for_leases(await self._mark(prefix))
                again = True
        return again

    async def _discard_unfinished(self) -> None:
        """What killed writers left of writes under the prefix that is no object (the local disk's temporary files,
        S3's unfinished multipart uploads): gone too, where the backend can (``discard_unfinished``)."""
        discard = getattr(self.backend, "discard_unfinished", None)
        if not callable(discard):
            return
        try:
            self.report.unfinished = int(await discard(self.prefix))
        except (AccessDeniedError, NotSupportedError) as exc:  # what no request may remove ends no erasure
            self.report.unfinished_left = str(exc)
            logger.warning("erasure of %s: unfinished writes left: %s", self.prefix, exc)

    async def _delete(self, keys: Iterable[str]) -> None:
        """Delete ``keys``, manifests first (this erasure's tombs were just found there, :meth:`_marked_again`)."""
        ordered = sorted(keys, key=lambda key: not ids.is_checkpoint_id(key[len(self._scope_of(key)) :]))
        manifests = [key for key in ordered if ids.is_checkpoint_id(key[len(self._scope_of(key)) :])]
        for batch in (manifests, ordered[len(manifests) :]):
            if batch:
                await self._delete_batch(batch)

    async def _delete_batch(self, keys: list[str]) -> None:
        try:
            await self.backend.delete_many(keys)
        except IntegrityError:  # one the store refuses as not tierstore's (on disk, a directory with files in it)
            for key in keys:
                try:
                    await self.backend.delete(key)
                except IntegrityError:
                    self.report.foreign.append(key)
                    logger.warning("erasure of %s: the store refused to delete %s as not tierstore's", self.prefix, key)
                    continue
                self.report.deleted += 1
            return
        self.report.deleted += len(keys)


@dataclass(frozen=True, slots=True)
class ErasureOptions:
    """How an erasure waits and works, one value for :func:`erase_scope`, :func:`erase_user` and
    :func:`erase_session` (the defaults suit a store's own bridges with default settings).

    ``settle``: E4's wait (None: :func:`settle_period` of the backend); ``lease_ttl``: the lease lifetime of the
    scope's bridges, for their records; ``patience``: how long to wait for live leases before InUseError (None: twice
    ``lease_ttl``); ``poll``: between looks at them; ``clock`` and ``sleep``: where waits are measured and how they
    are made (tests pass a hook that moves a clock); ``concurrency``: requests at once. InvalidInputError at
    construction for a negative time or a concurrency under 1."""

    settle: timedelta | None = None
    lease_ttl: timedelta = DEFAULT_LEASE_TTL
    patience: timedelta | None = None
    poll: timedelta = POLL
    clock: Clock = SYSTEM_CLOCK
    sleep: Sleep = asyncio.sleep
    concurrency: int = 32

    def __post_init__(self) -> None:
        times = {"settle": self.settle, "lease_ttl": self.lease_ttl, "patience": self.patience, "poll": self.poll}
        for name, value in times.items():
            if value is not None and (not isinstance(value, timedelta) or value < timedelta(0)):
                raise InvalidInputError(f"erasure option {name} must be a timedelta of at least 0, not {value!r}")
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise InvalidInputError(
                f"erasure option concurrency must be an int of at least 1, not {self.concurrency!r}"
            )


DEFAULT_OPTIONS: Final = ErasureOptions()


async def erase_scope(
    backend: StorageBackend, prefix: str, *, registry: str | None = None, options: ErasureOptions = DEFAULT_OPTIONS
) -> Erased:
    """Erase every object under ``prefix`` (a scope's, :func:`tierstore.scopes.scope_prefix`: never empty) by steps
    E1-E5 (module docstring), then the registry records under ``registry`` (a root key prefix; None: none), waiting
    and working as ``options`` say. Resumes an erasure that crashed or was cancelled. InUseError leaves the scope
    erasing."""
    if not prefix:
        raise InvalidInputError("erasure needs a scope's prefix: the root is never erased whole")
    erasure = _Erasure(
        backend,
        prefix,
        registry,
        settle=settle_period(backend) if options.settle is None else options.settle,
        patience=2 * options.lease_ttl if options.patience is None else options.patience,
        poll=options.poll,
        lease_ttl=options.lease_ttl,
        clock=options.clock,
        sleep=options.sleep,
        concurrency=options.concurrency,
    )
    return await erasure.run()


async def erase_user(backend: StorageBackend, user_id: str | None, options: ErasureOptions = DEFAULT_OPTIONS) -> Erased:
    """``delete_user``: erase the user's shared scope and every session of it, then their registry records
    (:func:`erase_scope`). ``user_id`` None: the sessions of no user. InvalidInputError for an invalid id."""
    prefix = user_prefix(user_id)
    return await erase_scope(backend, prefix, registry=user_key(user_id), options=options)  # its sessions' too


async def erase_session(
    backend: StorageBackend, user_id: str | None, session_id: str, options: ErasureOptions = DEFAULT_OPTIONS
) -> Erased:
    """``delete_session``: erase one session's scope of ``user_id`` (None: a session of no user), then its registry
    record (:func:`erase_scope`); the user's shared scope and other sessions stay. InvalidInputError for an
    invalid id."""
    prefix = scope_prefix(user_id, check_scope_id(session_id, "session id"))
    return await erase_scope(backend, prefix, registry=session_key(user_id, session_id), options=options)


async def erasing(backend: StorageBackend, prefix: str) -> bool:
    """Whether the scope at ``prefix`` is being erased (or an erasure of it crashed): an erasing tomb is there."""
    return any([is_erasing_tomb(entry.key[len(prefix) :]) async for entry in backend.list(prefix + ids.TOMB_PREFIX)])
