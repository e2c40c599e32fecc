"""``session_id`` is no longer a label (issue 28): it binds a bridge to a session, so bridges of different sessions on
one store see, load and delete nothing of each other's, stored pages keep their own ``session_id``, and the README and
the bridge's docstring say so (the label's old meaning, isolating nothing, is gone from both)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT
from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality

README = (ROOT / "README.md").read_text()


async def test_session_ids_keep_sessions_apart_as_documented(tmp_path: Path) -> None:
    async with (
        ArtifactsBridge(backend=FileSystemBackend(tmp_path), session_id="alice") as alice,
        ArtifactsBridge(backend=FileSystemBackend(tmp_path), session_id="bob") as bob,
    ):
        artifact = await alice.store_page(MemoryPage(page_id="p", modality=Modality.TEXT, content="alice's"))
        assert await bob.list_pages() == []
        assert await bob.load_page(artifact) is None
        assert not await bob.delete_page(artifact)
        loaded = await alice.load_page(artifact)
        assert loaded is not None
        assert (loaded.content, loaded.session_id) == ("alice's", None)
        assert bob.get_stats().session_id == "bob"
        assert await alice.list_pages() == [artifact]
    assert "isolates nothing" not in README
    assert "binds the bridge to that session" in README
    doc = ArtifactsBridge.__doc__ or ""
    assert "a label, not a boundary" not in doc
    assert "bind the bridge to a scope" in doc
