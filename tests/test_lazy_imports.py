"""The bare API import is light: ``import tierstore`` and the names a program on memory or the local disk uses load
no module of the cloud layer (tierstore.backends.cloud and the cloud packages), so neither their import time nor
their SDK lookups are paid by a program that never names a cloud."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

CLOUD_PACKAGES = (
    "tierstore.backends.cloud",
    "tierstore.backends.s3",
    "tierstore.backends.gcs",
    "tierstore.backends.azure",
)


def tierstore_modules_after(statement: str) -> list[str]:
    """The tierstore modules a fresh interpreter has loaded after running ``statement``."""
    probe = (
        f"import sys, json\n{statement}\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('tierstore'))))"
    )
    environment = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=environment, timeout=120, check=True
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded


@pytest.mark.parametrize(
    "statement",
    [
        "import tierstore; tierstore.ArtifactsBridge",
        "from tierstore import ArtifactsBridge, SyncBridge, MemoryPage, InMemoryBackend, FileSystemBackend",
        "import tierstore; tierstore.bridge_from_env",
    ],
)
def test_the_bare_api_import_loads_no_cloud_module(statement: str) -> None:
    loaded = tierstore_modules_after(statement)
    assert "tierstore.bridge" in loaded  # the probe ran what it says
    assert [m for m in loaded if m.startswith(CLOUD_PACKAGES)] == []


def test_naming_a_cloud_backend_loads_its_package() -> None:
    """The probe can fail: the cloud layer does load once a cloud backend is named."""
    loaded = tierstore_modules_after("import tierstore; tierstore.S3Backend")
    assert "tierstore.backends.s3" in loaded
    assert "tierstore.backends.cloud" in loaded
