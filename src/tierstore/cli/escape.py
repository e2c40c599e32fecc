"""Ids shown in a table, escaped: ``escaped(text)`` is ``text`` with every character that could reorder, hide or
break a row written as a Python-style escape (``\\u202e``), and a backslash doubled, so the row reads as stored and
two different ids never print as the same text.

Contract: escaped are control characters (Cc: a tab, an escape sequence), format characters (Cf: the bidirectional
overrides and isolates such as U+202E, which reorder the rest of the row, zero-width characters, which hide themselves),
line and paragraph separators (Zl, Zp), surrogates (Cs), private-use (Co) and unassigned (Cn) code points, every space
but U+0020 (Zs: a no-break or ideographic space looks like a column gap), and the letters and marks a terminal draws as
nothing or as a blank (:data:`_INVISIBLE`: variation selectors, fillers); ``\\xNN`` up to U+00FF, ``\\uNNNN`` in the
Basic Multilingual Plane, ``\\UNNNNNNNN`` beyond. Everything else (letters of any script, marks, emoji) is left as it
is, in an id in Unicode's composed form (NFC). An id that is not (``cafe`` and a combining acute, which a terminal draws
as the composed ``café``) has every non-ASCII character escaped, so it never looks like the composed id it is not. Two
different ids never print as the same text; characters that merely look alike (a Latin and a Cyrillic ``a``, a hyphen
and a minus sign) are shown as they are, and ``--json`` tells them apart. Tables call it on every id they print
(``users``, ``sessions``, ``ls``); ``--json`` prints ids raw, since JSON escapes what it must and a program reads the
exact id.
"""

from __future__ import annotations

import unicodedata
from typing import Final

_ESCAPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
_INVISIBLE: Final = (
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian variation selectors
    (0x2800, 0x2800),  # the blank Braille pattern
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xE0100, 0xE01EF),  # variation selectors supplement
)
"""Code points drawn as nothing (or as a blank) outside the categories above: Unicode's default-ignorable letters and
marks, and the blank Braille pattern."""


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
    code = ord(char)
    if category in _ESCAPED_CATEGORIES or (category == "Zs" and char != " "):
        return _code(char)
    if any(low <= code <= high for low, high in _INVISIBLE):
        return _code(char)
    return char


def _code(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
