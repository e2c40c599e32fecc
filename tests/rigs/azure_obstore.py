"""Rig for AzureBlobBackend's obstore data path (``tierstore[fast]``) on the Azurite of ``azure`` (started once,
shared): the same stores, with ``client="obstore"`` in the spec."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.rigs import azure
from tests.rigs.azure import Server, open_backend, through, upstream

__all__ = ["Server", "open_backend", "serve", "through", "upstream"]

NAME = "azure_obstore"
XFAILS: dict[str, str] = azure.XFAILS


@contextmanager
def serve(workdir: Path) -> Iterator[Server]:
    with azure.serve(workdir) as server:
        yield server.on("obstore")
