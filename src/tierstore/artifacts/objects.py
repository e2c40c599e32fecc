"""Artifacts on tierstore's rich backend protocol: keys chosen by the bridge, deletions ordered by :mod:`refs`.

* A page is framed for the key it is claimed under (:mod:`tierstore.allocator`) and written with create-if-absent.
* Its object metadata carries a projection of its description (page id, modality, page type, tier, level,
  created, checksum, size, and the artifact id itself), percent-encoded ASCII inside S3's 2 KB, so
  ``describe`` needs no body read; a page id too long for that budget is read from the frame's header with a
  ranged read instead. ``describe`` refuses an object whose metadata names another artifact or another size.
* Deletions go through :class:`~tierstore.protocol.references.References`.
* The pages are listed in slices (:data:`ARTIFACT_SLICES`, :mod:`tierstore.backends.slices`) where the backend
  says that pays off: every artifact id under exactly one slice, so each page listed once. ``page_chunks`` gives
  them in key order as the listing comes where the backend lists in order, else sorted once the listing is whole.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import unquote

from tierstore import ids
from tierstore.allocator import IdAllocator
from tierstore.backends import slices
from tierstore.backends.base import METADATA_BUDGET, Checked, Chunks, ListEntry, ObjectInfo, StorageBackend
from tierstore.clock import Clock
from tierstore.codec import Buffer, Codec, Encoded, PreparedPage
from tierstore.concurrency import in_chunks
from tierstore.enums import StorageTier
from tierstore.errors import ConflictError, IntegrityError, ObjectNotFoundError
from tierstore.models import CheckpointManifest, MemoryPage, PageMetadata
from tierstore.protocol.references import References
from tierstore.scope_codec import bound_key
from tierstore.validate import clip

_HEADER_PROBE: Final = 64 * 1024
ARTIFACT_SLICES: Final = tuple(f"{ids.PAGE_PREFIX}{t.value}_{first}" for t in StorageTier for first in "123456789")
"""The slices of the page keys for a listing: an artifact id's tier and first digit (never 0)."""
_READ_AHEAD: Final = 2000
"""Listed entries waiting at most for a reader of ``page_chunks``: two pages of a cloud's listing."""


class ObjectArtifacts:
    """Pages and manifests on a rich backend (:class:`~tierstore.artifacts.Artifacts`)."""

    binds_keys = True

    def __init__(
        self,
        backend: StorageBackend,
        codec: Codec,
        *,
        concurrency: int,
        lease_ttl: timedelta,
        clock: Clock,
        refs: References | None = None,
        allocator: IdAllocator | None = None,
    ) -> None:
        """``refs`` and ``allocator``: given by a bridge bound to a scope (its records on this view of the store,
        and the ids it shares with its other scopes); built here on ``backend`` otherwise."""
        self.backend = backend
        self.codec = codec
        self.name = backend.name
        self.persistent = backend.persistent
        if refs is None:
            refs = References(backend, concurrency=concurrency, lease_ttl=lease_ttl, clock=clock, codec=codec)
        self.refs = refs
        """The protocol's records and deletions on this backend (:mod:`tierstore.protocol`)."""
        self._allocator = allocator or IdAllocator(backend, clock=clock, refs=self.refs, codec=codec)

    @property
    def allocator(self) -> IdAllocator:
        """The ids this store issues (a bound bridge's scopes share one: :mod:`tierstore.versions` claims with it)."""
        return self._allocator

    # -- ids -------------------------------------------------------------------------------------------------

    def artifact_key(self, value: object) -> str | None:
        """The key of an artifact id given by a caller; None for text that is no artifact id of this store. Raises
        InvalidInputError for what is not an id at all (wrong type, empty, control characters)."""
        text = ids.check_text_id(value, "artifact id")
        return text if ids.parse_artifact_id(text) else None

    def checkpoint_key(self, value: object) -> str | None:
        """The key of a checkpoint id given by a caller, as :meth:`artifact_key` does for artifacts."""
        text = ids.check_text_id(value, "checkpoint id")
        return text if ids.is_checkpoint_id(text) else None

    # -- pages -----------------------------------------------------------------------------------------------

    async def create_page(
        self, page: MemoryPage, prepared: PreparedPage, tier: StorageTier, owner: str | None
    ) -> tuple[str, Encoded]:
        """Frame a prepared page for this bridge's next free key and write it create-if-absent, with its
        description as object metadata and tags (``owner``: the checkpoint it is written for); returns the key and
        the frame written."""
        # Described by the codec from the page validated once, within the backend's rules: not checked again.
        tags = Checked(self.codec.page_tags(page, tier))
        written: list[Encoded] = []

        def send(key: str) -> tuple[Encoded, Awaitable[None]]:
            encoded = self.codec.frame_page(prepared, key)
            metadata = Checked(self.codec.object_metadata(page, tier, owner, encoded, key, METADATA_BUDGET))
            body = Chunks(encoded.head, encoded.body)  # the page's content is never copied into a joined frame
            return encoded, self.backend.put(key, body, metadata=metadata, tags=tags, tier=tier, if_absent=True)

        async def write(key: str) -> None:
            encoded, sending = send(key)
            await sending
            written.append(encoded)

        key = self._allocator.ready_key(tier)  # while a block of ids lasts: no coroutine of claim's and write's
        if key is not None:
            encoded, sending = send(key)
            try:
                await sending
                return key, encoded
            except ConflictError:
                pass  # the key is taken (an object copied in from elsewhere): the next, as claim does
        key = await self._allocator.claim(tier, write)
        return key, written[-1]

    async def ensure_registered(self) -> None:
        """The root has no registry of scopes: nothing to do (a scope's artifacts have one)."""

    async def read(self, key: str) -> Buffer | None:
        """The stored bytes of an artifact, unverified; None when there is none."""
        return await self.backend.get(key)

    async def describe(self, key: str) -> PageMetadata | None:
        """The page's description from its object metadata (a ranged read of its header where the page id did not
        fit); IntegrityError for metadata that names another artifact or size."""
        info = await self.backend.head(key)
        return None if info is None else await self.described(key, info)

    async def described(self, key: str, info: ObjectInfo) -> PageMetadata:
        """:meth:`describe` from ``info``, what a ``head`` of ``key`` answered."""
        meta = info.metadata
        bound = bound_key(self.codec, key)
        if meta.get("aid") != bound:
            named = "no artifact" if meta.get("aid") is None else f"artifact {clip(repr(meta['aid']), 80)}"
            raise IntegrityError(
                f"{bound}: its object metadata names {named}, not this key (copied from elsewhere, or damaged)",
                key=key,
            )
        if meta.get("size", str(info.size)) != str(info.size):
            raise IntegrityError(f"{key}: the object is {info.size} bytes, but {meta['size']} were written", key=key)
        extra: dict[str, Any] = {
            "artifact_id": key,
            "size_bytes": info.size,
            "storage_class": info.storage_class,
            "archived": info.archived,
            "restore_state": info.restore.state if info.restore else None,
            "restore_expires_at": info.restore.expires_at if info.restore else None,
            "tier": info.tier.value if info.tier else meta.get("tier", ""),
            "checksum": meta.get("checksum"),
        }
        try:
            if "pageid" in meta:
                return PageMetadata(
                    page_id=unquote(meta["pageid"]),
                    modality=meta["modality"],
                    compression_level=int(meta["level"]),
                    created_at=datetime.fromisoformat(unquote(meta["created"])),
                    page_type=meta.get("pagetype"),
                    **extra,
                )
            fields = await self.header_fields(key)
            return PageMetadata(
                page_id=fields["page_id"],
                modality=fields["modality"],
                compression_level=int(fields.get("compression_level", 0)),
                created_at=datetime.fromisoformat(fields["created_at"]),
                page_type=fields.get("page_type"),
                **extra,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"{key}: the object's description is malformed ({exc})", key=key) from exc

    async def header_fields(self, key: str) -> dict[str, Any]:
        """The page fields of a stored frame, from a ranged read of its start (the body is not read)."""
        head = await self.backend.get_range(key, 0, _HEADER_PROBE)
        if head is None:
            raise ObjectNotFoundError(key)
        try:
            end = self.codec.header_end(head)
            if len(head) < end:
                head = await self.backend.get_range(key, 0, end) or b""
            header = self.codec.read_header(head, key)
            if header.kind != "page":
                raise IntegrityError(f"object is a {header.kind}, not a page")
            return self.codec.page_fields(header)
        except IntegrityError as exc:
            raise IntegrityError(f"{key}: {exc}", key=key) from exc

    async def delete_page(self, key: str) -> int | None:
        """Delete a page through the protocol (its tomb first); its size, or None when there was none (0 when
        damaged)."""
        try:
            info = await self.backend.head(key)
        except IntegrityError:
            size: int | None = 0  # damaged, but there: deleting it is how it goes away
        else:
            size = None if info is None else info.size
        if size is not None:
            await self.refs.delete_recorded([key])
        return size

    async def discard(self, keys: list[str]) -> None:
        """Delete artifacts only this bridge knows of (a failed checkpoint's uploads)."""
        if keys:
            await self.backend.delete_many(keys)

    async def page_keys(self) -> list[str]:
        """Every page's key (checkpoint manifests and bookkeeping excluded)."""
        return [entry.key for entry in await self.page_entries()]

    async def page_entries(self) -> list[ListEntry]:
        """Every page's key with its size and time, from the listing alone (one request per thousand on a cloud; a
        custom backend's listing has neither, so they are 0 and None)."""
        listed = await slices.list_under(self.backend, ARTIFACT_SLICES)
        entries = [entry for entry in listed if ids.parse_artifact_id(entry.key)]
        return sorted(entries, key=lambda entry: artifact_order(entry.key))

    async def page_chunks(self) -> AsyncGenerator[list[ListEntry], None]:
        """The entries ``page_entries`` gives, in key order instead, in chunks: each as its listing page comes where
        the backend lists in order (read a page or two ahead while the caller works), else one chunk once the
        listing is whole (module contract)."""
        if slices.pays_off(self.backend) or not slices.lists_in_order(self.backend):
            yield sorted(await self.page_entries(), key=lambda entry: entry.key)
            return
        chunks = in_chunks(self._listed_pages(), ahead=_READ_AHEAD)
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                yield chunk

    async def _listed_pages(self) -> AsyncIterator[ListEntry]:
        async for entry in slices.list_streamed(self.backend, slices.common_prefix(ARTIFACT_SLICES)):
            if entry.key.startswith(ARTIFACT_SLICES) and ids.parse_artifact_id(entry.key):
                yield entry

    # -- checkpoints ---------------------------------------------------------------------------------------

    async def checkpoint_keys(self) -> list[str]:
        """Every listed checkpoint's key, oldest first."""
        return await self.refs.manifests.keys()

    async def manifest(self, key: str) -> CheckpointManifest | None:
        """A checkpoint's manifest as the store holds it now (read afresh: deleted or damaged since is seen); None
        when absent; IntegrityError when it cannot be read."""
        return await self.refs.manifests.get(key, fresh=True)

    async def write_manifest(self, manifest: CheckpointManifest) -> str:
        """Write a manifest, create-if-absent (the last step of a checkpoint); returns the checkpoint's id."""
        key = manifest.checkpoint_id
        await self.backend.put(
            key, self.codec.encode_manifest(manifest).data, metadata={"kind": "manifest"}, if_absent=True
        )
        self.refs.manifests.remember(manifest)
        return key

    async def delete_checkpoint(self, key: str, manifest: CheckpointManifest | None) -> None:
        """Delete a checkpoint and what only it references; ``manifest`` None: it is damaged, drop it alone."""
        await self.backend.delete(key)
        self.refs.manifests.forget(key)
        if manifest is not None:
            await self.refs.sweep(dict.fromkeys((e.artifact_id for e in manifest.pages), None))

    # -- the rest ------------------------------------------------------------------------------------------

    def usage(self) -> tuple[int, int, int] | None:
        """``(pages, bytes, checkpoints)`` when known without I/O."""
        pages = self.backend.usage(ids.PAGE_PREFIX)
        checkpoints = self.backend.usage(ids.CHECKPOINT_PREFIX)
        if pages is None or checkpoints is None:
            return None
        return pages[0], pages[1], checkpoints[0]

    async def aclose(self) -> None:
        """Release the backend's clients."""
        await self.backend.aclose()


def artifact_order(key: str) -> tuple[str, int]:
    """Where an artifact id comes in a listing: by tier, then by number (anything else last)."""
    parsed = ids.parse_artifact_id(key)
    return (parsed[0].value, parsed[1]) if parsed else ("~", 0)
