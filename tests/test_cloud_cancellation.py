"""The shared retry loop never swallows a cancellation of its caller.

And the converse: a CancelledError that no one asked of the caller's task (an SDK cancelling a future it waited
on, as aiohttp's connector does to requests queued for a connection when its session closes, or a thread pool to
calls not yet run) is a failed attempt, retried or ended typed, never a cancellation of a caller who did not cancel.

Python 3.11's ``asyncio.wait_for`` returns the attempt's result when the attempt finishes in the same turn of the
event loop as the caller's cancellation, and the cancellation is lost: a background task (a checkpoint's lease
renewal) that is cancelled then runs on for ever, and whoever awaits it hangs. obstore, whose answers arrive from
another thread, made that turn common.
"""

from __future__ import annotations

import asyncio

import pytest

from tierstore.backends.cloud import Failure, RetryPolicy
from tierstore.backends.cloud.retry import call_with_retries
from tierstore.errors import BackendUnavailableError


async def test_a_caller_cancelled_as_its_attempt_finishes_is_cancelled() -> None:
    loop = asyncio.get_running_loop()

    async def attempt() -> int:
        answer: asyncio.Future[int] = loop.create_future()

        def settle() -> None:
            if not answer.done():
                answer.set_result(1)

        loop.call_soon(settle)
        return await answer

    async def renew_for_ever() -> None:
        while True:
            await call_with_retries(
                attempt, policy=RetryPolicy(), classify=lambda _: Failure("unknown"), what="renew", key=None
            )

    for turns in range(1, 40):  # land the cancellation at every point of the attempt's life
        task = asyncio.ensure_future(renew_for_ever())
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        assert task in done, f"the cancellation after {turns} turns was swallowed"
        assert task.cancelled()


@pytest.mark.parametrize("idempotent", [True, False])
async def test_a_future_cancelled_inside_the_sdk_is_a_failed_attempt_not_a_cancellation(idempotent: bool) -> None:
    loop = asyncio.get_running_loop()
    attempts: list[int] = []

    async def attempt() -> str:
        attempts.append(1)
        if len(attempts) > 1:
            return "answered"
        waiting: asyncio.Future[str] = loop.create_future()
        loop.call_soon(waiting.cancel)  # the pool closing under a queued request: not a cancel of our task
        return await waiting

    async def call() -> str:
        return await call_with_retries(
            attempt,
            policy=RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0),
            classify=lambda _: Failure("unknown"),
            what="get",
            key="k",
            idempotent=idempotent,
        )

    task = asyncio.ensure_future(call())
    if idempotent:
        assert await task == "answered"
        assert len(attempts) == 2
    else:  # an overwrite whose request may have gone out is not sent again
        with pytest.raises(BackendUnavailableError):
            await task
    assert not task.cancelled()
