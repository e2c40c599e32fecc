"""Sequences the machine once judged wrongly, replayed step by step on the machine itself (no Hypothesis): each
fails if the model's expectation goes wrong again, on the rigs where the store's behaviour differs.

Contract: each test drives :func:`tests.model.machine.machine_for`'s rules by hand on one rig and holds the store to
the model after every step, as a Hypothesis run would; a failure is the model's (or the store's) assertion.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.model.machine import Lost, machine_for
from tests.rigs import load
from tierstore import StorageTier

_ONLY = os.environ.get("TIERSTORE_TEST_RIGS")
ARCHIVE_RIGS = [
    pytest.param(n, id=n, marks=[*getattr(load(n), "MARKS", ()), *([] if n == "memory" else [pytest.mark.emulator])])
    for n in ("memory", "s3_moto", "azure")
    if not _ONLY or n in _ONLY.split(",")
]
"""The rigs whose L4 is an archive: memory, and one emulator per cloud that has one."""


@pytest.fixture
def machine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    rig: str = request.param
    server = None if rig == "memory" else request.getfixturevalue("rig_server")(rig)
    made: Any = machine_for(rig, server, tmp_path_factory.mktemp("replay"), Counter())()
    made.begin()
    made.check(full=True)
    yield made
    made.teardown()  # the end of a sequence: everything checked once more, and fsck


def _which(machine: Any, page_id: str) -> int:
    """The ``which`` that picks the artifact ``begin`` stored for ``page_id``."""
    keys = sorted(machine.world.artifacts)
    return next(i for i, k in enumerate(keys) if machine.world.artifacts[k].page.page_id == page_id)


@pytest.mark.parametrize("machine", ARCHIVE_RIGS, indirect=True)
def test_a_restored_page_archived_again_is_expected_archived_where_the_store_says_so(machine: Any) -> None:
    """Azure rehydrates in place: the blob is in L3's access tier for good (docs/azure.md), so a later
    ``set_tier(L4)`` archives it again; memory and S3 keep the restored copy of a page left in L4."""
    which = _which(machine, "start1")
    machine.set_tier(which=which, tier=StorageTier.L4, bridge=0, cancel=None)
    machine.check(full=True)
    machine.restore_page(which=0)
    machine.check(full=True)
    machine.set_tier(which=which, tier=StorageTier.L4, bridge=0, cancel=None)
    machine.check(full=True)


@pytest.mark.parametrize("machine", ARCHIVE_RIGS, indirect=True)
def test_a_tier_change_whose_answer_was_lost_leaves_a_restored_copy_unknown(machine: Any) -> None:
    """A restored page moved out of L4 by a call whose answer was lost, then moved to L4 again: archived anew if the
    lost move landed, still restored (memory, S3) if it did not. Here it landed."""
    which = _which(machine, "start1")
    machine.set_tier(which=which, tier=StorageTier.L4, bridge=0, cancel=None)
    machine.restore_page(which=0)
    machine.check(full=True)
    key = sorted(machine.world.artifacts)[which]

    def landed_but_lost() -> None:
        machine.run(machine.bridge.set_tier(key, StorageTier.L2))
        raise Lost("the answer was lost")

    assert machine.judge_set_tier(key, StorageTier.L2, landed_but_lost) == "lost"
    machine.check(full=True)
    machine.set_tier(which=which, tier=StorageTier.L4, bridge=0, cancel=None)
    machine.check(full=True)


@pytest.mark.parametrize("machine", ARCHIVE_RIGS, indirect=True)
def test_an_archived_page_whose_deletion_was_lost_is_restored_like_a_present_one(machine: Any) -> None:
    """A page in L4 whose deletion was lost (cancelled before it was sent: it is still there) is restored: on Azure
    it is back in L3's access tier for good, which get_metadata reports; the model kept it in L4 (the soak's
    ``get_metadata(mem_L3_2) tier L3``)."""
    which = _which(machine, "start1")
    machine.set_tier(which=which, tier=StorageTier.L4, bridge=0, cancel=None)
    machine.check(full=True)
    machine.delete_page(which=which, bridge=0, cancel=0, faulty=False)
    key = sorted(machine.world.artifacts)[which]
    assert machine.world.artifacts[key].state == "uncertain"
    machine.check(full=True)
    machine.restore_page(which=0)
    machine.check(full=True)
    machine.set_tier(which=which, tier=StorageTier.L4, bridge=0, cancel=None)
    machine.check(full=True)
