"""Capability: core. A resumed ``migrate`` verifies every copy it counts as already there, and replaces damaged ones.

The class attacked: every kind of object migrate copies (page, manifest, block record, tomb) x damage to the
destination's copy (a bit flipped at its start, middle or end, truncated, extended, swapped with another object's
bytes, removed; on disk also in place, header included), on every rig as the destination.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.conftest import Store
from tests.contract.conftest import text_page
from tests.soak import scaled
from tierstore import ArtifactsBridge, FileSystemBackend, InMemoryBackend, StorageTier
from tierstore.backends.base import StorageBackend
from tierstore.maintenance import fsck, migrate

Damage = Callable[[StorageBackend, Path | None, str, str], Awaitable[None]]
"""``damage(destination, its root on disk if any, key to damage, another key)``."""


def _rewrite(change: Callable[[bytes, bytes], bytes]) -> Damage:
    """Overwrite the copy with changed bytes (``change(own, another's)``), keeping its metadata and tier."""

    async def damage(backend: StorageBackend, root: Path | None, key: str, other: str) -> None:
        info = await backend.head(key)
        own, another = await backend.get(key), await backend.get(other)
        assert info is not None
        assert own is not None
        assert another is not None
        changed = change(bytes(own), bytes(another))
        await backend.put(key, changed, metadata=dict(info.metadata), tier=info.tier or StorageTier.L3)

    return damage


def _flip(position: float) -> Callable[[bytes, bytes], bytes]:
    def change(data: bytes, _other: bytes) -> bytes:
        at = min(int(len(data) * position), len(data) - 1)
        return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]

    return change


async def _remove(backend: StorageBackend, root: Path | None, key: str, other: str) -> None:
    assert await backend.delete(key)


def _in_place(index: int) -> Damage:
    async def damage(backend: StorageBackend, root: Path | None, key: str, other: str) -> None:
        assert root is not None
        path = root / "objects" / key
        data = bytearray(path.read_bytes())
        data[index] ^= 0x08
        with path.open("r+b") as f:
            f.write(data)

    return damage


DAMAGE: dict[str, Damage] = {  # through the backend: on every rig
    "first byte flipped": _rewrite(_flip(0.0)),
    "middle byte flipped": _rewrite(_flip(0.5)),
    "last byte flipped": _rewrite(_flip(1.0)),
    "truncated": _rewrite(lambda data, _other: data[:-1]),
    "extended": _rewrite(lambda data, _other: data + b"\n"),
    "swapped with another object's bytes": _rewrite(lambda _data, other: other),
    "removed": _remove,
}
IN_PLACE: dict[str, Damage] = {  # in the disk store's file itself (same inode)
    "body bit flipped": _in_place(-1),
    "frame header bit flipped": _in_place(-40),
    "disk header bit flipped": _in_place(16),
}


@pytest.mark.bridge_only  # migrate sees the protocol alone: every damage x kind here, all damages on every rig below
@pytest.mark.parametrize("damage", list(DAMAGE))
async def test_a_resumed_migrate_verifies_what_it_skips(store: Store, damage: str) -> None:
    await _attack(store.open(), None, [DAMAGE[damage]], removed=damage == "removed")


async def test_a_resumed_migrate_finds_every_damage_on_every_rig(store: Store) -> None:
    """Each damage on another object of the rig's store, rotated over the kinds."""
    await _attack(store.open(), None, list(DAMAGE.values()), removed=False)


@pytest.mark.parametrize("damage", list(IN_PLACE))
async def test_a_resumed_migrate_finds_a_disk_copy_damaged_in_place(tmp_path: Path, damage: str) -> None:
    await _attack(FileSystemBackend(tmp_path), tmp_path, [IN_PLACE[damage]], removed=False)


async def _attack(destination: StorageBackend, root: Path | None, damages: list[Damage], *, removed: bool) -> None:
    """Migrate, damage objects of every kind at the destination (``damages`` in turn, one object each, or one
    damage on one object of each kind), migrate again: damaged copies are repaired, removed ones copied again."""
    source = InMemoryBackend()
    bridge = ArtifactsBridge(backend=source)
    loose = [await bridge.store_page(text_page(f"loose_{i}")) for i in range(scaled(6))]
    checkpoint = await bridge.checkpoint([text_page(f"kept_{i}") for i in range(scaled(3))], name="c")
    assert await bridge.delete_page(loose.pop())  # a tomb goes along too
    first = await migrate(source, destination)
    assert (first.problems, first.archived, first.incomplete_checkpoints, first.repaired) == ([], [], [], [])

    keys = sorted([entry.key async for entry in destination.list("")])
    kinds = ["ckpt_", "alloc_", "tomb_", "mem_"]
    one_of_each = [next(key for key in keys if key.startswith(kind)) for kind in kinds]
    pages = [key for key in keys if key.startswith("mem_") and key not in one_of_each]
    victims = one_of_each + pages[: max(0, len(damages) - len(one_of_each))]
    other = next(key for key in keys if key.startswith("mem_") and key not in victims)
    assert len(victims) >= len(damages)
    for i, victim in enumerate(victims):
        await damages[i % len(damages)](destination, root, victim, other)
    removals = [v for i, v in enumerate(victims) if damages[i % len(damages)] is _remove]

    again = await migrate(source, destination)
    assert (again.problems, again.archived, again.incomplete_checkpoints) == ([], [], [])
    assert sorted(again.repaired) == ([] if removed else sorted(set(victims) - set(removals)))
    assert (again.copied, again.skipped) == (len(victims), len(keys) - len(victims))

    third = await migrate(source, destination)
    assert (third.copied, third.skipped, third.repaired) == (0, len(keys), [])
    copy = ArtifactsBridge(backend=destination)
    assert await copy.restore_checkpoint(checkpoint) == await bridge.restore_checkpoint(checkpoint)
    assert [await copy.load_page(artifact) for artifact in loose] == [await bridge.load_page(a) for a in loose]
    assert (await fsck(copy)).ok
    await destination.aclose()
