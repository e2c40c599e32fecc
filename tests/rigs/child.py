"""Bridge work in a child process onto a rig's store: ``python -m tests.rigs.child RIG SPEC_JSON ACTION N [ARG...]``.

Each action prints one JSON line on stdout when it finishes:

* ``store N [CONCURRENCY]`` - stores N pages (content ``"<pid>:<i>"``) and prints their artifact ids;
* ``store-same N [CONCURRENCY]`` - stores N byte-identical pages (the same in every process: one page, one
  created_at) and prints their artifact ids;
* ``checkpoint N BASE [AT]`` - restores checkpoint BASE, prints ``ready``, changes half of its pages, adds N new
  ones and checkpoints them all (so it reuses artifacts), under a lease of ``CHILD_LEASE_TTL``; prints the
  checkpoint's id and how many storage calls it made (``{"checkpoint": ..., "calls": ...}``). With AT, the AT-th
  storage call of the checkpoint goes out announced by a line ``stopped`` and no later one goes out: the parent
  SIGKILLs the child on that line (:class:`StopAt`);
* ``churn N`` - N rounds of: checkpoint 30 shared page ids (a few changed per round), delete one listed checkpoint,
  restore another; prints the failures it saw (a restore that failed while its checkpoint was still listed).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.rigs import load
from tierstore import ArtifactsBridge, IntegrityError, MemoryPage, Modality, ObjectNotFoundError
from tierstore.backends.base import ListEntry, StorageBackend

CHILD_LEASE_TTL = timedelta(seconds=2)
"""Short, so that the parent sees a killed writer's lease expire within the test."""
SAME_PAGE = MemoryPage(
    page_id="same", modality=Modality.TEXT, content="identical", created_at=datetime(2026, 1, 1, tzinfo=UTC)
)
SAME_PAGE.last_accessed = SAME_PAGE.created_at


_CALLS = ("put", "get", "get_range", "head", "delete", "delete_many", "delete_if_version", "set_tier", "restore")


class StopAt:
    """Delegates to ``inner``; once counting (:meth:`count`), numbers the storage calls, the lease's renewals aside
    (they run on their own schedule, so their number depends on the machine's speed). The ``at``-th call goes out
    announced by a line ``stopped`` on stdout and no later one goes out: the parent SIGKILLs the process on that
    line, while the calls up to the ``at``-th may still be in flight (on disk, a file write may be cut short). So a
    kill lands at a random step of the checkpoint however busy the machine is (a kill after a delay on the wall
    clock lands after the checkpoint whenever the checkpoint ran faster than when it was timed)."""

    def __init__(self, inner: StorageBackend, at: int | None) -> None:
        self.inner = inner
        self.at = at
        self.calls: int | None = None

    def count(self) -> None:
        """Number the calls from now on."""
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in _CALLS:
            return attribute

        async def counted(*args: Any, **kwargs: Any) -> Any:
            await self._tick()
            return await attribute(*args, **kwargs)

        return counted

    def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        async def entries() -> AsyncIterator[ListEntry]:
            await self._tick()
            async for entry in self.inner.list(prefix):
                yield entry

        return entries()

    async def _tick(self) -> None:
        task = asyncio.current_task()
        if self.calls is None or (task is not None and task.get_name().startswith("tierstore-lease")):
            return
        self.calls += 1
        if self.at is None or self.calls < self.at:
            return
        if self.calls == self.at:
            print("stopped", flush=True)
            return
        await asyncio.Event().wait()  # never set: the parent kills this process


def _page(page_id: str, content: str) -> MemoryPage:
    return MemoryPage(page_id=page_id, modality=Modality.TEXT, content=content)


async def _store(bridge: ArtifactsBridge, count: int, concurrency: int, same: bool = False) -> list[str]:
    limit = asyncio.Semaphore(concurrency)
    pid = os.getpid()

    async def one(i: int) -> str:
        async with limit:
            return await bridge.store_page(SAME_PAGE if same else _page(f"p{pid}_{i}", f"{pid}:{i}"))

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _checkpoint(bridge: ArtifactsBridge, stopper: StopAt, count: int, base: str) -> dict[str, Any]:
    pages = await bridge.restore_checkpoint(base)
    print("ready", flush=True)
    stopper.count()
    for page in pages[::2]:
        page.content = f"changed by {os.getpid()}"
    pages += [_page(f"new{os.getpid()}_{i}", "x" * 512) for i in range(count)]
    checkpoint = await bridge.checkpoint(pages, name=f"child {os.getpid()}")
    return {"checkpoint": checkpoint, "calls": stopper.calls}


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


async def _run(rig: str, spec: dict[str, Any], action: str, count: int, extra: list[str]) -> object:
    backend = load(rig).open_backend(spec)
    # A checkpoint of few uploads at a time has many steps in flight at once for a kill to land among.
    concurrency = 4 if action == "checkpoint" else 32
    bridge = ArtifactsBridge(backend=backend, lease_ttl=CHILD_LEASE_TTL, concurrency=concurrency)
    try:
        if action in ("store", "store-same"):
            return await _store(bridge, count, int(extra[0]) if extra else 1, same=action == "store-same")
        if action == "checkpoint":
            stopper = StopAt(backend, int(extra[1]) if len(extra) > 1 else None)
            bridge = ArtifactsBridge(backend=stopper, lease_ttl=CHILD_LEASE_TTL, concurrency=concurrency)
            return await _checkpoint(bridge, stopper, count, extra[0])
        if action == "churn":
            return await churn(bridge, count)
        raise SystemExit(f"unknown action {action!r}")
    finally:
        await backend.aclose()


def main() -> None:
    rig, spec, action, count = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    extra = sys.argv[5:]
    print(json.dumps(asyncio.run(_run(rig, spec, action, count, extra))), flush=True)


if __name__ == "__main__":
    main()
