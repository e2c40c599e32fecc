"""The on-storage format: raw binary, checksums over every byte, the key a frame belongs to, zstd, chuk's JSON."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from tests.conftest import ROOT
from tierstore import IntegrityError, InvalidInputError, MemoryPage, Modality, StorageTier
from tierstore.codec import BIG_PAGE, HEADER_START, PLAIN, Codec
from tierstore.models import CheckpointManifest
from tierstore.validate import MAX_DEPTH


def _page(content: object = "hello", **fields: object) -> MemoryPage:
    return MemoryPage(page_id="a", modality=Modality.TEXT, content=content, **fields)  # type: ignore[arg-type]


def test_binary_content_is_stored_raw() -> None:
    blob = os.urandom(4096)
    encoded = PLAIN.encode_page(MemoryPage(page_id="img", modality=Modality.IMAGE, content=blob), "mem_L3_1")
    assert encoded.data.endswith(blob)  # no base64: the bytes themselves close the frame
    assert encoded.size < len(blob) + 1024


def test_checksum_is_of_what_was_written() -> None:
    encoded = PLAIN.encode_page(_page("x"), "mem_L3_1")
    _page_back, checksum = PLAIN.decode_page(encoded.data, "mem_L3_1")
    assert checksum == encoded.checksum
    assert PLAIN.decode_frame(encoded.data, "mem_L3_1").checksum == encoded.checksum


def test_every_flipped_bit_is_an_integrity_error() -> None:
    data = PLAIN.encode_page(_page("hello" * 20), "mem_L3_1").data
    for position in range(len(data)):
        for bit in range(8):
            damaged = bytearray(data)
            damaged[position] ^= 1 << bit
            with pytest.raises(IntegrityError):
                PLAIN.decode_page(bytes(damaged), "mem_L3_1")


@pytest.mark.parametrize("cut", [1, HEADER_START, -1])
def test_truncated_and_extended_frames_are_integrity_errors(cut: int) -> None:
    data = PLAIN.encode_page(_page(), "mem_L3_1").data
    for damaged in (data[:cut], data + b"\x00"):
        with pytest.raises(IntegrityError):
            PLAIN.decode_page(damaged, "mem_L3_1")


def test_a_frame_under_another_key_is_refused_on_every_read_path() -> None:
    page_frame = PLAIN.encode_page(_page(), "mem_L3_1").data
    with pytest.raises(IntegrityError, match="written as 'mem_L3_1', not 'mem_L3_2'"):
        PLAIN.decode_page(page_frame, "mem_L3_2")
    with pytest.raises(IntegrityError, match="written as"):
        PLAIN.read_header(page_frame[: PLAIN.header_end(page_frame)], "mem_L3_2")
    manifest = CheckpointManifest(name="n", created_at=datetime(2026, 1, 1), page_count=0, pages=[], checkpoint_id="c1")
    with pytest.raises(IntegrityError, match="written as"):
        PLAIN.decode_manifest(PLAIN.encode_manifest(manifest).data, "c2")
    with pytest.raises(IntegrityError, match="written as"):
        PLAIN.decode_record(PLAIN.encode_record("tomb_1", {}).data, "tomb_2")


@pytest.mark.parametrize("length", [10, BIG_PAGE + 1], ids=["small", "big"])
async def test_a_frame_under_another_key_is_refused_off_the_loop_at_every_size(length: int) -> None:
    frame = PLAIN.encode_page(_page("x" * length), "mem_L3_1").data
    with pytest.raises(IntegrityError, match="written as 'mem_L3_1', not 'mem_L3_2'"):
        await PLAIN.decode_page_off_loop(frame, "mem_L3_2", bound=True)
    assert (await PLAIN.decode_page_off_loop(frame, "mem_L3_2", bound=False))[0].page_id == "a"


def test_two_writes_of_one_page_under_one_key_never_share_bytes() -> None:
    page = _page()
    assert len({PLAIN.encode_page(page, "mem_L3_1").data for _ in range(100)}) == 100
    assert len({PLAIN.prepare_page(page, identity=True).identity for _ in range(3)}) == 1


def test_write_tokens_are_never_issued_twice_across_threads_and_forks() -> None:
    def tokens(count: int) -> list[str]:
        return [PLAIN.read_header(PLAIN.encode_page(_page(), "mem_L3_1").data).meta["write"] for _ in range(count)]

    tokens(1)  # the parent now holds a pool of drawn tokens that a careless child would inherit
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        os.write(writer, json.dumps(tokens(300)).encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        from_child = json.loads(pipe.read())
    os.waitpid(child, 0)
    with ThreadPoolExecutor(8) as threads:
        from_threads = [t for batch in threads.map(tokens, [300] * 8) for t in batch]
    issued = from_child + from_threads + tokens(300)
    assert len(issued) == len(set(issued)) == 300 * 10


@pytest.mark.parametrize("size", [0, 1, 2046, 2047, 2048, 2049, 4094, 4095, 16383, 16384, 70001])
def test_the_body_digest_is_sha256_of_the_content_at_every_size(size: int) -> None:
    content = bytes(range(256)) * (size // 256) + bytes(size % 256)
    data = PLAIN.encode_page(_page(content), "mem_L3_1").data
    assert PLAIN.read_header(data).meta["body"] == hashlib.sha256(content).hexdigest()
    assert PLAIN.decode_page(data, "mem_L3_1")[0].content == content


def test_identity_ignores_bookkeeping_but_not_content_or_description() -> None:
    page = _page()
    same = page.model_copy(
        update={"access_count": 9, "storage_tier": StorageTier.L3, "dirty": True, "artifact_id": "x"}
    )
    same.mark_accessed()
    assert PLAIN.prepare_page(same, identity=True).identity == PLAIN.prepare_page(page, identity=True).identity
    for changed in (_page("other"), _page(importance=0.9), _page(metadata={"k": 1}), _page(caption="c")):
        assert PLAIN.prepare_page(changed, identity=True).identity != PLAIN.prepare_page(page, identity=True).identity
    assert Codec("zstd").prepare_page(page, identity=True).identity == PLAIN.prepare_page(page, identity=True).identity


def test_the_header_alone_is_verified_without_the_body() -> None:
    data = PLAIN.encode_page(_page("body" * 1000), "mem_L3_1").data
    header = PLAIN.read_header(data[: PLAIN.header_end(data)], "mem_L3_1")
    assert (header.kind, PLAIN.page_fields(header)["page_id"]) == ("page", "a")
    assert header.checksum == PLAIN.decode_frame(data).checksum
    damaged = bytearray(data)
    damaged[HEADER_START + 3] ^= 1
    with pytest.raises(IntegrityError):
        PLAIN.read_header(bytes(damaged), "mem_L3_1")


def test_zstd_compresses_and_round_trips() -> None:
    page = _page("repetitive " * 10_000)
    plain, packed = PLAIN.encode_page(page, "k"), Codec("zstd").encode_page(page, "k")
    assert packed.size < plain.size / 10
    assert PLAIN.decode_page(packed.data, "k")[0] == page


def test_manifest_is_not_a_page() -> None:
    manifest = CheckpointManifest(name="n", created_at=datetime(2026, 1, 1), page_count=0, pages=[], checkpoint_id="c")
    with pytest.raises(IntegrityError, match="not a page"):
        PLAIN.decode_page(PLAIN.encode_manifest(manifest).data, "c")


def test_format_version_1_is_refused_by_name() -> None:
    data = bytearray(PLAIN.encode_page(_page(), "k").data)
    data[4] = 1
    with pytest.raises(IntegrityError, match="format version 1"):
        PLAIN.decode_page(bytes(data), "k")


def test_unserialisable_content_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="use str, bytes, or JSON data"):
        PLAIN.encode_page(MemoryPage(page_id="a", modality=Modality.STRUCTURED, content={"f": object()}), "k")
    with pytest.raises(InvalidInputError):
        PLAIN.encode_page(MemoryPage(page_id="a", modality=Modality.STRUCTURED, content={"nan": float("nan")}), "k")


def test_deep_nesting_is_refused_before_it_can_overflow() -> None:
    deep: object = "leaf"
    for _ in range(1000):
        deep = [deep]
    with pytest.raises(InvalidInputError, match=f"more than {MAX_DEPTH} deep"):
        PLAIN.encode_page(MemoryPage(page_id="a", modality=Modality.STRUCTURED, content=deep), "k")
    shallow: object = "leaf"
    for _ in range(MAX_DEPTH):
        shallow = {"k": shallow}
    page = MemoryPage(page_id="a", modality=Modality.STRUCTURED, content=shallow)
    assert PLAIN.decode_page(PLAIN.encode_page(page, "k").data, "k")[0] == page


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
    page, checksum = PLAIN.decode_page(dumped.stdout.encode(), "mem_L3_1")
    assert checksum is None
    assert (page.page_id, page.caption, page.dimensions, page.content) == ("m1", "a cat", (3, 4), "text body")
    dumped_back = page.model_dump_json()
    back = f"from chuk_ai_session_manager.memory import MemoryPage as P; P.model_validate_json({dumped_back!r})"
    subprocess.run([sys.executable, "-c", back], check=True, cwd=ROOT)


def test_legacy_json_that_is_not_a_page_is_an_integrity_error() -> None:
    with pytest.raises(IntegrityError):
        PLAIN.decode_page(b'{"not": "a page"}', "k")


def test_lone_surrogates_outside_text_content_are_refused() -> None:
    for fields in ({"metadata": {"\ud800": None}}, {"caption": "a\udfffb"}, {"provenance": ["\ud83d"]}):
        with pytest.raises(InvalidInputError, match="surrogate"):
            PLAIN.encode_page(MemoryPage(page_id="a", modality=Modality.TEXT, **fields), "k")
    text = _page("lone \ud800 kept")
    assert PLAIN.decode_page(PLAIN.encode_page(text, "k").data, "k")[0] == text


async def test_the_codec_refuses_a_released_memoryview_typed_on_every_path() -> None:
    view = memoryview(b"abc")
    view.release()
    page = MemoryPage(page_id="p", modality=Modality.IMAGE, content=view)
    with pytest.raises(InvalidInputError, match="released memoryview"):
        PLAIN.encode_page(page, "mem_L3_1")
    for compression in ("none", "zstd"):
        with pytest.raises(InvalidInputError, match="released memoryview"):
            await Codec(compression).prepare_page_off_loop(page, identity=True)
