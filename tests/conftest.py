"""Shared fixtures: every test that takes ``rig`` runs once per backend rig (see tests/rigs), by this rule:

* a test runs on every rig, because what it proves depends on the backend (round trips, create-if-absent, listing,
  metadata, tags, ranges, tiers, archive, damage to stored objects, the wire);
* a test marked ``bridge_only`` proves the bridge, which sees nothing but the backend protocol, so it runs on the
  local rigs (``memory``, ``filesystem``) only: every protocol operation it relies on is proven on every rig by
  the tests of the first kind;
* a test marked ``one_data_path`` proves what a process or the command line does with a cloud store (killed
  writers, every command), not how its requests travel: it runs on one data path per cloud, the one
  ``client="auto"`` takes (obstore, when installed), and not again on the SDK rig of the same emulator; both data
  paths are proven request by request by the tests of the first kind;
* a rig may run only the tests that carry one of its ``ONLY_MARKED`` markers: the LocalStack rigs, there for what
  moto lacks (an atomic ``If-None-Match: *``, a CopyObject that honours its conditions), run only the tests marked
  ``atomic_create`` (racing creates) or ``conditional_copy`` (a tier change's copy racing a delete);
* a rig runs no test carrying a marker it ``LACKS`` (the moto rigs: ``conditional_copy``, ``atomic_create``), whose
  reason names the gap; such a test runs where the emulator has what it needs (LocalStack).

Every test on an emulator rig, and every test that starts an emulator itself (``rig_server``), is marked
``emulator``; what ``SLOW`` names is marked ``slow``. ``-m "not emulator and not slow"`` is the developer's quick
loop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import schedule
from tests.rigs import RIGS, load
from tierstore.backends.base import StorageBackend

ROOT = Path(__file__).resolve().parent.parent


SLOW = (
    "tests/reliability/",
    "tests/test_bare_install.py",
    "tests/test_cli",
    "tests/test_filesystem_specific.py::test_no_single_bit_flip_changes_what_get_metadata_or_load_page_return",
)
"""Left out of the quick loop: attacks sized in seconds per rig, a venv built from scratch, the command line (a
process per command) and the 9,000 header bit flips."""
LOCAL_RIGS = ("memory", "filesystem")
"""The rigs without an emulator; ``bridge_only`` tests run on these alone."""


def rigs_for(test: pytest.Item, names: list[str]) -> list[str]:
    """The rigs among ``names`` that ``test`` runs on, by the rule in this module's docstring."""
    bridge_only = test.get_closest_marker("bridge_only") is not None
    one_data_path = test.get_closest_marker("one_data_path") is not None
    chosen = []
    for name in names:
        rig = load(name)
        only_marked: tuple[str, ...] = getattr(rig, "ONLY_MARKED", ())
        lacks: dict[str, str] = getattr(rig, "LACKS", {})
        if bridge_only and name not in LOCAL_RIGS:
            continue
        if one_data_path and f"{name}_obstore" in names:  # the SDK twin of a rig that runs the test on obstore
            continue
        if only_marked and not any(test.get_closest_marker(marker) for marker in only_marked):
            continue
        if any(test.get_closest_marker(marker) for marker in lacks):
            continue
        chosen.append(name)
    return chosen


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``rig``: every rig; ``network_rig``: the rigs reached over HTTP (a fault proxy can stand in between)."""
    only = os.environ.get("TIERSTORE_TEST_RIGS")
    names = rigs_for(metafunc.definition, [n for n in RIGS if not only or n in only.split(",")])
    for fixture, wanted in (("rig", names), ("network_rig", [n for n in names if hasattr(load(n), "through")])):
        if fixture in metafunc.fixturenames:
            params = [pytest.param(n, id=n, marks=_marks(n)) for n in wanted]
            metafunc.parametrize(fixture, params)


def _marks(rig: str) -> list[pytest.MarkDecorator]:
    marks: list[pytest.MarkDecorator] = list(getattr(load(rig), "MARKS", ()))
    return marks if rig in LOCAL_RIGS else [*marks, pytest.mark.emulator]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Apply each rig's declared emulator differences (``XFAILS = {test_function_name: precise reason}``), mark
    ``emulator`` what starts an emulator without a rig parameter, and order and group the tests for xdist's workers
    (tests/schedule.py)."""
    schedule.arrange(config, items)
    for item in items:
        if item.nodeid.startswith(SLOW):
            item.add_marker(pytest.mark.slow)
        callspec = getattr(item, "callspec", None)
        rig = None if callspec is None else callspec.params.get("rig", callspec.params.get("network_rig"))
        if not isinstance(rig, str):  # None, or pytest's NOTSET when TIERSTORE_TEST_RIGS leaves no rig
            if "rig_server" in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.emulator)
            continue
        reason = getattr(load(rig), "XFAILS", {}).get(getattr(item, "originalname", item.name))
        if reason:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


class _FiguresFromWorkers:
    """Under pytest-xdist (``-n``) each worker records its own figures; they travel to the controller with the
    worker's output and add up there, so the summary and ``.reliability/figures.json`` count every worker's."""

    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from tests.reliability.figures import FIGURES

        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput["figures"] = {figure: dict(by_rig) for figure, by_rig in FIGURES.items()}

    @pytest.hookimpl
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        from tests.reliability.figures import record

        for figure, by_rig in getattr(node, "workeroutput", {}).get("figures", {}).items():
            for rig, count in by_rig.items():
                record(figure, count, rig)


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_FiguresFromWorkers(), "tierstore-figures-from-workers")
        if not hasattr(config, "workerinput"):
            config.pluginmanager.register(schedule.Scheduling(), "tierstore-scheduling")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.reliability.figures import FIGURES

    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for figure, by_rig in sorted(FIGURES.items()):
        detail = ", ".join(f"{rig} {count}" for rig, count in sorted(by_rig.items()))
        terminalreporter.write_line(f"{figure}: {sum(by_rig.values())} ({detail})")
    out = ROOT / ".reliability" / "figures.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(FIGURES, indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="session")
def rig_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Any]]:
    """Starts each rig's server on first use and stops all of them at the end of the session."""
    started: dict[str, Any] = {}
    with ExitStack() as stack:

        def get(name: str) -> Any:
            if name not in started:
                started[name] = stack.enter_context(load(name).serve(tmp_path_factory.mktemp(name)))
            return started[name]

        yield get


@dataclass(frozen=True)
class Store:
    """One fresh, empty store on one rig; ``open()`` gives a new backend onto it."""

    rig: str
    spec: dict[str, Any]

    def open(self) -> StorageBackend:
        backend: StorageBackend = load(self.rig).open_backend(self.spec)
        return backend

    def run_child(self, action: str, count: int, *extra: str) -> subprocess.Popen[str]:
        """Start ``python -m tests.rigs.child`` onto this store (see its docstring for the actions)."""
        return subprocess.Popen(
            [sys.executable, "-m", "tests.rigs.child", self.rig, json.dumps(self.spec), action, str(count), *extra],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def store(rig: str, rig_server: Callable[[str], Any]) -> Iterator[Store]:
    server = rig_server(rig)
    made = Store(rig, server.new_store())
    yield made
    drop_store(server, made.spec)


@pytest.fixture
def fresh_store(rig_server: Callable[[str], Any]) -> Iterator[Callable[[str], dict[str, Any]]]:
    """``fresh_store(rig_name)``: a new store on that rig, dropped after the test like the ``store`` fixture's."""
    made: list[tuple[Any, dict[str, Any]]] = []

    def new(name: str) -> dict[str, Any]:
        server = rig_server(name)
        made.append((server, server.new_store()))
        return made[-1][1]

    yield new
    for server, spec in made:
        drop_store(server, spec)


def drop_store(server: Any, spec: dict[str, Any]) -> None:
    """Remove a store the test is done with, where its rig's server can (``Server.drop_store``, optional)."""
    drop = getattr(server, "drop_store", None)
    if drop is not None:
        drop(spec)


@pytest.fixture
async def backend(store: Store) -> AsyncIterator[StorageBackend]:
    opened = store.open()
    yield opened
    await opened.aclose()
