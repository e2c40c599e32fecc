"""Azure's history requests (:class:`~tierstore.backends.cloud.history.HistoryClient`), through azure-storage-blob
(aio) on both data paths (obstore has no request for blob versions).

Contract:

* ``versions_page``: one List Blobs page with ``include=versions``: every version of every blob, the current one
  ``current``; without blob versioning a blob has no version id and is listed once, current.
* ``delete_versions``: Delete Blob with ``versionid=`` for each previous version, one request each; 404 is a
  version already gone. One an immutability policy or legal hold protects is refused (409) and returned with the
  service's words.
* ``settings``: blob soft delete from the service properties (``DeleteRetentionPolicy``; reading them needs the
  account's key or an account SAS: denied, None and a note). Blob versioning and immutability are account and
  container settings of the management plane, which this client cannot read: None, with a note.
"""

from __future__ import annotations

from collections.abc import Sequence

from tierstore.backends.azure.client import SdkClient
from tierstore.backends.cloud.failure import Failure
from tierstore.backends.history import HistorySettings, StoredVersion

_UNSEEN = (
    "blob versioning and immutability policies are settings of the storage account and container that the blob "
    "service does not show: erasure lists versions whatever they are"
)


class AzureHistory:
    """Azure's blob version requests, one attempt each."""

    batch_limit = 100
    """Versions deleted (one request each) per call of ``delete_versions``."""

    def __init__(self, sdk: SdkClient) -> None:
        self.sdk = sdk

    async def versions_page(self, prefix: str, token: object | None) -> tuple[Sequence[StoredVersion], object | None]:
        blobs = await self.sdk._blobs()
        pages = blobs.list_blobs(
            name_starts_with=prefix, include=["versions"], results_per_page=self.sdk.list_page_size
        )
        pager = pages.by_page(continuation_token=token if isinstance(token, str) else None)
        try:
            page = await pager.__anext__()
        except StopAsyncIteration:
            return [], None
        found = [
            StoredVersion(
                blob.name,
                str(blob.version_id or ""),
                blob.version_id is None or bool(blob.is_current_version),
                False,
                int(blob.size or 0),
            )
            async for blob in page
        ]
        return found, pager.continuation_token or None

    async def delete_versions(self, versions: Sequence[StoredVersion]) -> list[tuple[StoredVersion, Failure, str]]:
        blobs = await self.sdk._blobs()
        failed = []
        for version in versions:
            try:
                await blobs.delete_blob(version.key, version_id=version.version_id)
            except Exception as exc:
                failure = self.sdk.classify(exc)
                if failure.kind == "not-found":
                    continue
                if failure.transient or failure.kind not in ("denied", "conflict"):
                    raise
                failed.append((version, failure, f"{failure.describe()}: {getattr(exc, 'message', '')}".strip()))
        return failed

    async def settings(self) -> HistorySettings:
        service = (await self.sdk._services.get())[0]
        try:
            properties = await service.get_service_properties()
        except Exception as exc:
            if self.sdk.classify(exc).kind != "denied":
                raise
            notes = ("the credentials may not read the blob service's properties (soft delete)", _UNSEEN)
            return HistorySettings(notes=notes)
        policy = properties.get("delete_retention_policy")
        days = float(policy.days or 0) if policy is not None and policy.enabled else 0.0
        return HistorySettings(soft_delete_days=days, notes=(_UNSEEN,))
