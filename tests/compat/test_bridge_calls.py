"""chuk-ai-session-manager's own bridge calls (``configure``, ``is_persistent``, ``store_checkpoint``,
``load_checkpoint``, and its not-found answers) work on tierstore's bridge as on chuk's in-memory one."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from chuk_ai_session_manager.memory import ArtifactsBridge as ChukBridge

from tests.compat.libs import Lib, both
from tierstore import ArtifactsBridge, FileSystemBackend, IntegrityError, InvalidInputError, NotSupportedError


def new_bridge(lib: Lib, session_id: str | None = None) -> Any:
    return (ChukBridge if lib.name == "chuk" else ArtifactsBridge)(session_id=session_id)


async def configured(lib: Lib) -> Any:
    bridge = new_bridge(lib, "s1")
    await bridge.configure(session_id="s1")
    return bridge


def pages(lib: Lib, count: int = 3, **fields: Any) -> list[Any]:
    return [
        lib.MemoryPage(page_id=f"msg_{i}", modality=lib.Modality.TEXT, content=f"content {i}", **fields)
        for i in range(count)
    ]


@both(chuk_differs="chuk's configure relabels its bridge; tierstore's session is a scope fixed when it is built")
async def test_session_id_comes_from_the_constructor_and_configure_keeps_it(lib: Lib) -> None:
    bridge = new_bridge(lib, "from_constructor")
    assert bridge.session_id == "from_constructor"
    with pytest.raises(
        InvalidInputError, match="'from_configure' is not the session this bridge is bound to, 'from_constructor'"
    ):
        await bridge.configure(session_id="from_configure")
    await bridge.configure()  # chuk's configure without a session id clears it: tierstore's keeps the binding
    await bridge.configure(session_id="from_constructor")
    assert bridge.session_id == "from_constructor"
    assert new_bridge(lib).session_id is None
    with pytest.raises(InvalidInputError, match="bound to no session"):
        await new_bridge(lib).configure(session_id="late")


@both()
async def test_the_in_memory_store_is_not_persistent(lib: Lib) -> None:
    bridge = await configured(lib)
    assert bridge.is_persistent is False
    stats = bridge.get_stats()
    assert (stats.backend, stats.persistent) == ("in-memory", False)


async def test_a_disk_store_is_persistent(tmp_path: Path) -> None:
    bridge = ArtifactsBridge(FileSystemBackend(tmp_path), session_id="s1")
    await bridge.configure(session_id="s1")
    assert bridge.is_persistent is True
    assert bridge.get_stats().persistent is True


async def test_configure_refuses_an_artifact_store_and_a_session_id_of_the_wrong_type() -> None:
    bridge = ArtifactsBridge(session_id="s1")
    with pytest.raises(NotSupportedError, match=r"ArtifactsBridge\.from_env\(\)"):
        await bridge.configure(artifact_store=object())
    with pytest.raises(InvalidInputError, match="session_id"):
        await bridge.configure(session_id=42)  # type: ignore[arg-type]
    assert bridge.session_id == "s1"


@both()
async def test_store_load_delete(lib: Lib) -> None:
    bridge = await configured(lib)
    page = pages(lib, 1)[0]
    artifact_id = await bridge.store_page(page)
    assert re.fullmatch(r"mem_L3_[0-9]+", artifact_id)
    assert re.fullmatch(r"mem_L2_[0-9]+", await bridge.store_page(page, lib.StorageTier.L2))
    loaded = await bridge.load_page(artifact_id)
    assert (loaded.page_id, loaded.content, loaded.modality) == ("msg_0", "content 0", "text")
    assert await bridge.delete_page(artifact_id) is True
    assert await bridge.load_page(artifact_id) is None
    assert await bridge.delete_page(artifact_id) is False


@both()
async def test_an_unknown_artifact_is_none_on_load_and_false_on_delete(lib: Lib) -> None:
    bridge = await configured(lib)
    assert await bridge.load_page("mem_L3_404") is None
    assert await bridge.delete_page("mem_L3_404") is False


@both()
async def test_store_checkpoint_and_load_checkpoint(lib: Lib) -> None:
    bridge = await configured(lib)
    saved = pages(lib, 3)
    checkpoint_id = await bridge.store_checkpoint(saved, "session_snapshot")
    assert isinstance(checkpoint_id, str)
    loaded = await bridge.load_checkpoint(checkpoint_id)
    assert sorted((p.page_id, p.content) for p in loaded) == [(p.page_id, p.content) for p in saved]
    assert await bridge.load_checkpoint(await bridge.store_checkpoint([], "empty")) == []


@both()
@pytest.mark.parametrize(
    "unknown", ["ckpt_20260101T000000000000_deadbeef", "checkpoint_99", "6f1c2d3e-chuk-artifacts-id", ""]
)
async def test_an_unknown_checkpoint_loads_as_no_pages(lib: Lib, unknown: str) -> None:
    bridge = await configured(lib)
    await bridge.store_checkpoint(pages(lib, 1), "other")
    assert await bridge.load_checkpoint(unknown) == []


@both(
    chuk_differs="chuk's load_checkpoint leaves out the pages it cannot load and returns the rest; tierstore never "
    "returns a partial checkpoint (README: Compatibility with chuk-ai-session-manager)"
)
async def test_a_checkpoint_missing_a_page_raises_rather_than_come_back_partial(lib: Lib) -> None:
    bridge = await configured(lib)
    checkpoint_id = await bridge.store_checkpoint(pages(lib, 3), "damaged")
    assert await bridge.delete_page("mem_L3_1") is True  # one of the checkpoint's pages, in both libraries
    with pytest.raises(IntegrityError, match="missing"):
        await bridge.load_checkpoint(checkpoint_id)


@both(
    chuk_differs="chuk's store_checkpoint writes every page to L3; tierstore's keeps an L2 or L4 page in its tier, "
    "as its checkpoint does (README: Compatibility with chuk-ai-session-manager)"
)
async def test_store_checkpoint_keeps_a_page_in_its_tier(lib: Lib) -> None:
    bridge = await configured(lib)
    await bridge.store_checkpoint(pages(lib, 1, storage_tier=lib.StorageTier.L2), "tiers")
    assert await bridge.load_page("mem_L2_1") is not None


async def test_load_checkpoint_refuses_an_id_of_the_wrong_type() -> None:
    bridge = ArtifactsBridge()
    with pytest.raises(InvalidInputError, match="must be a str"):
        await bridge.load_checkpoint(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "call", [ArtifactsBridge.configure, ArtifactsBridge.store_checkpoint, ArtifactsBridge.load_checkpoint]
)
def test_the_calls_have_chuks_parameter_names(call: Callable[..., Any]) -> None:
    theirs = inspect.signature(getattr(ChukBridge, call.__name__)).parameters
    assert list(inspect.signature(call).parameters) == list(theirs)
