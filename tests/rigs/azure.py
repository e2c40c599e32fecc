"""Rig for AzureBlobBackend on Azurite through the SDK data path: installs Azurite from npm on first use, one
container per store. ``azure_obstore`` serves the same Azurite with the obstore data path (the spec's ``client``).

Azurite is shared: every rig of this process that serves it gets the one server, stopped when the last is done.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from tests.emulators import SharedServer, free_port, stop_process_group, wait_until_ready
from tierstore.backends.azure import AzureBlobBackend
from tierstore.backends.cloud import CloudOptions, RetryPolicy

NAME = "azure"
AZURITE_VERSION = "3.37.0"
ACCOUNT = "devstoreaccount1"
# The well-known development account key of Azurite and the storage emulator: public, not a secret.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
ROOT = Path(__file__).resolve().parents[2]
INSTALL_DIR = ROOT / ".emulators" / "azurite"
READY_TIMEOUT = 30.0

XFAILS: dict[str, str] = {}
CLIENT = "sdk"

OPTIONS = CloudOptions(connect_timeout=2.0, read_timeout=10.0, retry=RetryPolicy(deadline=60.0))
"""Azurite on a busy 2-core machine: a request it has lost is given up after 10 s of silence and tried again,
well inside a 60 s deadline per call, rather than waited for until the deadline ends the whole call."""


def connection_string(port: int, *, host: str = "127.0.0.1", key: str = ACCOUNT_KEY) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};"
        f"BlobEndpoint=http://{host}:{port}/{ACCOUNT};"
    )


def azurite_binary() -> Path:
    """Install the pinned Azurite into ``.emulators/azurite`` unless it is there already."""
    binary = INSTALL_DIR / "node_modules" / ".bin" / "azurite-blob"
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    with open(INSTALL_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel sessions wait for one install
        if not _installed_version_matches():
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError("the Azure rig needs Node.js and npm to install Azurite")
            subprocess.run(
                [
                    npm,
                    "install",
                    "--prefix",
                    str(INSTALL_DIR),
                    "--no-audit",
                    "--no-fund",
                    "--silent",
                    f"azurite@{AZURITE_VERSION}",
                ],
                check=True,
                timeout=600,
            )
    return binary


def _installed_version_matches() -> bool:
    manifest = INSTALL_DIR / "node_modules" / "azurite" / "package.json"
    binary = INSTALL_DIR / "node_modules" / ".bin" / "azurite-blob"
    return binary.exists() and manifest.exists() and f'"version": "{AZURITE_VERSION}"' in manifest.read_text()


@contextmanager
def azurite(workdir: Path) -> Iterator[int]:
    """Run Azurite's blob service on a free loopback port; yields the port and stops it on exit."""
    binary = azurite_binary()
    port = free_port()
    log = workdir / "azurite.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                "node",
                "--require",
                str(Path(__file__).with_name("azurite_gc.js")),
                str(binary.resolve()),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(port),
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--loose",
                "--disableTelemetry",
                "--silent",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so its children stop with it
        )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/{ACCOUNT}?comp=list", process, log=log, timeout=READY_TIMEOUT)
        yield port
    finally:
        stop_process_group(process)


class Server:
    """Azurite on ``port``; each store is a new container, reached through the data path ``client``."""

    def __init__(self, port: int, client: str = CLIENT, ids: Iterator[int] | None = None) -> None:
        self.port = port
        self.client = client
        self.connection_string = connection_string(port)
        self._ids = ids if ids is not None else itertools.count()

    def on(self, client: str) -> Server:
        """The same Azurite, its stores reached through another data path."""
        return Server(self.port, client, self._ids)

    def new_store(self, client: str | None = None) -> dict[str, Any]:
        container = f"store-{os.getpid()}-{next(self._ids)}"
        _in_container(self.connection_string, container, "create")
        return {"connection_string": self.connection_string, "container": container, "client": client or self.client}

    def drop_store(self, spec: dict[str, Any]) -> None:
        """Delete the store's container: Azurite's deletes slow down with every blob the account holds (30 deletes
        took 6 s with 30,000 blobs in other containers, 0.04 s without), so a session keeps its account small."""
        _in_container(self.connection_string, spec["container"], "delete")


def _in_container(
    conn: str, container: str, action: Literal["create", "delete"], options: CloudOptions = OPTIONS
) -> None:
    """Create or delete a container, synchronously (new_store() is called from sync fixtures, inside or outside an
    event loop), under the rig's timeouts and deadline like the backends: a busy Azurite's silence is retried, not
    waited out. Finding it done after a retry counts as done (an earlier attempt's answer was lost)."""
    from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
    from azure.storage.blob import BlobServiceClient

    done_already = ResourceExistsError if action == "create" else ResourceNotFoundError
    deadline = time.monotonic() + options.retry.deadline
    with BlobServiceClient.from_connection_string(
        conn, retry_total=0, connection_timeout=options.connect_timeout, read_timeout=options.read_timeout
    ) as service:
        for attempt in itertools.count(1):
            try:
                if action == "create":
                    service.create_container(container)
                else:
                    service.delete_container(container)
                return
            except done_already:
                if attempt == 1 and action == "create":
                    raise
                return
            except AzureError as exc:
                refused = isinstance(exc, HttpResponseError) and exc.status_code is not None and exc.status_code < 500
                if refused or time.monotonic() >= deadline:
                    raise
                time.sleep(options.retry.delay(attempt))


@contextmanager
def _start(workdir: Path) -> Iterator[Server]:
    with azurite(workdir) as port:
        yield Server(port)


_SHARED = SharedServer(_start)


def serve(workdir: Path) -> AbstractContextManager[Server]:
    """Azurite, started once for this rig and its obstore twin (``azure_obstore``)."""
    server: AbstractContextManager[Server] = _SHARED.serve(workdir)
    return server


def settings_environment(options: CloudOptions = OPTIONS) -> dict[str, str]:
    """The rig's options as the ``TIERSTORE_*`` variables the command line reads."""
    return {
        "TIERSTORE_CONNECT_TIMEOUT": str(options.connect_timeout),
        "TIERSTORE_READ_TIMEOUT": str(options.read_timeout),
        "TIERSTORE_RETRY_DEADLINE": str(options.retry.deadline),
    }


def open_backend(spec: dict[str, Any], options: CloudOptions | None = None, **azure: Any) -> AzureBlobBackend:
    """A backend onto the store, on the spec's data path; ``azure``: AzureBlobBackend's own keywords."""
    chosen = replace(options or OPTIONS, client=spec.get("client", CLIENT))
    azure.setdefault("connection_string", spec["connection_string"])
    azure.setdefault("prefix", spec.get("prefix", ""))
    return AzureBlobBackend(spec["container"], options=chosen, **azure)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def through(spec: dict[str, Any], url: str) -> dict[str, Any]:
    """The same store, reached through another endpoint (a fault-injecting proxy)."""
    return {**spec, "connection_string": connection_string(port_of(url))}


def upstream(spec: dict[str, Any]) -> str:
    blob_endpoint = spec["connection_string"].split("BlobEndpoint=")[1].rstrip(";")
    return f"http://127.0.0.1:{port_of(blob_endpoint)}"
