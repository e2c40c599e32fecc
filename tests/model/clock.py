"""The machine's clock: one offset from the real time that every time comparison of tierstore sees.

Contract: inside :meth:`ModelClock.installed`, lease records, lease liveness, ``gc``'s grace period and tomb retention
all read ``real time + offset``; :meth:`advance` moves it forward. Object times (``last_modified``) stay the store's
own, so advancing the clock makes leases expire and orphans, strays and tombs grow old, as waiting would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from unittest import mock


class ModelClock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, by: timedelta) -> None:
        self.offset += by

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Point tierstore's time sources at this clock."""
        clock = self

        class ClockedDatetime(datetime):
            @classmethod
            def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
                return clock.now() if tz is not None else (clock.now().replace(tzinfo=None))

        with (
            mock.patch("tierstore.refs._now", clock.now),
            mock.patch("tierstore.maintenance.gc.datetime", ClockedDatetime),
        ):
            yield
