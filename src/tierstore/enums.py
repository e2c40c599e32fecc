"""The enumerations pages are described with; values match chuk-ai-session-manager's, so pages move between both.

They stay ``(str, Enum)`` rather than ``StrEnum`` on purpose: formatting (``f"{page.modality}"``) then prints
what chuk-ai-session-manager's pages print.
"""

from __future__ import annotations

from enum import Enum, IntEnum


class Modality(str, Enum):  # noqa: UP042 - see the module docstring
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    STRUCTURED = "structured"


class StorageTier(str, Enum):  # noqa: UP042 - see the module docstring
    """Where a page lives: L0-L2 in the process, L3 persistent storage, L4 cold archive."""

    L0 = "L0"  # the context window
    L1 = "L1"  # hot cache of recent pages
    L2 = "L2"  # session storage
    L3 = "L3"  # persistent storage
    L4 = "L4"  # cold archive


class CompressionLevel(IntEnum):
    """How much of the page's detail a representation keeps (lower keeps more)."""

    FULL = 0
    REDUCED = 1
    ABSTRACT = 2
    REFERENCE = 3


class PageType(str, Enum):  # noqa: UP042 - see the module docstring
    TRANSCRIPT = "transcript"
    SUMMARY = "summary"
    ARTIFACT = "artifact"
    CLAIM = "claim"
    PROCEDURE = "procedure"
    INDEX = "index"
