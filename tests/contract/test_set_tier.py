"""Capability: tiers. ``set_tier`` is idempotent, on every backend: the tier an object already has is set again
without a word (an archived object included, which most clouds could not copy), a retry after a lost answer
succeeds (proved through the fault proxy on every rig reached over HTTP), and it never re-creates an object
deleted before it: that is ObjectNotFoundError, and the key stays absent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from tests.faults import Fault, FaultProxy
from tests.rigs import load
from tierstore.backends.base import StorageBackend
from tierstore.backends.cloud import CloudOptions, RetryPolicy
from tierstore.enums import StorageTier
from tierstore.errors import ObjectNotFoundError

QUICK = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, deadline=20.0)


async def _tier_of(backend: StorageBackend, key: str) -> StorageTier | None:
    info = await backend.head(key)
    assert info is not None
    return info.tier


@pytest.mark.parametrize("tier", [StorageTier.L3, StorageTier.L2])
async def test_setting_the_tier_an_object_has_succeeds(backend: StorageBackend, tier: StorageTier) -> None:
    await _set_the_same_tier_thrice(backend, tier)


async def test_setting_the_archive_tier_an_object_has_succeeds(backend: StorageBackend) -> None:
    await _set_the_same_tier_thrice(backend, StorageTier.L4)


async def _set_the_same_tier_thrice(backend: StorageBackend, tier: StorageTier) -> None:
    await backend.put("mem_L3_1", b"page", metadata={"owner": "a"}, tags={"tier": "L3"})
    for _ in range(3):
        await backend.set_tier("mem_L3_1", tier, tags={"tier": tier.value})
        assert await _tier_of(backend, "mem_L3_1") == tier
    info = await backend.head("mem_L3_1")
    assert info is not None
    assert dict(info.metadata) == {"owner": "a"}
    if not info.archived:
        assert await backend.get("mem_L3_1") == b"page"


async def test_set_tier_of_a_deleted_object_is_not_found_and_creates_nothing(backend: StorageBackend) -> None:
    await backend.put("mem_L3_1", b"page")
    assert await backend.delete("mem_L3_1")
    for tier in (StorageTier.L4, StorageTier.L3):
        with pytest.raises(ObjectNotFoundError):
            await backend.set_tier("mem_L3_1", tier, tags={"tier": tier.value})
    assert await backend.head("mem_L3_1") is None
    assert [entry.key async for entry in backend.list("mem_")] == []


class LoseFirstWrite:
    """Loses the answer of the first write request (the copy, rewrite, patch or tier change), passes the rest."""

    def __init__(self) -> None:
        self.writes = 0

    def __call__(self, request: web.Request) -> Fault | None:
        if request.method not in ("PUT", "POST", "PATCH"):
            return None
        self.writes += 1
        return "lose-answer" if self.writes == 1 else None


async def test_a_set_tier_whose_answer_was_lost_succeeds_on_its_retry(
    network_rig: str, rig_server: Callable[[str], Any]
) -> None:
    await _lose_the_answer_of_a_set_tier(network_rig, rig_server, StorageTier.L2)


async def test_a_set_tier_to_the_archive_whose_answer_was_lost_succeeds_on_its_retry(
    network_rig: str, rig_server: Callable[[str], Any]
) -> None:
    await _lose_the_answer_of_a_set_tier(network_rig, rig_server, StorageTier.L4)


async def _lose_the_answer_of_a_set_tier(network_rig: str, rig_server: Callable[[str], Any], tier: StorageTier) -> None:
    rig = load(network_rig)
    spec = rig_server(network_rig).new_store()
    decide = LoseFirstWrite()
    direct: StorageBackend = rig.open_backend(spec)
    proxy = await FaultProxy(rig.upstream(spec), decide=decide).start()
    faulted: StorageBackend = rig.open_backend(rig.through(spec, proxy.url), CloudOptions(retry=QUICK))
    try:
        await direct.put("mem_L3_1", b"page", tags={"tier": "L3"})
        await faulted.set_tier("mem_L3_1", tier, tags={"tier": tier.value})
        assert proxy.injected["lose-answer"] == 1  # the change landed, its answer did not: the retry found it done
        assert await _tier_of(direct, "mem_L3_1") == tier
        await faulted.set_tier("mem_L3_1", tier, tags={"tier": tier.value})
        assert await _tier_of(direct, "mem_L3_1") == tier
    finally:
        await faulted.aclose()
        await direct.aclose()
        await proxy.stop()
