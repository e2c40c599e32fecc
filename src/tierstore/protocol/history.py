"""Purging what a bucket keeps of a prefix's deleted and overwritten objects (issue 28, erasure): every noncurrent
version, delete marker and noncurrent generation of the keys under a prefix, so that an erased scope leaves no
version behind on a versioned bucket. :mod:`tierstore.protocol.erasure` calls :func:`purge_history` once its last
deletion is done (E4), and for the registry records E5 deleted, while the scope is still marked erasing; its erasing
tombs go last by :func:`delete_leaving_no_history`, each with its versions.

Contract of :func:`purge_history` (on a backend with the optional history calls, :mod:`tierstore.backends.history`):

* It lists every version under the prefix, keeps those of keys ``keep`` accepts, and deletes each that is not its
  key's current entry: a current object is never deleted (a store landing meanwhile is the scope's next life, and a
  key ``keep`` refuses is someone else's). Then it lists again, until a listing shows none of them, at most
  :data:`ROUNDS` times; what is still listed then is reported as left, with the reason.
* An S3 delete marker that is its key's latest entry hides the older versions: it is deleted only after every other
  version of that key was, in a later request. So a page never reappears, not when the purge is stopped between two
  requests (cancelled, crashed), nor when Object Lock refuses a version: that version and its marker are left, and
  reported with S3's words.
* What the bucket keeps that no request removes (soft delete's retention), and what the credentials may not read or
  list, is said in ``notes``; a listing of versions refused (no ``s3:ListBucketVersions``), or one the store does
  not implement (an S3-compatible store without versions), leaves the history unpurged and says so: it does not
  fail the erasure. Transient failures raise, as any call's: the erasure stops,
  and the same call again resumes it, since nothing but the listing decides what to delete.
* A backend without the calls (memory, the local disk: they keep no versions) purges nothing and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from tierstore.backends.history import StoredVersion, keeps_history, kept_after_delete
from tierstore.errors import AccessDeniedError, InvalidInputError, NotSupportedError

logger = logging.getLogger(__name__)

ROUNDS: Final = 3
"""Listings of a prefix's history that may each find versions to delete before what is left is reported as left."""


@dataclass(slots=True)
class HistoryPurged:
    """What purging a scope's history did: versions deleted, versions left (and why), and what the bucket keeps
    beyond any request (``notes``). ``supported`` is False on a backend that keeps no versions to list."""

    supported: bool = True
    purged: int = 0
    """Noncurrent versions, delete markers and noncurrent generations deleted."""
    left: list[str] = field(default_factory=list)
    """``key version-id: why`` for each version the bucket kept (Object Lock, a retention policy, a legal hold)."""
    notes: list[str] = field(default_factory=list)
    settings_read: bool = False


async def purge_history(backend: Any, prefix: str, keep: Callable[[str], bool], report: HistoryPurged) -> HistoryPurged:
    """Delete every noncurrent version and delete marker of the keys under ``prefix`` that ``keep`` accepts, into
    ``report`` (the module docstring says how, and in which order)."""
    if not keeps_history(backend):
        note = f"{getattr(backend, 'name', type(backend).__name__)} keeps no object versions: there is none to purge"
        report.supported = False
        if note not in report.notes:
            report.notes.append(note)
        return report
    if not report.settings_read:
        report.settings_read = True
        try:
            settings = await backend.history_settings()
        except (AccessDeniedError, NotSupportedError, InvalidInputError) as exc:
            report.notes.append(f"what the bucket keeps after a delete could not be read ({exc})")
        else:
            report.notes.extend(list(settings.notes) + kept_after_delete(settings, "the bucket"))
    sent: set[tuple[str, str]] = set()
    refused: dict[tuple[str, str], str] = {}
    stale: list[StoredVersion] = []
    for round_ in range(ROUNDS + 1):
        try:
            listed = [v async for v in backend.history(prefix) if keep(v.key)]
        except (AccessDeniedError, NotSupportedError, InvalidInputError) as exc:
            note = f"the history under {prefix!r} was not purged: its versions could not be listed ({exc})"
            if note not in report.notes:  # E5's purge meets the same refusal
                report.notes.append(note)
            return report
        stale = [v for v in listed if not v.current or v.marker]
        todo = [v for v in stale if (v.key, v.version_id) not in refused]
        if not todo or round_ == ROUNDS:
            break
        await _delete(backend, todo, sent, refused)
    left = {(v.key, v.version_id): v for v in stale}
    report.purged += len(sent - set(left))
    for (key, version_id), version in sorted(left.items()):
        why = refused.get((key, version_id))
        if why is None and version.current:
            why = "a delete marker kept because an older version of its key could not be deleted"
        elif why is None:
            why = f"still kept after {ROUNDS} deletions the bucket answered"
        line = f"{key} {version_id}: {why}"
        if line not in report.left:  # E5's purge lists again what the first one left
            report.left.append(line)
    if report.purged or report.left:
        logger.info("history under %s: %d versions purged, %d left", prefix, report.purged, len(report.left))
    return report


async def _delete(
    backend: Any, todo: list[StoredVersion], sent: set[tuple[str, str]], refused: dict[tuple[str, str], str]
) -> None:
    """Noncurrent entries first; then the latest delete markers of keys with nothing else left to delete."""
    older = [v for v in todo if not v.current]
    markers = [v for v in todo if v.current and v.marker]
    for version, why in await _send(backend, older, sent):
        refused[(version.key, version.version_id)] = why
    blocked = {key for key, _ in refused}
    await _send(backend, [m for m in markers if m.key not in blocked], sent)


async def _send(
    backend: Any, versions: list[StoredVersion], sent: set[tuple[str, str]]
) -> list[tuple[StoredVersion, str]]:
    if not versions:
        return []
    found = await backend.delete_versions(versions)
    sent.update((v.key, v.version_id) for v in versions)
    return [(r.version, r.reason) for r in found]


async def delete_leaving_no_history(backend: Any, prefix: str, keys: list[str], report: HistoryPurged) -> None:
    """Delete ``keys`` (all under ``prefix``) one at a time, in their order, each with every version its bucket
    keeps, so that no moment shows one deleted but its history still kept (erasure's last step: its erasing tombs,
    whose presence is what tells that it has not ended). On a bucket that keeps versions (listed once, under
    ``prefix``), each key's older versions are deleted by id, then its current one, which writes no delete marker; a
    key the bucket then still shows (a version refused, or a store that keeps its current version) gets a plain
    delete, and its history is purged after it."""
    versions: list[StoredVersion] = []
    if keeps_history(backend):
        wanted = set(keys)
        try:
            versions = [v async for v in backend.history(prefix) if v.key in wanted]
        except (AccessDeniedError, NotSupportedError, InvalidInputError):
            versions = []  # the purge's note already says the history could not be listed
    for key in keys:
        of_key = [v for v in versions if v.key == key]
        older = [v for v in of_key if not v.current]
        refused = await _send(backend, older, set())
        report.purged += len(older) - len(refused)
        if not refused:  # else an older version left would be current once the current one went: a plain delete
            refused = await _send(backend, [v for v in of_key if v.current], set())
        for version, why in refused:
            line = f"{key} {version.version_id}: {why}"
            if line not in report.left:
                report.left.append(line)
        if not of_key or await backend.head(key) is not None:
            await backend.delete(key)
            if of_key:
                await purge_history(backend, key, key.__eq__, report)
