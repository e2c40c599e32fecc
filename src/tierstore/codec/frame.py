"""The frame: how one page, checkpoint manifest or bookkeeping record is laid out in storage (format version 2).

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
everything. Why the key and the token are inside: a frame that sits under another key than its own (two objects
swapped, a restore into the wrong key) is refused, and two writers storing the same page never produce the same
bytes, so a retried create-if-absent that finds "exactly our bytes" has found its own write and nobody else's.

Contract: :func:`decode_frame` checks the magic, the version, the exact length, the header digest, the key and the
body digest before it returns anything, so a flipped, truncated, foreign or misplaced object raises
:class:`IntegrityError`, never a frame; :func:`read_header` checks a header alone (from a ranged read).
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from typing import Any, Final, Literal, NamedTuple

from pydantic_core import from_json

from tierstore.codec.compression import ZSTD_FLAG, decompress, decompressed_size
from tierstore.codec.speed import TOKENS, sha256
from tierstore.errors import IntegrityError

MAGIC: Final = b"TSPG"
VERSION: Final = 2
PREFIX: Final = struct.Struct(">4sBBBBIIQ")
DIGEST_SIZE: Final = 32
HEADER_START: Final = PREFIX.size + DIGEST_SIZE

Buffer = bytes | bytearray | memoryview
Kind = Literal["page", "manifest", "record"]
KIND_CODES: Final[dict[Kind, int]] = {"page": 1, "manifest": 2, "record": 3}
_KINDS_BY_CODE: Final = {code: kind for kind, code in KIND_CODES.items()}
BINDING: Final[dict[Kind, str]] = {"page": "artifact", "manifest": "checkpoint", "record": "key"}
"""The header field that names the key a frame of each kind was written under."""
_ZSTD_HEADER_MAX: Final = 18
"""The longest a zstd frame header is: its content size is in there."""
_PLAIN_KEY: Final = re.compile(r"[A-Za-z0-9._-]+")
"""Keys that need no JSON escaping (every key the bridge chooses)."""


class Encoded(NamedTuple):
    """One frame, ready to write: ``head`` (prefix, digest, header) then ``body``, kept apart so that a large
    body is never copied into a joined buffer. ``checksum`` is ``sha256:<hex>`` of the prefix and header, which
    hold the body's digest: unique to this one write."""

    head: bytes
    body: bytes | memoryview
    checksum: str
    size: int

    @property
    def data(self) -> bytes:
        """The whole frame as one buffer (a copy of the body: for small frames)."""
        return self.head + bytes(self.body) if self.body else self.head


class Header(NamedTuple):
    """A verified frame header: the kind, the small JSON header, the page section (pages only), the checksum."""

    kind: Kind
    meta: dict[str, Any]
    page: memoryview
    checksum: str


class Frame(NamedTuple):
    """A verified, decompressed frame."""

    kind: Kind
    header: dict[str, Any]
    page: memoryview
    body: memoryview
    checksum: str


def json_key(key: str | None) -> str:
    """``key`` as a JSON value, without json.dumps for the keys the bridge chooses."""
    return f'"{key}"' if key is not None and _PLAIN_KEY.fullmatch(key) else json.dumps(key)


def document_header(kind: Kind, key: str, body: bytes) -> bytes:
    """The header of a manifest or record frame under ``key``, with a write token of its own."""
    header = {BINDING[kind]: key, "write": TOKENS.next(), "body": sha256(body).hexdigest()}
    return json.dumps(header, separators=(",", ":")).encode()


def frame(kind: Kind, header: bytes, page: bytes, body: bytes | memoryview, flags: int) -> Encoded:
    """The frame of ``kind`` holding ``header``, ``page`` and the (already compressed) ``body``."""
    prefix = PREFIX.pack(MAGIC, VERSION, KIND_CODES[kind], flags, 0, len(header), len(page), len(body))
    digest = hashlib.sha256(prefix)
    digest.update(header)
    digest.update(page)
    raw = digest.digest()
    head = b"".join((prefix, raw, header, page))
    return Encoded(head, body, "sha256:" + raw.hex(), len(head) + len(body))


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
    if kind is None or flags & ~ZSTD_FLAG:
        raise IntegrityError("object has an unknown kind or flags")
    return kind, flags, header_len, page_len, body_len


def header_end(data: Buffer) -> int:
    """How many bytes from the start of a frame hold its prefix, digest, header and page section."""
    _kind, _flags, header_len, page_len, _body_len = read_prefix(data)
    return HEADER_START + header_len + page_len


def decoded_size(data: Buffer) -> int | None:
    """How many bytes ``data`` holds once decompressed, from its prefix and the start of its body alone (nothing
    verified: it only chooses where to decode); None when a compressed body does not say."""
    try:
        _kind, flags, header_len, page_len, _body_len = read_prefix(data)
    except IntegrityError:
        return len(data)  # not a frame (chuk's JSON, damage): decoded as it is, or refused
    if not flags & ZSTD_FLAG:
        return len(data)
    end = HEADER_START + header_len + page_len
    raw = decompressed_size(flags, memoryview(data)[end : end + _ZSTD_HEADER_MAX])
    return None if raw is None else end + raw


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
    raw = digest.digest()
    if raw != view[PREFIX.size : HEADER_START]:
        raise IntegrityError("checksum mismatch: the stored header is not what was written")
    try:
        meta = from_json(bytes(view[HEADER_START:page_start]))
    except ValueError as exc:
        raise IntegrityError("frame header is not JSON") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("body"), str):
        raise IntegrityError("frame header is malformed")
    bound = meta.get(BINDING[kind])
    if key is not None and bound != key:
        raise IntegrityError(f"object holds the {kind} written as {clip(bound)}, not {key!r}")
    return Header(kind, meta, view[page_start:end], "sha256:" + raw.hex())


def decode_frame(data: Buffer, key: str | None = None) -> Frame:
    """A whole frame, verified (length, header digest, key binding, body digest) and decompressed."""
    view = memoryview(data)
    _kind, flags, header_len, page_len, body_len = read_prefix(view)
    end = HEADER_START + header_len + page_len
    if len(view) != end + body_len:
        raise IntegrityError(f"object is {len(view)} bytes but its frame says {end + body_len}")
    header = read_header(view[:end], key)
    body = view[end:]
    if sha256(body).hexdigest() != header.meta["body"]:
        raise IntegrityError("checksum mismatch: the stored body is not what was written")
    return Frame(header.kind, header.meta, header.page, decompress(flags, body), header.checksum)


def of_kind(frame: Frame, kind: Kind) -> Frame:
    """``frame``, if it is of ``kind``; IntegrityError otherwise."""
    if frame.kind != kind:
        raise IntegrityError(f"object is a {frame.kind}, not a {kind}")
    return frame


def clip(value: Any) -> str:
    """``repr(value)``, cut to 80 characters, for an error message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "…"
