"""The key prefix of a scope (:func:`tierstore.scopes.scope_prefix`): pinned strings (they name stored objects, so a
change would orphan every scoped store), inside every backend's key alphabet and length with the longest key a
scope holds, nested (a session's under its user's) and never a prefix of another scope's."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.soak import scaled
from tierstore.backends.base import check_key
from tierstore.errors import InvalidInputError
from tierstore.scopes import SEGMENT_LENGTH, check_scope_id, scope_prefix, segment

LONGEST_SCOPED_KEY = "intent_ckpt_20261205T193800123456_0123abcd"
"""A lease, the longest key of today's protocol, which the design puts inside a scope's prefix unchanged."""
_PREFIX = re.compile(rf"u-[a-z2-7]{{{SEGMENT_LENGTH}}}\.(s-[a-z2-7]{{{SEGMENT_LENGTH}}}\.)?")


def valid(text: str) -> bool:
    try:
        check_scope_id(text, "user id")
    except InvalidInputError:
        return False
    return True


ids = st.text(min_size=1, max_size=40).filter(valid) | st.sampled_from(["alice", "bob", "Zo\u00eb", "x" * 128])


@pytest.mark.parametrize(
    ("user", "session", "prefix"),
    [
        (None, None, ""),
        ("alice", None, "u-53edp2jylsnozd6ns4wbwo3gpu."),
        ("alice", "s1", "u-53edp2jylsnozd6ns4wbwo3gpu.s-benf2bzp4lkpscer5rdinhrttm."),
        (None, "s1", "u-p7v7ezqcpabcw3lfcdrzpar3o4.s-benf2bzp4lkpscer5rdinhrttm."),
        ("Zo\u00eb", "\U0001f469\u200d\U0001f4bb", "u-aq4moks2357o7jqwwzisu7csoi.s-fpuwgt7nvnilsxrhmo6uxkfjyy."),
    ],
)
def test_prefixes_are_the_pinned_strings(user: str | None, session: str | None, prefix: str) -> None:
    assert scope_prefix(user, session) == prefix


def test_a_page_id_segment_is_pinned_too() -> None:
    assert segment("page", "msg_001") == "dxbogexintbnhemxgaoekokqjm"


@settings(max_examples=scaled(200), deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(user=ids, session=ids, other_user=ids, other_session=ids)
def test_prefixes_are_keys_nested_and_apart(user: str, session: str, other_user: str, other_session: str) -> None:
    mine = scope_prefix(user, session)
    for prefix in (scope_prefix(user), mine, scope_prefix(None, session)):
        assert _PREFIX.fullmatch(prefix)
        assert check_key(prefix + LONGEST_SCOPED_KEY)
    assert mine.startswith(scope_prefix(user))
    assert not scope_prefix(None, session).startswith(scope_prefix(user))
    if other_user != user:
        assert not mine.startswith(scope_prefix(other_user))
        assert not scope_prefix(other_user, other_session).startswith(scope_prefix(user))
    if other_session != session:
        assert not scope_prefix(user, other_session).startswith(mine)


def test_a_user_and_a_session_of_one_name_are_different_segments() -> None:
    assert scope_prefix("same") != scope_prefix(None, "same")[: len(scope_prefix("same"))]
    assert segment("user", "same") != segment("session", "same")


@pytest.mark.parametrize(
    ("user", "session", "says"),
    [
        ("a/b", None, "user id contains the path separator"),
        ("alice", "..", "session id must not be '..'"),
        ("", None, "user id must not be empty"),
        (None, "", "session id must not be empty"),
    ],
)
def test_an_invalid_id_gets_no_prefix(user: str | None, session: str | None, says: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(says)):
        scope_prefix(user, session)
