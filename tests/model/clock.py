"""The machine's time: the store's clock, which every age is measured in, and the host's, which names things.

Contract: :meth:`ModelClock.advance` lets time pass for the store: the in-memory store's own clock moves on, and
on the local disk every file's times move back by as much (what waiting does, in the store's terms: the kernel
dates new writes by the real clock). Emulators keep their own clocks, so there ``advance`` moves the host's clock
alone and nothing in the store ages (``store_time_moves`` is False). :meth:`skew` sets the host's wall clock wrong,
which may delay clean-up and must never lose data.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from tierstore.clock import SkewedClock


class ModelClock:
    def __init__(self, *, store_time_moves: bool) -> None:
        self.host = SkewedClock()
        self.store = SkewedClock()
        """The in-memory store's clock (``InMemoryBackend(clock=...)``)."""
        self.passed = timedelta(0)
        self.store_time_moves = store_time_moves
        self.disk_roots: list[Path] = []

    def advance(self, by: timedelta) -> None:
        self.passed += by
        self.host.offset += by
        self.store.offset += by
        for root in self.disk_roots:
            _age_files(root, by)

    def skew(self, wrong_by: timedelta) -> None:
        """The host's wall clock off by ``wrong_by`` from the time that has passed."""
        self.host.offset = self.passed + wrong_by


def _age_files(root: Path, by: timedelta) -> None:
    seconds = by.total_seconds()
    for directory in (root / "objects", root / "tmp"):
        if not directory.is_dir() or directory.is_symlink():
            continue
        for entry in os.scandir(directory):
            info = entry.stat(follow_symlinks=False)
            os.utime(entry.path, (info.st_atime - seconds, info.st_mtime - seconds), follow_symlinks=False)
