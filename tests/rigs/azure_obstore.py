"""Rig for AzureBlobBackend on Azurite through the obstore data path (``tierstore[fast]``): the ``azure`` rig's
Azurite and stores, with ``client="obstore"`` in the spec."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.rigs import azure
from tests.rigs.azure import open_backend, through, upstream

__all__ = ["Server", "open_backend", "serve", "through", "upstream"]

NAME = "azure_obstore"
XFAILS: dict[str, str] = dict(azure.XFAILS)


class Server:
    def __init__(self, shared: azure.Server) -> None:
        self.shared = shared
        self.port = shared.port
        self.connection_string = shared.connection_string

    def new_store(self) -> dict[str, Any]:
        return self.shared.new_store(client="obstore")

    def drop_store(self, spec: dict[str, Any]) -> None:
        self.shared.drop_store(spec)


@contextmanager
def serve(workdir: Path) -> Iterator[Server]:
    with azure.serve(workdir) as shared:
        yield Server(shared)
