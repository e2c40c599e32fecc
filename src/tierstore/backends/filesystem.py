"""Local-disk backend: the embedded default, durable with no cloud and no setup.

Contract: the full protocol of :mod:`tierstore.backends.base`, with these local guarantees:

* A directory is used as a store only when it carries tierstore's mark, made in a new or empty directory; any
  other non-empty directory is refused with NotAStoreError (a ConfigurationError) before anything is read or
  written. :mod:`.disk_root` says which names are tierstore's and how stores of earlier versions are adopted;
  nothing else in the root is ever opened, changed or deleted, and ``objects``/``tmp`` are never followed
  through a symbolic link: every call opens them anew with ``O_NOFOLLOW`` and reaches its files through those
  descriptors, so one replaced by a link after the store was opened is NotAStoreError too. Directories are
  created 0700 and files 0600, whatever the umask.
* Every write goes to a temporary file in ``ROOT/tmp``, is fsynced, then moved into ``ROOT/objects`` atomically
  (``os.replace`` to overwrite, ``os.link`` to create-if-absent, which fails if the name exists, across processes),
  and the directory is fsynced before the call returns. Writers that finish together share one directory fsync
  (each waits for one that began after its own rename), which keeps the guarantee and costs one fsync per batch;
  the whole write, that wait included, is one trip to a worker thread.
  A reader sees the old object or the new one, never a mix; a writer killed mid-write leaves a temporary file,
  which :meth:`strays` reports and :meth:`delete_strays` removes (``fsck``, ``gc``; erasure: a scope's, through
  :meth:`discard_unfinished`). A write locks its temporary file until done: none is taken while being written.
* ``set_tier`` never re-creates an object it did not create: it swaps its rewritten copy with the object in one
  step (``renameat2(RENAME_EXCHANGE)``, which fails if the object is gone), so a delete that lands before the
  swap makes it ObjectNotFoundError and one that lands after deletes the new copy. Deleting wins.
* File names are the bridge's keys, which :func:`check_key` restricts to ``[A-Za-z0-9._-]``; page ids, metadata and
  tags live inside the file, never in a path, so nothing can leave ROOT.
* Each file is a checked header (metadata, tags, tier, data size), then the data: :mod:`.disk_format`. A damaged
  header, or a file longer or shorter than its header says, is an :class:`IntegrityError`, found without reading
  the data.
* One damaged object does not stop anything else: ``list`` still names it (so ``fsck`` reports it and ``delete``
  removes it), while reading it raises IntegrityError. Whatever stands at a key that is not a regular file (a
  directory, FIFO, socket, device, symbolic link) is never opened: reading it is IntegrityError, and ``delete``
  removes the name (a symbolic link, never its target; a directory only when empty, since files in it are not
  tierstore's). An object file this user may not read is damaged too (IntegrityError), so ``fsck`` names it.
  The system calls behind these rules are in :mod:`.disk_files`.
* Operating-system errors become typed errors: no space or quota -> StorageFullError, a read-only or forbidden
  root -> AccessDeniedError, a root that is not a directory -> ConfigurationError, anything else ->
  BackendUnavailableError. Deleting needs no space.
* Blocking I/O runs in worker threads (``threads``, default 32: writes spend their time waiting on the disk),
  shared by every FileSystemBackend of the process with that number. A call cancelled before a thread took it
  never runs; one cancelled while it runs is waited for, so nothing it began lands after it returned
  (:mod:`.worker_threads`). A forked child starts with threads and fsync groups of its own.
* Tiers are recorded per object; there is no archive class. ``usage`` is None: counting means reading the
  directory, which ``collect_stats`` does off the event loop.
"""

from __future__ import annotations

import builtins
import errno
import fcntl
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from io import BufferedReader
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from tierstore.backends import disk_format, disk_judged, disk_root, worker_threads
from tierstore.backends.base import (
    Body,
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
from tierstore.backends.disk_files import (
    DENIED,
    GroupSync,
    directory,
    exchange,
    held,
    is_regular,
    open_regular,
    read_exactly,
    read_rest,
    unlink,
    unlink_all,
    unlink_quietly,
    unlink_unless_locked,
    write_all,
)
from tierstore.backends.registry import Location, Scheme
from tierstore.enums import StorageTier
from tierstore.errors import (
    AccessDeniedError,
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    NotAStoreError,
    ObjectNotFoundError,
    StorageFullError,
    TierstoreError,
)

if TYPE_CHECKING:
    from tierstore.config import TierstoreSettings

T = TypeVar("T")

_FULL: Final = frozenset({errno.ENOSPC, errno.EDQUOT})


def from_url(location: Location, settings: TierstoreSettings) -> FileSystemBackend:
    """The local-disk store a ``file://`` URL names."""
    return FileSystemBackend(location.path)


class FileSystemBackend(ClosingContext, disk_judged.JudgedDeletes):
    """The local-disk store rooted at ``root``: the full backend protocol, with the local guarantees of this
    module's docstring."""

    name = "filesystem"
    persistent = True
    capabilities: frozenset[Capability] = frozenset({"tiers", "tags", "range_reads"})

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True, threads: int = 32) -> None:
        self.root = Path(root).expanduser().absolute()
        if "\x00" in str(self.root):  # no file system takes it; os calls would raise an untyped ValueError later
            raise ConfigurationError("a local store's path cannot hold a NUL character")
        if self.root.exists() and not self.root.is_dir():
            raise ConfigurationError(f"local store {str(self.root)!r} is not a directory")
        self._objects = self.root / disk_root.OBJECTS
        self._tmp = self.root / disk_root.TMP
        self._fsync = fsync
        self._readable = False
        self._ready = False
        self._dir_sync = GroupSync(self._objects)
        self._workers = worker_threads.shared(threads, "tierstore-disk")

    def __repr__(self) -> str:
        return f"FileSystemBackend({str(self.root)!r})"

    def holds_store(self) -> bool:
        """Has a store been made here (it carries the mark, or was made by an earlier version)? Asking creates
        nothing."""
        try:
            return disk_root.inspect(self.root) in ("marked", "earlier")
        except NotAStoreError:
            return False

    def _path(self, key: str) -> str:
        """The key's name in ``objects/`` (the bridge's keys are names of their own, never paths)."""
        return check_key(key)

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
        if exc.errno in DENIED:
            return AccessDeniedError(f"{where} is read-only or not writable by this user ({exc.strerror})")
        if exc.errno in (errno.ENOTDIR, errno.EEXIST) and not self._ready:
            return ConfigurationError(f"{where}: {self.root} or a directory inside it is not a directory")
        return BackendUnavailableError(f"{where}: {exc.strerror or type(exc).__name__}")

    def _check_readable(self) -> bool:
        """Whether there is a store to read (an absent root holds nothing); NotAStoreError for a foreign one."""
        if not self._readable:
            kind = disk_root.inspect(self.root)
            if kind == "absent":
                return False
            self._readable = True
        return True

    def _ensure_dirs(self) -> None:
        if not self._ready:
            disk_root.make_store(self.root, disk_root.inspect(self.root))
            self._readable = self._ready = True

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
        body = as_chunks(data)
        header = {
            "metadata": check_metadata(metadata),
            "tags": check_tags(tags),
            "tier": StorageTier(tier).value,
            "size": len(body),
        }
        await self._run(self._write, self._path(key), disk_format.pack_header(header), body, if_absent)

    def _write(self, name: str, head: bytes, data: Body, if_absent: bool) -> bool:
        """Write the object; False when create-if-absent found exactly these bytes there already."""
        self._ensure_dirs()
        with held(self._objects) as objects, held(self._tmp) as tmp:
            temporary, fd = self._locked_temporary(name, tmp)
            renamed = False
            try:
                body = as_chunks(data)
                write_all(fd, head, *body.views)
                if self._fsync:
                    os.fsync(fd)
                if not if_absent:
                    os.replace(temporary, name, src_dir_fd=tmp, dst_dir_fd=objects)
                    renamed = True
                else:
                    try:
                        os.link(temporary, name, src_dir_fd=tmp, dst_dir_fd=objects, follow_symlinks=False)
                    except FileExistsError:
                        if self._read(name, 0, None) == bytes(body):
                            return False
                        raise ConflictError(name) from None
            finally:
                if not renamed:
                    os.unlink(temporary, dir_fd=tmp)  # locked, so no gc took it
                os.close(fd)  # only now: the lock tells gc the temporary file is in use until it is gone
        if self._fsync:
            self._dir_sync.after_rename()
        return True

    def _locked_temporary(self, name: str, tmp: int) -> tuple[str, int]:
        """A new temporary file in ``tmp``, open and locked, that is still the one at its name once locked (a
        ``gc`` that took it for a stray in the instant between its creation and the lock has not removed it)."""
        while True:
            temporary = disk_root.temporary_name(name)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            fd = os.open(temporary, flags, disk_root.FILE_MODE, dir_fd=tmp)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.stat(temporary, dir_fd=tmp, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                    os.fchmod(fd, disk_root.FILE_MODE)  # exactly 0600, whatever the umask took away
                    return temporary, fd
            except FileNotFoundError:
                pass
            os.close(fd)

    # -- reads ----------------------------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | bytearray | None:
        return await self._run(self._read, self._path(key), 0, None)

    async def get_range(self, key: str, start: int, length: int) -> bytes | bytearray | None:
        return await self._run(self._read, self._path(key), start, length)

    def _open(self, name: str) -> tuple[BufferedReader, dict[str, Any], int, int, bytes] | None:
        """``(file, header, data offset, data size, bytes already read past the offset)``, or None when missing.
        Only a regular file is opened; the file's size must be the one its header records."""
        if not self._check_readable():
            return None
        try:
            with held(self._objects) as objects:
                fd = open_regular(objects, name)
        except FileNotFoundError:
            return None
        if fd is None:
            return None
        return disk_format.open_object(fd, name)

    def _read(self, name: str, start: int, length: int | None) -> bytes | bytearray | None:
        opened = self._open(name)
        if opened is None:
            return None
        f, _header, offset, size, ahead = opened
        with f:
            start = min(start, size)
            stop = size if length is None else min(start + length, size)
            if stop <= len(ahead):
                return ahead[start:stop]
            if start == 0:
                return read_rest(f, ahead, stop)
            f.seek(offset + start)
            return read_exactly(f, stop - start)

    async def head(self, key: str) -> ObjectInfo | None:
        return await self._run(self._head, self._path(key))

    def _head(self, name: str) -> ObjectInfo | None:
        opened = self._open(name)
        if opened is None:
            return None
        f, header, _offset, size, _ahead = opened
        with f:
            stat = os.fstat(f.fileno())
        tier = StorageTier(header["tier"])
        return ObjectInfo(
            key=name,
            size=size,
            metadata=header["metadata"],
            last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
            tier=tier,
            storage_class=tier.value,
            version=disk_format.version(stat),
        )

    async def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        for entry in await self._run(self._list_objects, prefix):
            yield entry

    def _list_objects(self, prefix: str) -> builtins.list[ListEntry]:
        """Every key under the prefix, damaged objects and whatever else stands at a key included (size: what can
        be told); names that cannot be keys are not tierstore's and not listed (:meth:`foreign` names them)."""
        if not self._check_readable():
            return []
        with directory(self._objects) as (fd, names):
            return [
                disk_format.list_entry(fd, name)
                for name in names
                if name.startswith(prefix) and disk_root.is_key_name(name)
            ]

    def usage(self, prefix: str) -> tuple[int, int] | None:
        return None

    # -- temporary files left by killed writers, and files that are not tierstore's -------------------------

    async def strays(self) -> builtins.list[ListEntry]:
        """Temporary files in ``ROOT/tmp``: writes still running, or left by writers that were killed. Only names
        of tierstore's temporary files; anything else there is :meth:`foreign`."""
        return await self._run(self._strays)

    def _strays(self) -> builtins.list[ListEntry]:
        if not self._check_readable():
            return []
        with directory(self._tmp) as (fd, names):
            return [
                disk_format.list_entry(fd, n) for n in names if disk_root.is_temporary_name(n) and is_regular(fd, n)
            ]

    async def delete_strays(self, names: Sequence[str]) -> builtins.list[str]:
        """Delete those of these temporary files no write holds (a running write keeps its file locked); the names
        deleted. A name not of tierstore's temporary files, or anything but a regular file, is left alone."""
        return await self._run(self._delete_strays, list(names))

    def _delete_strays(self, names: builtins.list[str]) -> builtins.list[str]:
        if not self._check_readable():
            return []
        with directory(self._tmp) as (fd, _names):
            return [n for n in names if disk_root.is_temporary_name(n) and unlink_unless_locked(n, fd)]

    async def discard_unfinished(self, prefix: str) -> int:
        """Delete killed writers' temporary files of keys under ``prefix`` (:func:`.disk_root.temporary_under`)."""
        names = [e.key for e in await self.strays() if disk_root.temporary_under(e.key, prefix)]
        return len(await self.delete_strays(names)) if names else 0

    async def foreign(self) -> builtins.list[str]:
        """What the store holds that tierstore did not write (paths relative to the root, ASCII-escaped): never
        opened, changed or deleted, only reported."""
        return await self._run(self._foreign)

    def _foreign(self) -> builtins.list[str]:
        if not self._check_readable():
            return []
        found = [
            disk_root.shown(name)
            for name in os.listdir(self.root)
            if name not in (disk_root.MARK, disk_root.OBJECTS, disk_root.TMP)
        ]
        with directory(self._objects) as (fd, names):
            found += [f"{disk_root.OBJECTS}/{disk_root.shown(n)}" for n in names if not disk_root.is_key_name(n)]
        with directory(self._tmp) as (fd, names):
            found += [
                f"{disk_root.TMP}/{disk_root.shown(n)}"
                for n in names
                if not (disk_root.is_temporary_name(n) and is_regular(fd, n))
            ]
        return sorted(found)

    # -- deletes and tiers ----------------------------------------------------------------------------------

    async def delete(self, key: str) -> bool:
        return await self._run(self._delete, self._path(key))

    def _delete(self, name: str) -> bool:
        try:
            with held(self._objects) as objects:
                return unlink(name, objects)
        except FileNotFoundError:
            return False

    async def delete_many(self, keys: Sequence[str]) -> None:
        await self._run(self._delete_many, [self._path(k) for k in keys])

    def _delete_many(self, names: builtins.list[str]) -> None:
        try:
            with held(self._objects) as objects:
                unlink_all(names, objects)
        except FileNotFoundError:
            pass  # no objects/: nothing to delete

    async def set_tier(self, key: str, tier: StorageTier, *, tags: Mapping[str, str] | None = None) -> None:
        merged = dict(check_tags(tags))
        await self._run(self._retier, self._path(key), StorageTier(tier), merged)

    def _retier(self, name: str, tier: StorageTier, tags: dict[str, str]) -> None:
        opened = self._open(name)
        if opened is None:
            raise ObjectNotFoundError(name)
        f, header, _offset, size, ahead = opened
        with f:
            data = read_rest(f, ahead, size)
        header["tier"] = tier.value
        header["tags"] = check_tags({**header["tags"], **tags})
        header["size"] = size
        self._ensure_dirs()
        with held(self._objects) as objects, held(self._tmp) as tmp:
            temporary, fd = self._locked_temporary(name, tmp)
            try:
                write_all(fd, disk_format.pack_header(header), data)
                if self._fsync:
                    os.fsync(fd)
                try:
                    exchange(temporary, tmp, name, objects)
                except FileNotFoundError:
                    raise ObjectNotFoundError(name) from None  # deleted since it was read: deleting wins
            finally:
                unlink_quietly(temporary, tmp)  # after the swap: the object as it was
                os.close(fd)
        if self._fsync:
            self._dir_sync.after_rename()

    async def aclose(self) -> None:
        """Nothing to release: the worker threads are the process's, and idle until another call needs them."""

    async def restore(self, key: str, *, days: int = 1, speed: RestoreSpeed = "standard") -> RestoreStatus:
        """Local files are always readable: nothing to restore."""
        if await self.head(key) is None:
            raise ObjectNotFoundError(key)
        return RestoreStatus("not-archived")


def _file_location(netloc: str, path: str) -> Location:
    """A ``file://`` URL's directory: ``file:///path`` or ``file://localhost/path``, nothing else."""
    if netloc not in ("", "localhost"):
        raise ConfigurationError("file URLs take an absolute local path: file:///path/to/store")
    return Location("file", "", path or "/")


SCHEME = Scheme("file", from_url, example="file:///path", locate=_file_location)
