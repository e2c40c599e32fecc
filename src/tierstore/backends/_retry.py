"""Bounded retries with exponential backoff and full jitter, shared by the cloud adapters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tierstore.backends.cloud.retry import RetryPolicy
from tierstore.errors import BackendUnavailableError

__all__ = ["RetryPolicy", "retry"]

T = TypeVar("T")


async def retry(
    operation: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    is_transient: Callable[[BaseException], bool],
    describe: str,
) -> T:
    """Run ``operation`` until it succeeds, fails permanently, or the policy's attempts or deadline run out."""
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return await operation()
        except Exception as exc:
            attempt += 1
            if not is_transient(exc):
                raise
            delay = policy.delay(attempt)
            out_of_time = time.monotonic() - started + delay > policy.deadline
            if attempt >= policy.max_attempts or out_of_time:
                raise BackendUnavailableError(
                    f"{describe} failed after {attempt} attempts: {type(exc).__name__}"
                ) from exc
            await asyncio.sleep(delay)
