"""Capability: core. Damaged stored bytes raise IntegrityError; they are never returned as a page."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from tests.contract.conftest import text_page
from tests.reliability.figures import record
from tierstore import ArtifactsBridge, IntegrityError
from tierstore.backends.base import Buffer, StorageBackend
from tierstore.codec import BIG_PAGE
from tierstore.maintenance import fsck


def _flip(data: Buffer) -> bytes:
    data = bytes(data)
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


def _truncate(data: Buffer) -> bytes:
    return bytes(data)[:-7]


def _extend(data: Buffer) -> bytes:
    return bytes(data) + b"\x00"


def _garbage(data: Buffer) -> bytes:
    return b"\x00" * len(data)


@pytest.mark.parametrize("damage", [_flip, _truncate, _extend, _garbage], ids=lambda f: f.__name__[1:])
async def test_damaged_page_raises_on_load_restore_and_fsck(
    bridge: ArtifactsBridge, backend: StorageBackend, damage: Callable[[Buffer], bytes], rig: str
) -> None:
    checkpoint = await bridge.checkpoint([text_page("a", "alpha" * 100), text_page("b")], name="c")
    manifest = await bridge.get_checkpoint_manifest(checkpoint)
    assert manifest is not None
    artifact = manifest.pages[0].artifact_id
    stored = await backend.get(artifact)
    assert stored is not None
    await backend.put(artifact, damage(stored))
    with pytest.raises(IntegrityError):
        await bridge.load_page(artifact)
    with pytest.raises(IntegrityError):
        await ArtifactsBridge(backend=backend).restore_checkpoint(checkpoint)
    report = await fsck(bridge)
    assert [(p.key, p.kind) for p in report.problems] == [(artifact, "corrupt")]
    record("corruptions detected on load, restore and fsck", 1, rig)


@pytest.mark.parametrize("size", ["small", "big"])
async def test_swapped_objects_are_detected_on_restore_and_fsck(
    bridge: ArtifactsBridge, backend: StorageBackend, rig: str, size: str
) -> None:
    # a big page is decoded in a worker thread, a path of its own: each read path must bind the key there too
    length = BIG_PAGE + 1 if size == "big" else 40
    checkpoint = await bridge.checkpoint([text_page(n, n * length) for n in ("a", "b")], name="c")
    manifest = await bridge.get_checkpoint_manifest(checkpoint)
    assert manifest is not None
    first, second = (e.artifact_id for e in manifest.pages)
    a, b = await backend.get(first), await backend.get(second)
    assert a is not None
    assert b is not None
    await backend.put(first, b)
    await backend.put(second, a)
    fresh = ArtifactsBridge(backend=backend)
    for artifact in (first, second):
        with pytest.raises(IntegrityError, match="written as"):
            await fresh.load_page(artifact)
        with pytest.raises(IntegrityError):
            await fresh.get_metadata(artifact)
    with pytest.raises(IntegrityError, match="written as"):
        await fresh.restore_checkpoint(checkpoint)
    report = await fsck(bridge)
    assert sorted(p.key for p in report.problems) == sorted([first, second])
    record("corruptions detected on load, restore and fsck", 1, rig)


async def test_damaged_manifest_raises(bridge: ArtifactsBridge, backend: StorageBackend) -> None:
    checkpoint = await bridge.checkpoint([text_page("a")], name="c")
    stored = await backend.get(checkpoint)
    assert stored is not None
    await backend.put(checkpoint, _flip(stored))
    with pytest.raises(IntegrityError):
        await ArtifactsBridge(backend=backend).get_checkpoint_manifest(checkpoint)


async def test_a_flipped_bit_anywhere_in_a_page_or_manifest_is_reported(
    bridge: ArtifactsBridge, backend: StorageBackend, rig: str
) -> None:
    checkpoint = await bridge.checkpoint([text_page("a", "alpha" * 50), text_page("b")], name="c")
    manifest = await bridge.get_checkpoint_manifest(checkpoint)
    assert manifest is not None
    artifact = manifest.pages[0].artifact_id
    page_bytes, manifest_bytes = await backend.get(artifact), await backend.get(checkpoint)
    assert page_bytes is not None
    assert manifest_bytes is not None
    rng = random.Random(rig)
    flips = 0
    for original, key in ((bytes(page_bytes), artifact), (bytes(manifest_bytes), checkpoint)):
        for position in sorted(rng.sample(range(len(original)), 8)):
            damaged = bytearray(original)
            damaged[position] ^= 1 << rng.randrange(8)
            await backend.put(key, bytes(damaged))
            with pytest.raises(IntegrityError):
                await ArtifactsBridge(backend=backend).restore_checkpoint(checkpoint)
            if key == artifact:
                with pytest.raises(IntegrityError):
                    await bridge.load_page(artifact)
            flips += 1
        assert not (await fsck(ArtifactsBridge(backend=backend))).ok
        await backend.put(key, original)
    assert (await fsck(ArtifactsBridge(backend=backend))).ok
    record("single-bit flips anywhere in a page or manifest, all reported", flips, rig)
