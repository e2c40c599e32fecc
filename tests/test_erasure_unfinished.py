"""Erasure discards what killed writers left of the scope's writes outside any object (round 6b, breaks 6 and 7):
the local disk's temporary files of the scope's keys that no write holds, S3's unfinished multipart uploads under
the scope's prefix; never another scope's, a live write's, nor a file that only looks like a temporary.

The leftovers are made as a killed writer leaves them: on disk a temporary file of tierstore's exact name shape with
the page's bytes and no lock; on S3 (moto) a multipart upload begun with a part and never completed, both checked
straight in the directory and with boto3."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.rigs import load
from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality
from tierstore.backends.disk_root import temporary_name
from tierstore.maintenance import fsck
from tierstore.protocol.erasure import ErasureOptions, erase_session, erase_user
from tierstore.scopes import scope_prefix, user_prefix

NOW = ErasureOptions(settle=timedelta(0))
SESSION = scope_prefix("alice", "s1")


def _page(content: str) -> MemoryPage:
    return MemoryPage(page_id="p", modality=Modality.TEXT, content=content)


async def test_erasure_deletes_the_scopes_temporary_files_a_killed_writer_left(tmp_path: Path) -> None:
    backend = FileSystemBackend(tmp_path)
    await ArtifactsBridge(backend, user_id="alice", session_id="s1").store_page(_page("kept until erased"))
    await ArtifactsBridge(backend, user_id="bob", session_id="s1").store_page(_page("bob's"))
    tmp = tmp_path / "tmp"
    sessions = temporary_name(SESSION + "mem_L3_90")
    killed = {  # for each scope the erasure covers: a session's, the user's shared scope, a nested session's
        sessions,
        temporary_name(user_prefix("alice") + "mem_L3_91"),
        temporary_name(scope_prefix("alice", "s2") + "ckpt_x"),
    }
    others = {
        temporary_name(scope_prefix("bob", "s1") + "mem_L3_92"),  # another user's
        temporary_name("mem_L3_93"),  # the root's
        "put-" + SESSION + "mem_L3_94",  # no random tail: not tierstore's shape
        SESSION + "notes.txt",
    }
    for name in killed | others:
        (tmp / name).write_bytes(b"SECRET bytes of a page")
    live = temporary_name(SESSION + "mem_L3_95")
    held = os.open(tmp / live, os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(held, fcntl.LOCK_EX)  # a write still running holds its file
    try:
        erased = await erase_session(backend, "alice", "s1", NOW)
        left = set(os.listdir(tmp))
        assert erased.unfinished == 1
        assert left == (killed - {sessions}) | others | {live}
        assert (await erase_user(backend, "alice", NOW)).unfinished == 2
        assert set(os.listdir(tmp)) == others | {live}
    finally:
        os.close(held)
    assert (await erase_session(backend, "alice", "s1", NOW)).unfinished == 1  # no lock now: a dead writer's
    assert set(os.listdir(tmp)) == others
    strays = {stray.name for stray in (await fsck(ArtifactsBridge(backend))).strays}
    assert not [name for name in strays if name.startswith("put-" + user_prefix("alice"))]


async def test_erasure_aborts_the_scopes_unfinished_multipart_uploads(
    rig_server: Callable[[str], Any],
) -> None:
    moto = rig_server("s3_moto")
    spec = moto.new_store()
    s3, bucket = moto.client, spec["bucket"]
    async with load("s3_moto").open_backend(spec) as backend:
        await ArtifactsBridge(backend, user_id="alice", session_id="s1").store_page(_page("kept until erased"))
        base = backend.prefix
        names = {
            "session": base + SESSION + "mem_L3_90",
            "nested": base + scope_prefix("alice", "s2") + "mem_L3_91",
            "bob": base + scope_prefix("bob", "s1") + "mem_L3_92",
            "root": base + "mem_L3_93",
        }
        for name in names.values():
            upload = s3.create_multipart_upload(Bucket=bucket, Key=name)["UploadId"]
            s3.upload_part(Bucket=bucket, Key=name, UploadId=upload, PartNumber=1, Body=b"SECRET part")

        def unfinished() -> set[str]:
            return {u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}

        erased = await erase_session(backend, "alice", "s1", NOW)
        assert erased.unfinished == 1
        assert unfinished() == {names["nested"], names["bob"], names["root"]}
        assert (await erase_user(backend, "alice", NOW)).unfinished == 1
        assert unfinished() == {names["bob"], names["root"]}
