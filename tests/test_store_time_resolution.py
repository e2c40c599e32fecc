"""Stores that count whole seconds (S3's and Azure's last-modified times): a lease is judged so that its renewal and
the time it is judged by, each read up to a second early, never make a live lease look expired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tierstore.protocol.records import Lease


def _floored(when: datetime) -> datetime:
    return when.replace(microsecond=0)


@pytest.mark.parametrize("ttl", [timedelta(seconds=1), timedelta(seconds=2), timedelta(minutes=10)])
@pytest.mark.parametrize("renewed_at", [0.0, 0.25, 0.5, 0.999])
@pytest.mark.parametrize("age", [0.0, 0.25, 0.5, 0.75, 0.999])
def test_a_lease_younger_than_its_ttl_is_live_whatever_the_stores_resolution(
    ttl: timedelta, renewed_at: float, age: float
) -> None:
    """The lease was renewed ``renewed_at`` into a second and is judged when ``age`` of its ttl has passed (true
    times); the store reports both times cut to the second."""
    start = datetime(2026, 12, 5, 12, 0, 0, tzinfo=UTC)
    renewed = start + timedelta(seconds=renewed_at)
    judged = renewed + ttl * age
    lease = Lease("intent_x", "ckpt_x", frozenset(), _floored(renewed), ttl)
    assert lease.live(_floored(judged))
    assert lease.live(judged)


def test_a_lease_well_past_its_ttl_is_expired() -> None:
    start = datetime(2026, 12, 5, 12, 0, 0, tzinfo=UTC)
    lease = Lease("intent_x", "ckpt_x", frozenset(), start, timedelta(seconds=1))
    assert not lease.live(start + timedelta(seconds=2, microseconds=1))
