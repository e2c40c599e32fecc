"""The one retry loop of every cloud adapter: bounded attempts, backoff with full jitter, one deadline per call.

A call (one operation of the protocol, e.g. one ``get``) may make several attempts. An attempt that fails is
tried again only when its :class:`~tierstore.backends.cloud.failure.Failure` is transient and, for a request
that is not idempotent (an overwriting ``put``), only when the service certainly did not apply it. No attempt
starts after ``deadline`` seconds, and the whole call ends by then: an attempt still running is abandoned as a
timeout. A cancellation that no one asked of the calling task (an SDK cancelling a future it waited on, as a
closing connection pool does) is a failed attempt, never a CancelledError for a caller who did not cancel. Moving
data takes longer, so a call that carries ``size`` bytes gets one more second per MiB. The error a call ends with
chains the SDK's as text with credentials removed (:func:`~tierstore.backends.cloud.redact.sanitized`). Each
attempt that is tried again is logged at DEBUG on this module's logger (the call, the attempt, the class of failure,
what was raised, the pause); the ``tierstore`` loggers are scrubbed of credentials (:mod:`.redact`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar

from tierstore.backends.cloud import deadlines, redact
from tierstore.backends.cloud.failure import Failure
from tierstore.errors import BackendUnavailableError, ConfigurationError, TierstoreError

T = TypeVar("T")
logger = logging.getLogger(__name__)

SECONDS_PER_MIB: Final = 1.0
"""Extra deadline a call gets for each MiB it moves (a floor of 1 MiB/s on a slow link)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard a cloud call tries before it gives up (the same on every cloud)."""

    max_attempts: int = 6
    base_delay: float = 0.05
    max_delay: float = 2.0
    deadline: float = 30.0
    """Seconds a call may take, from its first attempt, before it fails with BackendUnavailableError."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay < 0 or self.max_delay < 0 or self.deadline <= 0:
            raise ConfigurationError("RetryPolicy needs max_attempts >= 1, delays >= 0 and a positive deadline")

    def delay(self, attempt: int) -> float:
        """The pause before the attempt after ``attempt``: full jitter under an exponential cap."""
        # Full jitter: uniform in [0, min(cap, base * 2**attempt)], which spreads racing clients apart.
        return random.uniform(0.0, min(self.max_delay, self.base_delay * (2**attempt)))  # noqa: S311


@dataclass(slots=True)
class AttemptLog:
    """What earlier attempts of one call may have done: read by create-if-absent and delete after a retry."""

    attempts: int = 0
    maybe_applied: bool = False
    failures: list[Failure] = field(default_factory=list)


def _cancelled_by_someone() -> bool:
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    classify: Callable[[BaseException], Failure],
    what: str,
    key: str | None,
    idempotent: bool = True,
    size: int = 0,
    log: AttemptLog | None = None,
    container: str = "bucket",
    where: str = "",
) -> T:
    """Run ``attempt`` until it succeeds, fails permanently, or the policy runs out; SDK errors leave translated."""
    attempts = 0 if log is None else log.attempts
    deadline = time.monotonic() + policy.deadline + SECONDS_PER_MIB * size / (1 << 20)
    while True:
        attempts += 1
        if log is not None:  # made at the first failure, unless the caller gave one: most calls never fail
            log.attempts = attempts
        # Not wait_for: Python 3.11's wait_for returns the result when the attempt finishes just as the caller
        # is cancelled, swallowing the cancellation (a task cancelled then never ends).
        watched = deadlines.watch(max(deadline - time.monotonic(), 0.001))
        try:
            return await attempt()
        except asyncio.CancelledError:
            if watched.end():
                cause: Exception = TimeoutError(f"no answer within the deadline of {policy.deadline:g} s")
                failure = Failure("timeout", "maybe")
            elif _cancelled_by_someone():
                raise
            else:
                # No one cancelled this task: an SDK cancelled a future it was waiting on (aiohttp's connector does
                # to requests queued for a connection, a thread pool to calls not yet run, when a backend closes).
                cause = ConnectionAbortedError("the client was closed while the request waited")
                failure = Failure("network", "maybe")
        except TierstoreError as error:
            redact.sanitize_chain(error, TierstoreError)  # an SDK error a client chained, as text without credentials
            raise
        except Exception as exc:  # noqa: BLE001 - every SDK failure is classified, none escapes untranslated
            cause = exc
            failure = Failure("timeout", "maybe") if isinstance(exc, TimeoutError) else classify(exc)
        finally:
            watched.end()
        if log is None:
            log = AttemptLog(attempts=attempts)
        log.failures.append(failure)
        log.maybe_applied |= failure.applied == "maybe"
        pause = policy.delay(log.attempts)
        retry = failure.transient and (idempotent or failure.applied == "no")
        if not retry or log.attempts >= policy.max_attempts or time.monotonic() + pause >= deadline:
            if retry and failure.kind != "corrupt":
                on = f" on {where}" if where else ""
                tries = f"{log.attempts} attempt{'s' if log.attempts != 1 else ''}"
                raise BackendUnavailableError(
                    f"{what}{on} failed after {tries}: {failure.describe()}"
                ) from redact.sanitized(cause)
            raise failure.error(what, key, container=container, where=where) from redact.sanitized(cause)
        logger.debug(
            "%s%s: attempt %d failed (%s: %s; %s), trying again in %.3f s",
            what,
            f" on {where}" if where else "",
            log.attempts,
            failure.kind,
            failure.describe(),
            cause,
            pause,
        )
        await asyncio.sleep(pause)
