"""ArtifactsBridge: moves pages between the process and a storage backend.

Data flows one way: page -> codec -> bridge -> backend protocol -> provider adapter. The bridge chooses every
key it writes (see :mod:`tierstore.ids`) and never overwrites one: ids are claimed with create-if-absent writes.

A backend written to the spec's "Custom Backend" interface (``store``/``load``/``delete``/``exists``/
``list_pages``, see :mod:`tierstore.simple`) works unchanged; the built-in
backends implement the richer :class:`~tierstore.backends.base.StorageBackend` protocol, which the bridge needs for
unique ids across processes, metadata without reading bodies and incremental checkpoints.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote, unquote

from tierstore import codec, ids
from tierstore.allocator import IdAllocator
from tierstore.backends.base import METADATA_BUDGET, RestoreSpeed, RestoreStatus, StorageBackend
from tierstore.backends.memory import InMemoryBackend
from tierstore.chuk_calls import ChukCalls
from tierstore.enums import StorageTier
from tierstore.errors import (
    ArchivedPageError,
    IntegrityError,
    InvalidInputError,
    NotSupportedError,
    ObjectNotFoundError,
    TierstoreError,
)
from tierstore.models import CheckpointEntry, CheckpointManifest, MemoryPage, PageMetadata, StorageStats
from tierstore.simple import SimpleBackend, is_simple_backend

if TYPE_CHECKING:
    from tierstore.config import TierstoreSettings

T = TypeVar("T")

_PERSISTENT_TIERS = (StorageTier.L2, StorageTier.L3, StorageTier.L4)
_BIG_PAGE = 1 << 20  # encode and decode pages above this size in a worker thread
_HEADER_PROBE = 64 * 1024


@dataclass(frozen=True, slots=True)
class _Recorded:
    """The artifact a page was last checkpointed or restored from, for incremental checkpoints."""

    artifact_id: str
    checksum: str
    tier: StorageTier
    at: float


class ArtifactsBridge(ChukCalls):
    """Stores, loads, lists and checkpoints pages on one backend. Safe to share within one event loop."""

    def __init__(
        self,
        backend: StorageBackend | SimpleBackend | None = None,
        *,
        compression: codec.Compression = "none",
        concurrency: int = 32,
        reuse_window: timedelta = timedelta(days=1),
        intent_ttl: timedelta = timedelta(hours=6),
        session_id: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise InvalidInputError("concurrency must be at least 1")
        self.backend: StorageBackend | SimpleBackend = backend if backend is not None else InMemoryBackend()
        self._rich: StorageBackend | None = None
        self._simple: SimpleBackend | None = None
        if isinstance(self.backend, StorageBackend):
            self._rich = self.backend
        elif is_simple_backend(self.backend):
            self._simple = self.backend
        else:
            raise InvalidInputError(
                f"{type(self.backend).__name__} is not a storage backend: implement store/load/delete/exists/"
                "list_pages (the spec's Custom Backend) or tierstore's StorageBackend protocol"
            )
        self.compression: codec.Compression = compression
        self._limit = asyncio.Semaphore(concurrency)
        self._reuse_window = reuse_window.total_seconds()
        self.intent_ttl = intent_ttl
        self.session_id = session_id
        self._allocator = IdAllocator(self._rich) if self._rich is not None else None
        self._recorded: dict[str, _Recorded] = {}
        self._manifests: dict[str, CheckpointManifest] = {}
        self._records: dict[str, dict[str, Any]] = {}
        self._tally_pages = 0
        self._tally_bytes = 0

    def __repr__(self) -> str:
        return f"ArtifactsBridge(backend={self.backend!r})"

    @classmethod
    def from_env(cls, settings: TierstoreSettings | None = None) -> ArtifactsBridge:
        """A bridge on the backend that the ``TIERSTORE_*`` environment (or ``settings``) names."""
        from tierstore.config import bridge_from_env

        return bridge_from_env(settings)

    # -- pages ----------------------------------------------------------------------------------------------

    async def store_page(self, page: MemoryPage, tier: StorageTier | None = None) -> str:
        """Store a page as a new artifact and return its id (``mem_{tier}_{sequence}``)."""
        page = _check_page(page)
        tier = _resolve_tier(page, tier)
        encoded = await self._encode(page)
        artifact = await self._put_new(page, encoded, tier, owner=None)
        self._tally_pages += 1
        self._tally_bytes += len(encoded.data)
        return artifact

    async def load_page(self, artifact_id: str) -> MemoryPage | None:
        """The stored page, verified against its checksum; None when there is no such artifact."""
        data = await self._get(self._check_artifact(artifact_id))
        if data is None:
            return None
        page, _checksum = await self._decode(data, artifact_id)
        return page

    async def delete_page(self, artifact_id: str) -> bool:
        key = self._check_artifact(artifact_id)
        if self._rich is None:
            return bool(await self._simple_backend().delete(key))
        info = await self._rich.head(key)
        if info is None:
            return False
        await self._write_record("d", {"deleted": [key]})
        existed = await self._rich.delete(key)
        if existed:
            self._tally_pages -= 1
            self._tally_bytes -= info.size
        self._forget({key})
        return existed

    async def list_pages(self) -> list[str]:
        """Every stored page's artifact id (checkpoint manifests and bookkeeping excluded)."""
        if self._rich is None:
            return [aid for aid in await self._simple_ids() if await self._simple_kind(aid) == "page"]
        keys = [entry.key async for entry in self._rich.list(ids.PAGE_PREFIX)]
        return sorted(keys, key=_artifact_order)

    async def get_metadata(self, artifact_id: str) -> PageMetadata | None:
        """What is known of a stored page, without reading its body."""
        key = self._check_artifact(artifact_id)
        if self._rich is None:
            data = await self._get(key)
            if data is None:
                return None
            page, checksum = await self._decode(data, key)
            return _metadata_from_page(page, key, checksum, len(data))
        info = await self._rich.head(key)
        if info is None:
            return None
        meta = info.metadata
        extra: dict[str, Any] = {
            "artifact_id": key,
            "size_bytes": info.size,
            "storage_class": info.storage_class,
            "archived": info.archived,
            "restore_state": info.restore.state if info.restore else None,
            "restore_expires_at": info.restore.expires_at if info.restore else None,
            "tier": (info.tier.value if info.tier else meta.get("tier", "")),
        }
        if "pageid" in meta:
            return PageMetadata(
                page_id=unquote(meta["pageid"]),
                modality=meta.get("modality", ""),
                compression_level=int(meta.get("level", "0")),
                created_at=datetime.fromisoformat(unquote(meta["created"])),
                checksum=meta.get("checksum"),
                page_type=meta.get("pagetype"),
                **extra,
            )
        page_fields = await self._read_header(key)
        return PageMetadata(
            page_id=page_fields["page_id"],
            modality=page_fields["modality"],
            compression_level=int(page_fields.get("compression_level", 0)),
            created_at=datetime.fromisoformat(page_fields["created_at"]),
            checksum=meta.get("checksum"),
            page_type=page_fields.get("page_type"),
            **extra,
        )

    async def set_tier(self, artifact_id: str, tier: StorageTier) -> None:
        """Move an artifact to another tier in place (storage class and tags follow); its id does not change."""
        if tier not in _PERSISTENT_TIERS:
            raise InvalidInputError(f"stored artifacts live in L2-L4, not {tier.value}")
        await self._require_rich("set_tier").set_tier(self._check_artifact(artifact_id), tier)

    async def restore_page(self, artifact_id: str, *, days: int = 1, speed: RestoreSpeed = "standard") -> RestoreStatus:
        """Ask the backend to bring an archived artifact back; load it once the status is ``restored``."""
        if days < 1:
            raise InvalidInputError("days must be at least 1")
        return await self._require_rich("restore_page").restore(
            self._check_artifact(artifact_id), days=days, speed=speed
        )

    # -- statistics ---------------------------------------------------------------------------------------

    def get_stats(self) -> StorageStats:
        """Pages and bytes stored, without I/O: exact for local backends, else this bridge's own tally."""
        name = str(getattr(self.backend, "name", type(self.backend).__name__))
        persistent = bool(getattr(self.backend, "persistent", True))
        usage = self._rich.usage(ids.PAGE_PREFIX) if self._rich is not None else None
        if usage is not None:
            checkpoints = self._rich.usage(ids.CHECKPOINT_PREFIX) if self._rich is not None else None
            return StorageStats(
                backend=name,
                persistent=persistent,
                pages_stored=usage[0],
                total_bytes=usage[1],
                checkpoints=checkpoints[0] if checkpoints else 0,
            )
        return StorageStats(
            backend=name,
            persistent=persistent,
            pages_stored=self._tally_pages,
            total_bytes=self._tally_bytes,
            exact=False,
        )

    async def collect_stats(self) -> StorageStats:
        """Exact figures, by listing the store."""
        rich = self._require_rich("collect_stats")
        sizes = [entry.size async for entry in rich.list(ids.PAGE_PREFIX)]
        checkpoints = [entry async for entry in rich.list(ids.CHECKPOINT_PREFIX)]
        return StorageStats(
            backend=rich.name,
            persistent=rich.persistent,
            pages_stored=len(sizes),
            total_bytes=sum(sizes),
            checkpoints=len(checkpoints),
        )

    # -- checkpoints ----------------------------------------------------------------------------------------

    async def checkpoint(self, pages: Iterable[MemoryPage], name: str) -> str:
        """Store ``pages`` and a manifest naming them; returns the checkpoint id.

        Pages go up concurrently (bounded); the manifest is written last with create-if-absent, so a checkpoint
        that fails or crashes half-way is never listed. A page whose encoding is byte-identical to the artifact
        this bridge last checkpointed or restored for it is not uploaded again.
        """
        pages = [_check_page(p) for p in pages]
        ids.check_text_id(name, "checkpoint name")
        now = datetime.now(UTC)
        checkpoint_id = ids.timestamped(ids.CHECKPOINT_PREFIX, now)
        intent_key = ids.INTENT_PREFIX + checkpoint_id
        encoded = await self._gather(self._encode(p) for p in pages)
        tiers = [_resolve_tier(p, None) for p in pages]
        reused = await self._claim_reuse(checkpoint_id, pages, encoded)
        written: list[str] = []
        try:

            async def upload(i: int) -> str:
                if i in reused:
                    return reused[i].artifact_id
                artifact = await self._put_new(pages[i], encoded[i], tiers[i], owner=checkpoint_id)
                written.append(artifact)
                return artifact

            artifacts = await self._gather(upload(i) for i in range(len(pages)))
            entries = [
                CheckpointEntry(
                    page_id=p.page_id,
                    artifact_id=a,
                    modality=p.modality.value,
                    tier=(reused[i].tier if i in reused else tiers[i]).value,
                    checksum=e.checksum,
                    size_bytes=len(e.data),
                )
                for i, (p, a, e) in enumerate(zip(pages, artifacts, encoded, strict=True))
            ]
            manifest = CheckpointManifest(
                name=name,
                created_at=now.replace(tzinfo=None),
                page_count=len(entries),
                pages=entries,
                checkpoint_id=checkpoint_id,
            )
            checkpoint_id = await self._put_manifest(checkpoint_id, manifest)
        except BaseException:
            await self._abandon(written)
            raise
        finally:
            if reused and self._rich is not None:
                await _quietly(self._rich.delete(intent_key))
        self._tally_pages += len(written)
        self._tally_bytes += sum(len(e.data) for i, e in enumerate(encoded) if i not in reused)
        self._manifests[checkpoint_id] = manifest
        self._remember(manifest.pages)
        return checkpoint_id

    async def restore_checkpoint(self, checkpoint_id: str) -> list[MemoryPage]:
        """Every page of the checkpoint, each verified; raises rather than return a partial restore."""
        manifest = await self.get_checkpoint_manifest(checkpoint_id)
        if manifest is None:
            raise ObjectNotFoundError(checkpoint_id)

        async def fetch(entry: CheckpointEntry) -> MemoryPage:
            data = await self._get(entry.artifact_id)
            if data is None:
                raise IntegrityError(f"page {entry.page_id!r} is missing: {entry.artifact_id}", key=entry.artifact_id)
            page, checksum = await self._decode(data, entry.artifact_id)
            if page.page_id != entry.page_id or (entry.checksum and checksum != entry.checksum):
                raise IntegrityError(
                    f"artifact {entry.artifact_id} does not hold page {entry.page_id!r} as checkpointed",
                    key=entry.artifact_id,
                )
            return page

        results = await asyncio.gather(*(self._bounded(fetch(e)) for e in manifest.pages), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            archived = [f for f in failures if isinstance(f, ArchivedPageError)]
            if archived:
                raise archived[0]
            broken = [f for f in failures if not isinstance(f, IntegrityError)]
            if broken:
                raise broken[0]
            detail = "; ".join(str(f) for f in failures[:5])
            raise IntegrityError(
                f"checkpoint {checkpoint_id} cannot be restored: {len(failures)} of {len(results)} pages "
                f"failed verification ({detail})",
                key=checkpoint_id,
            )
        self._remember(manifest.pages)
        return [r for r in results if isinstance(r, MemoryPage)]

    async def list_checkpoints(self) -> list[str]:
        """Ids of complete checkpoints, oldest first."""
        if self._rich is None:
            return [aid for aid in await self._simple_ids() if await self._simple_kind(aid) == "manifest"]
        return sorted([entry.key async for entry in self._rich.list(ids.CHECKPOINT_PREFIX)])

    async def get_checkpoint_manifest(self, checkpoint_id: str) -> CheckpointManifest | None:
        key = self._check_checkpoint(checkpoint_id)
        cached = self._manifests.get(key)
        if cached is not None:
            return cached
        data = await self._get(key)
        if data is None:
            return None
        manifest = codec.decode_manifest(data)
        if self._rich is not None and manifest.checkpoint_id != key:
            raise IntegrityError(f"object {key} holds the manifest of {manifest.checkpoint_id}", key=key)
        self._manifests[key] = manifest
        return manifest

    async def delete_checkpoint(self, checkpoint_id: str) -> bool:
        """Delete the checkpoint and those of its artifacts that no other checkpoint references."""
        manifest = await self.get_checkpoint_manifest(checkpoint_id)
        if manifest is None:
            return False
        key = self._check_checkpoint(checkpoint_id)
        if self._rich is None:
            simple = self._simple_backend()
            await simple.delete(key)
            self._manifests.pop(key, None)
            others = [await self.get_checkpoint_manifest(c) for c in await self.list_checkpoints()]
            keep = {e.artifact_id for m in others if m for e in m.pages}
            for artifact in {e.artifact_id for e in manifest.pages} - keep:
                await simple.delete(artifact)
            return True
        await self._rich.delete(key)
        self._manifests.pop(key, None)
        await self._sweep({e.artifact_id for e in manifest.pages})
        return True

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        close = getattr(self.backend, "aclose", None)
        if close is not None:
            await close()

    async def __aenter__(self) -> ArtifactsBridge:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- internals: ids and writes --------------------------------------------------------------------------

    def _require_rich(self, call: str) -> StorageBackend:
        if self._rich is None:
            raise NotSupportedError(f"{call} needs a backend implementing tierstore's StorageBackend protocol")
        return self._rich

    def _check_artifact(self, artifact_id: str) -> str:
        return self._check_id(artifact_id, "artifact id", ids.PAGE_PREFIX, "a page artifact id (mem_<tier>_<n>)")

    def _check_checkpoint(self, checkpoint_id: str) -> str:
        return self._check_id(checkpoint_id, "checkpoint id", ids.CHECKPOINT_PREFIX, "a checkpoint id (ckpt_...)")

    def _check_id(self, value: str, what: str, prefix: str, expected: str) -> str:
        """A caller's id: any text for a custom backend (it chose the id), else one of our keys with ``prefix``."""
        if self._rich is None:
            return ids.check_text_id(value, what)
        key = ids.check_stored_key(value, what)
        if not key.startswith(prefix):
            raise InvalidInputError(f"{key!r} is not {expected}")
        return key

    async def _put_new(self, page: MemoryPage, encoded: codec.Encoded, tier: StorageTier, owner: str | None) -> str:
        """Store an encoded page as a new artifact and return its id."""
        if self._simple is not None:
            described = _metadata_from_page(page, None, encoded.checksum, len(encoded.data), tier)
            artifact = await self._simple.store(page.page_id, encoded.data, described.model_dump(mode="json"))
            if not isinstance(artifact, str) or not artifact:
                raise TierstoreError(f"{type(self._simple).__name__}.store returned {artifact!r}, not an artifact id")
            return artifact
        rich, allocator = self._rich, self._allocator
        assert rich is not None
        assert allocator is not None
        metadata = _object_metadata(page, encoded, tier, owner)
        tags = {"tier": tier.value, "modality": page.modality.value, "pagetype": page.page_type.value}

        async def create(key: str) -> None:
            await rich.put(key, encoded.data, metadata=metadata, tags=tags, tier=tier, if_absent=True)

        async with self._limit:
            return await allocator.claim(tier, create)

    async def _put_manifest(self, checkpoint_id: str, manifest: CheckpointManifest) -> str:
        data = codec.encode_manifest(manifest).data
        if self._rich is None:
            stored = str(await self._simple_backend().store(checkpoint_id, data, {"kind": "checkpoint"}))
            manifest.checkpoint_id = stored
            return stored
        await self._rich.put(checkpoint_id, data, metadata={"kind": "manifest"}, if_absent=True)
        return checkpoint_id

    async def _abandon(self, written: Sequence[str]) -> None:
        """Best effort after a failed checkpoint; whatever stays behind is an orphan that ``gc`` collects."""
        if written and self._rich is not None:
            await _quietly(self._rich.delete_many(list(written)))

    # -- internals: the reuse protocol of incremental checkpoints --------------------------------------------
    #
    # A checkpoint may name artifacts an earlier checkpoint wrote, while another process deletes that earlier
    # checkpoint. Order of the writer: (W1) write intent_<ckpt> naming the artifacts it will reuse, (W2) list
    # tomb_ records and drop any artifact they name, (W3) write the manifest, (W4) delete the intent. Order of a
    # deleter: (D1) write tomb_<id>_p naming its candidates, (D2) list intents, (D3) list manifests, (D4) write
    # tomb_<id>_d naming what nobody references, delete those, then delete its _p record. If D2 ran before W1,
    # then D1 ran before W2 and the writer sees the candidate; if D2 ran after W1 it sees the intent, or (after
    # W4) the manifest, since D3 follows D2. Either way no listed checkpoint loses an artifact.

    async def _claim_reuse(
        self, checkpoint_id: str, pages: Sequence[MemoryPage], encoded: Sequence[codec.Encoded]
    ) -> dict[int, _Recorded]:
        if self._rich is None:
            return {}
        horizon = time.monotonic() - self._reuse_window
        candidates = {}
        for i, (page, enc) in enumerate(zip(pages, encoded, strict=True)):
            recorded = self._recorded.get(page.page_id)
            if recorded and recorded.checksum == enc.checksum and recorded.at >= horizon:
                candidates[i] = recorded
        if not candidates:
            return {}
        intent = {
            "checkpoint": checkpoint_id,
            "artifacts": sorted({r.artifact_id for r in candidates.values()}),
            "at": datetime.now(UTC).isoformat(),
        }
        await self._rich.put(ids.INTENT_PREFIX + checkpoint_id, codec.encode_record(intent).data, if_absent=True)
        doomed = await self._doomed_artifacts()
        return {i: r for i, r in candidates.items() if r.artifact_id not in doomed}

    async def _doomed_artifacts(self) -> set[str]:
        """Artifacts named by any tomb record: being deleted, or deleted within the grace period."""
        assert self._rich is not None
        doomed: set[str] = set()
        for record in await self._load_records(ids.TOMB_PREFIX):
            doomed.update(record.get("candidates", ()))
            doomed.update(record.get("deleted", ()))
        return doomed

    async def _sweep(self, candidates: set[str]) -> None:
        assert self._rich is not None
        if not candidates:
            return
        pending = await self._write_record("p", {"candidates": sorted(candidates)})
        try:
            referenced = await self._referenced_by_intents()
            for checkpoint in await self.list_checkpoints():
                manifest = await self.get_checkpoint_manifest(checkpoint)
                if manifest is not None:
                    referenced.update(e.artifact_id for e in manifest.pages)
            doomed = sorted(candidates - referenced)
            if doomed:
                await self._write_record("d", {"deleted": doomed})
                await self._rich.delete_many(doomed)
                self._forget(set(doomed))
        finally:
            await self._rich.delete(pending)

    async def _referenced_by_intents(self) -> set[str]:
        """Artifacts that checkpoints in progress (intents younger than ``intent_ttl``) are about to reuse."""
        referenced: set[str] = set()
        horizon = datetime.now(UTC) - self.intent_ttl
        for intent in await self._load_records(ids.INTENT_PREFIX, fresh=True):
            if datetime.fromisoformat(intent["at"]) >= horizon:
                referenced.update(intent.get("artifacts", ()))
        return referenced

    async def _write_record(self, suffix: Literal["p", "d"], record: dict[str, Any]) -> str:
        assert self._rich is not None
        key = ids.timestamped(ids.TOMB_PREFIX, datetime.now(UTC)) + "_" + suffix
        record = {**record, "at": datetime.now(UTC).isoformat()}
        await self._rich.put(key, codec.encode_record(record).data, if_absent=True)
        return key

    async def _load_records(self, prefix: str, *, fresh: bool = False) -> list[dict[str, Any]]:
        """Bookkeeping records under a prefix. Tomb records never change, so they are cached by key."""
        assert self._rich is not None
        keys = [entry.key async for entry in self._rich.list(prefix)]

        async def load(key: str) -> dict[str, Any] | None:
            if not fresh and key in self._records:
                return self._records[key]
            data = await self._rich.get(key) if self._rich is not None else None
            if data is None:
                return None
            record = codec.decode_record(data)
            if not fresh:
                self._records[key] = record
            return record

        return [r for r in await self._gather(load(k) for k in keys) if r is not None]

    def _remember(self, entries: Iterable[CheckpointEntry]) -> None:
        now = time.monotonic()
        for e in entries:
            if e.checksum:
                tier = StorageTier(e.tier)
                self._recorded[e.page_id] = _Recorded(e.artifact_id, e.checksum, tier, now)

    def _forget(self, artifacts: set[str]) -> None:
        for page_id in [p for p, r in self._recorded.items() if r.artifact_id in artifacts]:
            del self._recorded[page_id]

    # -- internals: reads -----------------------------------------------------------------------------------

    async def _get(self, key: str) -> bytes | None:
        if self._rich is not None:
            return await self._rich.get(key)
        data = await self._simple_backend().load(key)
        return None if data is None else bytes(data)

    async def _read_header(self, key: str) -> dict[str, Any]:
        """The page fields of a stored frame, from a ranged read of its start (the body is not read)."""
        assert self._rich is not None
        head = await self._rich.get_range(key, 0, _HEADER_PROBE)
        if head is None:
            raise ObjectNotFoundError(key)
        _kind, _flags, header_len, _body_len = codec.read_prefix(head)
        end = codec.HEADER_START + header_len
        if len(head) < end:
            head = await self._rich.get_range(key, 0, end) or b""
        try:
            fields: dict[str, Any] = json.loads(head[codec.HEADER_START : end])["page"]
        except (ValueError, KeyError) as exc:
            raise IntegrityError(f"page header of {key} is corrupt", key=key) from exc
        return fields

    async def _encode(self, page: MemoryPage) -> codec.Encoded:
        try:
            if isinstance(page.content, bytes | str) and len(page.content) > _BIG_PAGE:
                return await asyncio.to_thread(codec.encode_page, page, compression=self.compression)
            return codec.encode_page(page, compression=self.compression)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InvalidInputError):
                raise
            raise InvalidInputError(f"page {page.page_id!r} cannot be serialised: {exc}") from exc

    async def _decode(self, data: bytes, key: str) -> tuple[MemoryPage, str | None]:
        try:
            if len(data) > _BIG_PAGE:
                return await asyncio.to_thread(codec.decode_page, data)
            return codec.decode_page(data)
        except IntegrityError as exc:
            raise IntegrityError(f"{key}: {exc}", key=key) from exc

    def _simple_backend(self) -> SimpleBackend:
        assert self._simple is not None, "only called when the backend is a simple one"
        return self._simple

    async def _simple_ids(self) -> list[str]:
        return [str(aid) for aid in await self._simple_backend().list_pages()]

    async def _simple_kind(self, artifact_id: str) -> str | None:
        data = await self._get(artifact_id)
        if data is None:
            return None
        if data[:1] == b"{":
            return "page"
        try:
            return codec.read_prefix(data)[0]
        except IntegrityError:
            return None

    # -- internals: concurrency ----------------------------------------------------------------------------

    async def _bounded(self, awaitable: Awaitable[T]) -> T:
        async with self._limit:
            return await awaitable

    async def _gather(self, awaitables: Iterable[Awaitable[T]]) -> list[T]:
        """All results in order; on the first failure the rest are cancelled (and awaited) before it is raised,
        so a failed checkpoint's clean-up never races uploads still in flight."""
        tasks = [asyncio.ensure_future(a) for a in awaitables]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise


# -- helpers ------------------------------------------------------------------------------------------------


def _check_page(page: Any) -> MemoryPage:
    if not isinstance(page, MemoryPage):
        raise InvalidInputError(f"expected a MemoryPage, got {type(page).__name__}")
    ids.check_text_id(page.page_id, "page_id")
    return page


def _resolve_tier(page: MemoryPage, tier: StorageTier | None) -> StorageTier:
    if tier is None:
        return page.storage_tier if page.storage_tier in _PERSISTENT_TIERS else StorageTier.L3
    if not isinstance(tier, StorageTier) or tier not in _PERSISTENT_TIERS:
        raise InvalidInputError(f"pages are stored in L2, L3 or L4, not {tier!r}")
    return tier


def _artifact_order(key: str) -> tuple[str, int, str]:
    parsed = ids.parse_artifact_id(key)
    return (parsed[0].value, parsed[1], key) if parsed else ("~", 0, key)


def _object_metadata(page: MemoryPage, encoded: codec.Encoded, tier: StorageTier, owner: str | None) -> dict[str, str]:
    """The page's description as object metadata: lowercase keys, percent-encoded ASCII values.

    The page id goes in only while the whole stays inside the budget every cloud accepts; without it,
    ``get_metadata`` reads the frame's header instead.
    """
    metadata = {
        "format": str(codec.VERSION),
        "modality": page.modality.value,
        "pagetype": page.page_type.value,
        "tier": tier.value,
        "level": str(int(page.compression_level)),
        "created": quote(page.created_at.isoformat(), safe=""),
        "checksum": encoded.checksum,
    }
    if owner:
        metadata["ckpt"] = owner
    page_id = quote(page.page_id, safe="")
    used = sum(len(k) + len(v) for k, v in metadata.items())
    if used + len("pageid") + len(page_id) <= METADATA_BUDGET:
        metadata["pageid"] = page_id
    return metadata


def _metadata_from_page(
    page: MemoryPage,
    artifact_id: str | None,
    checksum: str | None,
    size: int,
    tier: StorageTier | None = None,
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


async def _quietly(awaitable: Awaitable[Any]) -> None:
    """Clean-up that must not mask the error being handled; what it leaves behind, ``gc`` collects."""
    try:
        await awaitable
    except Exception:  # noqa: BLE001 - deliberately broad: this runs while another error propagates
        return
