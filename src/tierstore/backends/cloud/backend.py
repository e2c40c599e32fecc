"""The storage-backend protocol on any cloud, from the few requests its client supplies.

Contract, on top of :mod:`tierstore.backends.base`, the same on S3, GCS and Azure:

* Object name = ``prefix`` + key in one bucket or container; ``list`` strips the prefix and skips names that are
  not keys of this store. The constructor does no I/O.
* Every request runs under one :class:`~tierstore.backends.cloud.retry.RetryPolicy` and per-call deadline; an
  SDK failure is classified once (:mod:`tierstore.backends.cloud.failure`) and leaves as a tierstore error with the
  SDK's error chained (its credentials scrubbed). An overwriting ``put`` is retried only when the service certainly
  did not apply it.
* ``put(if_absent=True)`` is a conditional create. When it meets an existing object, the client's digest hook
  (else the bytes themselves) tells whether it holds exactly our bytes, which counts as done: our own earlier
  attempt, whose answer was lost (or that the HTTP client resent by itself).
* A tier is a storage class (:class:`~tierstore.backends.cloud.tiers.TierMap`); the client records the tier asked
  for next to the object. ``set_tier(key, tier, tags=...)`` changes the class in place and merges ``tags``.
* A read of an archived object raises ArchivedPageError (``pending`` while a restore runs); a ranged read at or
  past the end answers ``b""``; a zero-length range needs no read.
* ``delete_many`` batches where the cloud can, falling back to single deletes for good once batches are refused.
* Decisions are logged at INFO on this module's logger: batches refused, and a forked child moving to the SDK
  data path (obstore cannot run there); never a credential, URL query or header.
"""

from __future__ import annotations

import builtins
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Final, TypeVar

from tierstore.backends import slices
from tierstore.backends.base import (
    Body,
    Capability,
    Chunks,
    ClosingContext,
    ListEntry,
    ObjectInfo,
    RestoreSpeed,
    RestoreStatus,
    as_chunks,
    check_key,
    check_metadata,
    check_tags,
    normalise_prefix,
)
from tierstore.backends.cloud import obstore_calls, redact
from tierstore.backends.cloud.client import Calls, Listed, ObjectClient
from tierstore.backends.cloud.failure import Failure, RangeNotSatisfiable
from tierstore.backends.cloud.options import CloudOptions
from tierstore.backends.cloud.retry import AttemptLog
from tierstore.backends.cloud.tiers import TierMap
from tierstore.concurrency import bounded_gather
from tierstore.enums import StorageTier
from tierstore.errors import (
    AccessDeniedError,
    ArchivedPageError,
    BackendUnavailableError,
    ConflictError,
    InvalidInputError,
    NotSupportedError,
    ObjectNotFoundError,
    TierstoreError,
)

T = TypeVar("T")
logger = logging.getLogger(__name__)

_LIST_PREFIX: Final = re.compile(r"[A-Za-z0-9._-]*")
_KEY: Final = re.compile(r"[A-Za-z0-9._-]{1,256}")


class CloudBackend(ClosingContext):
    """A bucket or container of one cloud, through an :class:`~tierstore.backends.cloud.client.ObjectClient`."""

    name: str
    persistent = True
    ordered_listing = True  # each cloud's listing API pages names in UTF-8 byte order (slices.ORDERED_LISTING)
    container_word = "bucket"

    def __init__(self, container: str, client: ObjectClient, tiers: TierMap, *, prefix: str, options: CloudOptions):
        self.container = container
        self.prefix = normalise_prefix(prefix)
        self.tiers = tiers
        self.options = options
        self._client = client
        at = client.describe().removeprefix(", ")
        where = f"{self.container_word} {container!r}" + (f" ({at})" if at else "")
        self.calls = Calls(options.retry, self._classify, self.container_word, where)
        capabilities: set[Capability] = {"tiers", "range_reads"}
        if client.has_tags:
            capabilities.add("tags")
        if tiers.has_archive:
            capabilities.add("archive")
        self.capabilities: frozenset[Capability] = frozenset(capabilities)
        self._batches = client.batch_limit > 0
        self._forked_to_sdk = False
        redact.install()  # also when every credential comes from the environment, found only on connecting
        for secret in client.secrets():
            redact.register_secret(secret)

    @property
    def client(self) -> ObjectClient:
        """The data path chosen; the SDK's in a child forked after obstore ran (see :mod:`.obstore_calls`)."""
        sdk: ObjectClient | None = getattr(self._client, "sdk", None)  # an obstore client wraps its SDK client
        if sdk is None or obstore_calls.usable():
            return self._client
        if not self._forked_to_sdk:
            self._forked_to_sdk = True
            logger.info(
                "%s: obstore cannot run in a process forked after it started; this process uses the SDK data path",
                type(self).__name__,
            )
        return sdk

    def __repr__(self) -> str:
        where = self.client.describe()
        return f"{type(self).__name__}({self.container_word}={self.container!r}, prefix={self.prefix!r}{where})"

    def _classify(self, error: BaseException) -> Failure:
        redact.scrub_error(error)
        return self.client.classify(error)

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _run(
        self,
        what: str,
        key: str | None,
        attempt: Callable[[], Awaitable[T]],
        *,
        idempotent: bool = True,
        size: int = 0,
        log: AttemptLog | None = None,
    ) -> Awaitable[T]:
        return self.calls.run(what, key, attempt, idempotent=idempotent, size=size, log=log)

    # -- writes -----------------------------------------------------------------------------------------------

    async def put(
        self,
        key: str,
        data: Body,
        *,
        metadata: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        tier: StorageTier = StorageTier.L3,
        if_absent: bool = False,
    ) -> None:
        """:meth:`tierstore.backends.base.StorageBackend.put` under the retry loop: metadata and tags checked
        (``Checked`` ones were built within the rules and pass as they are), then one attempt after another."""
        name = self._name(key)
        if not isinstance(data, bytes | bytearray | memoryview | Chunks):
            raise InvalidInputError(f"data for {key!r} must be bytes, not {type(data).__name__}")
        body = as_chunks(data)
        client = self.client
        checked = check_metadata(metadata)
        client.check_metadata(checked)
        tier = tier if type(tier) is StorageTier else StorageTier(tier)
        storage_class = self.tiers.class_of(tier)
        checked_tags = check_tags(tags)

        def attempt() -> Awaitable[object]:
            return client.put(
                name,
                body,
                metadata=checked,
                tags=checked_tags,
                storage_class=storage_class,
                tier=tier,
                if_absent=if_absent,
                calls=self.calls,
            )

        try:
            await self._run(f"put {key!r}", key, attempt, idempotent=if_absent, size=len(body))
        except ConflictError:
            if if_absent and await self._holds(key, name, body):
                return
            raise

    async def _holds(self, key: str, name: str, data: Chunks) -> bool:
        """Does the object hold exactly ``data``? By the cloud's digest where it keeps one, else by reading it."""
        try:
            answer = await self._run(f"check {key!r}", key, lambda: self.client.holds(name, data))
        except ObjectNotFoundError:
            return False
        if answer is not None:
            return answer
        stored = await self.get(key)
        return stored is not None and bytes(stored) == bytes(data)

    async def set_tier(self, key: str, tier: StorageTier, *, tags: Mapping[str, str] | None = None) -> None:
        name = self._name(key)
        tier = StorageTier(tier)
        storage_class = self.tiers.class_of(tier)
        merged = check_tags(tags)
        await self._run(
            f"set tier of {key!r}",
            key,
            lambda: self.client.set_class(name, storage_class, tier, merged, self.calls),
        )

    async def restore(self, key: str, *, days: int = 1, speed: RestoreSpeed = "standard") -> RestoreStatus:
        name = self._name(key)
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise InvalidInputError(f"restore days must be a positive integer, not {days!r}")
        if speed not in ("bulk", "standard", "expedited"):
            raise InvalidInputError(f"restore speed must be bulk, standard or expedited, not {speed!r}")
        info = await self.head(key)
        if info is None:
            raise ObjectNotFoundError(key)
        if info.restore is None:
            return RestoreStatus("not-archived")
        if info.restore.state != "archived":
            return info.restore
        await self._run(f"restore {key!r}", key, lambda: self.client.restore(name, days=days, speed=speed))
        after = await self.head(key)
        if after is None:
            raise ObjectNotFoundError(key)
        if after.restore is None or after.restore.state == "archived":
            return RestoreStatus("pending")  # accepted, not yet visible on the object
        return after.restore

    # -- reads ------------------------------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | bytearray | None:
        return await self._read(key, 0, None)

    async def get_range(self, key: str, start: int, length: int) -> bytes | bytearray | None:
        if isinstance(start, bool) or isinstance(length, bool) or not isinstance(start, int):
            raise InvalidInputError(f"invalid range start={start!r} length={length!r}")
        if not isinstance(length, int) or start < 0 or length < 0:
            raise InvalidInputError(f"invalid range start={start!r} length={length!r}")
        if length == 0:
            return None if await self.head(key) is None else b""
        return await self._read(key, start, length)

    async def _read(self, key: str, start: int, length: int | None) -> bytes | bytearray | None:
        name = self._name(key)
        try:
            data = await self._run(f"get {key!r}", key, lambda: self.client.get(name, start, length), size=length or 0)
            return bytes(data) if isinstance(data, memoryview) else data  # what StorageBackend.get promises
        except ObjectNotFoundError:
            return None
        except RangeNotSatisfiable:
            return b""
        except ArchivedPageError:
            info = await self.head(key)
            pending = info is not None and info.restore is not None and info.restore.state == "pending"
            raise ArchivedPageError(key, pending=pending) from None

    async def head(self, key: str) -> ObjectInfo | None:
        name = self._name(key)
        try:
            found = await self._run(f"head {key!r}", key, lambda: self.client.head(name))
        except ObjectNotFoundError:
            return None
        restore = found.restore
        return ObjectInfo(
            key=key,
            size=found.size,
            metadata=found.metadata,
            last_modified=found.last_modified,
            tier=self.tiers.tier_of(found.storage_class, found.recorded_tier),
            storage_class=found.storage_class,
            archived=restore is not None and restore.state in ("archived", "pending"),
            restore=restore,
            version=found.version,
        )

    def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        return self._list(prefix, None)

    def list_streamed(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        """``list``, its first page small (:data:`tierstore.backends.slices.STREAMED_LISTING`)."""
        return self._list(prefix, slices.FIRST_PAGE)

    async def _list(self, prefix: str, first_page: int | None) -> AsyncIterator[ListEntry]:
        if not isinstance(prefix, str) or not _LIST_PREFIX.fullmatch(prefix):
            raise InvalidInputError(f"invalid list prefix {prefix!r}")
        token: str | None = None
        limit = first_page
        while True:
            fetch = self._page_fetcher(self.prefix + prefix, token, limit)
            page, token = await self._run("list objects", None, fetch)
            limit = None
            for item in page:
                key = item.name[len(self.prefix) :]
                if item.name.startswith(self.prefix) and _KEY.fullmatch(key):
                    yield ListEntry(key, item.size, item.last_modified, item.version, item.storage_class)
            if not token:
                return

    def _page_fetcher(
        self, prefix: str, token: str | None, limit: int | None
    ) -> Callable[[], Awaitable[tuple[Sequence[Listed], str | None]]]:
        return lambda: self.client.list_page(prefix, token, limit)

    def usage(self, prefix: str) -> tuple[int, int] | None:
        return None

    # -- deletes ----------------------------------------------------------------------------------------------

    async def delete(self, key: str) -> bool:
        name = self._name(key)
        log = AttemptLog()
        try:
            await self._run(f"delete {key!r}", key, lambda: self.client.delete(name), log=log)
        except ObjectNotFoundError:
            return log.maybe_applied  # gone after an attempt that may have deleted it: most likely ours
        return True

    async def delete_if_version(self, key: str, version: str) -> bool:
        """Delete ``key`` only while its version token (ETag, generation) is ``version``, in one conditional request;
        False when it is not (changed, or gone). NotSupportedError where the client cannot send the condition."""
        conditional = getattr(self.client, "delete_if", None)
        if conditional is None:
            raise NotSupportedError(f"{self!r} cannot delete on a condition")
        name = self._name(key)
        log = AttemptLog()
        try:
            await self._run(f"delete {key!r} if unchanged", key, lambda: conditional(name, version), log=log)
        except ObjectNotFoundError:
            return log.maybe_applied  # gone after an attempt that may have deleted it: most likely ours
        except ConflictError:
            return False
        return True

    async def delete_many(self, keys: Sequence[str]) -> None:
        names = list(dict.fromkeys(self._name(key) for key in keys))
        failures: builtins.list[tuple[str, Failure]] = []
        limit = self.client.batch_limit
        for start in range(0, len(names), limit or len(names) or 1):
            chunk = names[start : start + limit] if limit else names
            if self._batches:
                found = await self._run(f"delete {len(chunk)} objects", None, self._batch_deleter(chunk))
                if found is not None:
                    failures.extend(found)
                    continue
                self._batches = False  # the service refuses batches: single deletes from now on
                logger.info("%r: the service refuses batch deletes; deleting one object at a time from now on", self)
            await bounded_gather((self._delete_one(name) for name in chunk), self.options.pool_size)
        if failures:
            raise self._batch_failure(failures)

    def _batch_deleter(
        self, names: builtins.list[str]
    ) -> Callable[[], Awaitable[builtins.list[tuple[str, Failure]] | None]]:
        return lambda: self.client.delete_batch(names)

    async def _delete_one(self, name: str) -> None:
        await self.delete(name[len(self.prefix) :])

    def _batch_failure(self, failures: builtins.list[tuple[str, Failure]]) -> TierstoreError:
        sample = [name[len(self.prefix) :] for name, _ in failures[:5]]
        codes = sorted({f.describe() for _, f in failures})
        message = f"could not delete {len(failures)} objects ({'; '.join(codes)}), e.g. {sample}"
        if any(f.kind == "denied" for _, f in failures):
            return AccessDeniedError(message)
        return BackendUnavailableError(message)

    async def aclose(self) -> None:
        await self.client.aclose()
