"""Local-disk backend: the embedded default, durable with no cloud and no setup.

Contract: the full protocol of :mod:`tierstore.backends.base`, with these local guarantees:

* Every write goes to a temporary file in ``ROOT/tmp``, is fsynced, then moved into ``ROOT/objects`` atomically
  (``os.replace`` to overwrite, ``os.link`` to create-if-absent, which fails if the name exists, across processes),
  and the directory is fsynced before the call returns. Writers that finish together share one directory fsync
  (each waits for one that began after its own rename), which keeps the guarantee and costs one fsync per batch;
  the whole write, that wait included, is one trip to a worker thread.
  A reader sees the old object or the new one, never a mix; a writer killed mid-write leaves a temporary file,
  which :meth:`strays` reports and :meth:`delete_strays` removes (``fsck`` and ``gc`` do both). A write holds a
  lock on its temporary file until it is done, so ``delete_strays`` never takes one still being written.
* File names are the bridge's keys, which :func:`check_key` restricts to ``[A-Za-z0-9._-]``; page ids, metadata and
  tags live inside the file, never in a path, so nothing can leave ROOT.
* Each file is ``b"TSO2" | u32 header length | u32 CRC-32 of the preceding 8 bytes and the header | JSON header
  (metadata, tags, tier) | data``: a damaged header is an :class:`IntegrityError`, never silently other metadata.
* One damaged object does not stop anything else: ``list`` still names it (so ``fsck`` reports it and ``delete``
  removes it, even a directory standing where an object should be), while reading it raises IntegrityError.
* Operating-system errors become typed errors: no space or quota -> StorageFullError, a read-only or forbidden
  root -> AccessDeniedError, a root that is not a directory -> ConfigurationError, anything else ->
  BackendUnavailableError. Deleting needs no space.
* Blocking I/O runs in worker threads (``threads``, default 32: writes spend their time waiting on the disk),
  shared by every FileSystemBackend of the process with that number. A call cancelled before a thread took it
  never runs; one cancelled while it runs is waited for, so nothing it began lands after it returned
  (:mod:`.worker_threads`).
* Tiers are recorded per object; there is no archive class. ``usage`` is None: counting means reading the
  directory, which ``collect_stats`` does off the event loop.
"""

from __future__ import annotations

import builtins
import errno
import fcntl
import os
import secrets
import shutil
import struct
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any, Final, TypeVar

from pydantic_core import from_json, to_json

from tierstore.backends import worker_threads
from tierstore.backends.base import (
    Body,
    Buffer,
    Capability,
    ClosingContext,
    ListEntry,
    ObjectInfo,
    RestoreSpeed,
    RestoreStatus,
    as_chunks,
    check_key,
    check_metadata,
    check_tags,
)
from tierstore.backends.registry import Location, Scheme
from tierstore.enums import StorageTier
from tierstore.errors import (
    AccessDeniedError,
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    IntegrityError,
    ObjectNotFoundError,
    StorageFullError,
    TierstoreError,
)

if TYPE_CHECKING:
    from tierstore.config import TierstoreSettings

T = TypeVar("T")

_MAGIC: Final = b"TSO2"
_HEAD: Final = struct.Struct(">4sII")
_FIRST_READ: Final = 64 * 1024
_FULL: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
_DENIED: Final = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
_SETTLED_NS: Final = 2_000_000_000
"""A file's change time is a tick of the kernel's coarse clock (a few ms), or coarser on some filesystems (a second
on ext3 and HFS+, two on FAT): a write within the same tick as the last leaves it as it was. Once it is this far in
the past, every later write gives another."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pack_header(header: dict[str, Any]) -> bytes:
    body = to_json(header)
    start = _MAGIC + struct.pack(">I", len(body))
    return start + struct.pack(">I", zlib.crc32(body, zlib.crc32(start))) + body


def _parse_header(buffer: bytes | memoryview, name: str) -> tuple[dict[str, Any], int] | int:
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
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"object file {name!r} has a malformed header ({exc})", key=name) from exc
    return header, end


def from_url(location: Location, settings: TierstoreSettings) -> FileSystemBackend:
    return FileSystemBackend(location.path)


class FileSystemBackend(ClosingContext):
    name = "filesystem"
    persistent = True
    capabilities: frozenset[Capability] = frozenset({"tiers", "tags", "range_reads"})

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True, threads: int = 32) -> None:
        self.root = Path(root).expanduser().absolute()
        if self.root.exists() and not self.root.is_dir():
            raise ConfigurationError(f"local store {str(self.root)!r} is not a directory")
        self._objects = self.root / "objects"
        self._tmp = self.root / "tmp"
        self._fsync = fsync
        self._ready = False
        self._dir_sync = _GroupSync(self._objects)
        self._workers = worker_threads.shared(threads, "tierstore-disk")

    def __repr__(self) -> str:
        return f"FileSystemBackend({str(self.root)!r})"

    def holds_store(self) -> bool:
        """Has a store been made here (by a first write)? Asking creates nothing."""
        return self._objects.is_dir()

    def _path(self, key: str) -> str:
        return f"{self._objects}/{check_key(key)}"

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)`` in a worker thread, to its end even if cancelled; OSErrors as typed errors."""
        try:
            return await self._workers.run(call, *args)
        except TierstoreError:
            raise
        except OSError as exc:
            raise self._translate(exc) from exc

    def _translate(self, exc: OSError) -> TierstoreError:
        where = f"local store {str(self.root)!r}"
        if exc.errno in _FULL:
            return StorageFullError(f"{where}: no space left on the device or quota (delete pages to free some)")
        if exc.errno in _DENIED:
            return AccessDeniedError(f"{where} is read-only or not writable by this user ({exc.strerror})")
        if exc.errno in (errno.ENOTDIR, errno.EEXIST) and not self._ready:
            return ConfigurationError(f"{where}: {self.root} or a directory inside it is not a directory")
        return BackendUnavailableError(f"{where}: {exc.strerror or type(exc).__name__}")

    def _ensure_dirs(self) -> None:
        if not self._ready:
            if self.root.exists() and not self.root.is_dir():
                raise ConfigurationError(f"local store {str(self.root)!r} is not a directory")
            self._objects.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(parents=True, exist_ok=True)
            self._ready = True

    # -- writes ---------------------------------------------------------------------------------------------

    async def put(
        self,
        key: str,
        data: Body,
        *,
        metadata: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        tier: StorageTier = StorageTier.L3,
        if_absent: bool = False,
    ) -> None:
        header = {"metadata": check_metadata(metadata), "tags": check_tags(tags), "tier": StorageTier(tier).value}
        await self._run(self._write, self._path(key), _pack_header(header), data, if_absent)

    def _write(self, target: str, head: bytes, data: Body, if_absent: bool) -> bool:
        """Write the object; False when create-if-absent found exactly these bytes there already."""
        self._ensure_dirs()
        name = os.path.basename(target)
        temporary, fd = self._locked_temporary(name)
        renamed = False
        try:
            body = as_chunks(data)
            _write_all(fd, head, *body.views)
            if self._fsync:
                os.fsync(fd)
            if not if_absent:
                os.replace(temporary, target)
                renamed = True
            else:
                try:
                    os.link(temporary, target)
                except FileExistsError:
                    if self._read(target, 0, None) == bytes(body):
                        return False
                    raise ConflictError(name) from None
        finally:
            if not renamed:
                os.unlink(temporary)  # locked, so no gc took it
            os.close(fd)  # only now: the lock tells gc the temporary file is in use until it is gone
        if self._fsync:
            self._dir_sync.after_rename()
        return True

    def _locked_temporary(self, name: str) -> tuple[str, int]:
        """A new temporary file, open and locked, that is still the one at its path once locked (a ``gc`` that
        took it for a stray in the instant between its creation and the lock has not removed it)."""
        while True:
            temporary = f"{self._tmp}/put-{name}-{secrets.token_hex(6)}"
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.stat(temporary).st_ino == os.fstat(fd).st_ino:
                    return temporary, fd
            except FileNotFoundError:
                pass
            os.close(fd)

    # -- reads ----------------------------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | bytearray | None:
        return await self._run(self._read, self._path(key), 0, None)

    async def get_range(self, key: str, start: int, length: int) -> bytes | bytearray | None:
        return await self._run(self._read, self._path(key), start, length)

    def _open(self, path: str) -> tuple[Any, dict[str, Any], int, bytes] | None:
        """``(file, header, data offset, bytes already read past the offset)``, or None when missing."""
        name = os.path.basename(path)
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed by the caller
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise IntegrityError(f"{name!r} is a directory, not an object file", key=name) from None
        try:
            buffer = f.read(_FIRST_READ)
            parsed = _parse_header(buffer, name)
            if isinstance(parsed, int):
                buffer += f.read(parsed - len(buffer))
                parsed = _parse_header(buffer, name)
                if isinstance(parsed, int):
                    raise IntegrityError(f"object file {name!r} is truncated", key=name)
        except BaseException:
            f.close()
            raise
        header, offset = parsed
        return f, header, offset, buffer[offset:]

    def _read(self, path: str, start: int, length: int | None) -> bytes | bytearray | None:
        opened = self._open(path)
        if opened is None:
            return None
        f, _header, offset, ahead = opened
        with f:
            if length is not None and start + length <= len(ahead):
                return ahead[start : start + length]
            if start == 0 and length is None:
                return _read_rest(f, ahead, os.fstat(f.fileno()).st_size - offset)
            f.seek(offset + start)
            data: bytes = f.read() if length is None else f.read(length)
            return data

    async def head(self, key: str) -> ObjectInfo | None:
        return await self._run(self._head, self._path(key))

    def _head(self, path: str) -> ObjectInfo | None:
        opened = self._open(path)
        if opened is None:
            return None
        f, header, offset, _ahead = opened
        with f:
            stat = os.fstat(f.fileno())
        tier = StorageTier(header["tier"])
        return ObjectInfo(
            key=os.path.basename(path),
            size=stat.st_size - offset,
            metadata=header["metadata"],
            last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
            tier=tier,
            storage_class=tier.value,
            version=_version(stat),
        )

    async def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        for entry in await self._run(self._list, self._objects, prefix):
            yield entry

    def _list(self, directory: Path, prefix: str) -> builtins.list[ListEntry]:
        """Every name under the prefix, damaged objects and stray directories included (size: what can be told)."""
        out: builtins.list[ListEntry] = []
        try:
            scan = os.scandir(directory)
        except FileNotFoundError:
            return []
        with scan:
            for item in scan:
                if item.name.startswith(prefix):
                    out.append(_entry(item))
        return out

    def usage(self, prefix: str) -> tuple[int, int] | None:
        return None

    # -- temporary files left by killed writers -------------------------------------------------------------

    async def strays(self) -> builtins.list[ListEntry]:
        """Temporary files in ``ROOT/tmp``: writes still running, or left by writers that were killed."""
        return await self._run(self._list, self._tmp, "")

    async def delete_strays(self, names: Sequence[str]) -> builtins.list[str]:
        """Delete those of these temporary files that no write holds (a running write keeps its file locked);
        returns the names deleted."""
        paths = [self._tmp / check_key(name) for name in names]
        return await self._run(lambda: [p.name for p in paths if _unlink_unless_locked(p)])

    # -- deletes and tiers ----------------------------------------------------------------------------------

    async def delete(self, key: str) -> bool:
        return await self._run(_unlink, self._path(key))

    async def delete_many(self, keys: Sequence[str]) -> None:
        paths = [self._path(k) for k in keys]
        await self._run(lambda: [_unlink(p) for p in paths])

    async def set_tier(self, key: str, tier: StorageTier, *, tags: Mapping[str, str] | None = None) -> None:
        merged = dict(check_tags(tags))
        await self._run(self._retier, self._path(key), StorageTier(tier), merged)

    def _retier(self, path: str, tier: StorageTier, tags: dict[str, str]) -> None:
        opened = self._open(path)
        if opened is None:
            raise ObjectNotFoundError(os.path.basename(path))
        f, header, offset, ahead = opened
        with f:
            data = _read_rest(f, ahead, os.fstat(f.fileno()).st_size - offset)
        header["tier"] = tier.value
        header["tags"] = check_tags({**header["tags"], **tags})
        self._write(path, _pack_header(header), data, if_absent=False)

    async def aclose(self) -> None:
        """Nothing to release: the worker threads are the process's, and idle until another call needs them."""

    async def restore(self, key: str, *, days: int = 1, speed: RestoreSpeed = "standard") -> RestoreStatus:
        """Local files are always readable: nothing to restore."""
        if await self.head(key) is None:
            raise ObjectNotFoundError(key)
        return RestoreStatus("not-archived")


class _GroupSync:
    """fsync of one directory shared by the writers that wait for it: each returns once an fsync that began after
    its rename has finished, and one fsync serves every writer that renamed before it began."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._changed = threading.Condition()
        self._requested = 0
        self._synced = 0
        self._running = False

    def after_rename(self) -> None:
        with self._changed:
            self._requested += 1
            mine = self._requested
            while self._synced < mine:
                if self._running:
                    self._changed.wait()
                    continue
                self._running, covers = True, self._requested
                try:
                    self._changed.release()
                    try:
                        _fsync_dir(self._directory)
                    finally:
                        self._changed.acquire()
                    self._synced = max(self._synced, covers)
                finally:
                    self._running = False
                    self._changed.notify_all()


def _read_rest(f: Any, ahead: bytes, size: int) -> bytes | bytearray:
    """The whole data, in one buffer of its exact size (no second copy of a large object)."""
    if size <= len(ahead):
        return ahead[:size]
    out = bytearray(size)
    out[: len(ahead)] = ahead
    view = memoryview(out)[len(ahead) :]
    while view:
        count = f.readinto(view)
        if not count:
            raise IntegrityError(f"object file {os.path.basename(f.name)!r} shrank while it was read")
        view = view[count:]
    return out


def _write_all(fd: int, *parts: Buffer) -> None:
    views = [memoryview(p).cast("B") for p in parts if len(p)]
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


def _entry(item: os.DirEntry[str]) -> ListEntry:
    """The name, data size and time of one directory entry, from its fixed prefix (the header is not parsed)."""
    try:
        fd = os.open(item.path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return ListEntry(item.name, 0, None)  # vanished or unreadable: reported when read
    try:
        stat = os.fstat(fd)
        if not S_ISREG(stat.st_mode):  # a directory standing where an object should be
            return ListEntry(item.name, 0, datetime.fromtimestamp(stat.st_mtime, UTC))
        prefix = os.pread(fd, _HEAD.size, 0)
    finally:
        os.close(fd)
    size = stat.st_size
    if len(prefix) == _HEAD.size:
        magic, length, _crc = _HEAD.unpack(prefix)
        if magic == _MAGIC and _HEAD.size + length <= size:
            size -= _HEAD.size + length
    return ListEntry(item.name, size, datetime.fromtimestamp(stat.st_mtime, UTC))


def _unlink_unless_locked(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False  # a write in progress
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    finally:
        os.close(fd)
    return True


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        shutil.rmtree(path)  # a directory standing where an object should be: the delete asked for is granted
    return True


SCHEME = Scheme("file", from_url)


def _version(stat: os.stat_result) -> str | None:
    """The object's version token (:attr:`ObjectInfo.version`): every write and every rename into place gives the
    file a new change time or inode, which nobody can set back. None while the change time is too recent to be
    sure a write in the same clock tick would change it."""
    if time.time_ns() - stat.st_ctime_ns < _SETTLED_NS:
        return None
    return f"{stat.st_dev}:{stat.st_ino}:{stat.st_ctime_ns}:{stat.st_mtime_ns}:{stat.st_size}"
