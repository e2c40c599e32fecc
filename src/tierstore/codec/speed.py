"""What keeps encoding cheap on the event loop, apart from what it encodes: hashing small buffers without letting
the GIL go, and write tokens drawn from the OS in batches.

Contract: :func:`sha256` is ``hashlib.sha256(data)``; :data:`TOKENS` hands out 16 random bytes (as 32 hex
characters) that no other call of this process, nor of a process forked from it, ever gets.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any, Final

_HOLD_GIL_BELOW: Final = 16 * 1024
_GIL_KEPT_UP_TO: Final = 2047
"""CPython's hashlib lets the GIL go while it hashes 2048 bytes or more at once."""
_TOKEN_BYTES: Final = 16
_POOL_BYTES: Final = 4096


def sha256(data: bytes | memoryview) -> Any:
    """``hashlib.sha256(data)``; below 16 KiB fed in slices under 2 KiB, for which CPython keeps the GIL: on the
    event loop, getting the GIL back from busy disk threads takes far longer than hashing a small page."""
    size = len(data)
    if size <= _GIL_KEPT_UP_TO or size >= _HOLD_GIL_BELOW:
        return hashlib.sha256(data)
    view = memoryview(data)
    digest = hashlib.sha256(view[:_GIL_KEPT_UP_TO])
    if size <= 2 * _GIL_KEPT_UP_TO:  # a page of 2-4 KiB, the commonest size: two calls, no loop
        digest.update(view[_GIL_KEPT_UP_TO:])
        return digest
    for start in range(_GIL_KEPT_UP_TO, size, _GIL_KEPT_UP_TO):
        digest.update(view[start : start + _GIL_KEPT_UP_TO])
    return digest


class WriteTokens:
    """Write tokens of 16 random bytes from the OS, drawn 4 KiB at a time: a system call per frame would hand the
    GIL to the disk threads at every page, and waiting to get it back costs more than the call."""

    def __init__(self) -> None:
        self._forget()
        os.register_at_fork(after_in_child=self._forget)  # a child must never issue its parent's tokens

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._pool = ""
        self._used = 0

    def next(self) -> str:
        """A token no other call returns, as 32 hex characters."""
        with self._lock:
            if self._used == len(self._pool):
                self._pool, self._used = os.urandom(_POOL_BYTES).hex(), 0
            self._used += 2 * _TOKEN_BYTES
            return self._pool[self._used - 2 * _TOKEN_BYTES : self._used]


TOKENS: Final = WriteTokens()
"""The process's one source of write tokens."""
