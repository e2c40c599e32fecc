"""Capability: network. What every cloud backend does when the wire misbehaves, proved through one fault proxy
(``tests/faults.py``) on every rig reached over HTTP, whichever cloud and whichever data path (SDK or obstore).

* A create whose answer is lost is recognised as our own write on its retry; one whose key holds another
  writer's bytes stays a conflict.
* Transient answers (503 SlowDown, 500, 429, resets) are retried until the call succeeds, at most
  ``max_attempts`` times, and then end in BackendUnavailableError; a permanent one (403) is not retried.
* A service that is gone (a closed port) or silent (a stall) ends every call in BackendUnavailableError by the
  deadline, the same on every cloud.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from tests.emulators import free_port
from tests.faults import Fault, FaultProxy, Refusal
from tests.rigs import load
from tierstore import AccessDeniedError, BackendUnavailableError, ConflictError
from tierstore.backends.base import StorageBackend
from tierstore.backends.cloud import CloudOptions, RetryPolicy

QUICK = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, deadline=20.0)


def _writes(request: web.Request) -> bool:
    return request.method in ("PUT", "POST") and "uploads" not in request.query


class Scripted:
    """Faults for the requests a predicate picks: ``plan`` in order, then none."""

    def __init__(self, picks: Callable[[web.Request], bool], *plan: Fault | Refusal) -> None:
        self.picks = picks
        self.plan = list(plan)
        self.picked = 0

    def __call__(self, request: web.Request) -> Fault | Refusal | None:
        if not self.picks(request):
            return None
        self.picked += 1
        return self.plan.pop(0) if self.plan else None


async def _through(
    network_rig: str, rig_server: Callable[[str], Any], decide: Scripted, policy: RetryPolicy = QUICK
) -> tuple[FaultProxy, StorageBackend, StorageBackend]:
    rig = load(network_rig)
    spec = rig_server(network_rig).new_store()
    proxy = await FaultProxy(rig.upstream(spec), decide=decide).start()
    backend: StorageBackend = rig.open_backend(rig.through(spec, proxy.url), CloudOptions(retry=policy))
    direct: StorageBackend = rig.open_backend(spec)
    return proxy, backend, direct


async def test_a_create_whose_answer_was_lost_is_our_own(network_rig: str, rig_server: Callable[[str], Any]) -> None:
    decide = Scripted(_writes, "lose-answer")
    proxy, backend, direct = await _through(network_rig, rig_server, decide)
    try:
        await backend.put("mem_L3_1", b"our bytes", if_absent=True)
        assert await direct.get("mem_L3_1") == b"our bytes"
        assert decide.picked >= 2  # the lost attempt, then the retry that met our own write
        assert [e.key async for e in direct.list("mem_")] == ["mem_L3_1"]
    finally:
        await backend.aclose()
        await direct.aclose()
        await proxy.stop()


async def test_a_create_that_meets_anothers_bytes_conflicts_even_after_a_lost_answer(
    network_rig: str, rig_server: Callable[[str], Any]
) -> None:
    decide = Scripted(_writes, "reset")
    proxy, backend, direct = await _through(network_rig, rig_server, decide)
    try:
        await direct.put("mem_L3_1", b"another writer's bytes", if_absent=True)
        with pytest.raises(ConflictError):
            await backend.put("mem_L3_1", b"our bytes", if_absent=True)
        assert await direct.get("mem_L3_1") == b"another writer's bytes"
    finally:
        await backend.aclose()
        await direct.aclose()
        await proxy.stop()


@pytest.mark.parametrize("fault", ["slowdown", "error500", "throttle", "reset"])
async def test_transient_answers_are_retried_until_the_call_succeeds(
    network_rig: str, rig_server: Callable[[str], Any], fault: Fault
) -> None:
    decide = Scripted(lambda request: request.method == "GET", fault, fault)
    proxy, backend, direct = await _through(network_rig, rig_server, decide)
    try:
        await direct.put("mem_L3_1", b"bytes")
        assert await backend.get("mem_L3_1") == b"bytes"
        assert decide.picked == 3
    finally:
        await backend.aclose()
        await direct.aclose()
        await proxy.stop()


async def test_max_attempts_is_honoured_then_the_call_fails_typed(
    network_rig: str, rig_server: Callable[[str], Any]
) -> None:
    server_errors: list[Fault] = ["error500"] * 50
    decide = Scripted(lambda request: request.method == "GET", *server_errors)
    proxy, backend, direct = await _through(network_rig, rig_server, decide)
    try:
        await direct.put("mem_L3_1", b"bytes")
        with pytest.raises(BackendUnavailableError, match="after 4 attempts"):
            await backend.get("mem_L3_1")
        assert decide.picked == QUICK.max_attempts
    finally:
        await backend.aclose()
        await direct.aclose()
        await proxy.stop()


async def test_a_refusal_is_not_retried(network_rig: str, rig_server: Callable[[str], Any]) -> None:
    refusals: list[Refusal] = ["forbidden"] * 5
    decide = Scripted(lambda request: request.method == "GET", *refusals)
    proxy, backend, direct = await _through(network_rig, rig_server, decide)
    try:
        await direct.put("mem_L3_1", b"bytes")
        with pytest.raises(AccessDeniedError):
            await backend.get("mem_L3_1")
        assert decide.picked == 1
    finally:
        await backend.aclose()
        await direct.aclose()
        await proxy.stop()


@pytest.mark.parametrize("outage", ["gone", "silent"])
async def test_an_outage_ends_every_call_typed_by_the_deadline(
    network_rig: str, rig_server: Callable[[str], Any], outage: str
) -> None:
    rig = load(network_rig)
    spec = rig_server(network_rig).new_store()
    proxy = None
    if outage == "gone":
        target = rig.through(spec, f"http://127.0.0.1:{free_port()}")
    else:
        proxy = await FaultProxy(rig.upstream(spec), share=1.0, faults=["stall"], stall_seconds=60).start()
        target = rig.through(spec, proxy.url)
    policy = RetryPolicy(max_attempts=100, base_delay=0.05, max_delay=0.2, deadline=1.0)
    backend: StorageBackend = rig.open_backend(target, CloudOptions(retry=policy, connect_timeout=1, read_timeout=1))
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "put": lambda: backend.put("mem_L3_1", b"x", if_absent=True),
        "get": lambda: backend.get("mem_L3_1"),
        "head": lambda: backend.head("mem_L3_1"),
        "list": lambda: _drain(backend),
        "delete": lambda: backend.delete("mem_L3_1"),
    }
    try:
        for name, call in calls.items():
            started = time.monotonic()
            with pytest.raises(BackendUnavailableError):
                await call()
            # A bound, not a speed: the deadline, plus slack for a loaded machine; never the minutes a stall lasts.
            assert time.monotonic() - started < policy.deadline + 15, name
    finally:
        await backend.aclose()
        if proxy is not None:
            await proxy.stop()


async def _drain(backend: StorageBackend) -> None:
    async for _ in backend.list("mem_"):
        pass
