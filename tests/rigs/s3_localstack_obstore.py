"""Rig for S3Backend's obstore data path on LocalStack, as ``s3_localstack`` runs it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.emulators_s3 import Server, open_backend, through, upstream
from tests.rigs import s3_localstack

__all__ = ["Server", "open_backend", "serve", "through", "upstream"]

NAME = "s3_localstack_obstore"
MARKS = s3_localstack.MARKS
ONLY_MARKED = s3_localstack.ONLY_MARKED
XFAILS: dict[str, str] = s3_localstack.XFAILS


@contextmanager
def serve(workdir: Path) -> Iterator[Server]:
    with s3_localstack.serve(workdir) as server:
        yield server.on("obstore")
