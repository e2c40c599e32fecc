"""What chuk's ``MemoryManager`` knows of its pages beyond the pages themselves, kept in a checkpoint as one page.

A checkpoint made by :func:`tierstore.integrations.chuk.checkpoint` holds, beside the pages, one structured page
:data:`STATE_PAGE_ID` (tier L2, so it is never archived) with the manager's page table entries (tier, artifact,
compression level, tokens, type, provenance, access counts; in the table's order, which is the order of the
model's manifest), the search hints, the L0 order and the pins. That is everything chuk's manifest and
``search_pages`` show the model, so a restore rebuilds them without reading an evicted page. Its ``created_at`` is
fixed, so while nothing changes its content, a checkpoint reuses the artifact of the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError

from tierstore.enums import Modality, PageType, StorageTier
from tierstore.errors import IntegrityError
from tierstore.models import MemoryPage

STATE_PAGE_ID: Final = "tierstore.chuk/manager-state"
_FORMAT: Final = 1
_FIXED_TIME: Final = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ManagerState:
    """What a checkpoint keeps of a manager beside its pages (see the module docstring)."""

    entries: list[dict[str, Any]]
    """chuk's ``PageTableEntry`` objects as JSON, in the page table's order."""
    l0: list[str]
    pinned: list[str]
    hints: dict[str, str]


def state_page(state: ManagerState, session_id: str | None) -> MemoryPage:
    """The structured page that holds ``state`` in a checkpoint."""
    content = {
        "format": _FORMAT,
        "entries": state.entries,
        "l0": state.l0,
        "pinned": state.pinned,
        "hints": dict(sorted(state.hints.items())),
    }
    return MemoryPage(
        page_id=STATE_PAGE_ID,
        session_id=session_id,
        modality=Modality.STRUCTURED,
        page_type=PageType.INDEX,
        storage_tier=StorageTier.L2,
        content=content,
        created_at=_FIXED_TIME,
        last_accessed=_FIXED_TIME,
    )


def read_state(page: MemoryPage) -> ManagerState:
    """The manager state a checkpoint's state page holds; IntegrityError when it holds none."""
    content = page.content
    try:
        if not isinstance(content, dict) or content.get("format") != _FORMAT:
            raise TypeError(f"format {content.get('format') if isinstance(content, dict) else None!r}")
        entries, l0, pinned, hints = content["entries"], content["l0"], content["pinned"], content["hints"]
        if not (isinstance(entries, list) and all(isinstance(e, dict) for e in entries)):
            raise TypeError("entries")
        if not (_strings(l0) and _strings(pinned) and isinstance(hints, dict) and _strings([*hints.values()])):
            raise TypeError("l0, pinned or hints")
    except (KeyError, TypeError, ValidationError) as exc:
        raise IntegrityError(f"the checkpoint's {STATE_PAGE_ID} page is not one this tierstore reads ({exc})") from exc
    return ManagerState(entries=entries, l0=l0, pinned=pinned, hints={str(k): v for k, v in hints.items()})


def _strings(values: Any) -> bool:
    return isinstance(values, list) and all(isinstance(v, str) for v in values)
