"""chuk-ai-session-manager's stored pages: plain JSON, as its ``MemoryPage.model_dump_json()`` writes them.

Such an object carries no checksum, no key and no object metadata, so only its parse is checked: a JSON document
that is not a page is :class:`~tierstore.errors.IntegrityError`. :func:`tierstore.codec.pages.decode_page` hands
over every object that :func:`looks_like_json` (a tierstore frame starts with ``TSPG``, never with ``{`` or
whitespace); :func:`describe_json_page` describes one from its body, for ``get_metadata``; its checksum, where one
is compared (``migrate``), is :func:`json_page_checksum`, the SHA-256 of its bytes.
"""

from __future__ import annotations

import hashlib
from typing import Final

from pydantic import ValidationError

from tierstore import ids
from tierstore.errors import IntegrityError
from tierstore.models import MemoryPage, PageMetadata

_FIRST_BYTES: Final = (b"{", b" ", b"\n", b"\t", b"\r")


def looks_like_json(data: bytes | bytearray | memoryview) -> bool:
    """Whether a stored object is a JSON document rather than a tierstore frame (its first byte decides)."""
    return bytes(data[:1]) in _FIRST_BYTES


def decode_json_page(data: bytes | bytearray | memoryview) -> MemoryPage:
    """The page a chuk JSON object holds; :class:`~tierstore.errors.IntegrityError` if it holds none."""
    try:
        return MemoryPage.model_validate_json(bytes(data))
    except ValidationError as exc:
        raise IntegrityError(f"object is neither a tierstore frame nor a JSON page: {exc}") from exc


def describe_json_page(data: bytes | bytearray | memoryview, key: str) -> PageMetadata:
    """What ``get_metadata`` tells of a chuk JSON page stored under ``key``, read from its body (no checksum: it
    has none; the tier its key names, else its own)."""
    try:
        page = decode_json_page(data)
    except IntegrityError as exc:
        raise IntegrityError(f"{key}: {exc}", key=key) from exc
    parsed = ids.parse_artifact_id(key)
    return PageMetadata(
        page_id=page.page_id,
        modality=page.modality.value,
        tier=(parsed[0] if parsed else page.storage_tier).value,
        compression_level=int(page.compression_level),
        size_bytes=len(data),
        created_at=page.created_at,
        artifact_id=key,
        page_type=page.page_type.value,
    )


def json_page_checksum(data: bytes | bytearray | memoryview) -> str:
    """``sha256:<hex>`` of a chuk JSON page's bytes, once it parses as a page (IntegrityError if it does not)."""
    decode_json_page(data)
    return "sha256:" + hashlib.sha256(data).hexdigest()
