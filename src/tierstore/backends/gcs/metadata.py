"""What GCS keeps next to an object's bytes: one map of custom metadata, holding three things.

GCS has no object tags, so one ``metadata`` map carries:

* the user metadata, under its own keys (``[a-z][a-z0-9]*``, as ``base.check_metadata`` allows);
* each tag, folded in as ``tag-<name>``, so an operator sees the same labels as on S3 or Azure;
* the tier asked for, as ``tierstore-tier``.

The hyphen keeps the last two apart from every user key; :func:`unfold` splits them again and ``head`` shows the
user metadata alone. Size needs no check of its own: the shared metadata budget (1,800 bytes) plus the most tags
any cloud allows (10, key up to 128 and value up to 256 characters) stay inside GCS's 8 KiB.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from tierstore.backends.base import MAX_TAGS, METADATA_BUDGET
from tierstore.enums import StorageTier

TAG_PREFIX: Final = "tag-"
TIER_KEY: Final = "tierstore-tier"
CUSTOM_METADATA_LIMIT: Final = 8 * 1024
"""GCS's limit on custom metadata, keys and values together."""
LARGEST_FOLD: Final = METADATA_BUDGET + MAX_TAGS * (len(TAG_PREFIX) + 128 + 256) + len(TIER_KEY) + 2
assert LARGEST_FOLD <= CUSTOM_METADATA_LIMIT  # why no size check is needed


@dataclass(frozen=True, slots=True)
class Unfolded:
    """An object's custom metadata taken apart again: the caller's metadata, its tags and its recorded tier."""

    metadata: dict[str, str]
    tags: dict[str, str]
    tier: str | None


def fold(metadata: Mapping[str, str], tags: Mapping[str, str], tier: StorageTier) -> dict[str, str]:
    """The custom metadata that stores ``metadata``, ``tags`` and ``tier`` together."""
    custom = dict(metadata)
    custom.update({TAG_PREFIX + name: value for name, value in tags.items()})
    custom[TIER_KEY] = StorageTier(tier).value
    return custom


def unfold(custom: Mapping[str, str | None] | None) -> Unfolded:
    """Split an object's custom metadata back into user metadata, tags and the recorded tier."""
    metadata: dict[str, str] = {}
    tags: dict[str, str] = {}
    tier: str | None = None
    for name, value in (custom or {}).items():
        if value is None:
            continue
        if name == TIER_KEY:
            tier = value
        elif name.startswith(TAG_PREFIX):
            tags[name[len(TAG_PREFIX) :]] = value
        else:
            metadata[name] = value
    return Unfolded(metadata, tags, tier)


def retiered(custom: Mapping[str, str | None] | None, tier: StorageTier, tags: Mapping[str, str]) -> dict[str, str]:
    """``custom`` with ``tags`` merged into its tags and ``tier`` recorded; user metadata unchanged."""
    current = unfold(custom)
    return fold(current.metadata, {**current.tags, **tags}, tier)
