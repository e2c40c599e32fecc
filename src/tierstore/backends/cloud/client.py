"""What one cloud supplies to :class:`~tierstore.backends.cloud.backend.CloudBackend`: its requests, by full
object name, and an explanation of its failures. Everything else (retries, deadlines, errors, tiers, prefixes,
create-if-absent, ranged-read guards, archived reads, batching) is shared.

A client raises whatever its library raises; :meth:`ObjectClient.classify` turns that into a
:class:`~tierstore.backends.cloud.failure.Failure`. It may raise tierstore errors itself where it knows better.
A client whose operation takes several requests (S3's multipart upload, a tier change) runs each through the
:class:`Calls` it was given, so every request is retried under the same policy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from tierstore.backends.base import Buffer, Chunks, RestoreSpeed, RestoreStatus
from tierstore.backends.cloud.failure import Failure
from tierstore.backends.cloud.retry import AttemptLog, RetryPolicy, call_with_retries
from tierstore.enums import StorageTier

T = TypeVar("T")


def page_size(limit: int | None, most: int) -> int:
    """How many names a listing page asks for: ``limit`` (:meth:`ObjectClient.list_page`), at most ``most``."""
    return most if limit is None else max(1, min(limit, most))


@dataclass(frozen=True, slots=True)
class Head:
    """What a client's ``head`` reads of one object."""

    size: int
    metadata: Mapping[str, str]
    """The user metadata given to ``put``, without the client's own records."""
    last_modified: datetime | None = None
    storage_class: str | None = None
    recorded_tier: str | None = None
    """The tier ``put`` or ``set_class`` recorded next to the object."""
    restore: RestoreStatus | None = None
    """For an object in an archive class: archived, pending or restored (with its expiry)."""
    version: str | None = None
    """ETag or generation: see :attr:`tierstore.backends.base.ObjectInfo.version`."""


@dataclass(frozen=True, slots=True)
class Listed:
    """One object of a listing: its full name, size and last change, and where the listing proves them its change
    token and storage class (:class:`~tierstore.backends.base.ListEntry`)."""

    name: str
    size: int
    last_modified: datetime | None = None
    version: str | None = None
    storage_class: str | None = None


@dataclass(frozen=True, slots=True)
class Calls:
    """Runs one request of a client under the shared retry policy."""

    policy: RetryPolicy
    classify: Callable[[BaseException], Failure]
    container: str = "bucket"
    where: str = ""
    """What the requests reach, for errors: ``bucket 'name' (endpoint='…')``."""

    def run(
        self,
        what: str,
        key: str | None,
        attempt: Callable[[], Awaitable[T]],
        *,
        idempotent: bool = True,
        size: int = 0,
        log: AttemptLog | None = None,
    ) -> Awaitable[T]:
        """``attempt`` under the retry loop (:func:`~tierstore.backends.cloud.retry.call_with_retries`): the
        coroutine to await, made without a coroutine layer of its own."""
        return call_with_retries(
            attempt,
            policy=self.policy,
            classify=self.classify,
            what=what,
            key=key,
            idempotent=idempotent,
            size=size,
            log=log,
            container=self.container,
            where=self.where,
        )


class ObjectClient(Protocol):
    """What a cloud supplies to :class:`~tierstore.backends.cloud.backend.CloudBackend`: its requests by full object
    name (one attempt each; the backend retries), and an explanation of what its library raises."""

    has_tags: bool
    batch_limit: int
    """Names per ``delete_batch`` request; 0 when the cloud has no batch delete."""

    def classify(self, error: BaseException) -> Failure:
        """What a failed request was, from whatever the client's library raised."""
        ...

    def check_metadata(self, metadata: Mapping[str, str]) -> None:
        """Refuse what this cloud would mangle beyond the limits every cloud shares (checked before)."""
        ...

    def put(
        self,
        name: str,
        data: Chunks,
        *,
        metadata: Mapping[str, str],
        tags: Mapping[str, str],
        storage_class: str,
        tier: StorageTier,
        if_absent: bool,
        calls: Calls,
    ) -> Awaitable[object]:
        """Store ``data`` under ``name`` with its metadata, tags, storage class and tier record; ``if_absent``: only
        if no object has the name (else a conflict failure). To await: a coroutine, or the request itself where a
        client adds nothing around it."""
        ...

    async def get(self, name: str, start: int, length: int | None) -> Buffer:
        """The object's bytes from ``start`` (``length`` of them, or to the end)."""
        ...

    async def head(self, name: str) -> Head:
        """What is stored under ``name`` (a not-found failure when nothing is)."""
        ...

    async def holds(self, name: str, data: Chunks) -> bool | None:
        """Does the stored object hold exactly ``data``? From a digest the service keeps (MD5, ETag, CRC32);
        None when it cannot tell that way (the backend then compares the bytes)."""
        ...

    async def list_page(
        self, prefix: str, token: str | None, limit: int | None = None
    ) -> tuple[Sequence[Listed], str | None]:
        """One page of the names starting with ``prefix`` after ``token``, and the next page's token (None: done);
        at most ``limit`` names (None: as many as the service's page holds)."""
        ...

    async def delete(self, name: str) -> None:
        """Delete; raises (a not-found failure) when there was no object."""
        ...

    async def delete_batch(self, names: Sequence[str]) -> list[tuple[str, Failure]] | None:
        """Delete up to ``batch_limit`` names in one request; the failures (a missing object is none), or None
        when the service refuses batches (the backend then deletes one by one from then on)."""
        ...

    async def set_class(
        self, name: str, storage_class: str, tier: StorageTier, tags: Mapping[str, str], calls: Calls
    ) -> None:
        """Move the object to ``storage_class``, record ``tier``, and merge ``tags`` into its tags."""
        ...

    async def restore(self, name: str, *, days: int, speed: RestoreSpeed) -> None:
        """Ask for an archived object to be brought back (one already under way is no error)."""
        ...

    def secrets(self) -> list[str]:
        """The credentials this client holds, so that no log line or error shows them."""
        ...

    def describe(self) -> str:
        """Where it connects, for ``repr`` (never a credential)."""
        ...

    async def aclose(self) -> None:
        """Close what the client holds (connections, sessions) in the current event loop."""
        ...
