"""What a bucket keeps beside its current objects (noncurrent versions, delete markers, generations, soft-deleted
objects), and the optional backend calls that list and delete it: erasure purges a scope's history with them
(:mod:`tierstore.protocol.history`), ``doctor`` reports what the bucket keeps.

Contract of the optional calls (a backend has all three or none; :func:`keeps_history` tells):

* ``history(prefix)`` yields every stored version of every key under ``prefix`` exactly once, paginating
  underneath: noncurrent versions and delete markers, and the current ones too, flagged ``current`` (on S3 the
  latest entry of a key, a delete marker included; on GCS the live generation; on Azure the current version). A
  bucket that keeps no history yields each current object once. Keys outside the store's alphabet are skipped, as
  ``list`` skips them.
* ``delete_versions(versions)`` deletes exactly those versions (by version id, generation), in as few requests as
  the cloud allows; a version already gone is no failure. It returns those the bucket refused to delete and why
  (S3 Object Lock or a legal hold, a GCS retention policy or hold, an Azure immutability policy); transient failures
  are retried, then raised as for any call. It never deletes a version it was not given.
* ``history_settings()`` says what the bucket keeps after a delete, as far as the credentials may read it: anything
  it could not read is ``None`` with a note saying why.

Memory and the local disk keep no history, so they have none of these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Versioning = Literal["enabled", "suspended", "off"]


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """One version a bucket keeps of a key: its version id (S3 VersionId, GCS generation, Azure version id)."""

    key: str
    version_id: str
    current: bool
    """The key's latest entry: its current object, or on S3 a delete marker that hides the older versions."""
    marker: bool = False
    """An S3 delete marker (no bytes)."""
    size: int = 0


@dataclass(frozen=True, slots=True)
class Refused:
    """A version the bucket refused to delete, and what it said."""

    version: StoredVersion
    reason: str


@dataclass(frozen=True, slots=True)
class HistorySettings:
    """What a bucket keeps after a delete, where the credentials may read it (None: not known, see ``notes``)."""

    versioning: Versioning | None = None
    """S3 bucket versioning, GCS Object Versioning; Azure's is an account setting its data plane does not show."""
    locked: bool | None = None
    """S3 Object Lock, or a GCS bucket retention policy: versions may be refused deletion until their retention ends."""
    soft_delete_days: float | None = None
    """GCS soft delete or Azure blob soft delete: a deleted object, version or generation stays restorable this many
    days, and no request purges it before (0: off)."""
    notes: tuple[str, ...] = ()


def keeps_history(backend: object) -> bool:
    """Whether ``backend`` has the optional history calls (the module docstring)."""
    return all(callable(getattr(backend, name, None)) for name in ("history", "delete_versions", "history_settings"))


def kept_after_delete(settings: HistorySettings, store: str) -> list[str]:
    """What erasure cannot remove from a bucket so configured, one sentence each (``store``: how to name it)."""
    kept = []
    if settings.locked:
        kept.append(
            f"{store} has Object Lock or a retention policy: a version under retention (or a legal hold) cannot be "
            "deleted until it ends, so erasure leaves it (and reports it)"
        )
    if settings.soft_delete_days:
        kept.append(
            f"{store} soft-deletes for {settings.soft_delete_days:g} days: what erasure deletes stays restorable "
            "until then, and no request purges it sooner"
        )
    return kept
