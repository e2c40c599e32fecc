"""Chunks: a body of several buffers, read, sliced and hashed as one without being joined."""

from __future__ import annotations

import hashlib
import io
import os
import zlib

import pytest

from tierstore.backends.base import Chunks, as_chunks

PARTS = [os.urandom(n) for n in (0, 1, 7, 4096, 3, 65537)]
WHOLE = b"".join(PARTS)


def test_length_bytes_and_digests_are_those_of_the_whole() -> None:
    chunks = Chunks(*PARTS)
    assert len(chunks) == len(WHOLE)
    assert bytes(chunks) == WHOLE
    assert chunks.digest(hashlib.md5(usedforsecurity=False)).digest() == hashlib.md5(WHOLE).digest()  # noqa: S324
    assert chunks.crc32() == zlib.crc32(WHOLE)
    assert bytes(as_chunks(WHOLE)) == WHOLE
    assert as_chunks(chunks) is chunks


@pytest.mark.parametrize(("start", "stop"), [(0, 0), (0, 1), (1, 9), (5, 4100), (4100, len(WHOLE)), (0, len(WHOLE))])
def test_a_window_is_the_slice_of_the_whole(start: int, stop: int) -> None:
    assert bytes(Chunks(*PARTS).window(start, stop)) == WHOLE[start:stop]


@pytest.mark.parametrize("block", [1, 5, 4096, 1 << 20])
def test_the_reader_reads_and_seeks_like_a_file_of_the_whole(block: int) -> None:
    reader = Chunks(*PARTS).reader()
    read = b"".join(iter(lambda: reader.read(block), b""))
    assert read == WHOLE
    assert reader.tell() == len(WHOLE)
    reader.seek(4100)
    assert reader.read(10) == WHOLE[4100:4110]
    assert reader.seek(0, io.SEEK_END) == len(WHOLE)
    reader.seek(-3, io.SEEK_END)
    assert reader.read() == WHOLE[-3:]
