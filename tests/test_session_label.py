"""``session_id`` labels a bridge and isolates nothing, and the README and the bridge's docstring say so: bridges with
different session ids on one store see, load and delete each other's pages."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT
from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality

README = (ROOT / "README.md").read_text()


async def test_session_ids_share_one_store_as_documented(tmp_path: Path) -> None:
    async with (
        ArtifactsBridge(backend=FileSystemBackend(tmp_path), session_id="alice") as alice,
        ArtifactsBridge(backend=FileSystemBackend(tmp_path), session_id="bob") as bob,
    ):
        artifact = await alice.store_page(MemoryPage(page_id="p", modality=Modality.TEXT, content="alice's"))
        assert await bob.list_pages() == [artifact]
        loaded = await bob.load_page(artifact)
        assert loaded is not None
        assert loaded.content == "alice's"
        assert loaded.session_id is None
        assert bob.get_stats().session_id == "bob"
        assert await bob.delete_page(artifact)
    assert "isolates nothing" in README
    doc = ArtifactsBridge.__doc__ or ""
    assert "``session_id`` is a label, not a boundary" in doc
