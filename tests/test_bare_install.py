"""A bare ``pip install tierstore`` (core dependencies only, no extras) in a fresh venv.

The venv gets this repository and its core dependencies (pydantic, pydantic-settings, rich) at the versions
installed here (pip takes them from its cache or PyPI, with ``--no-deps``: nothing else can sneak in). It shows
that memory and the local disk work, that cloud URLs fail with the named extra, and that ``import tierstore`` pulls
in no cloud SDK.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tierstore.backends import registry

# pydantic-settings, rich and their dependency closure: what `pip install tierstore` brings besides tierstore.
CORE_DISTRIBUTIONS = (
    "rich",
    "markdown-it-py",
    "mdurl",
    "pygments",
    "pydantic",
    "pydantic-core",
    "pydantic-settings",
    "python-dotenv",
    "typing-extensions",
    "typing-inspection",
    "annotated-types",
)
CLOUDS = [scheme for scheme in registry.every_scheme() if scheme.sdk is not None]
"""Every provider that needs an extra, as the registry declares it."""
CLOUD_MODULES = tuple(sorted({scheme.sdk for scheme in CLOUDS if scheme.sdk} | set(registry.sdk_loggers())))
"""Each cloud's SDK, and the libraries it logs through (botocore, aiohttp, requests, ...)."""
CLOUD_ROOTS = tuple(sorted({name.split(".")[0] for name in CLOUD_MODULES} | {"zstandard"}))


def clean_environment(home: Path) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("TIERSTORE_", "PYTHON", "VIRTUAL_ENV"))}
    return {**kept, "HOME": str(home), "XDG_DATA_HOME": str(home / "data")}


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in CORE_DISTRIBUTIONS]
    install = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps"]
    subprocess.run(
        [*install, "--disable-pip-version-check", *pins, str(ROOT)], check=True, timeout=600, capture_output=True
    )
    return venv


def run(venv: Path, tmp_path: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / command[0]), *command[1:]],
        cwd=tmp_path,
        env=clean_environment(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_venv_really_is_bare(bare_venv: Path, tmp_path: Path) -> None:
    probe = (
        "import importlib.util as u, json; "
        f"print(json.dumps([m for m in {CLOUD_MODULES!r} if u.find_spec(m.split('.')[0])]))"
    )
    result = run(bare_venv, tmp_path, "python", "-c", probe)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    located = run(bare_venv, tmp_path, "python", "-c", "import tierstore; print(tierstore.__file__)")
    assert located.stdout.startswith(str(bare_venv)), located.stdout


def test_import_pulls_no_cloud_sdk(bare_venv: Path, tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import importlib, sys, json
        import tierstore
        from tierstore import ArtifactsBridge, FileSystemBackend, InMemoryBackend, MemoryPage
        import tierstore.cli, tierstore.config, tierstore.maintenance
        from tierstore.backends import registry
        for scheme in registry.every_scheme():  # every provider's declaration and package
            importlib.import_module(scheme.build.__module__)
        roots = ROOTS
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in roots)))
        """
    ).replace("ROOTS", repr(CLOUD_ROOTS))
    result = run(bare_venv, tmp_path, "python", "-c", script)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_memory_and_the_local_disk_work(bare_venv: Path, tmp_path: Path) -> None:
    assert run(bare_venv, tmp_path, "tierstore", "demo", "--url", "memory://").returncode == 0
    demo = run(bare_venv, tmp_path, "tierstore", "demo", "--keep")
    assert demo.returncode == 0, demo.stderr
    assert str(tmp_path / "home" / "data" / "tierstore") in demo.stdout
    listing = run(bare_venv, tmp_path, "tierstore", "ls", "--json")
    assert len(json.loads(listing.stdout)) == 15
    assert run(bare_venv, tmp_path, "tierstore", "fsck").returncode == 0


@pytest.mark.parametrize(("url", "extra"), [(scheme.form(), scheme.extra) for scheme in CLOUDS])
def test_cloud_urls_name_the_extra(bare_venv: Path, tmp_path: Path, url: str, extra: str) -> None:
    result = run(bare_venv, tmp_path, "tierstore", "ls", "--url", url)
    assert result.returncode == 2
    assert f"pip install 'tierstore[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_backend_from_url_raises_the_named_extra_error(bare_venv: Path, tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        from tierstore.config import backend_from_url
        from tierstore.errors import MissingDependencyError
        try:
            backend_from_url("s3://bucket")
        except MissingDependencyError as exc:
            print(exc.extra, isinstance(exc, ImportError))
        """
    )
    result = run(bare_venv, tmp_path, "python", "-c", script)
    assert result.stdout.split() == ["s3", "True"], result.stderr
