"""The on-storage format of a page, a checkpoint manifest or a bookkeeping record (frame format version 2).

Layout, all integers big-endian::

    0   magic      4   b"TSPG"
    4   version    1   2
    5   kind       1   1 = page, 2 = manifest, 3 = record
    6   flags      1   bit 0: body compressed with zstd
    7   reserved   1   0
    8   header_len 4
    12  page_len   4   0 unless kind = page
    16  body_len   8   stored (possibly compressed) length
    24  sha256     32  over bytes 0-23, the header and the page
    56  header     header_len bytes of UTF-8 JSON
    ..  page       page_len bytes of UTF-8 JSON: the page without its content
    ..  body       body_len bytes

The header names the key the frame was written under (``artifact``, ``checkpoint`` or ``key``), a random ``write``
token that no other write shares, and the SHA-256 of the stored body, so the one digest in the prefix covers
everything. A page's header also says how to read the body back: ``text`` (UTF-8), ``bytes`` (raw, never base64)
or ``json``. The page section is pydantic's own JSON of the page, parsed straight into a ``MemoryPage``.

Why the key and the token are inside: a frame that sits under another key than its own (two objects swapped, a
restore into the wrong key) is refused, and two writers storing the same page never produce the same bytes, so a
retried create-if-absent that finds "exactly our bytes" has found its own write and nobody else's.

Decoding checks the magic, the version, the exact length, the header digest, the key and the body digest before it
returns anything, so a flipped, truncated, foreign or misplaced object raises :class:`IntegrityError`, never a
page. :func:`read_header` checks a header alone (from a ranged read), without the body.

Plain JSON as written by chuk-ai-session-manager's ``MemoryPage.model_dump_json()`` is read too, by
:mod:`tierstore.chuk.legacy_json`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import threading
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError, from_json

from tierstore.backends._optional import require
from tierstore.chuk import legacy_json
from tierstore.errors import IntegrityError, InvalidInputError
from tierstore.models import CheckpointManifest, MemoryPage
from tierstore.validate import check_json

MAGIC: Final = b"TSPG"
VERSION: Final = 2
PREFIX: Final = struct.Struct(">4sBBBBIIQ")
DIGEST_SIZE: Final = 32
HEADER_START: Final = PREFIX.size + DIGEST_SIZE

Buffer = bytes | bytearray | memoryview
Kind = Literal["page", "manifest", "record"]
Compression = Literal["none", "zstd"]
COMPRESSIONS: Final[tuple[Compression, ...]] = ("none", "zstd")
_KIND_CODES: Final[dict[Kind, int]] = {"page": 1, "manifest": 2, "record": 3}
_KINDS_BY_CODE: Final = {code: kind for kind, code in _KIND_CODES.items()}
_BINDING: Final[dict[Kind, str]] = {"page": "artifact", "manifest": "checkpoint", "record": "key"}
_ZSTD: Final = 1
_PLAIN_KEY: Final = re.compile(r"[A-Za-z0-9._-]+")
"""Keys that need no JSON escaping (every key the bridge chooses)."""
_COMPRESS_MIN_BYTES: Final = 512
_HOLD_GIL_BELOW: Final = 16 * 1024
_GIL_KEPT_UP_TO: Final = 2047
"""CPython's hashlib lets the GIL go while it hashes 2048 bytes or more at once."""

VOLATILE_FIELDS: Final = ("last_accessed", "access_count", "dirty", "storage_tier", "artifact_id")
"""Bookkeeping that changes as a page is used, not what the page holds: left out of :attr:`PreparedPage.identity`,
so a checkpoint does not upload a page again because it was read or moved between tiers (the checkpoint's manifest
carries their latest values instead)."""
_VOLATILE: Final = set(VOLATILE_FIELDS)
_STABLE_FIELDS_ONLY: Final = {"content", *VOLATILE_FIELDS}
_NOT_CONTENT: Final = {"content"}


@dataclass(frozen=True, slots=True)
class Encoded:
    """One frame, ready to write: ``head`` (prefix, digest, header) then ``body``, kept apart so that a large
    body is never copied into a joined buffer."""

    head: bytes
    body: bytes | memoryview
    checksum: str
    """``sha256:<hex>`` of the prefix and header, which hold the body's digest: unique to this one write."""

    @property
    def size(self) -> int:
        return len(self.head) + len(self.body)

    @property
    def data(self) -> bytes:
        return self.head + bytes(self.body) if self.body else self.head


@dataclass(frozen=True, slots=True)
class PreparedPage:
    """A page encoded once, before it has a key: :func:`frame_page` then frames it for any key cheaply."""

    page_id: str
    page_json: bytes
    content_kind: str
    body: bytes | memoryview
    flags: int
    body_sha256: str
    identity: str
    """SHA-256 over the page's content and its fields except :data:`VOLATILE_FIELDS`: equal identities, same page
    ("" unless asked for)."""


@dataclass(frozen=True, slots=True)
class Header:
    """A verified frame header: the kind, the small JSON header, the page section (pages only), the checksum."""

    kind: Kind
    meta: dict[str, Any]
    page: memoryview
    checksum: str


@dataclass(frozen=True, slots=True)
class Frame:
    kind: Kind
    header: dict[str, Any]
    page: memoryview
    body: memoryview
    checksum: str


def _zstd() -> Any:
    return require("zstandard", extra="zstd", package="zstandard")


def check_compression(compression: Any) -> Compression:
    """Refuse an unknown compression, or zstd without its extra, when it is configured rather than on first use."""
    if compression not in COMPRESSIONS:
        raise InvalidInputError(f"compression must be one of {', '.join(COMPRESSIONS)}, not {compression!r}")
    if compression == "zstd":
        _zstd()
    checked: Compression = compression
    return checked


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise InvalidInputError(f"{what} holds a lone surrogate, which UTF-8 cannot store") from None


class _WriteTokens:
    """Write tokens of 16 random bytes from the OS, drawn 4 KiB at a time: a system call per frame would hand the
    GIL to the disk threads at every page, and waiting to get it back costs more than the call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""
        self._used = 0
        os.register_at_fork(after_in_child=self._forget)  # a child must never issue its parent's tokens

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._pool, self._used = b"", 0

    def next(self) -> str:
        with self._lock:
            if self._used == len(self._pool):
                self._pool, self._used = os.urandom(4096), 0
            self._used += 16
            return self._pool[self._used - 16 : self._used].hex()


_TOKENS: Final = _WriteTokens()


def _sha256(data: bytes | memoryview) -> Any:
    """``hashlib.sha256(data)``; below 16 KiB fed in slices under 2 KiB, for which CPython keeps the GIL: on the
    event loop, getting the GIL back from busy disk threads takes far longer than hashing a small page."""
    if len(data) >= _HOLD_GIL_BELOW:
        return hashlib.sha256(data)
    digest = hashlib.sha256()
    view = memoryview(data)
    for start in range(0, len(view), _GIL_KEPT_UP_TO):
        digest.update(view[start : start + _GIL_KEPT_UP_TO])
    return digest


def _content_parts(content: Any) -> tuple[str, bytes | memoryview]:
    if content is None:
        return "none", b""
    if isinstance(content, str):
        return "text", content.encode("utf-8", "surrogatepass")
    if isinstance(content, bytes):
        return "bytes", content
    if isinstance(content, bytearray | memoryview):
        return "bytes", memoryview(content).cast("B")
    check_json(content, "page content")
    return "json", json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


def prepare_page(page: MemoryPage, *, compression: Compression = "none", identity: bool = False) -> PreparedPage:
    """Encode a (validated) page's content and fields once: the costly part of storing it. ``identity`` also
    computes :attr:`PreparedPage.identity`, which only checkpoints need."""
    content_kind, raw = _content_parts(page.content)
    check_json(page.metadata, "page metadata")
    try:
        # The serializer itself, as model_dump_json calls it, but with bytes out (no str to encode again).
        serialize = MemoryPage.__pydantic_serializer__.to_json
        if identity:
            stable = serialize(page, exclude=_STABLE_FIELDS_ONLY)
            state = serialize(page, include=_VOLATILE)
            page_json = stable[:-1] + b"," + state[1:]  # one JSON object: the stable fields, then the bookkeeping
        else:
            page_json = serialize(page, exclude=_NOT_CONTENT)
    except PydanticSerializationError:
        raise InvalidInputError(f"a field of page {page.page_id!r} cannot be stored (e.g. a lone surrogate)") from None
    raw_digest = _sha256(raw).hexdigest()
    digest = ""
    if identity:
        digest = hashlib.sha256(b"\n".join((stable, content_kind.encode(), raw_digest.encode()))).hexdigest()
    body, flags, body_digest = raw, 0, raw_digest
    if compression == "zstd" and len(raw) >= _COMPRESS_MIN_BYTES:
        packed = _zstd().ZstdCompressor(level=3).compress(raw)
        if len(packed) < len(raw):
            body, flags, body_digest = packed, _ZSTD, hashlib.sha256(packed).hexdigest()
    return PreparedPage(page.page_id, page_json, content_kind, body, flags, body_digest, digest)


def frame_page(prepared: PreparedPage, artifact_id: str | None) -> Encoded:
    """The frame of a prepared page under ``artifact_id`` (None: a key the backend chooses), with a write token
    of its own."""
    bound = (
        f'"{artifact_id}"' if artifact_id is not None and _PLAIN_KEY.fullmatch(artifact_id) else json.dumps(artifact_id)
    )
    header = (
        f'{{"artifact":{bound},"write":"{_TOKENS.next()}",'
        f'"content":"{prepared.content_kind}","body":"{prepared.body_sha256}"}}'
    ).encode()
    return _frame("page", header, prepared.page_json, prepared.body, prepared.flags)


def encode_page(page: MemoryPage, artifact_id: str, *, compression: Compression = "none") -> Encoded:
    return frame_page(prepare_page(page, compression=compression), artifact_id)


def encode_manifest(manifest: CheckpointManifest) -> Encoded:
    return _encode_json("manifest", manifest.checkpoint_id, manifest.model_dump_json().encode())


def encode_record(key: str, record: dict[str, Any]) -> Encoded:
    return _encode_json("record", key, json.dumps(record, separators=(",", ":")).encode())


def _encode_json(kind: Kind, key: str, body: bytes) -> Encoded:
    header = {_BINDING[kind]: key, "write": _TOKENS.next(), "body": _sha256(body).hexdigest()}
    return _frame(kind, json.dumps(header, separators=(",", ":")).encode(), b"", body, 0)


def _frame(kind: Kind, header: bytes, page: bytes, body: bytes | memoryview, flags: int) -> Encoded:
    prefix = PREFIX.pack(MAGIC, VERSION, _KIND_CODES[kind], flags, 0, len(header), len(page), len(body))
    digest = hashlib.sha256(prefix)
    digest.update(header)
    digest.update(page)
    return Encoded(b"".join((prefix, digest.digest(), header, page)), body, "sha256:" + digest.hexdigest())


# -- reading ---------------------------------------------------------------------------------------------------


def read_prefix(data: Buffer) -> tuple[Kind, int, int, int, int]:
    """Check the fixed prefix; returns ``(kind, flags, header_len, page_len, body_len)``."""
    if len(data) < HEADER_START:
        raise IntegrityError(f"object is {len(data)} bytes, shorter than a tierstore frame")
    magic, version, kind_code, flags, _reserved, header_len, page_len, body_len = PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise IntegrityError("object is not a tierstore frame (bad magic)")
    if version != VERSION:
        raise IntegrityError(f"object has frame format version {version}; this tierstore reads version {VERSION}")
    kind = _KINDS_BY_CODE.get(kind_code)
    if kind is None or flags & ~_ZSTD:
        raise IntegrityError("object has an unknown kind or flags")
    return kind, flags, header_len, page_len, body_len


def header_end(data: Buffer) -> int:
    """How many bytes from the start of a frame hold its prefix, digest, header and page section."""
    _kind, _flags, header_len, page_len, _body_len = read_prefix(data)
    return HEADER_START + header_len + page_len


def read_header(data: Buffer, key: str | None = None) -> Header:
    """The verified header of a frame from its first :func:`header_end` bytes (or more), bound to ``key``.
    The body is neither needed nor checked."""
    view = memoryview(data)
    kind, _flags, header_len, page_len, _body_len = read_prefix(view)
    page_start = HEADER_START + header_len
    end = page_start + page_len
    if len(view) < end:
        raise IntegrityError(f"object is {len(view)} bytes, shorter than its header")
    digest = hashlib.sha256(view[: PREFIX.size])
    digest.update(view[HEADER_START:end])
    if digest.digest() != view[PREFIX.size : HEADER_START]:
        raise IntegrityError("checksum mismatch: the stored header is not what was written")
    try:
        meta = from_json(bytes(view[HEADER_START:page_start]))
    except ValueError as exc:
        raise IntegrityError("frame header is not JSON") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("body"), str):
        raise IntegrityError("frame header is malformed")
    bound = meta.get(_BINDING[kind])
    if key is not None and bound != key:
        raise IntegrityError(f"object holds the {kind} written as {_clip(bound)}, not {key!r}")
    return Header(kind, meta, view[page_start:end], "sha256:" + digest.hexdigest())


def decode_frame(data: Buffer, key: str | None = None) -> Frame:
    """A whole frame, verified (length, header digest, key binding, body digest) and decompressed."""
    view = memoryview(data)
    _kind, flags, header_len, page_len, body_len = read_prefix(view)
    end = HEADER_START + header_len + page_len
    if len(view) != end + body_len:
        raise IntegrityError(f"object is {len(view)} bytes but its frame says {end + body_len}")
    header = read_header(view[:end], key)
    body = view[end:]
    if _sha256(body).hexdigest() != header.meta["body"]:
        raise IntegrityError("checksum mismatch: the stored body is not what was written")
    if flags & _ZSTD:
        body = memoryview(_zstd().ZstdDecompressor().decompress(body))
    return Frame(header.kind, header.meta, header.page, body, header.checksum)


def _of_kind(frame: Frame, kind: Kind) -> Frame:
    if frame.kind != kind:
        raise IntegrityError(f"object is a {frame.kind}, not a {kind}")
    return frame


def decode_record(data: Buffer, key: str) -> dict[str, Any]:
    frame = _of_kind(decode_frame(data, key), "record")
    try:
        record = json.loads(bytes(frame.body))
    except ValueError as exc:
        raise IntegrityError("bookkeeping record is not JSON") from exc
    if not isinstance(record, dict):
        raise IntegrityError("bookkeeping record is not a JSON object")
    return record


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
    frame = _of_kind(decode_frame(data, key), "page")
    try:
        page = MemoryPage.model_validate_json(bytes(frame.page))
        page.content = _content(frame.header["content"], frame.body)
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise IntegrityError(f"page header is malformed: {exc}") from exc
    return page, frame.checksum


def decode_manifest(data: Buffer, key: str | None) -> CheckpointManifest:
    frame = _of_kind(decode_frame(data, key), "manifest")
    try:
        manifest = CheckpointManifest.model_validate_json(bytes(frame.body))
    except ValidationError as exc:
        raise IntegrityError(f"checkpoint manifest is malformed: {exc}") from exc
    if key is not None and manifest.checkpoint_id != key:
        raise IntegrityError(f"object {key} holds the manifest of {_clip(manifest.checkpoint_id)}")
    return manifest


def _clip(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "…"
