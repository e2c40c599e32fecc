"""Checkpoints are listed oldest first by the store's time, whatever the clocks of the hosts that wrote them say:
``list_checkpoints``, the command line's ``checkpoints``, and a chuk agent restoring the latest one."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Store
from tests.test_cli import Cli, target
from tierstore import ArtifactsBridge, MemoryPage, Modality
from tierstore.backends.base import StorageBackend
from tierstore.clock import SkewedClock
from tierstore.protocol import References, as_utc

SKEWS = (timedelta(days=1), -timedelta(days=1), timedelta(0))
"""The hosts that checkpoint in turn: one a day ahead, one a day behind, one right."""


async def until_the_store_passes(backend: StorageBackend, key: str) -> None:
    """Wait until the store's clock is past ``key``'s last-modified time, so the next write is dated later (S3 and
    Azure count whole seconds)."""
    info = await backend.head(key)
    assert info is not None
    written = as_utc(info.last_modified)
    assert written is not None
    refs = References(backend, concurrency=4)
    for _ in range(100):
        now = await refs.store_time()
        if now is not None and now > written:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the store's clock did not pass {written}")


async def _checkpoint_from_each_host(store: Store) -> list[str]:
    made: list[str] = []
    for i, skew in enumerate(SKEWS):
        backend = store.open()
        async with ArtifactsBridge(backend=backend, clock=SkewedClock(skew)) as bridge:
            page = MemoryPage(page_id=f"p{i}", modality=Modality.TEXT, content=f"turn {i}")
            made.append(await bridge.checkpoint([page], f"turn{i}"))
            await until_the_store_passes(backend, made[-1])
    return made


async def test_checkpoints_are_listed_in_the_order_the_store_took_them(store: Store) -> None:
    made = await _checkpoint_from_each_host(store)
    assert sorted(made) != made  # the ids, dated by each host's clock, say another order
    for skew in SKEWS:  # whichever host asks
        async with ArtifactsBridge(backend=store.open(), clock=SkewedClock(skew)) as bridge:
            assert await bridge.list_checkpoints() == made


@pytest.mark.one_data_path
async def test_the_command_line_lists_checkpoints_in_the_stores_order(store: Store, tmp_path: Path) -> None:
    if store.rig == "memory":
        pytest.skip("memory:// lives for one command: there is no store to list from the command line")
    made = await _checkpoint_from_each_host(store)
    url, env = target(store)
    url = url.removesuffix("/agent")  # the rigs' backends store at the bucket's root
    cli = Cli(cwd=tmp_path, env={"HOME": str(tmp_path / "home"), **env})
    listed = json.loads(cli("checkpoints", "list", "--url", url, "--json").stdout)
    assert [row["checkpoint_id"] for row in listed] == made
    created = [datetime.fromisoformat(row["created_at"]) for row in listed]
    assert created != sorted(created)  # each as its host's clock dated it
