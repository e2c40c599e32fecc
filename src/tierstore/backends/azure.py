"""Azure Blob Storage backend on ``azure-storage-blob`` (aio), for block blobs in one container.

Contract (what this adapter promises, on top of :mod:`tierstore.backends.base`):

* Object name = ``prefix + key``; ``list`` strips the prefix again. One ``BlobServiceClient`` per backend,
  created on first use and closed by :meth:`AzureBlobBackend.aclose` (or ``async with``). The constructor
  does no I/O and fails with MissingDependencyError when the ``azure`` extra is missing.
* Auth: ``connection_string`` (else ``$AZURE_STORAGE_CONNECTION_STRING``), or ``account_url`` with
  ``credential`` (account key, SAS token, or an async TokenCredential); ``account_url`` alone uses
  ``azure.identity.aio.DefaultAzureCredential``, which ``aclose`` closes. ``repr`` and error messages never
  show a key or a SAS: messages carry the operation, key, HTTP status, Azure error code and request id only,
  and SDK exceptions are never chained onto tierstore's.
* Metadata -> blob metadata (keys come back lowercased, as given; values with leading or trailing whitespace
  are refused because HTTP trims them). Tags -> blob index tags, plus a ``tier`` tag the adapter keeps equal
  to the requested :class:`StorageTier`, so ``find_blobs_by_tags`` and lifecycle rules can use it.
* Tiers -> access tiers (default L0-L3 Hot, L4 Archive; override with ``storage_classes``). ``head().tier``
  maps the access tier back, reading the ``tier`` tag when several tiers share one access tier.
* Archive: ``get`` raises ArchivedPageError (``pending=True`` while rehydrating). ``restore`` rehydrates in
  place to the access tier of L3 (Hot by default) with Standard or High priority; Azure keeps no temporary
  copy, so ``days`` is ignored (the lifecycle policy in ``backends/azure/`` re-archives blobs tagged L4).
* ``put(if_absent=True)`` sends ``If-None-Match: *`` (on Put Blob, or on Put Block List for staged uploads).
  When it finds the blob, its stored Content-MD5 is compared with ours and a match counts as done (perhaps
  our own attempt: aiohttp resends a PUT by itself after a dropped keep-alive connection). Every upload
  stores Content-MD5 (staged uploads would otherwise have none).
* Retries: the SDK's retry policy is off (``retry_total=0``); tierstore's bounded ``RetryPolicy`` retries
  connection errors, timeouts, 408, 429 and 5xx, and each attempt is bounded by ``connect_timeout`` and
  ``read_timeout`` (per socket read), so a dead endpoint fails with BackendUnavailableError after at most
  about ``retry.deadline + read_timeout`` seconds.
* ``delete_many`` uses Blob Batch (256 per batch); ``batch_delete="auto"`` falls back to single deletes, for
  the life of the backend, once the service refuses a batch with 400 (as some Azurite versions do).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

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
_Page = tuple[list[Any], str | None]

BatchDeleteMode = Literal["auto", "batch", "single"]
AccessTier = Literal["Hot", "Cool", "Cold", "Archive"]

ACCESS_TIERS: tuple[AccessTier, ...] = ("Hot", "Cool", "Cold", "Archive")
DEFAULT_STORAGE_CLASSES: Mapping[StorageTier, str] = MappingProxyType(
    {
        StorageTier.L0: "Hot",
        StorageTier.L1: "Hot",
        StorageTier.L2: "Hot",
        StorageTier.L3: "Hot",
        StorageTier.L4: "Archive",
    }
)
TIER_TAG = "tier"
BATCH_LIMIT = 256
"""Sub-requests per Blob Batch request (the service's limit)."""

_EXTRA = "azure"
_PACKAGE = "azure-storage-blob"
_CONTAINER_NAME = re.compile(r"(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*")
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_PENDING_PREFIX = "rehydrate-pending"


class TransientBackendError(BackendUnavailableError):
    """One attempt failed in a way worth retrying (connection, timeout, throttling, 5xx)."""


def _normalise_access_tier(name: str) -> AccessTier:
    for tier in ACCESS_TIERS:
        if name.lower() == tier.lower():
            return tier
    raise ConfigurationError(f"unknown Azure access tier {name!r}: expected one of {', '.join(ACCESS_TIERS)}")


def _check_azure_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    checked = check_metadata(metadata)
    for name, value in checked.items():
        if value != value.strip():
            raise InvalidInputError(
                f"metadata value for {name!r} has leading or trailing whitespace, which Azure trims"
            )
    return checked


def _account_of_connection_string(connection_string: str) -> str | None:
    for part in connection_string.split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() == "accountname":
            return value.strip()
    return None


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


class AzureBlobBackend(ClosingContext):
    name = "azure-blob"
    persistent = True

    def __init__(
        self,
        container: str,
        *,
        prefix: str = "",
        connection_string: str | None = None,
        account_url: str | None = None,
        credential: Any = None,
        storage_classes: Mapping[StorageTier, str] | None = None,
        retry: RetryPolicy | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_concurrency: int = 8,
        max_single_put_size: int = 64 * 1024 * 1024,
        max_block_size: int = 4 * 1024 * 1024,
        list_page_size: int = 1000,
        batch_delete: BatchDeleteMode = "auto",
    ) -> None:
        self._sdk = require("azure.storage.blob.aio", extra=_EXTRA, package=_PACKAGE)
        self._models = require("azure.storage.blob", extra=_EXTRA, package=_PACKAGE)
        self._core_errors = require("azure.core.exceptions", extra=_EXTRA, package=_PACKAGE)
        aiohttp = require("aiohttp", extra=_EXTRA, package="aiohttp")
        self._transient_types: tuple[type[BaseException], ...] = (
            self._core_errors.ServiceRequestError,
            self._core_errors.ServiceResponseError,
            self._core_errors.IncompleteReadError,
            aiohttp.ClientError,
            OSError,
            TimeoutError,
        )
        if not _CONTAINER_NAME.fullmatch(container):
            raise ConfigurationError(f"invalid container name {container!r}: 3-63 of a-z 0-9 and single hyphens")
        if connect_timeout <= 0 or read_timeout <= 0 or max_concurrency < 1 or not 1 <= list_page_size <= 5000:
            raise ConfigurationError("timeouts must be positive, max_concurrency >= 1, list_page_size 1-5000")
        if batch_delete not in ("auto", "batch", "single"):
            raise ConfigurationError(f"batch_delete must be 'auto', 'batch' or 'single', not {batch_delete!r}")
        self.container = container
        self.prefix = normalise_prefix(prefix)
        self._tiers = self._resolve_tiers(storage_classes)
        self._retry = retry or RetryPolicy()
        self._client_options: dict[str, Any] = {
            "retry_total": 0,
            "connection_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "max_single_put_size": max_single_put_size,
            "max_block_size": max_block_size,
        }
        self._max_concurrency = max_concurrency
        self._list_page_size = list_page_size
        self._batch_mode: BatchDeleteMode = batch_delete
        self._connection_string, self._account_url, self._credential = self._resolve_auth(
            connection_string, account_url, credential
        )
        self._owned_credential: Any = None
        self._service: Any = None
        self._container_client: Any = None
        caps: set[Capability] = {"tiers", "tags", "range_reads"}
        if "Archive" in self._tiers.values():
            caps.add("archive")
        self.capabilities: frozenset[Capability] = frozenset(caps)

    # ----------------------------------------------------------------- configuration

    @staticmethod
    def _resolve_tiers(overrides: Mapping[StorageTier, str] | None) -> dict[StorageTier, AccessTier]:
        merged = {**DEFAULT_STORAGE_CLASSES, **(overrides or {})}
        tiers = {StorageTier(tier): _normalise_access_tier(name) for tier, name in merged.items()}
        if tiers[StorageTier.L3] == "Archive":
            raise ConfigurationError("L3 must map to an online access tier: archived blobs rehydrate to it")
        return tiers

    @staticmethod
    def _resolve_auth(
        connection_string: str | None, account_url: str | None, credential: Any
    ) -> tuple[str | None, str | None, Any]:
        if connection_string and account_url:
            raise ConfigurationError("give either connection_string or account_url, not both")
        if account_url:
            return None, account_url, credential
        connection_string = connection_string or os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
        if not connection_string:
            raise ConfigurationError(
                "no Azure credentials: pass connection_string, set AZURE_STORAGE_CONNECTION_STRING, "
                "or pass account_url (with a credential, or none to use DefaultAzureCredential)"
            )
        return connection_string, None, credential

    def __repr__(self) -> str:
        if self._connection_string is not None:
            where = f"account={_account_of_connection_string(self._connection_string)!r}"
        else:
            where = f"account_url={str(self._account_url).split('?', 1)[0]!r}"
        return f"AzureBlobBackend({where}, container={self.container!r}, prefix={self.prefix!r})"

    # ----------------------------------------------------------------- client and calls

    def _container(self) -> Any:
        if self._container_client is None:
            try:
                self._service = self._new_service_client()
            except (ValueError, TypeError) as exc:
                raise ConfigurationError(f"cannot build the Azure client: {self._scrub(str(exc))}") from None
            self._container_client = self._service.get_container_client(self.container)
        return self._container_client

    def _new_service_client(self) -> Any:
        service_client = self._sdk.BlobServiceClient
        if self._connection_string is not None:
            return service_client.from_connection_string(
                self._connection_string, credential=self._credential, **self._client_options
            )
        credential = self._credential
        url_has_sas = "sig=" in str(self._account_url).partition("?")[2]
        if credential is None and not url_has_sas:
            identity = require("azure.identity.aio", extra=_EXTRA, package="azure-identity")
            credential = self._owned_credential = identity.DefaultAzureCredential()
        return service_client(self._account_url, credential=credential, **self._client_options)

    def _secrets(self) -> list[str]:
        found = [self._credential] if isinstance(self._credential, str) else []
        found.append(str(self._account_url).partition("?")[2])
        for part in (self._connection_string or "").split(";"):
            name, _, value = part.partition("=")
            if name.strip().lower() in ("accountkey", "sharedaccesssignature"):
                found.append(value.strip())
        return [secret for secret in found if secret]

    def _scrub(self, text: str) -> str:
        for secret in self._secrets():
            text = text.replace(secret, "***")
        return text

    def _blob(self, key: str) -> Any:
        return self._container().get_blob_client(self.prefix + key)

    async def _call(self, describe: str, key: str | None, operation: Callable[[], Awaitable[T]]) -> T:
        """Run one SDK operation with tierstore's retries; every SDK exception leaves as a tierstore error."""

        async def attempt() -> T:
            try:
                return await operation()
            except TierstoreError:
                raise
            except Exception as exc:  # noqa: BLE001 - the SDK raises many types; none may escape untranslated
                raise self._translate(exc, describe, key) from None

        return await retry(
            attempt,
            policy=self._retry,
            is_transient=lambda exc: isinstance(exc, TransientBackendError),
            describe=describe,
        )

    def _translate(self, exc: Exception, describe: str, key: str | None) -> TierstoreError:
        errors = self._core_errors
        status: int | None = getattr(exc, "status_code", None)
        code = str(getattr(exc, "error_code", None) or "")
        detail = f"{describe}: {type(exc).__name__}"
        if status is not None:
            detail += f" (HTTP {status}{', ' + code if code else ''}{self._request_id(exc)})"
        if isinstance(exc, self._transient_types):
            return TransientBackendError(detail)
        if isinstance(exc, errors.ClientAuthenticationError) and status is None:
            return AccessDeniedError(f"{detail}: the credential could not get a token")
        if not isinstance(exc, errors.HttpResponseError) or status is None:
            if isinstance(exc, ValueError | TypeError):
                return InvalidInputError(detail)
            return BackendUnavailableError(detail)
        return self._translate_status(status, code, detail, key)

    @staticmethod
    def _translate_status(status: int, code: str, detail: str, key: str | None) -> TierstoreError:
        if code == "ContainerNotFound":
            return ConfigurationError(f"{detail}: the container does not exist")
        if status == 404 and key is not None:
            return ObjectNotFoundError(key)
        if code == "BlobArchived" and key is not None:
            return ArchivedPageError(key)
        if (code == "BlobAlreadyExists" or status == 412) and key is not None:
            return ConflictError(key)
        if status in (401, 403):
            return AccessDeniedError(detail)
        if status in _TRANSIENT_STATUS or status >= 500:
            return TransientBackendError(detail)
        if status == 400:
            return InvalidInputError(detail)
        return TierstoreError(detail)

    @staticmethod
    def _request_id(exc: Exception) -> str:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None) or {}
        request_id = headers.get("x-ms-request-id") if hasattr(headers, "get") else None
        return f", request id {request_id}" if request_id else ""

    def _access_tier(self, tier: StorageTier) -> Any:
        return self._models.StandardBlobTier(self._tiers[StorageTier(tier)])

    def _rehydrate_priority(self, speed: RestoreSpeed) -> Any:
        priority = self._models.RehydratePriority
        return priority.HIGH if speed == "expedited" else priority.STANDARD

    # ----------------------------------------------------------------- writes

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
        check_key(key)
        tier = StorageTier(tier)
        body = bytes(data)
        checked_metadata = _check_azure_metadata(metadata)
        checked_tags = check_tags({**check_tags(tags), TIER_TAG: tier.value})
        digest = _md5(body)
        options: dict[str, Any] = {
            "metadata": checked_metadata,
            "tags": checked_tags,
            "standard_blob_tier": self._access_tier(tier),
            "content_settings": self._models.ContentSettings(content_md5=bytearray(digest)),
            "max_concurrency": self._max_concurrency,
        }
        if if_absent:
            options.update(overwrite=False, if_none_match="*")
        else:
            options["overwrite"] = True

        async def upload() -> None:
            try:
                await self._blob(key).upload_blob(body, **options)
            except Exception as exc:  # noqa: BLE001 - translated at once, never escapes
                error = self._translate(exc, f"put {key!r}", key)
                if isinstance(error, ConflictError) and await self._stored_md5(key) == digest:
                    return  # idempotent by content: perhaps our own attempt, resent by aiohttp itself
                raise error from None

        await self._call(f"put {key!r}", key, upload)

    async def _stored_md5(self, key: str) -> bytes | None:
        """The blob's Content-MD5, read with retries: a guess here would orphan our own write or claim another's."""
        try:
            props = await self._call(f"head {key!r}", key, lambda: self._blob(key).get_blob_properties())
        except ObjectNotFoundError:
            return None
        md5 = props.content_settings.content_md5
        return bytes(md5) if md5 else None

    # ----------------------------------------------------------------- reads

    async def get(self, key: str) -> bytes | None:
        check_key(key)
        return await self._download(key, offset=None, length=None)

    async def get_range(self, key: str, start: int, length: int) -> bytes | None:
        check_key(key)
        if start < 0 or length < 0:
            raise InvalidInputError(f"invalid range start={start} length={length}")
        if length == 0:
            return None if await self.head(key) is None else b""
        return await self._download(key, offset=start, length=length)

    async def _download(self, key: str, *, offset: int | None, length: int | None) -> bytes | None:
        async def download() -> bytes:
            try:
                stream = await self._blob(key).download_blob(
                    offset=offset, length=length, max_concurrency=self._max_concurrency
                )
            except Exception as exc:
                if offset is not None and str(getattr(exc, "error_code", "")) == "InvalidRange":
                    return b""  # the range starts past the end of an existing blob
                raise
            data: bytes = await stream.readall()
            return data

        try:
            return await self._call(f"get {key!r}", key, download)
        except ObjectNotFoundError:
            return None
        except ArchivedPageError:
            info = await self.head(key)
            pending = info is not None and info.restore is not None and info.restore.state == "pending"
            raise ArchivedPageError(key, pending=pending) from None

    async def head(self, key: str) -> ObjectInfo | None:
        check_key(key)
        try:
            props = await self._call(f"head {key!r}", key, lambda: self._blob(key).get_blob_properties())
        except ObjectNotFoundError:
            return None
        access_tier = str(props.blob_tier) if props.blob_tier else "Hot"
        archive_status = str(props.archive_status or "")
        tier_tag = await self._tier_tag(key, access_tier) if props.tag_count else None
        archived = access_tier == "Archive"
        return ObjectInfo(
            key=key,
            size=int(props.size),
            metadata={name.lower(): value for name, value in (props.metadata or {}).items()},
            last_modified=props.last_modified,
            tier=self._tier_of(access_tier, tier_tag),
            storage_class=access_tier,
            archived=archived,
            restore=self._restore_status(archived, archive_status, tier_tag),
        )

    async def _tier_tag(self, key: str, access_tier: str) -> StorageTier | None:
        """The blob's ``tier`` tag, read only when it can change the answer of ``head``."""
        candidates = [tier for tier, name in self._tiers.items() if name == access_tier]
        may_be_rehydrated = access_tier != "Archive" and "archive" in self.capabilities
        if len(candidates) <= 1 and not may_be_rehydrated:
            return None
        try:
            tags = await self._call(f"get tags {key!r}", key, lambda: self._blob(key).get_blob_tags())
        except (ObjectNotFoundError, AccessDeniedError):
            return None
        try:
            return StorageTier(tags.get(TIER_TAG, ""))
        except ValueError:
            return None

    def _tier_of(self, access_tier: str, tier_tag: StorageTier | None) -> StorageTier | None:
        candidates = [tier for tier, name in self._tiers.items() if name == access_tier]
        if tier_tag in candidates:
            return tier_tag
        return max(candidates, key=lambda tier: tier.value) if candidates else None

    def _restore_status(
        self, archived: bool, archive_status: str, tier_tag: StorageTier | None
    ) -> RestoreStatus | None:
        if archived:
            return RestoreStatus("pending" if archive_status.startswith(_PENDING_PREFIX) else "archived")
        if tier_tag is not None and self._tiers.get(tier_tag) == "Archive":
            return RestoreStatus("restored")  # rehydrated in place; Azure gives no expiry
        return None

    async def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        if prefix:
            check_key(prefix)
        name_prefix = self.prefix + prefix
        token: str | None = None
        while True:
            page, token = await self._call(f"list {prefix!r}", None, self._list_page_fetcher(name_prefix, token))
            for blob in page:
                yield ListEntry(blob.name[len(self.prefix) :], int(blob.size), blob.last_modified)
            if not token:
                return

    def _list_page_fetcher(self, name_prefix: str, token: str | None) -> Callable[[], Awaitable[_Page]]:
        async def fetch() -> _Page:
            pages = (
                self._container()
                .list_blobs(name_starts_with=name_prefix, results_per_page=self._list_page_size)
                .by_page(continuation_token=token)
            )
            try:
                page = await pages.__anext__()
            except StopAsyncIteration:
                return [], None
            return [blob async for blob in page], pages.continuation_token

        return fetch

    # ----------------------------------------------------------------- deletes

    async def delete(self, key: str) -> bool:
        check_key(key)
        attempts = 0

        async def delete_once() -> bool:
            nonlocal attempts
            attempts += 1
            try:
                await self._blob(key).delete_blob(delete_snapshots="include")
            except Exception as exc:
                if getattr(exc, "status_code", None) == 404 and str(getattr(exc, "error_code", "")) == "BlobNotFound":
                    return attempts > 1  # after an unknown outcome, the blob was most likely ours to delete
                raise
            return True

        return await self._call(f"delete {key!r}", key, delete_once)

    async def delete_many(self, keys: Sequence[str]) -> None:
        unique = list(dict.fromkeys(check_key(key) for key in keys))
        for start in range(0, len(unique), BATCH_LIMIT):
            chunk = unique[start : start + BATCH_LIMIT]
            if self._batch_mode == "single" or not await self._delete_batch(chunk):
                await self._delete_each(chunk)

    async def _delete_batch(self, keys: Sequence[str]) -> bool:
        """Delete with one Blob Batch request; False when the keys still need single deletes."""

        async def send() -> list[int]:
            names = [self.prefix + key for key in keys]
            parts = await self._container().delete_blobs(*names, delete_snapshots="include", raise_on_any_failure=False)
            return [int(part.status_code) async for part in parts]

        try:
            statuses = await self._call(f"delete_many ({len(keys)} keys)", None, send)
        except InvalidInputError:
            statuses = [400] * len(keys)
        if self._batch_mode == "auto" and statuses and all(status == 400 for status in statuses):
            self._batch_mode = "single"  # the service does not understand batches: stop asking
            return False
        return all(status in (200, 202, 404) for status in statuses)

    async def _delete_each(self, keys: Sequence[str]) -> None:
        limit = asyncio.Semaphore(self._max_concurrency)

        async def delete_one(key: str) -> None:
            async with limit:
                await self.delete(key)

        await asyncio.gather(*(delete_one(key) for key in keys))

    # ----------------------------------------------------------------- tiers and archive

    async def set_tier(self, key: str, tier: StorageTier, *, tags: Mapping[str, str] | None = None) -> None:
        check_key(key)
        tier = StorageTier(tier)
        blob = self._blob(key)
        await self._call(
            f"set tier {key!r}",
            key,
            lambda: blob.set_standard_blob_tier(
                self._access_tier(tier), rehydrate_priority=self._rehydrate_priority("standard")
            ),
        )

        async def retag() -> None:
            tags = dict(await blob.get_blob_tags())
            tags[TIER_TAG] = tier.value
            await blob.set_blob_tags(tags)

        await self._call(f"set tier tag {key!r}", key, retag)

    async def restore(self, key: str, *, days: int = 1, speed: RestoreSpeed = "standard") -> RestoreStatus:
        """Start rehydrating an Archive blob in place (``days`` is ignored: Azure keeps no temporary copy).

        ``speed="expedited"`` asks for High priority (under an hour on Azure), anything else for Standard
        (up to 15 hours); asking for expedited while a Standard rehydration is pending raises its priority.
        """
        check_key(key)
        if speed not in ("bulk", "standard", "expedited"):
            raise InvalidInputError(f"unknown restore speed {speed!r}")
        blob = self._blob(key)
        props = await self._call(f"restore {key!r}", key, blob.get_blob_properties)
        if str(props.blob_tier) != "Archive":
            return RestoreStatus("not-archived")
        pending = str(props.archive_status or "").startswith(_PENDING_PREFIX)
        if pending and (speed != "expedited" or str(props.rehydrate_priority) == "High"):
            return RestoreStatus("pending")
        await self._call(
            f"restore {key!r}",
            key,
            lambda: blob.set_standard_blob_tier(
                self._access_tier(StorageTier.L3), rehydrate_priority=self._rehydrate_priority(speed)
            ),
        )
        info = await self.head(key)
        if info is None:
            raise ObjectNotFoundError(key)
        return RestoreStatus("pending") if info.archived else RestoreStatus("restored")

    def usage(self, prefix: str) -> tuple[int, int] | None:
        return None

    # ----------------------------------------------------------------- lifecycle

    async def aclose(self) -> None:
        service, credential = self._service, self._owned_credential
        self._service = self._container_client = self._owned_credential = None
        try:
            if service is not None:
                await service.close()
        finally:
            if credential is not None:
                await credential.close()


def from_url(location: Location, settings: TierstoreSettings) -> AzureBlobBackend:
    connection_string = settings.azure_connection_string
    return AzureBlobBackend(
        location.container,
        prefix=location.path or settings.prefix,
        connection_string=connection_string.get_secret_value() if connection_string else None,
        account_url=settings.azure_account_url,
        storage_classes=settings.storage_classes or None,
        retry=settings.retry_policy(),
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        batch_delete=settings.azure_batch_delete,
    )


SCHEME = Scheme("az", from_url, container="container")
