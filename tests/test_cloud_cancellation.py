"""The shared retry loop never swallows a cancellation of its caller.

Python 3.11's ``asyncio.wait_for`` returns the attempt's result when the attempt finishes in the same turn of the
event loop as the caller's cancellation, and the cancellation is lost: a background task (a checkpoint's lease
renewal) that is cancelled then runs on for ever, and whoever awaits it hangs. obstore, whose answers arrive from
another thread, made that turn common.
"""

from __future__ import annotations

import asyncio

from tierstore.backends.cloud import Failure, RetryPolicy
from tierstore.backends.cloud.retry import call_with_retries


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
