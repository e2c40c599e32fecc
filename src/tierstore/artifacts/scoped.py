"""A scope's view of a store: every key under the scope's prefix, and every frame bound to the whole key (issue 28).

Decision (``docs/design/scopes.md``): a bound bridge runs today's artifacts and checkpoint protocol unchanged, on a
:class:`PrefixedBackend` instead of the store itself. Contract of the view:

* Every key the layers above name is the scope's prefix plus that key in the store; ``list(prefix)`` lists only
  ``scope + prefix`` and yields the keys with the scope's prefix taken off, and ``head`` reports the key so too.
  So :class:`~tierstore.artifacts.objects.ObjectArtifacts`, :class:`~tierstore.protocol.references.References`,
  leases, tombs, manifests, reuse and ``gc``'s argument see one prefix as if it were a whole store, and nothing
  there can name a key outside it. The caller picks prefixes that are never a prefix of another's
  (:func:`tierstore.scopes.scope_prefix`), and asks only for listings of a kind of key (``mem_``, ``tomb_``...),
  so a user's view never lists the keys of its sessions, nested under it.
* Optional members exist only where the store has them: ``delete_if_version`` when the store has it. What belongs to
  the store as a whole, not to a scope (the local disk's temporary files and foreign names), is not in the view:
  the root's maintenance reports it once.
* Frames are bound to the whole key by the scope's codec (:class:`~tierstore.scope_codec.ScopedCodec`), so a copy
  of one scope's object into another's prefix fails verification.

* :class:`ScopedArtifacts` are the artifacts of a scope: :class:`~tierstore.artifacts.objects.ObjectArtifacts` on the
  view, which register the scope (:mod:`tierstore.scope_records`) before their first page or manifest is written,
  and keep versions of the page ids ``store_page`` stores there (:mod:`tierstore.versions`).

The backend below knows nothing of users (it sees keys); nothing below the bridge knows of pages' owners.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from tierstore import versions
from tierstore.artifacts.objects import ObjectArtifacts
from tierstore.backends import slices
from tierstore.backends.base import (
    Body,
    Capability,
    ListEntry,
    ObjectInfo,
    RestoreSpeed,
    RestoreStatus,
    StorageBackend,
)
from tierstore.clock import Clock
from tierstore.codec import Buffer, Encoded, PreparedPage
from tierstore.enums import StorageTier
from tierstore.errors import ArchivedPageError
from tierstore.loops import PerLoop
from tierstore.models import CheckpointManifest, MemoryPage


class PrefixedBackend:
    """``backend`` seen from inside one scope's prefix (module contract)."""

    def __init__(self, backend: StorageBackend, prefix: str) -> None:
        if not prefix:
            raise ValueError("a scope's prefix is never empty: the root is the store itself")
        self.inner = backend
        self.prefix = prefix
        self.name = backend.name
        self.persistent = backend.persistent
        self.capabilities: frozenset[Capability] = backend.capabilities
        self.sliced_listing = slices.pays_off(backend)
        self.ordered_listing = slices.lists_in_order(backend)  # one prefix on every key: the order is kept
        conditional = getattr(backend, "delete_if_version", None)
        if conditional is not None:

            async def delete_if_version(key: str, version: str) -> bool:
                result: bool = await conditional(prefix + key, version)
                return result

            self.delete_if_version = delete_if_version

    def __repr__(self) -> str:
        return f"PrefixedBackend({self.inner!r}, {self.prefix!r})"

    def _strip(self, key: str) -> str:
        return key[len(self.prefix) :] if key.startswith(self.prefix) else key

    async def put(
        self,
        key: str,
        data: Body,
        *,
        metadata: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        tier: StorageTier = StorageTier.L3,
        if_absent: bool = False,
    ) -> None:
        await self.inner.put(self.prefix + key, data, metadata=metadata, tags=tags, tier=tier, if_absent=if_absent)

    async def get(self, key: str) -> Buffer | None:
        try:
            return await self.inner.get(self.prefix + key)
        except ArchivedPageError as exc:
            raise self._archived(exc) from None

    async def get_range(self, key: str, start: int, length: int) -> Buffer | None:
        try:
            return await self.inner.get_range(self.prefix + key, start, length)
        except ArchivedPageError as exc:
            raise self._archived(exc) from None

    def _archived(self, exc: ArchivedPageError) -> ArchivedPageError:
        """The error naming the key as the view's callers know it (an artifact id, the id `restore` takes)."""
        if exc.checkpoint is not None or not exc.key.startswith(self.prefix):
            return exc
        return ArchivedPageError(self._strip(exc.key), pending=exc.pending)

    async def head(self, key: str) -> ObjectInfo | None:
        info = await self.inner.head(self.prefix + key)
        return None if info is None else replace(info, key=self._strip(info.key))

    async def delete(self, key: str) -> bool:
        return await self.inner.delete(self.prefix + key)

    async def delete_many(self, keys: Sequence[str]) -> None:
        await self.inner.delete_many([self.prefix + key for key in keys])

    def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        return self._stripped(self.inner.list(self.prefix + prefix))

    def list_streamed(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        """``list`` through the store's streamed listing, where it has one (:func:`slices.list_streamed`)."""
        return self._stripped(slices.list_streamed(self.inner, self.prefix + prefix))

    async def _stripped(self, listing: AsyncIterator[ListEntry]) -> AsyncIterator[ListEntry]:
        async for entry in listing:
            yield replace(entry, key=self._strip(entry.key))

    async def set_tier(self, key: str, tier: StorageTier, *, tags: Mapping[str, str] | None = None) -> None:
        try:
            await self.inner.set_tier(self.prefix + key, tier, tags=tags)
        except ArchivedPageError as exc:  # S3 copies an archived object only once it is restored
            raise self._archived(exc) from None

    async def restore(self, key: str, *, days: int = 1, speed: RestoreSpeed = "standard") -> RestoreStatus:
        return await self.inner.restore(self.prefix + key, days=days, speed=speed)

    def usage(self, prefix: str) -> tuple[int, int] | None:
        return self.inner.usage(self.prefix + prefix)

    async def aclose(self) -> None:
        await self.inner.aclose()


class ScopedArtifacts(ObjectArtifacts):
    """A scope's artifacts (module contract): ``register()`` runs before the first page or manifest this bridge
    writes there, until it succeeds (a failure fails that write, and the next write tries again), and again before
    a write once :data:`REGISTER_AGAIN_AFTER` has passed since it last did: an erasure of the scope deletes its
    records last, and a page of the scope's next life must name it again (``docs/design/scopes.md``, Erasure)."""

    def __init__(self, *args: Any, register: Callable[[], Awaitable[None]], clock: Clock, **kwargs: Any) -> None:
        super().__init__(*args, clock=clock, **kwargs)
        self._register = register
        self._clock = clock
        self._registered_at: float | None = None
        self._registering = PerLoop(asyncio.Lock)  # a burst of first writes registers once; a lock binds to its loop

    def _due(self) -> bool:
        done = self._registered_at
        return done is None or self._clock.monotonic() - done > REGISTER_AGAIN_AFTER

    async def _ensure_registered(self) -> None:
        async with self._registering.get():
            if self._due():
                await self._register()
                self._registered_at = self._clock.monotonic()

    async def create_page(
        self, page: MemoryPage, prepared: PreparedPage, tier: StorageTier, owner: str | None
    ) -> tuple[str, Encoded]:
        """:meth:`ObjectArtifacts.create_page`, once the scope is registered; a page of no owner (``store_page``'s)
        as the next version of its page id (:func:`tierstore.versions.store_version`: its record first)."""
        if self._due():
            await self._ensure_registered()
        if owner is None:
            return await versions.store_version(self, page, prepared, tier)
        return await super().create_page(page, prepared, tier, owner)

    async def delete_page(self, key: str) -> int | None:
        """:meth:`ObjectArtifacts.delete_page`, and then the version record of the page (:mod:`tierstore.versions`)."""
        return await versions.delete_version(self, key)

    async def write_manifest(self, manifest: CheckpointManifest) -> str:
        """:meth:`ObjectArtifacts.write_manifest`, once the scope is registered."""
        if self._due():
            await self._ensure_registered()
        return await super().write_manifest(manifest)


REGISTER_AGAIN_AFTER: Final = 60.0
"""Seconds (monotonic) after which a bridge's next write in a scope registers it again (one create-if-absent put,
refused as a conflict while the record is there)."""
