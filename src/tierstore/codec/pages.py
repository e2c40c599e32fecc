"""A page in a frame: its content as raw bytes, its other fields as pydantic's JSON, and its identity.

Contract: :func:`prepare_page` encodes a validated page once, before it has a key (the costly part of storing it);
:func:`frame_page` then frames it for any key cheaply. The content is stored raw: ``text`` as UTF-8, ``bytes`` as
they are (never base64), ``json`` as compact JSON, ``none`` for no content. Content in a mutable buffer
(``bytearray``, ``memoryview``) is copied to ``bytes`` first (:func:`tierstore.validate.snapshot`), so the checksum
and the stored body are of the same bytes whatever the caller does to its buffer; ``bytes`` and ``str`` are never
copied. JSON content is encoded once; a change to it while it is encoded (in a worker thread, for a big page) that
breaks the encoding is :class:`InvalidInputError`. The page section is pydantic's own JSON
of the page without its content, parsed straight back into a ``MemoryPage`` by :func:`decode_page`. Plain JSON as
written by chuk-ai-session-manager's ``MemoryPage.model_dump_json()`` is read too, by
:mod:`tierstore.chuk.legacy_json`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final, NamedTuple

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError, from_json

from tierstore.chuk import legacy_json
from tierstore.codec.compression import Compression, compress
from tierstore.codec.frame import Buffer, Encoded, Header, decode_frame, frame, json_key, of_kind
from tierstore.codec.speed import TOKENS, sha256
from tierstore.errors import IntegrityError, InvalidInputError
from tierstore.models import MemoryPage
from tierstore.validate import check_json, snapshot

VOLATILE_FIELDS: Final = ("last_accessed", "access_count", "dirty", "storage_tier", "artifact_id")
"""Bookkeeping that changes as a page is used, not what the page holds: left out of :attr:`PreparedPage.identity`,
so a checkpoint does not upload a page again because it was read or moved between tiers (the checkpoint's manifest
carries their latest values instead)."""
_VOLATILE: Final = set(VOLATILE_FIELDS)
_STABLE_FIELDS_ONLY: Final = {"content", *VOLATILE_FIELDS}
_NOT_CONTENT: Final = {"content"}
_to_json: Final = MemoryPage.__pydantic_serializer__.to_json
"""The serializer itself, as model_dump_json calls it, but with bytes out (no str to encode again)."""


class PreparedPage(NamedTuple):
    """A page encoded once, before it has a key. ``identity`` is the SHA-256 over the page's content and its fields
    except :data:`VOLATILE_FIELDS` (equal identities, same page; "" unless asked for)."""

    page_id: str
    page_json: bytes
    content_kind: str
    body: bytes
    flags: int
    body_sha256: str
    identity: str


def _content_parts(content: Any) -> tuple[str, bytes]:
    kind = type(content)
    if kind is str:
        return "text", content.encode("utf-8", "surrogatepass")
    if kind is bytes:
        return "bytes", content
    if content is None:
        return "none", b""
    if isinstance(content, str):
        return "text", content.encode("utf-8", "surrogatepass")
    if isinstance(content, bytes):
        return "bytes", content
    if isinstance(content, bytearray | memoryview):
        return "bytes", snapshot(content)
    try:
        check_json(content, "page content")
        return "json", json.dumps(content, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except InvalidInputError:
        raise
    except (RuntimeError, TypeError, ValueError) as exc:  # changed meanwhile, from the loop ("changed size during")
        raise InvalidInputError(f"page content changed while it was encoded: {exc}") from None


def prepare_page(page: MemoryPage, compression: Compression, *, identity: bool = False) -> PreparedPage:
    """Encode a (validated) page's content and fields once; ``identity`` also computes
    :attr:`PreparedPage.identity`, which only checkpoints need."""
    content_kind, raw = _content_parts(page.content)
    if page.metadata:
        check_json(page.metadata, "page metadata")
    try:
        if identity:
            stable = _to_json(page, exclude=_STABLE_FIELDS_ONLY)
            state = _to_json(page, include=_VOLATILE)
            page_json = stable[:-1] + b"," + state[1:]  # one JSON object: the stable fields, then the bookkeeping
        else:
            page_json = _to_json(page, exclude=_NOT_CONTENT)
    except PydanticSerializationError:
        raise InvalidInputError(f"a field of page {page.page_id!r} cannot be stored (e.g. a lone surrogate)") from None
    raw_digest = sha256(raw).hexdigest()
    digest = ""
    if identity:
        digest = hashlib.sha256(b"\n".join((stable, content_kind.encode(), raw_digest.encode()))).hexdigest()
    packed = compress(compression, raw)
    if packed is None:
        return PreparedPage(page.page_id, page_json, content_kind, raw, 0, raw_digest, digest)
    body, flags = packed
    return PreparedPage(page.page_id, page_json, content_kind, body, flags, hashlib.sha256(body).hexdigest(), digest)


def frame_page(prepared: PreparedPage, artifact_id: str | None) -> Encoded:
    """The frame of a prepared page under ``artifact_id`` (None: a key the backend chooses), with a write token
    of its own."""
    header = f'{{"artifact":{json_key(artifact_id)},"write":"{TOKENS.next()}","content":"{prepared.content_kind}",'
    header += f'"body":"{prepared.body_sha256}"}}'
    return frame("page", header.encode(), prepared.page_json, prepared.body, prepared.flags)


def _content(kind: str, body: memoryview) -> Any:
    if kind == "none":
        return None
    if kind == "text":
        return str(body, "utf-8", "surrogatepass")
    if kind == "bytes":
        return bytes(body)
    if kind == "json":
        return json.loads(body.tobytes())
    raise IntegrityError(f"unknown content kind {kind!r}")


def page_fields(header: Header) -> dict[str, Any]:
    """The page fields (all but content) of a verified page header."""
    try:
        fields = from_json(bytes(header.page))
    except ValueError as exc:
        raise IntegrityError("page section is not JSON") from exc
    if not isinstance(fields, dict):
        raise IntegrityError("page header holds no page")
    return fields


def decode_page(data: Buffer, key: str | None) -> tuple[MemoryPage, str | None]:
    """The page stored under ``key`` and the checksum it was verified against (None for legacy JSON)."""
    if legacy_json.looks_like_json(data):
        return legacy_json.decode_json_page(data), None
    decoded = of_kind(decode_frame(data, key), "page")
    try:
        page = MemoryPage.model_validate_json(bytes(decoded.page))
        page.content = _content(decoded.header["content"], decoded.body)
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise IntegrityError(f"page header is malformed: {exc}") from exc
    return page, decoded.checksum
