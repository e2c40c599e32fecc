"""The spec (docs/spec/storage-and-persistence.md, a copy of shared/spec) runs as written.

Its Python blocks run in order in one namespace, like a notebook, with ``chuk_ai_session_manager.memory`` read
as ``tierstore``. The only additions are the names the surrounding text takes for granted (``asyncio``,
``datetime``, ``timedelta``, ``BaseModel`` and the ``typing`` names). Blocks that illustrate an interface or a
schema (``class ...`` with no call) run in a scratch namespace of their own, so they do not replace the real
classes, and the schemas are checked against tierstore's models.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import hashlib
import io
import re
import typing
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel

import tierstore
from tierstore import ArtifactsBridge, MemoryPage, Modality, PageTable, StorageTier

SPEC = Path(__file__).resolve().parent.parent / "docs" / "spec" / "storage-and-persistence.md"
SHARED_SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "storage-and-persistence.md"


def _blocks() -> list[str]:
    text = SPEC.read_text()
    return [
        b.replace("chuk_ai_session_manager.memory", "tierstore") for b in re.findall(r"```python\n(.*?)```", text, re.S)
    ]


def _is_illustration(block: str) -> bool:
    return any(isinstance(node, ast.ClassDef) for node in ast.parse(block).body)


def _namespace() -> dict[str, Any]:
    return {
        "asyncio": asyncio,
        "datetime": datetime,
        "timedelta": timedelta,
        "BaseModel": BaseModel,
        **{name: getattr(typing, name) for name in ("Any", "Dict", "List", "Optional")},
    }


async def _run(block: str, namespace: dict[str, Any]) -> None:
    code = compile(block, "<spec>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)  # noqa: S307 - the spec's own code is what is under test
    if asyncio.iscoroutine(result):
        await result


SPEC_SHA256 = "890b283ae0181f5f71efcb69f327b7ee75e6cd5564fc218394737a6b65113cf1"
"""The spec as it was copied from shared/spec: a change to the copy must be a deliberate new copy."""


def test_the_spec_copy_is_the_shared_spec() -> None:
    assert hashlib.sha256(SPEC.read_bytes()).hexdigest() == SPEC_SHA256
    if SHARED_SPEC.exists():  # beside a development checkout: the copy is current
        assert SPEC.read_text() == SHARED_SPEC.read_text()


async def test_every_block_runs_in_order() -> None:
    blocks = _blocks()
    assert len(blocks) >= 20
    namespace = _namespace()
    illustrations = {}
    for block in blocks:
        if "asyncio.run(main())" in block:
            continue  # the Complete Example has a test of its own
        if _is_illustration(block):
            scratch = _namespace() | {"ArtifactsBridge": ArtifactsBridge}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                await _run(block, scratch)
            illustrations.update({k: v for k, v in scratch.items() if isinstance(v, type)})
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the spec uses datetime.utcnow()
            await _run(block, namespace)

    bridge = namespace["bridge"]
    assert isinstance(bridge, ArtifactsBridge)
    assert namespace["loaded"].content == "Important message content"
    assert len(namespace["restored_pages"]) == 3
    # "Accessing Metadata" asks for the artifact that "Deleting Pages" deleted, so it finds none and prints nothing.
    assert namespace["artifact_id"] == "mem_L3_1"
    assert namespace["metadata"] is None
    assert namespace["tier"] in {StorageTier.L2, StorageTier.L3, StorageTier.L4}

    # The functions the spec defines, called as its text describes them.
    table = PageTable()
    page = MemoryPage(page_id="msg_evict", modality=Modality.TEXT, content="evict me", storage_tier=StorageTier.L0)
    table.register(page)
    table.mark_dirty(page.page_id)
    artifact = await namespace["evict_to_storage"](table, bridge, page)
    entry = table.lookup(page.page_id)
    assert entry is not None
    assert (entry.tier, entry.artifact_id, entry.dirty) == (StorageTier.L3, artifact, False)
    faulted = await namespace["fault_from_storage"](table, bridge, page.page_id)
    assert faulted == page
    assert table.lookup(page.page_id).access_count == 1  # type: ignore[union-attr]
    assert await namespace["fault_from_storage"](table, bridge, "never_registered") is None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        segment = await namespace["on_segment_complete"]([page])
    segment_manifest = await bridge.get_checkpoint_manifest(segment)
    assert segment_manifest is not None
    assert segment_manifest.name.startswith("segment_")
    before = await bridge.list_checkpoints()
    await namespace["cleanup_old_checkpoints"](bridge, max_age_days=0)
    assert before
    assert await bridge.list_checkpoints() == []
    assert (await bridge.load_page(await namespace["safe_store"](bridge, page))) == page

    # The schemas the spec shows are fields of tierstore's models.
    for name in ("CheckpointManifest", "CheckpointEntry", "PageMetadata"):
        shown = set(cast(type[BaseModel], illustrations[name]).model_fields)
        assert shown <= set(getattr(tierstore, name).model_fields), name
    assert isinstance(illustrations["CustomBackend"], type)


def test_complete_example_prints_what_it_says() -> None:
    block = next(b for b in _blocks() if "asyncio.run(main())" in b)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "<spec>", "exec"), {})  # noqa: S102 - the spec's own code is what is under test
    lines = [line for line in out.getvalue().splitlines() if line]
    assert lines[:5] == [f"Evicted msg_{i:03d} -> mem_L3_{i + 1}" for i in range(5)]
    assert re.fullmatch(r"Checkpoint: ckpt_\d{8}T\d{12}_[0-9a-f]{8}", lines[5])
    assert lines[6] == "Restored 10 pages"
    assert lines[7] == "Storage: 15 pages stored"
