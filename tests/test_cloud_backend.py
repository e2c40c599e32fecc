"""CloudBackend's own logic, the same above every cloud, on a scripted in-process client (tests/scripted_client.py):
create-then-verify after a lost answer, retries of overwrites only when they surely did not apply, range guards,
archived reads and restores, deletes whose answer was lost, batch deletes falling back for good, and listing.
The emulators prove that each adapter gives this logic what it needs (tests/contract/test_network.py)."""

from __future__ import annotations

import pytest

from tests.scripted_client import COLD, ScriptedClient, scripted_backend
from tierstore import (
    AccessDeniedError,
    ArchivedPageError,
    BackendUnavailableError,
    ConflictError,
    InvalidInputError,
    ObjectNotFoundError,
    StorageTier,
)
from tierstore.backends.cloud import Failure

LOST = Failure("network", "maybe")
"""The request took effect and its answer was lost (a reset after the service acted)."""
SLOWED = Failure("throttled", "no", 503, "SlowDown")
"""Refused before anything happened."""


@pytest.mark.parametrize("digests", [True, False], ids=["by-digest", "by-reading"])
async def test_a_create_whose_answer_was_lost_is_done_when_the_object_holds_our_bytes(digests: bool) -> None:
    client = ScriptedClient(digests=digests)
    client.fail("put", LOST)
    backend = scripted_backend(client)
    await backend.put("mem_L3_1", b"ours", if_absent=True)
    assert client.objects["store/mem_L3_1"].data == b"ours"
    checks = [op for op, _ in client.requests if op in ("holds", "get")]
    assert checks == (["holds"] if digests else ["holds", "get"])


@pytest.mark.parametrize("digests", [True, False], ids=["by-digest", "by-reading"])
async def test_a_create_meeting_other_bytes_after_a_lost_answer_conflicts(digests: bool) -> None:
    client = ScriptedClient(digests=digests)
    backend = scripted_backend(client)
    await backend.put("mem_L3_1", b"theirs", if_absent=True)
    client.fail("put", Failure("network", "no"))
    with pytest.raises(ConflictError):
        await backend.put("mem_L3_1", b"ours", if_absent=True)
    assert client.objects["store/mem_L3_1"].data == b"theirs"


async def test_a_create_whose_object_vanished_before_the_check_conflicts() -> None:
    client = ScriptedClient()
    backend = scripted_backend(client)
    await backend.put("mem_L3_1", b"theirs", if_absent=True)
    client.fail("holds", Failure("not-found", "no", 404))
    with pytest.raises(ConflictError):
        await backend.put("mem_L3_1", b"ours", if_absent=True)


async def test_an_overwrite_is_retried_only_when_it_surely_did_not_apply() -> None:
    client = ScriptedClient()
    backend = scripted_backend(client)
    client.fail("put", SLOWED, SLOWED)
    await backend.put("mem_L3_1", b"v1")
    assert [op for op, _ in client.requests] == ["put"] * 3
    client.fail("put", Failure("server", "maybe", 500))
    with pytest.raises(BackendUnavailableError):
        await backend.put("mem_L3_1", b"v2")
    assert [op for op, _ in client.requests] == ["put"] * 4, "an overwrite that may have applied is not resent"


async def test_transient_failures_end_typed_after_max_attempts_and_refusals_at_once() -> None:
    client = ScriptedClient()
    backend = scripted_backend(client)
    await backend.put("mem_L3_1", b"x")
    client.requests.clear()
    client.fail("get", *[Failure("server", "maybe", 500)] * 4)
    with pytest.raises(BackendUnavailableError, match="after 4 attempts"):
        await backend.get("mem_L3_1")
    assert len(client.requests) == 4
    client.requests.clear()
    client.fail("get", Failure("denied", "no", 403))
    with pytest.raises(AccessDeniedError):
        await backend.get("mem_L3_1")
    assert len(client.requests) == 1


async def test_ranges_are_guarded() -> None:
    client = ScriptedClient()
    backend = scripted_backend(client)
    await backend.put("mem_L3_1", b"0123456789")
    assert await backend.get_range("mem_L3_1", 2, 3) == b"234"
    assert await backend.get_range("mem_L3_1", 8, 100) == b"89"
    assert await backend.get_range("mem_L3_1", 10, 5) == b"", "a range at the end is empty, not an error"
    assert await backend.get_range("mem_L3_1", 50, 5) == b""
    client.requests.clear()
    assert await backend.get_range("mem_L3_1", 3, 0) == b""
    assert await backend.get_range("mem_L3_2", 3, 0) is None
    assert [op for op, _ in client.requests] == ["head", "head"], "a zero-length range needs no read"
    assert await backend.get_range("mem_L3_2", 0, 5) is None
    client.requests.clear()
    for start, length in ((-1, 1), (0, -1), (True, 1), (0, False), (1.0, 1)):
        with pytest.raises(InvalidInputError):
            await backend.get_range("mem_L3_1", start, length)  # type: ignore[arg-type]
    assert client.requests == [], "refused before any request"


async def test_an_archived_read_names_restore_and_says_pending_while_one_runs() -> None:
    client = ScriptedClient()
    backend = scripted_backend(client)
    await backend.put("mem_L4_1", b"cold", tier=StorageTier.L4)
    assert client.objects["store/mem_L4_1"].storage_class == COLD
    with pytest.raises(ArchivedPageError) as archived:
        await backend.get("mem_L4_1")
    assert not archived.value.pending
    assert (await backend.restore("mem_L4_1")).state == "pending"
    assert (await backend.restore("mem_L4_1")).state == "pending", "asked once; the second call only looks"
    assert [op for op, _ in client.requests].count("restore") == 1
    with pytest.raises(ArchivedPageError) as pending:
        await backend.get("mem_L4_1")
    assert pending.value.pending


async def test_restore_of_a_missing_a_hot_and_a_completed_object() -> None:
    client = ScriptedClient()
    client.restore_completes = True
    backend = scripted_backend(client)
    with pytest.raises(ObjectNotFoundError):
        await backend.restore("mem_L4_9")
    await backend.put("mem_L3_1", b"hot")
    assert (await backend.restore("mem_L3_1")).state == "not-archived"
    await backend.put("mem_L4_1", b"cold", tier=StorageTier.L4)
    assert (await backend.restore("mem_L4_1", days=2, speed="expedited")).state == "restored"
    assert await backend.get("mem_L4_1") == b"cold"
    with pytest.raises(InvalidInputError):
        await backend.restore("mem_L4_1", days=0)
    with pytest.raises(InvalidInputError):
        await backend.restore("mem_L4_1", days=True)
    with pytest.raises(InvalidInputError):
        await backend.restore("mem_L4_1", speed="fast")  # type: ignore[arg-type]


async def test_set_tier_moves_the_class_records_the_tier_and_merges_tags() -> None:
    client = ScriptedClient()
    backend = scripted_backend(client)
    await backend.put("mem_L3_1", b"x", tags={"tier": "L3", "modality": "text"})
    await backend.set_tier("mem_L3_1", StorageTier.L2, tags={"tier": "L2"})
    info = await backend.head("mem_L3_1")
    assert info is not None
    assert (info.tier, info.storage_class) == (StorageTier.L2, "HOT")
    assert client.objects["store/mem_L3_1"].tags == {"tier": "L2", "modality": "text"}
    with pytest.raises(ObjectNotFoundError):
        await backend.set_tier("mem_L3_9", StorageTier.L4)


async def test_a_delete_whose_answer_was_lost_is_reported_done() -> None:
    client = ScriptedClient()
    backend = scripted_backend(client)
    await backend.put("mem_L3_1", b"x")
    client.fail("delete", LOST)
    assert await backend.delete("mem_L3_1") is True
    assert await backend.delete("mem_L3_1") is False


async def test_delete_many_batches_and_falls_back_for_good_once_refused() -> None:
    client = ScriptedClient(batch_limit=2)
    backend = scripted_backend(client)
    for i in range(5):
        await backend.put(f"mem_L3_{i}", b"x")
    await backend.delete_many(["mem_L3_0", "mem_L3_1", "mem_L3_2", "mem_L3_0"])
    assert sorted(client.objects) == ["store/mem_L3_3", "store/mem_L3_4"]
    assert [op for op, _ in client.requests if op.startswith("delete")] == ["delete_batch", "delete_batch"]
    client.refuse_batches = True
    client.requests.clear()
    await backend.delete_many(["mem_L3_3"])
    await backend.delete_many(["mem_L3_4"])
    assert client.objects == {}
    assert [op for op, _ in client.requests] == ["delete_batch", "delete", "delete"], "refused once, never asked again"


async def test_listing_strips_the_prefix_skips_foreign_names_and_follows_tokens() -> None:
    client = ScriptedClient(page_size=2)
    backend = scripted_backend(client)
    for key in ("mem_L3_1", "mem_L3_2", "mem_L3_3", "ckpt_1"):
        await backend.put(key, key.encode())
    client.objects["store/mem_L3_4/nested"] = client.objects["store/mem_L3_1"]  # no key of this store
    client.objects["other/mem_L3_5"] = client.objects["store/mem_L3_1"]
    assert [e.key async for e in backend.list("mem_")] == ["mem_L3_1", "mem_L3_2", "mem_L3_3"]
    assert [e.key async for e in backend.list("")] == ["ckpt_1", "mem_L3_1", "mem_L3_2", "mem_L3_3"]
    assert sum(op == "list" for op, _ in client.requests) == 2 + 3
    with pytest.raises(InvalidInputError):
        [e async for e in backend.list("../")]


async def test_aclose_closes_the_client() -> None:
    client = ScriptedClient()
    async with scripted_backend(client):
        pass
    assert client.closed
