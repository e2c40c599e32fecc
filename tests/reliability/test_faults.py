"""Faults on the wire: a proxy in front of each emulator fails a share of requests in every way it can.

With ``TIERSTORE_FAULT_SHARE`` (default 0.2) of requests faulted, a checkpoint of ``TIERSTORE_FAULT_PAGES``
(default 1,000) pages completes and every page restores with a verified checksum, read back straight from the
emulator; with the emulator gone, or answering nothing, calls fail with BackendUnavailableError within the
configured deadline instead of hanging.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.emulators import free_port
from tests.faults import FaultProxy
from tests.reliability.figures import record
from tests.rigs import load
from tierstore import ArtifactsBridge, BackendUnavailableError, MemoryPage, Modality, RetryPolicy
from tierstore.backends.base import StorageBackend
from tierstore.backends.cloud import CloudOptions
from tierstore.maintenance import fsck

SHARE = float(os.environ.get("TIERSTORE_FAULT_SHARE", "0.2"))
PAGES = int(os.environ.get("TIERSTORE_FAULT_PAGES", "1000"))
CLOUDS = [
    pytest.param("s3_moto", id="s3_moto"),
    pytest.param("s3_localstack", id="s3_localstack", marks=pytest.mark.localstack),
    pytest.param("gcs", id="gcs"),
    pytest.param("azure", id="azure"),
    pytest.param("azure_obstore", id="azure_obstore"),
]
PATIENT = RetryPolicy(max_attempts=15, base_delay=0.01, max_delay=0.25, deadline=120.0)
READ_TIMEOUT = 1.0


def _open(cloud: str, spec: dict[str, Any], retry: RetryPolicy, timeout: float = READ_TIMEOUT) -> StorageBackend:
    rig = load(cloud)
    if cloud.startswith("azure"):
        options = CloudOptions(connect_timeout=timeout, read_timeout=timeout, retry=retry)
        opened: StorageBackend = rig.open_backend(spec, options)
        return opened
    timeouts: dict[str, Any] = (
        {"timeout": (timeout, timeout)} if cloud == "gcs" else {"connect_timeout": timeout, "read_timeout": timeout}
    )
    backend: StorageBackend = rig.open_backend(spec, retry=retry, **timeouts)
    return backend


@pytest.mark.parametrize("cloud", CLOUDS)
async def test_checkpoint_completes_and_restores_through_faults(
    cloud: str, fresh_store: Callable[[str], dict[str, Any]]
) -> None:
    rig = load(cloud)
    spec = fresh_store(cloud)
    pages = [MemoryPage(page_id=f"p{i}", modality=Modality.TEXT, content=f"{i} " * 200) for i in range(PAGES)]
    async with FaultProxy(rig.upstream(spec), share=SHARE, seed=20, stall_seconds=READ_TIMEOUT * 2.5) as proxy:
        faulty = _open(cloud, rig.through(spec, proxy.url), PATIENT)
        bridge = ArtifactsBridge(backend=faulty, concurrency=32)
        checkpoint = await bridge.checkpoint(pages, name="through faults")
        assert await ArtifactsBridge(backend=faulty).restore_checkpoint(checkpoint) == pages
        await faulty.aclose()
    assert sum(proxy.injected.values()) > 0.1 * proxy.requests
    assert set(proxy.injected) == {"slowdown", "error500", "throttle", "reset", "lose-answer", "truncate", "stall"}

    direct = rig.open_backend(spec)
    try:
        clean = ArtifactsBridge(backend=direct)
        assert await clean.restore_checkpoint(checkpoint) == pages
        report = await fsck(clean)
        assert report.ok, report.problems
        assert report.orphans == [], "a retried write left an extra artifact behind"
        assert report.pages == PAGES
    finally:
        await direct.aclose()
    record("requests faulted by the proxy", sum(proxy.injected.values()), cloud)
    record("pages checkpointed and restored through faults", PAGES, cloud)


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("outage", ["gone", "silent"])
async def test_outage_fails_typed_within_the_deadline(
    cloud: str, outage: str, fresh_store: Callable[[str], dict[str, Any]]
) -> None:
    rig = load(cloud)
    spec = fresh_store(cloud)
    policy = RetryPolicy(max_attempts=50, base_delay=0.05, max_delay=0.5, deadline=3.0)
    page = MemoryPage(page_id="p", modality=Modality.TEXT, content="x")
    if outage == "gone":
        proxy = None
        target = rig.through(spec, f"http://127.0.0.1:{free_port()}")
    else:
        proxy = await FaultProxy(rig.upstream(spec), share=1.0, faults=["stall"], stall_seconds=30).start()
        target = rig.through(spec, proxy.url)
    backend = _open(cloud, target, policy, timeout=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(BackendUnavailableError):
            await ArtifactsBridge(backend=backend).store_page(page)
        elapsed = time.monotonic() - started
        # The bound, not a speed: the deadline, plus one attempt's connect and read timeouts, plus slack.
        assert elapsed < policy.deadline + 2 * 0.5 + 5.0
    finally:
        await backend.aclose()
        if proxy is not None:
            await proxy.stop()
