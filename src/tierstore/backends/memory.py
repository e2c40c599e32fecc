"""In-process backend for tests and development: a dict of objects, lost when the process ends.

Contract: the full protocol of :mod:`tierstore.backends.base`. Tiers are recorded per object. Tiers listed in
``archive_tiers`` (none by default) behave like an archive class: ``get`` raises ArchivedPageError until
``restore`` is called, which lets the bridge's archive flow be exercised without a cloud.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tierstore.backends.base import (
    Body,
    Capability,
    ClosingContext,
    ListEntry,
    ObjectInfo,
    RestoreSpeed,
    RestoreStatus,
    as_chunks,
    check_key,
    check_metadata,
    check_tags,
)
from tierstore.backends.registry import Location, Scheme
from tierstore.clock import SYSTEM_CLOCK, Clock, check_clock
from tierstore.enums import StorageTier
from tierstore.errors import ArchivedPageError, ConflictError, ObjectNotFoundError

if TYPE_CHECKING:
    from tierstore.config import TierstoreSettings


_WRITES: itertools.count[int] = itertools.count(1)
_CHANGES: itertools.count[int] = itertools.count(1)


@dataclass(slots=True)
class _Object:
    data: bytes
    metadata: dict[str, str]
    tags: dict[str, str]
    tier: StorageTier
    last_modified: datetime
    restored_until: datetime | None = None
    version: int = field(default_factory=lambda: next(_WRITES))
    """Which write made the object (a tier change keeps it): :attr:`ObjectInfo.version`."""
    change: int = field(default_factory=lambda: next(_CHANGES))
    """Which change made the object as it is (every write, tier change and restore takes a new one): the listing's
    token, so a token never comes back, as on every cloud (a tier change moved back reads as a change)."""


def from_url(location: Location, settings: TierstoreSettings) -> InMemoryBackend:
    """A new, empty in-memory store for a ``memory://`` URL."""
    return InMemoryBackend()


class InMemoryBackend(ClosingContext):
    """The whole backend protocol in this process's memory, gone when it exits; ``archive_tiers`` behave as an
    archive (a read needs a restore first), so tests can walk that path without a cloud."""

    name = "in-memory"
    persistent = False

    def __init__(self, *, archive_tiers: Iterable[StorageTier] = (), clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = check_clock(clock)
        """The store's own clock: objects' last-modified times and restore expiries come from it."""
        self._objects: dict[str, _Object] = {}
        self._archive_tiers = frozenset(archive_tiers)
        caps: set[Capability] = {"tiers", "tags", "range_reads"}
        if self._archive_tiers:
            caps.add("archive")
        self.capabilities: frozenset[Capability] = frozenset(caps)

    def __repr__(self) -> str:
        return f"InMemoryBackend(objects={len(self._objects)})"

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
        check_key(key)
        obj = _Object(bytes(as_chunks(data)), check_metadata(metadata), check_tags(tags), tier, self.clock.now())
        # No await between the check and the insert, so create-if-absent is atomic on one event loop.
        existing = self._objects.get(key)
        if if_absent and existing is not None:
            if existing.data == obj.data:
                return
            raise ConflictError(key)
        self._objects[key] = obj

    def _readable(self, key: str) -> _Object | None:
        obj = self._objects.get(check_key(key))
        if obj is not None and self._is_archived(obj):
            raise ArchivedPageError(key)
        return obj

    def _is_archived(self, obj: _Object) -> bool:
        if obj.tier not in self._archive_tiers:
            return False
        return obj.restored_until is None or obj.restored_until < self.clock.now()

    async def get(self, key: str) -> bytes | None:
        obj = self._readable(key)
        return None if obj is None else obj.data

    async def get_range(self, key: str, start: int, length: int) -> bytes | None:
        obj = self._readable(key)
        return None if obj is None else obj.data[start : start + length]

    async def head(self, key: str) -> ObjectInfo | None:
        obj = self._objects.get(check_key(key))
        if obj is None:
            return None
        archive = obj.tier in self._archive_tiers
        restore = None
        if archive:
            restore = (
                RestoreStatus("restored", obj.restored_until)
                if not self._is_archived(obj)
                else RestoreStatus("archived")
            )
        return ObjectInfo(
            key=key,
            size=len(obj.data),
            metadata=dict(obj.metadata),
            last_modified=obj.last_modified,
            tier=obj.tier,
            storage_class=obj.tier.value,
            archived=self._is_archived(obj),
            restore=restore,
            version=str(obj.version),
        )

    async def delete(self, key: str) -> bool:
        return self._objects.pop(check_key(key), None) is not None

    async def delete_if_version(self, key: str, version: str) -> bool:
        """Delete ``key`` only while its version token is ``version`` (no await between the check and the delete)."""
        obj = self._objects.get(check_key(key))
        if obj is None or str(obj.version) != version:
            return False
        del self._objects[key]
        return True

    async def delete_many(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._objects.pop(check_key(key), None)

    async def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        # Snapshot the matching keys first: callers may delete while they iterate.
        matches = [(k, o) for k, o in self._objects.items() if k.startswith(prefix)]
        for key, obj in matches:
            # A tier change keeps ``version`` (a write's number) but not the listing's token.
            token = f"{obj.version}.{obj.change}"
            yield ListEntry(key, len(obj.data), obj.last_modified, token, obj.tier.value)

    async def set_tier(self, key: str, tier: StorageTier, *, tags: Mapping[str, str] | None = None) -> None:
        obj = self._objects.get(check_key(key))
        if obj is None:
            raise ObjectNotFoundError(key)
        merged = check_tags({**obj.tags, **(tags or {})})
        tier = StorageTier(tier)
        # Setting the tier an object already has changes nothing, so a restored copy stays readable.
        restored = obj.restored_until if tier == obj.tier else None
        self._objects[key] = replace(obj, tier=tier, tags=merged, restored_until=restored, change=next(_CHANGES))

    async def restore(self, key: str, *, days: int = 1, speed: RestoreSpeed = "standard") -> RestoreStatus:
        obj = self._objects.get(check_key(key))
        if obj is None:
            raise ObjectNotFoundError(key)
        if obj.tier not in self._archive_tiers:
            return RestoreStatus("not-archived")
        obj.restored_until = self.clock.now() + timedelta(days=days)
        obj.change = next(_CHANGES)
        return RestoreStatus("restored", obj.restored_until)

    def usage(self, prefix: str) -> tuple[int, int] | None:
        sizes = [len(o.data) for k, o in self._objects.items() if k.startswith(prefix)]
        return len(sizes), sum(sizes)


SCHEME = Scheme("memory", from_url, example="memory://")
