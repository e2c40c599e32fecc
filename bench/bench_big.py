"""The memory one big page costs, on every backend and data path: peak resident memory above what the process
held before the call, as a multiple of the page's size (targets: store at most 1.25x, load at most 2.1x).

Each store and each load runs in a fresh child process, so that one call's peak cannot hide another's; the child
holds the page's content (a store) or nothing (a load) before the call, and reports its peak after.

python -m bench.bench_big [RIG ...]     # default: filesystem s3_moto s3_moto_obstore gcs azure azure_obstore
TIERSTORE_BENCH_BIG_MIB (256) the page's size.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tests.rigs import load

from bench._harness import figure, main

BIG_MIB = int(os.environ.get("TIERSTORE_BENCH_BIG_MIB", "256"))
RUNS = 3
RIGS = ["filesystem", "s3_moto", "s3_moto_obstore", "gcs", "azure", "azure_obstore"]

_CHILD = """
import asyncio, json, os, resource, sys
from tierstore import ArtifactsBridge, MemoryPage, Modality
from tests.rigs import load

def peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

async def main(rig: str, spec: dict, what: str, mib: int) -> None:
    size = mib << 20
    backend = load(rig).open_backend(spec)
    bridge = ArtifactsBridge(backend=backend)
    await bridge.list_pages()  # connect, and import what the first call imports, before measuring
    if what == "store":
        page = MemoryPage(page_id="big", modality=Modality.IMAGE, content=os.urandom(size))
        before = peak()
        artifact = await bridge.store_page(page)
    else:
        before = peak()
        page = await bridge.load_page("mem_L3_1")
        assert page is not None and len(page.content) == size
        artifact = "mem_L3_1"
    print(json.dumps({"artifact": artifact, "extra": (peak() - before) / size}))
    await backend.aclose()

asyncio.run(main(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
"""


def _child(rig: str, spec: dict[str, Any], what: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, rig, json.dumps(spec), what, str(BIG_MIB)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


async def _measure(rig: str, server: Any) -> None:
    stores, loads = [], []
    for _ in range(RUNS):
        spec = server.new_store()
        stored = await asyncio.to_thread(_child, rig, spec, "store")
        assert stored["artifact"] == "mem_L3_1"
        stores.append(stored["extra"])
        loads.append((await asyncio.to_thread(_child, rig, spec, "load"))["extra"])
    figure(
        f"one {BIG_MIB} MiB page on {rig}: extra peak RSS as a multiple of the page ({RUNS} runs, median and min-max)",
        store=f"{statistics.median(stores):.2f} ({min(stores):.2f}-{max(stores):.2f})",
        load=f"{statistics.median(loads):.2f} ({min(loads):.2f}-{max(loads):.2f})",
    )


async def _run() -> None:
    chosen = sys.argv[1:] or RIGS
    with tempfile.TemporaryDirectory(prefix="bench-big-") as workdir, ExitStack() as servers:
        for rig in chosen:
            where = Path(workdir) / rig
            where.mkdir()
            server = servers.enter_context(load(rig).serve(where))
            await _measure(rig, server)


if __name__ == "__main__":
    main("bench_big", _run)
