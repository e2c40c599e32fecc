"""Core benchmarks: the bridge on the local-disk backend against raw file I/O, and the codec per page.

python -m bench.bench_core            # TIERSTORE_BENCH_PAGES (default 300) pages of 2 KiB
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from bench._harness import Case, main, run_cases
from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality
from tierstore.codec import decode_page, encode_page

PAGES = int(os.environ.get("TIERSTORE_BENCH_PAGES", "300"))


def _pages(size: int) -> list[MemoryPage]:
    return [
        MemoryPage(page_id=f"p{i}", modality=Modality.TEXT, content=os.urandom(size // 2).hex()) for i in range(PAGES)
    ]


def _raw_write_read(directory: Path, name: str, data: bytes) -> bytes:
    path = directory / name
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return path.read_bytes()


def _durable_write_read(directory: Path, name: str, data: bytes) -> bytes:
    """The same guarantees as FileSystemBackend: temp file, fsync, atomic rename, directory fsync."""
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
    return (directory / name).read_bytes()


async def _filesystem(workdir: Path) -> None:
    pages = _pages(2048)
    encoded = [encode_page(p, f"mem_L3_{i}").data for i, p in enumerate(pages)]
    runs = iter(range(1_000_000))

    async def raw() -> None:
        directory = workdir / f"raw{next(runs)}"
        directory.mkdir()
        for i, data in enumerate(encoded):
            await asyncio.to_thread(_raw_write_read, directory, f"o{i}", data)

    async def durable() -> None:
        directory = workdir / f"durable{next(runs)}"
        directory.mkdir()
        for i, data in enumerate(encoded):
            await asyncio.to_thread(_durable_write_read, directory, f"o{i}", data)

    async def bridged() -> None:
        bridge = ArtifactsBridge(backend=FileSystemBackend(workdir / f"store{next(runs)}"))
        for page in pages:
            await bridge.load_page(await bridge.store_page(page))

    await run_cases(
        f"store+load of {PAGES} x 2 KiB pages on the local disk, one at a time",
        [
            Case("raw write+fsync+read (thread)", raw, PAGES),
            Case("raw + atomic rename + directory fsync (thread)", durable, PAGES),
            Case("FileSystemBackend via ArtifactsBridge", bridged, PAGES),
        ],
    )


async def _codec() -> None:
    for size in (2048, 1 << 20):
        pages = _pages(size)[:50]
        frames = [encode_page(p, "mem_L3_1").data for p in pages]

        async def encode(pages: list[MemoryPage] = pages) -> None:
            for page in pages:
                encode_page(page, "mem_L3_1")

        async def decode(frames: list[bytes] = frames) -> None:
            for frame in frames:
                decode_page(frame, "mem_L3_1")

        async def json_baseline(pages: list[MemoryPage] = pages) -> None:
            for page in pages:
                MemoryPage.model_validate_json(page.model_dump_json())

        await run_cases(
            f"codec per page of {size} bytes (50 pages)",
            [
                Case("pydantic model_dump_json + model_validate_json", json_baseline, 50),
                Case("codec encode (frame + sha256)", encode, 50),
                Case("codec decode (verify + parse)", decode, 50),
            ],
        )


async def _run() -> None:
    with tempfile.TemporaryDirectory(dir=os.environ.get("TIERSTORE_BENCH_DIR")) as tmp:
        await _filesystem(Path(tmp))
    await _codec()


if __name__ == "__main__":
    main(_run)
