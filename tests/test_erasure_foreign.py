"""Erasure touches only what tierstore wrote (issue 28): under an erased scope's prefix, a key of a shape tierstore
never writes there, or a directory with files in it at a page's key on the local disk, is left as it was and reported
(``Erased.foreign``); everything of tierstore's there goes, and the erasure ends."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from tierstore import ArtifactsBridge, FileSystemBackend, InMemoryBackend, MemoryPage, Modality
from tierstore.backends.base import StorageBackend
from tierstore.protocol.erasure import ErasureOptions, erase_session
from tierstore.scopes import scope_prefix


@pytest.mark.parametrize("where", ["memory", "filesystem"])
def test_erasure_leaves_what_tierstore_did_not_write_and_reports_it(where: str, tmp_path: Path) -> None:
    backend: StorageBackend = InMemoryBackend() if where == "memory" else FileSystemBackend(tmp_path / "store")
    prefix = scope_prefix("alice", "s1")

    async def scenario() -> None:
        alice = ArtifactsBridge(backend, user_id="alice", session_id="s1")
        await alice.store_page(MemoryPage(page_id="p", modality=Modality.TEXT, content="alice's"))
        await alice.checkpoint([MemoryPage(page_id="c", modality=Modality.TEXT, content="checkpointed")], name="c")
        await backend.put(prefix + "mynotes.txt", b"a user's own notes")
        foreign = [prefix + "mynotes.txt"]
        if where == "filesystem":
            directory = tmp_path / "store" / "objects" / (prefix + "mem_L3_888888")
            directory.mkdir()
            (directory / "notes.txt").write_text("a user's file")
            foreign.append(prefix + "mem_L3_888888")
        erased = await asyncio.wait_for(erase_session(backend, "alice", "s1", ErasureOptions(settle=timedelta(0))), 30)
        assert sorted(erased.foreign) == sorted(foreign)
        assert sorted([entry.key async for entry in backend.list(prefix)]) == sorted(foreign)
        assert bytes(await backend.get(prefix + "mynotes.txt") or b"") == b"a user's own notes"
        if where == "filesystem":
            assert (tmp_path / "store" / "objects" / (prefix + "mem_L3_888888") / "notes.txt").read_text() == (
                "a user's file"
            )

    asyncio.run(scenario())
