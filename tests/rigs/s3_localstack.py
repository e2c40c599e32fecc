"""Rig for S3Backend on LocalStack, run on the host (no Docker) from its own Python 3.13 venv.

``localstack/install.sh`` installs it once into ``.emulators/localstack-venv`` (about 50 s); ``start.sh`` runs
it on 127.0.0.1 and a free port with its data under the session's temporary directory. Each store is a bucket.
"""

from __future__ import annotations

import fcntl
import subprocess
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from tests.emulators import SharedServer, free_port
from tests.emulators_s3 import Server, open_backend, through, upstream

__all__ = ["Server", "open_backend", "serve", "through", "upstream"]

NAME = "s3_localstack"
MARKS = [pytest.mark.localstack]
ONLY_MARKED = ("atomic_create", "conditional_copy")
"""LocalStack is here for its atomic ``If-None-Match: *`` and for CopyObject's conditions
(``x-amz-copy-source-if-match``, ``If-Match``), which it honours; everything else it would re-prove, moto proves."""
XFAILS: dict[str, str] = {}

SCRIPTS = Path(__file__).resolve().parents[2] / "localstack"


@contextmanager
def _start(workdir: Path) -> Iterator[Server]:
    lock_path = SCRIPTS.parent / ".emulators" / ".localstack-install.lock"
    lock_path.parent.mkdir(exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel sessions (pytest -n workers) wait for one install
        installed = subprocess.run([str(SCRIPTS / "install.sh")], capture_output=True, text=True, check=False)
    if installed.returncode:
        raise RuntimeError(f"localstack/install.sh failed:\n{installed.stderr[-3000:]}")
    port = free_port()
    data = workdir / "localstack"
    try:
        subprocess.run([str(SCRIPTS / "start.sh"), str(port), str(data)], check=True, stdout=subprocess.DEVNULL)
        yield Server(f"http://127.0.0.1:{port}")
    finally:
        subprocess.run([str(SCRIPTS / "stop.sh"), str(data)], check=False)


_SHARED = SharedServer(_start)


def serve(workdir: Path) -> AbstractContextManager[Server]:
    """The emulator, started once for this rig and its obstore twin."""
    server: AbstractContextManager[Server] = _SHARED.serve(workdir)
    return server
