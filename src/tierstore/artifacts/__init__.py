"""Where the bridge keeps its artifacts: the one seam between the bridge and the two kinds of backend.

* :class:`~tierstore.artifacts.objects.ObjectArtifacts` runs on tierstore's rich
  :class:`~tierstore.backends.base.StorageBackend` protocol (every built-in backend): the bridge chooses every key,
  claims ids with create-if-absent, and orders deletions against checkpoints in progress (:mod:`tierstore.protocol`,
  which the bridge also holds for what only such a store has: leases, reuse, tiers, restores, maintenance).
* :class:`~tierstore.artifacts.custom.CustomArtifacts` wraps a backend written to the spec's *Custom Backend*
  interface (``store``/``load``/``delete``/``exists``/``list_pages``), which chooses its own artifact ids. Calls
  that need more (tier changes, restores, maintenance) raise NotSupportedError there.

The bridge talks to both through :class:`Artifacts`: each member is one both really do. :func:`open_artifacts`
chooses the side for a backend, and on a rich one builds the protocol (:class:`~tierstore.protocol.Guard`) with it.
:func:`open_places` builds the same for each scope a bridge bound to a user or session reads (issue 28): today's
artifacts and protocol, unchanged, on a view of the store under the scope's prefix
(:mod:`tierstore.artifacts.scoped`), with frames bound to the whole key (:mod:`tierstore.scope_codec`) and one id
allocator for all of them (ids are store-wide; its block records stay at the root).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from tierstore.allocator import IdAllocator
from tierstore.artifacts.custom import CustomArtifacts
from tierstore.artifacts.lookup import Place, Places
from tierstore.artifacts.objects import ObjectArtifacts
from tierstore.artifacts.scoped import PrefixedBackend, ScopedArtifacts
from tierstore.backends.base import ListEntry, StorageBackend
from tierstore.clock import Clock
from tierstore.codec import Buffer, Codec, Encoded, PreparedPage
from tierstore.enums import StorageTier
from tierstore.errors import InvalidInputError, NotSupportedError
from tierstore.models import CheckpointManifest, MemoryPage, PageMetadata
from tierstore.protocol import Guard, References, Reuse
from tierstore.scope_codec import ScopedCodec
from tierstore.scope_records import Registration
from tierstore.scopes import scope_prefix
from tierstore.simple import SimpleBackend, is_simple_backend
from tierstore.validate import type_name


class Artifacts(Protocol):
    """Pages and manifests on one store, whichever kind of backend it is."""

    name: str
    persistent: bool
    binds_keys: bool
    """Whether a frame names the key it is stored under (False when the backend chooses ids after the write)."""

    def artifact_key(self, value: object) -> str | None:
        """The key of an artifact id given by a caller; None for text that is no artifact id of this store.
        Raises InvalidInputError for what is not an id at all (wrong type, empty, control characters)."""
        ...

    def checkpoint_key(self, value: object) -> str | None:
        """The key of a checkpoint id given by a caller, as :meth:`artifact_key` does for artifacts."""
        ...

    async def create_page(
        self, page: MemoryPage, prepared: PreparedPage, tier: StorageTier, owner: str | None
    ) -> tuple[str, Encoded]:
        """Store a prepared page as a new artifact (``owner``: the checkpoint it is written for); its key and frame."""
        ...

    async def ensure_registered(self) -> None:
        """Have the store's registry name these artifacts' scope, before a page written outside ``store_page`` and
        a checkpoint (:mod:`tierstore.artifacts.scoped`; elsewhere there is no registry: nothing to do)."""
        ...

    async def read(self, key: str) -> Buffer | None:
        """The stored bytes of an artifact, unverified; None when there is none."""
        ...

    async def describe(self, key: str) -> PageMetadata | None:
        """What is known of a stored page without reading its body where the store allows; None when absent."""
        ...

    async def delete_page(self, key: str) -> int | None:
        """Delete a page; returns its size, or None when there was none."""
        ...

    async def discard(self, keys: list[str]) -> None:
        """Delete artifacts only this bridge knows of (a failed checkpoint's uploads)."""
        ...

    async def page_keys(self) -> list[str]:
        """Every page's key (checkpoint manifests and bookkeeping excluded)."""
        ...

    async def page_entries(self) -> list[ListEntry]:
        """Every page's key with its size and time, from the listing alone (one request per thousand on a
        cloud; a custom backend's listing has neither, so they are 0 and None)."""
        ...

    async def checkpoint_keys(self) -> list[str]:
        """Every listed checkpoint's key, oldest first."""
        ...

    async def manifest(self, key: str) -> CheckpointManifest | None:
        """A checkpoint's manifest; None when absent; IntegrityError when it cannot be read."""
        ...

    async def write_manifest(self, manifest: CheckpointManifest) -> str:
        """Write a manifest, create-if-absent (the last step of a checkpoint); returns the checkpoint's id."""
        ...

    async def delete_checkpoint(self, key: str, manifest: CheckpointManifest | None) -> None:
        """Delete a checkpoint and what only it references; ``manifest`` None: it is damaged, drop it alone."""
        ...

    def usage(self) -> tuple[int, int, int] | None:
        """``(pages, bytes, checkpoints)`` when known without I/O."""
        ...

    async def aclose(self) -> None:
        """Release the backend's clients."""
        ...


def open_artifacts(
    backend: StorageBackend | SimpleBackend, codec: Codec, *, concurrency: int, lease_ttl: timedelta, clock: Clock
) -> tuple[Artifacts, Guard | None]:
    """The artifacts on ``backend``, and the checkpoint protocol where it has one (a rich backend; None on a custom
    one). InvalidInputError for an object that is neither kind of backend."""
    if isinstance(backend, StorageBackend):
        objects = ObjectArtifacts(backend, codec, concurrency=concurrency, lease_ttl=lease_ttl, clock=clock)
        return objects, Guard(objects.refs, Reuse(backend, objects.refs.manifests, codec))
    if is_simple_backend(backend):
        return CustomArtifacts(backend, codec), None
    raise InvalidInputError(
        f"{type_name(backend)} is not a storage backend: implement store/load/delete/exists/list_pages (the spec's "
        "Custom Backend) or tierstore's StorageBackend protocol"
    )


def open_places(
    backend: StorageBackend | SimpleBackend,
    codec: Codec,
    user_id: str | None,
    session_id: str | None,
    *,
    concurrency: int,
    lease_ttl: timedelta,
    clock: Clock,
) -> Places:
    """The places a bridge bound to ``user_id`` and ``session_id`` (checked ids, or None) reads, narrowest first:
    the root alone (:func:`open_artifacts`, with ``codec``) when both are None; else the session's scope and then the
    user's (a session of no user has no shared scope: it would be every such session's), each today's artifacts and
    protocol on a view of the store under the scope's prefix, with frames bound to the whole key, and one id
    allocator for them all, whose block records are the root's and which reads the tombs of every scope here.
    NotSupportedError for a scope on a custom backend, which chooses its own ids (so no prefix); InvalidInputError
    for an object that is no backend."""
    if user_id is None and session_id is None:
        artifacts, guard = open_artifacts(backend, codec, concurrency=concurrency, lease_ttl=lease_ttl, clock=clock)
        return Places([Place("root", artifacts, codec, guard)])
    if not isinstance(backend, StorageBackend):
        if is_simple_backend(backend):
            raise NotSupportedError(
                f"a bridge bound to a user or session needs a backend implementing tierstore's StorageBackend "
                f"protocol; {type_name(backend)} implements the spec's custom backend interface only, which chooses "
                "its own ids"
            )
        raise InvalidInputError(f"{type_name(backend)} is not a storage backend")
    prefixes = [("user", scope_prefix(user_id))] if user_id is not None else []
    if session_id is not None:
        prefixes.insert(0, ("session", scope_prefix(user_id, session_id)))
    views = [(name, PrefixedBackend(backend, p), ScopedCodec(codec.compression, p)) for name, p in prefixes]
    refs = [
        References(view, concurrency=concurrency, lease_ttl=lease_ttl, clock=clock, codec=scoped)
        for _name, view, scoped in views
    ]
    plain = Codec(codec.compression)  # the root's: block records and the registry are at the root
    allocator = IdAllocator(backend, clock=clock, refs=refs, codec=plain)
    places = []
    for (name, view, scoped), scope_refs in zip(views, refs, strict=True):
        objects = ScopedArtifacts(
            view,
            scoped,
            registration=Registration(backend, plain, clock, user_id, session_id if name == "session" else None),
            concurrency=concurrency,
            lease_ttl=lease_ttl,
            clock=clock,
            refs=scope_refs,
            allocator=allocator,
        )
        places.append(Place(name, objects, scoped, Guard(scope_refs, Reuse(view, scope_refs.manifests, scoped))))
    return Places(places)
