"""User and session ids: the one check every part of tierstore applies to them, and the key prefix of a scope (issue
28; design in ``docs/design/scopes.md``), and the one place that says which scope a key belongs to.

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
* not beginning or ending with whitespace (``str.isspace``: spaces, U+00A0, U+3000...), so none is only spaces:
  such an id prints as a blank row and two ids differing by a trailing space look like one;
* no path separator (``/``, ``\\``) and not ``.`` or ``..``: tierstore's keys hold a digest of the id, never the
  id itself, but adapters for other frameworks and any export to directories must be able to use it as one path
  segment, as those frameworks' own session stores do.

Format characters (Cf: the zero-width joiners of emoji sequences, bidirectional marks) are accepted: real names
hold them. Ids are compared by code point, so two that merely look alike are two scopes.

Contract of :func:`scope_prefix`: the prefix of every key of a scope, ``u-{U}.`` for a user's shared scope and
``u-{U}.s-{S}.`` for a session, where ``U`` and ``S`` are :func:`segment` digests of the ids (a session without a
user belongs to the user ``""``, which no valid id equals); ``""`` (the root, where unscoped pages stay) for no
user and no session. No id ever becomes part of a key: keys are ASCII ``[A-Za-z0-9._-]`` of at most 256 characters,
and a fixed-width digest fits any id into that and keeps every scope's prefix from being a prefix of another's.
These strings name stored objects: changing them orphans every scoped store, so tests pin them.

Contract of the key functions, the only code that takes a key apart into its scope (erasure, migrate, fsck, the
store's counts and the registry all ask them): :func:`user_prefix` is a user's prefix, which holds its shared scope
and every session of it (``None``: the user of sessions that have none; :func:`scope_prefix` of ``None`` is the
root); :func:`scope_of` is the narrowest scope prefix a key lies in (``""``: the root); :func:`record_key` is the
registry record's key of a scope prefix (``scope_{U}``, ``scope_{U}.{S}``) and :func:`scope_of_record` the scope
prefix a registry key names. A key that only resembles a scope's (a segment of the wrong length or alphabet, a
trailing newline) belongs to the root and names no record: these functions never raise on any ``str``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from typing import Any, Final, Literal

from tierstore.errors import InvalidInputError

MAX_SCOPE_ID_BYTES: Final = 128
"""UTF-8 bytes of a user or session id. Room for every usual form (UUIDs, ULIDs, hex digests, most e-mail
addresses), while two ids percent-encoded (up to 3 characters a byte) still fit in a page's object metadata beside
its description (inside S3's 2 KB), so a page can name its scope without a body read."""

ScopeKind = Literal["user id", "session id"]
SegmentKind = Literal["user", "session", "page"]
SEGMENT_LENGTH: Final = 26
"""Characters of a digest segment: 16 bytes of SHA-256 (128 bits, no collision in any store's lifetime) in base32."""

SCOPED_PREFIX: Final = "u-"
"""What every key of every scope starts with: one listing of it finds every scope the store holds keys in."""
RECORD_PREFIX: Final = "scope_"
"""The root prefix of the registry of scopes (:mod:`tierstore.scope_records`)."""

_SEGMENT: Final = rf"[a-z2-7]{{{SEGMENT_LENGTH}}}"
_SCOPE_HEAD: Final = re.compile(rf"u-({_SEGMENT})\.(?:s-({_SEGMENT})\.)?")
_RECORD: Final = re.compile(rf"{RECORD_PREFIX}({_SEGMENT})(?:\.({_SEGMENT}))?\Z")

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
    return _checked(str.__str__(value), kind)  # a subclass's own text, as a plain str: none of its methods checks it


def _checked(value: str, kind: ScopeKind) -> str:
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
    if value != value.strip():
        raise InvalidInputError(
            f"{kind} must not begin or end with whitespace (U+{ord(value[0] if value[0].isspace() else value[-1]):04X})"
        )
    return value


def segment(kind: SegmentKind, text: str) -> str:
    """The key segment standing for ``text`` (a user id, a session id or a page id): the first 16 bytes of
    SHA-256 over ``tierstore-scope``, ``kind`` and ``text`` in UTF-8 (NUL-separated), in lowercase base32 without
    padding, :data:`SEGMENT_LENGTH` characters of ``a-z2-7``. ``kind`` keeps a user and a session of one name apart."""
    digest = hashlib.sha256(b"tierstore-scope\0" + kind.encode() + b"\0" + text.encode("utf-8")).digest()[:16]
    return base64.b32encode(digest).decode("ascii").rstrip("=").lower()


def scope_prefix(user_id: str | None, session_id: str | None = None) -> str:
    """The prefix of every key of the scope bound to ``user_id`` and ``session_id`` (module contract); both are
    checked with :func:`check_scope_id` first."""
    if user_id is None and session_id is None:
        return ""
    prefix = user_prefix(user_id)
    if session_id is None:
        return prefix
    return f"{prefix}s-{segment('session', check_scope_id(session_id, 'session id'))}."


def user_prefix(user_id: str | None) -> str:
    """The prefix of every key of a user's scopes, its shared scope's and its sessions' (``None``: of the sessions
    of no user, the user ``""``); ``user_id`` is checked with :func:`check_scope_id` first."""
    user = "" if user_id is None else check_scope_id(user_id, "user id")
    return f"u-{segment('user', user)}."


def scope_of(key: str) -> str:
    """The narrowest scope prefix ``key`` lies in: a session's (``u-{U}.s-{S}.``), a user's shared one
    (``u-{U}.``), or ``""`` (the root) for any other key."""
    match = _SCOPE_HEAD.match(key)
    return "" if match is None else match.group(0)


def record_key(prefix: str) -> str:
    """The key of the registry record of the scope at ``prefix`` (a user's or a session's prefix, as
    :func:`scope_of` gives it); ValueError for any other string, the root's included (it has no record)."""
    match = _SCOPE_HEAD.fullmatch(prefix)
    if match is None:
        raise ValueError(f"{prefix!r} is no scope's prefix")
    user, session = match.groups()
    return f"{RECORD_PREFIX}{user}" if session is None else f"{RECORD_PREFIX}{user}.{session}"


def is_user_scope(prefix: str) -> bool:
    """Whether ``prefix`` is a user's prefix (not a session's, nor the root, nor any other string)."""
    match = _SCOPE_HEAD.fullmatch(prefix)
    return match is not None and match.group(2) is None


def user_prefix_of(prefix: str) -> str:
    """The user's prefix a scope prefix lies in (itself for a user's); ValueError for no scope's prefix."""
    match = _SCOPE_HEAD.fullmatch(prefix)
    if match is None:
        raise ValueError(f"{prefix!r} is no scope's prefix")
    return f"u-{match.group(1)}."


def scope_of_record(key: str) -> str | None:
    """The prefix of the scope whose registry record is at ``key``; None when ``key`` is no record's key."""
    match = _RECORD.match(key)
    if match is None:
        return None
    user, session = match.groups()
    return f"u-{user}." if session is None else f"u-{user}.s-{session}."
