"""The on-storage format: raw binary, checksums, zstd, and pages from chuk-ai-session-manager."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime

import pytest

from tests.conftest import ROOT
from tierstore import IntegrityError, InvalidInputError, MemoryPage, Modality
from tierstore.codec import HEADER_START, decode_frame, decode_page, encode_manifest, encode_page
from tierstore.models import CheckpointManifest


def test_binary_content_is_stored_raw() -> None:
    blob = os.urandom(4096)
    encoded = encode_page(MemoryPage(page_id="img", modality=Modality.IMAGE, content=blob))
    assert encoded.data.endswith(blob)  # no base64: the bytes themselves close the frame
    assert len(encoded.data) < len(blob) + 1024


def test_checksum_is_of_what_was_written() -> None:
    encoded = encode_page(MemoryPage(page_id="a", modality=Modality.TEXT, content="x"))
    _page, checksum = decode_page(encoded.data)
    assert checksum == encoded.checksum
    assert decode_frame(encoded.data).checksum == encoded.checksum


@pytest.mark.parametrize("position", [0, 5, 8, 12, 20, HEADER_START, -1])
def test_any_flipped_byte_is_an_integrity_error(position: int) -> None:
    data = bytearray(encode_page(MemoryPage(page_id="a", modality=Modality.TEXT, content="hello")).data)
    data[position] ^= 0x40
    with pytest.raises(IntegrityError):
        decode_page(bytes(data))


def test_zstd_compresses_and_round_trips() -> None:
    page = MemoryPage(page_id="t", modality=Modality.TEXT, content="repetitive " * 10_000)
    plain, packed = encode_page(page), encode_page(page, compression="zstd")
    assert len(packed.data) < len(plain.data) / 10
    assert decode_page(packed.data)[0] == page


def test_manifest_is_not_a_page() -> None:
    manifest = CheckpointManifest(name="n", created_at=datetime(2026, 1, 1), page_count=0, pages=[])
    with pytest.raises(IntegrityError, match="not a page"):
        decode_page(encode_manifest(manifest).data)


def test_unserialisable_content_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="use str, bytes, or JSON data"):
        encode_page(MemoryPage(page_id="a", modality=Modality.STRUCTURED, content={"f": object()}))
    with pytest.raises(InvalidInputError):
        encode_page(MemoryPage(page_id="a", modality=Modality.STRUCTURED, content={"nan": float("nan")}))


def test_reads_chuk_ai_session_manager_json_and_pages_move_both_ways() -> None:
    script = """
import json, sys
from chuk_ai_session_manager.memory import MemoryPage, Modality, StorageTier, CompressionLevel
page = MemoryPage(page_id="m1", modality=Modality.IMAGE, caption="a cat", dimensions=(3, 4),
                  storage_tier=StorageTier.L3, representations={CompressionLevel.ABSTRACT: "mem_L3_2"},
                  metadata={"k": [1, 2]}, content="text body")
sys.stdout.write(page.model_dump_json())
"""
    dumped = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    page, checksum = decode_page(dumped.stdout.encode())
    assert checksum is None
    assert (page.page_id, page.caption, page.dimensions, page.content) == ("m1", "a cat", (3, 4), "text body")
    dumped_back = page.model_dump_json()
    back = f"from chuk_ai_session_manager.memory import MemoryPage as P; P.model_validate_json({dumped_back!r})"
    subprocess.run([sys.executable, "-c", back], check=True, cwd=ROOT)


def test_legacy_json_that_is_not_a_page_is_an_integrity_error() -> None:
    with pytest.raises(IntegrityError):
        decode_page(b'{"not": "a page"}')


def test_lone_surrogates_outside_text_content_are_refused() -> None:
    for fields in ({"metadata": {"\ud800": None}}, {"caption": "a\udfffb"}, {"provenance": ["\ud83d"]}):
        with pytest.raises(InvalidInputError, match="surrogate"):
            encode_page(MemoryPage(page_id="a", modality=Modality.TEXT, **fields))
    text = MemoryPage(page_id="a", modality=Modality.TEXT, content="lone \ud800 kept")
    assert decode_page(encode_page(text).data)[0] == text
