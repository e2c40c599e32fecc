"""The enumerations pages are described with; values match chuk-ai-session-manager's, so pages move between both.

They stay ``(str, Enum)`` rather than ``StrEnum`` on purpose: formatting (``f"{page.modality}"``) then prints
what chuk-ai-session-manager's pages print. Each reads its ``value`` through :class:`_QuickValue`: the same value,
without the two Python calls of CPython 3.11's ``Enum.value`` (pydantic reads it for every enum field it
serializes, so every stored page pays it several times).
"""

from __future__ import annotations

from enum import Enum, IntEnum
from operator import attrgetter
from typing import Any


class _QuickValue:
    """``value`` as a C-level property over the member's ``_value_`` (what ``Enum.value`` returns)."""

    __slots__ = ()
    value: Any = property(attrgetter("_value_"))


class Modality(_QuickValue, str, Enum):  # noqa: UP042 - see the module docstring
    """What kind of content a page holds: text, an image, audio, video or structured data."""

    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    STRUCTURED = "structured"


class StorageTier(_QuickValue, str, Enum):  # noqa: UP042 - see the module docstring
    """Where a page lives: L0-L2 in the process, L3 persistent storage, L4 cold archive."""

    L0 = "L0"  # the context window
    L1 = "L1"  # hot cache of recent pages
    L2 = "L2"  # session storage
    L3 = "L3"  # persistent storage
    L4 = "L4"  # cold archive


class CompressionLevel(_QuickValue, IntEnum):
    """How much of the page's detail a representation keeps (lower keeps more)."""

    FULL = 0
    REDUCED = 1
    ABSTRACT = 2
    REFERENCE = 3


class PageType(_QuickValue, str, Enum):  # noqa: UP042 - see the module docstring
    """The role a page plays in an agent's memory: transcript, summary, artifact, claim, procedure or index."""

    TRANSCRIPT = "transcript"
    SUMMARY = "summary"
    ARTIFACT = "artifact"
    CLAIM = "claim"
    PROCEDURE = "procedure"
    INDEX = "index"
