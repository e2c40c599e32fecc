"""What the bridge accepts from its callers, checked before any I/O.

* :func:`as_page` takes a page as it is at the moment it is stored: tierstore's ``MemoryPage`` or one of the same
  shape from another library (chuk-ai-session-manager's), validated field by field. pydantic does not validate
  assignments, so a page changed after construction (``page.importance += 0.7``, a plain string assigned to
  ``storage_tier``) is checked here again; the bridge stores the validated copy and never changes the caller's.
  Content in a mutable buffer (``bytearray``, ``memoryview``) is copied to ``bytes`` here, before the call's first
  await: what is stored is that snapshot, whatever the caller does to its buffer meanwhile (a released memoryview is
  refused; a strided or multi-dimensional one is copied in C order). ``bytes`` and ``str`` are kept, not copied.
* :func:`as_tier` takes a tier as a ``StorageTier``, another library's tier enum of the same values, or the plain
  string in any case (``"L4"``, ``"l4"``).
* :func:`as_pages`, :func:`as_stored`, :func:`resolve_tier` and :func:`check_restore` check the other arguments of
  the bridge's calls (``checkpoint``, ``store_page``, ``restore_page``).
* :func:`check_json` refuses what JSON would not give back equal, or nests deeper than :data:`MAX_DEPTH`.

Every refusal is an :class:`~tierstore.errors.InvalidInputError`; where two classes share a name, messages give
the module too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable
from enum import Enum
from typing import Any, Final, get_args

from pydantic import BaseModel, ValidationError

from tierstore import ids
from tierstore.backends.base import RestoreSpeed
from tierstore.enums import StorageTier
from tierstore.errors import InvalidInputError
from tierstore.models import CheckpointEntry, MemoryPage

MAX_DEPTH: Final = 100
"""Deepest nesting of lists and dicts accepted in content and metadata (Python's own JSON coder fails near 1,000)."""

PERSISTENT_TIERS: Final = (StorageTier.L2, StorageTier.L3, StorageTier.L4)
_ERRORS_SHOWN: Final = 3
_validate: Final = MemoryPage.__pydantic_validator__.validate_python


def type_name(value: object) -> str:
    """A type's name, with its module when it is not a builtin: ``chuk_ai_session_manager.memory.models.MemoryPage``."""
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def as_page(value: Any) -> MemoryPage:
    """A validated copy of ``value`` as a tierstore ``MemoryPage`` (content kept as is, but a mutable buffer copied
    to ``bytes``)."""
    if isinstance(value, MemoryPage) or (isinstance(value, BaseModel) and type(value).__name__ == "MemoryPage"):
        fields = value.__dict__  # read, never changed; content is ``Any``: validated as the very same object
    else:
        raise InvalidInputError(f"expected a tierstore.models.MemoryPage, got {type_name(value)}")
    try:
        page: MemoryPage = _validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()[:_ERRORS_SHOWN]
        )
        more = f" (and {exc.error_count() - _ERRORS_SHOWN} more)" if exc.error_count() > _ERRORS_SHOWN else ""
        raise InvalidInputError(f"page {_short(fields.get('page_id'))} is not valid: {problems}{more}") from None
    ids.check_text_id(page.page_id, "page_id")
    if isinstance(page.content, bytearray | memoryview):
        page.content = snapshot(page.content)
    return page


def snapshot(content: bytearray | memoryview) -> bytes:
    """The bytes a mutable buffer holds now (a memoryview's in C order, whatever its shape, strides or format)."""
    if isinstance(content, bytearray):
        return bytes(content)
    try:
        return content.tobytes()
    except ValueError:
        raise InvalidInputError("page content is a released memoryview") from None


def as_tier(value: Any, allowed: Collection[StorageTier] = PERSISTENT_TIERS) -> StorageTier:
    """``value`` as a StorageTier among ``allowed``: a StorageTier, a same-valued enum member, or its string."""
    raw = value.value if isinstance(value, Enum) else value
    tier = None
    if isinstance(raw, str):
        tier = next((t for t in StorageTier if t.value == raw.strip().upper()), None)  # any case, as settings
    names = _either([t.value for t in allowed])
    if tier is None:
        raise InvalidInputError(f"expected a tier ({names}), got {_describe(value)}")
    if tier not in allowed:
        raise InvalidInputError(f"pages are stored in {names}, not {tier.value} (L0 and L1 live in the process)")
    return tier


def resolve_tier(page: MemoryPage, tier: Any) -> StorageTier:
    """The tier a page is stored in: ``tier`` when given, else the page's own if it is L2-L4, else L3 (an evicted
    page lands in L3)."""
    if tier is None:
        return page.storage_tier if page.storage_tier in PERSISTENT_TIERS else StorageTier.L3
    return as_tier(tier)


def as_pages(pages: Any) -> list[MemoryPage]:
    """Validated copies of an iterable of pages (a str, bytes or dict is refused: it iterates as something else)."""
    if pages is None or isinstance(pages, str | bytes | dict) or not isinstance(pages, Iterable):
        raise InvalidInputError(f"pages must be an iterable of MemoryPage, not {type_name(pages)}")
    return [as_page(p) for p in pages]


def as_stored(stored: Any, artifact_key: Callable[[object], str | None]) -> list[CheckpointEntry]:
    """``checkpoint(stored=...)`` as a list: CheckpointEntry objects, each naming an artifact id of the store
    (``artifact_key`` gives None for one that is not)."""
    if isinstance(stored, str | bytes | dict) or not isinstance(stored, Iterable):
        raise InvalidInputError(f"stored must be an iterable of CheckpointEntry, not {type_name(stored)}")
    kept = list(stored)
    for entry in kept:
        if not isinstance(entry, CheckpointEntry):
            raise InvalidInputError(f"stored must hold CheckpointEntry objects, not {type_name(entry)}")
        if artifact_key(entry.artifact_id) is None:
            raise InvalidInputError(f"{clip(entry.artifact_id, 100)} is no artifact id of this store")
    return kept


def check_restore(days: Any, speed: Any) -> None:
    """``restore_page``'s options: ``days`` an int of at least 1, ``speed`` one of :data:`RestoreSpeed`."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise InvalidInputError(f"days must be an int of at least 1, not {days!r}")
    if speed not in get_args(RestoreSpeed):
        raise InvalidInputError(f"speed must be one of {', '.join(get_args(RestoreSpeed))}, not {speed!r}")


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def check_json(value: Any, what: str, depth: int = 0) -> None:
    """Refuse what would not come back equal from JSON: only dicts with str keys, lists, str, int, finite float,
    bool and None (a tuple would come back a list, a datetime a str, NaN not at all), no lone surrogates, and
    nesting at most :data:`MAX_DEPTH` deep."""
    if isinstance(value, str):
        _check_text(value, what)
        return
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"{what} holds {value}, which JSON cannot represent")
        return
    if isinstance(value, list | dict) and depth >= MAX_DEPTH:
        raise InvalidInputError(f"{what} nests lists or dicts more than {MAX_DEPTH} deep")
    if isinstance(value, list):
        for item in value:
            check_json(item, what, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError(f"{what} has a key of type {type_name(key)}; JSON keys are str")
            _check_text(key, what)
            check_json(item, what, depth + 1)
        return
    raise InvalidInputError(
        f"{what} holds a {type_name(value)}; use str, bytes, or JSON data (dict, list, str, int, float, bool, None)"
    )


def _check_text(text: str, what: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # pydantic's JSON mode would silently replace it inside ``Any`` fields such as ``metadata``.
            raise InvalidInputError(f"{what} holds a lone surrogate, which UTF-8 cannot store") from None


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return repr(clip(value))
    return f"{type_name(value)} {clip(repr(value))}"


def _short(value: Any) -> str:
    return repr(clip(value)) if isinstance(value, str) else type_name(value)


def clip(text: str, limit: int = 80) -> str:
    """``text`` as a message shows it: its first ``limit`` characters, and how many there were."""
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"
