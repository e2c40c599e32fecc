"""A page's description as object metadata, so that ``get_metadata`` needs no body read.

Contract: :func:`object_metadata` projects the artifact id, page id, modality, page type, tier, level, created,
checksum, size (and the owning lease, if any) as lowercase keys with percent-encoded ASCII values. The page id, then
the page's own ``metadata`` (as JSON, ``meta``), go in only while the whole stays inside the budget the caller gives
(every cloud's limit); without them, a reader reads the frame's header instead. :func:`page_tags` are the tags a
page is stored with where the cloud has tags. Both are built from enum values through tables, not ``.value``, which
is a Python-level descriptor call in CPython 3.11.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote, unquote

from pydantic_core import from_json, to_json

from tierstore.codec.frame import VERSION
from tierstore.enums import CompressionLevel, Modality, PageType, StorageTier
from tierstore.models import MemoryPage

_FORMAT: Final = str(VERSION)
USER_METADATA: Final = "meta"
"""The object-metadata key of the page's own ``metadata`` (:func:`user_metadata`), when it fits the budget."""
_UNRESERVED_COLON_PLUS: Final = re.compile(r"[A-Za-z0-9_.~:+-]*")
_VALUE: Final[dict[str, str]] = {m: m.value for kind in (Modality, PageType, StorageTier) for m in kind}
_LEVEL: Final[dict[int, str]] = {level: str(int(level)) for level in CompressionLevel}
_TAGS: dict[tuple[StorageTier, Modality, PageType], dict[str, str]] = {}


def quote_value(text: str) -> str:
    """``quote(text, safe="")``, quicker for what pages hold most: ids and times of unreserved characters, ``:``
    and ``+``."""
    if _UNRESERVED_COLON_PLUS.fullmatch(text):
        return text.replace(":", "%3A").replace("+", "%2B")
    return quote(text, safe="")


def object_metadata(
    page: MemoryPage, tier: StorageTier, owner: str | None, key: str, checksum: str, size: int, budget: int
) -> dict[str, str]:
    """The page's description as object metadata for the frame of ``checksum`` and ``size`` under ``key``."""
    level = page.compression_level
    metadata = {
        "format": _FORMAT,
        "aid": key,
        "modality": _VALUE.get(page.modality) or Modality(page.modality).value,
        "pagetype": _VALUE.get(page.page_type) or PageType(page.page_type).value,
        "tier": _VALUE[tier],
        "level": _LEVEL.get(level) or str(int(level)),
        "created": quote_value(page.created_at.isoformat()),
        "checksum": checksum,
        "size": str(size),
    }
    if owner:
        metadata["ckpt"] = owner
    page_id = quote_value(page.page_id)
    used = len("".join(metadata)) + len("".join(metadata.values()))
    if used + len("pageid") + len(page_id) <= budget:
        metadata["pageid"] = page_id
        used += len("pageid") + len(page_id)
    if page.metadata:
        mapping = user_metadata(page.metadata)
        if mapping is not None and used + len(USER_METADATA) + len(mapping) <= budget:
            metadata[USER_METADATA] = mapping
    return metadata


def user_metadata(values: Mapping[str, Any]) -> str | None:
    """The page's own ``metadata`` as one object-metadata value: its JSON, percent-encoded (any Unicode, ``%`` and
    ``=`` come back exactly); None for values JSON cannot hold (the frame's header keeps them)."""
    try:
        return quote(to_json(values).decode(), safe="")
    except (TypeError, ValueError, UnicodeDecodeError):
        return None


def read_user_metadata(value: str) -> dict[str, Any] | None:
    """What :func:`user_metadata` wrote; None for a value that is not its output."""
    try:
        found = from_json(unquote(value, errors="strict"))
    except (ValueError, UnicodeDecodeError):
        return None
    return found if isinstance(found, dict) else None


def page_tags(page: MemoryPage, tier: StorageTier) -> Mapping[str, str]:
    """The tags ``tier``, ``modality`` and ``pagetype`` of a page stored in ``tier`` (one shared mapping per
    combination: read it, copy it, never change it)."""
    found = (tier, page.modality, page.page_type)
    tags = _TAGS.get(found)
    if tags is None:
        tags = _TAGS[found] = {"tier": tier.value, "modality": page.modality.value, "pagetype": page.page_type.value}
    return tags
