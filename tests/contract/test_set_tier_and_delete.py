"""Deleting wins over a tier change, on every backend: no call re-creates an object it did not create.

A tier change of a page deleted before it is ``ObjectNotFoundError``; tier changes racing deletes (each page moved
between tiers again and again while it is deleted) leave every deleted page gone: not listed, not loaded, no
metadata, and a further tier change still ``ObjectNotFoundError``. L2 and L3 are used, never an archive class, so
the race is the same on every cloud.
"""

from __future__ import annotations

import asyncio
import random

from tests.contract.conftest import assert_gone, text_page
from tests.soak import scaled
from tierstore import ArtifactsBridge, ObjectNotFoundError, StorageTier


async def test_set_tier_of_a_deleted_page_is_not_found_and_brings_nothing_back(bridge: ArtifactsBridge) -> None:
    key = await bridge.store_page(text_page("deleted"))
    assert await bridge.delete_page(key)
    await assert_gone(bridge, [key], StorageTier.L2)


async def test_tier_changes_racing_deletes_never_bring_a_page_back(bridge: ArtifactsBridge) -> None:
    rng = random.Random(21)
    keys = [await bridge.store_page(text_page(f"raced {i}")) for i in range(scaled(12))]
    changed = 0
    deleted: set[str] = set()

    async def move_until_gone(key: str) -> None:
        nonlocal changed
        tiers = [StorageTier.L2, StorageTier.L3]
        while True:
            started_after_the_delete = key in deleted
            try:
                await bridge.set_tier(key, tiers[changed % 2])
            except ObjectNotFoundError:
                return
            assert not started_after_the_delete, f"{key}: a tier change begun after its delete succeeded"
            changed += 1
            await asyncio.sleep(0)

    async def delete(key: str) -> bool:
        await asyncio.sleep(rng.random() / 5)  # a tier change is a few requests (its tomb, the leases): some land first
        answer = await bridge.delete_page(key)
        deleted.add(key)
        return answer

    outcomes = await asyncio.gather(*map(move_until_gone, keys), *map(delete, keys))
    assert outcomes[len(keys) :] == [True] * len(keys)
    assert changed > 0
    await assert_gone(bridge, keys, StorageTier.L2)
