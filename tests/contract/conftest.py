"""Fixtures of the contract suite: a bridge on a fresh store of the rig under test."""

from __future__ import annotations

from typing import Any

import pytest

from tierstore import ArtifactsBridge, MemoryPage, Modality
from tierstore.backends.base import StorageBackend


@pytest.fixture
def bridge(backend: StorageBackend) -> ArtifactsBridge:
    return ArtifactsBridge(backend=backend)


def text_page(page_id: str, content: str = "", **fields: Any) -> MemoryPage:
    fields.setdefault("modality", Modality.TEXT)
    return MemoryPage(page_id=page_id, content=content or f"content of {page_id}", **fields)
