"""The pages ``tierstore ls`` lists, and their descriptions from each place's catalog (issue 28, "Fast listings").

Contract:

* :meth:`PageListing.of` lists each place a bridge reads (a bound bridge: its session's scope, then its user's; an
  unbound one: the root) once, its pages and its catalog snapshots (:mod:`tierstore.catalog`), the places at once,
  and opens each place's catalog (a GET of its newest snapshot). Its ``entries`` are the pages
  ``list_page_entries`` gives, in the same order: a key two places hold is the narrowest's; a page of a wider place
  that a tomb of a narrower one names is left out.
* :meth:`PageListing.describe` gives each entry with its description as ``get_metadata`` gives it, in order: from
  the catalog's row where the listing proves it (no request), else from a ``head`` (one request, the answer kept by
  the catalog); a page whose object metadata holds no description (a chuk JSON page at the root) and a custom
  backend's page through the bridge's ``get_metadata``. None: the page went away since the listing.
  IntegrityError for a damaged page, as ``get_metadata``.
* :meth:`PageListing.fold` has each catalog write a new snapshot when it learnt enough
  (:meth:`~tierstore.catalog.Catalog.fold`; never raises for a lost race or an unavailable store), so the next
  ``ls -l`` asks only for what changed since.

A catalog row is trusted only while the listing shows its key with the same change token, size and storage class, so
a stale, damaged or forged snapshot costs requests, never a wrong row; a data path whose listing proves no row (Azure's
obstore path) makes every entry a ``head``, as without a catalog.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from tierstore import ids
from tierstore.artifacts.lookup import Place, Places, place_clock, wider_backends
from tierstore.artifacts.objects import ObjectArtifacts, artifact_order
from tierstore.backends.base import ListEntry
from tierstore.bridge import ArtifactsBridge
from tierstore.catalog import Catalog
from tierstore.concurrency import bounded_in_order
from tierstore.errors import IntegrityError
from tierstore.models import PageEntry, PageMetadata


@dataclass(frozen=True)
class _Listed:
    """One place's listing: its pages and, on a store of objects, its catalog."""

    place: Place
    pages: list[ListEntry]
    catalog: Catalog | None


async def _list_place(places: Places, index: int) -> _Listed:
    place = places.places[index]
    artifacts = place.artifacts
    if not isinstance(artifacts, ObjectArtifacts):  # a custom backend: no catalog
        return _Listed(place, await artifacts.page_entries(), None)
    backend = artifacts.backend

    async def snapshots() -> list[ListEntry]:
        return [entry async for entry in backend.list(ids.CATALOG_PREFIX)]

    pages, found = await asyncio.gather(artifacts.page_entries(), snapshots())
    catalog = await Catalog.open(
        backend, [*pages, *found], clock=place_clock(place), watch=wider_backends(places, index)
    )
    return _Listed(place, pages, catalog)


class PageListing:
    """The pages a bridge lists, each with the place that holds it (module contract)."""

    def __init__(self, bridge: ArtifactsBridge, listed: list[_Listed], held: dict[str, tuple[_Listed, ListEntry]]):
        self.bridge = bridge
        self._listed = listed
        self._held = held
        self.entries = [
            PageEntry(artifact_id=entry.key, size_bytes=entry.size, last_modified=entry.last_modified)
            for _, entry in held.values()
        ]
        """The pages, in the order ``list_page_entries`` gives them."""

    @classmethod
    async def of(cls, bridge: ArtifactsBridge) -> PageListing:
        """List the bridge's places and open their catalogs (module contract)."""
        places = bridge._places
        listed = list(await asyncio.gather(*(_list_place(places, index) for index in range(len(places.places)))))
        held: dict[str, tuple[_Listed, ListEntry]] = {}
        for one in reversed(listed):  # the narrowest place's last: it wins
            held.update((entry.key, (one, entry)) for entry in one.pages)
        if len(listed) > 1:
            narrowest = {entry.key for entry in listed[0].pages}
            wider = [key for key in held if key not in narrowest]
            if wider:
                for key in (await places.named_before(len(listed) - 1)).intersection(wider):
                    del held[key]
        ordered = dict(sorted(held.items(), key=lambda item: artifact_order(item[0])))
        return cls(bridge, listed, ordered)

    @property
    def catalogs(self) -> list[Catalog]:
        """The places' catalogs (a custom backend's place has none)."""
        return [one.catalog for one in self._listed if one.catalog is not None]

    async def _describe(self, page: PageEntry) -> PageMetadata | None:
        one, entry = self._held[page.artifact_id]
        artifacts = one.place.artifacts
        if one.catalog is None or not isinstance(artifacts, ObjectArtifacts):
            return await self.bridge.get_metadata(page.artifact_id)
        answers = [info async for _, info in one.catalog.describe([entry], concurrency=1)]  # read to its end
        info = answers[0] if answers else None
        if info is None:
            return None
        if "modality" not in info.metadata:  # no description in its object metadata: a chuk JSON page
            return await self.bridge.get_metadata(page.artifact_id)
        return await artifacts.described(entry.key, info)

    async def describe(
        self,
        concurrency: int,
        *,
        damaged: Callable[[PageEntry, IntegrityError], None],
        progress: Callable[[int, int], None] | None = None,
    ) -> AsyncGenerator[list[tuple[PageEntry, PageMetadata | None]], None]:
        """Batches of entries with their descriptions, in order, each as soon as it and all before it are known;
        at most ``concurrency`` requests in flight. A damaged page is handed to ``damaged`` and given as None."""

        async def one(page: PageEntry) -> tuple[PageEntry, PageMetadata | None]:
            try:
                return page, await self._describe(page)
            except IntegrityError as exc:
                damaged(page, exc)
                return page, None

        batches = bounded_in_order((one(page) for page in self.entries), concurrency, progress=progress)
        async with contextlib.aclosing(batches):
            async for batch in batches:
                yield batch

    async def fold(self) -> None:
        """Each catalog writes a new snapshot if it learnt enough (module contract)."""
        await asyncio.gather(*(catalog.fold() for catalog in self.catalogs))
