"""``migrate``: copy every page and checkpoint between two backends, keeping keys.

Artifact and checkpoint ids stay valid. Each frame is verified before it is written and the copy is compared
after; existing copies are skipped, so an interrupted migration resumes; a manifest is copied only once all its
artifacts are there, so the destination never lists a half-copied checkpoint.
"""

from __future__ import annotations

from typing import Literal

from tierstore import codec, ids
from tierstore.backends.base import StorageBackend
from tierstore.concurrency import Progress, bounded_gather
from tierstore.enums import StorageTier
from tierstore.errors import ArchivedPageError, ConflictError, IntegrityError
from tierstore.maintenance.fsck import listed
from tierstore.maintenance.reports import MigrateReport, Problem


async def migrate(
    source: StorageBackend,
    destination: StorageBackend,
    *,
    concurrency: int = 32,
    progress: Progress | None = None,
) -> MigrateReport:
    report = MigrateReport()
    present: set[str] = set()
    pages = [e.key for e in await listed(source, ids.PAGE_PREFIX)]
    # Block records and deletion tombs go along, so the destination never issues an id the source used.
    tombs = [e.key for e in await listed(source, ids.TOMB_PREFIX) if e.key.endswith("_d")]
    tombs += [e.key for e in await listed(source, ids.ALLOC_PREFIX)]
    checkpoints = [e.key for e in await listed(source, ids.CHECKPOINT_PREFIX)]
    total = len(pages) + len(tombs) + len(checkpoints)
    done = 0

    def tick(_done: int, _total: int) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    async def copy(key: str) -> bool | None:
        """True when copied, False when already there, None when it could not be copied (reported)."""
        try:
            copied = await _copy_object(source, destination, key)
        except ArchivedPageError:
            report.archived.append(key)
            return None
        except (IntegrityError, ConflictError) as exc:
            kind: Literal["corrupt", "conflict"] = "conflict" if isinstance(exc, ConflictError) else "corrupt"
            report.problems.append(Problem(key, kind, str(exc)))
            return None
        if copied:
            report.copied += 1
        else:
            report.skipped += 1
        present.add(key)
        return copied

    await bounded_gather((copy(key) for key in pages + tombs), concurrency, progress=tick)

    async def copy_checkpoint(key: str) -> None:
        data = await source.get(key)
        if data is None:
            return
        try:
            manifest = codec.decode_manifest(data, key)
        except IntegrityError as exc:
            report.problems.append(Problem(key, "corrupt", str(exc)))
            return
        if any(e.artifact_id not in present for e in manifest.pages):
            report.incomplete_checkpoints.append(key)
            return
        copied = await copy(key)
        if copied:
            report.checkpoints_copied += 1
        elif copied is False:
            report.checkpoints_skipped += 1

    await bounded_gather((copy_checkpoint(key) for key in checkpoints), concurrency, progress=tick)
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
    checksum = codec.decode_frame(data, key).checksum
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
