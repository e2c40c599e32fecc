"""The spec's Complete Example, run against any bridge: evict five pages, checkpoint ten, restore them.

Contract: :func:`run_demo` writes 15 artifacts (5 evicted pages, 10 checkpointed) and one checkpoint, says what it
does through ``say``, and returns what it wrote, so that :func:`remove_demo` can take it away again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tierstore.bridge import ArtifactsBridge
from tierstore.chuk.page_table import PageTable
from tierstore.enums import Modality, StorageTier
from tierstore.errors import IntegrityError
from tierstore.models import MemoryPage


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` made: its checkpoint and every artifact it wrote, so a caller can clean up."""

    checkpoint_id: str
    evicted: list[str]
    """Artifact ids of the five evicted pages (``store_page``)."""
    checkpointed: list[str]
    """Artifact ids the checkpoint wrote."""

    @property
    def artifacts(self) -> list[str]:
        """Every artifact id the demo wrote, evicted pages first."""
        return self.evicted + self.checkpointed


async def run_demo(bridge: ArtifactsBridge, say: Callable[[str], None] = print) -> DemoResult:
    """The spec's complete example on ``bridge``: pages evicted, checkpointed, restored and verified, narrated
    through ``say``."""
    page_table = PageTable()
    pages = [
        MemoryPage(
            page_id=f"msg_{i:03d}",
            modality=Modality.TEXT,
            content=f"Message {i} content...",
            storage_tier=StorageTier.L0,
        )
        for i in range(10)
    ]
    for page in pages:
        page_table.register(page)
    evicted = []
    for page in pages[:5]:
        artifact_id = await bridge.store_page(page)
        evicted.append(artifact_id)
        page_table.update_location(page.page_id, tier=StorageTier.L3, artifact_id=artifact_id)
        say(f"Evicted {page.page_id} -> {artifact_id}")
    checkpoint_id = await bridge.checkpoint(pages=pages, name="session_snapshot")
    say(f"\nCheckpoint: {checkpoint_id}")
    restored = await bridge.restore_checkpoint(checkpoint_id)
    if restored != pages:
        raise IntegrityError("the restored pages differ from the checkpointed ones")
    say(f"\nRestored {len(restored)} pages, every checksum verified")
    stats = bridge.get_stats()
    say(f"\nStorage: {stats.pages_stored} pages stored ({stats.total_bytes} bytes) on {stats.backend}")
    manifest = await bridge.get_checkpoint_manifest(checkpoint_id)
    checkpointed = [e.artifact_id for e in manifest.pages] if manifest else []
    return DemoResult(checkpoint_id, evicted, checkpointed)


async def remove_demo(bridge: ArtifactsBridge, result: DemoResult) -> None:
    """Delete what :func:`run_demo` wrote: its checkpoint (with the artifacts only it uses) and the evicted pages."""
    await bridge.delete_checkpoint(result.checkpoint_id)
    for artifact_id in result.evicted:
        await bridge.delete_page(artifact_id)
