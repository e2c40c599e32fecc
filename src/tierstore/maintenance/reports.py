"""What ``fsck``, ``gc``, ``migrate`` and ``doctor`` report: plain dataclasses, rendered by the command line as
tables or JSON (field by field, so a new field shows up there unasked)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with one stored object: damaged (``corrupt``), named but absent (``missing``), another
    object where a copy was to go (``conflict``), or the erasing tomb of an erasure that stopped after deleting its
    scope's registry record (``unfinished``: ``tierstore users`` no longer lists it; the same ``rm`` ends it)."""

    key: str
    kind: Literal["corrupt", "missing", "conflict", "unfinished"]
    detail: str


@dataclass(frozen=True, slots=True)
class Orphan:
    """An artifact written for a checkpoint that names it no more (crashed, cancelled), and no live lease keeps."""

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


@dataclass(frozen=True, slots=True)
class ArchivedCheckpoint:
    """A listed checkpoint that cannot be restored until archived pages it names are restored: a notice, not a
    problem (archiving a page a checkpoint names is a user's choice)."""

    checkpoint: str
    pages: list[str]
    """The archived artifacts it names."""
    restore: str
    """The command that restores them."""


@dataclass(frozen=True, slots=True)
class StaleVersion:
    """A version record whose page is not there (:mod:`tierstore.versions`): a store that crashed or is still
    running, or a version deleted before its record. Readers skip it; ``gc`` deletes it past the grace period."""

    key: str
    last_modified: datetime | None


@dataclass
class FsckReport:
    """What ``fsck`` found; ``ok`` when it found no problem."""

    pages: int = 0
    checkpoints: int = 0
    verified: int = 0
    archived: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    orphans: list[Orphan] = field(default_factory=list)
    strays: list[Stray] = field(default_factory=list)
    in_progress: list[str] = field(default_factory=list)
    """Checkpoints running now (live leases): what they wrote is not an orphan."""
    foreign: list[str] = field(default_factory=list)
    """What the store holds that tierstore did not write (the local-disk store: paths relative to its root): left
    untouched, never an error."""
    archived_checkpoints: list[ArchivedCheckpoint] = field(default_factory=list)
    """Listed checkpoints naming archived pages (found when ``verify`` reads them): each restores once those pages
    are restored; a notice, not a problem."""
    stale_versions: list[StaleVersion] = field(default_factory=list)
    """Version records of a bound bridge's scope naming no page: not problems (readers skip them)."""
    unregistered: list[str] = field(default_factory=list)
    """Prefixes of scopes holding keys whose registry record is absent: not listed by ``tierstore users`` until
    their next write registers them (an erasure that a write outlived leaves this); not problems."""

    @property
    def ok(self) -> bool:
        """No problem found (orphans, strays, foreign files and archived checkpoints are not problems)."""
        return not self.problems


@dataclass
class Running:
    """A checkpoint whose lease is live: ``gc`` keeps what it wrote until it ends or the lease expires."""

    checkpoint: str
    lease_expires: datetime | None
    """By the store's clock; None where the store does not say when the lease was last written."""


@dataclass
class GcReport:
    """What ``gc`` deleted and what it kept, and why."""

    orphans_deleted: list[str] = field(default_factory=list)
    orphans_kept: list[Orphan] = field(default_factory=list)
    """Orphans younger than the grace period: a later ``gc`` (or a shorter grace) collects them."""
    intents_removed: int = 0
    tombs_pruned: int = 0
    strays_removed: list[str] = field(default_factory=list)
    in_progress: list[Running] = field(default_factory=list)
    """Checkpoints whose live lease keeps what they wrote; a writer that died leaves its lease to expire."""
    unreadable_manifests: list[str] = field(default_factory=list)
    """Manifests that could not be read: what they reference is unknown, so no orphan was looked for (fsck names
    them; deleting such a checkpoint lets gc go on)."""
    versions_deleted: list[str] = field(default_factory=list)
    """Version records naming no page, older than the grace period and the store's settle period (fsck's
    ``stale_versions``), each deleted only while still the record judged (:mod:`tierstore.record_deletes`)."""
    snapshots_deleted: list[str] = field(default_factory=list)
    """Catalog snapshots a newer readable one supersedes, or unreadable, older than the grace period."""


@dataclass
class MigrateReport:
    """What ``migrate`` copied, skipped, repaired and could not copy."""

    copied: int = 0
    skipped: int = 0
    checkpoints_copied: int = 0
    checkpoints_skipped: int = 0
    """Checkpoints the destination already held (counted in ``skipped`` too, as objects)."""
    archived: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    incomplete_checkpoints: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    """Copies at the destination that did not verify, replaced by the source's (counted in ``copied`` too)."""
    erasing: list[str] = field(default_factory=list)
    """Key prefixes of scopes being erased at the source (or erased there while migrate ran): nothing of them (nor of
    scopes nested in them) is left at the destination."""


CheckResult = Literal["ok", "denied", "failed", "unavailable", "not tried", "skipped"]


@dataclass
class DoctorCheck:
    """One operation ``doctor`` tried, and how it went."""

    name: str
    result: CheckResult = "not tried"
    detail: str = ""


@dataclass
class DoctorReport:
    """Every check ``doctor`` ran on one store; ``ok`` when the store can be used as configured."""

    backend: str
    """The store probed, as a person reads it (no credentials)."""
    checks: list[DoctorCheck] = field(default_factory=list)
    cause: str | None = None
    """Why the store cannot be used at all (e.g. the bucket does not exist), when the probe found that."""
    warnings: list[str] = field(default_factory=list)
    """What the bucket keeps that erasure cannot remove (Object Lock, soft delete), or cannot purge (its versions
    may not be listed or deleted): the store works, but erasing a user leaves that."""
    notes: list[str] = field(default_factory=list)
    """What doctor could not tell about the bucket's history (a setting the credentials or the service do not show)."""

    @property
    def ok(self) -> bool:
        """No cause found and every check passed or was skipped."""
        return self.cause is None and all(c.result in ("ok", "skipped") for c in self.checks)

    def having(self, *results: CheckResult) -> list[str]:
        """Names of the checks whose result is one of ``results``."""
        return [c.name for c in self.checks if c.result in results]
