"""The one place that takes a key apart into its scope (:func:`tierstore.scopes.scope_of`, :func:`record_key`,
:func:`scope_of_record`, :func:`user_prefix`): every key tierstore writes in a scope is found in that scope, every
other string (hostile: near-misses of a scope's prefix, a trailing newline, non-ASCII, a record's key with a tail)
in the root or in no record, never an exception; a scope's prefix and its registry record's key map to each other
and agree with :mod:`tierstore.scope_records`."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.soak import scaled
from tierstore.errors import InvalidInputError
from tierstore.scope_records import is_user_key, session_key, user_key
from tierstore.scopes import (
    RECORD_PREFIX,
    SEGMENT_LENGTH,
    check_scope_id,
    is_user_scope,
    record_key,
    scope_of,
    scope_of_record,
    scope_prefix,
    segment,
    user_prefix,
)
from tierstore.versions import version_key

_SETTINGS = settings(max_examples=scaled(300), deadline=None, suppress_health_check=list(HealthCheck), database=None)


def _valid(text: str) -> bool:
    try:
        check_scope_id(text, "user id")
    except InvalidInputError:
        return False
    return True


scope_ids = st.text(min_size=1, max_size=30).filter(_valid) | st.sampled_from(["alice", "s1", "Zo\u00eb", "\u202e"])
users = st.none() | scope_ids
tails = st.sampled_from(
    [
        "mem_L3_1",
        "mem_L4_123456",
        "ckpt_20261205T193800123456_0123abcd",
        "intent_ckpt_20261205T193800123456_0123abcd",
        "tomb_20261205T193800123456_0123abcd_e",
        "tomb_20261205T193800123456_0123abcd_d",
        version_key("msg_001", 1),
        "",
    ]
)
segments = st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567", min_size=SEGMENT_LENGTH, max_size=SEGMENT_LENGTH)
near_segments = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789ABZ.-_\n\u00e9", max_size=SEGMENT_LENGTH + 2)
hostile = st.one_of(
    st.text(max_size=80),
    st.builds(lambda a, b, t: f"u-{a}.s-{b}.{t}", near_segments, near_segments, st.text(max_size=10)),
    st.builds(lambda a, t: f"u-{a}.{t}", near_segments, st.text(max_size=10)),
    st.builds(lambda a, b, t: f"{RECORD_PREFIX}{a}.{b}{t}", near_segments, near_segments, st.text(max_size=3)),
    st.builds(lambda a, t: f"{RECORD_PREFIX}{a}{t}", segments, st.sampled_from(["\n", ".", "x", " ", "\u0000", ""])),
)


@_SETTINGS
@given(user=users, session=scope_ids, tail=tails)
def test_every_key_of_a_scope_is_found_in_that_scope(user: str | None, session: str, tail: str) -> None:
    shared, own = user_prefix(user), scope_prefix(user, session)
    assert scope_of(own + tail) == own
    assert scope_of(shared + tail) == shared
    assert scope_of(tail) == ""  # the root's keys, legacy and `alloc_` alike
    if user is not None:
        assert scope_prefix(user) == shared


@_SETTINGS
@given(user=users, session=scope_ids)
def test_a_scope_and_its_registry_record_map_to_each_other(user: str | None, session: str) -> None:
    shared, own = user_prefix(user), scope_prefix(user, session)
    assert record_key(shared) == user_key(user)
    assert record_key(own) == session_key(user, session)
    assert scope_of_record(user_key(user)) == shared
    assert scope_of_record(session_key(user, session)) == own
    assert is_user_scope(shared)
    assert not is_user_scope(own)
    assert is_user_key(user_key(user))
    assert not is_user_key(session_key(user, session))
    assert session_key(user, session).startswith(user_key(user) + ".")  # a user's erasure lists its sessions' too


@_SETTINGS
@given(key=hostile)
def test_a_hostile_key_is_the_roots_or_names_its_scope_exactly(key: str) -> None:
    scope = scope_of(key)
    assert key.startswith(scope)
    if scope:
        assert scope.isascii()
        assert scope_of(scope) == scope
        assert scope_of_record(record_key(scope)) == scope
    named = scope_of_record(key)
    if named is not None:
        assert record_key(named) == key  # only a record's exact key names a scope: no tail, no newline
    else:
        assert not _is_record(key)


def _is_record(key: str) -> bool:
    """A second, plain reading of a record's key: ``scope_`` then one or two segments joined by a dot, nothing else."""
    parts = key[len(RECORD_PREFIX) :].split(".")
    alphabet = set("abcdefghijklmnopqrstuvwxyz234567")
    well_formed = all(len(p) == SEGMENT_LENGTH and set(p) <= alphabet for p in parts)
    return key.startswith(RECORD_PREFIX) and len(parts) in (1, 2) and well_formed


@pytest.mark.parametrize(
    "key",
    [
        "u-" + "a" * SEGMENT_LENGTH,  # no dot: no scope
        "u-" + "a" * (SEGMENT_LENGTH - 1) + ".mem_L3_1",
        "u-" + "A" * SEGMENT_LENGTH + ".mem_L3_1",
        "u-" + "1" * SEGMENT_LENGTH + ".mem_L3_1",
        "x-" + "a" * SEGMENT_LENGTH + ".mem_L3_1",
        "U-" + "a" * SEGMENT_LENGTH + ".mem_L3_1",
        "mem_L3_1",
        "",
    ],
)
def test_near_misses_of_a_scope_are_the_roots(key: str) -> None:
    assert scope_of(key) == ""


def test_a_near_miss_of_a_session_stays_in_its_user() -> None:
    user = user_prefix("alice")
    for tail in ("s-" + "a" * (SEGMENT_LENGTH - 1) + ".x", "s-" + "A" * SEGMENT_LENGTH + ".x", "s-" + "a" * 27):
        assert scope_of(user + tail) == user


@pytest.mark.parametrize(
    "key",
    [
        user_key("alice") + "\n",
        user_key("alice") + ".",
        session_key("alice", "s1") + ".x",
        session_key("alice", "s1") + "." + segment("session", "s2"),
        RECORD_PREFIX + "A" * SEGMENT_LENGTH,
        RECORD_PREFIX,
        "scope",
    ],
)
def test_a_near_miss_of_a_record_names_no_scope(key: str) -> None:
    assert scope_of_record(key) is None
    assert not is_user_key(key)


@pytest.mark.parametrize("prefix", ["", "u-", user_prefix("alice") + "mem_L3_1", "u-" + "a" * SEGMENT_LENGTH])
def test_only_a_scope_prefix_has_a_record(prefix: str) -> None:
    with pytest.raises(ValueError, match="no scope's prefix"):
        record_key(prefix)
    assert not is_user_scope(prefix)


def test_the_user_of_no_user_is_the_empty_id_and_no_valid_id_reaches_it() -> None:
    assert user_prefix(None) == f"u-{segment('user', '')}."
    assert scope_prefix(None) == ""  # the root: why a user's prefix has a function of its own
    with pytest.raises(InvalidInputError):
        user_prefix("")
