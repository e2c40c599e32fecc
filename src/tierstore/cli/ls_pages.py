"""The pages ``tierstore ls -l`` lists, in key order as the store lists them, each described from its place's catalog
(issue 28, "Fast listings").

Contract:

* ``async with PageListing(bridge) as listing`` starts, for each place the bridge reads (a bound bridge: its
  session's scope, then its user's; an unbound one: the root), the opening of its catalog (a listing of its
  snapshots and a GET of the newest, :meth:`~tierstore.catalog.Catalog.read`) and, for each wider place, the reading
  of the narrower places' tombs, all at once; leaving the block cancels and awaits whatever still runs.
* :meth:`PageListing.describe` gives the pages ``list_page_entries`` gives (a key two places hold is the
  narrowest's; a page of a wider place that a tomb of a narrower one names is left out), but in key order, as a
  string (``mem_L3_10`` before ``mem_L3_2``: the order every cloud lists in), each with its description as
  ``get_metadata`` gives it, in batches as they are ready. Where a place's backend lists in order
  (:func:`~tierstore.backends.slices.lists_in_order`: S3, GCS, Azure) its pages come page by page of its listing:
  a key is given once every place has listed past it, so the first batch needs the first listing page of each
  place, not the last. Elsewhere a place's listing is whole, then sorted.
* A description comes from the catalog's row where the listing proves it (no request), else from a ``head`` (one
  request, the answer kept by the catalog); a page whose object metadata holds no description (a chuk JSON page at
  the root) and a custom backend's page through the bridge's ``get_metadata``. None: the page went away since the
  listing. IntegrityError for a damaged page, as ``get_metadata``: handed to ``damaged``, the page given as None.
* :meth:`PageListing.fold` has each catalog write a new snapshot when it learnt enough
  (:meth:`~tierstore.catalog.Catalog.fold`; never raises for a lost race or an unavailable store), so the next
  ``ls -l`` asks only for what changed since.

A catalog row is trusted only while the listing shows its key with the same change token, size and storage class, so a
stale, damaged or copied snapshot costs requests, never a wrong row (one forged by a writer of the store is trusted:
README); a data path whose listing proves no row (Azure's obstore path) makes every entry a ``head``, as without a
catalog.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, Callable
from types import TracebackType

from tierstore import ids
from tierstore.artifacts.lookup import Place, Places, place_clock, wider_backends
from tierstore.artifacts.objects import ObjectArtifacts
from tierstore.backends.base import ListEntry
from tierstore.bridge import ArtifactsBridge
from tierstore.catalog import Catalog
from tierstore.concurrency import bounded_in_order
from tierstore.errors import IntegrityError
from tierstore.models import PageEntry, PageMetadata

Listed = tuple[int, ListEntry]
"""A listed page: the index of the place holding it (narrowest 0) and its listing entry."""


async def _open_catalog(places: Places, index: int) -> Catalog | None:
    place = places.places[index]
    artifacts = place.artifacts
    if not isinstance(artifacts, ObjectArtifacts):  # a custom backend: no catalog
        return None
    snapshots = [entry async for entry in artifacts.backend.list(ids.CATALOG_PREFIX)]
    clock, watch = place_clock(place), wider_backends(places, index)
    return await Catalog.read(artifacts.backend, snapshots, clock=clock, watch=watch)


async def _chunks(place: Place) -> AsyncGenerator[list[ListEntry], None]:
    """A place's pages in key order, in chunks (module contract)."""
    artifacts = place.artifacts
    if not isinstance(artifacts, ObjectArtifacts):
        yield sorted(await artifacts.page_entries(), key=lambda entry: entry.key)
        return
    chunks = artifacts.page_chunks()
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            yield chunk


async def _next_chunks(streams: list[AsyncGenerator[list[ListEntry], None]]) -> list[list[ListEntry] | None]:
    """The next chunk of each stream (None: it ended), asked at once. When one fails, the others are cancelled and
    awaited before its error is raised: a stream is never closed while a request of it still runs."""
    asked = [asyncio.ensure_future(anext(stream, None)) for stream in streams]
    try:
        return list(await asyncio.gather(*asked))
    except BaseException:
        for request in asked:
            request.cancel()
        await asyncio.wait(asked)
        for request in asked:  # a second failure is not left unretrieved: the first one is raised
            if not request.cancelled():
                request.exception()
        raise


class PageListing:
    """The pages a bridge lists, in key order, each with the place that holds it (module contract)."""

    def __init__(self, bridge: ArtifactsBridge) -> None:
        self.bridge = bridge
        self._places = bridge._places
        self._catalogs: list[asyncio.Task[Catalog | None]] = []
        self._hidden: list[asyncio.Task[set[str]]] = []

    async def __aenter__(self) -> PageListing:
        count = len(self._places.places)
        self._catalogs = [asyncio.ensure_future(_open_catalog(self._places, i)) for i in range(count)]
        self._hidden = [asyncio.ensure_future(self._places.named_before(i)) for i in range(1, count)]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        tasks = [*self._catalogs, *self._hidden]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        for task in tasks:  # an error no row waited for: the listing's own error, if any, is the one raised
            if not task.cancelled():
                task.exception()

    async def _listed(self) -> AsyncGenerator[list[Listed], None]:
        """Every place's pages merged in key order, the narrowest place's where two hold a key (module contract)."""
        async with contextlib.AsyncExitStack() as stack:
            streams = [await stack.enter_async_context(contextlib.aclosing(_chunks(p))) for p in self._places.places]
            waiting: list[deque[ListEntry]] = [deque() for _ in streams]
            listing = [True for _ in streams]
            while any(listing) or any(waiting):
                empty = [i for i, more in enumerate(listing) if more and not waiting[i]]
                fetched = await _next_chunks([streams[i] for i in empty]) if empty else []
                for i, chunk in zip(empty, fetched, strict=True):
                    if chunk is None:
                        listing[i] = False
                    else:
                        waiting[i].extend(chunk)
                # Every key up to the least last-listed key of the places still listing has come from all of them.
                ends = [waiting[i][-1].key for i, more in enumerate(listing) if more and waiting[i]]
                if len(ends) < sum(listing):
                    continue  # a place still listing gave an empty chunk: ask it again
                upto = min(ends, default=None)
                ready: list[Listed] = []
                for i, queue in enumerate(waiting):
                    while queue and (upto is None or queue[0].key <= upto):
                        ready.append((i, queue.popleft()))
                if ready:
                    yield await self._kept(ready)

    async def _kept(self, ready: list[Listed]) -> list[Listed]:
        """``ready`` in key order, each key once (the narrowest place's), a wider place's page named by a tomb of a
        narrower one left out."""
        ready.sort(key=lambda listed: (listed[1].key, listed[0]))
        kept: list[Listed] = []
        for index, entry in ready:
            if kept and kept[-1][1].key == entry.key:
                continue
            if index and entry.key in await self._hidden[index - 1]:
                continue
            kept.append((index, entry))
        return kept

    async def _describe(self, index: int, entry: ListEntry) -> PageMetadata | None:
        artifacts = self._places.places[index].artifacts
        catalog = await self._catalogs[index]
        if catalog is None or not isinstance(artifacts, ObjectArtifacts):
            return await self.bridge.get_metadata(entry.key)
        info = await catalog.answer(entry)
        if info is None:
            return None
        if "modality" not in info.metadata:  # no description in its object metadata: a chuk JSON page
            return await self.bridge.get_metadata(entry.key)
        return await artifacts.described(entry.key, info)

    async def describe(
        self,
        concurrency: int,
        *,
        damaged: Callable[[PageEntry, IntegrityError], None],
        progress: Callable[[int, int], None] | None = None,
    ) -> AsyncGenerator[list[tuple[PageEntry, PageMetadata | None]], None]:
        """Batches of pages with their descriptions, in key order, each as soon as it and all before it are known;
        at most ``concurrency`` requests in flight; ``progress(done, listed so far)``. A damaged page is handed to
        ``damaged`` and given as None (module contract)."""

        async def one(index: int, entry: ListEntry) -> tuple[PageEntry, PageMetadata | None]:
            page = PageEntry(artifact_id=entry.key, size_bytes=entry.size, last_modified=entry.last_modified)
            try:
                return page, await self._describe(index, entry)
            except IntegrityError as exc:
                damaged(page, exc)
                return page, None

        listed = described = 0

        def counted(done: int, _total: int) -> None:
            if progress is not None:
                progress(described + done, listed)

        chunks = self._listed()
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                listed += len(chunk)
                batches = bounded_in_order((one(i, entry) for i, entry in chunk), concurrency, progress=counted)
                async with contextlib.aclosing(batches):
                    async for batch in batches:
                        yield batch
                described += len(chunk)

    async def fold(self) -> None:
        """Each catalog writes a new snapshot if it learnt enough (module contract)."""
        catalogs = [catalog for catalog in await asyncio.gather(*self._catalogs) if catalog is not None]
        await asyncio.gather(*(catalog.fold() for catalog in catalogs))
