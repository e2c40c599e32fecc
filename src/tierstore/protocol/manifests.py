"""Checkpoint manifests (``ckpt_`` records): each read once and kept, since a manifest never changes once written.
A manifest is written last by a writer, create-if-absent, so a listed one names a complete checkpoint.

Checkpoints are ordered by the store's time, not by their ids: an id carries its writer's wall clock, and a host
whose clock is ahead would put its checkpoints after newer ones. The order is each manifest's last-modified time as
the listing gives it (set by the server, or the kernel on disk), ties (S3 and Azure count whole seconds) and a
backend whose listing gives no times by id."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from tierstore import ids
from tierstore.backends.base import StorageBackend
from tierstore.codec import PLAIN, Codec
from tierstore.concurrency import bounded_gather
from tierstore.errors import IntegrityError
from tierstore.models import CheckpointManifest
from tierstore.protocol.records import as_utc

_UNDATED = datetime.min.replace(tzinfo=UTC)


class Manifests:
    """Checkpoint manifests, read once each (a manifest never changes) unless asked to read afresh."""

    def __init__(self, backend: StorageBackend, concurrency: int, codec: Codec = PLAIN) -> None:
        self._backend = backend
        self._concurrency = concurrency
        self._codec = codec
        self._cache: dict[str, CheckpointManifest] = {}

    async def get(self, key: str, *, fresh: bool = False) -> CheckpointManifest | None:
        """The manifest stored under ``key``; None when there is none; IntegrityError naming ``key`` when it cannot
        be read. ``fresh``: read from the store even if read before, for whoever must see it as it is now (a
        restore: deleted since, or damaged; fsck)."""
        cached = None if fresh else self._cache.get(key)
        if cached is not None:
            return cached
        data = await self._backend.get(key)
        if data is None:
            self.forget(key)
            return None
        try:
            manifest = self._codec.decode_manifest(data, key)
        except IntegrityError as exc:
            self.forget(key)
            raise IntegrityError(f"{key}: {exc}", key=key) from exc
        self._cache[key] = manifest
        return manifest

    def remember(self, manifest: CheckpointManifest) -> None:
        """A manifest this process wrote: no need to read it back."""
        self._cache[manifest.checkpoint_id] = manifest

    def forget(self, key: str) -> None:
        """A manifest deleted: read it again should it come back (it cannot, but the cache must not say so)."""
        self._cache.pop(key, None)

    async def keys(self) -> list[str]:
        """Ids of the listed checkpoints, oldest first by the store's time (see the module docstring); a key that
        merely starts like one (a user's own ``ckpt_plan.json``) is none."""
        entries = [
            entry async for entry in self._backend.list(ids.CHECKPOINT_PREFIX) if ids.is_checkpoint_id(entry.key)
        ]
        entries.sort(key=lambda entry: (as_utc(entry.last_modified) or _UNDATED, entry.key))
        return [entry.key for entry in entries]

    async def listed(
        self, keys: Iterable[str] | None = None, *, fresh: bool = False
    ) -> tuple[dict[str, CheckpointManifest], list[str]]:
        """The listed manifests (or those of ``keys``), and the keys of those that could not be read (``fresh``: as
        :meth:`get`)."""
        todo = await self.keys() if keys is None else list(keys)

        async def read(key: str) -> CheckpointManifest | None:
            return await self.get(key, fresh=fresh)

        results = await bounded_gather((read(k) for k in todo), self._concurrency, settle=True)
        manifests: dict[str, CheckpointManifest] = {}
        damaged: list[str] = []
        for key, result in zip(todo, results, strict=True):
            if isinstance(result, IntegrityError):
                damaged.append(key)
            elif isinstance(result, Exception):
                raise result
            elif result is not None:
                manifests[key] = result
        return manifests, damaged
