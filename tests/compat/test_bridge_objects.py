"""tierstore's bridge takes chuk-ai-session-manager's objects by value, and answers a malformed id as a missing one.

These exercise ``tierstore.validate.as_page``/``as_tier`` in the bridge and its not-found answers for ids that
cannot be tierstore's: the bridge's own work, which this suite states from a chuk user's side.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import pytest
from chuk_ai_session_manager.memory import ArtifactsBridge as ChukBridge

from tests.compat.libs import CHUK, TIERSTORE, Lib, both, each_page_class
from tierstore import ArtifactsBridge, InvalidInputError, MemoryPage

# Not tierstore artifact ids: typos, another library's ids, other kinds of tierstore key, path-like text.
MALFORMED_IDS = [
    "mem_L3_",
    "mem_L9_1",
    "MEM_L3_1",
    "mem_L3_1x",
    "mem-L3-1",
    "checkpoint_1",
    "ckpt_20260101T000000000000_deadbeef",
    "3f2b8c1e-8d4a-4f7e-9b1a-2c3d4e5f6a7b",
    "../etc/passwd",
    "x" * 300,
]


@dataclass
class Foreign:
    page_id: str


# A class named like tierstore's page that is not one: the refusal must say which MemoryPage it got.
MemoryPageLookalike = type("MemoryPage", (Foreign,), {"__module__": "somewhere.else"})


class StorageTier(str, Enum):  # noqa: UP042 - shaped like chuk's and tierstore's tier enums
    L1 = "L1"
    L3 = "L3"


def chuk_like_page(page_lib: Lib, page_id: str = "p1") -> Any:
    return page_lib.MemoryPage(
        page_id=page_id,
        modality=page_lib.Modality.IMAGE,
        content="a cat on a mat",
        caption="a cat",
        dimensions=(640, 480),
        page_type=page_lib.PageType.ARTIFACT,
        representations={page_lib.CompressionLevel.ABSTRACT: "mem_L3_2"},
        metadata={"source": "camera"},
        importance=0.8,
    )


def same_fields(page: Any, original: Any) -> bool:
    return bool(page.model_dump(mode="json") == original.model_dump(mode="json"))


@each_page_class()
@pytest.mark.parametrize(
    "tier", [CHUK.StorageTier.L2, TIERSTORE.StorageTier.L2, "L2"], ids=["chuk", "tierstore", "str"]
)
async def test_store_page_takes_either_librarys_page_and_tier(page_lib: Lib, tier: Any) -> None:
    bridge = ArtifactsBridge()
    original = chuk_like_page(page_lib)
    artifact_id = await bridge.store_page(original, tier)
    assert artifact_id == "mem_L2_1"
    loaded = await bridge.load_page(artifact_id)
    assert type(loaded) is MemoryPage
    assert same_fields(loaded, original)


@each_page_class()
async def test_checkpoint_takes_either_librarys_pages_and_restores_tierstores(page_lib: Lib) -> None:
    bridge = ArtifactsBridge()
    originals = [chuk_like_page(page_lib, f"p{i}") for i in range(3)]
    for restored in (
        await bridge.restore_checkpoint(await bridge.checkpoint(pages=originals, name="mixed")),
        await bridge.load_checkpoint(await bridge.store_checkpoint(originals, "mixed again")),
    ):
        assert [type(p) for p in restored] == [MemoryPage] * 3
        assert all(same_fields(p, o) for p, o in zip(restored, originals, strict=True))


async def test_a_lookalike_page_is_refused_naming_its_module() -> None:
    bridge = ArtifactsBridge()
    with pytest.raises(InvalidInputError, match=r"somewhere\.else"):
        await bridge.store_page(MemoryPageLookalike(page_id="p"))
    with pytest.raises(InvalidInputError, match=r"somewhere\.else"):
        await bridge.checkpoint(pages=[MemoryPageLookalike(page_id="p")], name="c")


@pytest.mark.parametrize("tier", [CHUK.StorageTier.L1, StorageTier.L1, "L1"], ids=["chuk", "other-module", "str"])
async def test_tiers_outside_l2_to_l4_are_refused_by_value(tier: Any) -> None:
    with pytest.raises(InvalidInputError, match="L2, L3 or L4"):
        await ArtifactsBridge().store_page(chuk_like_page(TIERSTORE), tier)


@pytest.mark.parametrize("tier", ["L7", "l9", 3, 3.0])  # "l3" is L3: tier names take any case
async def test_what_is_no_tier_is_refused(tier: Any) -> None:
    with pytest.raises(InvalidInputError):
        await ArtifactsBridge().store_page(chuk_like_page(TIERSTORE), tier)


async def test_a_tier_enum_of_another_module_is_taken_by_value() -> None:
    tier: Any = StorageTier.L3
    assert await ArtifactsBridge().store_page(chuk_like_page(TIERSTORE), tier) == "mem_L3_1"


@both()
@pytest.mark.parametrize("malformed", MALFORMED_IDS)
async def test_a_malformed_id_is_not_found(lib: Lib, malformed: str) -> None:
    bridge = ArtifactsBridge() if lib is TIERSTORE else ChukBridge()
    await bridge.configure()
    await bridge.store_page(chuk_like_page(lib))
    assert await bridge.load_page(malformed) is None
    assert await bridge.delete_page(malformed) is False
    if lib is TIERSTORE:
        assert await bridge.get_metadata(malformed) is None


@pytest.mark.parametrize("wrong", [42, None, b"mem_L3_1", ["mem_L3_1"]])
async def test_an_id_of_the_wrong_type_is_still_refused(wrong: Any) -> None:
    bridge = ArtifactsBridge()
    with pytest.raises(InvalidInputError):
        await bridge.load_page(wrong)
    with pytest.raises(InvalidInputError):
        await bridge.delete_page(wrong)
    with pytest.raises(InvalidInputError):
        await bridge.get_metadata(wrong)
