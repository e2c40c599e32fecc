"""A page's content is stored as it was when the call began, whatever the caller does to it meanwhile.

The attack: a task that changes the caller's content at every step of the event loop while ``store_page``,
``store_leased`` or ``checkpoint`` runs, on every rig, with and without compression. What was stored must load (or
restore) and equal the content as it was when the call began; a checkpoint that is listed must restore. A buffer the
codec cannot read (a released memoryview) is refused typed before any I/O; any other memoryview is copied.
"""

from __future__ import annotations

import array
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tierstore import ArtifactsBridge, InvalidInputError, MemoryPage, Modality, StorageTier
from tierstore.backends.base import StorageBackend
from tierstore.codec import COMPRESSIONS, Compression

SIZE = 4096  # above zstd's threshold, so both compressions frame a body


def _page(content: object) -> MemoryPage:
    return MemoryPage(page_id="p", modality=Modality.IMAGE, content=content)


async def _stored(bridge: ArtifactsBridge, call: str, page: MemoryPage) -> Any:
    """Store ``page`` through ``call`` and read it back as the caller would."""
    if call == "store_page":
        artifact = await bridge.store_page(page)
        loaded = await bridge.load_page(artifact)
        assert loaded is not None
        return loaded.content
    if call == "store_leased":
        entry = await bridge.store_leased(page, owner="ckpt_20260101T000000000000_0badcafe")
        loaded = await bridge.load_page(entry.artifact_id)
        assert loaded is not None
        return loaded.content
    checkpoint = await bridge.checkpoint([page], "c")
    assert checkpoint in await bridge.list_checkpoints()
    return (await bridge.restore_checkpoint(checkpoint))[0].content


async def _while_changing(call: Awaitable[Any], change: Callable[[int], None]) -> Any:
    """Await ``call`` while ``change(step)`` runs at every step of the event loop once the call has begun."""
    running = asyncio.ensure_future(call)
    step = 0
    await asyncio.sleep(0)  # the call begins: its first step runs
    while not running.done():
        step += 1
        change(step)
        await asyncio.sleep(0)
    return running.result()


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("call", ["store_page", "store_leased", "checkpoint"])
@pytest.mark.parametrize("kind", ["bytearray", "memoryview"])
async def test_a_buffer_changed_at_every_step_is_stored_as_it_was(
    backend: StorageBackend, compression: Compression, call: str, kind: str
) -> None:
    buffer = bytearray(b"A" * SIZE)
    content: object = buffer if kind == "bytearray" else memoryview(buffer)
    before = bytes(buffer)

    def change(step: int) -> None:
        buffer[:] = bytes([step % 251]) * SIZE

    bridge = ArtifactsBridge(backend=backend, compression=compression)
    assert await _while_changing(_stored(bridge, call, _page(content)), change) == before


@pytest.mark.parametrize("call", ["store_page", "checkpoint"])
async def test_json_changed_at_every_step_is_stored_whole_or_refused(backend: StorageBackend, call: str) -> None:
    content: dict[str, Any] = {"step": 0, "items": list(range(500))}

    def change(step: int) -> None:
        content["step"] = step
        content["items"] = [step] * 500

    bridge = ArtifactsBridge(backend=backend)
    try:
        got = await _while_changing(_stored(bridge, call, _page(content)), change)
    except InvalidInputError:
        return
    whole = [got["step"]] * 500 if got["step"] else list(range(500))  # one state, never two mixed
    assert got["items"] == whole
    for checkpoint in await bridge.list_checkpoints():
        await bridge.restore_checkpoint(checkpoint)


def _released() -> memoryview:
    view = memoryview(b"abc")
    view.release()
    return view


async def test_a_released_memoryview_is_refused_before_any_io() -> None:
    bridge = ArtifactsBridge()
    for call in (bridge.store_page(_page(_released())), bridge.checkpoint([_page(_released())], "c")):
        with pytest.raises(InvalidInputError, match="released memoryview"):
            await call
    assert await bridge.list_pages() == []
    assert await bridge.list_checkpoints() == []


@pytest.mark.parametrize(
    ("content", "stored"),
    [
        (memoryview(b"abcdef")[::2], b"ace"),
        (memoryview(bytearray(b"abcdef")).cast("B", (2, 3)), b"abcdef"),
        (memoryview(array.array("i", [1, 2])), array.array("i", [1, 2]).tobytes()),
        (memoryview(b"read-only"), b"read-only"),
    ],
    ids=["strided", "two-dimensional", "int-format", "read-only"],
)
async def test_any_other_memoryview_is_stored_as_its_bytes(content: memoryview, stored: bytes) -> None:
    bridge = ArtifactsBridge()
    artifact = await bridge.store_page(_page(content), StorageTier.L3)
    loaded = await bridge.load_page(artifact)
    assert loaded is not None
    assert loaded.content == stored
    restored = await bridge.restore_checkpoint(await bridge.checkpoint([_page(content)], "c"))
    assert restored[0].content == stored


@pytest.mark.parametrize("call", ["store_page", "checkpoint"])
async def test_big_json_resized_at_every_step_while_a_thread_encodes_it_is_stored_whole_or_refused(
    backend: StorageBackend, call: str
) -> None:
    keys = 100_000  # far above the size estimate's budget: encoded in a worker thread while the loop runs
    content: dict[str, Any] = {f"k{i}": i for i in range(keys)}

    def change(step: int) -> None:
        content.pop(f"added{step - 1}", None)
        content[f"added{step}"] = step  # the dict changes size under the thread's iteration

    bridge = ArtifactsBridge(backend=backend)
    try:
        got = await _while_changing(_stored(bridge, call, _page(content)), change)
    except InvalidInputError:
        return
    assert all(got[f"k{i}"] == i for i in range(keys))
    assert len(got) <= keys + 1
