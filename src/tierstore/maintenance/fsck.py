"""``fsck``: verify every page frame and manifest of a store, and find what a crash left behind.

It reports what checkpoints reference but the store lacks, damaged objects, and orphans: artifacts written for a
checkpoint that no manifest (and no checkpoint in progress) references, e.g. after a crash. Archived pages are
reported as archived, not as damaged. Artifacts written by ``store_page`` are live pages, never orphans.
"""

from __future__ import annotations

from tierstore import codec, ids
from tierstore.backends.base import ListEntry, StorageBackend
from tierstore.bridge import ArtifactsBridge
from tierstore.concurrency import Progress, bounded_gather
from tierstore.errors import ArchivedPageError, IntegrityError
from tierstore.maintenance.reports import FsckReport, Orphan, Problem
from tierstore.models import CheckpointManifest


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

    await bounded_gather((check(key) for key in pages), concurrency, progress=progress)
    for checkpoint, manifest in manifests.items():
        for e in manifest.pages:
            if e.artifact_id not in pages:
                report.problems.append(Problem(e.artifact_id, "missing", f"page {e.page_id!r} of {checkpoint}"))
    report.archived.sort()
    report.orphans.sort(key=lambda o: o.key)
    return report
