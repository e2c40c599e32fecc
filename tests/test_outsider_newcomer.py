"""Breaks an outsider found using tierstore as a new user would (issues 24 and 25), each kept as a regression."""

from __future__ import annotations

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
