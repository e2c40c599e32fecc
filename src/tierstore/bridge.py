"""ArtifactsBridge: the spec's API for moving pages between the process and storage.

Data flows one way: page -> codec -> bridge -> artifacts (:mod:`tierstore.artifacts`) -> backend protocol ->
provider adapter. The bridge validates what it is given before any I/O (:mod:`tierstore.validate`), encodes and
verifies pages (its one :class:`~tierstore.codec.Codec`), and runs checkpoints: it never writes a key twice, never
lists a checkpoint that cannot be restored, and never returns a page other than the one stored under the id asked
for.

Checkpoints, in order: take a lease naming the artifacts to reuse (pages whose identity equals an entry of a recent
listed checkpoint, so a restarted process uploads only what changed), upload the other pages, renew the lease,
upload again whatever a concurrent deletion has doomed, write the manifest (create-if-absent), release the lease.
The steps are :mod:`tierstore.protocol.writer`'s; :mod:`tierstore.protocol` argues why their order is safe against
concurrent ``delete_checkpoint``, ``set_tier`` and ``gc``.

Scopes (issue 28, ``docs/design/scopes.md``): a bridge built with ``user_id`` and/or ``session_id`` is bound to that
scope for its life. It stores in its session's scope (or its user's, shared by all that user's sessions, when asked),
finds an artifact id in its session's scope and then its user's, lists both, and keeps its checkpoints in its
narrowest scope, reusing only that scope's artifacts. Each scope is today's store under a key prefix
(:func:`tierstore.artifacts.open_places`), so whatever another scope or the root holds is absent here, exactly as
if it did not exist. An unbound bridge is the root: the store as it always was.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from tierstore import ids
from tierstore.artifacts import open_places
from tierstore.backends.base import RestoreSpeed, RestoreStatus, StorageBackend
from tierstore.backends.memory import InMemoryBackend
from tierstore.chuk.calls import ChukCalls
from tierstore.clock import SYSTEM_CLOCK, Clock, check_clock
from tierstore.codec import Buffer, Codec, Compression, Encoded, PreparedPage, is_big
from tierstore.concurrency import Progress, bounded_gather
from tierstore.enums import StorageTier
from tierstore.errors import IntegrityError, InvalidInputError, NotSupportedError, ObjectNotFoundError
from tierstore.find_calls import LookupCalls
from tierstore.loops import PerLoop
from tierstore.models import CheckpointEntry, CheckpointManifest, MemoryPage, PageEntry, PageMetadata, StorageStats
from tierstore.protocol import (
    DEFAULT_LEASE_TTL,
    Plan,
    References,
    new_entry,
    read_checkpoint,
    with_state,
    write_checkpoint,
)
from tierstore.scopes import check_scope_id
from tierstore.simple import SimpleBackend
from tierstore.validate import as_page, as_pages, as_stored, as_tier, check_restore, clip, resolve_tier, type_name

if TYPE_CHECKING:
    from tierstore.config import TierstoreSettings

ScopeChoice = Literal["session", "user"]
"""Where ``store_page`` puts a page of a bound bridge: its session's scope, or its user's (shared by the user's
sessions)."""


class ArtifactsBridge(ChukCalls, LookupCalls):
    """Stores, loads, lists and checkpoints pages on one backend. Safe to share within one event loop.

    ``user_id`` and ``session_id`` bind the bridge to a scope for its life (module docstring): it sees its session's
    pages and its user's shared pages, and nothing of another user's or session's, nor of the unscoped root. Both
    are checked by :func:`tierstore.scopes.check_scope_id` (InvalidInputError). Neither: the root, as before scopes.
    """

    def __init__(
        self,
        backend: StorageBackend | SimpleBackend | None = None,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        compression: Compression = "none",
        concurrency: int = 32,
        lease_ttl: timedelta = DEFAULT_LEASE_TTL,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidInputError(f"concurrency must be an int of at least 1, not {concurrency!r}")
        if not isinstance(lease_ttl, timedelta) or lease_ttl < timedelta(seconds=1):
            raise InvalidInputError("lease_ttl must be a timedelta of at least one second")
        self.clock = check_clock(clock)
        """This host's clocks (:mod:`tierstore.clock`): names and records take its time, no safety decision does."""
        self.codec = Codec(compression)
        """How this bridge encodes what it stores: built once here, handed to everything that reads or writes frames."""
        self.compression: Compression = self.codec.compression
        self.backend: StorageBackend | SimpleBackend = backend if backend is not None else InMemoryBackend()
        self._user_id = None if user_id is None else check_scope_id(user_id, "user id")
        self._session_id = None if session_id is None else check_scope_id(session_id, "session id")
        self._lease_ttl = lease_ttl
        # Where pages go and ids are looked up (tierstore.artifacts): the root, or the scopes bound. The narrowest
        # place holds this bridge's checkpoints, with the protocol where the store has one (a rich backend).
        self._places = open_places(
            self.backend,
            self.codec,
            self._user_id,
            self._session_id,
            concurrency=concurrency,
            lease_ttl=lease_ttl,
            clock=self.clock,
        )
        home = self._places.home
        self.codec, self._artifacts, self._guard = home.codec, home.artifacts, home.guard
        self.concurrency = concurrency
        self._limit = PerLoop(lambda: asyncio.Semaphore(concurrency))  # a semaphore binds to its loop
        self._tally_pages = 0
        self._tally_bytes = 0
        self._closers: list[Callable[[], Callable[[], Awaitable[None]] | None]] = []

    def __repr__(self) -> str:
        bound = "" if self._user_id is None else f", user_id={self._user_id!r}"
        bound += "" if self._session_id is None else f", session_id={self._session_id!r}"
        return f"ArtifactsBridge(backend={self.backend!r}{bound})"

    @property
    def user_id(self) -> str | None:
        """The user this bridge is bound to (None: no user); fixed when it is built."""
        return self._user_id

    @property
    def session_id(self) -> str | None:
        """The session this bridge is bound to (None: no session); fixed when it is built."""
        return self._session_id

    def scoped(self, *, user_id: str | None = None, session_id: str | None = None) -> ArtifactsBridge:
        """A new bridge on the same backend with the same settings, bound to ``user_id`` and ``session_id`` (both
        None: the root). No I/O."""
        return ArtifactsBridge(
            self.backend,
            user_id=user_id,
            session_id=session_id,
            compression=self.compression,
            concurrency=self.concurrency,
            lease_ttl=self._lease_ttl,
            clock=self.clock,
        )

    @classmethod
    def from_env(cls, settings: TierstoreSettings | None = None) -> ArtifactsBridge:
        """A bridge on the backend that the ``TIERSTORE_*`` environment (or ``settings``) names. No I/O."""
        return bridge_from_env(settings)

    # -- pages ----------------------------------------------------------------------------------------------

    async def store_page(
        self, page: MemoryPage, tier: StorageTier | str | None = None, *, scope: ScopeChoice | None = None
    ) -> str:
        """Store a page as a new artifact and return its id (``mem_{tier}_{n}``), unique to this call. ``scope``
        (a bound bridge): ``"session"`` or ``"user"`` (shared by the user's sessions); default the narrowest bound."""
        target = self._artifacts if scope is None else self._places.named(scope).artifacts
        page = as_page(page)
        resolved = resolve_tier(page, tier)
        # Decided here, once: a small page is prepared without a coroutine or thread around it (the hot path).
        prepared = (
            await asyncio.to_thread(self.codec.prepare_page, page) if is_big(page) else self.codec.prepare_page(page)
        )
        async with self._limit.get():
            artifact, encoded = await target.create_page(page, prepared, resolved, None)
        self._tally_pages += 1
        self._tally_bytes += encoded.size
        return artifact

    async def store_leased(
        self,
        page: MemoryPage,
        tier: StorageTier | str | None = None,
        *,
        owner: str,
        reuse: CheckpointEntry | None = None,
    ) -> CheckpointEntry:
        """``store_page`` for a caller that keeps its artifacts alive with a lease of its own (a ``refs.lease``
        whose checkpoint id is ``owner``, as ``tierstore.integrations.chuk`` does for a running agent).

        The artifact carries ``owner``, so sweeps (``gc``) keep it while that lease is live, and take it once the
        lease has lapsed and no manifest or other lease names it. Returns the entry a manifest would hold for it
        (pass it to ``checkpoint(stored=...)``). ``reuse``: an artifact the caller still protects that held this
        page; when the page's content, description and tier still equal it, it is returned and nothing is written."""
        page = as_page(page)
        if not isinstance(owner, str) or not ids.is_checkpoint_id(owner):
            raise InvalidInputError(f"owner must be the checkpoint id of a lease, not {owner!r}")
        resolved = resolve_tier(page, tier)
        prepared = await self.codec.prepare_page_off_loop(page, identity=True)
        if reuse is not None and reuse.identity == prepared.identity and reuse.tier == resolved.value:
            return with_state(reuse, page)
        await self._artifacts.ensure_registered()  # a bound scope's records, before its page (artifacts.scoped)
        artifact, encoded = await self._create(page, prepared, resolved, owner=owner)
        self._tally_pages += 1
        self._tally_bytes += encoded.size
        return with_state(new_entry(page, artifact, resolved, encoded, prepared.identity), page)

    async def load_page(self, artifact_id: str) -> MemoryPage | None:
        """The page stored under ``artifact_id``, verified; None when there is none (or it is no artifact id)."""
        key = self._artifacts.artifact_key(artifact_id)
        return None if key is None else await self._places.load(key)

    async def delete_page(self, artifact_id: str) -> bool:
        """Delete a stored page; True if there was one. Checkpoints naming it can no longer be restored."""
        key = self._artifacts.artifact_key(artifact_id)
        size = None if key is None else await self._places.delete_page(key)
        if size is None:
            return False
        self._tally_pages -= 1
        self._tally_bytes -= size
        return True

    async def list_pages(self) -> list[str]:
        """Every stored page's artifact id (checkpoint manifests and bookkeeping excluded); a bound bridge's session
        pages and its user's shared pages."""
        return await self._places.page_keys()

    async def list_page_entries(self) -> list[PageEntry]:
        """Every stored page's artifact id with its stored size and time, from the store's listing alone: a few
        requests however many pages there are (``get_metadata`` tells more, one request per page)."""
        return [
            PageEntry(artifact_id=e.key, size_bytes=e.size, last_modified=e.last_modified)
            for e in await self._places.page_entries()
        ]

    async def get_metadata(self, artifact_id: str) -> PageMetadata | None:
        """What is known of a stored page, without reading its body; None when there is none."""
        key = self._artifacts.artifact_key(artifact_id)
        return None if key is None else await self._places.describe(key)

    async def set_tier(self, artifact_id: str, tier: StorageTier | str) -> None:
        """Move an artifact to another tier in place (storage class and tags follow); its id does not change.
        :class:`~tierstore.errors.InUseError` while a checkpoint in progress names it (:mod:`tierstore.protocol`)."""
        checked = as_tier(tier)
        references, key = await self._located(artifact_id, "set_tier")
        await references.retier(key, checked)

    async def restore_page(self, artifact_id: str, *, days: int = 1, speed: RestoreSpeed = "standard") -> RestoreStatus:
        """Ask the backend to bring an archived artifact back; load it once the status is ``restored``."""
        check_restore(days, speed)
        references, key = await self._located(artifact_id, "restore_page")
        return await references.restore(key, days=days, speed=speed)

    def references(self, call: str) -> References:
        """The store's protocol handle (:class:`~tierstore.protocol.references.References`): its records, its
        time, deletions and tier moves in the protocol's order, and what maintenance reads beyond the records
        (``listed``, ``head``, ``read``, strays, foreign files). ``fsck``, ``gc``, the CLI and the chuk integration
        run through it, never through the backend's own calls. NotSupportedError naming ``call`` on a custom
        backend."""
        return self._needs(call)

    def _needs(self, call: str) -> References:
        if self._guard is None:
            raise NotSupportedError(
                f"{call} needs a backend implementing tierstore's StorageBackend protocol; "
                f"{type_name(self.backend)} implements the spec's custom backend interface only"
            )
        return self._guard.references

    def _existing_key(self, artifact_id: str) -> str:
        key = self._artifacts.artifact_key(artifact_id)
        if key is None:
            raise ObjectNotFoundError(clip(artifact_id, 100))
        return key

    async def _located(self, artifact_id: str, call: str) -> tuple[References, str]:
        """The protocol handle of the scope holding ``artifact_id``, and its key; ObjectNotFoundError when none of
        this bridge's scopes does (a bound bridge looks first, so an absent id writes nothing, not even a tomb)."""
        references = self._needs(call)
        key = self._existing_key(artifact_id)
        if not self._places.scoped:
            return references, key
        holder = await self._places.holder(key)
        if holder is None:
            raise ObjectNotFoundError(clip(artifact_id, 100))
        return holder, key

    # -- statistics ---------------------------------------------------------------------------------------

    def get_stats(self) -> StorageStats:
        """Pages and bytes stored, without I/O: exact where the backend knows them (in memory), else this bridge's
        own tally (``exact=False``; ``await collect_stats()`` counts by listing)."""
        usage = self._places.usage()
        pages, size, checkpoints = usage if usage is not None else (self._tally_pages, self._tally_bytes, None)
        return StorageStats(
            backend=self._artifacts.name,
            persistent=self._artifacts.persistent,
            pages_stored=pages,
            total_bytes=size,
            checkpoints=checkpoints,
            exact=usage is not None,
            session_id=self.session_id,
        )

    async def collect_stats(self) -> StorageStats:
        """Exact figures, by listing the store."""
        self._needs("collect_stats")
        sizes = [entry.size for entry in await self._places.page_entries()]
        checkpoints = await self._artifacts.checkpoint_keys()
        return StorageStats(
            backend=self._artifacts.name,
            persistent=self._artifacts.persistent,
            pages_stored=len(sizes),
            total_bytes=sum(sizes),
            checkpoints=len(checkpoints),
            session_id=self.session_id,
        )

    # -- checkpoints ----------------------------------------------------------------------------------------

    async def checkpoint(
        self, pages: Iterable[MemoryPage], name: str, *, stored: Iterable[CheckpointEntry] = ()
    ) -> str:
        """Store ``pages`` and a manifest naming them; returns the checkpoint id.

        A page whose identity (content and description, without its bookkeeping) equals an entry of a recent
        checkpoint reuses that artifact instead of being uploaded again; the manifest records its bookkeeping.
        The manifest is written last, create-if-absent, so a checkpoint that fails or crashes is never listed.
        ``stored``: entries of pages already stored (``store_leased``) that the caller keeps protected with a live
        lease of its own, named before this call; the manifest names them after ``pages``, and they are never read
        (an archived page needs no restore), but each is shown there, in its tier, of its size and checksum (one
        ``head``), and one that is not, or that a deleted tomb names, fails the checkpoint (IntegrityError naming
        the page). A pending tomb cannot take them (its deleter saw that lease, or the caller saw the tomb when it
        named them).
        """
        kept = as_stored(stored, self._artifacts.artifact_key)
        checked = as_pages(pages)
        ids.check_text_id(name, "checkpoint name")
        now = self.clock.now()
        checkpoint_id = ids.timestamped(ids.CHECKPOINT_PREFIX, now)
        prepare = self.codec.prepare_page_off_loop
        prepared = await bounded_gather((prepare(p, identity=True) for p in checked), self.concurrency)
        plan = Plan(checkpoint_id, name, now, checked, prepared, [resolve_tier(p, None) for p in checked], kept)
        written = await write_checkpoint(plan, self._artifacts, self._create, self.concurrency, self._guard)
        self._tally_pages += written.uploaded
        self._tally_bytes += written.uploaded_bytes
        return written.checkpoint_id

    async def restore_checkpoint(
        self, checkpoint_id: str, *, only: Iterable[str] | None = None, progress: Progress | None = None
    ) -> list[MemoryPage]:
        """Every page of the checkpoint, each verified; raises rather than return a partial restore.

        ``only``: page ids; the checkpoint's other pages are neither read nor checked (the caller reads the manifest
        for them), so a checkpoint with archived pages restores the others. ``progress(done, total)`` is called as
        pages are read.
        """
        key = self._artifacts.checkpoint_key(checkpoint_id)
        manifest = None if key is None else await self._artifacts.manifest(key)
        if key is None or manifest is None:
            raise ObjectNotFoundError(clip(checkpoint_id, 100))
        if isinstance(only, str):
            raise InvalidInputError("only must be an iterable of page ids, not one str")
        wanted = None if only is None else {ids.check_text_id(p, "page id") for p in only}

        pages = await read_checkpoint(
            key, manifest, wanted, self._artifacts.read, self._decode, self.concurrency, progress
        )
        if self._guard is not None:
            self._guard.reuse.remember(key)
        return pages

    async def list_checkpoints(self) -> list[str]:
        """Ids of complete checkpoints, oldest first by the store's time (a manifest's last-modified; ties by id),
        whatever the clocks of the hosts that wrote them."""
        return await self._artifacts.checkpoint_keys()

    async def get_checkpoint_manifest(self, checkpoint_id: str) -> CheckpointManifest | None:
        """A checkpoint's manifest (its pages' entries); None when there is none; IntegrityError when damaged."""
        key = self._artifacts.checkpoint_key(checkpoint_id)
        return None if key is None else await self._artifacts.manifest(key)

    async def delete_checkpoint(self, checkpoint_id: str) -> bool:
        """Delete the checkpoint and those of its artifacts that no other checkpoint (or one in progress) uses.

        A checkpoint whose manifest is damaged is deleted alone: what it referenced is unknown, so artifacts are
        left to ``gc``, which collects those written for it.
        """
        key = self._artifacts.checkpoint_key(checkpoint_id)
        if key is None:
            return False
        if self._guard is not None:
            self._guard.reuse.forget(key)
        try:
            manifest = await self._artifacts.manifest(key)
        except IntegrityError:
            await self._artifacts.delete_checkpoint(key, None)
            return True
        if manifest is None:
            return False
        await self._artifacts.delete_checkpoint(key, manifest)
        return True

    # -- lifecycle ------------------------------------------------------------------------------------------

    def on_close(self, release: Callable[[], Awaitable[None]]) -> None:
        """Have every later :meth:`aclose` await ``release()`` first (a chuk agent attached with this bridge
        releases its lease so). It must be safe to await more than once. A bound method is held weakly, so a
        long-lived bridge does not keep every agent ever attached with it."""
        held = weakref.WeakMethod(release) if inspect.ismethod(release) else lambda: release
        self._closers.append(held)

    async def aclose(self, *, release: bool = True) -> None:
        """Release what was registered with :meth:`on_close` (a chuk agent attached with this bridge ends), then
        close this event loop's clients; the bridge stays usable (a later call opens them again). ``release=False``
        closes the clients only, for a wrapper ending a loop of its own (``SyncBridge``)."""
        try:
            for held in list(self._closers) if release else []:
                closer = held()
                if closer is None:
                    self._closers.remove(held)  # its owner was collected
                else:
                    await closer()
        finally:
            await self._artifacts.aclose()

    async def __aenter__(self) -> ArtifactsBridge:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- internals ----------------------------------------------------------------------------------------------

    async def _create(
        self, page: MemoryPage, prepared: PreparedPage, tier: StorageTier, owner: str | None
    ) -> tuple[str, Encoded]:
        async with self._limit.get():
            return await self._artifacts.create_page(page, prepared, tier, owner)

    async def _decode(self, data: Buffer, key: str) -> tuple[MemoryPage, str | None]:
        return await self.codec.decode_page_off_loop(data, key, bound=self._artifacts.binds_keys)


def bridge_from_env(settings: TierstoreSettings | None = None) -> ArtifactsBridge:
    """An ArtifactsBridge on the backend the settings name, bound to their user and session (``TIERSTORE_USER_ID``,
    ``TIERSTORE_SESSION_ID``), with their compression and concurrency. No I/O."""
    from tierstore.config import backend_from_url, load_settings  # on use: the settings know every cloud's

    settings = settings if settings is not None else load_settings()
    return ArtifactsBridge(
        backend=backend_from_url(settings.url, settings),
        user_id=settings.user_id,
        session_id=settings.session_id,
        compression=settings.compression,
        concurrency=settings.concurrency,
    )
