"""Breaks an outsider found using tierstore as a new user would (issues 24 and 25), each kept as a regression."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tierstore import FileSystemBackend
from tierstore.maintenance.doctor import missing_store


@pytest.mark.parametrize("name", ["plain", "ü ñ", "it's", "a;touch b", "$HOME", "-dash"])
def test_the_mkdir_a_missing_store_suggests_makes_exactly_that_directory(tmp_path: Path, name: str) -> None:
    root = tmp_path / name
    message = missing_store(FileSystemBackend(root))
    assert message is not None
    command = re.search(r"`(mkdir -p [^`]*)`", message)
    assert command is not None, message
    assert shlex.split(command.group(1)) == ["mkdir", "-p", str(root)]
    subprocess.run(["sh", "-c", command.group(1)], check=True, cwd=tmp_path)
    assert root.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_sync_call_from_a_progress_callback_on_the_sync_bridges_loop_is_refused_not_a_deadlock(
    tmp_path: Path,
) -> None:
    from tierstore import ArtifactsBridge, MemoryPage, Modality, SyncBridge
    from tierstore.errors import NotSupportedError

    page = MemoryPage(page_id="note", modality=Modality.TEXT, content="Call at 5.")
    seen: list[BaseException] = []

    def progress(done: int, total: int) -> None:
        try:
            bridge.list_pages()  # runs on the SyncBridge's own loop: it must not wait for that loop
        except NotSupportedError as error:
            seen.append(error)

    with SyncBridge(ArtifactsBridge(backend=FileSystemBackend(tmp_path / "store"))) as bridge:
        checkpoint_id = bridge.checkpoint([page], "one")
        assert bridge.restore_checkpoint(checkpoint_id, progress=progress) == [page]
        assert seen
        assert "own event loop" in str(seen[0])
        assert len(bridge.list_pages()) == 1  # the SyncBridge still works after the refusal


# -- names are case-insensitive wherever tierstore reads them ---------------------------------------------------


def _choice_arguments() -> list[tuple[str, argparse.Action]]:
    """Every argument of every command (subcommands too) that takes one of a set of values."""
    from tierstore.cli.app import parser

    found: list[tuple[str, argparse.Action]] = []
    pending: list[tuple[str, argparse.ArgumentParser]] = [("tierstore", parser())]
    while pending:
        name, current = pending.pop()
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending += [(f"{name} {sub}", subparser) for sub, subparser in action.choices.items()]
            elif action.choices:
                found.append((name, action))
    return found


def test_every_choice_on_the_command_line_takes_any_case() -> None:
    arguments = _choice_arguments()
    assert {(name, action.dest) for name, action in arguments} >= {
        ("tierstore tier", "tier"),
        ("tierstore ls", "tier"),
        ("tierstore ls", "modality"),
        ("tierstore restore", "speed"),
        ("tierstore checkpoints restore", "speed"),
    }
    for name, action in arguments:
        choices = [str(value) for value in action.choices or ()]
        for value in choices:
            for spelt in (value.upper(), value.lower(), value.swapcase(), f" {value} "):
                assert callable(action.type), (name, action.dest)
                assert action.type(spelt) == value, (name, action.dest, spelt)


def test_tier_names_in_any_case_move_list_and_store(tmp_path: Path) -> None:
    import asyncio
    import json
    import os
    import sys

    from tierstore import ArtifactsBridge, MemoryPage, Modality, StorageTier

    store = tmp_path / "store"

    async def store_one() -> str:
        async with ArtifactsBridge(backend=FileSystemBackend(store)) as bridge:
            page = MemoryPage(page_id="p", modality=Modality.TEXT, content="x")
            artifact = await bridge.store_page(page, tier="l2")
            await bridge.set_tier(artifact, "l3")
            meta = await bridge.get_metadata(artifact)
            assert meta is not None
            assert meta.tier == StorageTier.L3
            return artifact

    artifact = asyncio.run(store_one())
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "xdg")}

    def tierstore(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "tierstore", *args, "--url", str(store)]
        return subprocess.run(command, capture_output=True, text=True, env=env, check=False)

    moved = tierstore("tier", artifact, "l4")
    assert moved.returncode == 0, moved.stderr
    assert f"{artifact} is now in L4" in moved.stdout
    listed = tierstore("ls", "--tier", "l4", "--modality", "TEXT", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [row["artifact_id"] for row in json.loads(listed.stdout)] == [artifact]
    refused = tierstore("tier", artifact, "l9")
    assert refused.returncode == 2
    assert "invalid choice" in refused.stderr
