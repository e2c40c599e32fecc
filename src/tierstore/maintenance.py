"""Checking, cleaning and copying a whole store: ``fsck``, ``gc`` and ``migrate``.

* ``fsck`` verifies every page frame and manifest, reports what checkpoints reference but the store lacks, and lists
  orphans: artifacts written for a checkpoint that no manifest (and no checkpoint in progress) references, e.g. after
  a crash. Archived pages are reported as archived, not as damaged. Artifacts written by ``store_page`` are live
  pages, never orphans.
* ``gc`` deletes the orphans older than a grace period (through the same protocol as ``delete_checkpoint``, so a
  checkpoint racing with it keeps its artifacts), stale intents, and tomb records past their retention.
* ``migrate`` copies every page and checkpoint between two backends, keeping keys, so artifact and checkpoint ids
  stay valid. Each frame is verified before it is written and the copy is compared after; existing copies are
  skipped, so an interrupted migration resumes; a manifest is copied only once all its artifacts are there, so the
  destination never lists a half-copied checkpoint.

This module is the bridge's friend: it uses the bridge's reference bookkeeping (``_sweep``, the intents) so that
``gc`` deletes through the same race-safe protocol as ``delete_checkpoint``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from tierstore import codec, ids
from tierstore.backends.base import ListEntry, StorageBackend
from tierstore.bridge import ArtifactsBridge
from tierstore.enums import StorageTier
from tierstore.errors import ArchivedPageError, ConflictError, IntegrityError
from tierstore.models import CheckpointManifest

Progress = Callable[[int, int], None]
"""Called with (done, total) as work proceeds."""


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


@dataclass
class FsckReport:
    pages: int = 0
    checkpoints: int = 0
    verified: int = 0
    archived: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    orphans: list[Orphan] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class GcReport:
    orphans_deleted: list[str] = field(default_factory=list)
    intents_removed: int = 0
    tombs_pruned: int = 0


@dataclass
class MigrateReport:
    copied: int = 0
    skipped: int = 0
    checkpoints_copied: int = 0
    archived: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    incomplete_checkpoints: list[str] = field(default_factory=list)


async def _bounded_map(
    items: Iterable[str], work: Callable[[str], Awaitable[None]], concurrency: int, progress: Progress | None
) -> None:
    todo = list(items)
    limit = asyncio.Semaphore(concurrency)
    done = 0

    async def one(item: str) -> None:
        nonlocal done
        async with limit:
            await work(item)
        done += 1
        if progress:
            progress(done, len(todo))

    await asyncio.gather(*(one(item) for item in todo))


async def _keys(backend: StorageBackend, prefix: str) -> list[ListEntry]:
    return [entry async for entry in backend.list(prefix)]


async def _manifests(bridge: ArtifactsBridge, report: FsckReport) -> dict[str, CheckpointManifest]:
    manifests = {}
    for checkpoint in await bridge.list_checkpoints():
        try:
            manifest = await bridge.get_checkpoint_manifest(checkpoint)
        except IntegrityError as exc:
            report.problems.append(Problem(checkpoint, "corrupt", str(exc)))
            continue
        if manifest is not None:
            manifests[checkpoint] = manifest
    return manifests


async def fsck(
    bridge: ArtifactsBridge, *, verify: bool = True, concurrency: int = 32, progress: Progress | None = None
) -> FsckReport:
    backend = bridge._require_rich("fsck")
    report = FsckReport()
    manifests = await _manifests(bridge, report)
    report.checkpoints = len(manifests)
    expected = {e.artifact_id: e for m in manifests.values() for e in m.pages}
    in_progress = await bridge._referenced_by_intents()
    pages = {entry.key: entry for entry in await _keys(backend, ids.PAGE_PREFIX)}
    report.pages = len(pages)

    async def check(key: str) -> None:
        entry = expected.get(key)
        if verify:
            try:
                data = await backend.get(key)
            except ArchivedPageError:
                report.archived.append(key)
                return
            if data is None:
                return  # deleted while we looked
            try:
                page, checksum = codec.decode_page(data)
            except IntegrityError as exc:
                report.problems.append(Problem(key, "corrupt", str(exc)))
                return
            if entry is not None and (page.page_id != entry.page_id or checksum != entry.checksum):
                report.problems.append(Problem(key, "corrupt", f"does not hold page {entry.page_id!r} as checkpointed"))
                return
            report.verified += 1
        if entry is None and key not in in_progress:
            info = await backend.head(key)
            owner = info.metadata.get("ckpt") if info is not None else None
            if info is not None and owner:
                report.orphans.append(Orphan(key, info.size, info.last_modified, owner))

    await _bounded_map(pages, check, concurrency, progress)
    for checkpoint, manifest in manifests.items():
        for e in manifest.pages:
            if e.artifact_id not in pages:
                report.problems.append(Problem(e.artifact_id, "missing", f"page {e.page_id!r} of {checkpoint}"))
    report.archived.sort()
    report.orphans.sort(key=lambda o: o.key)
    return report


async def gc(
    bridge: ArtifactsBridge,
    *,
    grace: timedelta = timedelta(hours=1),
    tomb_retention: timedelta = timedelta(days=7),
    dry_run: bool = False,
) -> GcReport:
    """Delete orphans older than ``grace``, stale intents, and tomb records older than ``tomb_retention``.

    ``tomb_retention`` must exceed the ``reuse_window`` of every bridge writing to the store (default one day):
    a bridge never reuses an artifact it recorded longer ago than that, so pruned records cannot be missed.
    """
    backend = bridge._require_rich("gc")
    report = GcReport()
    now = datetime.now(UTC)
    fsck_report = await fsck(bridge, verify=False)
    old = {o.key for o in fsck_report.orphans if o.last_modified is None or o.last_modified < now - grace}
    report.orphans_deleted = sorted(old)
    stale_intents = [e.key for e in await _keys(backend, ids.INTENT_PREFIX) if _older(e, now - bridge.intent_ttl)]
    old_tombs = [e.key for e in await _keys(backend, ids.TOMB_PREFIX) if _older(e, now - tomb_retention)]
    report.intents_removed, report.tombs_pruned = len(stale_intents), len(old_tombs)
    if not dry_run:
        await bridge._sweep(old)
        await backend.delete_many(stale_intents + old_tombs)
    return report


def _older(entry: ListEntry, cutoff: datetime) -> bool:
    return entry.last_modified is not None and entry.last_modified < cutoff


async def migrate(
    source: StorageBackend,
    destination: StorageBackend,
    *,
    concurrency: int = 32,
    progress: Progress | None = None,
) -> MigrateReport:
    report = MigrateReport()
    present: set[str] = set()
    pages = [e.key for e in await _keys(source, ids.PAGE_PREFIX)]
    tombs = [e.key for e in await _keys(source, ids.TOMB_PREFIX) if e.key.endswith("_d")]
    checkpoints = [e.key for e in await _keys(source, ids.CHECKPOINT_PREFIX)]
    total = len(pages) + len(tombs) + len(checkpoints)
    done = 0

    def tick(_done: int, _total: int) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    async def copy(key: str) -> None:
        try:
            if await _copy_object(source, destination, key):
                report.copied += 1
            else:
                report.skipped += 1
            present.add(key)
        except ArchivedPageError:
            report.archived.append(key)
        except (IntegrityError, ConflictError) as exc:
            kind: Literal["corrupt", "conflict"] = "conflict" if isinstance(exc, ConflictError) else "corrupt"
            report.problems.append(Problem(key, kind, str(exc)))

    await _bounded_map(pages + tombs, copy, concurrency, tick)

    async def copy_checkpoint(key: str) -> None:
        data = await source.get(key)
        if data is None:
            return
        try:
            manifest = codec.decode_manifest(data)
        except IntegrityError as exc:
            report.problems.append(Problem(key, "corrupt", str(exc)))
            return
        if any(e.artifact_id not in present for e in manifest.pages):
            report.incomplete_checkpoints.append(key)
            return
        await copy(key)
        report.checkpoints_copied += 1

    await _bounded_map(checkpoints, copy_checkpoint, concurrency, tick)
    return report


async def _copy_object(source: StorageBackend, destination: StorageBackend, key: str) -> bool:
    """Copy one object, verified; False when the destination already holds the same bytes."""
    info = await source.head(key)
    if info is None:
        raise IntegrityError(f"{key} vanished from the source during the migration", key=key)
    metadata = dict(info.metadata)
    existing = await destination.head(key)
    if existing is not None:
        if existing.size == info.size and existing.metadata.get("checksum") == metadata.get("checksum"):
            return False
        raise ConflictError(key)
    data = await source.get(key)
    if data is None:
        raise IntegrityError(f"{key} vanished from the source during the migration", key=key)
    checksum = codec.decode_frame(data).checksum
    if metadata.get("checksum", checksum) != checksum:
        raise IntegrityError(f"{key}: the stored checksum differs from the object metadata", key=key)
    tier = info.tier or StorageTier(metadata.get("tier", StorageTier.L3.value))
    tags: dict[str, str] = {name: metadata[name] for name in ("tier", "modality", "pagetype") if name in metadata}
    try:
        await destination.put(key, data, metadata=metadata, tags=tags, tier=tier, if_absent=True)
    except ConflictError:
        return await _copy_object(source, destination, key)
    copied = await destination.head(key)
    if copied is None or copied.size != len(data):
        raise IntegrityError(f"{key}: the copy at the destination is not {len(data)} bytes", key=key)
    return True
