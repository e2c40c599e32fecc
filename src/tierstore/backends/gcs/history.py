"""GCS's history requests (:class:`~tierstore.backends.cloud.history.HistoryClient`) on google-cloud-storage, in
the client's thread pool like its other requests.

Contract:

* ``versions_page``: one page of ``objects.list`` with ``versions=true``: every generation of every name, the live
  one ``current`` (no ``timeDeleted``), the noncurrent ones (Object Versioning) not. The flag is sent as ``"true"``:
  the library's ``True`` goes out as ``versions=True``, which GCS reads as true and fake-gcs-server as false.
* ``delete_versions``: ``objects.delete`` with ``generation=`` for each, one request each (no batch here, as for
  deletes); 404 is a generation already gone. A generation under a retention policy or an object hold is refused
  (403) and returned with the service's words.
* ``settings``: the bucket's ``versioning``, ``retentionPolicy`` and ``softDeletePolicy`` (needs
  ``storage.buckets.get``; denied: None and a note). A bucket that reports no soft-delete policy (fake-gcs-server)
  leaves ``soft_delete_days`` None, with a note.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from tierstore.backends.cloud.failure import Failure
from tierstore.backends.gcs.client import LIST_PAGE_SIZE, GCSClient
from tierstore.backends.history import HistorySettings, StoredVersion, Versioning

_DAY: Final = 86_400


class GCSHistory:
    """GCS's generation requests, one attempt each."""

    batch_limit = 100
    """Generations deleted (one request each) per call of ``delete_versions``."""

    def __init__(self, client: GCSClient) -> None:
        self.client = client

    async def versions_page(self, prefix: str, token: object | None) -> tuple[Sequence[StoredVersion], object | None]:
        gcs = self.client

        def fetch() -> tuple[list[StoredVersion], object | None]:
            bucket = gcs._open()
            blobs = gcs._client.list_blobs(
                bucket,
                prefix=prefix,
                versions="true",
                page_size=LIST_PAGE_SIZE,
                page_token=token if isinstance(token, str) else None,
                fields="items(name,generation,size,timeDeleted),nextPageToken",
                timeout=gcs.timeout,
                retry=None,
            )
            page = next(blobs.pages, None)
            found = [
                StoredVersion(b.name, str(b.generation), b.time_deleted is None, False, int(b.size or 0))
                for b in page or ()
            ]
            following: str | None = blobs.next_page_token
            return found, following

        return await gcs._in_pool(fetch)

    async def delete_versions(self, versions: Sequence[StoredVersion]) -> list[tuple[StoredVersion, Failure, str]]:
        failed = []
        for version in versions:
            try:
                await self._delete(version)
            except Exception as exc:
                failure = self.client.classify(exc)
                if failure.kind == "not-found":
                    continue
                if failure.transient or failure.kind not in ("denied", "conflict"):
                    raise
                failed.append((version, failure, str(getattr(exc, "message", "") or failure.describe())))
        return failed

    async def _delete(self, version: StoredVersion) -> None:
        gcs, generation = self.client, int(version.version_id)
        await gcs._in_pool(
            lambda: gcs._open().delete_blob(version.key, generation=generation, timeout=gcs.timeout, retry=None)
        )

    async def settings(self) -> HistorySettings:
        gcs = self.client

        def read() -> HistorySettings:
            gcs._open()
            bucket = gcs._client.bucket(gcs.bucket_name)  # a handle of its own: the shared one's fields stay
            try:
                bucket.reload(timeout=gcs.timeout, retry=None)
            except Exception as exc:
                if gcs.classify(exc).kind != "denied":
                    raise
                return HistorySettings(
                    notes=("the credentials may not read the bucket's settings (storage.buckets.get)",)
                )
            properties = bucket._properties
            versioning: Versioning = "enabled" if (properties.get("versioning") or {}).get("enabled") else "off"
            retention = properties.get("retentionPolicy") or {}
            soft = properties.get("softDeletePolicy")
            notes = () if soft is not None else ("the bucket reports no soft-delete policy",)
            seconds = float((soft or {}).get("retentionDurationSeconds") or 0)
            return HistorySettings(
                versioning=versioning,
                locked=bool(retention.get("retentionPeriod")),
                soft_delete_days=None if soft is None else seconds / _DAY,
                notes=notes,
            )

        return await gcs._in_pool(read)
