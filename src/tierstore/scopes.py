"""User and session ids: the one check every part of tierstore applies to them (issue 28; design in
``docs/design/scopes.md``).

Contract of :func:`check_scope_id`: a user id or session id is accepted exactly as given, or refused with
:class:`~tierstore.errors.InvalidInputError` naming what is wrong, before any I/O. Accepted ids are:

* a ``str``, not empty, at most :data:`MAX_SCOPE_ID_BYTES` bytes of UTF-8 (so no lone surrogates);
* in Unicode normal form NFC already. Text in another form is refused, not normalised: the id is the caller's key
  into its own user and session tables, which compare code points; normalising would silently put two ids the
  caller holds apart (``"é"`` composed and decomposed) into one scope, i.e. one user's pages into another's, and
  would make ``tierstore users`` list a name the caller never gave;
* free of code points whose normal form a later Unicode version may change or that break a line of text: control
  characters (Cc), surrogates (Cs), unassigned code points (Cn; in the Unicode version of the running Python, so an
  older Python refuses what a newer one may accept, never the reverse), line and paragraph separators (Zl, Zp);
* no path separator (``/``, ``\\``) and not ``.`` or ``..``: tierstore's keys hold a digest of the id, never the
  id itself, but adapters for other frameworks and any export to directories must be able to use it as one path
  segment, as those frameworks' own session stores do.

Format characters (Cf: the zero-width joiners of emoji sequences, bidirectional marks) are accepted: real names
hold them. Ids are compared by code point, so two that merely look alike are two scopes.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Final, Literal

from tierstore.errors import InvalidInputError

MAX_SCOPE_ID_BYTES: Final = 128
"""UTF-8 bytes of a user or session id. Room for every usual form (UUIDs, ULIDs, hex digests, most e-mail
addresses), while two ids percent-encoded (up to 3 characters a byte) still fit in a page's object metadata beside
its description (inside S3's 2 KB), so a page can name its scope without a body read."""

ScopeKind = Literal["user id", "session id"]

_SEPARATORS: Final = ("/", "\\")
_DOT_SEGMENTS: Final = frozenset({".", ".."})
_REFUSED_CATEGORIES: Final = {
    "Cc": "the control character",
    "Cs": "the surrogate",
    "Cn": "the unassigned code point",
    "Zl": "the line separator",
    "Zp": "the paragraph separator",
}


def check_scope_id(value: Any, kind: ScopeKind) -> str:
    """``value`` if it is a valid user or session id (``kind`` names which, for the message); else
    InvalidInputError saying what is wrong. The module docstring gives the rules and why."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{kind} must be a str, not {type(value).__name__}")
    if not value:
        raise InvalidInputError(f"{kind} must not be empty")
    for char in value:
        refused = _REFUSED_CATEGORIES.get(unicodedata.category(char))
        if refused is not None:
            raise InvalidInputError(f"{kind} contains {refused} U+{ord(char):04X}")
    size = len(value.encode("utf-8"))  # no surrogates left, so this encodes
    if size > MAX_SCOPE_ID_BYTES:
        raise InvalidInputError(f"{kind} is {size} bytes of UTF-8, over the limit of {MAX_SCOPE_ID_BYTES}")
    if not unicodedata.is_normalized("NFC", value):
        raise InvalidInputError(
            f"{kind} is not in Unicode normal form NFC; pass unicodedata.normalize('NFC', ...) of it"
            " if it names the same user or session"
        )
    separator = next((s for s in _SEPARATORS if s in value), None)
    if separator is not None:
        raise InvalidInputError(f"{kind} contains the path separator {separator!r}")
    if value in _DOT_SEGMENTS:
        raise InvalidInputError(f"{kind} must not be {value!r}: it is a relative path segment")
    return value
