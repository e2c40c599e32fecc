"""How pages, checkpoint manifests and bookkeeping records are encoded in storage: one :class:`Codec`.

The bridge builds one ``Codec`` from its settings (compression today; client-side encryption keys would go here
too) and hands it to everything that reads or writes frames: the artifacts seam, the deletion protocol's records,
the id allocator, maintenance. Nothing else passes encoding options around. The parts, each small:

* :mod:`~tierstore.codec.frame`: the frame format (layout, digests, key binding), verified before anything is
  parsed;
* :mod:`~tierstore.codec.pages`: a page's content and fields in a frame, and its identity;
* :mod:`~tierstore.codec.documents`: manifests and records in frames;
* :mod:`~tierstore.codec.metadata`: a page's description as object metadata and tags;
* :mod:`~tierstore.codec.compression`: zstd, optional;
* :mod:`~tierstore.codec.speed`: hashing and write tokens that keep the event loop cheap; pages above
  :data:`BIG_PAGE` are encoded and decoded in a worker thread (:meth:`Codec.prepare_page_off_loop`,
  :meth:`Codec.decode_page_off_loop`): structured content whose encoding may exceed it, as a bounded look at it
  says (:mod:`~tierstore.codec.estimate`, no encoding on the loop), and a compressed frame whose body unpacks
  above it, as zstd's frame header says.

chuk-ai-session-manager's plain JSON pages are read through :mod:`tierstore.chuk.legacy_json`. This package
imports nothing from ``backends/`` or from the bridge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Final

from tierstore.chuk import legacy_json
from tierstore.codec import documents, frame, metadata, pages
from tierstore.codec.compression import COMPRESSIONS, Compression, check_compression
from tierstore.codec.estimate import may_exceed, text_size
from tierstore.codec.frame import HEADER_START, VERSION, Buffer, Encoded, Frame, Header, Kind
from tierstore.codec.pages import VOLATILE_FIELDS, PreparedPage
from tierstore.enums import StorageTier
from tierstore.errors import IntegrityError
from tierstore.models import CheckpointManifest, MemoryPage

__all__ = [
    "BIG_PAGE",
    "COMPRESSIONS",
    "HEADER_START",
    "PLAIN",
    "VERSION",
    "VOLATILE_FIELDS",
    "Buffer",
    "Codec",
    "Compression",
    "Encoded",
    "Frame",
    "Header",
    "Kind",
    "PreparedPage",
    "is_big",
]

BIG_PAGE: Final = 1 << 20
"""Pages (and frames) above this size are encoded and decoded in a worker thread, off the event loop."""


def is_big(page: MemoryPage) -> bool:
    """Whether a page is encoded in a worker thread, off the event loop: when its content and metadata may take
    more than :data:`BIG_PAGE` encoded, as a bounded look at them says (:mod:`tierstore.codec.estimate`)."""
    content = page.content
    if isinstance(content, str):
        size = text_size(content)
    elif isinstance(content, bytes | bytearray):
        size = len(content)
    elif isinstance(content, memoryview):
        try:
            size = content.nbytes
        except ValueError:  # released: refused typed when it is encoded
            return False
    else:
        return may_exceed((content, page.metadata), BIG_PAGE)
    return size > BIG_PAGE or (bool(page.metadata) and may_exceed((page.metadata,), BIG_PAGE - size))


class Codec:
    """How this bridge encodes what it stores: frame format 2, with ``compression`` for page bodies.

    Decoding reads every frame the format allows, whatever this codec's own compression (a bridge without zstd
    reads pages a bridge with it wrote, if the extra is installed). Immutable and safe to share between threads.
    """

    __slots__ = ("compression",)

    def __init__(self, compression: Compression = "none") -> None:
        self.compression: Final[Compression] = check_compression(compression)

    def __repr__(self) -> str:
        return f"Codec(compression={self.compression!r})"

    # -- pages ------------------------------------------------------------------------------------------------

    def prepare_page(self, page: MemoryPage, *, identity: bool = False) -> PreparedPage:
        """Encode a validated page's content and fields once, before it has a key (``identity``: also compute
        :attr:`PreparedPage.identity`, which only checkpoints need)."""
        return pages.prepare_page(page, self.compression, identity=identity)

    async def prepare_page_off_loop(self, page: MemoryPage, *, identity: bool = False) -> PreparedPage:
        """:meth:`prepare_page`, in a worker thread for a page above :data:`BIG_PAGE` (the loop stays free)."""
        if is_big(page):
            return await asyncio.to_thread(pages.prepare_page, page, self.compression, identity=identity)
        return pages.prepare_page(page, self.compression, identity=identity)

    frame_page = staticmethod(pages.frame_page)
    """The frame of a prepared page under a key (None: a key the backend chooses), with a write token of its own
    (:func:`tierstore.codec.pages.frame_page`, called once per page stored: no method layer around it)."""

    def encode_page(self, page: MemoryPage, key: str) -> Encoded:
        """:meth:`prepare_page` then :meth:`frame_page`."""
        return pages.frame_page(pages.prepare_page(page, self.compression), key)

    def decode_page(self, data: Buffer, key: str | None) -> tuple[MemoryPage, str | None]:
        """The page stored under ``key`` (None: the frame is not bound to where it sits) and the checksum it was
        verified against (None for chuk's plain JSON)."""
        return pages.decode_page(data, key)

    async def decode_page_off_loop(self, data: Buffer, key: str, *, bound: bool) -> tuple[MemoryPage, str | None]:
        """:meth:`decode_page` of what was read from ``key`` (``bound``: the frame names that key; False where the
        store chose the key after the write), in a worker thread above :data:`BIG_PAGE`; IntegrityError naming
        ``key``."""
        try:
            if self.is_big_frame(data):
                return await asyncio.to_thread(pages.decode_page, data, key if bound else None)
            return pages.decode_page(data, key if bound else None)
        except IntegrityError as exc:
            raise IntegrityError(f"{key}: {exc}", key=key) from exc

    def verified_checksum(self, data: Buffer, key: str | None) -> str:
        """The checksum an object of any kind is verified against: its frame's (:meth:`decode_frame`), or for
        chuk's plain JSON page, which has none, the SHA-256 of its bytes once they parse as a page."""
        if legacy_json.looks_like_json(data):
            return legacy_json.json_page_checksum(data)
        return frame.decode_frame(data, key).checksum

    def is_big_frame(self, data: Buffer) -> bool:
        """Whether decoding ``data`` belongs in a worker thread: above :data:`BIG_PAGE` once decompressed (a small
        zstd frame may unpack to far more; its frame header says how much), or of a size its header does not say."""
        unpacked = frame.decoded_size(data)
        return unpacked is None or unpacked > BIG_PAGE

    def page_fields(self, header: Header) -> dict[str, Any]:
        """The page fields (all but content) of a verified page header."""
        return pages.page_fields(header)

    def object_metadata(
        self, page: MemoryPage, tier: StorageTier, owner: str | None, encoded: Encoded, key: str, budget: int
    ) -> dict[str, str]:
        """The page's description as object metadata for its frame ``encoded`` under ``key``, within ``budget``
        bytes (:mod:`tierstore.codec.metadata`)."""
        return metadata.object_metadata(page, tier, owner, key, encoded.checksum, encoded.size, budget)

    def page_tags(self, page: MemoryPage, tier: StorageTier) -> Mapping[str, str]:
        """The tags a page stored in ``tier`` carries where the cloud has tags (shared: never change them)."""
        return metadata.page_tags(page, tier)

    # -- manifests and records ------------------------------------------------------------------------------

    def encode_manifest(self, manifest: CheckpointManifest) -> Encoded:
        """The frame of a checkpoint manifest, bound to its checkpoint id."""
        return documents.encode_manifest(manifest)

    def decode_manifest(self, data: Buffer, key: str | None) -> CheckpointManifest:
        """The manifest stored under ``key``, verified."""
        return documents.decode_manifest(data, key)

    def encode_record(self, key: str, record: dict[str, Any]) -> Encoded:
        """The frame of a bookkeeping record (lease, tomb, id block) under ``key``."""
        return documents.encode_record(key, record)

    def decode_record(self, data: Buffer, key: str) -> dict[str, Any]:
        """The record stored under ``key``, verified."""
        return documents.decode_record(data, key)

    # -- frames of any kind ---------------------------------------------------------------------------------

    def decode_frame(self, data: Buffer, key: str | None = None) -> Frame:
        """A whole frame, verified (length, header digest, key binding, body digest) and decompressed."""
        return frame.decode_frame(data, key)

    def read_header(self, data: Buffer, key: str | None = None) -> Header:
        """The verified header of a frame from its first :meth:`header_end` bytes (the body is not checked)."""
        return frame.read_header(data, key)

    def header_end(self, data: Buffer) -> int:
        """How many bytes from the start of a frame hold its prefix, digest, header and page section."""
        return frame.header_end(data)

    def kind_of(self, data: Buffer) -> Kind:
        """The kind of frame ``data`` starts with (its prefix checked, nothing else)."""
        return frame.read_prefix(data)[0]


PLAIN: Final = Codec()
"""A codec without compression: for code that has no bridge (tests, tools) and for records and manifests, which are
never compressed."""
