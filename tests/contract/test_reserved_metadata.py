"""Capability: core. Metadata keys that a data path would read as HTTP attributes (obstore takes ``contenttype``
for Content-Type, ``storageclass`` for the storage class, ...) are refused on every backend, before anything is
written; every other key the contract allows, near misses included, round-trips exactly, and where a cloud has
two data paths an object written on one reads the same on the other."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Store
from tests.rigs import load
from tierstore.backends.base import RESERVED_METADATA_KEYS, StorageBackend
from tierstore.errors import InvalidInputError

NEAR_MISSES = ("content", "type", "contentlength", "contentmd5", "contentrange", "expires", "etag", "tagging")


@pytest.mark.parametrize("reserved", sorted(RESERVED_METADATA_KEYS))
async def test_a_reserved_metadata_key_is_refused_before_any_write(backend: StorageBackend, reserved: str) -> None:
    with pytest.raises(InvalidInputError, match="reserved"):
        await backend.put("mem_L3_1", b"gzip? no", metadata={reserved: "gzip", "page": "p"})
    with pytest.raises(InvalidInputError, match="reserved"):
        await backend.put("mem_L3_1", b"gzip? no", metadata={reserved: "gzip"}, if_absent=True)
    assert await backend.get("mem_L3_1") is None


async def test_every_other_metadata_key_round_trips_on_both_data_paths(store: Store) -> None:
    metadata = {key: f"value-of-{key}" for key in NEAR_MISSES}
    writer = store.open()
    others: list[StorageBackend] = []
    if "client" in store.spec:
        other = "obstore" if store.spec["client"] == "sdk" else "sdk"
        reopen: Any = load(store.rig).open_backend
        others.append(reopen({**store.spec, "client": other}))
    try:
        await writer.put("mem_L3_1", b"body", metadata=metadata)
        for reader in (writer, *others):
            info = await reader.head("mem_L3_1")
            assert info is not None
            assert dict(info.metadata) == metadata
            assert await reader.get("mem_L3_1") == b"body"
    finally:
        for opened in (writer, *others):
            await opened.aclose()
