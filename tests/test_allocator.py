"""The id allocator on its own: blocks are won by one bridge each, numbers are issued once, taken keys skipped."""

from __future__ import annotations

import asyncio

import pytest

from tierstore import codec, ids
from tierstore.allocator import BLOCK, IdAllocator
from tierstore.backends.memory import InMemoryBackend
from tierstore.enums import StorageTier
from tierstore.errors import ConflictError

L3 = StorageTier.L3


async def _claim(allocator: IdAllocator, backend: InMemoryBackend, tier: StorageTier = L3) -> str:
    async def write(key: str) -> None:
        await backend.put(key, codec.encode_record(key, {}).data, if_absent=True)

    return await allocator.claim(tier, write)


async def test_a_fresh_store_starts_at_one_and_counts_up() -> None:
    backend = InMemoryBackend()
    allocator = IdAllocator(backend)
    assert [await _claim(allocator, backend) for _ in range(3)] == ["mem_L3_1", "mem_L3_2", "mem_L3_3"]
    assert [e.key async for e in backend.list(ids.ALLOC_PREFIX)] == ["alloc_L3_0"]


async def test_racing_allocators_win_different_blocks() -> None:
    backend = InMemoryBackend()
    allocators = [IdAllocator(backend) for _ in range(8)]
    issued = await asyncio.gather(*(_claim(a, backend) for a in allocators for _ in range(5)))
    assert len(set(issued)) == 40
    blocks = {(ids.parse_artifact_id(key) or (L3, 0))[1] // BLOCK for key in issued}
    assert len(blocks) == 8
    assert len([e async for e in backend.list("alloc_L3_")]) == 8


async def test_a_block_runs_out_and_the_next_is_claimed() -> None:
    backend = InMemoryBackend()
    allocator = IdAllocator(backend)
    issued = [await _claim(allocator, backend) for _ in range(BLOCK + 2)]
    assert issued[BLOCK - 1] == f"mem_L3_{BLOCK}"
    assert issued[BLOCK:] == [f"mem_L3_{BLOCK + 1}", f"mem_L3_{BLOCK + 2}"]
    assert sorted([e.key async for e in backend.list("alloc_L3_")]) == ["alloc_L3_0", "alloc_L3_1"]


async def test_a_taken_key_inside_the_block_is_skipped_not_overwritten() -> None:
    backend = InMemoryBackend()
    await backend.put("alloc_L3_4", b"someone else's block", if_absent=True)
    await backend.put("mem_L3_5002", b"copied in from elsewhere", if_absent=True)
    allocator = IdAllocator(backend)
    assert await _claim(allocator, backend) == "mem_L3_5001"
    assert await _claim(allocator, backend) == "mem_L3_5003"
    assert await backend.get("mem_L3_5002") == b"copied in from elsewhere"


async def test_a_store_without_block_records_starts_above_its_pages() -> None:
    backend = InMemoryBackend()
    await backend.put("mem_L3_2500", b"an old page")
    await backend.put("mem_L4_9999", b"another tier's page")
    assert await _claim(IdAllocator(backend), backend) == "mem_L3_3001"
    assert await _claim(IdAllocator(backend), backend, StorageTier.L4) == "mem_L4_10001"


async def test_tiers_number_independently() -> None:
    backend = InMemoryBackend()
    allocator = IdAllocator(backend)
    assert await _claim(allocator, backend, StorageTier.L4) == "mem_L4_1"
    assert await _claim(allocator, backend) == "mem_L3_1"


async def test_a_write_that_conflicts_forever_gives_up() -> None:
    backend = InMemoryBackend()
    allocator = IdAllocator(backend)

    async def always_taken(key: str) -> None:
        raise ConflictError(key)

    with pytest.raises(ConflictError, match="in a row"):
        await allocator.claim(L3, always_taken)
