"""The on-storage format of a page or a checkpoint manifest (format version 1).

Layout, all integers big-endian::

    0   magic      4   b"TSPG"
    4   version    1   1
    5   kind       1   1 = page, 2 = manifest, 3 = record (the bridge's own bookkeeping)
    6   flags      1   bit 0: body compressed with zstd
    7   reserved   1   0
    8   header_len 4
    12  body_len   8   stored (possibly compressed) length
    20  sha256     32  over bytes 0-19, the header and the body
    52  header     header_len bytes of UTF-8 JSON
    ..  body       body_len bytes

The header holds the page without its content, and how to read the body back: ``text`` (UTF-8), ``bytes`` (raw,
never base64) or ``json``. Decoding checks the magic, the version, the exact total length and the digest before
it parses anything, so a flipped, truncated or foreign object raises :class:`IntegrityError`, never a page.

Plain JSON as written by chuk-ai-session-manager's ``MemoryPage.model_dump_json()`` is read too (it carries no
checksum, so only its parse is checked).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import ValidationError

from tierstore.backends._optional import require
from tierstore.errors import IntegrityError, InvalidInputError
from tierstore.models import CheckpointManifest, MemoryPage

MAGIC: Final = b"TSPG"
VERSION: Final = 1
PREFIX: Final = struct.Struct(">4sBBBBIQ")
DIGEST_SIZE: Final = 32
HEADER_START: Final = PREFIX.size + DIGEST_SIZE

Kind = Literal["page", "manifest", "record"]
Compression = Literal["none", "zstd"]
_KIND_CODES: Final[dict[Kind, int]] = {"page": 1, "manifest": 2, "record": 3}
_KINDS_BY_CODE: Final = {code: kind for kind, code in _KIND_CODES.items()}
_ZSTD: Final = 1
_COMPRESS_MIN_BYTES: Final = 512


@dataclass(frozen=True, slots=True)
class Encoded:
    data: bytes
    checksum: str
    """``sha256:<hex>`` of the stored frame: equal checksums mean byte-identical objects."""


@dataclass(frozen=True, slots=True)
class Frame:
    kind: Kind
    header: dict[str, Any]
    body: memoryview
    checksum: str


def _zstd() -> Any:
    return require("zstandard", extra="zstd", package="zstandard")


def _frame(kind: Kind, header: dict[str, Any], body: bytes, compression: Compression) -> Encoded:
    flags = 0
    if compression == "zstd" and len(body) >= _COMPRESS_MIN_BYTES:
        packed = _zstd().ZstdCompressor(level=3).compress(body)
        if len(packed) < len(body):
            body, flags = packed, _ZSTD
    try:
        header_bytes = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise InvalidInputError(f"a {kind} field holds a lone surrogate, which UTF-8 cannot store") from None
    prefix = PREFIX.pack(MAGIC, VERSION, _KIND_CODES[kind], flags, 0, len(header_bytes), len(body))
    digest = hashlib.sha256(prefix)
    digest.update(header_bytes)
    digest.update(body)
    return Encoded(b"".join((prefix, digest.digest(), header_bytes, body)), "sha256:" + digest.hexdigest())


def _check_text(text: str, what: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # pydantic's JSON mode would silently replace it inside ``Any`` fields such as ``metadata``.
            raise InvalidInputError(f"{what} holds a lone surrogate, which UTF-8 cannot store") from None


def check_json(value: Any, what: str) -> None:
    """Refuse what would not come back equal from JSON: only dicts with str keys, lists, str, int, finite float,
    bool and None (a tuple would come back a list, a datetime a str, NaN not at all), and no lone surrogates."""
    if isinstance(value, str):
        _check_text(value, what)
        return
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"{what} holds {value}, which JSON cannot represent")
        return
    if isinstance(value, list):
        for item in value:
            check_json(item, what)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError(f"{what} has a key of type {type(key).__name__}; JSON keys are str")
            _check_text(key, what)
            check_json(item, what)
        return
    raise InvalidInputError(
        f"{what} holds a {type(value).__name__}; use str, bytes, or JSON data (dict, list, str, int, float, bool, None)"
    )


def _content_parts(content: Any) -> tuple[str, bytes]:
    if content is None:
        return "none", b""
    if isinstance(content, str):
        return "text", content.encode("utf-8", "surrogatepass")
    if isinstance(content, bytes | bytearray | memoryview):
        return "bytes", bytes(content)
    check_json(content, "page content")
    return "json", json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


def encode_page(page: MemoryPage, *, compression: Compression = "none") -> Encoded:
    content_kind, body = _content_parts(page.content)
    check_json(page.metadata, "page metadata")
    fields = page.model_dump(mode="json", exclude={"content"})
    return _frame("page", {"page": fields, "content": content_kind}, body, compression)


def encode_manifest(manifest: CheckpointManifest) -> Encoded:
    return _frame("manifest", {}, manifest.model_dump_json().encode(), "none")


def encode_record(record: dict[str, Any]) -> Encoded:
    return _frame("record", {}, json.dumps(record, separators=(",", ":")).encode(), "none")


def decode_record(data: bytes) -> dict[str, Any]:
    frame = decode_frame(data)
    if frame.kind != "record":
        raise IntegrityError(f"object is a {frame.kind}, not a bookkeeping record")
    record: dict[str, Any] = json.loads(bytes(frame.body))
    return record


def read_prefix(data: bytes | memoryview) -> tuple[Kind, int, int, int]:
    """Check the fixed prefix; returns ``(kind, flags, header_len, body_len)``."""
    if len(data) < HEADER_START:
        raise IntegrityError(f"object is {len(data)} bytes, shorter than a tierstore frame")
    magic, version, kind_code, flags, _reserved, header_len, body_len = PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise IntegrityError("object is not a tierstore frame (bad magic)")
    if version != VERSION:
        raise IntegrityError(f"object has format version {version}; this tierstore reads version {VERSION}")
    kind = _KINDS_BY_CODE.get(kind_code)
    if kind is None or flags & ~_ZSTD:
        raise IntegrityError("object has an unknown kind or flags")
    return kind, flags, header_len, body_len


def decode_frame(data: bytes) -> Frame:
    view = memoryview(data)
    kind, flags, header_len, body_len = read_prefix(view)
    if len(view) != HEADER_START + header_len + body_len:
        raise IntegrityError(f"object is {len(view)} bytes but its frame says {HEADER_START + header_len + body_len}")
    digest = hashlib.sha256(view[: PREFIX.size])
    digest.update(view[HEADER_START:])
    if digest.digest() != view[PREFIX.size : HEADER_START]:
        raise IntegrityError("checksum mismatch: the stored bytes are not what was written")
    body = view[HEADER_START + header_len :]
    if flags & _ZSTD:
        body = memoryview(_zstd().ZstdDecompressor().decompress(body))
    header = json.loads(bytes(view[HEADER_START : HEADER_START + header_len])) if header_len else {}
    return Frame(kind, header, body, "sha256:" + digest.hexdigest())


def _content(kind: str, body: memoryview) -> Any:
    if kind == "none":
        return None
    if kind == "text":
        return str(body, "utf-8", "surrogatepass")
    if kind == "bytes":
        return bytes(body)
    if kind == "json":
        return json.loads(bytes(body))
    raise IntegrityError(f"unknown content kind {kind!r}")


def decode_page(data: bytes) -> tuple[MemoryPage, str | None]:
    """The page and the checksum it was verified against (None for legacy JSON, which has none)."""
    if data[:1] in (b"{", b" ", b"\n", b"\t", b"\r"):
        return _decode_legacy(data), None
    frame = decode_frame(data)
    if frame.kind != "page":
        raise IntegrityError(f"object is a {frame.kind}, not a page")
    try:
        page = MemoryPage.model_validate(frame.header["page"])
        page.content = _content(frame.header["content"], frame.body)
    except (KeyError, TypeError, ValidationError) as exc:
        raise IntegrityError(f"page header is malformed: {exc}") from exc
    return page, frame.checksum


def decode_manifest(data: bytes) -> CheckpointManifest:
    frame = decode_frame(data)
    if frame.kind != "manifest":
        raise IntegrityError(f"object is a {frame.kind}, not a checkpoint manifest")
    try:
        return CheckpointManifest.model_validate_json(bytes(frame.body))
    except ValidationError as exc:
        raise IntegrityError(f"checkpoint manifest is malformed: {exc}") from exc


def _decode_legacy(data: bytes) -> MemoryPage:
    try:
        return MemoryPage.model_validate_json(data)
    except ValidationError as exc:
        raise IntegrityError(f"object is neither a tierstore frame nor a JSON page: {exc}") from exc
