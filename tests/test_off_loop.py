"""Pages above ``BIG_PAGE`` are encoded and decoded in a worker thread, whatever their kind: structured content
whose JSON is big, text whose UTF-8 is big though its characters are fewer, many small values, and a zstd frame that
is small but unpacks big. Checked structurally: the thread the codec's encoding and decompression run in is seen
by a spy on them, never by timing the loop.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality
from tierstore.backends.base import StorageBackend
from tierstore.codec import BIG_PAGE, compression, pages

pytestmark = pytest.mark.bridge_only  # where the codec runs is the bridge's choice; no backend changes it

BIG_CONTENTS: dict[str, Any] = {
    "structured": {"k": ["v" * 1023] * (BIG_PAGE // 1024 + 8)},
    "many small values": list(range(BIG_PAGE // 200)),
    "non-ASCII text": "語" * (BIG_PAGE // 2),  # 1.5 MiB as UTF-8 from half a million characters
    "big metadata": "small content",
}
SMALL_CONTENTS: dict[str, Any] = {"structured": {"k": ["v"] * 100}, "text": "語" * 1000, "bytes": b"x" * 4096}


@pytest.fixture
def threads(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[int]]:
    """The threads the codec encoded page content and decompressed bodies in."""
    seen: dict[str, set[int]] = {"encode": set(), "decompress": set()}
    encode, decompress = pages._content_parts, compression.decompress

    def encode_spy(content: Any) -> Any:
        seen["encode"].add(threading.get_ident())
        return encode(content)

    def decompress_spy(flags: int, body: memoryview) -> memoryview:
        if flags & compression.ZSTD_FLAG:  # manifests and records pass through uncompressed
            seen["decompress"].add(threading.get_ident())
        return decompress(flags, body)

    monkeypatch.setattr(pages, "_content_parts", encode_spy)
    monkeypatch.setattr("tierstore.codec.frame.decompress", decompress_spy)
    return seen


def _page(name: str, content: Any) -> MemoryPage:
    metadata = {"notes": ["n" * 1023] * (BIG_PAGE // 1024 + 8)} if name == "big metadata" else {}
    return MemoryPage(page_id="p", modality=Modality.STRUCTURED, content=content, metadata=metadata)


@pytest.mark.parametrize("call", ["store_page", "checkpoint"])
@pytest.mark.parametrize("name", list(BIG_CONTENTS))
async def test_a_big_page_of_any_kind_is_encoded_off_the_loop(
    backend: StorageBackend, threads: dict[str, set[int]], name: str, call: str
) -> None:
    bridge = ArtifactsBridge(backend=backend)
    page = _page(name, BIG_CONTENTS[name])
    if call == "store_page":
        await bridge.store_page(page)
    else:
        await bridge.checkpoint([page], "c")
    assert threads["encode"]
    assert threading.get_ident() not in threads["encode"]


@pytest.mark.parametrize("name", list(SMALL_CONTENTS))
async def test_a_small_page_is_encoded_on_the_loop(threads: dict[str, set[int]], name: str) -> None:
    await ArtifactsBridge().store_page(_page(name, SMALL_CONTENTS[name]))
    assert threads["encode"] == {threading.get_ident()}


@pytest.mark.parametrize("read", ["load_page", "restore_checkpoint"])
async def test_a_small_zstd_frame_that_unpacks_big_is_decoded_off_the_loop(
    backend: StorageBackend, threads: dict[str, set[int]], read: str
) -> None:
    bridge = ArtifactsBridge(backend=backend, compression="zstd")
    page = MemoryPage(page_id="p", modality=Modality.TEXT, content="a" * (4 * BIG_PAGE))
    artifact = await bridge.store_page(page)
    assert (await bridge.list_page_entries())[0].size_bytes < BIG_PAGE
    checkpoint = await bridge.checkpoint([page], "c")
    threads["decompress"].clear()
    if read == "load_page":
        loaded = await bridge.load_page(artifact)
        assert loaded is not None
        assert loaded.content == page.content
    else:
        assert (await bridge.restore_checkpoint(checkpoint))[0].content == page.content
    assert threads["decompress"]
    assert threading.get_ident() not in threads["decompress"]


async def test_a_reuse_proof_by_whole_read_decodes_a_small_frame_that_unpacks_big_off_the_loop(
    threads: dict[str, set[int]], tmp_path: Path
) -> None:
    """A later checkpoint that cannot prove an artifact by its version token (on disk the inode's change time moved)
    reads it whole and verifies it: a small zstd frame that unpacks big is decoded in a worker thread there too."""
    root = tmp_path / "store"
    page = MemoryPage(page_id="p", modality=Modality.TEXT, content="a" * (4 * BIG_PAGE))
    first = ArtifactsBridge(backend=FileSystemBackend(root), compression="zstd")
    manifest = await first.get_checkpoint_manifest(await first.checkpoint([page], "c1"))
    assert manifest is not None
    artifact = root / "objects" / manifest.pages[0].artifact_id
    artifact.chmod(0o400)
    artifact.chmod(0o600)  # the change time moves: the recorded version token no longer proves it
    threads["decompress"].clear()
    later = ArtifactsBridge(backend=FileSystemBackend(root), compression="zstd")
    second = await later.get_checkpoint_manifest(await later.checkpoint([page], "c2"))
    assert second is not None
    assert second.pages[0].artifact_id == manifest.pages[0].artifact_id, "reused after a whole read"
    assert threads["decompress"]
    assert threading.get_ident() not in threads["decompress"]
