"""Google Cloud Storage backend on the official, synchronous ``google-cloud-storage`` library.

Contract (on top of :mod:`tierstore.backends.base`):

* Object name = ``prefix`` + key, in one bucket that must already exist. ``list`` strips the prefix and skips
  names that are not keys of this store (e.g. another store's objects nested under a longer prefix).
* Every library call runs in a bounded thread pool owned by the backend (``max_workers`` threads, one HTTP
  connection each), never on the event loop. One client, created on first use (credentials discovery may do
  I/O), is shared by all calls and closed by :meth:`GCSBackend.aclose`.
* Credentials: Application Default Credentials unless ``credentials`` is given; when ``STORAGE_EMULATOR_HOST``
  is set the library talks to that emulator with anonymous credentials.
* ``metadata`` -> custom object metadata, returned by ``head`` exactly as given. GCS has no object tags: tags
  are folded into custom metadata as ``tag-<name>`` and the tier asked for is kept as ``tierstore-tier``; the
  hyphen keeps both apart from the bridge's keys (``[a-z][a-z0-9]*``), and ``head`` hides them.
* Tier -> storage class: L0-L3 -> STANDARD, L4 -> ARCHIVE unless ``storage_classes`` says otherwise.
  ARCHIVE objects are read directly on GCS, so there is no "archive" capability: ``head().archived`` is
  always False and ``restore`` only checks that the object exists.
* ``put(if_absent=True)`` sends ``ifGenerationMatch=0``; a 412 is a ConflictError unless the stored MD5 equals
  ours (idempotent by content, as every backend: it may be our own attempt whose answer was lost).
  ``set_tier`` rewrites with ``ifGenerationMatch=<generation read just before>``.
* Retries use the library's ``DEFAULT_RETRY`` bounded by ``retry.deadline`` seconds, and only for idempotent
  calls: reads, lists, deletes and writes carrying a generation precondition. A plain overwriting ``put`` is
  sent once. Each HTTP attempt is bounded by ``timeout`` (seconds, or a ``(connect, read)`` pair).
* Uploads up to ``multipart_threshold`` bytes (at most 8 MiB, the library's limit) are one multipart request;
  larger ones are resumable uploads in ``chunk_size`` pieces.
* ``delete_many`` deletes one object per request (fake-gcs-server has no batch endpoint).
* The adapter keeps no mutable "latest" object: GCS allows about one write per second to one object name.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from tierstore.backends._optional import require
from tierstore.backends._retry import RetryPolicy
from tierstore.backends.base import (
    Buffer,
    Capability,
    ClosingContext,
    ListEntry,
    ObjectInfo,
    RestoreSpeed,
    RestoreStatus,
    check_key,
    check_metadata,
    check_tags,
    normalise_prefix,
)
from tierstore.backends.registry import Location, Scheme
from tierstore.enums import StorageTier
from tierstore.errors import (
    AccessDeniedError,
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    ObjectNotFoundError,
    TierstoreError,
)

if TYPE_CHECKING:
    from tierstore.config import TierstoreSettings

T = TypeVar("T")

DEFAULT_STORAGE_CLASSES: Mapping[StorageTier, str] = {
    StorageTier.L0: "STANDARD",
    StorageTier.L1: "STANDARD",
    StorageTier.L2: "STANDARD",
    StorageTier.L3: "STANDARD",
    StorageTier.L4: "ARCHIVE",
}
STORAGE_CLASSES = frozenset({"STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"})
MAX_MULTIPART_SIZE = 8 * 1024 * 1024
"""The library sends anything larger as a resumable upload whatever we ask."""
CHUNK_MULTIPLE = 256 * 1024
CUSTOM_METADATA_LIMIT = 8 * 1024
"""GCS's limit on custom metadata, keys and values together."""
TAG_PREFIX = "tag-"
TIER_KEY = "tierstore-tier"
CONTENT_TYPE = "application/octet-stream"
_LIST_PREFIX = re.compile(r"[A-Za-z0-9._-]*")
_KEY_NAME = re.compile(r"[A-Za-z0-9._-]+")
_TIER_CHANGE_ATTEMPTS = 3
_EXTRA = "gcs"
_PACKAGE = "google-cloud-storage"


class GCSBackend(ClosingContext):
    name = "gcs"
    persistent = True
    capabilities: frozenset[Capability] = frozenset({"tiers", "range_reads"})

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        project: str | None = None,
        credentials: Any = None,
        client_options: Mapping[str, Any] | Any = None,
        storage_classes: Mapping[StorageTier, str] | None = None,
        max_workers: int = 16,
        retry: RetryPolicy | None = None,
        timeout: float | tuple[float, float] = (10.0, 60.0),
        multipart_threshold: int = MAX_MULTIPART_SIZE,
        chunk_size: int = 32 * CHUNK_MULTIPLE,
    ) -> None:
        if not isinstance(bucket, str) or not bucket:
            raise ConfigurationError("GCSBackend needs a bucket name")
        if max_workers < 1:
            raise ConfigurationError(f"max_workers must be at least 1, not {max_workers}")
        if not 0 <= multipart_threshold <= MAX_MULTIPART_SIZE:
            raise ConfigurationError(f"multipart_threshold must be between 0 and {MAX_MULTIPART_SIZE} bytes")
        if chunk_size <= 0 or chunk_size % CHUNK_MULTIPLE:
            raise ConfigurationError(f"chunk_size must be a positive multiple of {CHUNK_MULTIPLE} bytes")
        self.bucket_name = bucket
        self.prefix = normalise_prefix(prefix)
        self.storage_classes = _merge_storage_classes(storage_classes)
        self.retry_policy = retry or RetryPolicy()
        self.timeout = _check_timeout(timeout)
        self.max_workers = max_workers
        self.multipart_threshold = multipart_threshold
        self.chunk_size = chunk_size
        self._project = project
        self._credentials = credentials
        self._client_options = client_options
        self._executor: ThreadPoolExecutor | None = None
        self._client: Any = None
        self._bucket: Any = None
        self._sdk: Any = None
        self._client_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"GCSBackend(bucket={self.bucket_name!r}, prefix={self.prefix!r})"

    # ----------------------------------------------------------------------------------------- plumbing

    async def _run(self, call: Callable[[], T]) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="tierstore-gcs")
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _open_bucket(self) -> Any:
        if self._bucket is not None:
            return self._bucket
        async with self._client_lock:
            if self._bucket is None:
                self._sdk = _load_sdk()
                # Discovering Application Default Credentials may query the metadata server: off the loop.
                self._client = await self._guarded("connect", None, lambda: self._create_client(self._sdk))
                self._bucket = self._client.bucket(self.bucket_name)
        return self._bucket

    def _create_client(self, sdk: _Sdk) -> Any:
        client = sdk.storage.Client(
            project=self._project, credentials=self._credentials, client_options=self._client_options
        )
        # One pooled connection per worker thread, instead of the library's 10 shared by all of them.
        adapter = sdk.requests_adapters.HTTPAdapter(pool_connections=1, pool_maxsize=self.max_workers)
        client._http.mount("https://", adapter)
        client._http.mount("http://", adapter)
        return client

    async def _guarded(self, action: str, key: str | None, call: Callable[[], T]) -> T:
        """Run a library call in the pool, translating whatever it raises into tierstore's errors."""
        try:
            return await self._run(call)
        except TierstoreError:
            raise
        except Exception as exc:
            raise _translate(exc, self._sdk, action, key) from exc

    def _retry(self, on_error: Callable[[Exception], None] | None = None) -> Any:
        """The library's default retry (its transient errors, exponential backoff), bounded by our policy."""
        default = self._sdk.storage_retry.DEFAULT_RETRY
        policy = self.retry_policy
        return type(default)(
            # The predicate is the library's own list of transient errors; Retry has no public getter for it.
            predicate=default._predicate,
            initial=policy.base_delay,
            maximum=policy.max_delay,
            multiplier=2.0,
            timeout=policy.deadline,
            on_error=on_error,
        )

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    # ----------------------------------------------------------------------------------------- writes

    async def put(
        self,
        key: str,
        data: Buffer,
        *,
        metadata: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        tier: StorageTier = StorageTier.L3,
        if_absent: bool = False,
    ) -> None:
        name = self._name(key)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidInputError(f"data for {key!r} must be bytes, not {type(data).__name__}")
        custom = _custom_metadata(check_metadata(metadata), check_tags(tags), StorageTier(tier))
        storage_class = self.storage_classes[StorageTier(tier)]
        payload = bytes(data)
        bucket = await self._open_bucket()
        if not if_absent:
            # An unconditional overwrite is not idempotent against other writers: sent once, never retried.
            await self._guarded_upload(key, lambda: self._upload(bucket, name, payload, custom, storage_class))
            return
        retry = self._retry()
        try:
            await self._guarded_upload(
                key,
                lambda: self._upload(bucket, name, payload, custom, storage_class, if_generation_match=0, retry=retry),
            )
        except ConflictError:
            # Idempotent by content, like every backend: "already exists" with our bytes may be our own attempt.
            if not await self._stored_md5_matches(bucket, name, key, payload):
                raise

    async def _guarded_upload(self, key: str, upload: Callable[[], None]) -> None:
        try:
            await self._guarded("put", key, upload)
        except ObjectNotFoundError as exc:
            # An upload only gets 404 when the bucket itself is missing.
            raise ConfigurationError(f"GCS bucket {self.bucket_name!r} does not exist") from exc

    def _upload(
        self,
        bucket: Any,
        name: str,
        data: bytes,
        custom: dict[str, str],
        storage_class: str,
        *,
        if_generation_match: int | None = None,
        retry: Any = None,
    ) -> None:
        blob = bucket.blob(name, chunk_size=self.chunk_size)
        blob.metadata = custom
        blob.storage_class = storage_class
        multipart = len(data) <= self.multipart_threshold
        blob.upload_from_file(
            io.BytesIO(data),
            # Without a size the library streams a resumable upload; with one (at most 8 MiB) a multipart one.
            size=len(data) if multipart else None,
            content_type=CONTENT_TYPE,
            if_generation_match=if_generation_match,
            timeout=self.timeout,
            retry=retry,
        )

    async def _stored_md5_matches(self, bucket: Any, name: str, key: str, data: bytes) -> bool:
        blob = await self._guarded(
            "head", key, lambda: bucket.get_blob(name, timeout=self.timeout, retry=self._retry())
        )
        return blob is not None and blob.md5_hash == _md5_base64(data)

    async def set_tier(self, key: str, tier: StorageTier, *, tags: Mapping[str, str] | None = None) -> None:
        name = self._name(key)
        tier = StorageTier(tier)
        bucket = await self._open_bucket()
        for attempt in range(_TIER_CHANGE_ATTEMPTS):
            try:
                await self._guarded("set_tier", key, lambda: self._change_tier(bucket, name, key, tier))
                return
            except ConflictError:
                # The object changed between our read and our rewrite: read its new generation and try again.
                if attempt + 1 == _TIER_CHANGE_ATTEMPTS:
                    raise

    def _change_tier(self, bucket: Any, name: str, key: str, tier: StorageTier) -> None:
        blob = bucket.get_blob(name, timeout=self.timeout, retry=self._retry())
        if blob is None:
            raise ObjectNotFoundError(key)
        current = dict(blob.metadata or {})
        wanted = dict(current)
        wanted[TIER_KEY] = tier.value
        if TAG_PREFIX + "tier" in wanted:
            wanted[TAG_PREFIX + "tier"] = tier.value
        new_class = self.storage_classes[tier]
        if blob.storage_class != new_class:
            # The rewrite sends the blob's resource, so the new metadata lands in the same single write.
            blob.metadata = wanted
            blob.update_storage_class(
                new_class, if_generation_match=blob.generation, timeout=self.timeout, retry=self._retry()
            )
        elif wanted != current:
            blob.metadata = wanted
            blob.patch(if_metageneration_match=blob.metageneration, timeout=self.timeout, retry=self._retry())

    async def delete(self, key: str) -> bool:
        name = self._name(key)
        bucket = await self._open_bucket()
        try:
            await self._guarded(
                "delete", key, lambda: bucket.delete_blob(name, timeout=self.timeout, retry=self._retry())
            )
        except ObjectNotFoundError:
            return False
        return True

    async def delete_many(self, keys: Sequence[str]) -> None:
        for key in keys:
            check_key(key)
        # One request per object, as many in flight as the pool has threads (no batch endpoint on fake-gcs).
        await asyncio.gather(*(self.delete(key) for key in keys))

    async def restore(self, key: str, *, days: int = 1, speed: RestoreSpeed = "standard") -> RestoreStatus:
        """GCS reads every storage class directly, ARCHIVE included: nothing to restore, so this is a no-op
        returning ``RestoreStatus("not-archived")`` once it has checked that the object exists (else
        ObjectNotFoundError)."""
        if await self.head(key) is None:
            raise ObjectNotFoundError(key)
        return RestoreStatus("not-archived")

    # ----------------------------------------------------------------------------------------- reads

    async def get(self, key: str) -> bytes | None:
        name = self._name(key)
        bucket = await self._open_bucket()
        try:
            data: bytes = await self._guarded(
                "get",
                key,
                lambda: bucket.blob(name).download_as_bytes(timeout=self.timeout, retry=self._retry()),
            )
        except ObjectNotFoundError:
            return None
        return data

    async def get_range(self, key: str, start: int, length: int) -> bytes | None:
        name = self._name(key)
        if start < 0 or length < 0:
            raise InvalidInputError(f"invalid range start={start} length={length} for {key!r}")
        if length == 0:
            return None if await self.head(key) is None else b""
        bucket = await self._open_bucket()

        def download() -> bytes | None:
            blob = bucket.blob(name)
            try:
                data: bytes = blob.download_as_bytes(
                    start=start, end=start + length - 1, timeout=self.timeout, retry=self._retry()
                )
            except self._sdk.api_exceptions.RequestRangeNotSatisfiable:
                return b""  # the object exists but ends before ``start``
            return data

        try:
            return await self._guarded("get_range", key, download)
        except ObjectNotFoundError:
            return None

    async def head(self, key: str) -> ObjectInfo | None:
        name = self._name(key)
        bucket = await self._open_bucket()
        blob = await self._guarded(
            "head", key, lambda: bucket.get_blob(name, timeout=self.timeout, retry=self._retry())
        )
        if blob is None:
            return None
        custom = dict(blob.metadata or {})
        return ObjectInfo(
            key=key,
            size=int(blob.size or 0),
            metadata=_user_metadata(custom),
            last_modified=blob.updated,
            tier=self._tier_of(blob.storage_class, custom.get(TIER_KEY)),
            storage_class=blob.storage_class,
            archived=False,
            restore=None,
        )

    def _tier_of(self, storage_class: str | None, recorded: str | None) -> StorageTier | None:
        """The tier asked for when it still matches the class (lifecycle rules may have moved the object),
        else the coldest tier the configured mapping sends to that class."""
        try:
            tier = StorageTier(recorded)
        except ValueError:
            pass
        else:
            if self.storage_classes[tier] == storage_class:
                return tier
        matches = [tier for tier, cls in self.storage_classes.items() if cls == storage_class]
        return max(matches, key=list(StorageTier).index) if matches else None

    async def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        if not isinstance(prefix, str) or not _LIST_PREFIX.fullmatch(prefix):
            raise InvalidInputError(f"invalid list prefix {prefix!r}")
        bucket = await self._open_bucket()
        pages: Iterator[Any] = await self._guarded("list", None, lambda: self._pages(bucket, self.prefix + prefix))
        while True:
            entries = await self._guarded("list", None, lambda: _next_entries(pages, self.prefix))
            if entries is None:
                return
            for entry in entries:
                yield entry

    def _pages(self, bucket: Any, full_prefix: str) -> Iterator[Any]:
        blobs = self._client.list_blobs(
            bucket, prefix=full_prefix, page_size=1000, timeout=self.timeout, retry=self._retry()
        )
        pages: Iterator[Any] = blobs.pages
        return pages

    def usage(self, prefix: str) -> tuple[int, int] | None:
        return None

    # ----------------------------------------------------------------------------------------- lifecycle

    async def aclose(self) -> None:
        client, executor = self._client, self._executor
        self._client = self._bucket = self._executor = None
        if executor is None:
            return
        if client is not None:
            await asyncio.get_running_loop().run_in_executor(executor, client.close)
        executor.shutdown(wait=False)


# --------------------------------------------------------------------------------------------- helpers


class _Sdk:
    """The library modules the adapter uses, imported on first use."""

    def __init__(self) -> None:
        self.storage = require("google.cloud.storage", extra=_EXTRA, package=_PACKAGE)
        self.storage_retry = require("google.cloud.storage.retry", extra=_EXTRA, package=_PACKAGE)
        self.storage_exceptions = require("google.cloud.storage.exceptions", extra=_EXTRA, package=_PACKAGE)
        self.api_exceptions = require("google.api_core.exceptions", extra=_EXTRA, package=_PACKAGE)
        self.auth_exceptions = require("google.auth.exceptions", extra=_EXTRA, package=_PACKAGE)
        self.requests_adapters = require("requests.adapters", extra=_EXTRA, package=_PACKAGE)


def _load_sdk() -> _Sdk:
    return _Sdk()


def _merge_storage_classes(overrides: Mapping[StorageTier, str] | None) -> dict[StorageTier, str]:
    merged = dict(DEFAULT_STORAGE_CLASSES)
    for tier, storage_class in (overrides or {}).items():
        if storage_class not in STORAGE_CLASSES:
            raise ConfigurationError(
                f"unknown GCS storage class {storage_class!r} for {tier}; expected one of {sorted(STORAGE_CLASSES)}"
            )
        merged[StorageTier(tier)] = storage_class
    return merged


def _check_timeout(timeout: float | tuple[float, float]) -> float | tuple[float, float]:
    parts = timeout if isinstance(timeout, tuple) else (timeout,)
    if len(parts) not in (1, 2) or any(not isinstance(p, int | float) or p <= 0 for p in parts):
        raise ConfigurationError(f"timeout must be positive seconds or a (connect, read) pair, not {timeout!r}")
    return timeout


def _custom_metadata(metadata: dict[str, str], tags: dict[str, str], tier: StorageTier) -> dict[str, str]:
    custom = dict(metadata)
    custom.update({TAG_PREFIX + name: value for name, value in tags.items()})
    custom[TIER_KEY] = tier.value
    size = sum(len(name) + len(value) for name, value in custom.items())
    if size > CUSTOM_METADATA_LIMIT:
        raise InvalidInputError(f"metadata and tags take {size} bytes, over GCS's {CUSTOM_METADATA_LIMIT}")
    return custom


def _user_metadata(custom: Mapping[str, str]) -> dict[str, str]:
    return {
        name: value
        for name, value in custom.items()
        if not name.startswith(TAG_PREFIX) and name != TIER_KEY and value is not None
    }


def _next_entries(pages: Iterator[Any], store_prefix: str) -> list[ListEntry] | None:
    """The keys on the next page of a listing (None after the last page), without the store's prefix."""
    page = next(pages, None)
    if page is None:
        return None
    entries = []
    for blob in page:
        key = blob.name[len(store_prefix) :]
        if _KEY_NAME.fullmatch(key):
            entries.append(ListEntry(key, int(blob.size or 0), blob.updated))
    return entries


def _md5_base64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")  # noqa: S324 - GCS's own md5Hash


def _translate(exc: Exception, sdk: _Sdk | None, action: str, key: str | None) -> TierstoreError:
    """Map a library exception to tierstore's taxonomy. Messages carry the action, key and status only."""
    where = f"GCS {action}" + (f" of {key!r}" if key is not None else "")
    if sdk is None:
        return TierstoreError(f"{where} failed: {type(exc).__name__}")
    api = sdk.api_exceptions
    auth = sdk.auth_exceptions
    if isinstance(exc, api.RetryError):
        return BackendUnavailableError(f"{where} kept failing until the retry deadline: {_describe(exc.cause)}")
    if isinstance(exc, api.NotFound):
        return ObjectNotFoundError(key) if key is not None else ConfigurationError(f"{where}: bucket not found")
    if isinstance(exc, api.PreconditionFailed) and key is not None:
        return ConflictError(key)
    if isinstance(exc, api.Forbidden | api.Unauthorized | auth.RefreshError):
        return AccessDeniedError(f"{where} was refused: {_describe(exc)}")
    if isinstance(exc, auth.DefaultCredentialsError):
        return ConfigurationError(f"{where}: no Google credentials found (Application Default Credentials)")
    if isinstance(exc, sdk.storage_exceptions.DataCorruption):
        return IntegrityError(f"{where}: downloaded bytes fail their checksum", key=key)
    if isinstance(exc, api.BadRequest):
        return InvalidInputError(f"{where} was rejected: {_describe(exc)}")
    if _is_transient(exc, sdk):
        return BackendUnavailableError(f"{where} failed: {_describe(exc)}")
    return TierstoreError(f"{where} failed: {_describe(exc)}")


def _is_transient(exc: BaseException, sdk: _Sdk) -> bool:
    if isinstance(exc, ConnectionError | TimeoutError | OSError):
        return True
    if isinstance(exc, sdk.api_exceptions.GoogleAPICallError):
        return exc.code is not None and (exc.code >= 500 or exc.code in (408, 429))
    predicate = sdk.storage_retry.DEFAULT_RETRY._predicate
    return bool(predicate(exc))


def _describe(exc: BaseException | None) -> str:
    code = getattr(exc, "code", None)
    return f"{type(exc).__name__}" + (f" (HTTP {code})" if isinstance(code, int) else "")


def from_url(location: Location, settings: TierstoreSettings) -> GCSBackend:
    return GCSBackend(
        location.container,
        prefix=location.path or settings.prefix,
        project=settings.gcs_project,
        storage_classes=settings.storage_classes or None,
        retry=settings.retry_policy(),
        timeout=(settings.connect_timeout, settings.read_timeout),
    )


SCHEME = Scheme("gs", from_url, container="bucket")
