"""One bridge, used from several event loops one after another (the way sync code calls an async library: a
``asyncio.run`` per call), works on every rig: clients are made per loop and closed with it, nothing leaks a
warning; and ``SyncBridge`` gives sync code the same calls over the same bridge."""

from __future__ import annotations

import asyncio
import gc
import inspect
import warnings

import pytest

from tests.conftest import Store
from tierstore import ArtifactsBridge, InvalidInputError, MemoryPage, Modality, SyncBridge

ROUNDS = 3
CONCURRENCY = 4


def page(n: int) -> MemoryPage:
    return MemoryPage(page_id=f"p{n}", modality=Modality.TEXT, content=f"content {n}")


def content(loaded: MemoryPage | None) -> object:
    assert loaded is not None
    return loaded.content


def test_one_bridge_from_one_asyncio_run_after_another(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    bridge = ArtifactsBridge(backend=store.open(), concurrency=CONCURRENCY)
    stored: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        for n in range(ROUNDS):
            stored.append(asyncio.run(bridge.store_page(page(n))))
            loaded = asyncio.run(bridge.load_page(stored[-1]))
            assert loaded is not None
            assert loaded.content == f"content {n}"
            # More pages than the concurrency: the bridge's limits wait, in every loop.
            pages = [page(100 * n + i) for i in range(3 * CONCURRENCY)]
            checkpoint = asyncio.run(bridge.checkpoint(pages, name=f"round{n}"))
            assert [content(p) for p in asyncio.run(bridge.restore_checkpoint(checkpoint))] == [
                p.content for p in pages
            ]
        assert set(stored) <= set(asyncio.run(bridge.list_pages()))
        assert len(asyncio.run(bridge.list_checkpoints())) == ROUNDS
        asyncio.run(bridge.aclose())
        gc.collect()
    assert [r.getMessage() for r in caplog.records if "nclosed" in r.getMessage()] == []  # aiohttp's complaint


def test_sync_bridge_makes_the_same_calls(store: Store) -> None:
    bridge = ArtifactsBridge(backend=store.open(), concurrency=CONCURRENCY)
    pages = [page(i) for i in range(3 * CONCURRENCY)]
    with SyncBridge(bridge) as sync:
        artifact = sync.store_page(page(1))
        assert content(sync.load_page(artifact)) == "content 1"
        metadata = sync.get_metadata(artifact)
        assert metadata is not None
        assert metadata.page_id == "p1"
        assert sync.list_pages() == [artifact]
        assert [e.artifact_id for e in sync.list_page_entries()] == [artifact]
        checkpoint = sync.checkpoint(pages, name="sync")
        assert sync.list_checkpoints() == [checkpoint]
        assert [content(p) for p in sync.restore_checkpoint(checkpoint)] == [p.content for p in pages]
        manifest = sync.get_checkpoint_manifest(checkpoint)
        assert manifest is not None
        assert manifest.page_count == len(pages)
        assert sync.collect_stats().checkpoints == 1
        assert sync.get_stats().pages_stored >= 1
        assert sync.delete_checkpoint(checkpoint)
        assert sync.load_page("mem_L3_999999") is None
        with pytest.raises(InvalidInputError):
            sync.load_page(7)  # type: ignore[arg-type]
        assert sync.delete_page(artifact)
    # The bridge itself goes on working from async code afterwards, and the SyncBridge after a close.
    assert asyncio.run(bridge.list_pages()) == []
    again = SyncBridge(bridge)
    assert again.list_checkpoints() == []
    again.close()
    asyncio.run(bridge.aclose())


async def test_sync_bridge_works_inside_a_running_event_loop() -> None:
    with SyncBridge() as sync:
        artifact = sync.store_page(page(1))
        assert content(sync.load_page(artifact)) == "content 1"


def test_sync_bridge_has_every_call_of_the_bridge() -> None:
    calls = {
        name: inspect.signature(member)
        for name, member in vars(ArtifactsBridge).items()
        if not name.startswith("_") and name != "aclose" and inspect.iscoroutinefunction(member)
    }
    assert len(calls) >= 14
    for name, signature in calls.items():
        mirror = getattr(SyncBridge, name, None)
        assert mirror is not None, name
        assert list(inspect.signature(mirror).parameters) == list(signature.parameters), name
    for name in calls:
        theirs = inspect.signature(getattr(ArtifactsBridge, name)).return_annotation
        assert inspect.signature(getattr(SyncBridge, name)).return_annotation == theirs, name


def test_a_bridge_dropped_without_aclose_has_its_clients_closed_when_its_loop_ends(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A bridge used in a loop and then dropped (garbage-collected while the loop still runs) without ``aclose``:
    its per-loop clients are still closed when the loop shuts down, with no pending task destroyed and no session
    left unclosed."""

    async def use_and_drop() -> None:
        bridge = ArtifactsBridge(backend=store.open())
        stored = await bridge.store_page(page(0))
        assert content(await bridge.load_page(stored)) == "content 0"
        del bridge
        gc.collect()  # the bridge and its backend are gone while the loop runs on
        await asyncio.sleep(0)

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        asyncio.run(use_and_drop())
        gc.collect()
    leaks = [r.getMessage() for r in caplog.records if "destroyed" in r.getMessage() or "Unclosed" in r.getMessage()]
    assert leaks == []
