"""Core benchmarks on the local disk: the bridge against raw file I/O with the same guarantees, the codec,
incremental checkpoints across restarts, and maintenance as the store grows (the memory one big page costs, on
every backend: ``bench_big``).

python -m bench.bench_core [disk|codec|restart|scale ...]   # default: all
TIERSTORE_BENCH_PAGES (300) pages of 2 KiB; TIERSTORE_BENCH_SCALE (1000,10000,100000) store sizes;
TIERSTORE_BENCH_DIR where the stores go.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from pathlib import Path

from bench._harness import Case, compare, compare_maintenance, figure, main, populate, store_and_load, text_pages
from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality
from tierstore.codec import PLAIN
from tierstore.validate import as_page

PAGES = int(os.environ.get("TIERSTORE_BENCH_PAGES", "300"))
SCALE = [int(n) for n in os.environ.get("TIERSTORE_BENCH_SCALE", "1000,10000,100000").split(",")]
WORKDIR = Path(tempfile.mkdtemp(prefix="tierstore-bench-", dir=os.environ.get("TIERSTORE_BENCH_DIR")))
_fresh = count()


def _durable_write(directory: Path, name: str, data: bytes) -> None:
    """What FileSystemBackend promises, by hand: temp file, fsync, atomic rename, directory fsync."""
    temp = directory / f".{name}.tmp"
    with temp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, directory / name)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(path: Path) -> bytes:
    return path.read_bytes()


async def _disk() -> None:
    pages = text_pages(PAGES, 2048)
    frames = [PLAIN.encode_page(p, f"mem_L3_{i}").data for i, p in enumerate(pages)]

    threads = ThreadPoolExecutor(32)  # as many as FileSystemBackend's own pool

    def raw(concurrency: int) -> Case:
        async def run() -> None:
            directory = WORKDIR / f"raw{next(_fresh)}"
            directory.mkdir()
            limit = asyncio.Semaphore(concurrency)
            loop = asyncio.get_running_loop()

            async def one(i: int) -> None:
                async with limit:
                    await loop.run_in_executor(threads, _durable_write, directory, f"o{i}", frames[i])
                    await loop.run_in_executor(threads, _read, directory / f"o{i}")

            await asyncio.gather(*(one(i) for i in range(PAGES)))

        return Case(f"raw temp+fsync+rename+dir-fsync, read (c={concurrency})", run, PAGES)

    def bridged(concurrency: int) -> Case:
        async def run() -> None:
            bridge = ArtifactsBridge(backend=FileSystemBackend(WORKDIR / f"store{next(_fresh)}"))
            await store_and_load(bridge, pages, concurrency)

        return Case(f"bridge store_page+load_page on FileSystemBackend (c={concurrency})", run, PAGES)

    for concurrency in (1, 32):
        await compare(
            f"{PAGES} x 2 KiB pages stored durably and read back, local disk, concurrency {concurrency}",
            [raw(concurrency), bridged(concurrency)],
        )


async def _codec() -> None:
    for size in (2048, 1 << 20):
        pages = text_pages(50, size)
        frames = [PLAIN.encode_page(p, "mem_L3_1").data for p in pages]

        async def json_baseline(pages: list[MemoryPage] = pages) -> None:
            for page in pages:
                MemoryPage.model_validate_json(page.model_dump_json())

        async def encode(pages: list[MemoryPage] = pages) -> None:
            for page in pages:
                PLAIN.encode_page(page, "mem_L3_1")

        async def decode(frames: list[bytes] = frames) -> None:
            for frame in frames:
                PLAIN.decode_page(frame, "mem_L3_1")

        blobs = [os.urandom(size) for _ in range(50)]

        async def bytes_page(blobs: list[bytes] = blobs) -> None:
            for blob in blobs:
                PLAIN.encode_page(as_page(MemoryPage(page_id="p", modality=Modality.IMAGE, content=blob)), "mem_L3_1")

        async def bytearray_page(blobs: list[bytes] = blobs) -> None:
            for blob in blobs:  # the snapshot: as_page copies a mutable buffer once
                page = MemoryPage(page_id="p", modality=Modality.IMAGE, content=bytearray(blob))
                PLAIN.encode_page(as_page(page), "mem_L3_1")

        async def bytearray_made(blobs: list[bytes] = blobs) -> None:
            for blob in blobs:  # what making the caller's bytearray costs, to tell it from the snapshot
                MemoryPage(page_id="p", modality=Modality.IMAGE, content=bytearray(blob))

        await compare(
            f"validate and encode a page of {size} bytes (50 pages): bytes as they are, a bytearray copied",
            [
                Case("bytes content", bytes_page, 50),
                Case("bytearray content (made, then copied)", bytearray_page, 50),
                Case("making the bytearray page alone", bytearray_made, 50),
            ],
            measure="cpu",
        )
        await compare(
            f"codec per page of {size} bytes (50 pages)",
            [
                Case("pydantic model_dump_json + model_validate_json", json_baseline, 50),
                Case("codec encode (frame, sha256, key, write token)", encode, 50),
                Case("codec decode (verify both digests, key, parse)", decode, 50),
            ],
            measure="cpu",
        )


async def _restart() -> None:
    """A new process re-checkpoints 500 pages of which 1 % changed and 20 % were only read."""
    pages = text_pages(500, 2048)
    root = WORKDIR / f"restart{next(_fresh)}"
    await ArtifactsBridge(backend=FileSystemBackend(root)).checkpoint(pages, name="before restart")
    backend = FileSystemBackend(root)
    before = {e.key async for e in backend.list("mem_")}
    for page in pages[:5]:
        page.content = "edited after the restart"
    for page in pages[100:200]:
        page.mark_accessed()
    restarted = ArtifactsBridge(backend=backend)
    checkpoint = await restarted.checkpoint(pages, name="after restart")
    uploaded = {e.key async for e in backend.list("mem_")} - before
    restored = await ArtifactsBridge(backend=FileSystemBackend(root)).restore_checkpoint(checkpoint)
    figure(
        "restarted process re-checkpointing 500 pages: 5 edited, 100 only read (mark_accessed)",
        artifacts_uploaded=len(uploaded),
        restored_pages_equal_to_the_latest=restored == pages,
    )

    def full() -> Case:
        async def run() -> None:
            await ArtifactsBridge(backend=FileSystemBackend(WORKDIR / f"full{next(_fresh)}")).checkpoint(pages, "f")

        return Case("checkpoint of 500 pages into an empty store", run, 500)

    async def incremental() -> None:
        for page in pages[:5]:
            page.content = f"edited {next(_fresh)}"
        await ArtifactsBridge(backend=FileSystemBackend(root)).checkpoint(pages, name="again")

    await compare(
        "checkpoint by a new bridge after a restart, 1 % edited (local disk)",
        [full(), Case("incremental checkpoint by a restarted bridge", incremental, 500)],
    )


async def _scale() -> None:
    for objects in SCALE:
        root = WORKDIR / f"scale{objects}"
        await populate(ArtifactsBridge(backend=FileSystemBackend(root, fsync=False), concurrency=64), objects)
        await compare_maintenance(ArtifactsBridge(backend=FileSystemBackend(root)), objects, "on the local disk")


SECTIONS = {"disk": _disk, "codec": _codec, "restart": _restart, "scale": _scale}


async def _run() -> None:
    chosen = sys.argv[1:] or list(SECTIONS)
    for name in chosen:
        await SECTIONS[name]()


if __name__ == "__main__":
    main("bench_core", _run)
