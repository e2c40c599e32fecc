"""The codec of a scope: frames bound to the scope's prefix plus the key they are stored under (issue 28).

Contract: :class:`ScopedCodec` is the bridge's :class:`~tierstore.codec.Codec` for one scope's view of a store
(:class:`~tierstore.artifacts.scoped.PrefixedBackend`, whose keys are the scope's prefix plus the key the layers
above name). Every page frame and record it makes or checks, and a page's object metadata (``aid``), name the whole
key in the store, so a copy of one scope's object into another's prefix fails verification with IntegrityError.
A manifest's frame names the whole key too (its body keeps the checkpoint id), so a manifest copied into another
scope is IntegrityError wherever it is read there (restore, ``get_checkpoint_manifest``, ``fsck``). chuk's plain
JSON pages carry no key at all; a scope never holds one (only the root has pages written before tierstore), so in a
scope one is IntegrityError too. :func:`bound_key` is the key a frame names, for any codec. A module of its own so
that the protocol (which checks ``aid`` in its reuse proofs) and the artifacts both use it without importing each
other.
"""

from __future__ import annotations

from typing import Any

from tierstore.chuk import legacy_json
from tierstore.codec import Buffer, Codec, Compression, Encoded, Frame, Header, PreparedPage, documents, pages as _pages
from tierstore.enums import StorageTier
from tierstore.errors import IntegrityError
from tierstore.models import CheckpointManifest, MemoryPage


class ScopedCodec(Codec):
    """The bridge's codec, binding frames to ``prefix`` plus the key they are given (module contract)."""

    __slots__ = ("prefix",)

    def __init__(self, compression: Compression, prefix: str) -> None:
        super().__init__(compression)
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"ScopedCodec(compression={self.compression!r}, prefix={self.prefix!r})"

    def bound_key(self, key: str) -> str:
        """The key a frame stored under ``key`` in this scope names: the whole key in the store."""
        return self.prefix + key

    def _bound(self, key: str | None) -> str | None:
        return None if key is None else self.prefix + key

    def frame_page(self, prepared: PreparedPage, artifact_id: str | None) -> Encoded:
        """The frame of a prepared page under this scope's prefix plus ``artifact_id``."""
        return _pages.frame_page(prepared, self._bound(artifact_id))

    def encode_page(self, page: MemoryPage, key: str) -> Encoded:
        """:meth:`Codec.encode_page`, bound to the whole key."""
        return super().encode_page(page, self.prefix + key)

    def decode_page(self, data: Buffer, key: str | None) -> tuple[MemoryPage, str | None]:
        """:meth:`Codec.decode_page` of a frame bound to the whole key (never chuk's unbound JSON)."""
        self._framed(data, key)
        return super().decode_page(data, self._bound(key))

    async def decode_page_off_loop(self, data: Buffer, key: str, *, bound: bool) -> tuple[MemoryPage, str | None]:
        """:meth:`Codec.decode_page_off_loop` of a frame bound to the whole key (never chuk's unbound JSON)."""
        self._framed(data, key)
        return await super().decode_page_off_loop(data, self.prefix + key, bound=bound)

    def _framed(self, data: Buffer, key: str | None) -> None:
        if legacy_json.looks_like_json(data):
            where = f"{self.prefix}{key or ''}"
            raise IntegrityError(
                f"{where} holds a plain JSON page, bound to no key: a scope holds only frames", key=key
            )

    def encode_manifest(self, manifest: CheckpointManifest) -> Encoded:
        """:meth:`Codec.encode_manifest`, its frame bound to the whole key."""
        return documents.encode_manifest(manifest, self.prefix + manifest.checkpoint_id)

    def decode_manifest(self, data: Buffer, key: str | None) -> CheckpointManifest:
        """:meth:`Codec.decode_manifest` of a frame bound to the whole key."""
        return documents.decode_manifest(data, key, self._bound(key))

    def verified_checksum(self, data: Buffer, key: str | None) -> str:
        """:meth:`Codec.verified_checksum` of a frame bound to the whole key (never chuk's unbound JSON)."""
        self._framed(data, key)
        return super().verified_checksum(data, self._bound(key))

    def object_metadata(
        self, page: MemoryPage, tier: StorageTier, owner: str | None, encoded: Encoded, key: str, budget: int
    ) -> dict[str, str]:
        """:meth:`Codec.object_metadata` naming the whole key (``aid``)."""
        return super().object_metadata(page, tier, owner, encoded, self.prefix + key, budget)

    def encode_record(self, key: str, record: dict[str, Any]) -> Encoded:
        """The frame of a record under this scope's prefix plus ``key``."""
        return super().encode_record(self.prefix + key, record)

    def decode_record(self, data: Buffer, key: str) -> dict[str, Any]:
        """:meth:`Codec.decode_record` of a frame bound to the whole key."""
        return super().decode_record(data, self.prefix + key)

    def decode_frame(self, data: Buffer, key: str | None = None) -> Frame:
        """:meth:`Codec.decode_frame` of a frame bound to the whole key."""
        return super().decode_frame(data, self._bound(key))

    def read_header(self, data: Buffer, key: str | None = None) -> Header:
        """:meth:`Codec.read_header` of a frame bound to the whole key."""
        return super().read_header(data, self._bound(key))


def bound_key(codec: Codec, key: str) -> str:
    """The key a frame stored under ``key`` names, for ``codec`` (a scope's, or the root's: the key itself)."""
    return codec.bound_key(key) if isinstance(codec, ScopedCodec) else key
