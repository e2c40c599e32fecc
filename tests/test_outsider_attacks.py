"""Attacks from outside, where two features meet; each test is a break that was found and fixed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tierstore.config import backend_from_url
from tierstore.errors import ConfigurationError

_FORKING_SYNC_BRIDGE = textwrap.dedent(
    """
    import os, sys
    from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality, SyncBridge

    sync_bridge = SyncBridge(ArtifactsBridge(backend=FileSystemBackend(sys.argv[1])))
    sync_bridge.store_page(MemoryPage(page_id="parent", modality=Modality.TEXT, content="parent"))
    child_uses_it = sys.argv[2] == "uses"
    pid = os.fork()
    if pid == 0:
        if child_uses_it:
            artifact_id = sync_bridge.store_page(MemoryPage(page_id="child", modality=Modality.TEXT, content="child"))
            page = sync_bridge.load_page(artifact_id)
            print("child", page.content if page else None, flush=True)
        sys.exit(0)  # a normal exit: the at-exit hooks run in the child
    _, status = os.waitpid(pid, 0)
    print("child exit", os.waitstatus_to_exitcode(status), flush=True)
    artifact_id = sync_bridge.store_page(MemoryPage(page_id="after", modality=Modality.TEXT, content="after"))
    print("parent", sync_bridge.load_page(artifact_id).content, flush=True)
    sync_bridge.close()
    """
)


def test_a_forked_child_uses_its_sync_bridge_and_exits_without_waiting_for_the_parents_loop(tmp_path: Path) -> None:
    # The child inherited a SyncBridge whose loop runs in a thread that stayed in the parent: it hung on its first
    # call, and at exit (the finalizer waited for that loop), whether or not it used the bridge.
    for child in ("uses", "ignores"):
        done = subprocess.run(
            [sys.executable, "-c", _FORKING_SYNC_BRIDGE, str(tmp_path / child), child],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert done.returncode == 0, done.stderr
        expected = (["child child"] if child == "uses" else []) + ["child exit 0", "parent after"]
        assert done.stdout.split("\n")[:-1] == expected


@pytest.mark.parametrize("location", ["file:///tmp/a%00b", "/tmp/a\x00b"])
def test_a_local_store_path_with_a_nul_is_refused_when_built(location: str) -> None:
    # It was accepted, and the first call raised a bare ValueError ("embedded null byte") from os.
    with pytest.raises(ConfigurationError):
        backend_from_url(location)
