"""Bad input fails with a clear InvalidInputError before any I/O."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.wrappers import Observed
from tierstore import ArtifactsBridge, InMemoryBackend, InvalidInputError, MemoryPage, Modality, StorageTier


@pytest.fixture
def observed() -> Observed:
    return Observed(InMemoryBackend(), fail_put=lambda key: True)


@pytest.mark.parametrize(
    ("page_id", "message"),
    [("", "empty"), ("x" * 1025, "over the limit"), ("a\nb", "U+000A"), ("a\x00", "U+0000"), ("\ud800", "surrogate")],
)
async def test_bad_page_ids(observed: Observed, page_id: str, message: str) -> None:
    bridge = ArtifactsBridge(backend=observed)
    page = MemoryPage(page_id=page_id, modality=Modality.TEXT, content="x")
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        await bridge.store_page(page)
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        await bridge.checkpoint([page], name="c")


@pytest.mark.parametrize("artifact_id", ["", 42, None, b"mem_L3_1", "a\x00", "x" * 1025])
async def test_what_is_not_an_id_at_all_is_refused(observed: Observed, artifact_id: Any) -> None:
    bridge = ArtifactsBridge(backend=observed)
    with pytest.raises(InvalidInputError):
        await bridge.load_page(artifact_id)
    with pytest.raises(InvalidInputError):
        await bridge.delete_page(artifact_id)
    with pytest.raises(InvalidInputError):
        await bridge.get_metadata(artifact_id)


@pytest.mark.parametrize("artifact_id", ["../etc", "mem_L3_1/..", "ckpt_x", "mem_L9_1", "mem_L3_0", "a" * 300])
async def test_text_that_is_no_artifact_id_is_not_found(artifact_id: str) -> None:
    bridge = ArtifactsBridge(backend=Observed(InMemoryBackend()))
    assert await bridge.load_page(artifact_id) is None
    assert await bridge.delete_page(artifact_id) is False
    assert await bridge.get_metadata(artifact_id) is None
    assert await bridge.get_checkpoint_manifest(artifact_id) is None


async def test_wrong_types_and_tiers(observed: Observed) -> None:
    bridge = ArtifactsBridge(backend=observed)
    page = MemoryPage(page_id="a", modality=Modality.TEXT, content="x")
    with pytest.raises(InvalidInputError, match=r"expected a tierstore\.models\.MemoryPage, got dict"):
        await bridge.store_page({"page_id": "a"})  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="use L2, L3, L4"):
        await bridge.store_page(page, tier=StorageTier.L1)
    with pytest.raises(InvalidInputError, match="checkpoint name"):
        await bridge.checkpoint([page], name="")
    assert sum(observed.puts.values()) == 0
