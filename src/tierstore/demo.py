"""The spec's Complete Example, run against any bridge: evict five pages, checkpoint ten, restore them."""

from __future__ import annotations

from collections.abc import Callable

from tierstore.bridge import ArtifactsBridge
from tierstore.enums import Modality, StorageTier
from tierstore.errors import IntegrityError
from tierstore.models import MemoryPage
from tierstore.page_table import PageTable


async def run_demo(bridge: ArtifactsBridge, say: Callable[[str], None] = print) -> str:
    """Returns the checkpoint id it made."""
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
    for page in pages[:5]:
        artifact_id = await bridge.store_page(page)
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
    return checkpoint_id
