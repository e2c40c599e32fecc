"""Attacks from outside, where two features meet; each test is a break that was found and fixed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.soak import scaled
from tierstore import ArtifactsBridge, InMemoryBackend, MemoryPage, Modality, StorageTier, SyncBridge
from tierstore.backends.base import Body
from tierstore.config import backend_from_url
from tierstore.errors import ConfigurationError, StorageFullError

_FORKING_SYNC_BRIDGE = textwrap.dedent(
    """
    import os, sys
    from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality, SyncBridge

    sync_bridge = SyncBridge(ArtifactsBridge(backend=FileSystemBackend(sys.argv[1])))
    sync_bridge.store_page(MemoryPage(page_id="parent", modality=Modality.TEXT, content="parent"))
    child_uses_it = sys.argv[2] == "uses"
    pid = os.fork()
    if pid == 0:
        if child_uses_it:
            artifact_id = sync_bridge.store_page(MemoryPage(page_id="child", modality=Modality.TEXT, content="child"))
            page = sync_bridge.load_page(artifact_id)
            print("child", page.content if page else None, flush=True)
        sys.exit(0)  # a normal exit: the at-exit hooks run in the child
    _, status = os.waitpid(pid, 0)
    print("child exit", os.waitstatus_to_exitcode(status), flush=True)
    artifact_id = sync_bridge.store_page(MemoryPage(page_id="after", modality=Modality.TEXT, content="after"))
    print("parent", sync_bridge.load_page(artifact_id).content, flush=True)
    sync_bridge.close()
    """
)


def test_a_forked_child_uses_its_sync_bridge_and_exits_without_waiting_for_the_parents_loop(tmp_path: Path) -> None:
    # The child inherited a SyncBridge whose loop runs in a thread that stayed in the parent: it hung on its first
    # call, and at exit (the finalizer waited for that loop), whether or not it used the bridge.
    for child in ("uses", "ignores"):
        done = subprocess.run(
            [sys.executable, "-c", _FORKING_SYNC_BRIDGE, str(tmp_path / child), child],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert done.returncode == 0, done.stderr
        expected = (["child child"] if child == "uses" else []) + ["child exit 0", "parent after"]
        assert done.stdout.split("\n")[:-1] == expected


@pytest.mark.parametrize("location", ["file:///tmp/a%00b", "/tmp/a\x00b"])
def test_a_local_store_path_with_a_nul_is_refused_when_built(location: str) -> None:
    # It was accepted, and the first call raised a bare ValueError ("embedded null byte") from os.
    with pytest.raises(ConfigurationError):
        backend_from_url(location)


class _FullAfterPendingTomb(InMemoryBackend):
    """A store with room left for the small pending tomb a deletion writes first, and then for nothing more."""

    full = False

    async def put(
        self,
        key: str,
        data: Body,
        *,
        metadata: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        tier: StorageTier = StorageTier.L3,
        if_absent: bool = False,
    ) -> None:
        if self.full and not key.endswith("_p"):
            raise StorageFullError("no space left (test)")
        await super().put(key, data, metadata=metadata, tags=tags, tier=tier, if_absent=if_absent)


def test_delete_checkpoint_frees_space_when_only_its_pending_tomb_fits() -> None:
    # Found on a 4 MiB tmpfs filled to the last byte: deleting the manifest freed room for the pending tomb, the
    # deleted tomb then failed, and delete_checkpoint raised StorageFullError with the checkpoint gone and its
    # artifacts still there, so deleting did not free space as the README promises.
    async def run() -> None:
        backend = _FullAfterPendingTomb()
        async with ArtifactsBridge(backend=backend) as bridge:
            pages = [MemoryPage(page_id=f"p{i}", modality=Modality.TEXT, content=f"page {i}") for i in range(4)]
            doomed = await bridge.checkpoint(pages[:2], "doomed")
            kept = await bridge.checkpoint(pages[2:], "kept")
            manifest = await bridge.get_checkpoint_manifest(doomed)
            assert manifest is not None
            backend.full = True
            assert await bridge.delete_checkpoint(doomed) is True
            assert await bridge.list_checkpoints() == [kept]
            assert [await bridge.load_page(e.artifact_id) for e in manifest.pages] == [None, None]
            assert await bridge.restore_checkpoint(kept) == pages[2:]

    asyncio.run(run())


_FORKING_OBSTORE_BRIDGE = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from tierstore import ArtifactsBridge, MemoryPage, Modality, SyncBridge
    from tierstore.backends.cloud.options import CloudOptions
    from tierstore.backends.s3 import S3Backend

    spec = json.loads(sys.argv[1])
    backend = S3Backend(
        spec["bucket"], endpoint_url=spec["endpoint"], region="us-east-1", access_key_id="testing",
        secret_access_key="testing", options=CloudOptions(client="obstore"),
    )
    bridge = ArtifactsBridge(backend=backend)
    sync_bridge = SyncBridge(bridge)
    parents = sync_bridge.store_page(MemoryPage(page_id="parent", modality=Modality.TEXT, content="parent"))
    pid = os.fork()
    if pid == 0:
        async def in_a_new_loop():
            mine = await bridge.store_page(MemoryPage(page_id="child", modality=Modality.TEXT, content="child"))
            return (await bridge.load_page(mine)).content, (await bridge.load_page(parents)).content
        print("child", *asyncio.run(in_a_new_loop()), flush=True)
        mine = sync_bridge.store_page(MemoryPage(page_id="child2", modality=Modality.TEXT, content="child2"))
        print("child", sync_bridge.load_page(mine).content, flush=True)
        sys.exit(0)
    _, status = os.waitpid(pid, 0)
    print("child exit", os.waitstatus_to_exitcode(status), flush=True)
    print("parent", len(sync_bridge.list_pages()), flush=True)
    sync_bridge.close()
    """
)


@pytest.mark.emulator
def test_a_child_forked_after_obstore_ran_in_its_parent_stores_and_loads(tmp_path: Path) -> None:
    # obstore's runtime threads stay in the parent: every obstore call of such a child waited forever. The child
    # now takes the SDK data path, which stores the same objects.
    from tests.rigs import s3_moto_obstore

    with s3_moto_obstore.serve(tmp_path) as server:
        done = subprocess.run(
            [sys.executable, "-c", _FORKING_OBSTORE_BRIDGE, json.dumps(server.new_store())],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:-1] == ["child child parent", "child child2", "child exit 0", "parent 3"]


_FORKING_GCS_BRIDGE = textwrap.dedent(
    """
    import asyncio, os, sys
    from google.auth.credentials import AnonymousCredentials
    from tierstore import ArtifactsBridge, MemoryPage, Modality, SyncBridge
    from tierstore.backends.gcs import GCSBackend

    backend = GCSBackend(
        sys.argv[2], project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": sys.argv[1]}
    )
    bridge = ArtifactsBridge(backend=backend)
    sync_bridge = SyncBridge(bridge)
    parents = sync_bridge.store_page(MemoryPage(page_id="parent", modality=Modality.TEXT, content="parent"))
    pid = os.fork()
    if pid == 0:
        async def in_a_new_loop():
            mine = await bridge.store_page(MemoryPage(page_id="child", modality=Modality.TEXT, content="child"))
            return (await bridge.load_page(mine)).content, (await bridge.load_page(parents)).content
        print("child", *asyncio.run(in_a_new_loop()), flush=True)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    print("child exit", os.waitstatus_to_exitcode(status), flush=True)
    print("parent", len(sync_bridge.list_pages()), flush=True)
    # No close(): the SyncBridge's finalizer closes the bridge at exit.
    """
)


@pytest.mark.emulator
def test_a_forked_child_uses_an_inherited_gcs_bridge_and_an_unclosed_sync_bridge_exits_cleanly(
    tmp_path: Path,
) -> None:
    # The child inherited the GCS client's thread pool (its threads stayed in the parent) and its pooled
    # connections: its first call waited forever. And a SyncBridge left to its finalizer printed a traceback at
    # exit: closing the GCS client went through an executor that takes no work once the interpreter shuts down.
    from tests.rigs import gcs

    with gcs.serve(tmp_path) as server:
        spec = server.new_store()
        done = subprocess.run(
            [sys.executable, "-c", _FORKING_GCS_BRIDGE, spec["url"], spec["bucket"]],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stdout.split("\n")[:-1] == ["child child parent", "child exit 0", "parent 2"]


class _SlowToStopPut(InMemoryBackend):
    """A put that runs until cancelled, then needs a moment to stop (as a disk write in a worker thread does)."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.stopped = False

    async def put(
        self,
        key: str,
        data: Body,
        *,
        metadata: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        tier: StorageTier = StorageTier.L3,
        if_absent: bool = False,
    ) -> None:
        if not key.startswith("mem_"):
            await super().put(key, data, metadata=metadata, tags=tags, tier=tier, if_absent=if_absent)
            return
        self.started.set()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.to_thread(time.sleep, 0.2)  # not a timing assertion: it makes a late end likely
            self.stopped = True


def test_a_sync_bridge_call_interrupted_has_ended_when_the_interrupt_reaches_the_caller() -> None:
    # KeyboardInterrupt reached the caller while the cancelled call still ran on the SyncBridge's loop: on the disk,
    # 3 stores of 6 interrupted landed after the caller had returned (asyncio.run waits for the cancelled call).
    backend = _SlowToStopPut()
    main = threading.get_ident()

    def interrupt() -> None:
        backend.started.wait()
        signal.pthread_kill(main, signal.SIGINT)

    # A shell's background job starts Python with SIGINT ignored (and Python then keeps it ignored): the signal
    # would be lost and the call wait for ever. The test needs Python's own handler, as an interactive run has.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupt_a_sync_store(backend, interrupt)
    finally:
        signal.signal(signal.SIGINT, previous)


class _Announcing(ArtifactsBridge):
    """An ArtifactsBridge that says when a store's call is made, before the SyncBridge schedules it."""

    made = threading.Event()

    def store_page(self, *args: Any, **kwargs: Any) -> Any:
        self.made.set()
        return super().store_page(*args, **kwargs)


@pytest.mark.parametrize("delay", [0.0, 0.0002, 0.001, 0.005])
def test_a_sync_bridge_call_interrupted_at_any_moment_never_runs_on_after_the_caller_has_the_interrupt(
    delay: float,
) -> None:
    # The interrupt may come at any bytecode of the call: before it is scheduled on the loop, before it starts, while
    # it runs. Whichever: when the caller has the KeyboardInterrupt, the call either never ran or has ended.
    main = threading.get_ident()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for _ in range(scaled(5)):
            backend = _SlowToStopPut()
            bridge = _Announcing(backend=backend)
            _Announcing.made.clear()

            def interrupt() -> None:
                _Announcing.made.wait()
                time.sleep(delay)
                signal.pthread_kill(main, signal.SIGINT)

            with SyncBridge(bridge) as sync_bridge:
                sync_bridge.list_pages()  # its loop started: an interrupt of that start is another matter
                interrupter = threading.Thread(target=interrupt)
                interrupter.start()
                with pytest.raises(KeyboardInterrupt):
                    sync_bridge.store_page(MemoryPage(page_id="p", modality=Modality.TEXT, content="x"))
                assert backend.stopped or not backend.started.is_set()
                interrupter.join()
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt_a_sync_store(backend: _SlowToStopPut, interrupt: Callable[[], None]) -> None:
    with SyncBridge(ArtifactsBridge(backend=backend)) as sync_bridge:
        interrupter = threading.Thread(target=interrupt)
        interrupter.start()
        with pytest.raises(KeyboardInterrupt):
            sync_bridge.store_page(MemoryPage(page_id="p", modality=Modality.TEXT, content="x"))
        assert backend.stopped
        interrupter.join()
