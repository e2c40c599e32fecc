"""The aioboto3 :class:`~tierstore.backends.cloud.client.ObjectClient` of S3: every request, and the only path for
what obstore cannot do (restore, storage-class changes, tag reads, batch deletes, archive state).

Contract, on top of :mod:`tierstore.backends.cloud.client`:

* ``metadata`` is S3 user metadata, with the tier recorded under ``tierstore-tier``; ``tags`` are object tags;
  the storage class is sent on every write. SSE parameters (:meth:`S3Config.encryption`) go on every PutObject,
  CopyObject and CreateMultipartUpload.
* ``put(if_absent=True)`` sends ``If-None-Match: *``; bodies above the threshold go up as a multipart upload
  (:mod:`tierstore.backends.s3.multipart`).
* ``set_class`` copies the object onto itself, if it is the ETag it just read: storage class and tier record
  replaced, metadata kept, tags merged. An object already so is left alone (the same tier again, or a retry
  whose earlier copy landed); an archived one not restored is ArchivedPageError, never a copy.
* ``holds`` compares the stored ETag (single-part MD5 or multipart ETag), else the stored CRC32 (SSE-KMS), with ours;
  under SSE-KMS without a CRC32 (an object obstore wrote) it cannot tell, and the backend reads the object.
* botocore's own retries are off; connect/read timeouts and the pool size come from the shared options. The
  client is created on first use in each event loop (no I/O before) and closed with that loop or by ``aclose``
  (:mod:`tierstore.loops`). Its session parses botocore's service models through the process's one loader, once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from tierstore.backends._optional import require
from tierstore.backends.base import Buffer, Chunks, RestoreSpeed
from tierstore.backends.cloud import redact
from tierstore.backends.cloud.client import Calls, Head, Listed, page_size
from tierstore.backends.cloud.failure import Failure
from tierstore.backends.s3 import failures, multipart
from tierstore.backends.s3.config import S3Config
from tierstore.backends.s3.wire import (
    TIER_MARKER,
    crc32,
    encode_tags,
    etag_matches,
    listed_token,
    parse_restore,
    response_time,
)
from tierstore.enums import StorageTier
from tierstore.errors import ArchivedPageError
from tierstore.loops import LoopClients

_RESTORE_TIERS = {"bulk": "Bulk", "standard": "Standard", "expedited": "Expedited"}
SET_CLASS_RACES: Final = 3
LIST_PAGE: Final = 1_000
"""Keys a ListObjectsV2 page asks for (S3's most)."""
"""Copies of one set_class that may find the object changed since it was read (412) before the call gives up."""


def _tag(key: str, value: str) -> dict[str, str]:
    return {"Key": key, "Value": value}


def key_of(name: str) -> str:
    """The key inside a full object name (keys hold no ``/``; a prefix ends with one)."""
    return name.rpartition("/")[2]


@dataclass(frozen=True, slots=True)
class _Opened:
    client: Any
    session: Any
    stack: contextlib.AsyncExitStack


async def _close(opened: _Opened) -> None:
    with contextlib.suppress(Exception):
        await opened.stack.aclose()


_LOADERS: dict[str | None, Any] = {}
"""botocore's data loaders by data path (``AWS_DATA_PATH``), one per process: a loader keeps every service model it
parsed, and a session makes a loader of its own, so each new client parsed S3's models again (some 100 ms of CPU, every
backend, every command)."""


def _botocore_session() -> Any:
    """A new aiobotocore session (its own credentials, region, profile) reading service models through the process's
    loader for its data path: what it parses once, every later client reuses (the models are only read)."""
    core = require("aiobotocore.session", extra="s3", package="aioboto3").AioSession()
    data_path = core.get_config_variable("data_path")
    if data_path not in _LOADERS:
        _LOADERS[data_path] = require("botocore.loaders", extra="s3", package="aioboto3").create_loader(data_path)
    core.register_component("data_loader", _LOADERS[data_path])
    return core


class SdkClient:
    """S3's requests through aiobotocore, one attempt each, for CloudBackend; the obstore path uses it too."""

    has_tags = True
    batch_limit = 1_000

    def __init__(self, config: S3Config, archives: frozenset[str]) -> None:
        self.config = config
        self.archives = archives
        self._opened: LoopClients[_Opened] = LoopClients(self._open, _close, "S3")
        self._credentials_expiry: datetime | None = None

    # -- the aiobotocore client ---------------------------------------------------------------------------------

    async def sdk(self) -> Any:
        """The aiobotocore S3 client of the running event loop, made on first use there (aiohttp is loop-bound)."""
        return (await self._opened.get()).client

    async def _open(self) -> _Opened:
        aioboto3 = require("aioboto3", extra="s3", package="aioboto3")
        config_module = require("aiobotocore.config", extra="s3", package="aioboto3")
        c, options = self.config, self.config.options
        config = config_module.AioConfig(
            connect_timeout=options.connect_timeout,
            read_timeout=options.read_timeout,
            max_pool_connections=options.pool_size,
            retries={"total_max_attempts": 1, "mode": "standard"},
            s3={"addressing_style": c.addressing_style} if c.addressing_style else None,
        )
        session = aioboto3.Session(
            botocore_session=_botocore_session(),
            aws_access_key_id=c.access_key_id,
            aws_secret_access_key=c.secret_access_key.reveal() if c.secret_access_key else None,
            aws_session_token=c.session_token.reveal() if c.session_token else None,
            region_name=c.region,
            profile_name=c.profile,
        )
        stack = contextlib.AsyncExitStack()
        try:
            # Before the first request, so that what the SDK logs at DEBUG shows none of them.
            await self._register(await session.get_credentials())
            endpoint = {"endpoint_url": c.endpoint_url} if c.endpoint_url else {}
            client = await stack.enter_async_context(session.client("s3", config=config, **endpoint))
        except BaseException:
            await stack.aclose()
            raise
        return _Opened(client, session, stack)

    @staticmethod
    async def _register(found: Any) -> tuple[str, str, str | None] | None:
        """The credentials a session resolved (arguments, environment, profile, role), kept out of every text."""
        if found is None:
            return None
        frozen = await found.get_frozen_credentials()
        for secret in (frozen.secret_key, frozen.token):
            redact.register_secret(secret)
        return frozen.access_key, frozen.secret_key, frozen.token

    async def credentials(self) -> tuple[str, str, str | None] | None:
        """The credentials the SDK resolved (arguments, environment, profile, role), for obstore to sign with."""
        found = await (await self._opened.get()).session.get_credentials()
        resolved = await self._register(found)
        expiry = getattr(found, "_expiry_time", None)  # refreshable credentials (roles, SSO) say when they end
        self._credentials_expiry = expiry if isinstance(expiry, datetime) else None
        return resolved

    def credentials_expiry(self) -> datetime | None:
        """When the credentials last handed out by :meth:`credentials` expire (None: they do not)."""
        return self._credentials_expiry

    async def endpoint_and_region(self) -> tuple[str, str]:
        """The endpoint URL and region the SDK's client resolved (obstore is pointed at the same)."""
        client = await self.sdk()
        return str(client.meta.endpoint_url), str(client.meta.region_name or "us-east-1")

    async def aclose(self) -> None:
        await self._opened.aclose()

    # -- what the shared layer asks -----------------------------------------------------------------------------

    def classify(self, error: BaseException) -> Failure:
        return failures.classify(error)

    def check_metadata(self, metadata: Mapping[str, str]) -> None:
        return None  # the shared budget already keeps inside S3's 2 KB

    def secrets(self) -> list[str]:
        return self.config.secrets()

    def describe(self) -> str:
        return self.config.describe()

    def put_params(
        self, name: str, metadata: Mapping[str, str], tags: Mapping[str, str], storage_class: str, tier: StorageTier
    ) -> dict[str, Any]:
        """The ``put_object`` arguments that store an object with its metadata, tier record, tags, storage class
        and the bucket's encryption settings."""
        params: dict[str, Any] = {
            "Bucket": self.config.bucket,
            "Key": name,
            "Metadata": {**metadata, TIER_MARKER: StorageTier(tier).value},
            "StorageClass": storage_class,
            **self.config.encryption(),
        }
        if tags:
            params["Tagging"] = encode_tags(tags)
        return params

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
        client = await self.sdk()
        params = self.put_params(name, metadata, tags, storage_class, tier)
        if len(data) > self.config.multipart_threshold:
            await multipart.upload(
                client, self.config, params, data, if_absent=if_absent, calls=calls, holds=self.holds
            )
            return
        if if_absent:
            params["IfNoneMatch"] = "*"
        await client.put_object(Body=data.payload(), ContentLength=len(data), **params)

    async def get(self, name: str, start: int, length: int | None) -> Buffer:
        client = await self.sdk()
        params: dict[str, Any] = {"Bucket": self.config.bucket, "Key": name}
        if start or length is not None:
            params["Range"] = f"bytes={start}-{'' if length is None else start + length - 1}"
        answer = await client.get_object(**params)
        async with answer["Body"] as body:
            data: bytes = await body.read()
        return data

    async def head_answer(self, name: str, *, checksums: bool = False) -> dict[str, Any]:
        """S3's raw ``head_object`` answer, with the stored checksums when ``checksums`` asks for them."""
        client = await self.sdk()
        extra = {"ChecksumMode": "ENABLED"} if checksums else {}
        answer: dict[str, Any] = await client.head_object(Bucket=self.config.bucket, Key=name, **extra)
        return answer

    async def head(self, name: str) -> Head:
        answer = await self.head_answer(name)
        metadata = dict(answer.get("Metadata") or {})
        recorded = metadata.pop(TIER_MARKER, None)
        storage_class = str(answer.get("StorageClass") or "STANDARD")  # S3 omits it for STANDARD
        archived = storage_class in self.archives
        return Head(
            size=int(answer.get("ContentLength", 0)),
            metadata=metadata,
            last_modified=answer.get("LastModified"),
            storage_class=storage_class,
            recorded_tier=recorded,
            restore=parse_restore(answer.get("Restore")) if archived else None,
            version=str(answer["ETag"]) if answer.get("ETag") else None,
        )

    async def holds(self, name: str, data: Chunks) -> bool | None:
        answer = await self.head_answer(name, checksums=True)
        if int(answer.get("ContentLength", -1)) != len(data):
            return False
        if etag_matches(str(answer.get("ETag", "")), data, self.config.multipart_chunk):
            return True
        stored_crc = answer.get("ChecksumCRC32")
        if stored_crc is not None:
            return bool(stored_crc == crc32(data))
        # Under SSE-KMS (asked for, or the bucket's default) the ETag is no MD5: without a CRC32, read to tell.
        return None if str(answer.get("ServerSideEncryption", "")).startswith("aws:kms") else False

    async def list_page(
        self, prefix: str, token: str | None, limit: int | None = None
    ) -> tuple[Sequence[Listed], str | None]:
        return await self.list_after(prefix, None, token, limit)

    async def list_after(
        self, prefix: str, after: str | None, token: str | None, limit: int | None = None
    ) -> tuple[Sequence[Listed], str | None]:
        """A page of :meth:`list_page` of the names after ``after`` (``StartAfter``): the obstore path's listing
        continues here (:func:`tierstore.backends.cloud.obstore_calls.list_page`)."""
        client = await self.sdk()
        size = page_size(limit, LIST_PAGE)
        params: dict[str, Any] = {"Bucket": self.config.bucket, "Prefix": prefix, "MaxKeys": size}
        if token:
            params["ContinuationToken"] = token
        elif after is not None:
            params["StartAfter"] = after
        page = await client.list_objects_v2(**params)
        now = response_time(page)  # the store's time, from this very response: no client clock in a token
        listed = [
            Listed(
                str(o["Key"]),
                int(o["Size"]),
                o.get("LastModified"),
                listed_token(o, now),
                str(o.get("StorageClass") or "STANDARD"),  # as head says it
            )
            for o in page.get("Contents", [])
        ]
        following = page.get("NextContinuationToken") if page.get("IsTruncated") else None
        return listed, following

    async def delete(self, name: str) -> None:
        await self.head_answer(name)  # S3 deletes a missing key without a word: the HEAD says whether it was there
        client = await self.sdk()
        await client.delete_object(Bucket=self.config.bucket, Key=name)

    async def delete_if(self, name: str, version: str) -> None:
        """Delete only while the object's ETag is ``version`` (``If-Match``: 412 otherwise, 404 when gone)."""
        client = await self.sdk()
        await client.delete_object(Bucket=self.config.bucket, Key=name, IfMatch=version)

    async def delete_batch(self, names: Sequence[str]) -> list[tuple[str, Failure]] | None:
        client = await self.sdk()
        request = {"Objects": [{"Key": name} for name in names], "Quiet": True}
        try:
            answer = await client.delete_objects(Bucket=self.config.bucket, Delete=request)
        except Exception as exc:
            if failures.classify(exc).code == "NotImplemented":  # an S3-compatible store without DeleteObjects
                return None
            raise
        errors = answer.get("Errors") or []
        return [(str(e.get("Key", "")), failures.from_answer(None, str(e.get("Code") or ""))) for e in errors]

    async def uploads_page(
        self, prefix: str, marker: tuple[str, str] | None
    ) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
        """One ``ListMultipartUploads`` page under ``prefix``: ``(name, upload id)`` each, and the next page's
        markers (None: done)."""
        client = await self.sdk()
        params: dict[str, Any] = {"Bucket": self.config.bucket, "Prefix": prefix}
        if marker is not None:
            params["KeyMarker"], params["UploadIdMarker"] = marker
        page = await client.list_multipart_uploads(**params)
        found = [(str(u["Key"]), str(u["UploadId"])) for u in page.get("Uploads") or []]
        following = None
        if page.get("IsTruncated"):
            following = (str(page.get("NextKeyMarker", "")), str(page.get("NextUploadIdMarker", "")))
        return found, following

    async def abort_upload(self, name: str, upload_id: str) -> None:
        """``AbortMultipartUpload``: its parts go (NoSuchUpload: not-found)."""
        client = await self.sdk()
        await client.abort_multipart_upload(Bucket=self.config.bucket, Key=name, UploadId=upload_id)

    async def tags(self, name: str) -> dict[str, str]:
        """The object's tags, as ``get_object_tagging`` returns them."""
        client = await self.sdk()
        answer = await client.get_object_tagging(Bucket=self.config.bucket, Key=name)
        return {str(t["Key"]): str(t["Value"]) for t in answer.get("TagSet", [])}

    async def set_class(
        self, name: str, storage_class: str, tier: StorageTier, tags: Mapping[str, str], calls: Calls
    ) -> None:
        """One idempotent attempt: read, then copy onto itself unless the object already is so; a failure anywhere
        repeats the whole of it. The copy is conditional on the ETag read, on its source and on its destination
        (``If-Match``), so it never copies another version, nor re-creates an object deleted in between: before the
        copy S3 answers 404 for the source, during it 412 for the destination (AWS; moto ignores the destination's
        condition, README: Emulators)."""
        client = await self.sdk()
        for race in range(1, SET_CLASS_RACES + 1):
            answer = await self.head_answer(name)
            metadata = dict(answer.get("Metadata") or {})
            current = str(answer.get("StorageClass") or "STANDARD")
            archived = current in self.archives and parse_restore(answer.get("Restore")).state != "restored"
            recorded = metadata.get(TIER_MARKER) == StorageTier(tier).value
            try:
                stored_tags = await self.tags(name)
            except Exception as exc:
                # moto refuses the tags of an archived object (AWS and LocalStack answer them). One copy sets class,
                # tier record and tags together, so an archived object already of this class and tier is done.
                if archived and current == storage_class and recorded and failures.classify(exc).kind == "archived":
                    return
                raise
            merged = {**stored_tags, **tags}
            if current == storage_class and recorded:
                if merged != stored_tags:  # S3 sets tags without a copy, also on an archived object
                    await client.put_object_tagging(
                        Bucket=self.config.bucket, Key=name, Tagging={"TagSet": [_tag(k, v) for k, v in merged.items()]}
                    )
                return  # already so: the same tier again, or the retry of a copy whose answer was lost
            if archived:
                raise ArchivedPageError(key_of(name))  # S3 copies an archived object only once restored
            try:
                await client.copy_object(
                    Bucket=self.config.bucket,
                    Key=name,
                    CopySource={"Bucket": self.config.bucket, "Key": name},
                    CopySourceIfMatch=str(answer.get("ETag", "")),
                    # and on the destination (the same key): a delete landing while S3 copies is not undone (AWS)
                    IfMatch=str(answer.get("ETag", "")),
                    StorageClass=storage_class,
                    # REPLACE, not COPY: the tier record changes even when the storage class does not.
                    MetadataDirective="REPLACE",
                    Metadata={**metadata, TIER_MARKER: StorageTier(tier).value},
                    TaggingDirective="REPLACE",
                    Tagging=encode_tags(merged),
                    **self.config.encryption(),
                )
                return
            except Exception as exc:
                # 412: the object changed since it was read. Archived: the copy landed already, and this is the
                # resend of an HTTP client after a dropped connection (aiohttp resends a PUT by itself). Read again.
                if race == SET_CLASS_RACES or failures.classify(exc).kind not in ("conflict", "archived"):
                    raise

    async def restore(self, name: str, *, days: int, speed: RestoreSpeed) -> None:
        client = await self.sdk()
        request = {"Days": days, "GlacierJobParameters": {"Tier": _RESTORE_TIERS[speed]}}
        try:
            await client.restore_object(Bucket=self.config.bucket, Key=name, RestoreRequest=request)
        except Exception as exc:
            if failures.classify(exc).code != "RestoreAlreadyInProgress":
                raise
