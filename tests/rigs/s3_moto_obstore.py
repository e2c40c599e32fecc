"""Rig for S3Backend's obstore data path on the moto server of ``s3_moto`` (started once, shared)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.emulators_s3 import Server, open_backend, through, upstream
from tests.rigs import s3_moto

__all__ = ["Server", "open_backend", "serve", "through", "upstream"]

NAME = "s3_moto_obstore"
XFAILS: dict[str, str] = s3_moto.XFAILS
LACKS = s3_moto.LACKS


@contextmanager
def serve(workdir: Path) -> Iterator[Server]:
    with s3_moto.serve(workdir) as server:
        yield server.on("obstore")
