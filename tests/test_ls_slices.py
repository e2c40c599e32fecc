"""Listing in slices (tierstore.backends.slices): every key under the slices once, on every backend, whatever else
the store holds and whatever is written or deleted meanwhile; and the page listing's slices hold every artifact id
exactly once, so a bridge lists the same pages sliced or not.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, strategies as st

from tierstore import ArtifactsBridge, MemoryPage, Modality, ids
from tierstore.artifacts.objects import ARTIFACT_SLICES
from tierstore.backends import slices
from tierstore.backends.base import ListEntry, StorageBackend
from tierstore.backends.memory import InMemoryBackend
from tierstore.enums import StorageTier
from tierstore.errors import BackendUnavailableError

DIGITS = range(1, ids.MAX_ARTIFACT_DIGITS + 1)
ARTIFACTS = [
    *(f"mem_L3_{int(str(1 + n % 9) + '0' * (n - 1)) + n - 1}" for n in DIGITS),  # every digit count
    f"mem_L3_{'9' * ids.MAX_ARTIFACT_DIGITS}",
    *(f"mem_{tier.value}_{digit}7" for tier in StorageTier for digit in range(1, 10)),  # every slice
]
FOREIGN = [
    "mem_",
    "mem_L3_",
    "mem_L3_0",
    "mem_L3_01",
    "mem_L3_1a",
    "mem_L3_1.tmp",
    "mem_L3_1-x",
    "mem_l3_1",
    "mem_L5_1",
    "mem_L3_1" + "0" * ids.MAX_ARTIFACT_DIGITS,  # one digit too many: under a slice, no artifact id
    "mem_L3_x1",
    "mem",
    "ckpt_20260101T000000000000_0123abcd",
    "tomb_mem_L3_1",
    "alloc_L3_0",
    "zzz",
]
"""Keys no artifact id: some under a slice (listed by it, dropped by the page listing), some beside them."""


def test_the_page_slices_hold_every_artifact_id_once_and_overlap_nowhere() -> None:
    slices.check_disjoint(ARTIFACT_SLICES)
    for key in ARTIFACTS:
        assert ids.parse_artifact_id(key) is not None, key
        assert sum(key.startswith(s) for s in ARTIFACT_SLICES) == 1, key
    for key in FOREIGN:
        assert ids.parse_artifact_id(key) is None, key


@given(tier=st.sampled_from(list(StorageTier)), number=st.integers(1, 10**ids.MAX_ARTIFACT_DIGITS - 1))
def test_every_artifact_id_is_under_exactly_one_page_slice(tier: StorageTier, number: int) -> None:
    key = ids.artifact_id(tier, number)
    assert sum(key.startswith(s) for s in ARTIFACT_SLICES) == 1


@pytest.mark.parametrize(
    "prefixes", [["mem_L3_1", "mem_L3_1"], ["mem_L3_1", "mem_L3_10"], ["mem_", "mem_L3_2"], ["", "a"]], ids=str
)
async def test_overlapping_slices_are_refused(prefixes: list[str]) -> None:
    with pytest.raises(ValueError, match="overlap"):
        await slices.list_slices(InMemoryBackend(), prefixes)


async def test_every_key_under_the_slices_is_listed_once_on_every_backend(backend: StorageBackend) -> None:
    everything = ARTIFACTS + FOREIGN
    gate = asyncio.Semaphore(16)

    async def put(key: str) -> None:
        async with gate:
            await backend.put(key, key.encode())

    await asyncio.gather(*(put(key) for key in everything))
    under = Counter(k for k in everything if k.startswith(ARTIFACT_SLICES))
    sliced = await slices.list_slices(backend, ARTIFACT_SLICES, concurrency=8)
    assert Counter(e.key for e in sliced) == under
    assert {e.key: e.size for e in sliced} == {k: len(k) for k in under}
    whole = await slices.list_under(backend, ARTIFACT_SLICES)  # the one-listing path of the same contract
    assert Counter(e.key for e in whole) == under


class Counted:
    """``inner``, counting its listings; says that slicing pays off when ``sliced``."""

    def __init__(self, inner: StorageBackend, *, sliced: bool) -> None:
        self.inner = inner
        self.sliced_listing = sliced
        self.listings: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        self.listings.append(prefix)
        async for entry in self.inner.list(prefix):
            yield entry


@pytest.mark.bridge_only
@pytest.mark.parametrize("scoped", [False, True], ids=["root", "session scope"])
async def test_a_bridge_lists_the_same_pages_sliced_or_not(backend: StorageBackend, scoped: bool) -> None:
    scope: dict[str, Any] = {"user_id": "u", "session_id": "s"} if scoped else {}
    writer = ArtifactsBridge(backend=backend, **scope)
    stored = [
        await writer.store_page(MemoryPage(page_id=f"p{i}", modality=Modality.TEXT, content="x"), tier=tier)
        for i, tier in enumerate([StorageTier.L2, StorageTier.L3, StorageTier.L4] * 4)
    ]
    for key in FOREIGN:
        await backend.put(key, b"not a page")
    listed = {}
    for sliced in (False, True):
        counted = Counted(backend, sliced=sliced)
        entries = await ArtifactsBridge(backend=counted, **scope).list_page_entries()
        listed[sliced] = [(e.artifact_id, e.size_bytes) for e in entries]
        page_listings = [p for p in counted.listings if p.rpartition("mem_")[2].startswith("L")]
        places = {p.rpartition("mem_")[0] for p in page_listings}  # a session's bridge: its and its user's
        assert len(places) == (2 if scoped else 1)
        assert len(page_listings) == len(places) * (len(ARTIFACT_SLICES) if sliced else 1)  # the policy held
    assert listed[True] == listed[False]
    assert sorted(a for a, _ in listed[True]) == sorted(stored)


class Churning:
    """A store written to and deleted from while it is listed: every slice's listing, after its first key, writes
    a new artifact and deletes one written before the listing for that purpose."""

    def __init__(self, inner: StorageBackend, doomed: list[str]) -> None:
        self.inner = inner
        self.doomed = doomed
        self.added: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        first = True
        async for entry in self.inner.list(prefix):
            yield entry
            if first:
                first = False
                new = f"mem_L{2 + len(self.added) % 3}_{len(self.added) + 500}"
                self.added.append(new)
                await self.inner.put(new, b"new")
                if self.doomed:
                    await self.inner.delete(self.doomed.pop())
            await asyncio.sleep(0)  # let the other slices run in between


@pytest.mark.bridge_only
async def test_keys_written_or_deleted_during_a_sliced_listing(backend: StorageBackend) -> None:
    """A key there throughout is listed once; a key written or deleted meanwhile at most once; nothing else."""
    steady = [f"mem_L{tier}_{n}" for tier in (2, 3, 4) for n in (1, 12, 123, 2, 29, 9)]
    doomed = [f"mem_L{tier}_{n}" for tier in (2, 3, 4) for n in (4, 45, 456, 7)]
    for key in steady + doomed:
        await backend.put(key, b"old")
    churning = Churning(backend, list(doomed))
    listed = Counter(e.key for e in await slices.list_slices(churning, ARTIFACT_SLICES))
    assert churning.added  # the store did change during the listing
    assert max(listed.values()) == 1
    assert set(steady) <= set(listed)
    assert set(listed) <= set(steady) | set(doomed) | set(churning.added)


class FailingSlice:
    """Fails the listing of one slice after the others have started."""

    def __init__(self, inner: StorageBackend, failing: str) -> None:
        self.inner = inner
        self.failing = failing
        self.cancelled = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        if prefix == self.failing:
            await asyncio.sleep(0)
            raise BackendUnavailableError("the listing failed")
        try:
            await asyncio.sleep(3600)  # a slow slice: cancelled when another fails, never awaited to its end
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        async for entry in self.inner.list(prefix):
            yield entry


async def test_a_failing_slice_cancels_the_others_and_is_raised() -> None:
    failing = FailingSlice(InMemoryBackend(), ARTIFACT_SLICES[7])
    with pytest.raises(BackendUnavailableError):
        await slices.list_slices(failing, ARTIFACT_SLICES, concurrency=64)
    assert failing.cancelled == len(ARTIFACT_SLICES) - 1
