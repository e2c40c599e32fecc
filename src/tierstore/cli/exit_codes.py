"""The exit codes of ``tierstore``: one table, from which ``--help`` and the error handler both read.

Contract: every tierstore error maps to exactly one code (the first matching class in :data:`BY_ERROR`), and
docs/configuration.md lists the same codes (a test compares them).
"""

from __future__ import annotations

from tierstore.errors import (
    AccessDeniedError,
    ArchivedPageError,
    BackendUnavailableError,
    IntegrityError,
    InvalidInputError,
    MissingDependencyError,
    NotSupportedError,
    ObjectNotFoundError,
    StorageFullError,
    TierstoreError,
)

OK = 0
PROBLEMS = 1
USAGE = 2
UNAVAILABLE = 3
INTEGRITY = 4
NOT_FOUND = 5
ARCHIVED = 6
NOT_SUPPORTED = 7
OTHER = 8
STORAGE_FULL = 9
INTERRUPTED = 130
BROKEN_PIPE = 141  # what a shell reports for a command killed by SIGPIPE, e.g. `tierstore ls | head`

MEANINGS: dict[int, str] = {
    OK: "ok",
    PROBLEMS: "problems found (fsck, migrate, doctor)",
    USAGE: "usage or configuration error (arguments, settings, URL, a missing bucket, an extra not installed)",
    UNAVAILABLE: "backend unavailable or access denied",
    INTEGRITY: "integrity error",
    NOT_FOUND: "not found",
    ARCHIVED: "archived (tierstore restore ID first)",
    NOT_SUPPORTED: "not supported by the backend",
    OTHER: "other error",
    STORAGE_FULL: "no room left on the store",
    INTERRUPTED: "interrupted",
    BROKEN_PIPE: "stdout closed early",
}

BY_ERROR: tuple[tuple[type[TierstoreError], int], ...] = (
    (InvalidInputError, USAGE),  # ConfigurationError included
    (MissingDependencyError, USAGE),
    (BackendUnavailableError, UNAVAILABLE),
    (AccessDeniedError, UNAVAILABLE),
    (IntegrityError, INTEGRITY),
    (ObjectNotFoundError, NOT_FOUND),
    (ArchivedPageError, ARCHIVED),
    (NotSupportedError, NOT_SUPPORTED),
    (StorageFullError, STORAGE_FULL),
    (TierstoreError, OTHER),
)


def of_error(exc: TierstoreError) -> int:
    """The exit code of a TierstoreError: the first of :data:`BY_ERROR` whose kind it is."""
    return next(code for kind, code in BY_ERROR if isinstance(exc, kind))


def summary() -> str:
    """One line per code, for ``--help``."""
    return "\n".join(f"  {code:>3}  {meaning}" for code, meaning in MEANINGS.items())
