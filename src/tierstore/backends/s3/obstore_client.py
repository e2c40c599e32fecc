"""The obstore data path of S3 (``tierstore[fast]``): put, create-if-absent, get, ranged get and delete through
obstore's Rust client; everything else through the aioboto3 client it wraps.

Contract: the same requests and the same stored objects as :class:`~tierstore.backends.s3.client.SdkClient`, so
an object written by either path reads the same on the other:

* a put sends the user metadata and the tier record as ``x-amz-meta-*`` attributes, the storage class as
  ``Storage-Class`` and the tags as ``x-amz-tagging``, with the SSE settings of the store; ``if_absent`` is
  ``If-None-Match: *`` (obstore's ``mode="create"``);
* what obstore cannot do goes to the SDK client: ``head`` (obstore 0.12 returns neither ``x-amz-storage-class``
  nor ``x-amz-restore``), bodies above the multipart threshold (obstore sends no ``If-None-Match`` on a multipart
  upload, and the SDK's part size keeps multipart ETags comparable), ``set_class``, ``restore``,
  ``delete_batch`` (per-key errors), ``list`` (obstore's listing gives no storage class nor the response's time,
  so no entry would carry the change token a catalog row is proven by), and ``holds`` once the ETag does not
  match (under SSE-KMS the ETag is no MD5, and obstore exposes neither the encryption nor the CRC32 checksum);
* obstore makes one attempt per call (``max_retries=0``): the shared retry loop decides; timeouts and pool size
  come from the shared options. The one exception mirrors the SDK path's transport: an overwriting put whose
  connection dropped before the answer is sent once more at once, as aiohttp does under aiobotocore;
* at interpreter exit, a process that used obstore pauses (see :mod:`tierstore.backends.cloud.obstore_calls`).
* obstore signs with the credentials the SDK resolved (arguments, environment, profile or role), handed over by
  a credential provider: it never looks for credentials itself, so it never asks a metadata service. Refreshable
  credentials are fetched again before they expire.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

from tierstore.backends._optional import require
from tierstore.backends.base import Buffer, Chunks, RestoreSpeed
from tierstore.backends.cloud import obstore_calls, obstore_failures
from tierstore.backends.cloud.client import Calls, Head, Listed
from tierstore.backends.cloud.failure import Failure
from tierstore.backends.s3 import failures
from tierstore.backends.s3.client import SdkClient
from tierstore.backends.s3.wire import TIER_MARKER, etag_matches
from tierstore.enums import StorageTier
from tierstore.loops import PerLoop

logger = logging.getLogger(__name__)

REFRESH_BEFORE: Final = timedelta(minutes=5)
"""Fetch refreshable credentials again this long before they expire."""


class ObstoreClient:
    """S3's data path through obstore (reads, writes, listings), with credentials from ``sdk`` refreshed before
    they expire; what obstore cannot do goes to ``sdk``."""

    has_tags = True
    batch_limit = SdkClient.batch_limit

    def __init__(self, sdk: SdkClient) -> None:
        self.sdk = sdk
        self.config = sdk.config
        self._obstore = require("obstore", extra="fast", package="obstore")
        self._store: Any = None
        self._expires: datetime | None = None
        self._lock = PerLoop(asyncio.Lock)  # a lock binds to its loop

    async def store(self) -> Any:
        """The obstore S3Store, made on first use (and again when the credentials it holds near their expiry)."""
        if self._store is None or self._stale():
            async with self._lock.get():
                if self._store is None or self._stale():
                    if self._store is not None:
                        logger.debug("bucket %r: the credentials near expiry; a new obstore store", self.config.bucket)
                    self._store = await self._open()
        return self._store

    def _stale(self) -> bool:
        return self._expires is not None and datetime.now(UTC) >= self._expires - REFRESH_BEFORE

    async def _open(self) -> Any:
        stores = require("obstore.store", extra="fast", package="obstore")
        obstore_calls.note_started()
        endpoint, region = await self.sdk.endpoint_and_region()
        found = await self.sdk.credentials()
        if found is None:
            botocore = require("botocore.exceptions", extra="s3", package="aioboto3")
            raise botocore.NoCredentialsError()
        access_key, secret_key, token = found
        self._expires = self.sdk.credentials_expiry()
        credential = {"access_key_id": access_key, "secret_access_key": secret_key, "token": token, "expires_at": None}
        c, options = self.config, self.config.options
        settings: dict[str, Any] = {"region": region}
        parts = urlsplit(endpoint)
        if not (parts.hostname or "").endswith("amazonaws.com"):
            settings["endpoint"] = endpoint
        if c.addressing_style == "virtual":
            settings["virtual_hosted_style_request"] = True
            if "endpoint" in settings:  # obstore expects the bucket in a virtual-hosted endpoint
                settings["endpoint"] = f"{parts.scheme}://{c.bucket}.{parts.netloc}"
        if c.sse:
            settings["server_side_encryption"] = c.sse
        if c.kms_key_id:
            settings["sse_kms_key_id"] = c.kms_key_id
        client_options = {
            "allow_http": parts.scheme == "http",
            "connect_timeout": timedelta(seconds=options.connect_timeout),
            "read_timeout": timedelta(seconds=options.read_timeout),
            # The shared loop's per-call deadline bounds each call; obstore's total timeout must not cut it shorter.
            "timeout": timedelta(days=1),
            "pool_max_idle_per_host": str(options.pool_size),
        }
        retry = {
            "max_retries": 0,
            "retry_timeout": timedelta(seconds=options.retry.deadline),
            "backoff": {"init_backoff": timedelta(milliseconds=1), "max_backoff": timedelta(milliseconds=1), "base": 2},
        }
        return stores.S3Store(
            c.bucket,
            config=settings,
            client_options=client_options,
            retry_config=retry,
            credential_provider=lambda: credential,
        )

    # -- what the shared layer asks -----------------------------------------------------------------------------

    def classify(self, error: BaseException) -> Failure:
        if obstore_failures.raised_by_obstore(error):
            return failures.classify_obstore(error)
        return failures.classify(error)

    def check_metadata(self, metadata: Mapping[str, str]) -> None:
        return None

    def secrets(self) -> list[str]:
        return self.sdk.secrets()

    def describe(self) -> str:
        return self.sdk.describe() + ", client='obstore'"

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
    ) -> Awaitable[Any]:
        """The put's one request, as a coroutine made without a layer of its own (one per page stored)."""
        if len(data) > min(self.config.multipart_threshold, obstore_calls.LARGEST_PUT):
            return self.sdk.put(
                name,
                data,
                metadata=metadata,
                tags=tags,
                storage_class=storage_class,
                tier=tier,
                if_absent=if_absent,
                calls=calls,
            )
        attributes = {**metadata, TIER_MARKER: tier.value, "Storage-Class": storage_class}
        if self._store is None or self._expires is not None:  # made, or its credentials refreshed, first
            return self._put_on_store(name, bytes(data), attributes, tags, if_absent)
        return obstore_calls.put(
            self._obstore,
            self._store,
            name,
            bytes(data),  # obstore takes one buffer; a small body's join costs little
            attributes=attributes,
            tags=tags,
            if_absent=if_absent,
            classify=failures.classify_obstore,
        )

    async def _put_on_store(
        self, name: str, body: bytes, attributes: dict[str, str], tags: Mapping[str, str], if_absent: bool
    ) -> None:
        store = await self.store()
        await obstore_calls.put(
            self._obstore,
            store,
            name,
            body,
            attributes=attributes,
            tags=tags,
            if_absent=if_absent,
            classify=failures.classify_obstore,
        )

    async def get(self, name: str, start: int, length: int | None) -> Buffer:
        return await obstore_calls.get(self._obstore, await self.store(), name, start, length)

    async def head(self, name: str) -> Head:
        return await self.sdk.head(name)

    async def holds(self, name: str, data: Chunks) -> bool | None:
        meta = await self._obstore.head_async(await self.store(), name)
        if meta["size"] != len(data):
            return False
        if etag_matches(str(meta["e_tag"] or ""), data, self.config.multipart_chunk):
            return True
        return await self.sdk.holds(name, data)  # SSE-KMS ETags are no MD5: the SDK sees the encryption and CRC32

    async def list_page(
        self, prefix: str, token: str | None, limit: int | None = None
    ) -> tuple[Sequence[Listed], str | None]:
        # Through the SDK: obstore's listing drops the storage class and the response's time, without which no
        # entry carries a change token and the catalog trusts no row (every `ls -l` row would be a HEAD).
        return await self.sdk.list_page(prefix, token, limit)

    async def delete(self, name: str) -> None:
        store = await self.store()
        await self._obstore.head_async(store, name)  # raises FileNotFoundError when there is nothing to delete
        await self._obstore.delete_async(store, name)

    async def delete_if(self, name: str, version: str) -> None:
        """Through the SDK: obstore sends no condition on a delete."""
        await self.sdk.delete_if(name, version)

    async def delete_batch(self, names: Sequence[str]) -> list[tuple[str, Failure]] | None:
        return await self.sdk.delete_batch(names)

    async def set_class(
        self, name: str, storage_class: str, tier: StorageTier, tags: Mapping[str, str], calls: Calls
    ) -> None:
        await self.sdk.set_class(name, storage_class, tier, tags, calls)

    async def restore(self, name: str, *, days: int, speed: RestoreSpeed) -> None:
        await self.sdk.restore(name, days=days, speed=speed)

    async def aclose(self) -> None:
        self._store = None
        await self.sdk.aclose()
