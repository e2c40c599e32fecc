"""FileSystemBackend: atomic writes, restarts, and nothing leaves the root."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import multiprocessing
import os
import select
import signal
import stat
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import pytest

from tests.reliability.figures import record
from tests.soak import scaled
from tierstore import ArtifactsBridge, FileSystemBackend, IntegrityError, InvalidInputError, MemoryPage, Modality, codec
from tierstore.maintenance import fsck, gc


def _page(i: int) -> MemoryPage:
    return MemoryPage(page_id=f"../../etc/passwd/{i}", modality=Modality.TEXT, content=f"c{i}")


async def test_a_new_process_sees_everything_and_never_reuses_an_id(tmp_path: Path) -> None:
    first = ArtifactsBridge(backend=FileSystemBackend(tmp_path))
    stored = [await first.store_page(_page(i)) for i in range(5)]
    checkpoint = await first.checkpoint([_page(9)], name="c")
    await first.delete_page(stored[-1])
    restarted = ArtifactsBridge(backend=FileSystemBackend(tmp_path))
    assert await restarted.list_pages() == [*stored[:-1], "mem_L3_6"]
    assert len(await restarted.restore_checkpoint(checkpoint)) == 1
    assert await restarted.store_page(_page(10)) == "mem_L3_1001"  # a block of its own


async def test_page_ids_and_metadata_never_become_paths(tmp_path: Path) -> None:
    bridge = ArtifactsBridge(backend=FileSystemBackend(tmp_path / "root"))
    for i in range(3):
        await bridge.store_page(_page(i))
    created = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())  # noqa: ASYNC240
    objects = Path("root/objects")
    made = [Path("root/.tierstore"), objects / "alloc_L3_0", objects / "mem_L3_1", objects / "mem_L3_2"]
    assert created == [*made, objects / "mem_L3_3"]


@pytest.mark.parametrize("key", ["../x", "a/b", "", ".", "..", "a\x00b", "ü"])
async def test_unsafe_keys_are_refused_before_touching_the_disk(tmp_path: Path, key: str) -> None:
    backend = FileSystemBackend(tmp_path)
    with pytest.raises(InvalidInputError):
        await backend.put(key, b"x")
    with pytest.raises(InvalidInputError):
        await backend.get(key)
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240


async def test_create_if_absent_holds_across_threads(tmp_path: Path) -> None:
    backends = [FileSystemBackend(tmp_path) for _ in range(8)]

    async def attempt(backend: FileSystemBackend, i: int) -> bool:
        try:
            await backend.put("mem_L3_1", bytes([i]), if_absent=True)
        except Exception:  # noqa: BLE001 - counting outcomes, the type is checked below
            return False
        return True

    outcomes = await asyncio.gather(*(attempt(b, i) for i, b in enumerate(backends)))
    assert outcomes.count(True) == 1
    assert await backends[0].get("mem_L3_1") == bytes([outcomes.index(True)])


async def test_a_crash_before_rename_leaves_no_object(tmp_path: Path) -> None:
    backend = FileSystemBackend(tmp_path)
    await backend.put("mem_L3_1", b"whole")
    (tmp_path / "tmp" / "put-mem_L3_2-0123456789ab").write_bytes(b"half")  # what a crash mid-write leaves
    assert [e.key async for e in backend.list("")] == ["mem_L3_1"]
    assert await backend.get("mem_L3_1") == b"whole"


async def test_writes_are_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    backend = FileSystemBackend(tmp_path)
    await backend.put("mem_L3_0", b"x")  # makes the store (and fsyncs its mark)
    monkeypatch.setattr(os, "fsync", counting_fsync)
    await backend.put("mem_L3_1", b"x")
    assert len(synced) == 2  # the file, then its directory


def _object_file(root: Path, key: str) -> Path:
    return root / "objects" / key


async def test_one_damaged_object_stops_nothing_else(tmp_path: Path) -> None:
    bridge = ArtifactsBridge(backend=FileSystemBackend(tmp_path))
    kept = [await bridge.store_page(_page(i)) for i in range(3)]
    checkpoint = await bridge.checkpoint([_page(7), _page(8)], name="c")
    flipped, no_tier = kept[0], kept[1]
    data = bytearray(_object_file(tmp_path, flipped).read_bytes())
    data[5] ^= 0x10  # inside the prefix: the header length
    _object_file(tmp_path, flipped).write_bytes(bytes(data))
    header: dict[str, object] = {"metadata": {}, "tags": {}}  # no tier, yet a valid CRC
    _object_file(tmp_path, no_tier).write_bytes(_packed(header) + b"data")
    _object_file(tmp_path, "mem_L3_999").mkdir()
    damaged = sorted([flipped, no_tier, "mem_L3_999"])

    listed = await bridge.list_pages()
    assert set(damaged) <= set(listed)
    assert await bridge.store_page(_page(9)) not in listed
    assert bridge.get_stats().pages_stored == 6
    assert (await bridge.collect_stats()).pages_stored == len(listed) + 1
    for key in damaged:
        with pytest.raises(IntegrityError):
            await bridge.load_page(key)
        with pytest.raises(IntegrityError):
            await bridge.get_metadata(key)
    report = await fsck(bridge)
    assert sorted(p.key for p in report.problems) == damaged
    assert report.verified == len(listed) + 1 - len(damaged)
    assert len(await bridge.restore_checkpoint(checkpoint)) == 2
    for key in damaged:
        assert await bridge.delete_page(key)
    assert (await fsck(bridge)).ok


def _packed(header: Mapping[str, object]) -> bytes:
    body = json.dumps(header).encode()
    start = b"TSO2" + struct.pack(">I", len(body))
    return start + struct.pack(">I", zlib.crc32(body, zlib.crc32(start))) + body


async def test_no_single_bit_flip_changes_what_get_metadata_or_load_page_return(tmp_path: Path) -> None:
    """Every bit of the object file's header and of the frame's header, flipped one at a time."""
    bridge = ArtifactsBridge(backend=FileSystemBackend(tmp_path))
    page = MemoryPage(page_id="flip-me", modality=Modality.IMAGE, content=b"\x00" * 64, caption="c")
    artifact = await bridge.store_page(page)
    path = _object_file(tmp_path, artifact)
    original = path.read_bytes()
    expected = await bridge.get_metadata(artifact)
    (header_length,) = struct.unpack(">I", original[4:8])
    frame_start = 12 + header_length
    frame_header_end = frame_start + codec.PLAIN.header_end(original[frame_start:])
    detected = 0
    for position in range(frame_header_end):
        for bit in range(8):
            damaged = bytearray(original)
            damaged[position] ^= 1 << bit
            path.write_bytes(bytes(damaged))
            for read in (bridge.get_metadata, bridge.load_page):
                try:
                    answer: object = await read(artifact)
                except IntegrityError:
                    detected += 1
                    continue
                assert answer == (expected if read == bridge.get_metadata else page)
    assert detected >= frame_header_end * 8  # every flip caught on at least one of the two paths
    record("single-bit flips in object headers, none returned as other metadata", frame_header_end * 8, "filesystem")


async def test_a_killed_writers_temporary_file_is_reported_and_collected(tmp_path: Path) -> None:
    bridge = ArtifactsBridge(backend=FileSystemBackend(tmp_path))
    await bridge.store_page(_page(1))
    stale, fresh = tmp_path / "tmp" / "put-mem_L3_2-000000000dea", tmp_path / "tmp" / "put-mem_L3_3-00000000a11e"
    stale.write_bytes(b"half a page")
    fresh.write_bytes(b"being written")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    assert [s.name for s in (await fsck(bridge)).strays] == [stale.name, fresh.name]
    report = await gc(bridge, grace=timedelta(minutes=10))
    assert report.strays_removed == [stale.name]
    assert [s.name for s in (await fsck(bridge)).strays] == [fresh.name]


async def test_gc_never_takes_the_temporary_file_of_a_write_in_progress(tmp_path: Path) -> None:
    bridge = ArtifactsBridge(backend=FileSystemBackend(tmp_path))
    await bridge.store_page(_page(1))
    in_progress = tmp_path / "tmp" / "put-mem_L3_2-00000000a11e"
    with in_progress.open("wb") as writing:
        fcntl.flock(writing.fileno(), fcntl.LOCK_EX)  # what a running write holds until it is done
        writing.write(b"half written")
        hour_ago = time.time() - 3600
        os.utime(in_progress, (hour_ago, hour_ago))
        report = await gc(bridge, grace=timedelta(0))
        assert report.strays_removed == []
        assert in_progress.exists()
    assert (await gc(bridge, grace=timedelta(0))).strays_removed == [in_progress.name]
    assert not in_progress.exists()


_BIG_WRITER = """
import asyncio, sys
from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality

async def main() -> None:
    bridge = ArtifactsBridge(backend=FileSystemBackend(sys.argv[1]))
    for i, _go in enumerate(sys.stdin):  # one big page per line read
        page = MemoryPage(page_id=f"big{i}", modality=Modality.TEXT, content=str(i % 10) * (8 << 20))
        print(await bridge.store_page(page), flush=True)

asyncio.run(main())
"""


def _wait_until_stopped(pid: int) -> None:
    """Until every thread of ``pid`` is stopped (state ``T`` in /proc): SIGSTOP only asks for it."""
    for _ in range(10_000):
        states = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a thread that ended meanwhile
                states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
        if all(state in "tT" for state in states):
            return
        time.sleep(0.001)
    raise AssertionError(f"process {pid} never stopped")


def _stop_mid_write(writer: subprocess.Popen[str], tmp: Path) -> Path | None:
    """Let ``writer`` store one page and stop it (SIGSTOP) while its temporary file holds bytes, past its lock;
    None if the write ended before that."""
    assert writer.stdin is not None
    assert writer.stdout is not None
    writer.stdin.write("go\n")
    writer.stdin.flush()
    while True:
        if any(tmp.iterdir()):
            os.kill(writer.pid, signal.SIGSTOP)
            _wait_until_stopped(writer.pid)  # a signal is sent at once, taken later: the file could still go
            written = [p for p in tmp.iterdir() if p.name.startswith("put-") and p.lstat().st_size > 0]
            if written:
                return written[0]
            os.kill(writer.pid, signal.SIGCONT)
        elif select.select([writer.stdout], [], [], 0)[0]:
            assert writer.stdout.readline().startswith("mem_"), "the writer failed"
            return None


def test_gc_never_takes_the_temporary_file_of_tierstores_own_writer_stopped_mid_write(tmp_path: Path) -> None:
    """tierstore's real writer, in another process, stopped while it writes a big page; ``gc`` with grace 0 runs
    beside it, the file an hour old. The file stays, and the write ends stored once the writer resumes."""
    asyncio.run(ArtifactsBridge(backend=FileSystemBackend(tmp_path)).store_page(_page(1)))
    writer = subprocess.Popen(
        [sys.executable, "-c", _BIG_WRITER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(codec.__file__).parents[2])},
    )
    assert writer.stdout is not None
    stored: list[str] = []
    attempts = 0
    try:
        while len(stored) < scaled(3):
            attempts += 1
            assert attempts < 100, "no write of the writer was ever stopped midway"
            in_progress = _stop_mid_write(writer, tmp_path / "tmp")
            if in_progress is None:
                continue
            hour_ago = time.time() - 3600
            os.utime(in_progress, (hour_ago, hour_ago))
            report = asyncio.run(gc(ArtifactsBridge(backend=FileSystemBackend(tmp_path)), grace=timedelta(0)))
            assert report.strays_removed == [], "gc took the temporary file of a write in progress"
            assert in_progress.exists()
            os.kill(writer.pid, signal.SIGCONT)
            stored.append(writer.stdout.readline().strip())
            assert stored[-1].startswith("mem_"), "a write whose temporary file gc saw failed"
    finally:
        os.kill(writer.pid, signal.SIGCONT)
        writer.communicate(timeout=120)

    async def check() -> None:
        bridge = ArtifactsBridge(backend=FileSystemBackend(tmp_path))
        for key in stored:
            page = await bridge.load_page(key)
            assert page is not None
            assert isinstance(page.content, str)
            assert len(page.content) == 8 << 20

    asyncio.run(check())
    assert not list((tmp_path / "tmp").iterdir())
    record("writes stopped midway beside gc, all stored", len(stored), "filesystem")


@pytest.mark.parametrize("found", ["new", "empty", "earlier version"])
@pytest.mark.parametrize("umask", [0o022, 0o000, 0o077])
def test_directories_are_0700_and_files_0600_whatever_the_umask(tmp_path: Path, umask: int, found: str) -> None:
    """XDG's mode for data directories, for the store and every parent it creates; its files are the user's alone.
    ``found``: the root is made by tierstore, or was there, world-readable: empty, or a store of an earlier version
    (``objects/`` and ``tmp/``, no mark), which tierstore adopts and so makes the user's alone too."""
    root = tmp_path / "data" / "tierstore" / "store"
    if found != "new":
        root.mkdir(parents=True)
        layout = ["objects", "tmp"] if found == "earlier version" else []
        for directory in [root, *(root / name for name in layout)]:
            directory.mkdir(exist_ok=True)
            os.chmod(directory, 0o755)  # noqa: S103 - world-readable on purpose: tierstore must close it

    async def use() -> None:
        bridge = ArtifactsBridge(backend=FileSystemBackend(root))
        key = await bridge.store_page(_page(1))
        await bridge.checkpoint([_page(2)], name="c")
        await bridge.set_tier(key, "L4")
        await gc(bridge, grace=timedelta(0))

    previous = os.umask(umask)
    try:
        asyncio.run(use())
    finally:
        os.umask(previous)
    top = tmp_path / "data" if found == "new" else root  # tierstore made the parents of a new root only
    made = [top, *top.rglob("*")]
    modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.lstat().st_mode) for p in made}
    directories = ["data", "data/tierstore"] if found == "new" else []
    directories += ["data/tierstore/store", "data/tierstore/store/objects", "data/tierstore/store/tmp"]
    assert {name: mode for name, mode in modes.items() if (tmp_path / name).is_dir()} == dict.fromkeys(
        directories, 0o700
    )
    files = {mode for name, mode in modes.items() if not (tmp_path / name).is_dir()}
    assert files == {0o600}


def test_many_processes_making_one_store_at_once_all_succeed(tmp_path: Path) -> None:
    """The first writes of several processes and threads to a new directory race to make the store (and its mark)."""
    rounds, processes = scaled(6), 4
    for round_ in range(rounds):
        root = tmp_path / f"store{round_}"
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            stored = pool.map(_store_into, [root] * processes)
        assert sorted(k for keys in stored for k in keys) == sorted({k for keys in stored for k in keys})
        assert (root / ".tierstore").is_file()


def _store_into(root: Path) -> list[str]:
    async def store() -> list[str]:
        backend = FileSystemBackend(root)
        pages = [ArtifactsBridge(backend=backend).store_page(_page(i)) for i in range(8)]
        return list(await asyncio.gather(*pages))

    return asyncio.run(store())
