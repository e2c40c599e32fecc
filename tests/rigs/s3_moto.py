"""Rig for S3Backend on moto's standalone server (``moto_server``), started on 127.0.0.1 and a free port.

moto keeps its state in memory; each store is a new bucket.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from tests.emulators import SharedServer, free_port, stop_process_group, wait_until_ready
from tests.emulators_s3 import Server, open_backend, through, upstream

__all__ = ["Server", "open_backend", "serve", "through", "upstream"]

NAME = "s3_moto"
XFAILS: dict[str, str] = {}
LACKS = {
    "conditional_copy": "moto 5.2 ignores x-amz-copy-source-if-match and If-Match on CopyObject: a delete landing "
    "while it copies an object onto itself is undone (AWS answers 412)",
    "atomic_create": "moto 5.2 checks If-None-Match and then stores, without a lock, in a threaded server: two "
    "racing creates of one key can both succeed (AWS: exactly one); seen in a clean-clone run under load",
}


def moto_command(port: int) -> list[str]:
    script = Path(sys.executable).with_name("moto_server")
    launcher = [str(script)] if script.exists() else [sys.executable, "-m", "moto.server"]
    return [*launcher, "-H", "127.0.0.1", "-p", str(port)]


@contextmanager
def _start(workdir: Path) -> Iterator[Server]:
    port = free_port()
    log = (workdir / "moto.log").open("wb")
    process = subprocess.Popen(moto_command(port), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{endpoint}/moto-api/", process)
        yield Server(endpoint)
    finally:
        stop_process_group(process)
        log.close()


_SHARED = SharedServer(_start)


def serve(workdir: Path) -> AbstractContextManager[Server]:
    """The emulator, started once for this rig and its obstore twin."""
    server: AbstractContextManager[Server] = _SHARED.serve(workdir)
    return server
