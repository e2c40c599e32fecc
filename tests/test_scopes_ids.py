"""User and session ids (:func:`tierstore.scopes.check_scope_id`): every text is accepted unchanged with every rule
holding, or refused with InvalidInputError saying which rule it breaks; named cases pin each rule."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from tests.soak import scaled
from tierstore.errors import InvalidInputError
from tierstore.scopes import MAX_SCOPE_ID_BYTES, check_scope_id

KINDS = ("user id", "session id")

hostile = (
    st.text(st.characters(codec=None, exclude_categories=()), max_size=60)
    | st.text(st.characters(codec="utf-8"), min_size=30, max_size=140)
    | st.builds(lambda s: unicodedata.normalize("NFD", s), st.text(max_size=20))
    | st.sampled_from(
        [
            " ",
            "\u00a0",
            "\u3000",
            " a",
            "a ",
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a\\b",
            "\x00",
            "\r\n",
            "\u2028",
            "\ud800",
            "\u0378",
            "x" * 129,
        ]
    )
)


def breaks(value: str) -> str | None:
    """Which rule ``value`` breaks, worked out apart from the module: the word its refusal must name."""
    if not value:
        return "empty"
    for char in value:
        category = unicodedata.category(char)
        if category in {"Cc", "Cs", "Cn", "Zl", "Zp"}:
            return f"U+{ord(char):04X}"
    if len(value.encode("utf-8")) > MAX_SCOPE_ID_BYTES:
        return "over the limit"
    if unicodedata.normalize("NFC", value) != value:
        return "NFC"
    if "/" in value or "\\" in value:
        return "path separator"
    if value in {".", ".."}:
        return "relative path segment"
    if value != value.strip():
        return "whitespace"
    return None


@settings(max_examples=scaled(400), deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(value=hostile, kind=st.sampled_from(KINDS))
@example(value="e\u0301", kind="user id")
@example(value="\u00e9" * 64, kind="session id")
@example(value="\u00e9" * 65, kind="session id")
def test_every_text_is_accepted_unchanged_or_refused_for_the_rule_it_breaks(value: str, kind: Any) -> None:
    broken = breaks(value)
    if broken is None:
        assert check_scope_id(value, kind) is value
    else:
        with pytest.raises(InvalidInputError) as refused:
            check_scope_id(value, kind)
        assert kind in str(refused.value)
        assert broken in str(refused.value)


@pytest.mark.parametrize(
    "value",
    [
        "alice",
        "0f8e2a4c-6d2b-4f4e-9a57-1c1a0d3b7e55",
        "01HGW2N7EYZ9J5Q2X4K8V3T6RM",
        "alice@example.com",
        "user:alice",
        "...",
        ".hidden",
        "caf\u00e9",
        "\u5f20\u4f1f",
        "\U0001f469\u200d\U0001f4bb",
        "alice smith",
        "x" * MAX_SCOPE_ID_BYTES,
        "\u20ac" * (MAX_SCOPE_ID_BYTES // 3),
    ],
)
def test_usual_ids_are_accepted_as_given(value: str) -> None:
    assert check_scope_id(value, "user id") == value


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (None, "must be a str, not NoneType"),
        (b"alice", "must be a str, not bytes"),
        (42, "must be a str, not int"),
        ("", "must not be empty"),
        ("x" * (MAX_SCOPE_ID_BYTES + 1), f"{MAX_SCOPE_ID_BYTES + 1} bytes of UTF-8, over the limit of 128"),
        ("\u20ac" * 43, "129 bytes of UTF-8"),
        ("cafe\u0301", "not in Unicode normal form NFC"),
        ("\u212b", "not in Unicode normal form NFC"),
        ("alice/bob", "the path separator '/'"),
        ("alice\\bob", "the path separator '\\\\'"),
        ("/", "path separator"),
        (".", "must not be '.'"),
        ("..", "must not be '..'"),
        ("a\x00b", "the control character U+0000"),
        ("a\nb", "the control character U+000A"),
        ("a\x7f", "the control character U+007F"),
        ("a\x85", "the control character U+0085"),
        ("a\u2028b", "the line separator U+2028"),
        ("a\u2029b", "the paragraph separator U+2029"),
        ("a\ud800", "the surrogate U+D800"),
        ("a\u0378", "the unassigned code point U+0378"),
        (" ", "whitespace (U+0020)"),
        ("\u00a0", "whitespace (U+00A0)"),
        ("\u3000\u3000", "whitespace (U+3000)"),
        (" alice", "must not begin or end with whitespace"),
        ("alice\u00a0", "must not begin or end with whitespace"),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_each_rule_refuses_with_a_typed_error_naming_it(value: object, says: str, kind: Any) -> None:
    with pytest.raises(InvalidInputError) as refused:
        check_scope_id(value, kind)
    assert isinstance(refused.value, ValueError)
    assert str(refused.value).startswith(kind)
    assert says in str(refused.value)


class _Disguised(str):
    """A str subclass whose own methods hide what it holds."""

    def __iter__(self) -> Any:
        return iter("abc")

    def __contains__(self, _item: object) -> bool:
        return False

    def __eq__(self, _other: object) -> bool:
        return False

    __hash__ = str.__hash__


@pytest.mark.parametrize("kind", KINDS)
def test_a_str_subclass_is_checked_by_what_it_holds_and_comes_back_a_plain_str(kind: Any) -> None:
    with pytest.raises(InvalidInputError):
        check_scope_id(_Disguised("../etc\x00/x"), kind)
    accepted = check_scope_id(_Disguised("alice"), kind)
    assert type(accepted) is str
    assert str.__eq__(accepted, "alice")
