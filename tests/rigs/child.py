"""Run bridge work in a child process onto a rig's store: ``python -m tests.rigs.child RIG SPEC_JSON ACTION N``.

Actions print one JSON line on stdout: ``store`` stores N pages and prints their artifact ids.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from tests.rigs import load
from tierstore import ArtifactsBridge, MemoryPage, Modality


async def _store(rig: str, spec: dict[str, object], count: int) -> list[str]:
    backend = load(rig).open_backend(spec)
    bridge = ArtifactsBridge(backend=backend)
    ids = []
    for i in range(count):
        page = MemoryPage(page_id=f"p{os.getpid()}_{i}", modality=Modality.TEXT, content=f"{os.getpid()}:{i}")
        ids.append(await bridge.store_page(page))
    await backend.aclose()
    return ids


def main() -> None:
    rig, spec, action, count = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    if action == "store":
        print(json.dumps(asyncio.run(_store(rig, spec, count))))
    else:
        raise SystemExit(f"unknown action {action!r}")


if __name__ == "__main__":
    main()
