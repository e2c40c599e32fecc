"""The reader's side: a listed checkpoint restored whole and verified, or an error, never part of it
(:func:`read_checkpoint`).

Each entry's artifact is read, its frame verified (by the caller's ``decode``), and held to the entry: the page id and
the checksum the manifest recorded. The bookkeeping fields the manifest recorded are put back. Failures are gathered
and one is raised: archived pages first (one ArchivedPageError naming the checkpoint, each archived page and how to
restore them), then anything that is not a
verification failure (an outage), else one IntegrityError naming how many pages failed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tierstore.codec import Buffer
from tierstore.concurrency import Progress, bounded_gather
from tierstore.errors import ArchivedPageError, IntegrityError
from tierstore.models import CheckpointEntry, CheckpointManifest, MemoryPage

Read = Callable[[str], Awaitable[Buffer | None]]
"""An artifact's stored bytes, or None when it is gone."""
Decode = Callable[[Buffer, str], Awaitable[tuple[MemoryPage, str | None]]]
"""A verified frame's page and checksum; IntegrityError otherwise."""


async def read_checkpoint(
    key: str,
    manifest: CheckpointManifest,
    wanted: set[str] | None,
    read: Read,
    decode: Decode,
    concurrency: int,
    progress: Progress | None = None,
) -> list[MemoryPage]:
    """The pages of ``manifest`` (those whose page id is in ``wanted``, or all), verified, in its order."""

    async def fetch(entry: CheckpointEntry) -> MemoryPage:
        data = await read(entry.artifact_id)
        if data is None:
            raise IntegrityError(f"page {entry.page_id!r} is missing: {entry.artifact_id}", key=entry.artifact_id)
        page, checksum = await decode(data, entry.artifact_id)
        if page.page_id != entry.page_id or (entry.checksum and checksum != entry.checksum):
            raise IntegrityError(
                f"artifact {entry.artifact_id} does not hold page {entry.page_id!r} as checkpointed",
                key=entry.artifact_id,
            )
        return page if entry.state is None else page.model_copy(update=dict(entry.state))

    chosen = [e for e in manifest.pages if wanted is None or e.page_id in wanted]
    results = await bounded_gather((fetch(e) for e in chosen), concurrency, settle=True, progress=progress)
    failures = [r for r in results if isinstance(r, Exception)]
    if failures:
        archived = [(e, r) for e, r in zip(chosen, results, strict=True) if isinstance(r, ArchivedPageError)]
        if archived:
            raise ArchivedPageError(
                archived[0][1].key,
                pending=all(r.pending for _, r in archived),
                checkpoint=key,
                archived={e.artifact_id: e.page_id for e, _ in archived},
            )
        broken = [f for f in failures if not isinstance(f, IntegrityError)]
        if broken:
            raise broken[0]
        detail = "; ".join(str(f) for f in failures[:5])
        raise IntegrityError(
            f"checkpoint {key} cannot be restored: {len(failures)} of {len(results)} pages "
            f"failed verification ({detail})",
            key=key,
        )
    return [r for r in results if isinstance(r, MemoryPage)]
