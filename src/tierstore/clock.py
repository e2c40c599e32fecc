"""Time sources: a host's wall clock and one process's monotonic clock, passed in wherever times are taken.

A :class:`Clock` answers two questions: ``now()``, this host's wall time (an aware UTC datetime), and
``monotonic()``, seconds on a clock that never goes back, meaningful only as a difference within one process.
``ArtifactsBridge(clock=...)``, :func:`tierstore.maintenance.gc` and :func:`tierstore.maintenance.fsck` take one
(default: :data:`SYSTEM_CLOCK`), and so does ``InMemoryBackend(clock=...)``, where it is the *store's* clock,
the one its objects' last-modified times come from. Tests give each simulated host a clock of its own and move it:
:class:`ManualClock` (moved by hand), :class:`SkewedClock` (the real clock, off by an offset that can change).

The rule (see :mod:`tierstore.protocol`): no safety decision compares one host's wall clock with another's, or a
host's wall clock with the store's. Ages are measured in the store's own time (an object's last-modified as the
backend reports it, set by the server), durations within one process with its monotonic clock. A host's wall
clock only names things (checkpoint ids, tomb keys, times inside records for people to read), so a wrong one
may delay clean-up or misorder names, never lose data.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol, runtime_checkable

from tierstore.errors import InvalidInputError

_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", None)


def _elapsed() -> float:
    """Seconds on a clock that never goes back and, where the system has one (Linux's ``CLOCK_BOOTTIME``), keeps
    counting while the host is suspended: a writer whose host slept must not think its lease was renewed a moment
    ago (:mod:`tierstore.protocol.keeper`)."""
    return time.clock_gettime(_BOOTTIME) if _BOOTTIME is not None else time.monotonic()


@runtime_checkable
class Clock(Protocol):
    """Where tierstore reads the time: a wall clock that may be wrong, and a monotonic one for durations."""

    def now(self) -> datetime:
        """This host's wall time, an aware UTC datetime. It may be wrong, and may step back or jump ahead."""
        ...

    def monotonic(self) -> float:
        """Seconds that never go back; only a difference of two readings in one process means anything."""
        ...


class SystemClock:
    """The machine's clocks."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return _elapsed()

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK: Final = SystemClock()


class ManualClock:
    """A clock that moves only when told: :meth:`advance` lets time pass (wall and monotonic alike), :meth:`step`
    sets the wall clock right or wrong (either way, as NTP or a person does) and leaves monotonic time alone."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start if start is not None else datetime.now(UTC)
        if start.tzinfo is None:
            raise ValueError("a ManualClock starts at an aware datetime")
        self._wall = start.astimezone(UTC)
        self._monotonic = 0.0

    def now(self) -> datetime:
        return self._wall

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, delta: timedelta | float) -> None:
        """Let ``delta`` (seconds or a timedelta, never negative) pass on both clocks."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        if seconds < 0:
            raise ValueError("time only advances; step() moves a wall clock back")
        self._wall += timedelta(seconds=seconds)
        self._monotonic += seconds

    def step(self, delta: timedelta) -> None:
        """Set the wall clock by ``delta``, forward or back, as NTP or a person would; monotonic time stays."""
        self._wall += delta

    def __repr__(self) -> str:
        return f"ManualClock({self._wall.isoformat()})"


class SkewedClock:
    """The machine's clocks with the wall clock off by ``offset`` (change it to step the clock); monotonic time is
    the machine's."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def monotonic(self) -> float:
        return _elapsed()

    def __repr__(self) -> str:
        return f"SkewedClock(offset={self.offset})"


def check_clock(clock: object) -> Clock:
    """``clock`` if it has ``now()`` and ``monotonic()``, else InvalidInputError."""
    if not isinstance(clock, Clock):
        raise InvalidInputError(f"clock must have now() and monotonic(), not {type(clock).__name__}")
    return clock
