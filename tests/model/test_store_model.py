"""The store against its model (issue 21): :mod:`tests.model.machine` on memory, the local disk and one emulator per
cloud, and the sequences it found, replayed as plain tests.

Sized for CI: ``EXAMPLES`` sequences of up to ``STEPS`` steps per rig, derandomized and without a database so that
every run tries the same sequences (green every time, and a real failure fails every time). ``TIERSTORE_SOAK=N``
multiplies both; ``TIERSTORE_MODEL_SEED`` (any value) turns derandomization off and explores new sequences;
``TIERSTORE_MODEL_NO_SHRINK=1`` reports a failure as found, without minimising it (minimising a long sequence can take
minutes); ``TIERSTORE_MODEL_ALL_RULES=1`` and ``TIERSTORE_MODEL_PENDING`` choose the rules switched off (machine.py).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.model.machine import RULES_FIRED, TRAITS, machine_for
from tests.reliability.figures import record
from tests.rigs import load
from tests.soak import scaled

SIZES: dict[str, tuple[int, int]] = {
    "memory": (25, 20),
    "filesystem": (15, 15),
    "s3_moto": (4, 40),
    "gcs": (4, 40),
    "azure": (4, 32),
}
"""Per rig: sequences, steps per sequence (before TIERSTORE_SOAK)."""


def _chosen() -> list[Any]:
    only = os.environ.get("TIERSTORE_TEST_RIGS")
    names = [n for n in TRAITS if not only or n in only.split(",")]
    return [pytest.param(n, id=n, marks=getattr(load(n), "MARKS", ())) for n in names]


@pytest.mark.parametrize("model_rig", _chosen())
def test_the_store_holds_to_its_model(
    model_rig: str, rig_server: Callable[[str], Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    examples, steps = SIZES[model_rig]
    seed = os.environ.get("TIERSTORE_MODEL_SEED")
    seen: Counter[str] = Counter()
    machine = machine_for(model_rig, rig_server(model_rig), tmp_path_factory.mktemp("model"), seen)
    before = sum(RULES_FIRED.get(model_rig, Counter()).values())
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=scaled(examples),
            stateful_step_count=scaled(steps),
            deadline=None,
            derandomize=seed is None,
            database=None,
            suppress_health_check=list(HealthCheck),
            print_blob=True,
            report_multiple_bugs=False,
            phases=[p for p in Phase if p != Phase.shrink or not os.environ.get("TIERSTORE_MODEL_NO_SHRINK")],
        ),
        _min_steps=0,
    )
    fired = RULES_FIRED[model_rig]
    record("model: sequences", seen[model_rig], model_rig)
    record("model: steps", sum(fired.values()) - before, model_rig)
    print(f"{model_rig}: {seen[model_rig]} sequences; rules fired: {dict(sorted(fired.items()))}")
    assert seen[model_rig] >= 1
