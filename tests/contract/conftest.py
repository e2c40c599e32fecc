"""Fixtures of the contract suite: a bridge on a fresh store of the rig under test."""

from __future__ import annotations

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
