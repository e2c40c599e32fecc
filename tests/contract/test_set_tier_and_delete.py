"""Deleting wins over a tier change, on every backend: no call re-creates an object it did not create.

A tier change of a page deleted before it is ``ObjectNotFoundError``; tier changes racing deletes (each page moved
between tiers again and again while it is deleted) leave every deleted page gone: not listed, not loaded, no
metadata, and a further tier change still ``ObjectNotFoundError``. L2 and L3 are used, never an archive class, so
the race is the same on every cloud. Each delete waits for a tier change of its page to end and lands at a random
moment of the next, so every delete races one, however slow the store.

The race runs where the store refuses a tier change's write once its object is gone: on S3 that is the copy's
conditions, which moto ignores (``conditional_copy``: LocalStack runs it, on both data paths, moto does not); on moto
``tests/test_s3_specific.py::test_set_tier_of_an_object_deleted_after_it_was_read_creates_nothing`` lands the delete
before each request of the tier change instead.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.contract.conftest import assert_gone, text_page
from tests.soak import scaled
from tierstore import ArtifactsBridge, ObjectNotFoundError, StorageTier


async def test_set_tier_of_a_deleted_page_is_not_found_and_brings_nothing_back(bridge: ArtifactsBridge) -> None:
    key = await bridge.store_page(text_page("deleted"))
    assert await bridge.delete_page(key)
    await assert_gone(bridge, [key], StorageTier.L2)


@pytest.mark.conditional_copy
async def test_tier_changes_racing_deletes_never_bring_a_page_back(bridge: ArtifactsBridge) -> None:
    rng = random.Random(21)
    loop = asyncio.get_running_loop()
    keys = [await bridge.store_page(text_page(f"raced {i}")) for i in range(scaled(12))]
    history: dict[str, list[str]] = {key: [] for key in keys}  # for the failure's message
    changes = dict.fromkeys(keys, 0)
    lasted = dict.fromkeys(keys, 0.0)
    moved = {key: asyncio.Event() for key in keys}
    deleted: set[str] = set()

    def note(key: str, event: str) -> None:
        history[key].append(f"{loop.time():.3f} {event}")

    async def move_until_gone(key: str) -> None:
        while True:
            started_after_the_delete = key in deleted
            tier = (StorageTier.L2, StorageTier.L3)[changes[key] % 2]
            begun = loop.time()
            note(key, f"set_tier {tier.value}")
            try:
                await bridge.set_tier(key, tier)
            except ObjectNotFoundError:
                note(key, "set_tier: not found")
                return
            note(key, "set_tier done")
            assert not started_after_the_delete, f"{key}: a tier change begun after its delete landed: {history[key]}"
            changes[key] += 1
            lasted[key] = loop.time() - begun
            moved[key].set()
            await asyncio.sleep(0)

    async def delete(key: str) -> bool:
        # Each delete races a tier change of its page, however slow the store is: once one has ended, the delete
        # lands at a random moment of the next, so over the pages at each of its steps (tomb, leases, read, copy).
        await moved[key].wait()
        await asyncio.sleep(rng.random() * lasted[key])
        note(key, "delete")
        answer = await bridge.delete_page(key)
        note(key, f"delete done: {answer}")
        deleted.add(key)
        return answer

    outcomes = await asyncio.gather(*map(move_until_gone, keys), *map(delete, keys))
    assert outcomes[len(keys) :] == [True] * len(keys), history
    for key in keys:
        assert await bridge.get_metadata(key) is None, f"{key} came back: {history[key]}"
    await assert_gone(bridge, keys, StorageTier.L2)
