"""Child process of ``tests/test_filesystem_limits.py``: the local-disk store on a tiny tmpfs that it fills, or
makes read-only, then reports as JSON what each call did (``python -m tests.disk_limits DIR full|readonly``).

It runs inside ``unshare --map-root-user --mount``, where mounting and remounting a tmpfs needs no privileges.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality
from tierstore.maintenance import fsck, gc
from tierstore.protocol.erasure import ErasureOptions, erase_session


def _page(i: int, size: int = 8192) -> MemoryPage:
    return MemoryPage(page_id=f"p{i}", modality=Modality.IMAGE, content=bytes([i % 256]) * size)


async def _outcome(call: Any) -> str:
    try:
        result = await call
    except Exception as exc:  # noqa: BLE001 - the test asserts the exact type name
        return f"{type(exc).__name__}: {exc}"
    return f"ok: {result!r}"


async def _content_of(bridge: ArtifactsBridge, artifact: str) -> object:
    page = await bridge.load_page(artifact)
    return None if page is None else page.content


def _fill(directory: Path) -> None:
    with contextlib.suppress(OSError), (directory / "filler").open("wb") as f:
        while True:
            f.write(b"\0" * 4096)
            f.flush()


async def full(directory: Path) -> dict[str, Any]:
    bridge = ArtifactsBridge(backend=FileSystemBackend(directory / "store"))
    stored = [await bridge.store_page(_page(i)) for i in range(10)]
    checkpoint = await bridge.checkpoint([_page(i) for i in range(20, 25)], name="before")
    disk = FileSystemBackend(directory / "store")
    session = ArtifactsBridge(backend=disk, user_id="alice", session_id="s1")
    await session.store_page(_page(50))
    now = ErasureOptions(settle=timedelta(0))
    _fill(directory)
    result = {
        "store_page": await _outcome(bridge.store_page(_page(99))),
        "checkpoint": await _outcome(bridge.checkpoint([_page(i) for i in range(30, 40)], name="full")),
        "checkpoints_listed": len(await bridge.list_checkpoints()),
        "erase_session": await _outcome(erase_session(disk, "alice", "s1", now)),  # E1 is a write
        "delete_page": await _outcome(bridge.delete_page(stored[0])),
        "deleted_page_loads": await _outcome(bridge.load_page(stored[0])),
        "delete_checkpoint": await _outcome(bridge.delete_checkpoint(checkpoint)),
        "gc": await _outcome(gc(bridge, grace=timedelta(0))),
    }
    (directory / "filler").unlink()
    result["fsck_ok_after"] = (await fsck(bridge)).ok
    result["store_page_after"] = await _outcome(bridge.store_page(_page(100)))
    result["erase_session_after"] = await _outcome(erase_session(disk, "alice", "s1", now))
    result["session_pages_after"] = len(await session.list_pages())
    return result


async def readonly(directory: Path) -> dict[str, Any]:
    bridge = ArtifactsBridge(backend=FileSystemBackend(directory / "store"))
    stored = [await bridge.store_page(_page(i, 100)) for i in range(3)]
    await asyncio.to_thread(subprocess.run, ["mount", "-o", "remount,ro", str(directory)], check=True)
    reader = ArtifactsBridge(backend=FileSystemBackend(directory / "store"))
    return {
        "store_page": await _outcome(reader.store_page(_page(9, 100))),
        "delete_page": await _outcome(reader.delete_page(stored[0])),
        "load_page": await _outcome(_content_of(reader, stored[1])),
        "list_pages": await reader.list_pages() == stored,
        "fsck_ok": (await fsck(reader)).ok,
        "new_store": await _outcome(ArtifactsBridge(backend=FileSystemBackend(directory / "new")).store_page(_page(1))),
    }


if __name__ == "__main__":
    where, mode = Path(sys.argv[1]), sys.argv[2]
    print(json.dumps(asyncio.run(full(where) if mode == "full" else readonly(where))))
