"""How S3 spells what tierstore keeps: the tier record, tags on the wire, the restore header, and stored digests.

Both data paths (aioboto3 and obstore) write objects through these names and read them back through these
parsers, so an object written by one path reads the same on the other.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import quote

from tierstore.backends.base import Chunks, RestoreStatus

TIER_MARKER: Final = "tierstore-tier"
"""User-metadata name recording the tier; the hyphen keeps it apart from every name check_metadata allows."""

MiB: Final = 1024 * 1024
MAX_PARTS: Final = 10_000

_RESTORE_HEADER: Final = re.compile(r'ongoing-request="(?P<ongoing>\w+)"(?:,\s*expiry-date="(?P<expiry>[^"]+)")?')


def encode_tags(tags: Mapping[str, str]) -> str:
    """Tags as the query string S3 takes in ``x-amz-tagging`` (PutObject, CopyObject, CreateMultipartUpload)."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in tags.items())


def parse_restore(header: str | None) -> RestoreStatus:
    """``ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"`` -> restored until then.

    No header means archived with no restore asked for; a copy whose expiry has passed is archived again.
    """
    match = _RESTORE_HEADER.search(header or "")
    if match is None:
        return RestoreStatus("archived")
    if match["ongoing"] == "true":
        return RestoreStatus("pending")
    expiry = parsedate_to_datetime(match["expiry"]) if match["expiry"] else None
    if expiry is not None and expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=UTC)
    if expiry is not None and expiry <= datetime.now(UTC):
        return RestoreStatus("archived")
    return RestoreStatus("restored", expiry)


def part_size(total: int, chunk: int) -> int:
    """The part size a multipart upload of ``total`` bytes uses: ``chunk``, grown to stay within 10,000 parts."""
    return max(chunk, -(-total // MAX_PARTS))


def _md5(data: Chunks) -> Any:
    return data.digest(hashlib.md5(usedforsecurity=False))


def etag_matches(etag: str, data: Chunks, chunk: int) -> bool:
    """Is ``etag`` what S3 computes for ``data``: the MD5 of a single PUT, or the MD5 of the part MD5s suffixed
    with the part count for a multipart upload in parts of :func:`part_size`? (Not under SSE-KMS: see crc32.)"""
    etag = etag.strip('"')
    if "-" not in etag:
        return bool(etag == _md5(data).hexdigest())
    size = part_size(len(data), chunk)
    digests = b"".join(_md5(data.window(i, i + size)).digest() for i in range(0, len(data), size))
    expected = f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{-(-len(data) // size)}"
    return etag == expected


def crc32(data: Chunks) -> str:
    """The ``x-amz-checksum-crc32`` value S3 keeps for ``data`` when the client sent one (aioboto3 does)."""
    return base64.b64encode(data.crc32().to_bytes(4, "big")).decode("ascii")


LISTING_SETTLED: Final = 5.0
"""Seconds after its last change before a listed object's token is given. S3 keeps the ETag (the bytes' MD5) across
the in-place copy of a tier change, which moves only ``LastModified``, a time to the second: an object changed
twice within one second would show one token. Past this, a change can no longer share the listed second. Measured
in the store's own time: the ``Date`` of the very listing response (:func:`response_time`), never the client's clock
(a client ahead of S3 would trust a token two changes in one second share)."""


def response_time(response: Mapping[str, Any]) -> datetime | None:
    """The store's time of an SDK response: its ``Date`` header; None when it has none that parses."""
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    date = headers.get("date") if isinstance(headers, Mapping) else None
    if not isinstance(date, str):
        return None
    try:
        when = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def listed_token(item: Mapping[str, Any], now: datetime | None) -> str | None:
    """The change token of one ListObjectsV2 entry (:attr:`tierstore.backends.base.ListEntry.version`): its ETag and
    last-modified time, or None while that time is less than :data:`LISTING_SETTLED` before ``now``, the listing
    response's own time (:func:`response_time`); None too without that time (no token rather than a guess)."""
    etag, modified = item.get("ETag"), item.get("LastModified")
    if not etag or not isinstance(modified, datetime) or now is None:
        return None
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=UTC)
    if (now - modified).total_seconds() < LISTING_SETTLED:
        return None
    return f"{etag}@{modified.isoformat()}"
