"""How large a page's encoding could be, without encoding it: chooses whether a page is encoded on the event loop
or in a worker thread.

Contract: :func:`may_exceed` is True whenever the content and metadata, encoded, would take more than ``limit``
bytes (an upper bound: UTF-8 and JSON escapes counted at their widest), and also when finding out would take more
than :data:`WALK_BUDGET` steps (many small values: encoding them is worth a thread too). It never encodes, and costs
at most that many steps on the loop.
"""

from __future__ import annotations

from typing import Any, Final

WALK_BUDGET: Final = 2048
"""Values looked at, at most, before a structure is sent to a thread without knowing more."""
_WIDEST_CHAR: Final = 6
"""The most bytes one character of a str takes in JSON (``\\u001f``; UTF-8 takes at most 4)."""
_WIDEST_SCALAR: Final = 24
"""The most bytes a float, bool or None takes in JSON (``-1.2345678901234567e-308``)."""


def text_size(text: str) -> int:
    """The most bytes ``text`` takes as UTF-8 (``str.isascii`` is a flag CPython keeps: no scan)."""
    return len(text) if text.isascii() else 4 * len(text)


def may_exceed(values: tuple[Any, ...], limit: int) -> bool:
    """Whether ``values`` (content, metadata), as JSON, may take more than ``limit`` bytes."""
    pending = list(values)
    total = 0
    for _step in range(WALK_BUDGET):
        if not pending:
            return False
        value = pending.pop()
        if isinstance(value, str):
            total += _WIDEST_CHAR * len(value) + 3
        elif isinstance(value, dict):
            total += 2 + len(value)
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list | tuple):
            total += 2 + len(value)
            pending.extend(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            total += value.bit_length() // 3 + 2
        else:
            total += _WIDEST_SCALAR
        if total > limit:
            return True
    return bool(pending)
