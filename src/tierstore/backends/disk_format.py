"""An object file of the local-disk store: its layout, and what reading its start and its ``stat`` tells.

Contract:

* Each file is ``b"TSO2" | u32 header length | u32 CRC-32 of the preceding 8 bytes and the header | JSON header
  (metadata, tags, tier, data size) | data``: a damaged header is an :class:`IntegrityError`, never silently other
  metadata, and a file longer or shorter than its header says (extended, sparse, truncated) is an IntegrityError
  found without reading the data, so nothing is ever read past the data's own length.
* A listing reads only the fixed prefix of each file (never the header), so it costs one small read per object,
  and a damaged object is still listed.
* An object's version token changes with every write and every rename into place, and is withheld while a write
  in the same clock tick could leave it unchanged.

The system calls that open, write and remove these files are in :mod:`.disk_files`; the store's calls in
:mod:`.filesystem`.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from datetime import UTC, datetime
from io import BufferedReader
from stat import S_ISREG
from typing import Any, Final

from pydantic_core import from_json, to_json

from tierstore.backends.base import ListEntry
from tierstore.backends.disk_files import READ_FLAGS
from tierstore.enums import StorageTier
from tierstore.errors import IntegrityError

_MAGIC: Final = b"TSO2"
_HEAD: Final = struct.Struct(">4sII")
_FIRST_READ: Final = 64 * 1024
SETTLED_NS: Final = 2_000_000_000
"""A file's change time is a tick of the kernel's coarse clock (a few ms), or coarser on some filesystems (a second
on ext3 and HFS+, two on FAT): a write within the same tick as the last leaves it as it was. Once it is this far in
the past, every later write gives another."""


def pack_header(header: dict[str, Any]) -> bytes:
    """The start of an object file that holds ``header``: magic, length, CRC-32, then the header as JSON."""
    body = to_json(header)
    start = _MAGIC + struct.pack(">I", len(body))
    return start + struct.pack(">I", zlib.crc32(body, zlib.crc32(start))) + body


def parse_header(buffer: bytes | memoryview, name: str) -> tuple[dict[str, Any], int] | int:
    """``(header, data offset)`` of an object file's start, or the number of bytes needed to parse it."""
    if len(buffer) < _HEAD.size:
        raise IntegrityError(f"object file {name!r} is truncated", key=name)
    magic, length, crc = _HEAD.unpack_from(buffer)
    if magic != _MAGIC:
        raise IntegrityError(f"object file {name!r} is not a tierstore object", key=name)
    end: int = _HEAD.size + length
    if len(buffer) < end:
        return end
    body = buffer[_HEAD.size : end]
    if zlib.crc32(body, zlib.crc32(buffer[:8])) != crc:
        raise IntegrityError(f"object file {name!r} has a damaged header (CRC mismatch)", key=name)
    try:
        header: dict[str, Any] = from_json(bytes(body))
        StorageTier(header["tier"])
        if not isinstance(header["metadata"], dict) or not isinstance(header["tags"], dict):
            raise TypeError("metadata and tags must be objects")
        if not isinstance(header.get("size", 0), int):
            raise TypeError("size must be an integer")
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"object file {name!r} has a malformed header ({exc})", key=name) from exc
    return header, end


def written_size(header: dict[str, Any]) -> int | None:
    """The data's length as written: the header's ``size``; for a file of an earlier version, which lacks it, the
    ``size`` its metadata records (every page has one), else unknown."""
    size = header.get("size")
    if isinstance(size, int):
        return size
    recorded = header["metadata"].get("size")
    return int(recorded) if isinstance(recorded, str) and recorded.isdecimal() else None


def open_object(fd: int, name: str) -> tuple[BufferedReader, dict[str, Any], int, int, bytes]:
    """``(file, header, data offset, data size, bytes already read past the offset)`` of the regular file open as
    ``fd``, which it takes over (closed on any error); the file's size must be the one its header records."""
    f = os.fdopen(fd, "rb")
    try:
        buffer = f.read(_FIRST_READ)
        parsed = parse_header(buffer, name)
        if isinstance(parsed, int):
            buffer += f.read(parsed - len(buffer))
            parsed = parse_header(buffer, name)
            if isinstance(parsed, int):
                raise IntegrityError(f"object file {name!r} is truncated", key=name)
        header, offset = parsed
        size = os.fstat(fd).st_size - offset
        written = written_size(header)
        if written is not None and written != size:
            raise IntegrityError(
                f"object file {name!r} holds {size} bytes of data where {written} were written", key=name
            )
    except BaseException:
        f.close()
        raise
    return f, header, offset, size, buffer[offset : offset + size]


def list_entry(fd: int | None, name: str) -> ListEntry:
    """The name, data size and time of one directory entry, from its fixed prefix (the header is not parsed).
    Only a regular file is opened."""
    try:
        found = os.lstat(name, dir_fd=fd)
    except FileNotFoundError:
        return ListEntry(name, 0, None)
    when = datetime.fromtimestamp(found.st_mtime, UTC)
    if not S_ISREG(found.st_mode):
        return ListEntry(name, 0, when)  # something standing where an object should be: reported when read
    try:
        file = os.open(name, READ_FLAGS, dir_fd=fd)
    except OSError:
        return ListEntry(name, 0, when)  # vanished, replaced or unreadable: reported when read
    try:
        stat = os.fstat(file)
        prefix = os.pread(file, _HEAD.size, 0) if S_ISREG(stat.st_mode) else b""
    finally:
        os.close(file)
    size = stat.st_size
    if len(prefix) == _HEAD.size:
        magic, length, _crc = _HEAD.unpack(prefix)
        if magic == _MAGIC and _HEAD.size + length <= size:
            size -= _HEAD.size + length
    # The token of ``head``: a tier change rewrites the file (a new inode), so it changes with everything head says.
    return ListEntry(name, size, datetime.fromtimestamp(stat.st_mtime, UTC), version(stat))


def version(stat: os.stat_result) -> str | None:
    """The object's version token (:attr:`~tierstore.backends.base.ObjectInfo.version`): every write and every
    rename into place gives the file a new change time or inode, which nobody can set back. None while the change
    time is too recent to be sure a write in the same clock tick would change it."""
    if time.time_ns() - stat.st_ctime_ns < SETTLED_NS:
        return None
    return f"{stat.st_dev}:{stat.st_ino}:{stat.st_ctime_ns}:{stat.st_mtime_ns}:{stat.st_size}"
