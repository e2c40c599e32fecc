"""``set_tier`` landing at every step of a checkpoint (issue 21 item 3): a listed checkpoint never names an artifact
in another tier than its manifest says.

A checkpoint reuses the artifacts of the one before it and uploads the pages that changed. Before its N-th storage
call (N = 1, 2, ... until a checkpoint makes fewer calls), another bridge on the same store moves one artifact to
another tier, to completion: in odd rounds an artifact the checkpoint is about to reuse, in even rounds the newest
artifact in the store at that moment (once the checkpoint has uploaded one, its own). The move either lands (the
checkpoint then uploads that page anew, or never saw it) or is refused with InUseError (a live lease names it);
either way, when the checkpoint is listed, every artifact it names is in its manifest's tier and it restores.
Runs on memory, the disk and S3 on moto (the protocol sees only backend calls; one cloud proves the calls there):
every step on memory and the disk, where a round takes milliseconds; every third step on moto (half a second a
round), from step 1, 2 or 3 as the day of the year (UTC) says, so three days' runs cover every step there too, and
``TIERSTORE_SOAK=3`` or more runs every step there at once.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.contract.conftest import text_page
from tests.reliability.figures import record
from tests.rigs import load
from tests.soak import factor
from tests.wrappers import MoveAt
from tierstore import ArtifactsBridge, MemoryPage, StorageTier, ids
from tierstore.backends.base import StorageBackend
from tierstore.errors import InUseError

RIGS = ("memory", "filesystem", "s3_moto")
EVERY_STEP = ("memory", "filesystem")
CLOUD_STRIDE = max(1, 3 // factor())
"""On the rigs not in ``EVERY_STEP``: every third step (module docstring)."""


def _steps(rig: str) -> tuple[int, Iterator[int]]:
    """The stride and the steps a move lands before, on ``rig``."""
    if rig in EVERY_STEP or CLOUD_STRIDE == 1:
        return 1, itertools.count(1)
    first = datetime.now(UTC).date().toordinal() % CLOUD_STRIDE + 1
    return CLOUD_STRIDE, itertools.count(first, CLOUD_STRIDE)


def _chosen() -> list[Any]:
    only = os.environ.get("TIERSTORE_TEST_RIGS")
    names = [n for n in RIGS if not only or n in only.split(",")]
    return [pytest.param(n, id=n, marks=[] if n in ("memory", "filesystem") else [pytest.mark.emulator]) for n in names]


def _round_pages(round_: int) -> list[MemoryPage]:
    """Two pages that stay the same (reused) and one that changes every round (uploaded)."""
    return [text_page("same0", "unchanged 0"), text_page("same1", "unchanged 1"), text_page("changed", f"{round_}")]


@pytest.mark.parametrize("race_rig", _chosen())
async def test_set_tier_at_every_step_of_a_checkpoint_never_lists_one_in_another_tier(
    race_rig: str, rig_server: Callable[[str], Any]
) -> None:
    server = rig_server(race_rig)
    spec = server.new_store()
    module = load(race_rig)
    mover_backend: StorageBackend = module.open_backend(spec)
    mover = ArtifactsBridge(backend=mover_backend)
    checker = ArtifactsBridge(backend=module.open_backend(spec))
    landed = refused = 0
    stride, steps = _steps(race_rig)
    try:
        for at in steps:
            pages = _round_pages(at)
            base = await mover.checkpoint([p.model_copy() for p in pages[:2]], name=f"base{at}")
            base_manifest = await mover.get_checkpoint_manifest(base)
            assert base_manifest is not None
            reused_victim = base_manifest.pages[at % 2].artifact_id

            async def move(at: int = at, victim: str = reused_victim) -> str:
                if at % 2:
                    target = victim
                else:
                    listed = await mover.list_pages()
                    target = max(listed, key=lambda key: int(key.rsplit("_", 1)[1]))
                meta = await mover.get_metadata(target)
                assert meta is not None
                tier = StorageTier.L2 if meta.tier == StorageTier.L3.value else StorageTier.L3
                try:
                    await mover.set_tier(target, tier)
                except InUseError:
                    return "refused"
                return "landed"

            attacked = MoveAt(module.open_backend(spec), at, move)
            writer = ArtifactsBridge(backend=attacked)
            checkpoint = await writer.checkpoint(pages, name=f"attacked{at}")
            outcome = attacked.outcome
            landed += outcome == "landed"
            refused += outcome == "refused"
            manifest = await checker.get_checkpoint_manifest(checkpoint)
            assert manifest is not None
            for entry in manifest.pages:
                meta = await checker.get_metadata(entry.artifact_id)
                assert meta is not None, f"{checkpoint} names {entry.artifact_id}, which is gone"
                assert meta.tier == entry.tier, (
                    f"move before call {at}: {checkpoint} names {entry.artifact_id} in {entry.tier}, "
                    f"but it is in {meta.tier}"
                )
            assert await checker.restore_checkpoint(checkpoint) == pages
            await writer.aclose()
            if attacked.calls < at:
                break
            # A landed tier change keeps its tomb until gc prunes it; pruned here, so every round's checkpoint makes
            # the same calls (each new bridge reads every tomb) and the rounds step through them one by one.
            handle = mover.references("test")
            await handle.prune([e.key for e in await handle.listed(ids.TOMB_PREFIX)], "tomb of an earlier round")
        assert landed + refused >= 10 // stride
        assert landed > 0, refused
        assert refused > 0, landed
        record("tier changes landed at each step of a checkpoint, none listed in another tier", landed, race_rig)
        record("tier changes refused while a checkpoint named the artifact", refused, race_rig)
    finally:
        await mover.aclose()
        await checker.aclose()
        drop = getattr(server, "drop_store", None)
        if drop is not None:
            drop(spec)
