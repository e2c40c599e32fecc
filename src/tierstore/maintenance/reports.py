"""What ``fsck``, ``gc`` and ``migrate`` report: plain dataclasses, rendered by the command line as tables or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal


@dataclass(frozen=True, slots=True)
class Problem:
    key: str
    kind: Literal["corrupt", "missing", "conflict"]
    detail: str


@dataclass(frozen=True, slots=True)
class Orphan:
    key: str
    size: int
    last_modified: datetime | None
    checkpoint: str
    """The checkpoint it was written for, which does not reference it (or no longer exists)."""


@dataclass(frozen=True, slots=True)
class Stray:
    """A temporary file (or incomplete upload) that a write left behind: still running, or killed."""

    name: str
    size: int
    last_modified: datetime | None


@dataclass
class FsckReport:
    pages: int = 0
    checkpoints: int = 0
    verified: int = 0
    archived: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    orphans: list[Orphan] = field(default_factory=list)
    strays: list[Stray] = field(default_factory=list)
    in_progress: list[str] = field(default_factory=list)
    """Checkpoints running now (live leases): what they wrote is not an orphan."""

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class GcReport:
    orphans_deleted: list[str] = field(default_factory=list)
    orphans_kept: list[str] = field(default_factory=list)
    """Orphans younger than the grace period: a later ``gc`` (or a shorter grace) collects them."""
    intents_removed: int = 0
    tombs_pruned: int = 0
    strays_removed: list[str] = field(default_factory=list)


@dataclass
class MigrateReport:
    copied: int = 0
    skipped: int = 0
    checkpoints_copied: int = 0
    archived: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    incomplete_checkpoints: list[str] = field(default_factory=list)
