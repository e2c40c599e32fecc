"""The cloud layer's ``tierstore`` loggers: a retry is a DEBUG line (the call, the attempt, the class of failure, the
pause), a client made for an event loop a DEBUG line, and no line shows a credential: the scrubber of
:mod:`tierstore.backends.cloud.redact` covers the whole ``tierstore`` hierarchy, as it does the SDKs' loggers.

One rig per cloud, each with a sentinel credential that really is used (the arrivals of
tests/reliability/test_secrets.py) and a proxy that throttles the first request, so that a retry happens."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.faults import Fault, FaultProxy
from tests.reliability.test_secrets import ARRIVALS, _sas
from tests.rigs import load
from tierstore import ArtifactsBridge, MemoryPage, Modality

pytestmark = pytest.mark.emulator

ARRIVAL = {
    "s3_moto": "s3 arguments with a session token",
    "gcs": "gcs access token",
    "azure": "azure sas in the account url",
}
"""For each cloud, a way its credential arrives whose sentinel the service accepts."""
LOOP_CLIENTS = {"s3_moto": "S3", "azure": "Azure"}
"""The clouds whose SDK client is made per event loop, by the name they log it under (GCS's SDK is threaded)."""


def throttle_the_first_request() -> Callable[[web.Request], Fault | None]:
    seen: list[str] = []

    def decide(request: web.Request) -> Fault | None:
        seen.append(request.method)
        return "throttle" if len(seen) == 1 else None  # 429: refused, so even an overwriting put is retried

    return decide


@pytest.mark.parametrize("cloud", sorted(ARRIVAL))
async def test_retries_and_loop_clients_are_logged_at_debug_without_a_credential(
    cloud: str,
    fresh_store: Callable[[str], dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG, logger="tierstore")
    spec = fresh_store(cloud)
    if cloud == "azure":
        spec["sas"] = _sas(spec)
    arrival = ARRIVALS[ARRIVAL[cloud]]
    secrets = arrival.secrets(spec)
    proxy = await FaultProxy(load(cloud).upstream(spec), decide=throttle_the_first_request()).start()
    try:
        backend = arrival.open(spec, proxy.url, monkeypatch, tmp_path)
        bridge = ArtifactsBridge(backend=backend)
        artifact = await bridge.store_page(MemoryPage(page_id="logged", modality=Modality.TEXT, content="x"))
        loaded = await bridge.load_page(artifact)
        assert loaded is not None
        assert loaded.content == "x"
        await backend.aclose()
    finally:
        await proxy.stop()
    mine = [record for record in caplog.records if record.name.startswith("tierstore")]
    retries = [r.getMessage() for r in mine if r.name == "tierstore.backends.cloud.retry"]
    assert retries, "the throttled request was retried, and said so"
    assert all(r.levelno == logging.DEBUG for r in mine if r.name == "tierstore.backends.cloud.retry")
    assert "attempt 1 failed (throttled: HTTP 429" in retries[0]
    assert "trying again in " in retries[0]
    if cloud in LOOP_CLIENTS:
        assert f"made a {LOOP_CLIENTS[cloud]} client for event loop" in caplog.text
    # The scrubber covers the tierstore hierarchy: a line that would carry the credential shows it masked.
    logging.getLogger("tierstore.backends.cloud.retry").debug("a line that names %s", secrets[0])
    assert caplog.records[-1].getMessage() == "a line that names ***"
    seen = [record.getMessage() for record in caplog.records] + [caplog.text]
    assert [text[:200] for text in seen if any(secret in text for secret in secrets)] == []
