"""``UTCDateTime`` (a checkpoint's ``created_at``) stays a ``UTCDateTime`` only while it is aware UTC: every value
derived from it that is naive or in another zone is a plain ``datetime``, so the usual idioms work on it as they do
on any datetime (``created_at.replace(tzinfo=None) < datetime.utcnow()``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tierstore.models import CheckpointManifest, UTCDateTime

PLUS_FIVE = timezone(timedelta(hours=5))
NAIVE_NOW = datetime.now(UTC).replace(tzinfo=None)


def created() -> UTCDateTime:
    manifest = CheckpointManifest(name="n", created_at=datetime(2026, 1, 1, 12), page_count=0)
    assert isinstance(manifest.created_at, UTCDateTime)
    return manifest.created_at


DERIVED: dict[str, Callable[[UTCDateTime], datetime]] = {
    "replace(tzinfo=None)": lambda d: d.replace(tzinfo=None),
    "replace(tzinfo=+5)": lambda d: d.replace(tzinfo=PLUS_FIVE),
    "astimezone(+5)": lambda d: d.astimezone(PLUS_FIVE),
    "astimezone(None).replace(tzinfo=None)": lambda d: d.astimezone().replace(tzinfo=None),
}


@pytest.mark.parametrize("derive", DERIVED.values(), ids=DERIVED.keys())
def test_a_value_derived_out_of_utc_is_a_plain_datetime(derive: Callable[[UTCDateTime], datetime]) -> None:
    value = derive(created())
    assert type(value) is datetime
    now = NAIVE_NOW if value.tzinfo is None else datetime.now(UTC)
    assert value < now
    assert now > value
    assert now - value > timedelta(0)


def test_the_idiom_that_strips_the_zone_compares_with_utcnow() -> None:
    naive = created().replace(tzinfo=None)
    assert naive < NAIVE_NOW
    assert naive == datetime(2026, 1, 1, 12)


@pytest.mark.parametrize(
    "derive",
    [
        lambda d: d.replace(hour=13),
        lambda d: d.replace(tzinfo=UTC),
        lambda d: d.astimezone(UTC),
        lambda d: d + timedelta(hours=1),
    ],
    ids=["replace(hour)", "replace(tzinfo=UTC)", "astimezone(UTC)", "+ timedelta"],
)
def test_a_value_derived_in_utc_still_orders_against_naive_utc(derive: Callable[[UTCDateTime], datetime]) -> None:
    value = derive(created())
    assert isinstance(value, UTCDateTime)
    assert value < NAIVE_NOW
    assert value >= datetime(2026, 1, 1, 12)
