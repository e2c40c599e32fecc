"""Artifacts on a backend written to the spec's *Custom Backend* interface (see :mod:`tierstore.simple`).

Such a backend chooses its own artifact ids after the write, so frames cannot name the key they sit under, and
any text is a possible id. Listing tells pages from checkpoint manifests by reading each object's frame (once per
id). There are no leases or tombs: nothing here runs maintenance, and checkpoints upload every page. Tier changes,
restores and maintenance raise NotSupportedError (the bridge says so: it holds no protocol for such a store).
The five calls give no metadata back, so a page's tier in ``describe`` is the one it was stored in where this
object stored it, else the one ``store_page`` picks for it without an explicit tier (L3 unless the page says L2-L4).
"""

from __future__ import annotations

from typing import Any

from tierstore import ids
from tierstore.backends.base import ListEntry
from tierstore.codec import Buffer, Codec, Encoded, PreparedPage
from tierstore.enums import StorageTier
from tierstore.errors import IntegrityError, TierstoreError
from tierstore.models import CheckpointManifest, MemoryPage, PageMetadata
from tierstore.simple import SimpleBackend
from tierstore.validate import resolve_tier, type_name


class CustomArtifacts:
    """Pages and manifests on a backend of the spec's Custom Backend interface
    (:class:`~tierstore.artifacts.Artifacts`)."""

    binds_keys = False

    def __init__(self, backend: SimpleBackend, codec: Codec) -> None:
        self.backend = backend
        self.codec = codec
        self.name = str(getattr(backend, "name", type(backend).__name__))
        self.persistent = bool(getattr(backend, "persistent", True))
        self._kinds: dict[str, str | None] = {}
        self._tiers: dict[str, StorageTier] = {}

    def artifact_key(self, value: object) -> str | None:
        """The key of an artifact id given by a caller; None for text that is no artifact id of this store. Raises
        InvalidInputError for what is not an id at all (wrong type, empty, control characters)."""
        return ids.check_text_id(value, "artifact id")

    def checkpoint_key(self, value: object) -> str | None:
        """The key of a checkpoint id given by a caller, as :meth:`artifact_key` does for artifacts."""
        return ids.check_text_id(value, "checkpoint id")

    async def _store(self, name: str, data: bytes, metadata: dict[str, Any]) -> str:
        artifact = await self.backend.store(name, data, metadata)
        if not isinstance(artifact, str) or not artifact:
            raise TierstoreError(f"{type_name(self.backend)}.store returned {artifact!r}, not an artifact id")
        return artifact

    async def create_page(
        self, page: MemoryPage, prepared: PreparedPage, tier: StorageTier, owner: str | None
    ) -> tuple[str, Encoded]:
        """Store a prepared page as a new artifact (``owner``: the checkpoint it is written for); its key and
        frame."""
        encoded = self.codec.frame_page(prepared, None)
        described = _metadata(page, None, encoded.checksum, encoded.size, tier)
        artifact = await self._store(page.page_id, encoded.data, described.model_dump(mode="json"))
        self._kinds[artifact] = "page"
        self._tiers[artifact] = tier
        return artifact, encoded

    async def ensure_registered(self) -> None:
        """A custom backend has no scopes, so no registry: nothing to do."""

    async def read(self, key: str) -> Buffer | None:
        """The stored bytes of an artifact, unverified; None when there is none."""
        data = await self.backend.load(key)
        return None if data is None else bytes(data)

    async def describe(self, key: str) -> PageMetadata | None:
        """What is known of a stored page without reading its body where the store allows; None when absent."""
        data = await self.read(key)
        if data is None:
            return None
        try:
            page, checksum = self.codec.decode_page(data, None)
        except IntegrityError as exc:
            raise IntegrityError(f"{key}: {exc}", key=key) from exc
        return _metadata(page, key, checksum, len(data), self._tiers.get(key) or resolve_tier(page, None))

    async def delete_page(self, key: str) -> int | None:
        """Delete a page; returns its size, or None when there was none."""
        self._tiers.pop(key, None)
        return 0 if await self.backend.delete(key) else None

    async def discard(self, keys: list[str]) -> None:
        """Delete artifacts only this bridge knows of (a failed checkpoint's uploads)."""
        for key in keys:
            await self.backend.delete(key)

    async def _keys_of(self, kind: str) -> list[str]:
        found = []
        for key in [str(k) for k in await self.backend.list_pages()]:
            if key not in self._kinds:
                self._kinds[key] = await self._kind(key)
            if self._kinds[key] == kind:
                found.append(key)
        return found

    async def _kind(self, key: str) -> str | None:
        data = await self.read(key)
        if data is None:
            return None
        if data[:1] == b"{":
            return "page"
        try:
            return self.codec.kind_of(data)
        except IntegrityError:
            return None

    async def page_keys(self) -> list[str]:
        """Every page's key (checkpoint manifests and bookkeeping excluded)."""
        return await self._keys_of("page")

    async def page_entries(self) -> list[ListEntry]:
        """Every page's key with its size and time, from the listing alone (one request per thousand on a cloud; a
        custom backend's listing has neither, so they are 0 and None)."""
        return [ListEntry(key, 0, None) for key in await self.page_keys()]

    async def checkpoint_keys(self) -> list[str]:
        """Every listed checkpoint's key, oldest first."""
        return await self._keys_of("manifest")

    async def manifest(self, key: str) -> CheckpointManifest | None:
        """A checkpoint's manifest; None when absent; IntegrityError when it cannot be read."""
        data = await self.read(key)
        if data is None:
            return None
        try:
            manifest = self.codec.decode_manifest(data, None)
        except IntegrityError as exc:
            raise IntegrityError(f"{key}: {exc}", key=key) from exc
        manifest.checkpoint_id = key
        return manifest

    async def write_manifest(self, manifest: CheckpointManifest) -> str:
        """Write a manifest, create-if-absent (the last step of a checkpoint); returns the checkpoint's id."""
        data = self.codec.encode_manifest(manifest).data
        stored = await self._store(manifest.checkpoint_id, data, {"kind": "checkpoint"})
        self._kinds[stored] = "manifest"
        manifest.checkpoint_id = stored
        return stored

    async def delete_checkpoint(self, key: str, manifest: CheckpointManifest | None) -> None:
        """Delete a checkpoint and what only it references; ``manifest`` None: it is damaged, drop it alone."""
        await self.backend.delete(key)
        self._kinds.pop(key, None)
        if manifest is None:
            return
        others = [await self.manifest(k) for k in await self.checkpoint_keys()]
        keep = {e.artifact_id for m in others if m is not None for e in m.pages}
        for artifact in sorted({e.artifact_id for e in manifest.pages} - keep):
            await self.backend.delete(artifact)
            self._kinds.pop(artifact, None)

    def usage(self) -> tuple[int, int, int] | None:
        """Not known without I/O: a custom backend says nothing of sizes."""
        return None

    async def aclose(self) -> None:
        """Release the backend's clients."""
        close = getattr(self.backend, "aclose", None)
        if close is not None:
            await close()


def _metadata(
    page: MemoryPage, artifact_id: str | None, checksum: str | None, size: int, tier: StorageTier | None
) -> PageMetadata:
    return PageMetadata(
        page_id=page.page_id,
        modality=page.modality.value,
        tier=(tier or page.storage_tier).value,
        compression_level=int(page.compression_level),
        size_bytes=size,
        created_at=page.created_at,
        checksum=checksum,
        artifact_id=artifact_id,
        page_type=page.page_type.value,
    )
