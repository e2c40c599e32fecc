"""The local disk's delete of an object only as its caller judged it (:mod:`tierstore.record_deletes`).

Contract: ``delete_if_judged(key, judge)`` reads the object at ``key`` (its bytes, None when it cannot be read, and
its last-modified time), asks ``judge``, and unlinks it only if ``judge`` accepts, all while holding an exclusive
``flock`` on the store's ``objects`` directory, which every such delete takes (in every process and thread: each
takes it through a descriptor of its own). So no other such delete removes the object between the read and the
unlink, and no create-if-absent can land on its name while it stands (``os.link`` fails on a name that exists):
what is unlinked is what was judged. Only a delete that judges nothing (an erasure of the scope) could remove it in
that instant. False when the object is absent or judged to stay; what stands at the key and is no regular file is
judged as unreadable and removed as ``delete`` removes it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tierstore.backends.disk_files import held, unlink
from tierstore.errors import IntegrityError

T = TypeVar("T")

Judge = Callable[[bytes | bytearray | None, datetime | None], bool]
"""Whether to delete the object read: its bytes (None: there, but it cannot be read) and its last-modified time."""


class JudgedDeletes:
    """``delete_if_judged`` of :class:`~tierstore.backends.filesystem.FileSystemBackend` (module contract)."""

    if TYPE_CHECKING:
        _objects: Path

        async def _run(self, call: Callable[..., T], *args: Any) -> T: ...

        def _path(self, key: str) -> str: ...

        def _read(self, name: str, start: int, length: int | None) -> bytes | bytearray | None: ...

    async def delete_if_judged(self, key: str, judge: Judge) -> bool:
        """Delete ``key`` only while ``judge`` accepts what is there (module contract)."""
        return await self._run(self._delete_if_judged, self._path(key), judge)

    def _delete_if_judged(self, name: str, judge: Judge) -> bool:
        try:
            with held(self._objects) as objects:
                fcntl.flock(objects, fcntl.LOCK_EX)  # released when the descriptor closes
                try:
                    stat = os.stat(name, dir_fd=objects, follow_symlinks=False)
                except FileNotFoundError:
                    return False
                try:
                    data = self._read(name, 0, None)
                except IntegrityError:
                    data = None
                else:
                    if data is None:
                        return False
                if not judge(data, datetime.fromtimestamp(stat.st_mtime, UTC)):
                    return False
                return unlink(name, objects)
        except FileNotFoundError:
            return False
