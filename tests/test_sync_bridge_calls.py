"""SyncBridge has every call of the async bridge, same name, same arguments (its contract; round 6a: it lacked
``find_pages``, ``user_id``, ``session_id`` and more): the public names of the two classes are compared, so a call
added to ``ArtifactsBridge`` and not to ``SyncBridge`` fails here; then the added calls answer as the bridge's."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from tierstore import ArtifactsBridge, InMemoryBackend, MemoryPage, Modality, SyncBridge

NOT_MIRRORED = {"aclose", "on_close", "references"}
"""Async code's own (sync.py's contract): ``close`` is the SyncBridge's ``aclose``."""
SYNC_ONLY = {"close"}


def _public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def _parameters(function: Any) -> list[tuple[str, Any, Any]]:
    found = inspect.signature(function).parameters.values()
    return [(p.name, p.kind, p.default) for p in found if p.name not in ("self", "cls")]


def test_syncbridge_has_every_public_call_and_property_of_the_bridge_and_no_other() -> None:
    assert _public(SyncBridge) - SYNC_ONLY == _public(ArtifactsBridge) - NOT_MIRRORED


def test_each_call_takes_the_same_arguments_and_each_property_is_a_property() -> None:
    for name in sorted(_public(ArtifactsBridge) - NOT_MIRRORED):
        ours, theirs = inspect.getattr_static(SyncBridge, name), inspect.getattr_static(ArtifactsBridge, name)
        assert isinstance(ours, property) == isinstance(theirs, property), name
        if not isinstance(theirs, property):
            assert _parameters(getattr(SyncBridge, name)) == _parameters(getattr(ArtifactsBridge, name)), name


def test_the_added_calls_answer_as_the_bridges() -> None:
    backend = InMemoryBackend()
    bridge = ArtifactsBridge(backend, user_id="u", session_id="s")
    with SyncBridge(bridge) as sync:
        assert (sync.user_id, sync.session_id, sync.is_persistent) == ("u", "s", False)
        kept = sync.store_page(MemoryPage(page_id="p", modality=Modality.TEXT, content="c", metadata={"k": "v"}))
        sync.store_page(MemoryPage(page_id="q", modality=Modality.TEXT, content="c", metadata={"k": "w"}))
        assert [m.artifact_id for m in sync.find_pages(metadata={"k": "v"})] == [kept]
        assert sync.find_pages(limit=1) == asyncio.run(bridge.find_pages(limit=1))
        sync.configure(session_id="s")
        pages = [MemoryPage(page_id="p", modality=Modality.TEXT, content="c")]
        checkpoint = sync.store_checkpoint(pages, "named")
        assert [page.page_id for page in sync.load_checkpoint(checkpoint)] == ["p"]
        with sync.scoped(user_id="u", session_id="other") as other:
            assert isinstance(other, SyncBridge)
            assert (other.user_id, other.session_id) == ("u", "other")
            assert other.find_pages() == []
