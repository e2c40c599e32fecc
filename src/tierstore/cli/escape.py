"""Ids shown in a table, escaped: ``escaped(text)`` is ``text`` with every character that could reorder, hide or
break a row written as a Python-style escape (``\\u202e``), and a backslash doubled, so the row reads as stored and
two different ids never print alike.

Contract: escaped are control characters (Cc: a tab, an escape sequence), format characters (Cf: the bidirectional
overrides and isolates such as U+202E, which reorder the rest of the row, zero-width characters, which hide
themselves), line and paragraph separators (Zl, Zp), surrogates (Cs), private-use (Co) and unassigned (Cn) code
points, and every space but U+0020 (Zs: a no-break or ideographic space looks like a column gap); ``\\xNN`` up to
U+00FF, ``\\uNNNN`` in the Basic Multilingual Plane, ``\\UNNNNNNNN`` beyond. Everything else (letters of any script,
marks, emoji) is left as it is, in an id in Unicode's composed form (NFC). An id that is not (``cafe`` and a combining
acute, which a terminal draws as the composed ``café``) has every non-ASCII character escaped, so it never looks like
the composed id it is not. Tables call it on every id they print (``users``, ``sessions``, ``ls``); ``--json``
prints ids raw, since JSON escapes what it must and a program reads the exact id.
"""

from __future__ import annotations

import unicodedata
from typing import Final

_ESCAPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def escaped(text: str) -> str:
    """``text`` as a table row shows it (module contract); ``text`` itself when nothing in it needs escaping."""
    if text.isascii() and text.isprintable() and "\\" not in text:
        return text  # the usual id: nothing to look at character by character
    if not unicodedata.is_normalized("NFC", text):
        return "".join(_escape(char) if char.isascii() else _code(char) for char in text)
    return "".join(_escape(char) for char in text)


def _escape(char: str) -> str:
    if char == "\\":
        return "\\\\"
    category = unicodedata.category(char)
    if category not in _ESCAPED_CATEGORIES and not (category == "Zs" and char != " "):
        return char
    return _code(char)


def _code(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
