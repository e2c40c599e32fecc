"""The local-disk store under races between processes: ``set_tier`` against ``delete_page`` (a deleted page never
comes back, at whatever step of the tier change the delete lands), and ``fork()`` while the parent's threads write
(the child's calls never wait on state it inherited mid-call)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.contract.conftest import assert_gone
from tests.reliability.figures import record
from tests.soak import scaled
from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality, ObjectNotFoundError, StorageTier
from tierstore.backends import filesystem

PAGE_BYTES = 256 * 1024  # big enough that a tier change takes a while, small enough for CI


def _page(i: int) -> MemoryPage:
    return MemoryPage(page_id=f"p{i}", modality=Modality.IMAGE, content=bytes([i % 256]) * PAGE_BYTES)


STEPS = {
    "before the object is opened": "open_regular",
    "after it is opened, before it is read": "read_rest",
    "while the new copy is written": "write_all",
    "after the new copy is written, before the swap": "exchange",
}


@pytest.mark.parametrize("when", [*STEPS, "after the swap"])
def test_a_delete_landing_at_any_step_of_set_tier_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """Another process's ``delete_page`` landing at each step of a tier change, in turn."""
    root = tmp_path / "store"
    key = asyncio.run(ArtifactsBridge(backend=FileSystemBackend(root)).store_page(_page(1)))
    deleted: list[bool] = []

    def delete_elsewhere() -> None:
        if not deleted:  # once: the hooked function may be called again by the delete itself
            deleted.append(False)
            deleted[0] = _in_another_process(_delete, root, key)

    hooked = STEPS.get(when, "exchange")
    original: Callable[..., Any] = getattr(filesystem, hooked)

    def hook(*args: Any) -> Any:
        if when != "after the swap":
            delete_elsewhere()
        result = original(*args)
        if when == "after the swap":
            delete_elsewhere()
        return result

    monkeypatch.setattr(filesystem, hooked, hook)
    bridge = ArtifactsBridge(backend=FileSystemBackend(root))

    async def retier() -> None:
        if when == "after the swap":
            await bridge.set_tier(key, StorageTier.L4)
        else:
            with pytest.raises(ObjectNotFoundError):
                await bridge.set_tier(key, StorageTier.L4)
        monkeypatch.undo()
        await assert_gone(bridge, [key], StorageTier.L4)

    asyncio.run(retier())
    assert deleted == [True]
    assert not list((root / "tmp").iterdir())  # the tier change left no temporary file behind


def _in_another_process(target: Callable[..., bool], *args: Any) -> bool:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return bool(pool.apply(target, args))


def _delete(root: Path, key: str) -> bool:
    return asyncio.run(ArtifactsBridge(backend=FileSystemBackend(root)).delete_page(key))


def _retier_until_gone(root: Path, keys: list[str], seed: int, moving: Any) -> int:
    """Moves every page between tiers until each is gone, setting ``moving`` once one tier change succeeded;
    returns how many did."""

    async def run() -> int:
        bridge = ArtifactsBridge(backend=FileSystemBackend(root))
        pending, done, rng = list(keys), 0, random.Random(seed)
        while pending:
            key = rng.choice(pending)
            try:
                await bridge.set_tier(key, rng.choice([StorageTier.L2, StorageTier.L3, StorageTier.L4]))
                done += 1
                moving.set()
            except ObjectNotFoundError:
                pending.remove(key)
        return done

    return asyncio.run(run())


def _delete_all(root: Path, keys: list[str], seed: int, moving: Any) -> list[bool]:
    # The deletes race tier changes under way, however long the changers take to start (a loaded machine): the
    # first waits for one to have succeeded. Bounded, so a changer that never succeeds fails the test, not hangs it.
    moving.wait(timeout=120)

    async def run() -> list[bool]:
        bridge = ArtifactsBridge(backend=FileSystemBackend(root))
        rng, answers = random.Random(seed), []
        for key in rng.sample(keys, len(keys)):
            await asyncio.sleep(rng.random() / 100)
            answers.append(await bridge.delete_page(key))
        return answers

    return asyncio.run(run())


def test_processes_changing_tiers_never_bring_back_what_another_deletes(tmp_path: Path) -> None:
    root = tmp_path / "store"
    rounds, pages, changers = scaled(3), 16, 3

    async def store() -> list[str]:
        bridge = ArtifactsBridge(backend=FileSystemBackend(root))
        return [await bridge.store_page(_page(i)) for i in range(pages)]

    changed = 0
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(changers + 1) as pool:
        for round_ in range(rounds):
            keys = asyncio.run(store())
            moving = manager.Event()
            retiers = [
                pool.apply_async(_retier_until_gone, (root, keys, round_ * 10 + i, moving)) for i in range(changers)
            ]
            answers = pool.apply(_delete_all, (root, keys, round_, moving))
            changed += sum(r.get(timeout=300) for r in retiers)
            assert answers == [True] * pages  # every delete found its page, however the tier changes went
            asyncio.run(assert_gone(ArtifactsBridge(backend=FileSystemBackend(root)), keys, StorageTier.L4))
    assert changed >= rounds  # the tier changes really raced the deletes, in every round
    record("tier changes that raced deletes in other processes, no page brought back", changed, "filesystem")


# -- fork ------------------------------------------------------------------------------------------------------


def test_a_forked_child_uses_the_inherited_store_while_the_parents_threads_keep_writing(tmp_path: Path) -> None:
    """The parent's threads store without pause (its fsync groups and worker threads busy at every fork); each
    child stores and reads through the very backend it inherited, and through a new bridge on it."""
    backend = FileSystemBackend(tmp_path / "store")
    stop = threading.Event()

    def keep_writing(n: int) -> None:
        async def run() -> None:
            i = 0
            while not stop.is_set():
                await asyncio.gather(*(backend.put(f"parent_{n}_{i}_{j}", b"p" * 512) for j in range(16)))
                i += 1

        asyncio.run(run())

    writers = [threading.Thread(target=keep_writing, args=(n,)) for n in range(2)]
    for writer in writers:
        writer.start()
    statuses = []
    try:
        for n in range(scaled(12)):
            child = os.fork()
            if child == 0:  # pragma: no cover - the child reports by its exit status
                signal.alarm(20)  # a call waiting on inherited state forever ends the child by SIGALRM
                os._exit(0 if asyncio.run(_use_inherited(backend, n)) else 1)
            statuses.append(os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]))
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    assert statuses == [0] * len(statuses), f"exit codes (-14: hung until SIGALRM): {statuses}"
    record("children forked while the parent's threads wrote, none hung", len(statuses), "filesystem")


async def _use_inherited(backend: FileSystemBackend, n: int) -> bool:
    await asyncio.gather(*(backend.put(f"child_{n}_{i}", b"c%d" % i) for i in range(8)))
    read = [await backend.get(f"child_{n}_{i}") for i in range(8)]
    bridge = ArtifactsBridge(backend=backend)
    key = await bridge.store_page(_page(n))
    loaded = await bridge.load_page(key)
    return read == [b"c%d" % i for i in range(8)] and loaded is not None and loaded.content == _page(n).content
