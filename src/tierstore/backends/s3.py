"""Amazon S3 (and S3-compatible stores) through aioboto3.

Contract, on top of :mod:`tierstore.backends.base`:

* Object name = ``prefix`` + key, in one bucket. ``list`` strips the prefix again.
* ``metadata`` becomes S3 user metadata (``x-amz-meta-*``); ``tags`` become object tags (at most 10).
* A tier is a storage class: L0-L3 -> STANDARD and L4 -> GLACIER unless ``storage_classes`` says otherwise.
  The tier itself is kept in the user-metadata entry ``tierstore-tier`` (hidden from ``head().metadata``);
  when the class no longer matches it (changed outside tierstore), ``head`` maps the class back to the highest
  tier configured with it.
  GLACIER and DEEP_ARCHIVE are archive classes: a ``get`` raises ArchivedPageError until ``restore`` brings a
  copy back; GLACIER_IR and the rest read at once.
* ``set_tier`` copies the object onto itself with the new class and tier (metadata otherwise kept) and sets
  its ``tier`` tag.
* ``put(if_absent=True)`` sends ``If-None-Match: *`` (single PUT or CompleteMultipartUpload). When it meets an
  existing object it compares the stored ETag (or CRC32 checksum) with our bytes and takes a match as done:
  that may be its own earlier attempt, even on the first try, since aiohttp resends a PUT by itself after a
  dropped keep-alive connection.
* Bodies above ``multipart_threshold`` go up as a multipart upload in ``multipart_chunk`` parts, uploaded
  concurrently (``multipart_concurrency``), aborted on any failure.
* botocore's own retries are off; transient failures (5xx, throttling, 409 ConditionalRequestConflict, resets,
  timeouts, truncated bodies) are retried by ``retry`` and then raise BackendUnavailableError.
* Credentials come from the arguments, else the standard chain (environment, ``AWS_PROFILE``, config files,
  instance roles); the endpoint from ``endpoint_url``, else ``AWS_ENDPOINT_URL``, else AWS.
* ``sse="AES256"`` or ``"aws:kms"`` (with ``kms_key_id``) is sent on every put, copy and multipart create.
* The constructor does no I/O; one client is created on first use and closed by ``aclose``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import socket
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote, urlsplit

from tierstore.backends._optional import require
from tierstore.backends._retry import RetryPolicy, retry
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
    ArchivedPageError,
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    ObjectNotFoundError,
    TierstoreError,
)

if TYPE_CHECKING:
    from tierstore.config import TierstoreSettings

T = TypeVar("T")

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PARTS = 10_000
DELETE_BATCH = 1_000
TIER_TAG = "tier"
TIER_MARKER = "tierstore-tier"
"""User-metadata name recording the tier; the hyphen keeps it apart from every name check_metadata allows."""

AddressingStyle = Literal["auto", "virtual", "path"]
ServerSideEncryption = Literal["AES256", "aws:kms"]

DEFAULT_STORAGE_CLASSES: Mapping[StorageTier, str] = {
    StorageTier.L0: "STANDARD",
    StorageTier.L1: "STANDARD",
    StorageTier.L2: "STANDARD",
    StorageTier.L3: "STANDARD",
    StorageTier.L4: "GLACIER",
}
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
_RESTORE_TIERS: Mapping[str, str] = {"bulk": "Bulk", "standard": "Standard", "expedited": "Expedited"}

_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
_TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequests",
        "TooManyRequestsException",
        "RequestTimeout",
        "ConditionalRequestConflict",
        "OperationAborted",
    }
)
# Answers saying the request was refused before it took effect: a retry after them cannot meet our own write.
_REFUSED_CODES = frozenset(_TRANSIENT_CODES - {"InternalError", "RequestTimeout"})
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_DENIED_CODES = frozenset(
    {"AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
)
_RESTORE_HEADER = re.compile(r'ongoing-request="(?P<ongoing>\w+)"(?:,\s*expiry-date="(?P<expiry>[^"]+)")?')
_LIST_PREFIX = re.compile(r"[A-Za-z0-9._-]*")


@cache
def _botocore_exceptions() -> ModuleType:
    return require("botocore.exceptions", extra="s3", package="aioboto3")


def _error_code(exc: BaseException) -> tuple[int, str]:
    """HTTP status and S3 error code of a botocore ClientError, (0, "") for anything else."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return 0, ""
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    code = str(response.get("Error", {}).get("Code") or "")
    return status, code


def _is_network_error(exc: BaseException) -> bool:
    errors = _botocore_exceptions()
    if isinstance(exc, errors.SSLError | errors.ProxyConnectionError):
        return False
    if isinstance(exc, errors.ConnectionError | errors.HTTPClientError | errors.IncompleteReadError):
        return True
    # Body reads in aiobotocore can surface aiohttp's own errors: they derive from these builtins or aiohttp.
    module = type(exc).__module__
    return isinstance(exc, TimeoutError | ConnectionError) or module.startswith("aiohttp")


def is_transient(exc: BaseException) -> bool:
    status, code = _error_code(exc)
    if status or code:
        return status in _TRANSIENT_STATUS or code in _TRANSIENT_CODES
    return _is_network_error(exc)


def _outcome_unknown(exc: BaseException) -> bool:
    """Might the failed request have taken effect on the server anyway?"""
    status, code = _error_code(exc)
    if status or code:
        return status in _TRANSIENT_STATUS and code not in _REFUSED_CODES
    return _is_network_error(exc) and not _never_sent(exc)


def _never_sent(exc: BaseException) -> bool:
    """Did the request certainly not reach the server? Only a failed connect says so.

    aiobotocore raises EndpointConnectionError for a failed connect, but also for a connection reset after the
    request went out (aiohttp's ClientOSError), so the wrapped error decides. Guessing "unknown" is always safe:
    it only costs a HEAD comparing the stored bytes with ours.
    """
    errors = _botocore_exceptions()
    if isinstance(exc, errors.ConnectTimeoutError):
        return True
    if not isinstance(exc, errors.EndpointConnectionError):
        return False
    import aiohttp  # aiobotocore's own transport, so present whenever this adapter runs

    cause = getattr(exc, "kwargs", {}).get("error")
    return isinstance(cause, aiohttp.ClientConnectorError | socket.gaierror)


def _md5_etag(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _multipart_etag(data: bytes, chunk: int) -> str:
    digests = b"".join(
        hashlib.md5(data[i : i + chunk], usedforsecurity=False).digest() for i in range(0, len(data), chunk)
    )
    return f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{-(-len(data) // chunk)}"


def _crc32_checksum(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode("ascii")


def _encode_tags(tags: Mapping[str, str]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in tags.items())


def _parse_restore(header: str | None) -> RestoreStatus:
    """``ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"`` -> RestoreStatus."""
    match = _RESTORE_HEADER.search(header or "")
    if match is None:
        return RestoreStatus("archived")
    if match["ongoing"] == "true":
        return RestoreStatus("pending")
    expiry = parsedate_to_datetime(match["expiry"]) if match["expiry"] else None
    if expiry is not None and expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=UTC)
    if expiry is not None and expiry <= datetime.now(UTC):
        return RestoreStatus("archived")
    return RestoreStatus("restored", expiry)


class _RestartUpload(TierstoreError):
    """Internal: the multipart upload must start over (a conditional complete met a concurrent write)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"upload of {key!r} must start over")


@dataclass
class _AttemptLog:
    """Remembers whether an earlier attempt of a create-if-absent may have written the object."""

    maybe_written: bool = False

    def note(self, exc: BaseException) -> None:
        if is_transient(exc) and _outcome_unknown(exc):
            self.maybe_written = True


class S3Backend(ClosingContext):
    name = "s3"
    persistent = True

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        region: str | None = None,
        endpoint_url: str | None = None,
        profile: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        addressing_style: AddressingStyle | None = None,
        storage_classes: Mapping[StorageTier, str] | None = None,
        sse: ServerSideEncryption | None = None,
        kms_key_id: str | None = None,
        multipart_threshold: int = 64 * MiB,
        multipart_chunk: int = 16 * MiB,
        multipart_concurrency: int = 8,
        max_pool_connections: int = 64,
        retry: RetryPolicy | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
    ) -> None:
        if not isinstance(bucket, str) or not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
            raise ConfigurationError(f"invalid S3 bucket name {bucket!r}")
        if sse not in (None, "AES256", "aws:kms"):
            raise ConfigurationError(f"sse must be 'AES256' or 'aws:kms', not {sse!r}")
        if kms_key_id and sse != "aws:kms":
            raise ConfigurationError("kms_key_id needs sse='aws:kms'")
        if not MIN_PART_SIZE <= multipart_chunk <= MAX_PART_SIZE:
            raise ConfigurationError(f"multipart_chunk must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes")
        if multipart_threshold < 1 or multipart_concurrency < 1 or max_pool_connections < 1:
            raise ConfigurationError("multipart_threshold, multipart_concurrency and max_pool_connections must be >= 1")
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ConfigurationError("timeouts must be positive")
        self.bucket = bucket
        self.prefix = normalise_prefix(prefix)
        self.storage_classes: dict[StorageTier, str] = {**DEFAULT_STORAGE_CLASSES, **(storage_classes or {})}
        caps: set[Capability] = {"tiers", "tags", "range_reads"}
        if ARCHIVE_CLASSES & set(self.storage_classes.values()):
            caps.add("archive")
        self.capabilities: frozenset[Capability] = frozenset(caps)
        self._region = region
        self._endpoint_url = endpoint_url
        self._profile = profile
        self._credentials = (access_key_id, secret_access_key, session_token)
        self._addressing_style = addressing_style
        self._sse = sse
        self._kms_key_id = kms_key_id
        self._multipart_threshold = multipart_threshold
        self._multipart_chunk = multipart_chunk
        self._multipart_concurrency = multipart_concurrency
        self._max_pool_connections = max_pool_connections
        self._retry = retry or RetryPolicy()
        self._timeouts = (connect_timeout, read_timeout)
        self._client: Any = None
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self._client_lock = asyncio.Lock()

    def __repr__(self) -> str:
        endpoint = ""
        if self._endpoint_url:
            parts = urlsplit(self._endpoint_url)
            endpoint = f", endpoint='{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}'"
        return f"S3Backend(bucket={self.bucket!r}, prefix={self.prefix!r}{endpoint})"

    # -- client -------------------------------------------------------------------------------------------

    async def sdk_client(self) -> Any:
        """The underlying aiobotocore S3 client (made on first use), e.g. to register botocore event hooks."""
        if self._client is not None:
            return self._client
        async with self._client_lock:
            if self._client is None:
                self._client = await self._open_client()
        return self._client

    async def _open_client(self) -> Any:
        aioboto3 = require("aioboto3", extra="s3", package="aioboto3")
        config_module = require("aiobotocore.config", extra="s3", package="aioboto3")
        access_key, secret_key, token = self._credentials
        connect_timeout, read_timeout = self._timeouts
        config = config_module.AioConfig(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=self._max_pool_connections,
            retries={"total_max_attempts": 1, "mode": "standard"},
            s3={"addressing_style": self._addressing_style} if self._addressing_style else None,
        )
        options: dict[str, Any] = {"config": config}
        if self._endpoint_url:
            options["endpoint_url"] = self._endpoint_url
        stack = contextlib.AsyncExitStack()
        try:
            session = aioboto3.Session(
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                aws_session_token=token,
                region_name=self._region,
                profile_name=self._profile,
            )
            client = await stack.enter_async_context(session.client("s3", **options))
        except Exception as exc:
            await stack.aclose()
            raise self._translate(exc, "open the S3 client", None) from exc
        self._exit_stack = stack
        return client

    async def aclose(self) -> None:
        stack, self._exit_stack, self._client = self._exit_stack, None, None
        if stack is not None:
            with contextlib.suppress(Exception):
                await stack.aclose()

    # -- error handling -----------------------------------------------------------------------------------

    async def _call(
        self,
        describe: str,
        key: str | None,
        operation: Callable[[Any], Awaitable[T]],
        log: _AttemptLog | None = None,
    ) -> T:
        """Run one S3 operation with tierstore's bounded retries and translate whatever it raises."""
        client = await self.sdk_client()

        async def attempt() -> T:
            try:
                return await operation(client)
            except Exception as exc:
                if log is not None:
                    log.note(exc)
                raise

        try:
            return await retry(attempt, policy=self._retry, is_transient=is_transient, describe=describe)
        except TierstoreError:
            raise
        except Exception as exc:
            raise self._translate(exc, describe, key) from exc

    def _translate(self, exc: Exception, describe: str, key: str | None) -> TierstoreError:
        status, code = _error_code(exc)
        if status or code:
            return self._translate_client_error(status, code, describe, key)
        errors = _botocore_exceptions()
        if isinstance(exc, errors.ParamValidationError):
            return InvalidInputError(f"{describe}: the request was refused before sending ({type(exc).__name__})")
        if isinstance(exc, errors.NoCredentialsError | errors.PartialCredentialsError):
            return AccessDeniedError(f"{describe}: no usable AWS credentials were found")
        if isinstance(exc, errors.ProfileNotFound | errors.NoRegionError | errors.InvalidConfigError):
            return ConfigurationError(f"{describe}: {type(exc).__name__}")
        return BackendUnavailableError(f"{describe} failed: {type(exc).__name__}")

    def _translate_client_error(self, status: int, code: str, describe: str, key: str | None) -> TierstoreError:
        what = f"{describe} failed: HTTP {status} {code}".rstrip()
        if code == "InvalidObjectState" and key is not None:
            return ArchivedPageError(key)
        if code == "NoSuchBucket":
            return ConfigurationError(f"{describe}: bucket {self.bucket!r} does not exist")
        if code in _NOT_FOUND_CODES and key is not None:
            return ObjectNotFoundError(key)
        if (status == 412 or code == "PreconditionFailed") and key is not None:
            return ConflictError(key)
        if status == 403 or code in _DENIED_CODES:
            return AccessDeniedError(what)
        if status == 400 or code in {
            "InvalidArgument",
            "InvalidTag",
            "InvalidRequest",
            "InvalidStorageClass",
        }:
            return InvalidInputError(what)
        return BackendUnavailableError(what)

    # -- names --------------------------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _encryption(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self._sse:
            params["ServerSideEncryption"] = self._sse
        if self._kms_key_id:
            params["SSEKMSKeyId"] = self._kms_key_id
        return params

    def _storage_class(self, tier: StorageTier) -> str:
        try:
            return self.storage_classes[StorageTier(tier)]
        except (KeyError, ValueError):
            raise InvalidInputError(f"no storage class configured for tier {tier!r}") from None

    def _tier_of(self, storage_class: str, marker: str | None) -> StorageTier | None:
        recorded = next((tier for tier in StorageTier if tier.value == marker), None)
        if recorded is not None and self.storage_classes.get(recorded) == storage_class:
            return recorded
        tiers = [tier for tier, name in self.storage_classes.items() if name == storage_class]
        return max(tiers, key=list(StorageTier).index) if tiers else None

    # -- writes -------------------------------------------------------------------------------------------

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
        data = bytes(data)
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": name,
            "Metadata": {**check_metadata(metadata), TIER_MARKER: StorageTier(tier).value},
            "StorageClass": self._storage_class(tier),
            **self._encryption(),
        }
        checked_tags = check_tags(tags)
        if checked_tags:
            params["Tagging"] = _encode_tags(checked_tags)
        if if_absent:
            params["IfNoneMatch"] = "*"
        log = _AttemptLog()
        try:
            if len(data) > self._multipart_threshold:
                await self._put_multipart(key, data, params, log)
            else:
                await self._call(f"put {key!r}", key, lambda c: c.put_object(Body=data, **params), log)
        except ConflictError:
            if if_absent and await self._holds(key, data):
                return  # idempotent by content: perhaps our own attempt, resent by aiohttp itself
            raise

    async def _put_multipart(self, key: str, data: bytes, params: dict[str, Any], log: _AttemptLog) -> None:
        # S3's answer to a conditional CompleteMultipartUpload that raced another write is 409
        # ConditionalRequestConflict, after which the upload must be started again from the beginning.
        for _ in range(self._retry.max_attempts):
            try:
                await self._upload_multipart_once(key, data, params, log)
                return
            except _RestartUpload:
                continue
        raise BackendUnavailableError(f"upload of {key!r} kept conflicting with concurrent writes")

    async def _upload_multipart_once(self, key: str, data: bytes, params: dict[str, Any], log: _AttemptLog) -> None:
        create = {k: v for k, v in params.items() if k != "IfNoneMatch"}
        created = await self._call(f"start upload of {key!r}", key, lambda c: c.create_multipart_upload(**create))
        upload_id = created["UploadId"]
        try:
            parts = await self._upload_parts(key, data, upload_id)
            complete: dict[str, Any] = {
                "Bucket": self.bucket,
                "Key": params["Key"],
                "UploadId": upload_id,
                "MultipartUpload": {"Parts": parts},
            }
            if "IfNoneMatch" in params:
                complete["IfNoneMatch"] = "*"

            async def finish(client: Any) -> bool:
                try:
                    await client.complete_multipart_upload(**complete)
                except Exception as exc:
                    code = _error_code(exc)[1]
                    if code == "ConditionalRequestConflict":
                        raise _RestartUpload(key) from exc
                    if code == "NoSuchUpload" and log.maybe_written:
                        return False  # an earlier attempt of ours may have completed it
                    raise
                return True

            completed = await self._call(f"complete upload of {key!r}", key, finish, log)
        except BaseException:
            await self._abort_upload(key, params["Key"], upload_id)
            raise
        if not completed and not await self._holds(key, data):
            raise BackendUnavailableError(f"the upload of {key!r} vanished before it was completed")

    async def _upload_parts(self, key: str, data: bytes, upload_id: str) -> list[dict[str, Any]]:
        chunk = max(self._multipart_chunk, -(-len(data) // MAX_PARTS))
        limit = asyncio.Semaphore(self._multipart_concurrency)
        view = memoryview(data)

        async def upload(number: int, start: int) -> dict[str, Any]:
            body = bytes(view[start : start + chunk])
            async with limit:
                answer = await self._call(
                    f"upload part {number} of {key!r}",
                    key,
                    lambda c: c.upload_part(
                        Bucket=self.bucket,
                        Key=self._name(key),
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=body,
                    ),
                )
            return {"PartNumber": number, "ETag": answer["ETag"]}

        tasks = [upload(n, start) for n, start in enumerate(range(0, len(data), chunk), start=1)]
        return list(await asyncio.gather(*tasks))

    async def _abort_upload(self, key: str, name: str, upload_id: str) -> None:
        with contextlib.suppress(TierstoreError):
            await self._call(
                f"abort upload of {key!r}",
                key,
                lambda c: c.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id),
            )

    async def _holds(self, key: str, data: bytes) -> bool:
        """Does the stored object hold exactly ``data``? (ETag is the MD5 unless SSE-KMS; then CRC32.)"""
        try:
            answer = await self._call(
                f"head {key!r}",
                key,
                lambda c: c.head_object(Bucket=self.bucket, Key=self._name(key), ChecksumMode="ENABLED"),
            )
        except ObjectNotFoundError:
            return False
        if int(answer.get("ContentLength", -1)) != len(data):
            return False
        etag = str(answer.get("ETag", "")).strip('"')
        chunk = max(self._multipart_chunk, -(-len(data) // MAX_PARTS))
        expected = _multipart_etag(data, chunk) if "-" in etag else _md5_etag(data)
        if etag == expected:
            return True
        stored_crc = answer.get("ChecksumCRC32")
        return stored_crc is not None and stored_crc == _crc32_checksum(data)

    async def delete(self, key: str) -> bool:
        name = self._name(key)
        if await self.head(key) is None:
            return False
        await self._call(f"delete {key!r}", key, lambda c: c.delete_object(Bucket=self.bucket, Key=name))
        return True

    async def delete_many(self, keys: Sequence[str]) -> None:
        names = list(dict.fromkeys(self._name(key) for key in keys))
        batches = [names[i : i + DELETE_BATCH] for i in range(0, len(names), DELETE_BATCH)]
        limit = asyncio.Semaphore(4)

        async def delete_batch(batch: list[str]) -> list[dict[str, Any]]:
            request = {"Objects": [{"Key": name} for name in batch], "Quiet": True}
            async with limit:
                answer = await self._call(
                    f"delete {len(batch)} objects",
                    None,
                    lambda c: c.delete_objects(Bucket=self.bucket, Delete=request),
                )
            return list(answer.get("Errors") or [])

        failures = [error for errors in await asyncio.gather(*map(delete_batch, batches)) for error in errors]
        if failures:
            raise self._delete_failure(failures)

    def _delete_failure(self, failures: list[dict[str, Any]]) -> TierstoreError:
        codes = sorted({str(f.get("Code")) for f in failures})
        keys = [str(f.get("Key", ""))[len(self.prefix) :] for f in failures[:5]]
        message = f"could not delete {len(failures)} objects (codes {', '.join(codes)}; e.g. {keys})"
        if any(code in _DENIED_CODES for code in codes):
            return AccessDeniedError(message)
        return BackendUnavailableError(message)

    async def set_tier(self, key: str, tier: StorageTier, *, tags: Mapping[str, str] | None = None) -> None:
        name = self._name(key)
        new_class = self._storage_class(tier)
        answer = await self._head_answer(key)
        if answer is None:
            raise ObjectNotFoundError(key)
        tags = await self._get_tags(key)
        tags[TIER_TAG] = StorageTier(tier).value
        metadata = {**(answer.get("Metadata") or {}), TIER_MARKER: StorageTier(tier).value}
        copy = {
            "Bucket": self.bucket,
            "Key": name,
            "CopySource": {"Bucket": self.bucket, "Key": name},
            "StorageClass": new_class,
            # REPLACE rather than COPY: the tier marker changes even when the storage class does not.
            "MetadataDirective": "REPLACE",
            "Metadata": metadata,
            "TaggingDirective": "REPLACE",
            "Tagging": _encode_tags(check_tags(tags)),
            **self._encryption(),
        }
        await self._call(f"change storage class of {key!r}", key, lambda c: c.copy_object(**copy))

    async def _get_tags(self, key: str) -> dict[str, str]:
        answer = await self._call(
            f"read tags of {key!r}",
            key,
            lambda c: c.get_object_tagging(Bucket=self.bucket, Key=self._name(key)),
        )
        return {str(t["Key"]): str(t["Value"]) for t in answer.get("TagSet", [])}

    async def get_tags(self, key: str) -> dict[str, str] | None:
        """The object's tags, or None when there is no such object."""
        try:
            return await self._get_tags(key)
        except ObjectNotFoundError:
            return None

    async def restore(self, key: str, *, days: int = 1, speed: RestoreSpeed = "standard") -> RestoreStatus:
        name = self._name(key)
        if not isinstance(days, int) or days < 1:
            raise InvalidInputError(f"restore days must be a positive integer, not {days!r}")
        if speed not in _RESTORE_TIERS:
            raise InvalidInputError(f"restore speed must be one of {sorted(_RESTORE_TIERS)}, not {speed!r}")
        info = await self.head(key)
        if info is None:
            raise ObjectNotFoundError(key)
        if info.restore is None:
            return RestoreStatus("not-archived")
        if info.restore.state != "archived":
            return info.restore
        request = {"Days": days, "GlacierJobParameters": {"Tier": _RESTORE_TIERS[speed]}}

        async def start_restore(client: Any) -> bool:
            try:
                await client.restore_object(Bucket=self.bucket, Key=name, RestoreRequest=request)
            except Exception as exc:
                if _error_code(exc)[1] == "RestoreAlreadyInProgress":
                    return False
                raise
            return True

        if not await self._call(f"restore {key!r}", key, start_restore):
            return RestoreStatus("pending")
        after = await self.head(key)
        if after is None:
            raise ObjectNotFoundError(key)
        # A restore S3 has accepted but not finished still shows as archived until the header says otherwise.
        if after.restore is None or after.restore.state == "archived":
            return RestoreStatus("pending")
        return after.restore

    # -- reads --------------------------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        return await self._read(key, None)

    async def get_range(self, key: str, start: int, length: int) -> bytes | None:
        if not isinstance(start, int) or not isinstance(length, int) or start < 0 or length < 0:
            raise InvalidInputError(f"invalid range start={start!r} length={length!r}")
        if length == 0:
            return None if await self.head(key) is None else b""
        return await self._read(key, f"bytes={start}-{start + length - 1}")

    async def _read(self, key: str, byte_range: str | None) -> bytes | None:
        name = self._name(key)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": name}
        if byte_range:
            params["Range"] = byte_range

        async def read(client: Any) -> bytes:
            try:
                answer = await client.get_object(**params)
            except Exception as exc:
                if _error_code(exc)[1] == "InvalidRange":  # the range starts at or past the end
                    return b""
                raise
            async with answer["Body"] as body:
                return bytes(await body.read())

        try:
            return await self._call(f"get {key!r}", key, read)
        except ObjectNotFoundError:
            return None
        except ArchivedPageError:
            info = await self.head(key)
            pending = info is not None and info.restore is not None and info.restore.state == "pending"
            raise ArchivedPageError(key, pending=pending) from None

    async def _head_answer(self, key: str) -> dict[str, Any] | None:
        name = self._name(key)
        try:
            answer: dict[str, Any] = await self._call(
                f"head {key!r}", key, lambda c: c.head_object(Bucket=self.bucket, Key=name)
            )
        except ObjectNotFoundError:
            return None
        return answer

    async def head(self, key: str) -> ObjectInfo | None:
        answer = await self._head_answer(key)
        if answer is None:
            return None
        metadata = dict(answer.get("Metadata") or {})
        marker = metadata.pop(TIER_MARKER, None)
        storage_class = str(answer.get("StorageClass") or "STANDARD")
        restore = _parse_restore(answer.get("Restore")) if storage_class in ARCHIVE_CLASSES else None
        return ObjectInfo(
            key=key,
            size=int(answer.get("ContentLength", 0)),
            metadata=metadata,
            last_modified=answer.get("LastModified"),
            tier=self._tier_of(storage_class, marker),
            storage_class=storage_class,
            archived=restore is not None and restore.state in ("archived", "pending"),
            restore=restore,
        )

    async def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        if not isinstance(prefix, str) or not _LIST_PREFIX.fullmatch(prefix):
            raise InvalidInputError(f"invalid list prefix {prefix!r}")
        token: str | None = None
        while True:
            page = await self._list_page(self.prefix + prefix, token)
            for item in page.get("Contents", []):
                name = str(item["Key"])
                yield ListEntry(name[len(self.prefix) :], int(item["Size"]), item.get("LastModified"))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    async def _list_page(self, prefix: str, token: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if token:
            params["ContinuationToken"] = token
        page: dict[str, Any] = await self._call("list objects", None, lambda c: c.list_objects_v2(**params))
        return page

    def usage(self, prefix: str) -> tuple[int, int] | None:
        return None


def _tag_set(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def from_url(location: Location, settings: TierstoreSettings) -> S3Backend:
    return S3Backend(
        location.container,
        prefix=location.path or settings.prefix,
        region=settings.s3_region,
        endpoint_url=settings.s3_endpoint_url,
        profile=settings.s3_profile,
        addressing_style=settings.s3_addressing_style,
        storage_classes=settings.storage_classes or None,
        sse=settings.s3_sse,
        kms_key_id=settings.s3_kms_key_id,
        retry=settings.retry_policy(),
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
    )


SCHEME = Scheme("s3", from_url, container="bucket")
