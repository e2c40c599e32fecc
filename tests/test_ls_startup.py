"""``tierstore ls`` starts light: the command line imports what the command needs and nothing else, so its
start-up (the floor under every first row) pays for no cloud SDK, no other command and no terminal library it does
not use. Checked on what a fresh interpreter has loaded once the command has run (``sys.modules``), not on a clock;
through ``python -m tierstore`` and through the installed entry point (``tierstore.cli:main`` on ``sys.argv``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

CLOUD = (
    "tierstore.backends.cloud",
    "tierstore.backends.s3.client",
    "tierstore.backends.s3.obstore_client",
    "tierstore.backends.gcs.client",
    "tierstore.backends.azure.client",
    "aioboto3",
    "aiobotocore",
    "boto3",
    "botocore",
    "aiohttp",
    "obstore",
    "google",
    "azure",
)
"""The cloud layer and every SDK: a local store's listing needs none of them."""
ELSEWHERE = ("hypothesis", "rich", "tierstore.cli.fsck", "tierstore.cli.gc", "tierstore.cli.migrate")
"""Test tools, the terminal library (stdout here is a pipe), and other commands' modules."""

# Runs the command line as ``ENTRY`` says, then writes the loaded modules to the file $MODULES_OUT, however the
# command ended (argparse's --help ends in SystemExit).
PROBE = """
import json, os, runpy, sys
try:
    if os.environ["ENTRY"] == "module":
        sys.argv = ["tierstore", *json.loads(os.environ["ARGV"])]
        runpy.run_module("tierstore", run_name="__main__", alter_sys=True)
    else:  # what the installed `tierstore` script does
        sys.argv = ["tierstore", *json.loads(os.environ["ARGV"])]
        from tierstore.cli import main
        sys.exit(main())
finally:
    with open(os.environ["MODULES_OUT"], "w") as out:
        json.dump(sorted(sys.modules), out)
"""


def modules_after(argv: list[str], entry: str, tmp_path: Path) -> set[str]:
    """The modules a fresh interpreter holds after running ``tierstore ARGV`` (exit 0 required)."""
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIERSTORE_", "AWS_", "AZURE_", "GOOGLE_"))}
    env |= {"PYTHONPATH": str(ROOT / "src"), "ENTRY": entry, "ARGV": json.dumps(argv), "MODULES_OUT": str(out)}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(out.read_text())
    return set(loaded)


def heavy(loaded: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if any(m == name or m.startswith(f"{name}.") for name in names))


@pytest.fixture
def local_store(tmp_path: Path) -> str:
    """A local-disk store holding one page."""
    import asyncio

    from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality

    root = tmp_path / "store"

    async def fill() -> None:
        async with ArtifactsBridge(backend=FileSystemBackend(root)) as bridge:
            await bridge.store_page(MemoryPage(page_id="p", modality=Modality.TEXT, content="x"))

    asyncio.run(fill())
    return str(root)


@pytest.mark.parametrize("entry", ["module", "script"])
def test_ls_help_loads_no_store_and_no_cloud(entry: str, tmp_path: Path) -> None:
    loaded = modules_after(["ls", "--help"], entry, tmp_path)
    assert "tierstore.cli.ls" in loaded  # the probe ran the command
    assert heavy(loaded, CLOUD + ELSEWHERE + ("tierstore.bridge", "tierstore.maintenance")) == []


@pytest.mark.parametrize("entry", ["module", "script"])
@pytest.mark.parametrize("long", [[], ["-l"], ["-l", "--json"]], ids=["ls", "ls -l", "ls -l --json"])
def test_ls_of_a_local_store_loads_no_cloud_sdk(entry: str, long: list[str], local_store: str, tmp_path: Path) -> None:
    loaded = modules_after(["ls", *long, "--url", local_store], entry, tmp_path)
    assert {"tierstore.bridge", "tierstore.backends.filesystem"} <= loaded  # it did list the store
    assert heavy(loaded, CLOUD + ELSEWHERE) == []


@pytest.mark.parametrize("argv", [["--help"], ["-h", "ls"], ["--url", "ls", "--help"]], ids=" ".join)
def test_the_probe_can_fail_every_command_is_loaded_when_none_is_named(argv: list[str], tmp_path: Path) -> None:
    """Without a command (help, an option whose value is a command name), every command's
    module is loaded, so the help lists all of them; among them one that names the cloud layer."""
    loaded = modules_after(argv, "module", tmp_path)
    assert {"tierstore.cli.fsck", "tierstore.cli.gc", "tierstore.cli.migrate", "tierstore.cli.doctor"} <= loaded
    assert heavy(loaded, CLOUD) != []  # doctor's fixes name the cloud layer's failures: the check sees it
