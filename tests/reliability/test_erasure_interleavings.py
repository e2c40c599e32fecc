"""A checkpoint of a session and the erasure of that session, or of its user, interleaved at their storage calls
(:mod:`tierstore.protocol.erasure` argues why no checkpoint of an erased scope survives, nor any listed half-written).

The checkpoint reuses an artifact of an earlier checkpoint of the session and uploads a new page. For each of its
storage calls in turn it is stopped there while the erasure runs to its end, then resumed; then a sample of every
two- and three-phase schedule of the two (as in ``test_interleavings.py``). The erasure's waits move the store's
clock (the in-memory store's, a :class:`~tierstore.clock.ManualClock` shared with the writer, whose monotonic time
so sees a stopped process's pause), so a lease of the stopped writer expires without real waiting.

Whatever the schedule, once both ended: the erasure finished; the checkpoint failed (ScopeErasingError, or
IntegrityError from its fence) or is listed whole, and then it read the tombs (W2) after the erasure deleted its
tomb (E5): it belongs to the scope's next life, and the scope's registry records are there; nothing stored before
the erasure is left; after ``gc`` nothing of the session remains but that listed checkpoint and its pages, and no
registry record of the erased scope is left unless that checkpoint is (or the checkpoint failed on its fence,
stopped past its lease across the whole erasure: README, Erasure); another user's page is untouched. Memory only: the
protocol sees nothing but backend calls, and the erasure's own tests run it on every rig.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import pytest

from tests.contract.conftest import text_page
from tests.reliability.figures import record
from tests.soak import scaled
from tests.wrappers import Journal, Paused, Schedule, every_schedule, run_schedule
from tierstore import ArtifactsBridge, IntegrityError, ScopeErasingError
from tierstore.backends.memory import InMemoryBackend
from tierstore.clock import ManualClock
from tierstore.maintenance import gc
from tierstore.protocol.erasure import ErasureOptions, erase_session, erase_user
from tierstore.protocol.records import is_erasing_tomb
from tierstore.scope_records import session_key, user_key
from tierstore.scopes import scope_prefix

LEASE = timedelta(hours=1)
"""The writer's lease: its renewal (every quarter, in real time) never runs during a test, as in a stopped process."""
SCOPE = scope_prefix("alice", "s1")


async def _one_schedule(schedule: Schedule, erased: str) -> tuple[dict[str, int], str]:
    """Runs one schedule and checks what must hold after it; the calls each actor made, and how the writer ended."""
    clock = ManualClock()
    memory = InMemoryBackend(clock=clock)
    pages = [text_page("kept", "unchanged"), text_page("new", "written by the checkpoint")]
    base = ArtifactsBridge(memory, user_id="alice", session_id="s1", clock=clock, lease_ttl=LEASE)
    c1 = await base.checkpoint([pages[0].model_copy()], name="c1")
    stored = await base.store_page(text_page("stored", "before the erasure"))
    bob = ArtifactsBridge(memory, user_id="bob", session_id="s1", clock=clock)
    bobs = await bob.store_page(text_page("bob's", "another user's"))
    journal = Journal()
    writer_store = Paused(memory, "writer", journal)
    eraser_store = Paused(memory, "other", journal)
    writer = ArtifactsBridge(writer_store, user_id="alice", session_id="s1", clock=clock, lease_ttl=LEASE)

    async def advance(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    def start(name: str) -> Any:
        if name == "writer":
            return writer.checkpoint([p.model_copy() for p in pages], name="c2")
        options = ErasureOptions(
            settle=timedelta(seconds=10),
            lease_ttl=LEASE,
            patience=timedelta(days=1),
            poll=timedelta(minutes=10),
            clock=clock,
            sleep=advance,
        )
        if erased == "user":  # the session's scope is nested in the user's: marked as it is first listed
            return erase_user(eraser_store, "alice", options)
        return erase_session(eraser_store, "alice", "s1", options)

    actors = {"writer": writer_store, "other": eraser_store}
    tasks = await run_schedule(schedule, actors, start)
    await tasks["other"]  # the erasure always finishes
    try:
        c2: str | None = tasks["writer"].result()
        ended = "listed"
    except ScopeErasingError:
        c2, ended = None, "refused by the erasing tomb"
    except IntegrityError:
        c2, ended = None, "failed by its fence"

    listed = await base.list_checkpoints()
    assert c1 not in listed, f"a checkpoint made before the erasure survived it ({schedule})"
    assert await base.load_page(stored) is None, f"a page stored before the erasure survived it ({schedule})"
    assert await bob.load_page(bobs) is not None, "the erasure touched another user's page"
    assert set(listed) <= {c2}, f"listed {listed} ({schedule})"
    if c2 is not None and c2 not in listed:
        ended = "listed, then erased"
    if c2 in listed:
        assert c2 is not None
        assert [p.content for p in await base.restore_checkpoint(c2)] == [p.content for p in pages]
        tomb_gone = max(
            at
            for at, (who, name, keys) in enumerate(journal.calls)
            if who == "other" and name in ("delete", "delete_many") and any(map(_is_erasing, keys))
        )
        assert journal.last_prefixed("writer", "list", SCOPE + "tomb_") > tomb_gone, (
            f"{c2} is listed though it read the tombs before the erasure ended ({schedule})"
        )
    clock.advance(2 * LEASE)
    await gc(base, grace=timedelta(0), tomb_retention=timedelta(0))
    left = {entry.key async for entry in memory.list(SCOPE)}
    expected: set[str] = set()
    if c2 in listed:
        assert c2 is not None
        manifest = await base.get_checkpoint_manifest(c2)
        assert manifest is not None
        expected = {SCOPE + c2, *(SCOPE + e.artifact_id for e in manifest.pages)}
    assert left == expected, f"after gc the erased session holds {left - expected} ({schedule})"
    registry = {entry.key async for entry in memory.list("scope_")}
    records = {session_key("alice", "s1"), *([user_key("alice")] if erased == "user" else [])}
    if c2 in listed:  # the next life is listed by users() / sessions() (artifacts.scoped: a checkpoint looks)
        assert records <= registry, f"{records - registry} not written again ({schedule})"
    elif ended != "failed by its fence":  # stopped past its lease across the whole erasure: README, Erasure
        assert not records & registry, f"{records & registry} left, naming no page ({schedule})"
    await writer.aclose()
    return {name: actor.calls for name, actor in actors.items()}, ended


def _is_erasing(key: str) -> bool:
    return key.startswith(SCOPE) and is_erasing_tomb(key[len(SCOPE) :])


@pytest.mark.parametrize("erased", ["session", "user"])
async def test_a_checkpoint_stopped_at_any_call_while_its_session_is_erased_is_never_listed_half_erased(
    erased: str,
) -> None:
    calls, _ = await _one_schedule((("writer", None), ("other", None)), erased)
    schedules: list[Schedule] = [(("writer", i), ("other", None), ("writer", None)) for i in range(calls["writer"])]
    pairs = every_schedule(calls)
    schedules += random.Random("erasure").sample(pairs, min(len(pairs), scaled(150)))
    endings: dict[str, int] = {}
    for schedule in schedules:
        _, ended = await _one_schedule(schedule, erased)
        endings[ended] = endings.get(ended, 0) + 1
    assert endings.get("refused by the erasing tomb"), endings  # else the schedules proved nothing of E1
    assert endings.get("failed by its fence"), endings  # nor of a writer stopped across a whole erasure
    for ended, count in endings.items():
        record(f"checkpoint x erasure of its {erased}, checkpoint {ended}", count, "memory")
