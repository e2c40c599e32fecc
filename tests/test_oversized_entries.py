"""An object at a record's or page's key whose disk header is well formed and records a size no process can hold
(the file sparse to exactly that length, so its length agrees): every call goes on, the record counts as unreadable,
the page loads as damaged, and nothing tries to hold it in memory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.contract.conftest import text_page
from tierstore import ArtifactsBridge, FileSystemBackend
from tierstore.backends import disk_format
from tierstore.errors import IntegrityError
from tierstore.maintenance import fsck, gc

ONE_TIB = 1 << 40
KEYS = {
    "tomb": "tomb_20261205T000000000000_0badc0de_d",
    "lease": "intent_ckpt_20261205T000000000000_0badc0de",
    "page": "mem_L3_777",
}


def _plant(root: Path, key: str) -> None:
    header = disk_format.pack_header({"metadata": {}, "tags": {}, "tier": "L3", "size": ONE_TIB})
    path = root / "objects" / key
    with path.open("wb") as f:
        f.write(header)
        f.truncate(len(header) + ONE_TIB)
    os.chmod(path, 0o600)


@pytest.mark.parametrize("where", list(KEYS))
async def test_an_object_recording_a_terabyte_stops_nothing_and_is_never_held(where: str, tmp_path: Path) -> None:
    root = tmp_path / "store"
    async with ArtifactsBridge(backend=FileSystemBackend(root)) as bridge:
        before = await bridge.checkpoint([text_page("a")], "before")
    _plant(root, KEYS[where])
    async with ArtifactsBridge(backend=FileSystemBackend(root)) as bridge:
        stored = await bridge.store_page(text_page("x"))  # a new bridge's first claim reads every tomb
        after = await bridge.checkpoint([text_page("y")], "after")
        for checkpoint in (before, after):
            assert [p.page_id for p in await bridge.restore_checkpoint(checkpoint)] in (["a"], ["y"])
        assert (await bridge.load_page(stored)) is not None
        if where == "page":
            with pytest.raises(IntegrityError):
                await bridge.load_page(KEYS["page"])
        report = await fsck(bridge)
        named = {problem.key for problem in report.problems}
        assert KEYS[where] in named or where == "lease", report.problems
        await gc(bridge)
