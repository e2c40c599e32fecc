"""A checkpoint and a deletion or tier change, interleaved at every pair of their storage calls.

The checkpoint protocol (:mod:`tierstore.protocol`) argues the order of a writer's steps (W0-W4) against a deleter's
(D1-D4) and a tier change's (M1-M4). This test does not trust the argument: for every ``i`` and ``j``, one actor makes
its first ``i`` storage calls and stops, the other makes its first ``j`` and stops, then the first runs to its end,
then the second (and the same with the actors' roles swapped). The other actor is a tier change of an artifact the
checkpoint reuses, a ``delete_page`` of it, or a ``delete_checkpoint`` of the checkpoint that made it (a sweep).

Whatever the schedule, once both ended: a listed checkpoint names only artifacts that exist in the tier its manifest
says, except one the tier change moved or ``delete_page`` deleted after the manifest was written (a listed
checkpoint is not rewritten; a sweep never takes what it names), and it restores whole then; a deleted page never
comes back. Memory and the disk: the protocol sees only backend calls, and these two make every call synchronous
in the order given.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.contract.conftest import text_page
from tests.reliability.figures import record
from tests.soak import scaled
from tests.wrappers import Journal, Paused, Schedule, every_schedule, run_schedule
from tierstore import ArtifactsBridge, FileSystemBackend, StorageTier
from tierstore.backends.base import StorageBackend
from tierstore.backends.memory import InMemoryBackend
from tierstore.errors import InUseError


async def _outcome(task: asyncio.Task[Any]) -> Any:
    try:
        return await task
    except InUseError as exc:
        return exc


OTHERS = ("set_tier", "delete_page", "delete_checkpoint")


async def _one_schedule(backend: Callable[[], StorageBackend], other: str, schedule: Schedule) -> dict[str, int]:
    """Runs one schedule and checks what must hold after it; returns the calls each actor made."""
    pages = [text_page("kept", "unchanged"), text_page("other", "unchanged too")]
    base = ArtifactsBridge(backend=backend())
    journal = Journal()
    writer_store = Paused(backend(), "writer", journal)
    other_store = Paused(backend(), "other", journal)
    c1 = await base.checkpoint([p.model_copy() for p in pages], name="c1")
    manifest = await base.get_checkpoint_manifest(c1)
    assert manifest is not None
    target = manifest.pages[0].artifact_id
    writer = ArtifactsBridge(backend=writer_store)
    mover = ArtifactsBridge(backend=other_store)

    def start(name: str) -> Awaitable[Any]:
        if name == "writer":
            return writer.checkpoint([p.model_copy() for p in pages], name="c2")
        if other == "set_tier":
            return mover.set_tier(target, StorageTier.L2)
        if other == "delete_page":
            return mover.delete_page(target)
        return mover.delete_checkpoint(c1)

    actors = {"writer": writer_store, "other": other_store}
    tasks = await run_schedule(schedule, actors, start)
    c2 = tasks["writer"].result()
    outcome = await _outcome(tasks["other"])

    assert c2 in await base.list_checkpoints()
    listed = await base.get_checkpoint_manifest(c2)
    assert listed is not None
    # The deletion or tier change came after the checkpoint when its tomb came after the writer last read the tombs
    # (W2): a listed checkpoint is not rewritten, and the user may delete or move a page it names.
    tomb = journal.first_prefixed("other", "put", "tomb_")
    after = (
        other != "delete_checkpoint" and tomb is not None and tomb > journal.last_prefixed("writer", "list", "tomb_")
    )
    changed_after_listing = False
    for entry in listed.pages:
        info = await base.backend.head(entry.artifact_id)  # type: ignore[union-attr]
        if entry.artifact_id == target and after:
            changed_after_listing = True
            continue
        assert info is not None, f"{c2} names {entry.artifact_id}, which is gone ({other}: {schedule})"
        assert info.tier is not None
        assert info.tier.value == entry.tier, (
            f"{c2} names {entry.artifact_id} in {entry.tier}, which is in {info.tier} ({other}: {schedule})"
        )
    if not changed_after_listing:
        restored = await base.restore_checkpoint(c2)
        assert [p.content for p in restored] == [p.content for p in pages]
    if other == "delete_page" and outcome is True:
        assert await base.load_page(target) is None
    await writer.aclose()
    await mover.aclose()
    await base.aclose()
    return {name: actor.calls for name, actor in actors.items()}


@pytest.mark.parametrize("where", ["memory", "filesystem"])
@pytest.mark.parametrize("other", OTHERS)
async def test_a_checkpoint_and_a_deletion_or_tier_change_interleaved_at_every_pair_of_calls_break_nothing(
    where: str, other: str, tmp_path: Path
) -> None:
    """Every two-phase schedule, then the three-phase ones (one actor stopped inside while the other ends): every
    one on memory, a sample drawn at random on the disk (the same protocol, through the disk's calls)."""
    stores = itertools.count()

    async def run(schedule: Schedule) -> dict[str, int]:
        memory = InMemoryBackend()
        root = tmp_path / str(next(stores))
        return await _one_schedule(lambda: memory if where == "memory" else FileSystemBackend(root), other, schedule)

    calls = await run((("writer", None), ("other", None)))
    schedules = every_schedule(calls)
    if where != "memory":
        schedules = random.Random(other).sample(schedules, min(len(schedules), scaled(40)))
    for schedule in schedules:
        await run(schedule)
    record(f"checkpoint x {other}: schedules of their calls interleaved", len(schedules), where)
