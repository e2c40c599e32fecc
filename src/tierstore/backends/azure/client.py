"""The Azure Blob requests of :class:`~tierstore.backends.cloud.backend.CloudBackend`, on azure-storage-blob (aio).

Contract (what only Azure does; retries, errors, tiers and the create-if-absent check are shared):

* One ``BlobServiceClient`` per client, made on first use and closed by ``aclose``; the SDK's own retries are off
  (``retry_total=0``), each request is bounded by the options' ``connect_timeout`` and ``read_timeout`` (per
  socket read), and its aiohttp pool holds at most ``pool_size`` connections.
* Metadata -> blob metadata, whose values must not begin or end with whitespace (HTTP would trim it). Tags -> blob
  index tags. The tier asked for is recorded in the index tag :data:`TIER_RECORD_TAG`, which, unlike metadata,
  can still be written while a blob is archived; so a blob holds at most 9 tags of the caller's.
* Every upload stores the bytes' Content-MD5, staged ones included (the service computes none for those), so
  :meth:`SdkClient.holds` tells our own bytes from a digest. ``if_absent`` sends ``If-None-Match: *``.
* ``head`` reads the tier record (Get Blob Tags, a second request) only when the access tier alone cannot say
  the tier: several tiers share it, or the blob may have been rehydrated in place from an archive tier.
* Archive: a blob in Archive is archived, or pending while it rehydrates; an online blob recorded at an archive
  tier has been restored. ``restore`` rehydrates in place to the access tier of L3, with High priority for
  ``expedited`` and Standard otherwise; Azure keeps no temporary copy, so ``days`` has no effect.
* ``set_class`` leaves alone what is already so (the access tier, a rehydration already on its way to it, the
  tags), so the same tier again and the retry of an attempt whose answer was lost succeed. Out of Archive it
  rehydrates in place (Standard priority); a blob rehydrating to another tier is ArchivedPageError (pending).
* ``delete_batch`` uses Blob Batch (:mod:`tierstore.backends.azure.batch`) unless ``batch_delete="single"``.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Final

from tierstore.backends._optional import require
from tierstore.backends.azure import batch
from tierstore.backends.azure.credentials import AzureAuth
from tierstore.backends.azure.failures import classify
from tierstore.backends.azure.provider import BatchDeleteMode
from tierstore.backends.base import MAX_TAGS, Buffer, Chunks, RestoreSpeed, RestoreStatus
from tierstore.backends.cloud import redact
from tierstore.backends.cloud.client import Calls, Head, Listed, page_size
from tierstore.backends.cloud.failure import Failure
from tierstore.backends.cloud.options import CloudOptions
from tierstore.backends.cloud.tiers import TierMap
from tierstore.enums import StorageTier
from tierstore.errors import ArchivedPageError, ConfigurationError, InvalidInputError
from tierstore.loops import LoopClients

TIER_RECORD_TAG: Final = "tierstore-tier"
"""The blob index tag holding the tier a blob was stored at or moved to (this adapter's record, not the bridge's)."""
_REHYDRATING: Final = "rehydrate-pending"
_EXTRA: Final = "azure"
_PACKAGE: Final = "azure-storage-blob"


def key_of(name: str) -> str:
    """The key inside a full blob name (keys hold no ``/``; a prefix ends with one)."""
    return name.rpartition("/")[2]


def md5(data: Chunks) -> bytes:
    """The MD5 of every byte of ``data``: what Azure checks a body against and keeps as ``Content-MD5``."""
    digest: bytes = data.digest(hashlib.md5(usedforsecurity=False)).digest()
    return digest


async def _close_service(opened: tuple[Any, Any]) -> None:
    with contextlib.suppress(Exception):
        await opened[0].close()


class SdkClient:
    """Azure Blob Storage's requests through azure-storage-blob (async), one attempt each, for CloudBackend."""

    has_tags = True

    def __init__(
        self,
        container: str,
        auth: AzureAuth,
        tiers: TierMap,
        options: CloudOptions,
        *,
        max_concurrency: int,
        max_single_put_size: int,
        max_block_size: int,
        list_page_size: int,
        batch_delete: BatchDeleteMode,
    ) -> None:
        self._blob_sdk = require("azure.storage.blob.aio", extra=_EXTRA, package=_PACKAGE)
        self._models = require("azure.storage.blob", extra=_EXTRA, package=_PACKAGE)
        self._aiohttp = require("aiohttp", extra=_EXTRA, package="aiohttp")
        self.container = container
        self.auth = auth
        self.tiers = tiers
        self.options = options
        self.max_concurrency = max_concurrency
        self.max_single_put_size = max_single_put_size
        self.list_page_size = list_page_size
        self.batch_limit = 0 if batch_delete == "single" else batch.BATCH_LIMIT
        self._fall_back = batch_delete == "auto"
        self._settings: dict[str, Any] = {
            "retry_total": 0,
            "connection_timeout": options.connect_timeout,
            "read_timeout": options.read_timeout,
            "max_single_put_size": max_single_put_size,
            "max_block_size": max_block_size,
        }
        self._services: LoopClients[tuple[Any, Any]] = LoopClients(self._open, _close_service, "Azure")

    # -- the SDK's clients ----------------------------------------------------------------------------------

    async def _blobs(self) -> Any:
        """The container client of the running event loop, made on first use there (aiohttp is loop-bound)."""
        return (await self._services.get())[1]

    async def _open(self) -> tuple[Any, Any]:
        service = await self._new_service()
        return service, service.get_container_client(self.container)

    async def _new_service(self) -> Any:
        from azure.core.pipeline.transport import AioHttpTransport

        aiohttp = self._aiohttp
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.options.pool_size),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            trust_env=True,
        )
        # A transport given to the SDK ignores the client's timeouts: it must be given them itself.
        transport = AioHttpTransport(
            session=session,
            session_owner=True,
            connection_timeout=self.options.connect_timeout,
            read_timeout=self.options.read_timeout,
        )
        service = self._blob_sdk.BlobServiceClient
        try:
            credential = await self.auth.sdk_credential()
            connection_string = self.auth.connection_string()
            if connection_string is not None:
                return service.from_connection_string(
                    connection_string, credential=credential, transport=transport, **self._settings
                )
            return service(self.auth.account_url(), credential=credential, transport=transport, **self._settings)
        except (ValueError, TypeError) as exc:
            await session.close()
            redact.scrub_error(exc)
            raise ConfigurationError(f"cannot build the Azure client: {redact.scrub(str(exc))}") from exc
        except BaseException:
            await session.close()
            raise

    async def _blob(self, name: str) -> Any:
        return (await self._blobs()).get_blob_client(name)

    def _access_tier(self, storage_class: str) -> Any:
        return self._models.StandardBlobTier(storage_class)

    # -- what the shared layer asks -------------------------------------------------------------------------

    def classify(self, error: BaseException) -> Failure:
        return classify(error)

    def check_metadata(self, metadata: Mapping[str, str]) -> None:
        for name, value in metadata.items():
            if value != value.strip():
                raise InvalidInputError(
                    f"metadata value for {name!r} begins or ends with whitespace, which Azure trims"
                )

    def record_tags(self, tags: Mapping[str, str], tier: StorageTier) -> dict[str, str]:
        """The index tags a blob gets: the caller's and the tier record, refused before any request if too many."""
        recorded = {**tags, TIER_RECORD_TAG: StorageTier(tier).value}
        if len(recorded) > MAX_TAGS:
            raise InvalidInputError(
                f"{len(tags)} tags given: Azure keeps at most {MAX_TAGS - 1} besides the tier record"
            )
        return recorded

    async def put(
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
    ) -> None:
        recorded = self.record_tags(tags, tier)
        settings = self._models.ContentSettings(content_md5=bytearray(md5(data)))
        conditions: dict[str, Any] = {"overwrite": False, "if_none_match": "*"} if if_absent else {"overwrite": True}
        blob = await self._blob(name)
        await blob.upload_blob(
            data.reader(),  # read block by block: a big page is never copied whole
            length=len(data),
            metadata=dict(metadata),
            tags=recorded,
            standard_blob_tier=self._access_tier(storage_class),
            content_settings=settings,
            max_concurrency=self.max_concurrency,
            **conditions,
        )

    async def get(self, name: str, start: int, length: int | None) -> Buffer:
        ranged = {"offset": start, "length": length} if start or length is not None else {}
        blob = await self._blob(name)
        stream = await blob.download_blob(max_concurrency=self.max_concurrency, **ranged)
        data: bytes = await stream.readall()
        return data

    async def head(self, name: str) -> Head:
        blob = await self._blob(name)
        props = await blob.get_blob_properties()
        access_tier = str(getattr(props.blob_tier, "value", props.blob_tier) or self.tiers.class_of(StorageTier.L3))
        recorded = await self._recorded_tier(blob, access_tier) if props.tag_count else None
        return Head(
            size=int(props.size),
            metadata=dict(props.metadata or {}),
            last_modified=props.last_modified,
            storage_class=access_tier,
            recorded_tier=recorded,
            restore=self._restore_state(access_tier, str(props.archive_status or ""), recorded),
            version=str(props.etag) if props.etag else None,
        )

    async def _recorded_tier(self, blob: Any, access_tier: str) -> str | None:
        sharing = [tier for tier, name in self.tiers.classes.items() if name == access_tier]
        may_be_rehydrated = not self.tiers.is_archive(access_tier) and self.tiers.has_archive
        if len(sharing) <= 1 and not may_be_rehydrated:
            return None
        from azure.core.exceptions import HttpResponseError

        try:
            tags: dict[str, str] = await blob.get_blob_tags()
        except HttpResponseError as exc:
            if exc.status_code == 403:
                return None  # credentials without tag access (a SAS without "t"): the access tier must do
            raise
        return tags.get(TIER_RECORD_TAG)

    def _restore_state(self, access_tier: str, archive_status: str, recorded: str | None) -> RestoreStatus | None:
        if self.tiers.is_archive(access_tier):
            return RestoreStatus("pending" if archive_status.startswith(_REHYDRATING) else "archived")
        recorded_class = next((name for tier, name in self.tiers.classes.items() if tier.value == recorded), None)
        if self.tiers.is_archive(recorded_class):
            return RestoreStatus("restored")  # rehydrated in place: Azure gives no expiry
        return None

    async def holds(self, name: str, data: Chunks) -> bool | None:
        blob = await self._blob(name)
        props = await blob.get_blob_properties()
        stored = props.content_settings.content_md5
        if not stored:
            return None
        return int(props.size) == len(data) and bytes(stored) == md5(data)

    async def list_page(
        self, prefix: str, token: str | None, limit: int | None = None
    ) -> tuple[Sequence[Listed], str | None]:
        blobs = await self._blobs()
        pages = blobs.list_blobs(name_starts_with=prefix, results_per_page=page_size(limit, self.list_page_size))
        pager = pages.by_page(continuation_token=token)
        try:
            page = await pager.__anext__()
        except StopAsyncIteration:
            return [], None
        sure = self._listing_proves_tier()
        found = [
            Listed(
                blob.name,
                int(blob.size),
                blob.last_modified,
                f"{blob.etag}|{tier}" if sure and blob.etag else None,
                tier,
            )
            async for blob in page
            for tier in (str(getattr(blob.blob_tier, "value", blob.blob_tier) or "") or None,)
        ]
        return found, pager.continuation_token or None

    def _listing_proves_tier(self) -> bool:
        """Whether a listed blob's ETag and access tier tell every change ``head`` would see: not when tiers share
        an access tier or one is Archive, since the tier is then recorded in a tag, and a tier change (Set Blob Tier,
        Set Blob Tags) keeps the ETag."""
        classes = list(self.tiers.classes.values())
        return len(set(classes)) == len(classes) and not self.tiers.has_archive

    async def list_after(
        self, prefix: str, after: str | None, token: str | None
    ) -> tuple[Sequence[Listed], str | None]:
        """A page of :meth:`list_page` less the names up to ``after``: the obstore path's listing continues here
        (:func:`tierstore.backends.cloud.obstore_calls.list_page`). Blob names come in lexicographic order, and the
        List Blobs request has no start of its own, so the names up to ``after`` are listed and skipped."""
        found, following = await self.list_page(prefix, token)
        if after is not None:
            found = [item for item in found if item.name > after]
        return found, following

    async def delete(self, name: str) -> None:
        blob = await self._blob(name)
        await blob.delete_blob(delete_snapshots="include")

    async def delete_if(self, name: str, version: str) -> None:
        """Delete only while the blob's ETag is ``version`` (``If-Match``: 412 ConditionNotMet otherwise)."""
        from azure.core import MatchConditions

        blob = await self._blob(name)
        await blob.delete_blob(delete_snapshots="include", etag=version, match_condition=MatchConditions.IfNotModified)

    async def delete_batch(self, names: Sequence[str]) -> list[tuple[str, Failure]] | None:
        blobs = await self._blobs()
        return await batch.delete_batch(blobs, names, fall_back=self._fall_back)

    async def set_class(
        self, name: str, storage_class: str, tier: StorageTier, tags: Mapping[str, str], calls: Calls
    ) -> None:
        # Each attempt takes the blob client afresh: a retry after the backend was closed gets a new one.
        key = key_of(name)

        async def read() -> Any:
            return await (await self._blob(name)).get_blob_properties()

        props = await calls.run(f"read the access tier of {key!r}", key, read)
        current = str(getattr(props.blob_tier, "value", props.blob_tier) or "")
        rehydrating = str(props.archive_status or "")
        if rehydrating.startswith(_REHYDRATING):
            if rehydrating.lower() != f"{_REHYDRATING}-to-{storage_class.lower()}":
                raise ArchivedPageError(key, pending=True)  # Azure refuses another tier until it is done
        elif current != storage_class:
            # Out of Archive this starts a rehydration, as restore does.
            priority = {"rehydrate_priority": self._priority("standard")} if self.tiers.is_archive(current) else {}

            async def move() -> None:
                blob = await self._blob(name)
                await blob.set_standard_blob_tier(self._access_tier(storage_class), **priority)

            await calls.run(f"set the access tier of {key!r}", key, move)

        async def merge_tags() -> None:
            blob = await self._blob(name)
            current_tags: dict[str, str] = await blob.get_blob_tags()
            wanted = self.record_tags({**current_tags, **tags}, tier)
            if wanted != current_tags:  # the same tier again, or a retry whose earlier attempt landed: nothing to do
                await blob.set_blob_tags(wanted)

        await calls.run(f"set the tags of {key!r}", key, merge_tags)

    def _priority(self, speed: RestoreSpeed) -> Any:
        priority = self._models.RehydratePriority
        return priority.HIGH if speed == "expedited" else priority.STANDARD

    async def restore(self, name: str, *, days: int, speed: RestoreSpeed) -> None:
        online = self._access_tier(self.tiers.class_of(StorageTier.L3))
        blob = await self._blob(name)
        await blob.set_standard_blob_tier(online, rehydrate_priority=self._priority(speed))

    def secrets(self) -> list[str]:
        return self.auth.secrets()

    def describe(self) -> str:
        return self.auth.describe()

    async def aclose(self) -> None:
        try:
            await self._services.aclose()
        finally:
            await self.auth.aclose()
