"""Listing a store in slices: several disjoint prefixes, each by its own ``list``, at once.

Contract:

* :func:`list_slices` returns every key under any of ``prefixes`` exactly once: the union of what
  ``backend.list(p)`` yields for each ``p`` (the backend contract: each of those once). The prefixes must be
  disjoint, none a prefix of another nor repeated (ValueError: a key under two would be listed twice).
* The prefixes are listed concurrently, at most ``concurrency`` at a time, each paginated by the backend as usual:
  on a cloud the whole takes about as many round trips as its biggest slice has pages of keys, where one listing
  of them all takes as many as they have together. An error in one slice cancels the others and is raised.
* A key written or deleted while the listing runs is listed or not, as by one listing; a key there throughout is
  listed once, since no key is under two slices. No order is promised.
* Which slices, and whether slicing pays, is the caller's choice (the backend knows no key's meaning): where the
  backend does not list by a prefix in one round trip per page (:func:`pays_off`), one listing of the slices'
  common prefix, keeping the keys under a slice, gives the same keys with one scan.
* :func:`lists_in_order`: whether the backend says its ``list`` yields keys in ascending order page after page, so
  a reader can use the first page before the last has come (``tierstore ls -l`` streams from it);
  :func:`list_streamed` lists so that its first page comes soon.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence

from tierstore.backends.base import ListEntry, StorageBackend

SLICED_LISTING = "sliced_listing"
"""The attribute by which a backend says that a listing by prefix costs it a round trip a page, the prefix chosen
by the server, so that slices listed at once end sooner than one listing (:func:`pays_off`)."""


ORDERED_LISTING = "ordered_listing"
"""The attribute by which a backend says that ``list`` yields keys in ascending order, as Python compares strings
(code point order): S3, GCS and Azure list names in UTF-8 byte order, which is the same order."""


STREAMED_LISTING = "list_streamed"
"""The method by which a backend lists as ``list`` does, but asks for a small first page (:data:`FIRST_PAGE` keys):
a reader that shows keys as they come (``tierstore ls -l``) has its first sooner, for one more request where more
keys follow. A backend without it is listed by ``list`` (:func:`list_streamed`)."""

FIRST_PAGE = 100
"""The keys a streamed listing's first page asks for: on moto a 1,000-key LIST page takes some 0.2 s to come and
be parsed, so a tenth of it has the first row out some 0.15 s sooner (``bench/bench_listing.py``)."""


def list_streamed(backend: StorageBackend, prefix: str) -> AsyncIterator[ListEntry]:
    """``backend.list(prefix)``, through :data:`STREAMED_LISTING` where the backend has it."""
    streamed = getattr(backend, STREAMED_LISTING, None)
    listing: AsyncIterator[ListEntry] = streamed(prefix) if callable(streamed) else backend.list(prefix)
    return listing


def lists_in_order(backend: StorageBackend) -> bool:
    """Whether ``backend`` says it lists keys in ascending order (:data:`ORDERED_LISTING`)."""
    return getattr(backend, ORDERED_LISTING, False) is True


def pays_off(backend: StorageBackend) -> bool:
    """Whether listing ``backend`` in slices ends sooner than one listing (it says so: :data:`SLICED_LISTING`)."""
    return getattr(backend, SLICED_LISTING, False) is True


def check_disjoint(prefixes: Sequence[str]) -> None:
    """ValueError unless no prefix is another's prefix (nor repeated): each key is under one of them at most."""
    ordered = sorted(prefixes)
    for before, after in itertools.pairwise(ordered):
        if after.startswith(before):
            raise ValueError(f"slices {before!r} and {after!r} overlap: a key under both would be listed twice")


def common_prefix(prefixes: Sequence[str]) -> str:
    """The longest prefix of every one of ``prefixes``."""
    first, last = min(prefixes, default=""), max(prefixes, default="")
    same = next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), min(len(first), len(last)))
    return first[:same]


async def list_slices(backend: StorageBackend, prefixes: Sequence[str], *, concurrency: int = 64) -> list[ListEntry]:
    """Every key under one of ``prefixes``, each once, the slices listed concurrently (module contract)."""
    check_disjoint(prefixes)
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    gate = asyncio.Semaphore(concurrency)

    async def one(prefix: str) -> list[ListEntry]:
        async with gate:
            return [entry async for entry in backend.list(prefix)]

    listed: list[ListEntry] = []
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(prefix)) for prefix in prefixes]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None  # the first slice's error, as one listing would have raised it
    for task in tasks:
        listed.extend(task.result())
    return listed


async def list_under(backend: StorageBackend, prefixes: Sequence[str], *, concurrency: int = 64) -> list[ListEntry]:
    """Every key under one of ``prefixes``, each once: in slices where that pays off, else one listing of their
    common prefix, filtered (module contract)."""
    check_disjoint(prefixes)
    if not prefixes:
        return []
    if pays_off(backend):
        return await list_slices(backend, prefixes, concurrency=concurrency)
    whole = tuple(prefixes)
    return [entry async for entry in backend.list(common_prefix(whole)) if entry.key.startswith(whole)]
