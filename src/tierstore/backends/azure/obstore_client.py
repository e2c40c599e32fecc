"""The Azure data path through obstore (``tierstore[fast]``), beside the SDK client for what obstore lacks.

Contract: puts (plain and ``If-None-Match: *``) up to the SDK's ``max_single_put_size``, whole and ranged gets,
and listings go through obstore's ``AzureStore``; every other request goes to the wrapped
:class:`~tierstore.backends.azure.client.SdkClient`, so both paths store the same bytes, metadata, index tags
(with the tier record) and access tier, and read each other's blobs. Why the rest stays on the SDK (obstore 0.12):

* ``head`` and the digest check: obstore's head answers neither metadata, nor the access tier and archive
  status, nor Content-MD5.
* ``delete``: obstore sends even a single delete as a Blob Batch request, which a service without Blob Batch
  refuses; and its bulk delete stops at the first missing blob instead of answering each.
* access tiers after the upload, rehydration, tag merges: obstore has no request for them.
* uploads above ``max_single_put_size``: obstore's multipart upload can neither be conditional nor store a
  Content-MD5; the SDK stages the blocks and commits them under ``If-None-Match: *`` with the digest.

Put Blob gets its Content-MD5 from the service (Azure computes it when the request carries none). obstore's
retries are off (``max_retries=0``); connect and read timeouts and the pool size come from the options. The one
exception mirrors the SDK path's transport: an overwriting put whose connection dropped before the answer is
sent once more at once, as aiohttp does. obstore lists by path segment: a key prefix is listed from its
directory, starting just before the prefix (``startFrom``), and filtered here; the token is the last name seen.
obstore is given the endpoint in its configuration (no process-wide environment variable), which also serves the
emulator's path-style URL. A process that used obstore pauses at exit (:mod:`tierstore.backends.cloud.obstore_calls`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Final

from tierstore.backends._optional import require
from tierstore.backends.azure.client import SdkClient
from tierstore.backends.azure.credentials import ObstoreAccess
from tierstore.backends.azure.failures import classify
from tierstore.backends.base import Buffer, Chunks, RestoreSpeed
from tierstore.backends.cloud import obstore_calls, redact
from tierstore.backends.cloud.client import Calls, Head, Listed, page_size
from tierstore.backends.cloud.failure import Failure
from tierstore.enums import StorageTier
from tierstore.errors import ConfigurationError

_NO_OVERALL_TIMEOUT: Final = timedelta(days=1)
"""obstore's whole-request timeout, out of the way: the shared per-call deadline bounds every call instead."""


FIX_BAD_KEY: Final = (
    "; the account key (AccountKey= in the connection string) is not valid base64: copy it again from the storage "
    "account's Access keys"
)


class ObstoreClient:
    """Azure's data path through obstore (reads, writes, listings); what obstore cannot do goes to ``sdk``."""

    has_tags = True

    def __init__(self, sdk: SdkClient, access: ObstoreAccess) -> None:
        self._obstore = require("obstore", extra="fast", package="obstore")
        self.sdk = sdk
        self._access = access
        self.batch_limit = sdk.batch_limit
        self._store: Any = None

    def _azure_store(self) -> Any:
        if self._store is None:
            obstore_calls.note_started()
            if self._access.token_provider is not None and not self._access.secure:
                raise ConfigurationError("a token credential is only sent over HTTPS: use an https:// account_url")
            from obstore.store import AzureStore

            options = self.sdk.options
            try:
                self._store = AzureStore(
                    self.sdk.container,
                    config=self._access.config,  # type: ignore[arg-type]
                    client_options={
                        "allow_http": not self._access.secure,
                        "connect_timeout": timedelta(seconds=options.connect_timeout),
                        "read_timeout": timedelta(seconds=options.read_timeout),
                        "timeout": _NO_OVERALL_TIMEOUT,
                        "pool_max_idle_per_host": str(options.pool_size),
                    },
                    retry_config={"max_retries": 0, "retry_timeout": _NO_OVERALL_TIMEOUT},
                    credential_provider=self._access.token_provider,  # type: ignore[arg-type]
                )
            except Exception as exc:  # obstore reports a bad configuration in several types
                redact.scrub_error(exc)
                text = redact.scrub(str(exc)).split("\n\nDebug source:")[0].strip()  # not Rust's debug dump
                fix = FIX_BAD_KEY if "Invalid Access Key" in text else ""
                raise ConfigurationError(f"cannot build obstore's Azure store: {text}{fix}") from exc
        return self._store

    # -- obstore's part -------------------------------------------------------------------------------------

    def classify(self, error: BaseException) -> Failure:
        return classify(error)

    def check_metadata(self, metadata: Mapping[str, str]) -> None:
        self.sdk.check_metadata(metadata)

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
        if len(data) > min(self.sdk.max_single_put_size, obstore_calls.LARGEST_PUT):
            await self.sdk.put(
                name,
                data,
                metadata=metadata,
                tags=tags,
                storage_class=storage_class,
                tier=tier,
                if_absent=if_absent,
                calls=calls,
            )
            return
        await obstore_calls.put(
            self._obstore,
            self._azure_store(),
            name,
            bytes(data),  # obstore takes one buffer; a small body's join costs little
            attributes={**metadata, "Storage-Class": storage_class},
            tags=self.sdk.record_tags(tags, tier),
            if_absent=if_absent,
            classify=classify,
        )

    async def get(self, name: str, start: int, length: int | None) -> Buffer:
        return await obstore_calls.get(self._obstore, self._azure_store(), name, start, length)

    async def list_page(
        self, prefix: str, token: str | None, limit: int | None = None
    ) -> tuple[Sequence[Listed], str | None]:
        size = page_size(limit, self.sdk.list_page_size)
        return await obstore_calls.list_page(self._obstore, self._azure_store(), prefix, token, size, sdk=self.sdk)

    # -- the SDK's part -------------------------------------------------------------------------------------

    async def head(self, name: str) -> Head:
        return await self.sdk.head(name)

    async def holds(self, name: str, data: Chunks) -> bool | None:
        return await self.sdk.holds(name, data)

    async def delete(self, name: str) -> None:
        await self.sdk.delete(name)

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

    def secrets(self) -> list[str]:
        return self.sdk.secrets()

    def describe(self) -> str:
        return f"{self.sdk.describe()}, client='obstore'"

    async def aclose(self) -> None:
        self._store = None  # obstore keeps no connection that needs closing
        await self.sdk.aclose()
