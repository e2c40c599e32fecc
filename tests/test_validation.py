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
    with pytest.raises(InvalidInputError, match="L2, L3 or L4"):
        await bridge.store_page(page, tier=StorageTier.L1)
    with pytest.raises(InvalidInputError, match="checkpoint name"):
        await bridge.checkpoint([page], name="")
    assert sum(observed.puts.values()) == 0


def _fresh() -> MemoryPage:
    return MemoryPage(page_id="a", modality=Modality.TEXT, content="x")


def _raise_importance(page: MemoryPage) -> None:
    page.importance += 0.7


@pytest.mark.parametrize(
    "change",
    [
        _raise_importance,
        lambda p: setattr(p, "storage_tier", "L9"),
        lambda p: setattr(p, "modality", "smell"),
        lambda p: setattr(p, "access_count", "many"),
        lambda p: setattr(p, "created_at", "yesterday"),
        lambda p: setattr(p, "page_id", 5),
        lambda p: setattr(p, "dimensions", (1, 2, 3)),
        lambda p: setattr(p, "metadata", {"k": {1, 2}}),
    ],
    ids=["importance", "tier", "modality", "count", "created", "id", "dimensions", "metadata"],
)
async def test_a_page_changed_after_construction_is_checked_as_stored(observed: Observed, change: Any) -> None:
    page = _fresh()
    change(page)
    bridge = ArtifactsBridge(backend=observed)
    with pytest.raises(InvalidInputError):
        await bridge.store_page(page)
    with pytest.raises(InvalidInputError):
        await bridge.checkpoint([_fresh(), page], name="c")
    assert sum(observed.puts.values()) == 0


async def test_tiers_may_be_given_as_their_strings() -> None:
    bridge = ArtifactsBridge()
    page = _fresh()
    page.storage_tier = "L4"  # type: ignore[assignment]
    artifact = await bridge.store_page(page)
    assert artifact.startswith("mem_L4_")
    assert (await bridge.store_page(_fresh(), "L2")).startswith("mem_L2_")
    await bridge.set_tier(artifact, "L3")
    metadata = await bridge.get_metadata(artifact)
    assert metadata is not None
    assert metadata.tier == "L3"
    for wrong in ("L1", "L7", 3, "", None):
        with pytest.raises(InvalidInputError):
            await bridge.set_tier(artifact, wrong)  # type: ignore[arg-type]


@pytest.mark.parametrize("pages", [None, "pages", b"x", 5, {"page_id": "a"}, [_fresh(), "x"]])
async def test_checkpoint_takes_an_iterable_of_pages_only(observed: Observed, pages: Any) -> None:
    with pytest.raises(InvalidInputError):
        await ArtifactsBridge(backend=observed).checkpoint(pages, name="c")
    assert sum(observed.puts.values()) == 0


@pytest.mark.parametrize(
    "options",
    [{"compression": "gzip"}, {"compression": None}, {"concurrency": 0}, {"concurrency": True}, {"concurrency": "8"}],
)
def test_bridge_options_are_checked_when_given(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        ArtifactsBridge(**options)


async def test_deep_nesting_is_refused_before_any_write(observed: Observed) -> None:
    deep: Any = 1
    for _ in range(1000):
        deep = {"d": deep}
    bridge = ArtifactsBridge(backend=observed)
    for page in (
        MemoryPage(page_id="m", modality=Modality.TEXT, metadata=deep),
        MemoryPage(page_id="c", modality=Modality.STRUCTURED, content=[deep]),
    ):
        with pytest.raises(InvalidInputError, match="deep"):
            await bridge.store_page(page)
    assert sum(observed.puts.values()) == 0


async def test_restore_options_are_checked(observed: Observed) -> None:
    bridge = ArtifactsBridge(backend=observed)
    for options in ({"days": 0}, {"days": True}, {"speed": "fast"}):
        with pytest.raises(InvalidInputError):
            await bridge.restore_page("mem_L4_1", **options)
