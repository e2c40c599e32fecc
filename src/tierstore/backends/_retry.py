"""Bounded retries with exponential backoff and full jitter, shared by the cloud adapters."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tierstore.errors import BackendUnavailableError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard an adapter tries before it gives up with BackendUnavailableError."""

    max_attempts: int = 6
    base_delay: float = 0.05
    max_delay: float = 2.0
    deadline: float = 30.0
    """Seconds from the first attempt after which no new attempt starts."""

    def delay(self, attempt: int) -> float:
        # "Full jitter": uniform in [0, min(cap, base * 2**attempt)], which spreads racing clients apart.
        return random.uniform(0.0, min(self.max_delay, self.base_delay * (2**attempt)))  # noqa: S311


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
