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
* Optional members exist only where the store has them: ``delete_if_version`` and ``delete_if_judged`` when the
  store has them. What belongs to
  the store as a whole, not to a scope (the local disk's temporary files and foreign names), is not in the view:
  the root's maintenance reports it once.
* Frames are bound to the whole key by the scope's codec (:class:`~tierstore.scope_codec.ScopedCodec`), so a copy
  of one scope's object into another's prefix fails verification.

* :class:`ScopedArtifacts` are the artifacts of a scope: :class:`~tierstore.artifacts.objects.ObjectArtifacts` on the
  view, which keep versions of the page ids ``store_page`` stores there (:mod:`tierstore.versions`) and register
  the scope (:mod:`tierstore.scope_records`), as follows.

Registration (decided for issue 28, round 13a: a bridge that registered once a minute left a user erased meanwhile,
or whose damaged record ``fsck --repair`` had deleted, holding pages that ``tierstore users`` did not list). Every
write that can leave a page or a checkpoint in the scope looks at its records, remembering nothing from an earlier
write, and writes those not there before its page or manifest: ``store_page`` alongside its listing of the page id's
versions (so no request more in line: 1 HEAD more for a user's scope, 2 for a session's: the 3 requests of a store
become 4 or 5), ``store_leased`` before its page, a checkpoint after its fence (W2: the tombs read, no erasing one
among them) and before its manifest (W3). A checkpoint's uploads do not look: a checkpoint that fails leaves no
record it wrote. So once such a write has returned, its scope is registered, unless a later erasure deleted it
(with what the write left) or something deleted the records behind tierstore's back. What is not covered: a
``store_page`` or ``store_leased`` that looked before an erasure of the scope deleted its records and whose page
landed after that erasure's last listing (a write in flight across the very end of an erasure) leaves a page of the
scope's next life that ``tierstore users`` does not list until the scope's next write; ``fsck`` lists it
(``unregistered``).

Why a registration never brings an erased scope's record back (``protocol/erasure.py``: E3/E4 list and delete
everything in the prefix, E5 then deletes the records, then the erasing tombs). A ``store_page`` or ``store_leased``
writes its records only before its page, one after the other: a record that lands after E5 deleted the records is
followed by a page landing after E4's last listing, which the erasure does not delete: the record names a page of
the scope's next life (were that page's put to fail, the record stays, listed with no pages: a write ordered after
the erasure, like a first write that fails after registering). A checkpoint writes its records after its W2 found
no erasing tomb, its lease live since W0 (else its fence after W3 runs): an erasure that had begun by then would
have shown its tomb (the tomb goes last), so any erasure began later and E2 waits for the checkpoint's lease, which
goes only after its manifest: E5 deletes the records it wrote; an erasure that had ended left no record for it to
bring back, only the next life it names. A checkpoint's uploads write none: one that fails at W2 on an erasing tomb
leaves no record behind.

The backend below knows nothing of users (it sees keys); nothing below the bridge knows of pages' owners.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

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
from tierstore.codec import Buffer, Encoded, PreparedPage
from tierstore.enums import StorageTier
from tierstore.errors import ArchivedPageError
from tierstore.loops import PerLoop
from tierstore.models import CheckpointManifest, MemoryPage
from tierstore.scope_records import Registration


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
        judged = getattr(backend, "delete_if_judged", None)
        if judged is not None:

            async def delete_if_judged(key: str, judge: Callable[[Buffer | None, datetime | None], bool]) -> bool:
                result: bool = await judged(prefix + key, judge)
                return result

            self.delete_if_judged = delete_if_judged

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
    """A scope's artifacts (module contract): each ``store_page`` and manifest, and each ``store_leased`` page
    (:meth:`ensure_registered`), is written once the scope's records are there; a failure to look or to register
    fails that write, and the next write looks again."""

    def __init__(self, *args: Any, registration: Registration, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._registration = registration
        self._written = 0
        """How many times this bridge wrote the scope's records: a write whose look found one absent writes them
        only if no other write of this bridge did since that look began (a burst of first writes registers once)."""
        self._registering = PerLoop(asyncio.Lock)  # a lock binds to its loop

    async def ensure_registered(self) -> None:
        """Look at the scope's records now and write those not there (module contract)."""
        seen = self._written
        if not await self._registration.missing():
            return
        async with self._registering.get():
            if self._written == seen:
                # All of them, not only those found missing: the looks are not one moment, and an erasure ending
                # between them leaves a record seen a moment before gone (one still there refuses the put: kept).
                await self._registration.write()
                self._written += 1

    async def create_page(
        self, page: MemoryPage, prepared: PreparedPage, tier: StorageTier, owner: str | None
    ) -> tuple[str, Encoded]:
        """:meth:`ObjectArtifacts.create_page`; a page of no owner (``store_page``'s) as the next version of its page
        id (:func:`tierstore.versions.store_version`: its record first), once the scope's records are there (looked
        at alongside the listing of its versions). A checkpoint's upload does not look (module contract)."""
        if owner is None:
            return await versions.store_version(self, page, prepared, tier, self.ensure_registered)
        return await super().create_page(page, prepared, tier, owner)

    async def delete_page(self, key: str) -> int | None:
        """:meth:`ObjectArtifacts.delete_page`, and then the version record of the page (:mod:`tierstore.versions`)."""
        return await versions.delete_version(self, key)

    async def write_manifest(self, manifest: CheckpointManifest) -> str:
        """:meth:`ObjectArtifacts.write_manifest` (W3, after the fence), once the scope's records are there."""
        await self.ensure_registered()
        return await super().write_manifest(manifest)
