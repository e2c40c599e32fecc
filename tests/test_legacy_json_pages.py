"""chuk-ai-session-manager's plain JSON pages in a store are read by every call that reads a page, as README says
("Plain JSON pages ... are read too"): ``load_page``, ``get_metadata``, ``fsck`` and ``migrate`` (copied, verified,
skipped when already there) on every rig; a JSON document that is no page is an IntegrityError everywhere.
"""

from __future__ import annotations

import chuk_ai_session_manager.memory as chuk
import pytest

from tierstore import ArtifactsBridge, InMemoryBackend, IntegrityError, StorageTier
from tierstore.backends.base import StorageBackend
from tierstore.maintenance import fsck, migrate

KEY = "mem_L3_5000"
PAGES = {
    "text": chuk.MemoryPage(page_id="old", modality=chuk.Modality.TEXT, content="from chuk"),
    "structured": chuk.MemoryPage(
        page_id="table", modality=chuk.Modality.STRUCTURED, content={"rows": [1, 2]}, page_type=chuk.PageType.CLAIM
    ),
}


async def _put(backend: StorageBackend, data: bytes) -> None:
    await backend.put(KEY, data, metadata={}, tags={}, tier=StorageTier.L3, if_absent=True)


@pytest.mark.parametrize("kind", list(PAGES))
async def test_a_chuk_json_page_is_described_and_migrated(backend: StorageBackend, kind: str) -> None:
    original = PAGES[kind]
    data = original.model_dump_json().encode()
    await _put(backend, data)
    bridge = ArtifactsBridge(backend=backend)
    meta = await bridge.get_metadata(KEY)
    assert meta is not None
    assert (meta.page_id, meta.modality, meta.page_type) == (
        original.page_id,
        original.modality.value,
        original.page_type.value,
    )
    assert (meta.tier, meta.size_bytes, meta.artifact_id, meta.checksum) == ("L3", len(data), KEY, None)
    assert (await fsck(bridge)).problems == []

    destination = InMemoryBackend()
    report = await migrate(backend, destination)
    assert report.problems == []
    assert report.copied == 1
    copied = await ArtifactsBridge(backend=destination).load_page(KEY)
    assert copied is not None
    assert copied.content == original.content
    again = await migrate(backend, destination)  # the copy verifies as the source's: counted, not copied again
    assert (again.problems, again.copied, again.skipped) == ([], 0, 1)


async def test_a_json_document_that_is_no_page_is_an_integrity_error(backend: StorageBackend) -> None:
    await _put(backend, b'{"not": "a page"}')
    with pytest.raises(IntegrityError, match=KEY):
        await ArtifactsBridge(backend=backend).get_metadata(KEY)
    report = await migrate(backend, InMemoryBackend())
    assert [(p.key, p.kind) for p in report.problems] == [(KEY, "corrupt")]


FOUND_BY: list[dict[str, object]] = [
    {"metadata": {"topic": "x"}},
    {"metadata": {"topic": "x", "lang": "fr"}},
    {"metadata": {"topic": "y"}},
    {"metadata": {"absent": ""}},
    {"modality": "text", "metadata": {"topic": "x"}},
    {"modality": "structured", "metadata": {"topic": "x"}},
    {"page_type": "claim", "metadata": {"lang": "fr"}},
    {"tier": "L3", "metadata": {"lang": "fr"}},
    {"tier": "L2", "metadata": {"lang": "fr"}},
]


@pytest.mark.parametrize("kind", list(PAGES))
async def test_a_chuk_json_page_is_found_by_its_own_metadata_from_its_body(backend: StorageBackend, kind: str) -> None:
    """finding.py: a chuk JSON page at the root is described, and matched on its own metadata, from its body (round
    6a: a metadata query never found one)."""
    original = PAGES[kind].model_copy(update={"metadata": {"topic": "x", "lang": "fr"}})
    await _put(backend, original.model_dump_json().encode())
    bridge = ArtifactsBridge(backend=backend)
    for query in FOUND_BY:
        wanted = all(original.metadata.get(k) == v for k, v in query["metadata"].items())  # type: ignore[attr-defined]
        wanted = wanted and query.get("modality", original.modality.value) == original.modality.value
        wanted = wanted and query.get("page_type", original.page_type.value) == original.page_type.value
        wanted = wanted and query.get("tier", "L3") == "L3"
        found = [meta.artifact_id for meta in await bridge.find_pages(**query)]  # type: ignore[arg-type]
        assert found == ([KEY] if wanted else []), query
