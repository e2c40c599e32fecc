"""Where a bridge finds an artifact id: the places it reads, narrowest first (issue 28).

Contract: :class:`Places` holds, in order, the places a bridge reads: the root alone for an unbound bridge, else its
session's scope and then its user's (:func:`tierstore.artifacts.open_scopes`). A read, description, deletion or
location of an artifact id asks each place in order and stops at the first that holds it (a miss costs one request
a place); a listing merges every place's. A place that does not hold an id answers as for an absent id, so whatever
another scope or the root holds is, for this bridge, exactly absent. Ids are unique store-wide (one allocator), so
at most one place holds a given id unless an object was copied behind tierstore's back, and the copy then fails
its frame's key check where it is read.

One exception, and its guard: once block records are lost (damage), an id deleted in a session may be issued again
into its user's shared scope by a bridge that cannot see that session. A reference the session kept must not then
load the user's new page, so an id found in a later place is absent for this bridge when a tomb of an earlier place
names it (deleted there): one more listing, of the earlier places' tombs, for a page found in the user's scope.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tierstore.artifacts.objects import artifact_order
from tierstore.backends.base import ListEntry, StorageBackend
from tierstore.chuk import legacy_json
from tierstore.clock import SYSTEM_CLOCK, Clock
from tierstore.codec import Codec
from tierstore.errors import IntegrityError, InvalidInputError
from tierstore.models import MemoryPage, PageMetadata
from tierstore.protocol import Guard, References
from tierstore.scope_codec import ScopedCodec
from tierstore.validate import clip

if TYPE_CHECKING:
    from tierstore.artifacts import Artifacts


@dataclass(frozen=True, slots=True)
class Place:
    """One place a bridge reads: its artifacts, the codec its frames are bound with, and its checkpoint protocol
    (None on a custom backend)."""

    name: str
    """``"root"``, ``"session"`` or ``"user"``."""
    artifacts: Artifacts
    codec: Codec
    guard: Guard | None

    @property
    def references(self) -> References | None:
        """The place's protocol handle (None on a custom backend)."""
        return None if self.guard is None else self.guard.references


def place_clock(place: Place) -> Clock:
    """The clock of a place's protocol (the bridge's), or the system's on a custom backend."""
    return SYSTEM_CLOCK if place.references is None else place.references.clock


def wider_backends(places: Places, index: int) -> list[StorageBackend]:
    """The stores of the places wider than ``places.places[index]`` (a session's: its user's), whose erasing tombs
    a fold in that place must watch (:mod:`tierstore.catalog`)."""
    return [place.references.backend for place in places.places[index + 1 :] if place.references is not None]


class Places:
    """The places a bridge reads, narrowest first (module contract)."""

    def __init__(self, places: list[Place]) -> None:
        self.places = places
        self.home = places[0]
        """The narrowest place: where the bridge stores by default and keeps its checkpoints."""
        self.scoped = self.home.name != "root"
        """Whether these are a bound bridge's scopes, not the root alone."""

    def named(self, scope: object) -> Place:
        """The place ``store_page(scope=...)`` names; InvalidInputError for another value, or a scope not bound."""
        for place in self.places:
            if place.name == scope and self.scoped:
                return place
        if scope not in ("session", "user"):
            raise InvalidInputError(f"scope must be 'session' or 'user', not {clip(repr(scope), 40)}")
        raise InvalidInputError(f"scope={scope!r}: this bridge is bound to no {scope}")

    async def named_before(self, index: int) -> set[str]:
        """The ids deleted in the places narrower than ``self.places[index]``: absent there for this bridge."""
        return await self._named_before(index)

    async def _named_before(self, index: int) -> set[str]:
        """The ids the tombs of the places narrower than ``self.places[index]`` name (module contract)."""
        named: set[str] = set()
        for place in self.places[:index]:
            if place.references is not None:
                tombs, _unreadable = await place.references.tombs()
                named.update(*(tomb.artifacts for tomb in tombs))
        return named

    async def _deleted_before(self, index: int, key: str) -> bool:
        return key in await self._named_before(index)

    async def load(self, key: str) -> MemoryPage | None:
        """The verified page at ``key`` in the first place holding it; None when none does."""
        for index, place in enumerate(self.places):
            data = await place.artifacts.read(key)
            if data is not None and index and await self._deleted_before(index, key):
                return None
            if data is not None:
                bound = place.artifacts.binds_keys
                page, _checksum = await place.codec.decode_page_off_loop(data, key, bound=bound)
                return page
        return None

    async def delete_page(self, key: str) -> int | None:
        """Delete the page at ``key`` in the first place holding it; its size, or None when none does."""
        for index, place in enumerate(self.places):
            if index and await self._deleted_before(index, key):
                return None
            size = await place.artifacts.delete_page(key)
            if size is not None:
                return size
        return None

    async def describe(self, key: str) -> PageMetadata | None:
        """The description of the page at ``key`` in the first place holding it (chuk's JSON pages, which carry no
        object metadata, from their body); None when none does."""
        for index, place in enumerate(self.places):
            try:
                described = await place.artifacts.describe(key)
            except IntegrityError:
                data = await place.artifacts.read(key)
                if data is None or not legacy_json.looks_like_json(data) or isinstance(place.codec, ScopedCodec):
                    raise  # a scope holds no plain JSON page (tierstore.scope_codec)
                return legacy_json.describe_json_page(data, key)
            if described is not None:
                return None if index and await self._deleted_before(index, key) else described
        return None

    async def page_entries(self) -> list[ListEntry]:
        """Every page of every place, in artifact order (a key two places hold, by a copy: the narrowest's)."""
        if len(self.places) == 1:
            return await self.places[0].artifacts.page_entries()
        listed = await asyncio.gather(*(place.artifacts.page_entries() for place in self.places))
        merged = {entry.key: entry for entries in reversed(listed) for entry in entries}
        wider = [key for key in merged if key not in {entry.key for entry in listed[0]}]
        if wider:
            named = await self._named_before(len(self.places) - 1)
            for key in named.intersection(wider):
                del merged[key]
        return sorted(merged.values(), key=lambda entry: artifact_order(entry.key))

    async def page_keys(self) -> list[str]:
        """Every page's key of every place, in artifact order."""
        if len(self.places) == 1:
            return await self.places[0].artifacts.page_keys()
        return [entry.key for entry in await self.page_entries()]

    def usage(self) -> tuple[int, int, int] | None:
        """``(pages, bytes, checkpoints)`` without I/O where every place knows them: pages and bytes of them all,
        checkpoints of the narrowest (where the bridge keeps its own)."""
        usages = [place.artifacts.usage() for place in self.places]
        known = [usage for usage in usages if usage is not None]
        if len(known) < len(usages):
            return None
        return sum(u[0] for u in known), sum(u[1] for u in known), known[0][2]

    async def holder(self, key: str) -> References | None:
        """The protocol handle of the first place holding ``key`` (one ``head`` a place); None when none does."""
        for index, place in enumerate(self.places):
            if place.references is not None and await place.references.head(key) is not None:
                return None if index and await self._deleted_before(index, key) else place.references
        return None
