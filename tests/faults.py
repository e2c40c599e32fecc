"""A fault-injecting HTTP proxy on 127.0.0.1, put in front of an emulator.

It forwards each request to the emulator unchanged, except for a configurable share of requests (chosen by a
seeded random generator), or the requests a ``decide`` hook picks, which get one of these faults:

* ``slowdown`` / ``error500`` / ``throttle`` - answer 503 SlowDown, 500 or 429 without forwarding;
* ``reset`` - drop the connection without forwarding;
* ``lose-answer`` - forward (the emulator does the work), then drop the connection before answering;
* ``truncate`` - forward, then send the headers and half the body and drop the connection;
* ``stall`` - forward, then answer nothing for ``stall_seconds`` (longer than the client's read timeout);
* ``garble`` - forward, then answer bytes that are no HTTP at all (an HTTP client fails parsing them);
* ``trickle`` - forward, then send the whole answer, status line and headers included, one byte every
  ``trickle_seconds``: no read ever waits long enough for a per-read timeout to end it.

The three last ones are the nasty kind: the request took effect but the client cannot know it. A ``decide`` hook
may also refuse a request outright (:data:`Refusal`: 403 ``forbidden``, 412 ``precondition``), ``flip`` one bit
of an answer's body (the headers, checksums included, unchanged), or return an :class:`Answer`: any error status
and code, sent without forwarding (a refusal of the service's own, e.g. S3's 409 ConditionalRequestConflict); no
random draw picks these.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import aiohttp
from aiohttp import web

Fault = Literal["slowdown", "error500", "throttle", "reset", "lose-answer", "truncate", "stall", "trickle", "garble"]
ALL_FAULTS: tuple[Fault, ...] = tuple(fault for fault in get_args(Fault) if fault not in ("trickle", "garble"))
"""The faults a random draw picks from by default (a trickle lasts minutes; garble only where asked for)."""
Refusal = Literal["forbidden", "precondition", "flip"]

_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "expect", "keep-alive"}
_CANNED: dict[str, tuple[int, str, str]] = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "error500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "throttle": (429, "TooManyRequests", "Too many requests."),
    "forbidden": (403, "AccessDenied", "Access denied."),
    "precondition": (412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold."),
}


@dataclass(frozen=True)
class Answer:
    """An error answer the proxy sends in the service's stead."""

    status: int
    code: str
    message: str = "Injected by the test proxy."


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        *,
        share: float = 0.0,
        faults: Sequence[Fault] = ALL_FAULTS,
        seed: int = 0,
        stall_seconds: float = 3.0,
        trickle_seconds: float = 1.0,
        decide: Callable[[web.Request], Fault | Refusal | Answer | None] | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.share = share
        self.faults = tuple(faults)
        self.stall_seconds = stall_seconds
        self.trickle_seconds = trickle_seconds
        self.decide = decide
        self.requests = 0
        self.injected: Counter[str] = Counter()
        self.seen: list[str] = []
        self._random = random.Random(seed)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FaultProxy:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._session = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=120))
        return self

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _choose(self, request: web.Request) -> Fault | Refusal | Answer | None:
        if self.decide is not None:
            return self.decide(request)
        if self._random.random() < self.share:
            return self._random.choice(self.faults)
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.seen.append(f"{request.method} {request.raw_path}")
        body = await request.read()
        fault = self._choose(request)
        if isinstance(fault, Answer):
            self.injected[fault.code] += 1
            return _error(fault.status, fault.code, fault.message)
        if fault is not None:
            self.injected[fault] += 1
        if fault in _CANNED:
            status, code, message = _CANNED[fault]
            return _error(status, code, message)
        if fault == "reset":
            return _drop(request)
        upstream = await self._forward(request, body)
        if fault == "lose-answer":
            return _drop(request)
        if fault == "stall":
            await asyncio.sleep(self.stall_seconds)
            return _drop(request)
        status, headers, payload, upstream_length = upstream
        if fault == "garble":
            if request.transport is not None:
                request.transport.write(b"HTTP/1.1 2\x00\x7f garbled\r\nContent-Length: zz\r\n\r\n\x00\x01")
            return _drop(request)
        if fault == "trickle":
            head_length = upstream_length.get("Content-Length", "0")
            await self._trickle(request, status, headers, payload, head_length)
            return _drop(request)
        if fault == "truncate" and len(payload) > 1:
            response = web.StreamResponse(status=status, headers=headers)
            response.content_length = len(payload)
            await response.prepare(request)
            await response.write(payload[: len(payload) // 2])
            return _drop(request, response)
        if fault == "truncate":
            return _drop(request)
        if fault == "flip" and payload:
            payload = bytes([payload[0] ^ 0x01]) + payload[1:]
        response = web.Response(status=status, headers=headers, body=payload)
        if request.method == "HEAD" and "Content-Length" in upstream_length:
            response.headers["Content-Length"] = upstream_length["Content-Length"]
        return response

    async def _trickle(
        self, request: web.Request, status: int, headers: dict[str, str], payload: bytes, head_length: str
    ) -> None:
        head = request.method == "HEAD"
        lines = [f"HTTP/1.1 {status} Answer", *(f"{name}: {value}" for name, value in headers.items())]
        lines.append(f"Content-Length: {head_length if head else len(payload)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else payload)
        transport = request.transport
        for index in range(len(raw)):
            if transport is None or transport.is_closing():
                return  # the client gave up
            transport.write(raw[index : index + 1])
            await asyncio.sleep(self.trickle_seconds)

    async def _forward(self, request: web.Request, body: bytes) -> tuple[int, dict[str, str], bytes, dict[str, str]]:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._session.request(
            request.method,
            self.upstream + request.raw_path,
            headers=headers,
            data=body,
            skip_auto_headers={"Content-Type", "User-Agent", "Accept", "Accept-Encoding"},
        ) as upstream:
            payload = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP | {"content-encoding"}}
            length = (
                {"Content-Length": upstream.headers["Content-Length"]} if "Content-Length" in upstream.headers else {}
            )
            return upstream.status, out, payload, length


def _error(status: int, code: str, message: str) -> web.Response:
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return web.Response(status=status, body=body, headers={"Content-Type": "application/xml", "x-ms-error-code": code})


def _drop(request: web.Request, response: web.StreamResponse | None = None) -> web.StreamResponse:
    """Abort the client's connection; aiohttp then has nothing left to send."""
    if request.transport is not None:
        request.transport.abort()
    return response if response is not None else web.Response(status=500)
