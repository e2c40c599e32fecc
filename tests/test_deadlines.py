"""The per-call deadline of the shared retry loop (:mod:`tierstore.backends.cloud.deadlines`): one timer per event
loop enforces every call's deadline, so these attack what one timer can get wrong. A deadline shorter than one
already waiting, deadlines nested in one task, a caller's cancellation landing together with the deadline, many
calls at once that end every way, the task's cancellation count afterwards (``asyncio.timeout`` and
``TaskGroup`` rely on it), and event loops that close, which the registry of timers must not keep alive.

And what a deadline must leave behind: nothing. Against a server that trickles every answer one byte a second (no
per-read timeout ever fires), every call of every cloud and data path ends typed at its deadline, ``aclose``
returns, and the process exits, all long before the trickle would end (run in a child process:
``python -m tests.test_deadlines RIG SPEC DEADLINE``)."""

from __future__ import annotations

import asyncio
import gc
import json
import random
import subprocess
import sys
import time
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.faults import FaultProxy
from tests.rigs import load
from tierstore.backends.cloud import CloudOptions, Failure, RetryPolicy
from tierstore.backends.cloud.retry import call_with_retries
from tierstore.enums import StorageTier
from tierstore.errors import BackendUnavailableError

# Bounds here are for a machine under any load: a deadline enforced late by the old timer would take 30 s or more.
PATIENCE = 20.0


def policy(deadline: float) -> RetryPolicy:
    return RetryPolicy(max_attempts=1, base_delay=0.0, max_delay=0.0, deadline=deadline)


async def call(attempt: Callable[[], Awaitable[str]], deadline: float) -> str:
    return await call_with_retries(
        attempt,
        policy=policy(deadline),
        classify=lambda _: Failure("unknown"),
        what="get 'k'",
        key="k",
    )


async def hang() -> str:
    await asyncio.sleep(3600)
    return "never"


async def test_a_short_deadline_started_after_a_long_one_is_enforced_on_time() -> None:
    long = asyncio.ensure_future(call(hang, 60.0))
    await asyncio.sleep(0)
    short = asyncio.ensure_future(call(hang, 0.05))
    done, _ = await asyncio.wait({short}, timeout=PATIENCE)
    assert short in done, "the short deadline waited for the long one's timer"
    with pytest.raises(BackendUnavailableError, match="timeout"):
        short.result()
    assert not long.done()
    long.cancel()
    with pytest.raises(asyncio.CancelledError):
        await long


async def test_many_calls_end_each_their_own_way_and_leave_no_cancellation_behind() -> None:
    rng = random.Random(7)

    async def one(index: int) -> str:
        hangs = rng.random() < 0.5
        deadline = rng.choice([0.02, 0.1, 0.3]) if hangs else 60.0
        pause = 3600.0 if hangs else rng.choice([0.0, 0.01, 0.05])

        async def attempt() -> str:
            await asyncio.sleep(pause)
            return f"done {index}"

        await asyncio.sleep(rng.random() * 0.2)  # deadlines start in every order
        try:
            outcome = await call(attempt, deadline)
        except BackendUnavailableError:
            outcome = "timed out"
        task = asyncio.current_task()
        assert task is not None
        assert task.cancelling() == 0, "a timeout left its cancellation counted on the task"
        async with asyncio.timeout(PATIENCE):  # a timeout of the caller's own still works after ours
            await asyncio.sleep(0)
        assert outcome == ("timed out" if hangs else f"done {index}")
        return outcome

    outcomes = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(300))), PATIENCE * 3)
    assert 100 < outcomes.count("timed out") < 200


async def test_an_inner_deadline_times_out_the_inner_call_alone() -> None:
    async def outer_attempt() -> str:
        with pytest.raises(BackendUnavailableError):
            await call(hang, 0.05)
        return "outer went on"

    assert await asyncio.wait_for(call(outer_attempt, 60.0), PATIENCE) == "outer went on"


async def test_an_outer_deadline_cuts_through_an_inner_call_and_is_reported_by_the_outer() -> None:
    inner_saw: list[str] = []

    async def outer_attempt() -> str:
        try:
            return await call(hang, 60.0)
        except asyncio.CancelledError:
            inner_saw.append("cancelled")  # the inner call let the cancellation through: not its deadline
            raise

    with pytest.raises(BackendUnavailableError, match="timeout"):
        await asyncio.wait_for(call(outer_attempt, 0.05), PATIENCE)
    assert inner_saw == ["cancelled"]


async def test_a_caller_cancelling_as_the_deadline_fires_is_cancelled_not_timed_out() -> None:
    loop = asyncio.get_running_loop()
    task: asyncio.Task[str] | None = None

    async def attempt() -> str:
        answer: asyncio.Future[str] = loop.create_future()

        def caller_cancels_too(future: asyncio.Future[str]) -> None:
            # Runs in the same turn as the deadline's cancellation, before the task wakes to handle it.
            if future.cancelled() and task is not None:
                task.cancel()

        answer.add_done_callback(caller_cancels_too)
        return await answer

    task = asyncio.ensure_future(call(attempt, 0.05))
    done, _ = await asyncio.wait({task}, timeout=PATIENCE)
    assert task in done
    assert task.cancelled(), "the caller's cancellation became a timeout"


async def test_deadlines_work_on_a_second_event_loop_after_the_first_closed() -> None:
    def run_once() -> None:
        async def main() -> None:
            with pytest.raises(BackendUnavailableError):
                await call(hang, 0.05)

        asyncio.run(asyncio.wait_for(main(), PATIENCE))

    await asyncio.to_thread(run_once)
    await asyncio.to_thread(run_once)


async def test_a_closed_event_loop_is_freed_whether_its_calls_ended_timed_out_or_were_cancelled() -> None:
    async def quick() -> str:
        return "done"

    async def main(ending: str) -> None:
        if ending == "ended":
            assert await call(quick, 30.0) == "done"  # the timer is still armed, 30 s ahead, when the loop closes
        elif ending == "fired":
            with pytest.raises(BackendUnavailableError):
                await call(hang, 0.05)
        else:  # the caller cancels the call while it waits on its deadline; the loop closes right after
            waiting = asyncio.ensure_future(call(hang, 30.0))
            await asyncio.sleep(0.01)
            waiting.cancel()

    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    def run(ending: str) -> None:
        loop = asyncio.new_event_loop()
        loops.append(weakref.ref(loop))
        try:
            loop.run_until_complete(asyncio.wait_for(main(ending), PATIENCE))
        finally:
            loop.close()

    for ending in ("ended", "fired", "cancelled") * 2:
        await asyncio.to_thread(run, ending)
    gc.collect()
    assert [ref() for ref in loops] == [None] * len(loops), "a closed loop is kept alive by its deadlines"


# -- nothing a call started outlives its deadline --------------------------------------------------------------

TRICKLE_DEADLINE = 1.5
TRICKLE_POOL = 3
"""Fewer connections (GCS: threads) than calls: a call queued behind blocked ones must not wait for them either."""


async def _every_call_against(rig: str, spec: dict[str, Any], deadline: float) -> dict[str, Any]:
    """In the child: every kind of call at once onto a trickling server, then ``aclose``; what each ended with."""
    options = CloudOptions(
        connect_timeout=1.0,
        read_timeout=2.0,
        pool_size=TRICKLE_POOL,
        retry=RetryPolicy(max_attempts=100, base_delay=0.05, max_delay=0.2, deadline=deadline),
    )
    backend = load(rig).open_backend(spec, options)

    async def drain() -> None:
        async for _ in backend.list("mem_"):
            pass

    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "create": lambda: backend.put("mem_L3_1", b"x" * 2000, if_absent=True),
        "overwrite": lambda: backend.put("mem_L3_2", b"y" * 2000),
        "get": lambda: backend.get("mem_L3_3"),
        "get_range": lambda: backend.get_range("mem_L3_3", 10, 20),
        "head": lambda: backend.head("mem_L3_3"),
        "list": drain,
        "delete": lambda: backend.delete("mem_L3_3"),
        "set_tier": lambda: backend.set_tier("mem_L3_3", StorageTier.L4),
    }

    async def outcome(call: Callable[[], Awaitable[object]]) -> str:
        try:
            await call()
        except Exception as exc:  # noqa: BLE001 - the parent checks the type
            return type(exc).__name__
        return "returned"

    started = time.monotonic()
    outcomes = dict(zip(calls, await asyncio.gather(*(outcome(c) for c in calls.values())), strict=True))
    ended = time.monotonic()
    await backend.aclose()
    closed = time.monotonic()
    # Again, closing the backend while every call is still blocked: aclose must not wait for them either.
    running = [asyncio.ensure_future(outcome(c)) for c in calls.values()]
    await asyncio.sleep(deadline / 3)
    closing = time.monotonic()
    await backend.aclose()
    closed_while_running = time.monotonic() - closing
    again = await asyncio.gather(*running)
    await backend.aclose()  # what the calls reopened to retry after the first close
    return {
        "outcomes": outcomes,
        "calls_took": ended - started,
        "aclose_took": closed - ended,
        "aclose_while_running_took": closed_while_running,
        "outcomes_after_aclose": sorted(set(again)),
    }


async def test_nothing_a_call_started_outlives_its_deadline(network_rig: str, rig_server: Callable[[str], Any]) -> None:
    rig = load(network_rig)
    spec = rig_server(network_rig).new_store()
    async with FaultProxy(rig.upstream(spec), share=1.0, faults=["trickle"], trickle_seconds=1.0) as proxy:
        command = [sys.executable, "-m", "tests.test_deadlines", network_rig, json.dumps(rig.through(spec, proxy.url))]
        started = time.monotonic()
        child = await asyncio.create_subprocess_exec(
            *command, str(TRICKLE_DEADLINE), cwd=Path(__file__).parent.parent, stdout=subprocess.PIPE
        )
        try:
            out, _ = await asyncio.wait_for(child.communicate(), 60)
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
        lived = time.monotonic() - started
        assert proxy.injected["trickle"] >= TRICKLE_POOL  # calls reached the server, whose answers take minutes
    report = json.loads(out)
    assert child.returncode == 0, report
    print(network_rig, report, f"child lived {lived:.1f} s")
    assert report["outcomes"] == dict.fromkeys(report["outcomes"], "BackendUnavailableError")
    # Bounds on hanging, not speeds: the deadline plus slack for a loaded machine (and the child's imports), where a
    # request left blocked would keep the child alive for the minutes its trickled answer takes.
    assert report["calls_took"] < TRICKLE_DEADLINE + 10
    assert report["aclose_took"] < 10
    assert report["aclose_while_running_took"] < 10
    assert set(report["outcomes_after_aclose"]) <= {"BackendUnavailableError"}
    assert lived < TRICKLE_DEADLINE + 30


if __name__ == "__main__":
    result = asyncio.run(_every_call_against(sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3])))
    print(json.dumps(result), flush=True)
