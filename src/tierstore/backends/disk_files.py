"""Files of the local-disk store, one system call at a time: what may be opened, how a name is removed, how two
names are swapped, and the directory fsync writers share.

Contract:

* Only a regular file is ever opened for reading (:func:`open_regular`), never through a symbolic link and never
  waiting for a writer (``O_NOFOLLOW | O_NONBLOCK``, and an ``lstat`` first, so a FIFO, socket or device is not even
  opened); anything else at a name is an IntegrityError naming what stands there. A file this user may not read is
  an IntegrityError too: damage to report, not a store to refuse.
* Directories are opened with ``O_NOFOLLOW`` (:func:`directory`, :func:`held`), once per call, and every name in
  them is reached through that descriptor (``*at`` system calls), never through a path: a ``tmp/`` or ``objects/``
  replaced by a symbolic link, even after the store was opened, is NotAStoreError, never followed.
* :func:`unlink` removes the name only (a symbolic link, never its target) and refuses a directory with files in it;
  :func:`unlink_unless_locked` removes only the very regular file it locked.
* :func:`exchange` swaps two names in one step (``renameat2(RENAME_EXCHANGE)``) and fails if either is gone.
* :class:`GroupSync` state, like the worker threads', starts afresh in a forked child.
"""

from __future__ import annotations

import builtins
import ctypes
import errno
import fcntl
import os
import stat as stat_module
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from io import BufferedReader
from pathlib import Path
from stat import S_ISREG
from typing import Any, Final

from tierstore.backends.base import Buffer
from tierstore.errors import IntegrityError, NotAStoreError

DENIED: Final = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
"""Never through a symbolic link, and never waiting for a writer (a FIFO standing at a key)."""
DIRECTORY_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def fsync_dir(path: Path) -> None:
    """Make the names in ``path`` durable (renames, links, unlinks), never through a symbolic link."""
    fd = open_directory(path)  # never through a link swapped in since the rename: NotAStoreError
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def kind_of(mode: int) -> str:
    """What a file of ``mode`` is, in words for an error message: "a directory", "a named pipe", ..."""
    kinds = {
        stat_module.S_IFDIR: "a directory",
        stat_module.S_IFIFO: "a named pipe",
        stat_module.S_IFSOCK: "a socket",
        stat_module.S_IFLNK: "a symbolic link",
        stat_module.S_IFCHR: "a character device",
        stat_module.S_IFBLK: "a block device",
    }
    return kinds.get(stat_module.S_IFMT(mode), "not a regular file")


_GROUPS: weakref.WeakSet[GroupSync] = weakref.WeakSet()


class GroupSync:
    """fsync of one directory shared by the writers that wait for it: each returns once an fsync that began after
    its rename has finished, and one fsync serves every writer that renamed before it began."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._start_afresh()
        _GROUPS.add(self)

    def _start_afresh(self) -> None:
        """Also in a forked child, whose copy may hold the lock, or say an fsync runs in a thread it lacks."""
        self._changed = threading.Condition()
        self._requested = 0
        self._synced = 0
        self._running = False

    def after_rename(self) -> None:
        """Return once an fsync of the directory that began after this writer's rename has finished."""
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
                        fsync_dir(self._directory)
                    finally:
                        self._changed.acquire()
                    self._synced = max(self._synced, covers)
                finally:
                    self._running = False
                    self._changed.notify_all()


def _after_fork_in_child() -> None:
    for group in list(_GROUPS):
        group._start_afresh()


os.register_at_fork(after_in_child=_after_fork_in_child)


def read_rest(f: BufferedReader, ahead: bytes, size: int) -> bytes | bytearray:
    """The data up to ``size``, in one buffer of its exact size (no second copy of a large object)."""
    if size <= len(ahead):
        return ahead[:size]
    try:
        out = bytearray(size)
    except MemoryError:  # a header that records more than can be held: another program's file, or damage
        raise IntegrityError(f"an object file records {size} bytes, more than this process can hold") from None
    out[: len(ahead)] = ahead
    view = memoryview(out)[len(ahead) :]
    while view:
        count = f.readinto(view)
        if not count:
            raise IntegrityError(f"object file {os.path.basename(str(f.name))!r} shrank while it was read")
        view = view[count:]
    return out


def read_exactly(f: BufferedReader, size: int) -> bytes:
    """``size`` bytes from ``f``; IntegrityError when the file ends sooner (it shrank while read)."""
    data = f.read(size)
    if len(data) < size:
        raise IntegrityError(f"object file {os.path.basename(str(f.name))!r} shrank while it was read")
    return data


def write_all(fd: int, *parts: Buffer) -> None:
    """Write every part to ``fd`` in order, with as few system calls as the kernel allows."""
    views = [memoryview(p).cast("B") for p in parts if len(p)]
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


def open_regular(parent: int, name: str) -> int | None:
    """A descriptor of the regular file ``name`` in the directory ``parent``; None when nothing is there;
    IntegrityError for anything else, which is never opened (opening a FIFO would wait for a writer, a device
    could act)."""
    try:
        found = os.lstat(name, dir_fd=parent)
    except FileNotFoundError:
        return None
    if S_ISREG(found.st_mode):
        try:
            fd = os.open(name, READ_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in DENIED:
                raise IntegrityError(f"object file {name!r} cannot be read ({exc.strerror})", key=name) from None
            if exc.errno not in (errno.ELOOP, errno.ENXIO):
                raise
        else:
            if S_ISREG(os.fstat(fd).st_mode):
                return fd
            os.close(fd)
        found = os.lstat(name, dir_fd=parent)  # replaced between the two looks
    raise IntegrityError(f"{name!r} is {kind_of(found.st_mode)}, not an object file", key=name)


@contextmanager
def directory(path: Path) -> Iterator[tuple[int | None, builtins.list[str]]]:
    """A descriptor of the directory and its names, never through a symbolic link; ``(None, [])`` when absent."""
    try:
        fd = open_directory(path)
    except FileNotFoundError:
        yield None, []
        return
    try:
        yield fd, os.listdir(fd)
    finally:
        os.close(fd)


@contextmanager
def held(path: Path) -> Iterator[int]:
    """A descriptor of the directory, never through a symbolic link; FileNotFoundError when absent."""
    fd = open_directory(path)
    try:
        yield fd
    finally:
        os.close(fd)


def open_directory(path: Path) -> int:
    """A descriptor of the directory ``path``; NotAStoreError when it is a symbolic link or a file."""
    try:
        return os.open(path, DIRECTORY_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise NotAStoreError(
                f"local store {str(path.parent)!r}: {path.name} is not a directory of its own (a symbolic link "
                "or a file): tierstore reads, writes and deletes only in a directory inside the store"
            ) from exc
        raise


def is_regular(fd: int | None, name: str) -> bool:
    """Whether ``name`` in the directory ``fd`` is a regular file (never following a link)."""
    try:
        return S_ISREG(os.lstat(name, dir_fd=fd).st_mode)
    except FileNotFoundError:
        return False


def unlink_unless_locked(name: str, parent: int | None) -> bool:
    """Delete the regular file ``name`` unless a write holds its lock; only the very file that was locked."""
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=parent)
    except OSError:
        return False
    try:
        locked = os.fstat(fd)
        if not S_ISREG(locked.st_mode):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a write in progress
        if os.lstat(name, dir_fd=parent).st_ino != locked.st_ino:
            return False
        os.unlink(name, dir_fd=parent)
    except FileNotFoundError:
        return False
    finally:
        os.close(fd)
    return True


def unlink(name: str, parent: int) -> bool:
    """Remove what stands at ``name`` in ``parent``: a file, a FIFO, a socket, a symbolic link (never its target),
    an empty directory. A directory with files in it is refused: they are not tierstore's."""
    try:
        os.unlink(name, dir_fd=parent)
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        try:
            os.rmdir(name, dir_fd=parent)
        except FileNotFoundError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            raise IntegrityError(
                f"{name!r} is a directory with files in it, which tierstore did not write and does not delete; "
                "remove it yourself",
                key=name,
            ) from None
    return True


def unlink_all(names: builtins.list[str], parent: int) -> None:
    """Remove every name in ``parent``; a directory with files in it is refused (IntegrityError) after the rest."""
    refused: IntegrityError | None = None
    for name in names:
        try:
            unlink(name, parent)
        except IntegrityError as exc:
            refused = refused or exc
    if refused is not None:
        raise refused


def unlink_quietly(name: str, parent: int) -> None:
    """Remove ``name`` from ``parent`` when it is there."""
    with suppress(FileNotFoundError):
        os.unlink(name, dir_fd=parent)


_RENAME_EXCHANGE: Final = 2


def _load_renameat2() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None


_renameat2: Final = _load_renameat2()


def exchange(new: str, new_parent: int, existing: str, existing_parent: int) -> None:
    """Swap two names (each in its directory) in one step; FileNotFoundError when either is gone. Where the kernel
    or the file system cannot swap (not Linux, or e.g. some network file systems), the object is replaced only if
    it is still there: the instant between that look and the rename is then the one window in which a delete can
    be undone."""
    if _renameat2 is not None:
        swapped = _renameat2(new_parent, os.fsencode(new), existing_parent, os.fsencode(existing), _RENAME_EXCHANGE)
        if swapped == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), existing)
    os.lstat(existing, dir_fd=existing_parent)
    os.replace(new, existing, src_dir_fd=new_parent, dst_dir_fd=existing_parent)
