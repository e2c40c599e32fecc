"""Every command checks ``--user`` / ``--session`` before any I/O, as ``ArtifactsBridge`` checks its ids (issue 28):
an empty value is refused, never read as "no scope" (the root) or as "use TIERSTORE_USER_ID", and a command that
binds no bridge (``users``, ``doctor``) refuses a bad one too."""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path

import pytest

from tests.environment import environment
from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality
from tierstore.cli import exit_codes
from tierstore.cli.app import main

COMMANDS = [
    ["ls"],
    ["ls", "-l"],
    ["show", "mem_L3_1"],
    ["rm", "mem_L3_1"],
    ["tier", "mem_L3_1", "L4"],
    ["checkpoints", "list"],
    ["fsck"],
    ["gc"],
    ["doctor"],
    ["users"],
    ["sessions"],
]
BAD = [("--user", "", "user id must not be empty"), ("--session", "", "session id must not be empty")]
BAD += [("--user", "a/b", "path separator"), ("--session", "..", "must not be '..'")]


def _cli(*argv: str, **env: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue() + err.getvalue()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_bad_or_empty_scope_flag_is_refused_before_any_io(command: list[str], tmp_path: Path) -> None:
    store = tmp_path / "store"
    for flag, value, says in BAD:
        code, text = _cli(*command, "--url", str(store), flag, value, TIERSTORE_USER_ID="alice")
        assert code == exit_codes.USAGE, (command, flag, value, text)
        assert says in text, text
    assert not store.exists(), "a refused command touched the store"


def test_rm_as_a_session_refuses_a_shared_page_its_users_checkpoint_uses(tmp_path: Path) -> None:
    store = tmp_path / "store"
    user = ArtifactsBridge(FileSystemBackend(store), user_id="alice")
    page = MemoryPage(page_id="prefs", modality=Modality.TEXT, content="kept by the user's checkpoint")
    checkpoint = asyncio.run(user.checkpoint([page], name="prefs"))
    manifest = asyncio.run(user.get_checkpoint_manifest(checkpoint))
    assert manifest is not None
    shared = manifest.pages[0].artifact_id
    code, text = _cli("rm", shared, "--url", str(store), "--user", "alice", "--session", "s1")
    assert code == exit_codes.USAGE, text
    assert f"used by checkpoint {checkpoint}" in text
    restored = asyncio.run(ArtifactsBridge(FileSystemBackend(store), user_id="alice").restore_checkpoint(checkpoint))
    assert [p.content for p in restored] == [page.content]
