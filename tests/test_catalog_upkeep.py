"""Catalog snapshots under maintenance (issue 28), on the local rigs: ``gc`` deletes the snapshots the newest readable
one supersedes and the unreadable ones once past the grace period, never the newest readable; ``fsck`` reports an
unreadable snapshot as a problem (never foreign); ``rebuild_catalog`` writes one a later reader trusts; erasing a
session deletes its snapshots; ``migrate`` copies none (the tokens they hold are the source store's)."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.soak import scaled
from tests.wrappers import Counted
from tierstore import ArtifactsBridge, MemoryPage, Modality, Store
from tierstore.artifacts.scoped import PrefixedBackend
from tierstore.backends.base import StorageBackend
from tierstore.backends.filesystem import FileSystemBackend
from tierstore.backends.memory import InMemoryBackend
from tierstore.catalog import FOLD_AT, Catalog, snapshot_keys
from tierstore.catalog.upkeep import rebuild_catalog, survey
from tierstore.maintenance import fsck, gc, migrate
from tierstore.scopes import scope_prefix

pytestmark = pytest.mark.bridge_only
PAGES = max(FOLD_AT, scaled(20))


async def filled(bridge: ArtifactsBridge, backend: StorageBackend) -> None:
    """``PAGES`` pages, and then until their listing proves them (the disk gives no token for 2 s after a write)."""
    for n in range(PAGES):
        await bridge.store_page(MemoryPage(page_id=f"p{n}", modality=Modality.TEXT, content=f"c{n}"))
    for _attempt in range(40):
        if all([entry.version is not None async for entry in backend.list("")]):
            return
        await asyncio.sleep(0.25)
    raise AssertionError("no listing tokens after 10 s")


async def snapshots(backend: StorageBackend, prefix: str = "") -> list[str]:
    return (
        snapshot_keys([entry async for entry in PrefixedBackend(backend, prefix).list("cat_")])
        if prefix
        else (snapshot_keys([entry async for entry in backend.list("cat_")]))
    )


async def test_gc_keeps_the_newest_readable_snapshot_and_deletes_the_rest_past_the_grace_period(
    backend: StorageBackend,
) -> None:
    bridge = ArtifactsBridge(backend)
    await filled(bridge, backend)
    first = await rebuild_catalog(backend)
    second = await rebuild_catalog(backend)
    newest = await rebuild_catalog(backend)
    assert first
    assert second
    assert newest
    assert newest > second > first
    await backend.put(newest, b"damaged")  # the newest cannot be read: the one before is current
    report = await fsck(bridge)
    assert [(p.key, p.kind) for p in report.problems] == [(newest, "corrupt")]
    assert report.foreign == []
    assert (await gc(bridge, grace=timedelta(hours=1))).snapshots_deleted == []
    assert sorted((await gc(bridge, grace=timedelta(0))).snapshots_deleted) == [first, newest]
    assert await snapshots(backend) == [second]
    assert (await fsck(bridge)).problems == []
    assert (await gc(bridge, grace=timedelta(0))).snapshots_deleted == []


async def test_a_rebuilt_catalog_spares_every_head(backend: StorageBackend) -> None:
    bridge = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    await filled(bridge, backend)
    scope = bridge.references("test").backend
    assert await rebuild_catalog(scope) is not None
    found = await survey(scope)
    assert found.current is not None
    counted = Counted(backend)
    pages = [entry async for entry in scope.list("mem_")]
    catalog = await Catalog.open(PrefixedBackend(counted, scope_prefix("alice", "s1")), [*pages, found.current])
    counted.reset()
    described = [info async for _entry, info in catalog.describe(pages)]
    assert counted.requests["head"] == 0
    assert all(info is not None for info in described)


async def test_erasure_deletes_snapshots_and_migrate_copies_none(backend: StorageBackend) -> None:
    bridge = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    await filled(bridge, backend)
    prefix = scope_prefix("alice", "s1")
    assert await rebuild_catalog(bridge.references("test").backend) is not None
    assert len(await snapshots(backend, prefix)) == 1
    destination = InMemoryBackend()
    assert (await migrate(backend, destination)).problems == []
    assert await snapshots(destination, prefix) == []
    moved = ArtifactsBridge(destination, user_id="alice", session_id="s1")
    assert len(await moved.find_pages(modality=Modality.TEXT)) == PAGES
    report = await Store(backend).delete_session("alice", "s1", settle=timedelta(0))
    assert report.foreign == []
    assert [entry.key async for entry in backend.list(prefix)] == []


FIND = """
import asyncio, sys
from tierstore import ArtifactsBridge
from tierstore.backends.filesystem import FileSystemBackend

async def main() -> None:
    bridge = ArtifactsBridge(FileSystemBackend(sys.argv[1]), user_id="alice", session_id="s1")
    print(len(await bridge.find_pages(modality="text")))

asyncio.run(main())
"""


async def test_processes_finding_and_folding_at_once_leave_usable_snapshots(tmp_path: Path) -> None:
    backend = FileSystemBackend(str(tmp_path))
    bridge = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    await filled(bridge, backend)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", FIND, str(tmp_path), env=env, stdout=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]
    outputs = [await child.communicate() for child in children]
    assert [child.returncode for child in children] == [0, 0, 0]
    assert [out.strip() for out, _err in outputs] == [str(PAGES).encode()] * 3
    assert 1 <= len(await snapshots(backend, scope_prefix("alice", "s1"))) <= 3
    counted = Counted(backend)
    reader = ArtifactsBridge(counted, user_id="alice", session_id="s1")
    assert len(await reader.find_pages(modality="text")) == PAGES
    assert counted.requests["head"] == PAGES  # every match described afresh, nothing else asked
    assert (await fsck(ArtifactsBridge(backend, user_id="alice", session_id="s1"))).problems == []
    scope = PrefixedBackend(backend, scope_prefix("alice", "s1"))
    listed = [entry async for entry in scope.list("")]
    assert (await Catalog.open(scope, listed)).rows == PAGES  # the newest snapshot proves every page
