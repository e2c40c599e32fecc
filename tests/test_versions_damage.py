"""Damaged version records never make an older version pass for the latest, nor burn ids (issue 28;
``src/tierstore/versions.py``). Found by the outside attack on versions."""

from __future__ import annotations

import asyncio

import pytest

from tierstore import ArtifactsBridge, InMemoryBackend, MemoryPage, Modality
from tierstore.errors import IntegrityError
from tierstore.scopes import scope_prefix
from tierstore.versions import version_key

SESSION = scope_prefix("alice", "s1")


def _page(content: str) -> MemoryPage:
    return MemoryPage(page_id="p", modality=Modality.TEXT, content=content)


def test_a_damaged_record_of_a_stored_latest_version_is_an_error_not_the_version_before() -> None:
    async def scenario() -> None:
        backend = InMemoryBackend()
        bridge = ArtifactsBridge(backend, user_id="alice", session_id="s1")
        for n in (1, 2, 3):
            await bridge.store_page(_page(f"v{n}"))
        newest = SESSION + version_key("p", 3)
        record = await backend.get(newest)
        assert record is not None
        await backend.put(newest, bytes(record[:40]) + bytes([record[40] ^ 1]) + bytes(record[41:]))
        with pytest.raises(IntegrityError):
            await bridge.load_page_id("p")  # version 3's page is there: v2 would pass for the latest
        loaded = await bridge.load_page_id("p", 2)
        assert loaded is not None
        assert loaded.content == "v2"

    asyncio.run(scenario())


def test_a_foreign_key_at_the_last_version_number_fails_the_store_at_once_and_burns_no_ids() -> None:
    async def scenario() -> None:
        backend = InMemoryBackend()
        bridge = ArtifactsBridge(backend, user_id="alice", session_id="s1")
        await bridge.store_page(_page("v1"))
        await backend.put(SESSION + version_key("p", 9_999_999_999), b"not tierstore's")
        blocks = [entry.key async for entry in backend.list("alloc_")]
        with pytest.raises(IntegrityError):
            await bridge.store_page(_page("v2"))
        assert [entry.key async for entry in backend.list("alloc_")] == blocks
        other = await bridge.store_page(MemoryPage(page_id="q", modality=Modality.TEXT, content="q"))
        assert other == "mem_L3_3", "the failed store took more than its one id"

    asyncio.run(scenario())
