"""Rig for InMemoryBackend: a store is a backend instance kept in this process's registry."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tierstore import InMemoryBackend, StorageTier

NAME = "memory"
_stores: dict[int, InMemoryBackend] = {}
_ids = itertools.count()


class Server:
    def new_store(self) -> dict[str, Any]:
        store_id = next(_ids)
        # L4 behaves as an archive class here, so the contract suite exercises the archive flow in memory too.
        _stores[store_id] = InMemoryBackend(archive_tiers=[StorageTier.L4])
        return {"store": store_id}


@contextmanager
def serve(workdir: Path) -> Iterator[Server]:
    yield Server()


def open_backend(spec: dict[str, Any]) -> InMemoryBackend:
    return _stores[spec["store"]]
