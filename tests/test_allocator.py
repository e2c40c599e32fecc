"""The id allocator on its own: blocks are won by one bridge each, numbers are issued once, taken keys skipped."""

from __future__ import annotations

import asyncio
import re
from itertools import combinations

import pytest

from tierstore import ArtifactsBridge, MemoryPage, Modality, codec, ids
from tierstore.allocator import BLOCK, IdAllocator
from tierstore.backends.memory import InMemoryBackend
from tierstore.enums import StorageTier
from tierstore.errors import ConflictError, IntegrityError

L3 = StorageTier.L3


async def _claim(allocator: IdAllocator, backend: InMemoryBackend, tier: StorageTier = L3) -> str:
    async def write(key: str) -> None:
        await backend.put(key, codec.PLAIN.encode_record(key, {}).data, if_absent=True)

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
    allocator = IdAllocator(backend)
    assert await _claim(allocator, backend) == "mem_L3_5001"
    await backend.put("mem_L3_5002", b"copied in from elsewhere", if_absent=True)
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


# What a store can hold that names ids, and the block whose ids only it names in the store built below.
_EVIDENCE = {"alloc_": 4, "mem_": 0, "tomb_d": 1, "ckpt_": 2, "tomb_p": 3, "intent_": 4}


def _kind(key: str) -> str:
    return key[:5] + key[-1] if key.startswith(ids.TOMB_PREFIX) else key.split("_", 1)[0] + "_"


async def _store_with_each_kind_of_evidence() -> InMemoryBackend:
    """Five bridges, one block each: a kept page (block 0), a deleted page's tomb (1), a checkpoint whose pages were
    lost behind tierstore's back (2), a pending tomb of a deletion that never finished (3), a lease naming an id
    whose page is gone (4)."""
    backend = InMemoryBackend()

    def bridge() -> ArtifactsBridge:
        return ArtifactsBridge(backend=backend)

    await bridge().store_page(_page("kept"))
    deleting = bridge()
    assert await deleting.delete_page(await deleting.store_page(_page("deleted")))
    checkpointing = bridge()
    manifest = await checkpointing.get_checkpoint_manifest(await checkpointing.checkpoint([_page("c")], "c"))
    assert manifest is not None
    await backend.delete_many([e.artifact_id for e in manifest.pages])
    pending = bridge()
    doomed = await pending.store_page(_page("pending"))
    await pending.references("test").write_tomb("pending", [doomed])
    await backend.delete(doomed)
    leasing = bridge()
    reused = await leasing.store_page(_page("leased"))
    lease = leasing.references("test").lease("ckpt_20300101T000000000000_00000000", [reused])
    await lease.start()
    await lease.abandon()
    await backend.delete(reused)
    assert {_kind(e.key) async for e in backend.list()} == set(_EVIDENCE)
    return backend


@pytest.mark.parametrize("surviving", [c for n in range(len(_EVIDENCE) + 1) for c in combinations(_EVIDENCE, n)])
async def test_a_new_bridge_never_reissues_an_id_any_surviving_record_names(surviving: tuple[str, ...]) -> None:
    """Issue 21 item 14: a store put back from a backup of some kinds of records (the block records among them or
    not) never issues an id that a surviving page, tomb, lease or manifest holds or names."""
    original = await _store_with_each_kind_of_evidence()
    restored = InMemoryBackend()
    named: set[str] = set()
    async for entry in original.list():
        if _kind(entry.key) in surviving:
            data, info = await original.get(entry.key), await original.head(entry.key)
            assert data is not None
            assert info is not None
            await restored.put(entry.key, data, metadata=info.metadata, tier=info.tier or L3)
            if entry.key.startswith(ids.PAGE_PREFIX):
                named.add(entry.key)
            elif not entry.key.startswith(ids.ALLOC_PREFIX):
                named.update(re.findall(r"mem_L3_[0-9]+", bytes(data).decode("utf-8", "replace")))
    issued = await ArtifactsBridge(backend=restored).store_page(_page("new"))
    assert issued not in named
    expected_block = max((_EVIDENCE[kind] for kind in surviving), default=-1) + 1
    assert issued == f"mem_L3_{expected_block * BLOCK + 1}"


def _page(page_id: str) -> MemoryPage:
    return MemoryPage(page_id=page_id, modality=Modality.TEXT, content=f"content of {page_id}")


_BLOCKS = range(_EVIDENCE["alloc_"] + 1)


@pytest.mark.parametrize("junk", [False, True], ids=["lost", "junk"])
# The newest records lost (every prefix of the blocks kept), and records lost between kept ones.
@pytest.mark.parametrize("kept", [*(tuple(range(n)) for n in _BLOCKS), (1, 3), (0, 2), (3,)])
@pytest.mark.parametrize("evidence", [k for k in _EVIDENCE if k != "alloc_"])
async def test_a_new_bridge_whichever_block_records_are_lost_never_reissues_a_deleted_or_held_id(
    evidence: str, kept: tuple[int, ...], junk: bool
) -> None:
    """Issue 21 item 14: block records kept only in part (the newest lost, any others lost, or bytes that are no
    record put at a lost one's key) never let a new bridge issue an id a tomb names (deleted or being deleted) or a
    page holds. An id only a manifest or lease names, its page lost behind tierstore's back, may come again (a start
    reads no manifests, :mod:`tierstore.allocator` says why); the checkpoint naming it then fails its checksum on
    restore and never returns the new page."""
    original = await _store_with_each_kind_of_evidence()
    restored = InMemoryBackend()
    named: set[str] = set()
    async for entry in original.list():
        kind = _kind(entry.key)
        parsed = ids.parse_alloc_key(entry.key)
        if kind == evidence or (parsed is not None and parsed[1] in kept):
            data = await original.get(entry.key)
            info = await original.head(entry.key)
            assert data is not None
            assert info is not None
            await restored.put(entry.key, data, metadata=info.metadata, tier=info.tier or L3)
            if kind == evidence:
                named.update(re.findall(r"mem_L3_[0-9]+", entry.key + bytes(data).decode("utf-8", "replace")))
        elif parsed is not None and junk:
            await restored.put(entry.key, b"\x00not a record")
    assert named
    bridge = ArtifactsBridge(backend=restored)
    issued = await bridge.store_page(_page("new"))
    if evidence in ("mem_", "tomb_d", "tomb_p"):
        assert issued not in named
        records_left = _BLOCKS if junk else kept
        if records_left:  # with none the whole store is read (the test above)
            block = max(max(records_left), _EVIDENCE[evidence] if evidence != "mem_" else -1) + 1
            assert issued == f"mem_L3_{block * BLOCK + 1}"
    for checkpoint in await bridge.list_checkpoints():
        with pytest.raises(IntegrityError):
            await bridge.restore_checkpoint(checkpoint)


async def test_a_block_record_lost_while_a_bridge_runs_never_lets_it_reissue_a_deleted_id() -> None:
    """A bridge's later claims read the tombs too: the record of another bridge's block lost while this one holds
    the block below never lets this one claim that block again and issue an id whose tomb is kept."""
    backend = InMemoryBackend()
    running = ArtifactsBridge(backend=backend)
    await running.store_page(_page("first"))  # block 0
    deleting = ArtifactsBridge(backend=backend)
    deleted = await deleting.store_page(_page("deleted"))  # block 1
    assert await deleting.delete_page(deleted)
    await backend.delete(ids.alloc_key(L3, 1))
    allocator = running._artifacts._allocator  # type: ignore[attr-defined]
    issued = [await _claim(allocator, backend) for _ in range(BLOCK + 1)]  # the rest of block 0, then a claim
    assert deleted not in issued
    assert await running.load_page(deleted) is None


@pytest.mark.parametrize(
    "foreign",
    [f"alloc_L3_{10**15 - 1}", "mem_L3_999999999999999999", "tomb naming mem_L3_999999999999999999"],
)
async def test_a_foreign_record_at_the_top_of_the_numbers_never_pushes_an_id_past_the_format(foreign: str) -> None:
    """A record or tomb naming a block no store reaches (another program's object, or a tomb of its deletion) is
    left out: ids stay loadable artifact ids."""
    backend = InMemoryBackend()
    bridge = ArtifactsBridge(backend=backend)
    await bridge.store_page(_page("first"))
    if foreign.startswith("tomb"):
        await bridge.references("test").write_tomb("deleted", ["mem_L3_999999999999999999"])
    else:
        await backend.put(foreign, b"another program's object")
    fresh = ArtifactsBridge(backend=backend)
    issued = await fresh.store_page(_page("second"))
    assert ids.parse_artifact_id(issued) is not None, issued
    loaded = await fresh.load_page(issued)
    assert loaded is not None
    assert loaded.page_id == "second"
