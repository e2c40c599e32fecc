"""A user's backend written to the spec's Custom Backend interface works unchanged."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tierstore import (
    ArtifactsBridge,
    InMemoryBackend,
    MemoryPage,
    Modality,
    NotSupportedError,
    StorageTier,
    TierstoreError,
    maintenance,
)


class DictBackend:
    """Exactly the spec's interface; it picks its own artifact ids."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.metadata: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    async def store(self, page_id: str, data: bytes, metadata: dict[str, Any]) -> str:
        artifact_id = f"custom-{next(self._ids)}"
        self.objects[artifact_id] = data
        self.metadata[artifact_id] = metadata
        return artifact_id

    async def load(self, artifact_id: str) -> bytes | None:
        return self.objects.get(artifact_id)

    async def delete(self, artifact_id: str) -> bool:
        return self.objects.pop(artifact_id, None) is not None

    async def exists(self, artifact_id: str) -> bool:
        return artifact_id in self.objects

    async def list_pages(self) -> list[str]:
        return list(self.objects)


def _page(page_id: str) -> MemoryPage:
    return MemoryPage(page_id=page_id, modality=Modality.TEXT, content=f"content {page_id}")


async def test_custom_backend_round_trips_and_checkpoints() -> None:
    backend = DictBackend()
    bridge = ArtifactsBridge(backend=backend)
    page = _page("a")
    artifact = await bridge.store_page(page)
    assert artifact == "custom-1"
    assert backend.metadata[artifact]["page_id"] == "a"
    assert await bridge.load_page(artifact) == page
    assert (await bridge.get_metadata(artifact)).page_id == "a"  # type: ignore[union-attr]
    checkpoint = await bridge.checkpoint([_page("b"), _page("c")], name="c")
    assert await bridge.list_checkpoints() == [checkpoint]
    assert sorted(await bridge.list_pages()) == ["custom-1", "custom-2", "custom-3"]
    assert [p.page_id for p in await ArtifactsBridge(backend=backend).restore_checkpoint(checkpoint)] == ["b", "c"]
    assert await bridge.delete_checkpoint(checkpoint)
    assert await bridge.list_pages() == ["custom-1"]
    assert await bridge.delete_page(artifact)
    assert bridge.get_stats().exact is False


async def test_rich_only_calls_say_so() -> None:
    bridge = ArtifactsBridge(backend=DictBackend())
    artifact = await bridge.store_page(_page("a"))
    with pytest.raises(NotSupportedError):
        await bridge.set_tier(artifact, StorageTier.L4)
    with pytest.raises(NotSupportedError):
        await bridge.restore_page(artifact)


async def test_a_backend_that_returns_no_id_is_an_error() -> None:
    class Broken(DictBackend):
        async def store(self, page_id: str, data: bytes, metadata: dict[str, Any]) -> str:
            return None  # type: ignore[return-value]

    with pytest.raises(TierstoreError, match="not an artifact id"):
        await ArtifactsBridge(backend=Broken()).store_page(_page("a"))


def test_an_object_that_is_no_backend_is_refused() -> None:
    with pytest.raises(TierstoreError, match="not a storage backend"):
        ArtifactsBridge(backend=object())  # type: ignore[arg-type]


@pytest.mark.parametrize("given", [None, "L2", "L3", "L4"])
@pytest.mark.parametrize("own", [StorageTier.L1, StorageTier.L2, StorageTier.L4])
async def test_metadata_reports_the_tier_a_page_was_stored_in(given: str | None, own: StorageTier) -> None:
    page = _page("a").model_copy(update={"storage_tier": own})
    builtin, custom = ArtifactsBridge(backend=InMemoryBackend()), ArtifactsBridge(backend=DictBackend())
    expected = (await builtin.get_metadata(await builtin.store_page(page, tier=given))).tier  # type: ignore[union-attr]
    assert (await custom.get_metadata(await custom.store_page(page, tier=given))).tier == expected  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("call", "run"),
    [
        ("migrate", lambda custom: maintenance.migrate(custom, InMemoryBackend())),
        ("migrate", lambda custom: maintenance.migrate(InMemoryBackend(), custom)),
        ("doctor", lambda custom: maintenance.doctor(custom)),
    ],
)
async def test_maintenance_on_a_custom_backend_says_it_is_not_supported(call: str, run: Any) -> None:
    custom = DictBackend()
    await ArtifactsBridge(backend=custom).store_page(_page("a"))
    with pytest.raises(NotSupportedError, match=f"^{call} needs a backend implementing"):
        await run(custom)


async def test_find_pages_on_a_custom_backend_describes_and_reads_each_page() -> None:
    bridge = ArtifactsBridge(backend=DictBackend())
    wanted = MemoryPage(page_id="b", modality=Modality.TEXT, content="x", metadata={"k": "é=%20"})
    await bridge.store_page(MemoryPage(page_id="a", modality=Modality.TEXT, content="x", metadata={"k": "other"}))
    key = await bridge.store_page(wanted)
    await bridge.store_page(MemoryPage(page_id="c", modality=Modality.IMAGE, content=b"x", metadata={"k": "é=%20"}))
    found = await bridge.find_pages(modality="text", metadata={"k": "é=%20"})
    assert [d.artifact_id for d in found] == [key]
    assert len(await bridge.find_pages(modality=Modality.TEXT)) == 2
