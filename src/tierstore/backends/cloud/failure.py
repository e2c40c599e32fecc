"""One classification of a failed cloud request, and the one table that turns it into a tierstore error.

Each cloud adapter answers one question about whatever its SDK (or obstore) raised: :class:`Failure` - the HTTP
status and provider code when the service answered, what kind of failure it is, and whether the request may have
taken effect. Everything else is decided here, the same on every cloud: which kinds are worth another attempt
(:attr:`Failure.transient`) and which error the caller sees (:meth:`Failure.error`). An unknown failure is a
:class:`~tierstore.errors.BackendUnavailableError` on every cloud.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from tierstore.errors import (
    AccessDeniedError,
    ArchivedPageError,
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    ObjectNotFoundError,
    TierstoreError,
)

FailureKind = Literal[
    "not-found",  # no such object
    "no-container",  # the bucket or container itself is missing
    "conflict",  # a precondition (create-if-absent, a generation, an ETag) failed
    "archived",  # the object must be restored before it can be read
    "range",  # a ranged read starts at or past the end of the object
    "denied",  # the credentials do not allow it
    "invalid",  # the service refused the request as malformed
    "configuration",  # no credentials, no region, an unusable endpoint: nothing a retry changes
    "throttled",  # 429, SlowDown, a racing conditional write (S3's 409 ConditionalRequestConflict)
    "server",  # 5xx
    "network",  # the connection failed, was reset, or the answer was cut short
    "timeout",  # no answer in time
    "corrupt",  # the bytes received fail their transfer checksum
    "unknown",
]

Applied = Literal["no", "maybe"]
"""Whether a failed request may have taken effect on the service ("no" only when it certainly did not)."""

TRANSIENT_KINDS: Final[frozenset[FailureKind]] = frozenset({"throttled", "server", "network", "timeout", "corrupt"})


class RangeNotSatisfiable(TierstoreError):
    """Internal: a ranged read began at or past the end of an existing object (the backend answers ``b""``)."""


@dataclass(frozen=True, slots=True)
class Failure:
    kind: FailureKind
    applied: Applied = "maybe"
    status: int | None = None
    code: str = ""

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT_KINDS

    def describe(self) -> str:
        answer = f"HTTP {self.status}" if self.status is not None else self.kind
        return f"{answer} {self.code}".strip()

    def error(self, what: str, key: str | None, *, container: str = "bucket") -> TierstoreError:
        """The tierstore error for this failure of ``what`` (e.g. ``"put 'mem_L3_1'"``) on ``key``."""
        detail = f"{what} failed: {self.describe()}"
        if key is not None:
            if self.kind == "not-found":
                return ObjectNotFoundError(key)
            if self.kind == "conflict":
                return ConflictError(key)
            if self.kind == "archived":
                return ArchivedPageError(key)
            if self.kind == "corrupt":
                return IntegrityError(f"{detail}: the bytes received fail their checksum", key=key)
        if self.kind == "range":
            return RangeNotSatisfiable(detail)
        if self.kind == "no-container":
            return ConfigurationError(f"{what}: the {container} does not exist")
        if self.kind == "denied":
            return AccessDeniedError(f"{detail}: the credentials do not allow it")
        if self.kind == "invalid":
            return InvalidInputError(f"{detail}: the service refused the request")
        if self.kind == "configuration":
            return ConfigurationError(detail)
        return BackendUnavailableError(detail)


def kind_of_status(status: int) -> FailureKind:
    """The kind of an HTTP error status, where the provider's own code says nothing more specific."""
    if status == 404:
        return "not-found"
    if status in (409, 412):
        return "conflict"
    if status in (401, 403):
        return "denied"
    if status == 416:
        return "range"
    if status == 408:
        return "timeout"
    if status == 429:
        return "throttled"
    if status >= 500:
        return "server"
    if status >= 400:
        return "invalid"
    return "unknown"


def from_status(status: int, code: str = "", *, refused: bool = False) -> Failure:
    """A failure the service answered with. ``refused``: its answer says the request did not take effect."""
    kind = kind_of_status(status)
    applied: Applied = "no" if refused or kind not in ("server", "timeout") else "maybe"
    return Failure(kind, applied, status, code)
