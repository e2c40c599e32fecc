"""fork() with id blocks claimed: no id is ever issued in two processes (issue 21 item 7).

A bridge on one local-disk store is forked before it claimed a block, after, in the middle of a block, just after
deleting an id, and while another thread of the parent is storing pages on it through its own event loop; every
child and the parent go on storing with the inherited bridge, and a multiprocessing pool with the fork start method
does the same. Every id issued anywhere is collected: none twice, and each loads the page its own issuer stored.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import threading
from pathlib import Path

from tests.soak import scaled
from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality

_PAGES_EACH = 4
_BRIDGE: ArtifactsBridge | None = None  # the bridge a multiprocessing worker inherits
_GO: list[int] = []
"""The two ends of a pipe children wait on: they store once the parent has closed its end (after its deletes)."""


def _page(tag: str) -> MemoryPage:
    return MemoryPage(page_id=tag, modality=Modality.TEXT, content=f"stored by {tag}")


async def _store(bridge: ArtifactsBridge, who: str, count: int) -> list[tuple[str, str]]:
    issued = []
    for i in range(count):
        tag = f"{who} {os.getpid()} {i}"
        issued.append((await bridge.store_page(_page(tag)), tag))
    return issued


def _fork_children(bridge: ArtifactsBridge, count: int, who: str) -> list[tuple[int, int]]:
    children = []
    for n in range(count):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: store with the inherited bridge on a loop of its own, report, leave at once
            code = 1
            try:
                os.close(read_end)
                os.close(_GO[1])
                os.read(_GO[0], 1)  # until the parent has stored and deleted what it will
                storing = asyncio.wait_for(_store(bridge, f"{who} child {n}", _PAGES_EACH), 60)  # a hang fails
                issued = asyncio.new_event_loop().run_until_complete(storing)
                os.write(write_end, json.dumps(issued).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        children.append((pid, read_end))
    return children


def _collect(children: list[tuple[int, int]]) -> list[tuple[str, str]]:
    issued: list[tuple[str, str]] = []
    for pid, read_end in children:
        with os.fdopen(read_end, "rb") as reader:
            data = reader.read()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        issued.extend((key, tag) for key, tag in json.loads(data))
    return issued


def _pool_task(n: int) -> list[tuple[str, str]]:
    assert _BRIDGE is not None
    return asyncio.new_event_loop().run_until_complete(_store(_BRIDGE, f"pool {n}", _PAGES_EACH))


def test_no_id_is_issued_in_two_processes_whenever_the_bridge_forks(tmp_path: Path) -> None:
    global _BRIDGE
    loop = asyncio.new_event_loop()
    bridge = ArtifactsBridge(backend=FileSystemBackend(tmp_path / "store"))
    children_each = scaled(2)
    issued: list[tuple[str, str]] = []
    deleted: list[str] = []
    forked: list[tuple[int, int]] = []
    _GO[:] = os.pipe()

    forked += _fork_children(bridge, children_each, "before any block")
    issued += loop.run_until_complete(_store(bridge, "parent", 1))
    forked += _fork_children(bridge, children_each, "after the first id")
    issued += loop.run_until_complete(_store(bridge, "parent", _PAGES_EACH))
    forked += _fork_children(bridge, children_each, "mid-block")
    victim = issued[-1][0]
    assert loop.run_until_complete(bridge.delete_page(victim))  # the case of the issue: a deleted id
    deleted.append(victim)
    forked += _fork_children(bridge, children_each, "after a delete")
    issued += loop.run_until_complete(_store(bridge, "parent", _PAGES_EACH))

    # A thread of the parent keeps storing through a loop of its own while the main thread forks.
    stop = threading.Event()
    threaded: list[tuple[str, str]] = []
    # One call at a time, so a fork lands with the only permit taken by a store of the thread's.
    other = ArtifactsBridge(backend=FileSystemBackend(tmp_path / "store"), concurrency=1)

    def keep_storing() -> None:
        thread_loop = asyncio.new_event_loop()
        while not stop.is_set():
            threaded.extend(thread_loop.run_until_complete(_store(other, "thread", 1)))

    thread = threading.Thread(target=keep_storing)
    thread.start()
    try:
        forked += _fork_children(other, children_each, "while a thread stores")
        forked += _fork_children(bridge, children_each, "beside a storing thread")
    finally:
        stop.set()
        thread.join()
    issued += threaded
    # The case of the issue: ids the parent issues and deletes after the forks, before the children store.
    mine = loop.run_until_complete(_store(bridge, "parent", _PAGES_EACH * 3))
    issued += mine
    for key, _ in mine:
        assert loop.run_until_complete(bridge.delete_page(key))
        deleted.append(key)
    os.close(_GO[1])

    _BRIDGE = bridge
    with multiprocessing.get_context("fork").Pool(2) as pool:
        for result in pool.map(_pool_task, range(scaled(4))):
            issued += result
    issued += _collect(forked)
    issued += loop.run_until_complete(_store(bridge, "parent", _PAGES_EACH))

    keys = [key for key, _ in issued]
    assert len(keys) == len(set(keys)), sorted(k for k in set(keys) if keys.count(k) > 1)
    reader = ArtifactsBridge(backend=FileSystemBackend(tmp_path / "store"))
    for key, tag in issued:
        if key not in deleted:
            page = loop.run_until_complete(reader.load_page(key))
            assert page is not None
            assert page.page_id == tag
    assert loop.run_until_complete(reader.load_page(victim)) is None
    loop.close()
