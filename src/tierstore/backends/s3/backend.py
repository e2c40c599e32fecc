"""Amazon S3 (and S3-compatible stores): :class:`S3Backend`, on the shared cloud layer.

Contract, on top of :mod:`tierstore.backends.cloud.backend`:

* Metadata is S3 user metadata (the tier recorded as ``tierstore-tier``, hidden from ``head``); tags are object
  tags. Tiers are storage classes: L0-L3 STANDARD and L4 GLACIER unless ``storage_classes`` says otherwise;
  GLACIER and DEEP_ARCHIVE are archives (a read needs ``restore`` first, whose progress S3 reports in the
  ``x-amz-restore`` header), GLACIER_IR and the rest read at once.
* ``set_tier`` copies the object onto itself (metadata replaced by itself with the new tier record, tags merged).
* Create-if-absent is ``If-None-Match: *`` on PutObject and on CompleteMultipartUpload; bodies above
  ``multipart_threshold`` go up in ``multipart_chunk`` parts, ``multipart_concurrency`` at a time.
* ``sse="AES256"`` or ``"aws:kms"`` (with ``kms_key_id``) is sent on every put, copy and multipart create.
* Credentials come from the arguments, else the SDK's chain (environment, ``AWS_PROFILE``, config files, roles);
  the endpoint from ``endpoint_url``, else ``AWS_ENDPOINT_URL``, else AWS.
* Data path: obstore (``tierstore[fast]``) when ``options.client`` is ``"obstore"``, or ``"auto"`` and obstore is
  installed; else aioboto3. Either reads what the other wrote.
* Versions (:mod:`tierstore.backends.history`): listed and deleted by version id through aioboto3 on both data
  paths (:mod:`tierstore.backends.s3.history`).
* No SDK is imported until the first request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from tierstore.backends.cloud import obstore_calls
from tierstore.backends.cloud.backend import CloudBackend
from tierstore.backends.cloud.client import ObjectClient
from tierstore.backends.cloud.history import CloudHistory
from tierstore.backends.cloud.options import CloudOptions
from tierstore.backends.cloud.redact import Secret
from tierstore.backends.cloud.tiers import TierMap
from tierstore.backends.s3.client import SdkClient
from tierstore.backends.s3.config import S3Config
from tierstore.backends.s3.history import S3History
from tierstore.backends.s3.obstore_client import ObstoreClient
from tierstore.backends.s3.provider import AddressingStyle, ServerSideEncryption
from tierstore.backends.s3.wire import MiB
from tierstore.enums import StorageTier
from tierstore.errors import ObjectNotFoundError

__all__ = ["ARCHIVE_CLASSES", "DEFAULT_STORAGE_CLASSES", "STORAGE_CLASSES", "S3Backend"]

DEFAULT_STORAGE_CLASSES: Final[Mapping[StorageTier, str]] = {
    StorageTier.L0: "STANDARD",
    StorageTier.L1: "STANDARD",
    StorageTier.L2: "STANDARD",
    StorageTier.L3: "STANDARD",
    StorageTier.L4: "GLACIER",
}
STORAGE_CLASSES: Final = frozenset(
    {
        "STANDARD",
        "STANDARD_IA",
        "ONEZONE_IA",
        "INTELLIGENT_TIERING",
        "REDUCED_REDUNDANCY",
        "GLACIER_IR",
        "GLACIER",
        "DEEP_ARCHIVE",
        "EXPRESS_ONEZONE",
    }
)
ARCHIVE_CLASSES: Final = frozenset({"GLACIER", "DEEP_ARCHIVE"})


class S3Backend(CloudHistory, CloudBackend):
    """A bucket of Amazon S3 or an S3-compatible store (see :mod:`tierstore.backends.s3` for the contract)."""

    name = "s3"
    container_word = "bucket"

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
        options: CloudOptions | None = None,
        sse: ServerSideEncryption | None = None,
        kms_key_id: str | None = None,
        multipart_threshold: int = 64 * MiB,
        multipart_chunk: int = 16 * MiB,
        multipart_concurrency: int = 8,
    ) -> None:
        options = options or CloudOptions()
        config = S3Config(
            bucket,
            region=region,
            endpoint_url=endpoint_url,
            profile=profile,
            access_key_id=access_key_id,
            secret_access_key=Secret.wrap(secret_access_key),
            session_token=Secret.wrap(session_token),
            addressing_style=addressing_style,
            sse=sse,
            kms_key_id=kms_key_id,
            multipart_threshold=multipart_threshold,
            multipart_chunk=multipart_chunk,
            multipart_concurrency=multipart_concurrency,
            options=options,
        )
        tiers = TierMap("S3", DEFAULT_STORAGE_CLASSES, storage_classes, known=STORAGE_CLASSES, archives=ARCHIVE_CLASSES)
        sdk = SdkClient(config, tiers.archives)
        client: ObjectClient = ObstoreClient(sdk) if obstore_calls.chosen(options.client) else sdk
        super().__init__(bucket, client, tiers, prefix=prefix, options=options)
        self.history_client = S3History(sdk)  # on both data paths: obstore lists no versions
        self._sdk = sdk

    async def discard_unfinished(self, prefix: str) -> int:
        """Abort every unfinished multipart upload of a key under ``prefix`` (a writer killed mid-upload leaves its
        parts, which hold its bytes, until an abort or the bucket's lifecycle rule); how many. Through aioboto3 on
        both data paths. An upload still running is aborted too: its completion then fails."""
        name = self.prefix + prefix
        aborted = 0
        marker: tuple[str, str] | None = None
        while True:
            page, marker = await self._run(
                f"list unfinished uploads under {prefix!r}", None, self._uploads_fetcher(name, marker)
            )
            for key, upload_id in page:
                try:
                    await self._run(f"abort upload of {key!r}", None, self._upload_aborter(key, upload_id))
                except ObjectNotFoundError:
                    continue  # ended meanwhile
                aborted += 1
            if marker is None:
                return aborted

    def _uploads_fetcher(
        self, name: str, marker: tuple[str, str] | None
    ) -> Callable[[], Awaitable[tuple[list[tuple[str, str]], tuple[str, str] | None]]]:
        return lambda: self._sdk.uploads_page(name, marker)

    def _upload_aborter(self, name: str, upload_id: str) -> Callable[[], Awaitable[None]]:
        return lambda: self._sdk.abort_upload(name, upload_id)
