"""chuk-ai-session-manager's stored pages: plain JSON, as its ``MemoryPage.model_dump_json()`` writes them.

Such an object carries no checksum and no key, so only its parse is checked: a JSON document that is not a page is
:class:`~tierstore.errors.IntegrityError`. :func:`tierstore.codec.pages.decode_page` hands over every object that
:func:`looks_like_json` (a tierstore frame starts with ``TSPG``, never with ``{`` or whitespace).
"""

from __future__ import annotations

from typing import Final

from pydantic import ValidationError

from tierstore.errors import IntegrityError
from tierstore.models import MemoryPage

_FIRST_BYTES: Final = (b"{", b" ", b"\n", b"\t", b"\r")


def looks_like_json(data: bytes | bytearray | memoryview) -> bool:
    """Whether a stored object is a JSON document rather than a tierstore frame (its first byte decides)."""
    return bytes(data[:1]) in _FIRST_BYTES


def decode_json_page(data: bytes | bytearray | memoryview) -> MemoryPage:
    """The page a chuk JSON object holds; :class:`~tierstore.errors.IntegrityError` if it holds none."""
    try:
        return MemoryPage.model_validate_json(bytes(data))
    except ValidationError as exc:
        raise IntegrityError(f"object is neither a tierstore frame nor a JSON page: {exc}") from exc
