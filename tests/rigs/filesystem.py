"""Rig for FileSystemBackend: a store is a fresh directory under the session's temporary directory."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tierstore import FileSystemBackend

NAME = "filesystem"
XFAILS: dict[str, str] = {
    "test_a_lease_renewed_between_gcs_read_and_its_delete_survives": (
        "the local disk has no conditional unlink: a renewal landing between gc's last read and its unlink is lost "
        "(src/tierstore/protocol/references.py, end_expired, says what holds there)"
    ),
}


class Server:
    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._ids = itertools.count()

    def new_store(self) -> dict[str, Any]:
        return {"root": str(self._workdir / f"store{next(self._ids)}")}


@contextmanager
def serve(workdir: Path) -> Iterator[Server]:
    yield Server(workdir)


def open_backend(spec: dict[str, Any]) -> FileSystemBackend:
    return FileSystemBackend(spec["root"])
