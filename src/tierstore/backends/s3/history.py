"""S3's history requests (:class:`~tierstore.backends.cloud.history.HistoryClient`), through the aioboto3 client on
both data paths (obstore has no request for versions).

Contract:

* ``versions_page``: one ``ListObjectVersions`` page; versions and delete markers, each ``current`` when S3 says it
  is the key's latest (``IsLatest``); the token is S3's pair of markers (``NextKeyMarker``, ``NextVersionIdMarker``).
  On a bucket never versioned every object is one version, id ``null``, the latest.
* ``delete_versions``: one ``DeleteObjects`` request naming each key with its ``VersionId`` (quiet: only errors
  answer); each error is classified from its code; its message is kept (S3's words for Object Lock, a legal hold).
  An error naming no version id (moto's) counts for every version of its key in the request.
* A store that answers 501 ``NotImplemented`` (an S3-compatible store without versions) to a listing of versions
  gives NotSupportedError, never retried; to ``GetBucketVersioning``, a note; to Object Lock, no lock.
* ``settings``: ``GetBucketVersioning`` (no status: never versioned, ``off``) and ``GetObjectLockConfiguration``
  (``ObjectLockConfigurationNotFoundError``: no lock); a request the credentials may not send gives None and a note.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from tierstore.backends.cloud.failure import Failure
from tierstore.backends.history import HistorySettings, StoredVersion, Versioning
from tierstore.backends.s3 import failures
from tierstore.backends.s3.client import SdkClient
from tierstore.errors import NotSupportedError

_NO_LOCK: Final = "ObjectLockConfigurationNotFoundError"
_UNIMPLEMENTED: Final = "NotImplemented"
_VERSIONING: Final[dict[str, Versioning]] = {"Enabled": "enabled", "Suspended": "suspended"}


class S3History:
    """S3's version requests, one attempt each."""

    batch_limit = 1_000

    def __init__(self, sdk: SdkClient) -> None:
        self.sdk = sdk

    async def versions_page(self, prefix: str, token: object | None) -> tuple[Sequence[StoredVersion], object | None]:
        client = await self.sdk.sdk()
        params: dict[str, Any] = {"Bucket": self.sdk.config.bucket, "Prefix": prefix}
        if isinstance(token, tuple):
            params["KeyMarker"], params["VersionIdMarker"] = token
        try:
            page = await client.list_object_versions(**params)
        except Exception as exc:
            _refuse_if_unimplemented(exc, "ListObjectVersions")
            raise
        found = [
            StoredVersion(str(v["Key"]), str(v["VersionId"]), bool(v.get("IsLatest")), False, int(v.get("Size", 0)))
            for v in page.get("Versions", [])
        ]
        found += [
            StoredVersion(str(m["Key"]), str(m["VersionId"]), bool(m.get("IsLatest")), True)
            for m in page.get("DeleteMarkers", [])
        ]
        following = None
        if page.get("IsTruncated"):
            following = (str(page.get("NextKeyMarker", "")), str(page.get("NextVersionIdMarker", "")))
        return found, following

    async def delete_versions(self, versions: Sequence[StoredVersion]) -> list[tuple[StoredVersion, Failure, str]]:
        client = await self.sdk.sdk()
        request = {"Objects": [{"Key": v.key, "VersionId": v.version_id} for v in versions], "Quiet": True}
        answer = await client.delete_objects(Bucket=self.sdk.config.bucket, Delete=request)
        failed = []
        for error in answer.get("Errors") or []:
            key, version_id = str(error.get("Key", "")), error.get("VersionId")
            code = str(error.get("Code") or "")
            if code == "NoSuchVersion":  # gone already
                continue
            failure, words = failures.from_answer(None, code), f"{code}: {error.get('Message', '')}".strip()
            # An error without its VersionId (moto's) refuses every version of the key asked for: which was
            # deleted, the next listing tells; a marker must not go while any may still be there.
            failed += [
                (v, failure, words)
                for v in versions
                if v.key == key and (version_id is None or v.version_id == str(version_id))
            ]
        return failed

    async def settings(self) -> HistorySettings:
        client = await self.sdk.sdk()
        bucket = self.sdk.config.bucket
        notes: list[str] = []
        versioning: Versioning | None = None
        locked: bool | None = None
        try:
            answer = await client.get_bucket_versioning(Bucket=bucket)
            versioning = _VERSIONING.get(str(answer.get("Status", "")), "off")
        except Exception as exc:
            failure = failures.classify(exc)
            if failure.code == _UNIMPLEMENTED or failure.status == 501:
                notes.append("this S3-compatible store does not implement GetBucketVersioning")
            elif failure.kind == "denied":
                notes.append("the credentials may not read the bucket's versioning (s3:GetBucketVersioning)")
            else:
                raise
        try:
            answer = await client.get_object_lock_configuration(Bucket=bucket)
            locked = answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
        except Exception as exc:
            failure = failures.classify(exc)
            if failure.code in (_NO_LOCK, _UNIMPLEMENTED) or failure.status == 501:  # no lock, or a store without any
                locked = False
            elif failure.kind == "denied":
                notes.append(
                    "the credentials may not read the bucket's Object Lock (s3:GetBucketObjectLockConfiguration)"
                )
            else:
                raise
        return HistorySettings(versioning=versioning, locked=locked, soft_delete_days=0.0, notes=tuple(notes))


def _refuse_if_unimplemented(error: Exception, request: str) -> None:
    """NotSupportedError for an S3-compatible store that does not implement ``request`` (501 NotImplemented): not a
    failure worth retrying, and one the purge reports rather than fails on."""
    failure = failures.classify(error)
    if failure.status == 501 or failure.code == _UNIMPLEMENTED:
        raise NotSupportedError(f"this S3-compatible store does not implement {request}") from error
