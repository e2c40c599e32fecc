"""How a frame's body may be compressed: not at all, or with zstd (the extra ``tierstore[zstd]``).

Contract: :func:`compress` returns a smaller body and the frame flag that says so, or None when compressing would
not pay (a small body, or one zstd cannot shrink); :func:`decompress` undoes it whatever the reader's own setting,
so a bridge without compression reads frames a bridge with it wrote.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from tierstore.errors import InvalidInputError
from tierstore.optional import require

Compression = Literal["none", "zstd"]
COMPRESSIONS: Final[tuple[Compression, ...]] = ("none", "zstd")
ZSTD_FLAG: Final = 1
"""Bit 0 of a frame's flags: the body is compressed with zstd."""
_COMPRESS_MIN_BYTES: Final = 512


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


def compress(compression: Compression, raw: bytes | memoryview) -> tuple[bytes, int] | None:
    """``(body, flags)`` compressed as ``compression`` says, or None when the raw body is to be stored as it is."""
    if compression != "zstd" or len(raw) < _COMPRESS_MIN_BYTES:
        return None
    packed: bytes = _zstd().ZstdCompressor(level=3).compress(raw)
    return (packed, ZSTD_FLAG) if len(packed) < len(raw) else None


def decompressed_size(flags: int, body_start: bytes | memoryview) -> int | None:
    """The raw size of a body whose flags are ``flags``, from the first bytes of the body alone (zstd's frame
    header holds it); None when they do not say."""
    if not flags & ZSTD_FLAG:
        return None
    zstd = _zstd()
    try:
        size: int = zstd.frame_content_size(body_start)
    except zstd.ZstdError:
        return None
    return size if size >= 0 else None


def decompress(flags: int, body: memoryview) -> memoryview:
    """The raw body of a frame whose flags are ``flags``."""
    if flags & ZSTD_FLAG:
        return memoryview(_zstd().ZstdDecompressor().decompress(body))
    return body
