"""The local-disk store on a full disk and on a read-only one: typed errors, and deleting still works when full.

Each case runs in a child process inside a private mount namespace (``unshare``) on a 1 MiB tmpfs, so nothing on
the machine fills up and no privileges are needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import ROOT


def _run(tmp_path: Path, mode: str) -> dict[str, Any]:
    script = 'mount -t tmpfs -o size=1m tmpfs "$0" && exec "$1" -m tests.disk_limits "$0" "$2"'
    command = ["unshare", "--map-root-user", "--mount", "sh", "-c", script, str(tmp_path), sys.executable, mode]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_full_disk_refuses_writes_by_type_and_still_deletes(tmp_path: Path) -> None:
    result = _run(tmp_path, "full")
    assert result["store_page"].startswith("StorageFullError: local store")
    assert "no space left" in result["store_page"]
    assert result["checkpoint"].startswith("StorageFullError")
    assert result["checkpoints_listed"] == 1  # the failed checkpoint is not listed
    assert result["delete_page"] == "ok: True"
    assert result["deleted_page_loads"] == "ok: None"
    assert result["delete_checkpoint"] == "ok: True"
    assert result["gc"].startswith("ok: ")
    assert result["fsck_ok_after"] is True
    assert result["store_page_after"].startswith("ok: 'mem_L3_")
    assert result["erase_session"].startswith("StorageFullError")  # its erasing tomb is a write: nothing done
    assert result["erase_session_after"].startswith("ok: Erased(")
    assert result["session_pages_after"] == 0


def test_a_read_only_disk_refuses_writes_by_type_and_still_reads(tmp_path: Path) -> None:
    result = _run(tmp_path, "readonly")
    assert result["store_page"].startswith("AccessDeniedError: local store")
    assert "read-only" in result["store_page"]
    assert result["delete_page"].startswith("AccessDeniedError")
    assert result["load_page"] == f"ok: {bytes([1]) * 100!r}"
    assert (result["list_pages"], result["fsck_ok"]) == (True, True)
    assert result["new_store"].startswith("AccessDeniedError")
