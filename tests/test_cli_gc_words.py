"""``gc`` says what it did in the words of what it did: ``--dry-run`` removes nothing and says "would"; what a live
lease (a checkpoint in progress, or one whose writer died and whose lease has not expired) protects is named, with
when the lease expires."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path

from tests.test_cli import Cli, cli  # noqa: F401 - the fixture
from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality
from tierstore.maintenance import gc

DEAD = "ckpt_20260101T000000000000_deadbeef"


async def dead_writer(root: Path) -> str:
    """A checkpoint whose process died after writing one page: its lease is left to expire."""
    async with ArtifactsBridge(backend=FileSystemBackend(root)) as bridge:
        lease = bridge.references("test").lease(DEAD, [])
        await lease.start()
        entry = await bridge.store_leased(MemoryPage(page_id="p", modality=Modality.TEXT, content="x"), owner=DEAD)
        await lease.abandon()
        return entry.artifact_id


async def test_gc_names_what_a_live_lease_keeps(tmp_path: Path) -> None:
    artifact = await dead_writer(tmp_path)
    async with ArtifactsBridge(backend=FileSystemBackend(tmp_path)) as bridge:
        report = await gc(bridge, grace=timedelta(0))
        assert [r.checkpoint for r in report.in_progress] == [DEAD]
        assert report.orphans_deleted == []
        assert await bridge.load_page(artifact) is not None


def test_the_command_says_what_a_lease_keeps_and_a_dry_run_removes_nothing(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
) -> None:
    import asyncio

    store = tmp_path / "store"
    asyncio.run(dead_writer(store))
    stray = store / "tmp" / "put-mem_L3_9-left-by-a-killed-writer"
    stray.write_bytes(b"partial")
    hour_ago = time.time() - 3600
    os.utime(stray, (hour_ago, hour_ago))
    results = cli.batch(
        dry=["gc", "--url", str(store), "--grace", "0s", "--dry-run"],
        dry_json=["gc", "--url", str(store), "--grace", "0s", "--dry-run", "--json"],
    )
    dry = results["dry"].stdout
    assert "would keep what 1 checkpoint(s) in progress wrote (their lease is live):" in dry
    assert f"  {DEAD}  lease expires " in dry
    assert "strays that would be removed" in dry
    assert "removed" not in dry.replace("would be removed", "")
    assert stray.exists()
    report = json.loads(results["dry_json"].stdout)
    assert [r["checkpoint"] for r in report["in_progress"]] == [DEAD]
    assert report["dry_run"] is True


def test_gc_names_a_manifest_it_cannot_read_and_takes_no_orphan_meanwhile(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
) -> None:
    """What an unreadable manifest references is unknown, so gc looks for no orphan; the library's report and the
    command (plain and JSON) name the manifest and the way on."""
    import asyncio

    store = tmp_path / "store"

    async def prepare() -> tuple[str, list[str]]:
        async with ArtifactsBridge(backend=FileSystemBackend(store)) as bridge:
            checkpoint = await bridge.checkpoint([MemoryPage(page_id="p", modality=Modality.TEXT, content="x")], "c")
            return checkpoint, sorted(await bridge.list_pages())

    checkpoint, pages = asyncio.run(prepare())
    (store / "objects" / checkpoint).write_bytes(b"no frame at all")

    async def library() -> None:
        async with ArtifactsBridge(backend=FileSystemBackend(store)) as bridge:
            report = await gc(bridge, grace=timedelta(0))
            assert report.unreadable_manifests == [checkpoint]
            assert report.orphans_deleted == []

    asyncio.run(library())
    results = cli.batch(
        plain=["gc", "--url", str(store), "--grace", "0s"],
        as_json=["gc", "--url", str(store), "--grace", "0s", "--json"],
    )
    assert f"checkpoint manifest {checkpoint} cannot be read" in results["plain"].stdout
    assert f"tierstore checkpoints delete {checkpoint}" in results["plain"].stdout
    assert json.loads(results["as_json"].stdout)["unreadable_manifests"] == [checkpoint]

    async def after() -> list[str]:
        async with ArtifactsBridge(backend=FileSystemBackend(store)) as bridge:
            return sorted(await bridge.list_pages())

    assert asyncio.run(after()) == pages
