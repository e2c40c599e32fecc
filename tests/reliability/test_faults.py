"""Faults on the wire: a proxy in front of each emulator fails a share of requests in every way it can.

With a fifth of requests faulted, a checkpoint of 200 pages (``TIERSTORE_SOAK`` multiplies them) completes and
every page restores with a verified checksum, read back straight from the emulator, with no extra artifact left
behind: some 450 requests, about 90 of them faulted, every kind of fault a dozen times. It runs on every rig
reached over HTTP (every cloud, every data path); what an outage does is in ``tests/contract/test_network.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from tests.faults import FaultProxy
from tests.reliability.figures import record
from tests.rigs import load
from tests.soak import scaled
from tierstore import ArtifactsBridge, MemoryPage, Modality
from tierstore.backends.base import StorageBackend
from tierstore.backends.cloud import CloudOptions, RetryPolicy
from tierstore.maintenance import fsck

SHARE = float(os.environ.get("TIERSTORE_FAULT_SHARE", "0.2"))
PAGES = scaled(200, override="TIERSTORE_FAULT_PAGES")
PATIENT = RetryPolicy(max_attempts=15, base_delay=0.01, max_delay=0.25, deadline=120.0)
READ_TIMEOUT = 1.0


async def test_checkpoint_completes_and_restores_through_faults(
    network_rig: str, fresh_store: Callable[[str], dict[str, Any]]
) -> None:
    rig = load(network_rig)
    spec = fresh_store(network_rig)
    pages = [MemoryPage(page_id=f"p{i}", modality=Modality.TEXT, content=f"{i} " * 200) for i in range(PAGES)]
    options = CloudOptions(retry=PATIENT, connect_timeout=READ_TIMEOUT, read_timeout=READ_TIMEOUT)
    async with FaultProxy(rig.upstream(spec), share=SHARE, seed=20, stall_seconds=READ_TIMEOUT * 2.5) as proxy:
        faulty: StorageBackend = rig.open_backend(rig.through(spec, proxy.url), options)
        bridge = ArtifactsBridge(backend=faulty, concurrency=32)
        checkpoint = await bridge.checkpoint(pages, name="through faults")
        assert await ArtifactsBridge(backend=faulty).restore_checkpoint(checkpoint) == pages
        await faulty.aclose()
    assert sum(proxy.injected.values()) > 0.1 * proxy.requests
    assert set(proxy.injected) == {"slowdown", "error500", "throttle", "reset", "lose-answer", "truncate", "stall"}

    direct: StorageBackend = rig.open_backend(spec)
    try:
        clean = ArtifactsBridge(backend=direct)
        assert await clean.restore_checkpoint(checkpoint) == pages
        report = await fsck(clean)
        assert report.ok, report.problems
        assert report.orphans == [], "a retried write left an extra artifact behind"
        assert report.pages == PAGES
    finally:
        await direct.aclose()
    record("requests faulted by the proxy", sum(proxy.injected.values()), network_rig)
    record("pages checkpointed and restored through faults", PAGES, network_rig)
