"""Local-disk backend: the embedded default, durable with no cloud and no setup.

Contract: the full protocol of :mod:`tierstore.backends.base`, with these local guarantees:

* Every write goes to a temporary file in ``ROOT/tmp``, is fsynced, then moved into ``ROOT/objects`` atomically
  (``os.replace`` to overwrite, ``os.link`` to create-if-absent, which fails if the name exists, across processes),
  and the directory is fsynced. A reader sees the old object or the new one, never a mix; a crash leaves at most a
  stray temporary file.
* File names are the bridge's keys, which :func:`check_key` restricts to ``[A-Za-z0-9._-]``; page ids, metadata and
  tags live inside the file, never in a path, so nothing can leave ROOT.
* Each file is ``b"TSO1" | u32 header length | JSON header (metadata, tags, tier) | data``.
* Tiers are recorded per object; there is no archive class. Blocking I/O runs in worker threads.
* Keys differ by case on a case-sensitive filesystem only; the bridge never issues two keys that differ by case alone.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import struct
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Final

from tierstore.backends.base import (
    Capability,
    ClosingContext,
    ListEntry,
    ObjectInfo,
    RestoreSpeed,
    RestoreStatus,
    check_key,
    check_metadata,
    check_tags,
)
from tierstore.enums import StorageTier
from tierstore.errors import ConflictError, IntegrityError, ObjectNotFoundError

_MAGIC: Final = b"TSO1"
_HEAD: Final = struct.Struct(">4sI")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_header(f: BinaryIO, key: str) -> tuple[dict[str, Any], int]:
    """Returns the object's header and the offset at which its data starts."""
    raw = f.read(_HEAD.size)
    if len(raw) != _HEAD.size:
        raise IntegrityError(f"object file for {key!r} is truncated", key=key)
    magic, length = _HEAD.unpack(raw)
    if magic != _MAGIC:
        raise IntegrityError(f"object file for {key!r} is not a tierstore object", key=key)
    try:
        header = json.loads(f.read(length))
    except ValueError as exc:
        raise IntegrityError(f"object file header for {key!r} is corrupt", key=key) from exc
    return header, _HEAD.size + length


class FileSystemBackend(ClosingContext):
    name = "filesystem"
    persistent = True
    capabilities: frozenset[Capability] = frozenset({"tiers", "tags", "range_reads"})

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root).expanduser().absolute()
        self._objects = self.root / "objects"
        self._tmp = self.root / "tmp"
        self._fsync = fsync
        self._ready = False

    def __repr__(self) -> str:
        return f"FileSystemBackend({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self._objects / check_key(key)

    def _ensure_dirs(self) -> None:
        if not self._ready:
            self._objects.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(parents=True, exist_ok=True)
            self._ready = True

    # -- writes ---------------------------------------------------------------------------------------------

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        metadata: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        tier: StorageTier = StorageTier.L3,
        if_absent: bool = False,
    ) -> None:
        header = {"metadata": check_metadata(metadata), "tags": check_tags(tags), "tier": tier.value}
        await asyncio.to_thread(self._write, self._path(key), header, data, if_absent)

    def _write(self, target: Path, header: dict[str, Any], data: bytes, if_absent: bool) -> None:
        self._ensure_dirs()
        header_bytes = json.dumps(header, separators=(",", ":")).encode()
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_HEAD.pack(_MAGIC, len(header_bytes)))
                f.write(header_bytes)
                f.write(data)
                f.flush()
                if self._fsync:
                    os.fsync(f.fileno())
            if if_absent:
                try:
                    os.link(tmp_name, target)
                except FileExistsError:
                    if self._read(target, 0, None) == data:
                        return
                    raise ConflictError(target.name) from None
            else:
                os.replace(tmp_name, target)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
        if self._fsync:
            _fsync_dir(self._objects)

    # -- reads ----------------------------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self._read, self._path(key), 0, None)

    async def get_range(self, key: str, start: int, length: int) -> bytes | None:
        return await asyncio.to_thread(self._read, self._path(key), start, length)

    def _read(self, path: Path, start: int, length: int | None) -> bytes | None:
        try:
            with path.open("rb") as f:
                _header, offset = _read_header(f, path.name)
                f.seek(offset + start)
                return f.read() if length is None else f.read(length)
        except FileNotFoundError:
            return None

    async def head(self, key: str) -> ObjectInfo | None:
        return await asyncio.to_thread(self._head, self._path(key))

    def _head(self, path: Path) -> ObjectInfo | None:
        try:
            with path.open("rb") as f:
                header, offset = _read_header(f, path.name)
                stat = os.fstat(f.fileno())
        except FileNotFoundError:
            return None
        tier = StorageTier(header["tier"])
        return ObjectInfo(
            key=path.name,
            size=stat.st_size - offset,
            metadata=header["metadata"],
            last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
            tier=tier,
            storage_class=tier.value,
        )

    async def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        entries = await asyncio.to_thread(self._list, prefix)
        for entry in entries:
            yield entry

    def _list(self, prefix: str) -> builtins.list[ListEntry]:
        out: builtins.list[ListEntry] = []
        try:
            scan = os.scandir(self._objects)
        except FileNotFoundError:
            return []
        with scan:
            for item in scan:
                if not item.name.startswith(prefix):
                    continue
                info = self._head(Path(item.path))
                if info is not None:
                    out.append(ListEntry(info.key, info.size, info.last_modified))
        return out

    def usage(self, prefix: str) -> tuple[int, int] | None:
        entries = self._list(prefix)
        return len(entries), sum(e.size for e in entries)

    # -- deletes and tiers ----------------------------------------------------------------------------------

    async def delete(self, key: str) -> bool:
        return await asyncio.to_thread(self._unlink, self._path(key))

    def _unlink(self, path: Path) -> bool:
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    async def delete_many(self, keys: Sequence[str]) -> None:
        paths = [self._path(k) for k in keys]
        await asyncio.to_thread(lambda: [self._unlink(p) for p in paths])

    async def set_tier(self, key: str, tier: StorageTier) -> None:
        await asyncio.to_thread(self._retier, self._path(key), tier)

    def _retier(self, path: Path, tier: StorageTier) -> None:
        try:
            with path.open("rb") as f:
                header, _offset = _read_header(f, path.name)
                data = f.read()
        except FileNotFoundError:
            raise ObjectNotFoundError(path.name) from None
        header["tier"] = tier.value
        if "tier" in header["tags"]:
            header["tags"]["tier"] = tier.value
        self._write(path, header, data, if_absent=False)

    async def restore(self, key: str, *, days: int = 1, speed: RestoreSpeed = "standard") -> RestoreStatus:
        """Local files are always readable: nothing to restore."""
        if await self.head(key) is None:
            raise ObjectNotFoundError(key)
        return RestoreStatus("not-archived")
