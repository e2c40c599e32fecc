"""Every Python block of README.md and docs/ (the spec's are test_spec.py's) runs as written, as a program of its
own in an empty directory, against an emulator on 127.0.0.1 where it names a cloud, and prints what its
``# -> X`` comments promise; the configuration guide's shell examples run too. A block that creates a bucket or a
container in the text (``my-agent-memory``) finds it made on the emulator, as a reader's account would have it."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError

from tests.conftest import ROOT
from tests.emulators_s3 import ACCESS_KEY, REGION, SECRET_KEY
from tests.rigs import azure as azure_rig
from tests.rigs.gcs import PROJECT
from tests.test_cli import SRC, Cli

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"```(python|sh)\n(.*?)```", re.S)
BUCKET_NAMES = re.compile(
    r"""(?:S3Backend|GCSBackend|AzureBlobBackend)\(\s*"([a-z0-9-]+)"|(?:s3|gs|az)://([a-z0-9-]+)"""
)


def blocks(language: str) -> list[tuple[str, int, str]]:
    found = []
    for path in DOCUMENTS:
        text = path.read_text()
        for n, match in enumerate(m for m in FENCE.finditer(text) if m[1] == language):
            found.append((path.name, n, match[2]))
    return found


def clouds(block: str) -> set[str]:
    named = {"s3": ("S3Backend", "s3://"), "gcs": ("GCSBackend", "gs://"), "azure": ("AzureBlobBackend", "az://")}
    return {cloud for cloud, marks in named.items() if any(mark in block for mark in marks)}


def promise(comment: str) -> str:
    """``# -> X (first run)``: X; a parenthesis closing the comment says when it holds."""
    return re.sub(r" \(.*\)$", "", comment.strip())


@pytest.fixture
def cloud_env(rig_server: Callable[[str], Any]) -> Callable[[str], dict[str, str]]:
    """``cloud_env(block)``: the environment that reaches the emulators of the clouds the block names, with the
    buckets and containers it names made there."""

    def environment(block: str) -> dict[str, str]:
        env: dict[str, str] = {}
        names = {a or b for a, b in BUCKET_NAMES.findall(block)}
        for cloud in clouds(block):
            if cloud == "s3":
                server = rig_server("s3_moto")
                existing = {b["Name"] for b in server.client.list_buckets()["Buckets"]}
                for name in names - existing:
                    server.client.create_bucket(Bucket=name)
                env |= {
                    "AWS_ENDPOINT_URL": server.endpoint,
                    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                    "AWS_DEFAULT_REGION": REGION,
                }
            elif cloud == "gcs":
                server = rig_server("gcs")
                existing = {b.name for b in server.client().list_buckets()}
                for name in names - existing:
                    server.client().create_bucket(name)
                env |= {"STORAGE_EMULATOR_HOST": server.url, "GOOGLE_CLOUD_PROJECT": PROJECT}
                env |= {"TIERSTORE_GCS_PROJECT": PROJECT}
            else:
                server = rig_server("azure")
                for name in names:
                    with contextlib.suppress(ResourceExistsError):  # made for an earlier block
                        azure_rig._in_container(server.connection_string, name, "create")
                env |= {"AZURE_STORAGE_CONNECTION_STRING": server.connection_string}
        return env

    return environment


@pytest.mark.parametrize(("document", "n", "block"), blocks("python"), ids=lambda v: str(v)[:20])
def test_every_python_block_runs_as_written(
    document: str, n: int, block: str, tmp_path: Path, cloud_env: Callable[[str], dict[str, str]]
) -> None:
    (tmp_path / "example.py").write_text(block)
    env = Cli(tmp_path).environment(cloud_env(block))
    run = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert run.returncode == 0, f"{document} block {n}:\n{run.stderr}"
    assert run.stderr == "", f"{document} block {n}"
    prints = [line for line in block.splitlines() if line.strip().startswith("print(")]
    printed = run.stdout.splitlines()
    assert len(printed) == len(prints), f"{document} block {n}: {printed}"
    for out, line in zip(printed, prints, strict=True):
        if "# -> " in line:
            assert out == promise(line.split("# -> ", 1)[1]), f"{document} block {n}: {line}"


def test_the_configuration_examples_run_as_written(tmp_path: Path, cloud_env: Callable[[str], dict[str, str]]) -> None:
    [examples] = [b for d, _n, b in blocks("sh") if d == "configuration.md"]
    cli = Cli(tmp_path, {"HOME": str(tmp_path / "home"), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"})
    env = cli.environment(cloud_env(examples))
    env["PYTHONPATH"] = str(SRC)
    for line in (line for line in examples.splitlines() if line.strip()):
        run = subprocess.run(
            ["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        if "gs://" in line and " doctor" in line:
            # fake-gcs-server keeps an object's class through a rewrite (tests/rigs/gcs.py): doctor's real tier
            # change is all it fails there.
            assert run.returncode == 1, f"{line}\n{run.stdout}\n{run.stderr}"
            assert run.stdout.rstrip().endswith("failing: tier")
            assert "accepted the move to L4 but reports L3" in run.stdout
            continue
        assert run.returncode == 0, f"{line}\n{run.stdout}\n{run.stderr}"
