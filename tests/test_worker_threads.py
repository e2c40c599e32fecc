"""The disk store's worker threads: every outcome reaches its caller, a cancelled call ends before its caller
does, at most ``size`` calls run at once, and a forked child has threads of its own."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from tierstore import FileSystemBackend
from tierstore.backends.worker_threads import WorkerThreads, shared


async def test_each_caller_gets_its_own_result_or_error() -> None:
    threads = WorkerThreads(4, "test-outcomes")

    def work(i: int) -> int:
        if i % 3 == 0:
            raise ValueError(i)
        if i % 3 == 1:
            raise OSError(i, "from the thread")
        return i * 10

    outcomes = await asyncio.gather(*(threads.run(work, i) for i in range(300)), return_exceptions=True)
    for i, outcome in enumerate(outcomes):
        if i % 3 == 2:
            assert outcome == i * 10
        else:
            assert isinstance(outcome, ValueError if i % 3 == 0 else OSError)
            assert outcome.args[0] == i


async def test_at_most_size_calls_run_at_once_and_all_finish() -> None:
    threads = WorkerThreads(3, "test-bound")
    lock = threading.Lock()
    running, most = 0, 0
    three_at_once = threading.Barrier(3)

    def work(i: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        if i < 3:
            three_at_once.wait()  # the first three calls can only end if three threads run at once
        with lock:
            running -= 1
        return i

    assert await asyncio.gather(*(threads.run(work, i) for i in range(200))) == list(range(200))
    assert most == 3


class _Gate:
    """What a blocking call waits on: it says when it has started, and returns once released."""

    def __init__(self) -> None:
        self.started, self.released = threading.Event(), threading.Event()

    def hold(self) -> None:
        self.started.set()
        self.released.wait()

    async def until_started(self) -> None:
        await asyncio.to_thread(self.started.wait)


@pytest.mark.parametrize("cancellations", [1, 3])
async def test_a_cancelled_call_ends_before_its_caller_does(cancellations: int) -> None:
    threads = WorkerThreads(2, "test-cancel")
    gate = _Gate()
    events: list[str] = []

    def work() -> None:
        gate.hold()
        events.append("call ended")

    async def caller() -> None:
        try:
            await threads.run(work)
        finally:
            events.append("caller ended")

    task = asyncio.ensure_future(caller())
    await gate.until_started()
    for _ in range(cancellations):
        task.cancel()
        for _ in range(50):
            await asyncio.sleep(0)
        assert not task.done()  # still waiting for its call
    gate.released.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events == ["call ended", "caller ended"]


async def test_a_cancelled_call_that_has_not_started_never_runs() -> None:
    threads = WorkerThreads(1, "test-queued")
    gate = _Gate()
    ran: list[str] = []

    first = asyncio.ensure_future(threads.run(gate.hold))
    await gate.until_started()
    queued = asyncio.ensure_future(threads.run(ran.append, "queued call"))
    await asyncio.sleep(0)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued  # at once: the only thread is still busy with the first call
    gate.released.set()
    await first
    await threads.run(ran.append, "later call")
    assert ran == ["later call"]


async def test_a_forked_child_stores_and_reads_with_threads_of_its_own(tmp_path: Path) -> None:
    backend = FileSystemBackend(tmp_path)
    await asyncio.gather(*(backend.put(f"parent_{i}", b"p") for i in range(64)))  # its threads, all started
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports by its exit status

        async def in_child() -> bool:
            store = FileSystemBackend(tmp_path)
            for i in range(40):  # one at a time: threads the child lacks would leave each call waiting
                await store.put(f"child_{i}", b"c%d" % i)
            return all([await store.get(f"child_{i}") == b"c%d" % i for i in range(40)])

        os._exit(0 if asyncio.run(asyncio.wait_for(in_child(), 60)) else 1)
    _, status = await asyncio.to_thread(os.waitpid, child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert await backend.get("child_39") == b"c39"
    assert shared(32, "tierstore-disk") is shared(32, "tierstore-disk")
