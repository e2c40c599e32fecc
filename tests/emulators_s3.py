"""Helpers shared by the S3 rigs: free ports, waiting for a server, stopping a process tree, sync clients."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

ACCESS_KEY = "testing"
SECRET_KEY = "testing"  # noqa: S105 - the emulators accept any credentials
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_ready(url: str, process: subprocess.Popen[Any] | None, timeout: float = 60.0) -> None:
    """Poll ``url`` until it answers with any HTTP status; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"emulator exited with code {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback URL built by us
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
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


def sync_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def new_bucket(client: Any, stem: str = "tierstore") -> str:
    bucket = f"{stem}-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    return bucket
