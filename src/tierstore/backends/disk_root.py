"""The local store's root: which directory is a store, which names in it are tierstore's, and their modes.

Contract:

* A directory is a store when it holds tierstore's mark, ``ROOT/.tierstore`` (a regular file). tierstore makes the
  mark, then ``objects/`` and ``tmp/``, only in a directory that is new or empty.
* A directory an earlier tierstore made (no mark; nothing in it but ``objects/``, holding only names of
  tierstore's keys, and ``tmp/``, holding only its temporary files) is read as it is, and marked by the first
  write.
* Any other directory, and a store whose ``objects`` or ``tmp`` is not a directory of its own (a symbolic link,
  a file), is refused with :class:`NotAStoreError` before anything in it is read or written: so pointing
  ``TIERSTORE_URL`` at a home directory cannot make ``gc`` delete a user's files.
* In ``objects/`` only names of keys (:func:`is_key_name`) are tierstore's; in ``tmp/`` only names of the form
  :func:`temporary_name` gives. Everything else is reported as foreign and never opened, changed or deleted.
* Directories tierstore creates are 0700 (the XDG base-directory spec's mode for data directories), missing
  parents included, and files 0600, whatever the umask.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
from pathlib import Path
from stat import S_ISDIR, S_ISREG
from typing import Final, Literal

from tierstore.backends.base import MAX_KEY_LENGTH
from tierstore.errors import NotAStoreError

MARK: Final = ".tierstore"
OBJECTS: Final = "objects"
TMP: Final = "tmp"
DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600
_MARK_TEXT: Final = b"tierstore local store: objects/ holds its objects, tmp/ its unfinished writes\n"
_KEY_NAME: Final = re.compile(r"[A-Za-z0-9._-]+")
_OWN_KEY: Final = re.compile(r"(?:mem|ckpt|intent|tomb|alloc)_[A-Za-z0-9._-]*")
_TEMPORARY: Final = re.compile(r"put-[A-Za-z0-9._-]+-[0-9a-f]{12}")

Kind = Literal["absent", "empty", "marked", "earlier"]


def is_key_name(name: str) -> bool:
    """Whether a name in ``objects/`` can be a key (the alphabet and length every backend accepts)."""
    return len(name) <= MAX_KEY_LENGTH and _KEY_NAME.fullmatch(name) is not None and name not in (".", "..")


def temporary_name(key: str) -> str:
    """A new name in ``tmp/`` for a write of ``key``: never the same twice, and known as tierstore's."""
    return f"put-{key}-{secrets.token_hex(6)}"


def is_temporary_name(name: str) -> bool:
    """Whether ``name`` in ``tmp/`` is one :func:`temporary_name` makes (so ``gc`` may take it)."""
    return _TEMPORARY.fullmatch(name) is not None


def temporary_under(name: str, prefix: str) -> bool:
    """Whether ``name`` is a temporary file of :func:`temporary_name` for a key under ``prefix`` (never empty: a
    scope's; a write still running keeps its file locked, which the deleting call checks)."""
    return bool(prefix) and is_temporary_name(name) and name[len("put-") : -len("-000000000000")].startswith(prefix)


def shown(name: str) -> str:
    """A name as ASCII text that prints anywhere: spaces kept, control characters and undecodable bytes escaped."""
    return repr(os.fsencode(name))[2:-1]


def inspect(root: Path) -> Kind:
    """What ``root`` is; NotAStoreError for a directory that is not (and cannot become) a store."""
    try:
        stat = os.stat(root)  # the root itself may be a symbolic link, e.g. to another disk
    except FileNotFoundError:
        return "absent"
    if not S_ISDIR(stat.st_mode):
        raise NotAStoreError(f"local store {str(root)!r} is not a directory")
    try:
        mark = os.lstat(root / MARK)
    except FileNotFoundError:
        pass
    else:
        if not S_ISREG(mark.st_mode):
            raise NotAStoreError(f"local store {str(root)!r}: {MARK} is not tierstore's mark (not a regular file)")
        for name in (OBJECTS, TMP):
            _own_directory_or_absent(root, name)
        return "marked"
    names = os.listdir(root)
    if MARK in names:
        return inspect(root)  # another process made the store since the look above
    if not names:
        return "empty"
    if _made_by_an_earlier_version(root, names):
        return "earlier"
    if os.path.lexists(root / MARK):  # made meanwhile by another writer, whose first pages we just listed
        return inspect(root)
    raise NotAStoreError(
        f"no tierstore store at {root}: the directory holds files tierstore did not write and no {MARK} mark. "
        "Point TIERSTORE_URL (or --url) at a new or empty directory; to use this one as it is, create an empty "
        f"file {MARK} in it (then tierstore takes objects/ and tmp/ there as its own)"
    )


def _own_directory_or_absent(root: Path, name: str) -> bool:
    try:
        stat = os.lstat(root / name)
    except FileNotFoundError:
        return False
    if not S_ISDIR(stat.st_mode):
        raise NotAStoreError(
            f"local store {str(root)!r}: {name} is not a directory of its own (a symbolic link or a file): "
            "tierstore writes and deletes there only in a directory inside the store"
        )
    return True


def _made_by_an_earlier_version(root: Path, names: list[str]) -> bool:
    if not set(names) <= {OBJECTS, TMP}:
        return False
    try:
        for name in names:
            _own_directory_or_absent(root, name)
    except NotAStoreError:
        return False
    objects = os.listdir(root / OBJECTS) if OBJECTS in names else []
    temporary = os.listdir(root / TMP) if TMP in names else []
    return all(_OWN_KEY.fullmatch(n) for n in objects) and all(n.startswith("put-") for n in temporary)


def make_store(root: Path, kind: Kind) -> None:
    """Make ``root`` a store (``kind`` from :func:`inspect`): directories 0700, then the mark, then the layout."""
    if kind == "marked":
        _make_layout(root)
        return
    if kind == "absent":
        make_directories(root)
    os.chmod(root, DIR_MODE)  # an adopted or empty directory is the store's now: others may not read pages in it
    _make_layout(root)  # before the mark, so that a store marked is a store complete
    for name in (OBJECTS, TMP):
        os.chmod(root / name, DIR_MODE)
    try:
        fd = os.open(root / MARK, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    except FileExistsError:
        return  # another process made it at the same time
    try:
        os.write(fd, _MARK_TEXT)
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_layout(root: Path) -> None:
    for name in (OBJECTS, TMP):
        try:
            os.mkdir(root / name, DIR_MODE)
        except FileExistsError:
            _own_directory_or_absent(root, name)
        else:
            os.chmod(root / name, DIR_MODE)


def make_directories(path: Path) -> None:
    """``mkdir -p``, every directory it creates 0700 whatever the umask (XDG: "create it with permission 0700")."""
    missing: list[Path] = []
    while not os.path.lexists(path):
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
        os.chmod(directory, DIR_MODE)
