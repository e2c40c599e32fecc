"""Helpers every emulator rig shares: a free loopback port, waiting until a server answers, stopping a process tree."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_ready(
    url: str, process: subprocess.Popen[Any] | None, *, log: Path | None = None, timeout: float = 60.0
) -> None:
    """Poll ``url`` until it answers with any HTTP status; fail early, with the log's tail, if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log is not None else ""
            raise RuntimeError(f"emulator exited with code {process.returncode} before it was ready: {tail}")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback URL built by us
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is serving
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"emulator at {url} not ready after {timeout} s")


def stop_process_group(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Stop a process started with ``start_new_session=True`` and all of its children."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)


class SharedServer:
    """One running server for several rigs of one emulator (a data path each): the first ``serve`` starts it,
    later ones in the same process reuse it, and the last one out stops it."""

    def __init__(self, start: Callable[[Path], AbstractContextManager[Any]]) -> None:
        self._start = start
        self._users = 0
        self._stack: ExitStack | None = None
        self._server: Any = None

    @contextmanager
    def serve(self, workdir: Path) -> Iterator[Any]:
        if self._users == 0:
            stack = ExitStack()
            self._server = stack.enter_context(self._start(workdir))
            self._stack = stack
        self._users += 1
        try:
            yield self._server
        finally:
            self._users -= 1
            if self._users == 0 and self._stack is not None:
                stack, self._stack, self._server = self._stack, None, None
                stack.close()
