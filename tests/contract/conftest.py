"""Fixtures of the contract suite: a bridge on a fresh store of the rig under test."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tierstore import ArtifactsBridge, MemoryPage, Modality, ObjectNotFoundError, StorageTier
from tierstore.backends.base import StorageBackend


@pytest.fixture
def bridge(backend: StorageBackend) -> ArtifactsBridge:
    return ArtifactsBridge(backend=backend)


def text_page(page_id: str, content: str = "", **fields: Any) -> MemoryPage:
    fields.setdefault("modality", Modality.TEXT)
    return MemoryPage(page_id=page_id, content=content or f"content of {page_id}", **fields)


async def assert_gone(bridge: ArtifactsBridge, keys: list[str], tier: StorageTier) -> None:
    """Each key is neither listed nor loaded, has no metadata, and a tier change of it is ``ObjectNotFoundError``."""
    assert not set(keys) & set(await bridge.list_pages())
    for key in keys:
        assert await bridge.load_page(key) is None
        assert await bridge.get_metadata(key) is None
        with pytest.raises(ObjectNotFoundError):
            await bridge.set_tier(key, tier)


async def store_time_passes(backend: StorageBackend, key: str) -> None:
    """Wait until the store dates a new object after ``key`` (a store's times may be whole seconds)."""
    before = await backend.head(key)
    assert before is not None
    assert before.last_modified is not None
    while True:
        await backend.put("probe", b"")
        probe = await backend.head("probe")
        await backend.delete("probe")
        if probe is not None and probe.last_modified is not None and probe.last_modified > before.last_modified:
            return
        await asyncio.sleep(0.1)
