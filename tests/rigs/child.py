"""Bridge work in a child process onto a rig's store: ``python -m tests.rigs.child RIG SPEC_JSON ACTION N [ARG]``.

Each action prints one JSON line on stdout when it finishes:

* ``store N [CONCURRENCY]`` - stores N pages (content ``"<pid>:<i>"``) and prints their artifact ids;
* ``store-same N [CONCURRENCY]`` - stores N byte-identical pages (the same in every process: one page, one
  created_at) and prints their artifact ids;
* ``checkpoint N BASE`` - restores checkpoint BASE, changes half of its pages, adds N new ones and checkpoints
  them all (so it reuses artifacts), under a lease of ``CHILD_LEASE_TTL``; the parent kills it at a random moment;
* ``churn N`` - N rounds of: checkpoint 30 shared page ids (a few changed per round), delete one listed checkpoint,
  restore another; prints the failures it saw (a restore that failed while its checkpoint was still listed).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.rigs import load
from tierstore import ArtifactsBridge, IntegrityError, MemoryPage, Modality, ObjectNotFoundError

CHILD_LEASE_TTL = timedelta(seconds=2)
"""Short, so that the parent sees a killed writer's lease expire within the test."""
SAME_PAGE = MemoryPage(
    page_id="same", modality=Modality.TEXT, content="identical", created_at=datetime(2026, 1, 1, tzinfo=UTC)
)
SAME_PAGE.last_accessed = SAME_PAGE.created_at


def _page(page_id: str, content: str) -> MemoryPage:
    return MemoryPage(page_id=page_id, modality=Modality.TEXT, content=content)


async def _store(bridge: ArtifactsBridge, count: int, concurrency: int, same: bool = False) -> list[str]:
    limit = asyncio.Semaphore(concurrency)
    pid = os.getpid()

    async def one(i: int) -> str:
        async with limit:
            return await bridge.store_page(SAME_PAGE if same else _page(f"p{pid}_{i}", f"{pid}:{i}"))

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _checkpoint(bridge: ArtifactsBridge, count: int, base: str) -> str:
    pages = await bridge.restore_checkpoint(base)
    print("ready", flush=True)  # the parent times its kill from here
    for page in pages[::2]:
        page.content = f"changed by {os.getpid()}"
    pages += [_page(f"new{os.getpid()}_{i}", "x" * 512) for i in range(count)]
    return await bridge.checkpoint(pages, name=f"child {os.getpid()}")


async def churn(bridge: ArtifactsBridge, rounds: int) -> list[str]:
    failures = []
    rng = random.Random(os.getpid())
    pages = [_page(f"shared{i}", f"v0 {i}") for i in range(30)]
    for round_ in range(rounds):
        for page in rng.sample(pages, 3):
            page.content = f"{os.getpid()} round {round_}"
        await bridge.checkpoint(pages, name=f"{os.getpid()} {round_}")
        listed = await bridge.list_checkpoints()
        if len(listed) > 2:
            await bridge.delete_checkpoint(rng.choice(listed[:-1]))
        target = rng.choice(await bridge.list_checkpoints())
        try:
            await ArtifactsBridge(backend=bridge.backend).restore_checkpoint(target)
        except (IntegrityError, ObjectNotFoundError) as exc:
            if target in await bridge.list_checkpoints():
                failures.append(f"{target}: {exc}")
    return failures


async def _run(rig: str, spec: dict[str, Any], action: str, count: int, extra: str | None) -> object:
    backend = load(rig).open_backend(spec)
    # A checkpoint of few uploads at a time lasts long enough for the parent to kill it mid-way on a fast disk.
    concurrency = 4 if action == "checkpoint" else 32
    bridge = ArtifactsBridge(backend=backend, lease_ttl=CHILD_LEASE_TTL, concurrency=concurrency)
    try:
        if action in ("store", "store-same"):
            return await _store(bridge, count, int(extra or "1"), same=action == "store-same")
        if action == "checkpoint":
            assert extra is not None
            return await _checkpoint(bridge, count, extra)
        if action == "churn":
            return await churn(bridge, count)
        raise SystemExit(f"unknown action {action!r}")
    finally:
        await backend.aclose()


def main() -> None:
    rig, spec, action, count = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    extra = sys.argv[5] if len(sys.argv) > 5 else None
    print(json.dumps(asyncio.run(_run(rig, spec, action, count, extra))), flush=True)


if __name__ == "__main__":
    main()
