"""Test rigs: one module per backend, each able to serve fresh, empty stores to the contract suite.

A rig module defines:

* ``NAME`` - the id the contract suite is parametrized with;
* ``XFAILS`` (optional) - ``{contract test function name: precise reason}`` for what the emulator does
  differently from the real cloud; applied as strict xfail, so a fixed emulator shows up;
* ``MARKS`` (optional) - pytest marks every test on this rig carries (e.g. ``pytest.mark.localstack``);
* ``ONLY_MARKED`` (optional) - names of markers: this rig runs only the tests that carry one of them (see
  ``tests/conftest.py`` for the rule);
* ``LACKS`` (optional) - ``{marker: precise reason}``: what the emulator lacks that a test carrying the marker
  needs; this rig does not run such a test, which runs on a rig that has it;
* ``serve(workdir: Path) -> ContextManager[Server]`` - session-scoped: installs and starts what the backend
  needs (an emulator on 127.0.0.1 and a free port), and stops it on exit;
* ``Server.new_store() -> dict`` - a JSON-able description of a fresh, empty store (a new bucket, container,
  prefix or directory), so that no test sees another's objects; ``Server.drop_store(spec)`` (optional) removes it
  when the test is done, for an emulator that slows down as it fills;
* ``open_backend(spec: dict, options: CloudOptions | None = None, **cloud_specific) -> StorageBackend`` - builds
  a backend onto that store (a cloud rig with the shared options, else its own), with no I/O. It is called
  in the test process and in child processes (``python -m tests.rigs.child``), so two bridges, in one process
  or two, can share one store.

``RIGS`` lists the modules in the order the suite runs them.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

_ORDER = [
    "memory",
    "filesystem",
    "s3_moto",
    "s3_moto_obstore",
    "s3_localstack",
    "s3_localstack_obstore",
    "gcs",
    "azure",
    "azure_obstore",
]
RIGS = [name for name in _ORDER if (Path(__file__).parent / f"{name}.py").exists()]


def load(name: str) -> ModuleType:
    return importlib.import_module(f"tests.rigs.{name}")
