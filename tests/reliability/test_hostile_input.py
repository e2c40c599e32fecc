"""Hostile input, property-based: every page either round-trips exactly or is refused before any request.

Every write that reaches a backend is checked against the limits all clouds share (key alphabet, metadata names
and ASCII values inside 2 KB, at most 10 tags in the S3/Azure character set), so nothing invalid ever reaches a
cloud API; on the filesystem, nothing is created outside the store's root.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings, strategies as st

from tests.conftest import Store
from tests.reliability.figures import record
from tests.soak import scaled
from tests.wrappers import Observed
from tierstore import ArtifactsBridge, InvalidInputError, MemoryPage, Modality
from tierstore.backends.base import check_key, check_metadata, check_tags
from tierstore.enums import StorageTier

LOCAL_EXAMPLES = scaled(300)
CLOUD_EXAMPLES = scaled(30)

hostile_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40) | st.sampled_from(
    ["", "../", "../../etc/passwd", "/", "a/b", "\x00", "\r\n", "\u202e", "😀" * 300, "x" * 1025, "%2F", "CON"]
)
# Plain text beside the hostile: a page of only hostile fields is nearly always refused, and Hypothesis' CI profile
# (loaded when ``CI`` is set) derandomizes, so without it a cloud rig's 30 examples could all be refusals.
any_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20) | hostile_text
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)
contents = st.none() | any_text | st.binary(max_size=4096) | json_values | st.tuples(st.integers())


@st.composite
def pages(draw: st.DrawFn) -> MemoryPage:
    return MemoryPage(
        page_id=draw(any_text),
        modality=draw(st.sampled_from(Modality)),
        content=draw(contents),
        caption=draw(st.none() | any_text),
        transcript=draw(st.none() | any_text),
        provenance=draw(st.lists(any_text, max_size=3)),
        metadata=draw(st.dictionaries(any_text, json_values, max_size=5)),
        storage_tier=draw(st.sampled_from([StorageTier.L0, StorageTier.L1, StorageTier.L2, StorageTier.L3])),
    )


def _valid_for_every_cloud(key: str, metadata: Mapping[str, str] | None, tags: Mapping[str, str] | None) -> None:
    """A write the bridge sends must pass the shared limits; failing them is a bridge bug, not a refusal."""
    try:
        check_key(key)
        check_metadata(metadata)
        check_tags(tags)
    except InvalidInputError as exc:
        raise AssertionError(f"the bridge sent a write some cloud would reject: {exc}") from exc


async def _store_or_refuse(guard: Observed, bridge: ArtifactsBridge, page: MemoryPage) -> str:
    before = sum(guard.puts.values())
    try:
        artifact = await bridge.store_page(page)
    except InvalidInputError as exc:
        refusal = str(exc)
    else:
        loaded = await bridge.load_page(artifact)
        assert loaded == page
        metadata = await bridge.get_metadata(artifact)
        assert metadata is not None
        assert metadata.page_id == page.page_id
        return "round-tripped"
    assert refusal, "a refusal says why"
    assert sum(guard.puts.values()) == before, "a refused page must not reach the backend"
    return "refused"


def _run_property(store: Store, examples: int) -> dict[str, int]:
    """One event loop, backend and bridge for every example: each page is stored as an artifact of its own, so
    what earlier examples left in the store changes nothing a later one checks."""
    outcomes = {"round-tripped": 0, "refused": 0}
    with asyncio.Runner() as runner:
        backend = store.open()
        guard = Observed(backend, check_put=_valid_for_every_cloud)
        bridge = ArtifactsBridge(backend=guard)

        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @example(page=MemoryPage(page_id="plain", modality=Modality.TEXT, content="a plain page"))
        @example(page=MemoryPage(page_id="../\x00", modality=Modality.TEXT, content="a hostile page id"))
        @given(page=pages())
        def check(page: MemoryPage) -> None:
            outcomes[runner.run(_store_or_refuse(guard, bridge, page))] += 1

        try:
            check()
        finally:
            runner.run(backend.aclose())
    return outcomes


def test_hostile_pages_round_trip_or_are_refused(store: Store, rig: str) -> None:
    examples = LOCAL_EXAMPLES if rig in {"memory", "filesystem"} else CLOUD_EXAMPLES
    outcomes = _run_property(store, examples)
    assert outcomes["round-tripped"] > 0
    assert outcomes["refused"] > 0
    record("hostile inputs tried", sum(outcomes.values()), rig)
    record("hostile inputs refused before any request", outcomes["refused"], rig)


def test_nothing_leaves_the_filesystem_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outcomes = _run_property(Store("filesystem", {"root": str(root)}), LOCAL_EXAMPLES)
    assert outcomes["round-tripped"] > 0
    outside = [p for p in tmp_path.rglob("*") if root not in p.parents and p != root]
    assert outside == []
    assert {p.relative_to(root).parts[0] for p in root.rglob("*") if p.is_file()} <= {"objects", ".tierstore"}
