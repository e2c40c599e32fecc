"""Damage the machine does to a store behind tierstore's back, and files that are not tierstore's.

Contract: on the local disk, damage is done to the files themselves (bits, lengths, entry kinds); on every other
backend through the backend's raw ``get``/``put``/``delete``, keeping the object's metadata, tags and tier, as a
bad disk, a bad copy or another program would. Foreign entries are written where a user's own files could be, and
:func:`snapshot` records everything about them so a test can tell if tierstore touched one.
"""

from __future__ import annotations

import hashlib
import os
import random
import stat
from pathlib import Path
from typing import Final

from tierstore.backends.base import StorageBackend

OBJECT_DAMAGE: Final = ("flip", "truncate", "extend", "remove", "swap")
DISK_ONLY_DAMAGE: Final = ("directory", "fifo", "symlink", "sparse")
DISK_FOREIGN: Final = (
    "root-file",  # ROOT/notes.txt
    "objects-file",  # ROOT/objects/my notes.txt: a name no key can have
    "tmp-file",  # ROOT/tmp/todo.txt: a user's ~/tmp when the store is ~
    "tmp-directory",  # ROOT/tmp/photos/cat.txt
    "tmp-symlink",  # ROOT/tmp/elsewhere -> a directory outside the root
)
CLOUD_FOREIGN: Final = ("notes.txt", "backup.tar", "put-x-0123456789ab", "mem_notes.txt", "tomb_stone.txt")


def object_path(root: Path, key: str) -> Path:
    return root / "objects" / key


def damage_file(path: Path, kind: str, rng: random.Random, other: Path | None) -> None:
    """Damage one object file of the local-disk store in place."""
    if kind == "flip":
        data = bytearray(path.read_bytes())
        bit = rng.randrange(len(data) * 8)
        data[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(data))
    elif kind == "truncate":
        size = path.stat().st_size
        os.truncate(path, rng.randrange(size))
    elif kind == "extend":
        with path.open("ab") as f:
            f.write(rng.randbytes(rng.randint(1, 64)))
    elif kind == "sparse":
        os.truncate(path, 1 << 40)
    elif kind == "remove":
        path.unlink()
    elif kind == "swap":
        assert other is not None
        parked = path.with_name(path.name + ".swap")
        path.rename(parked)
        other.rename(path)
        parked.rename(other)
    elif kind == "directory":
        path.unlink()
        path.mkdir()
        (path / "inside").write_bytes(b"a directory where an object was")
    elif kind == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif kind == "symlink":
        assert other is not None
        path.unlink()
        path.symlink_to(other)
    else:
        raise AssertionError(f"unknown damage {kind}")


async def damage_object(backend: StorageBackend, key: str, kind: str, rng: random.Random, other: str | None) -> None:
    """The same damage through the backend's raw calls, keeping metadata, tags and tier."""
    info = await backend.head(key)
    data = await backend.get(key)
    assert info is not None, key
    assert data is not None, key
    raw = bytearray(bytes(data))

    async def put(target: str, body: bytes, source_info: object = info) -> None:
        meta = getattr(source_info, "metadata", {})
        tier = getattr(source_info, "tier", None)
        tags = {k: meta[k] for k in ("tier", "modality", "pagetype") if k in meta}
        if tier is not None:
            await backend.put(target, body, metadata=meta, tags=tags, tier=tier)
        else:
            await backend.put(target, body, metadata=meta, tags=tags)

    if kind == "flip":
        bit = rng.randrange(len(raw) * 8)
        raw[bit // 8] ^= 1 << (bit % 8)
        await put(key, bytes(raw))
    elif kind == "truncate":
        await put(key, bytes(raw[: rng.randrange(len(raw))]))
    elif kind == "extend":
        await put(key, bytes(raw) + rng.randbytes(rng.randint(1, 64)))
    elif kind == "remove":
        await backend.delete(key)
    elif kind == "swap":
        assert other is not None
        other_info = await backend.head(other)
        other_data = await backend.get(other)
        assert other_info is not None, other
        assert other_data is not None, other
        await put(key, bytes(other_data), other_info)
        await put(other, bytes(raw), info)
    else:
        raise AssertionError(f"unknown damage {kind} off the disk")


def make_foreign(root: Path, outside: Path, kind: str) -> list[Path]:
    """A user's own entry in or under the store's root; returns the paths to watch."""
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "precious.txt").write_text("a file outside the store")
    made: list[Path] = []
    if kind == "root-file":
        made.append(root / "notes.txt")
    elif kind == "objects-file":
        made.append(root / "objects" / "my notes.txt")
    elif kind == "tmp-file":
        made.append(root / "tmp" / "todo.txt")
    elif kind == "tmp-directory":
        (root / "tmp" / "photos").mkdir(parents=True, exist_ok=True)
        made += [root / "tmp" / "photos", root / "tmp" / "photos" / "cat.txt"]
    elif kind == "tmp-symlink":
        link = root / "tmp" / "elsewhere"
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(outside, target_is_directory=True)
        made.append(link)
    for path in made:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() and not path.is_symlink():
            path.write_text(f"the user's own {path.name}, not tierstore's")
    return [*made, outside / "precious.txt"]


def snapshot(paths: list[Path]) -> dict[Path, tuple[str, int, str]]:
    """Kind, mode and content digest (or link target) of each path, without following symlinks."""
    out: dict[Path, tuple[str, int, str]] = {}
    for path in paths:
        try:
            info = path.lstat()
        except FileNotFoundError:
            out[path] = ("missing", 0, "")
            continue
        if stat.S_ISLNK(info.st_mode):
            out[path] = ("symlink", info.st_mode, os.readlink(path))
        elif stat.S_ISDIR(info.st_mode):
            out[path] = ("directory", info.st_mode, ",".join(sorted(os.listdir(path))))
        else:
            out[path] = ("file", info.st_mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return out
