"""S3's multipart upload, for bodies above the multipart threshold: create, parts in parallel, complete.

Contract:

* Each request runs under the shared retry policy (:class:`~tierstore.backends.cloud.client.Calls`); parts go up
  ``multipart_concurrency`` at a time, in parts of :func:`~tierstore.backends.s3.wire.part_size`.
* A create-if-absent upload sends ``If-None-Match: *`` on CompleteMultipartUpload. S3 answers one that raced
  another write with 409 ConditionalRequestConflict, after which that upload cannot be completed: the upload is
  aborted and S3's error leaves raw, so that the backend's retry loop (which reads it as a refusal that did not
  take effect) starts the whole upload again.
* On any failure or cancellation the upload is aborted, so no parts are left behind (the lifecycle rule in
  ``backends/aws/lifecycle.json`` sweeps what an abort could not reach).
* A retried complete that finds its upload gone (NoSuchUpload) after an attempt that may have completed it
  checks the stored object's digest: our bytes there mean done.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tierstore.backends.base import Chunks
from tierstore.backends.cloud.client import Calls
from tierstore.backends.cloud.retry import AttemptLog
from tierstore.backends.s3 import failures
from tierstore.backends.s3.wire import part_size
from tierstore.concurrency import bounded_gather
from tierstore.errors import BackendUnavailableError, TierstoreError

if TYPE_CHECKING:
    from tierstore.backends.s3.config import S3Config


logger = logging.getLogger(__name__)


class _Restart(TierstoreError):
    """Internal: CompleteMultipartUpload met a concurrent conditional write; ``cause`` is S3's own error."""

    def __init__(self, cause: Exception) -> None:
        super().__init__("the multipart upload must start over")
        self.cause = cause


Holds = Callable[[str, Chunks], Awaitable["bool | None"]]
"""Does the stored object hold exactly these bytes (None: cannot tell)? Asked of an upload that vanished."""


async def upload(
    client: Any,
    config: S3Config,
    params: dict[str, Any],
    data: Chunks,
    *,
    if_absent: bool,
    calls: Calls,
    holds: Holds,
) -> None:
    """Upload ``data`` under ``params`` (Bucket, Key and the put's headers) in parts of ``config.multipart_chunk``,
    ``config.multipart_concurrency`` at a time; ``client`` is the aioboto3 S3 client."""
    name = params["Key"]
    bucket = params["Bucket"]
    created = await calls.run(f"start upload of {name!r}", name, lambda: client.create_multipart_upload(**params))
    upload_id = created["UploadId"]
    try:
        parts = await _upload_parts(client, config, bucket, name, upload_id, data, calls)
        completed = await _complete(client, bucket, name, upload_id, parts, if_absent=if_absent, calls=calls)
    except _Restart as restart:
        await _abort(client, bucket, name, upload_id, calls)
        logger.debug("upload of %r met a racing conditional write (409): aborted, to be started again", name)
        raise restart.cause from None
    except BaseException:
        await _abort(client, bucket, name, upload_id, calls)
        raise
    if not completed and not await calls.run(f"check {name!r}", name, lambda: holds(name, data)):
        raise BackendUnavailableError(f"the upload of {name!r} vanished before it was completed")


async def _upload_parts(
    client: Any, config: S3Config, bucket: str, name: str, upload_id: str, data: Chunks, calls: Calls
) -> list[dict[str, Any]]:
    size = part_size(len(data), config.multipart_chunk)

    async def one(number: int, start: int) -> dict[str, Any]:
        part = data.window(start, start + size)  # no copy: each attempt reads the part afresh from the page
        answer = await calls.run(
            f"upload part {number} of {name!r}",
            name,
            lambda: client.upload_part(
                Bucket=bucket,
                Key=name,
                UploadId=upload_id,
                PartNumber=number,
                Body=part.reader(),
                ContentLength=len(part),
            ),
            size=len(part),
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    uploads = (one(number, start) for number, start in enumerate(range(0, len(data), size), start=1))
    return await bounded_gather(uploads, config.multipart_concurrency)


async def _complete(
    client: Any,
    bucket: str,
    name: str,
    upload_id: str,
    parts: list[dict[str, Any]],
    *,
    if_absent: bool,
    calls: Calls,
) -> bool:
    """Complete the upload; False when it was gone after an attempt of ours that may have completed it."""
    request: dict[str, Any] = {
        "Bucket": bucket,
        "Key": name,
        "UploadId": upload_id,
        "MultipartUpload": {"Parts": parts},
    }
    if if_absent:
        request["IfNoneMatch"] = "*"
    log = AttemptLog()

    async def attempt() -> bool:
        try:
            await client.complete_multipart_upload(**request)
        except Exception as exc:
            code = failures.classify(exc).code
            if code == "ConditionalRequestConflict":
                raise _Restart(exc) from exc
            if code == "NoSuchUpload" and log.maybe_applied:
                return False
            raise
        return True

    completed: bool = await calls.run(f"complete upload of {name!r}", name, attempt, log=log)
    return completed


async def _abort(client: Any, bucket: str, name: str, upload_id: str, calls: Calls) -> None:
    with contextlib.suppress(TierstoreError):
        await calls.run(
            f"abort upload of {name!r}",
            name,
            lambda: client.abort_multipart_upload(Bucket=bucket, Key=name, UploadId=upload_id),
        )
