"""What a checkpoint may reuse, and the proof that it may: :class:`Reuse`.

A page whose identity (content and description, without its bookkeeping) and tier equal an entry of one of the
:data:`REUSE_FROM_NEWEST` newest listed checkpoints, or of one this process wrote or restored, is a candidate. No
entry is trusted: :meth:`Reuse.prove` shows the artifact is still the one the entry names (there, not archived, in
the entry's tier, of its size and checksum, and either showing the version token recorded when it was last verified
or read whole and verified), else the page is uploaded anew. Each decision is logged at DEBUG.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Final

from tierstore import ids
from tierstore.backends.base import ObjectInfo, StorageBackend
from tierstore.codec import Codec
from tierstore.errors import ArchivedPageError, IntegrityError
from tierstore.loops import PerLoop
from tierstore.models import CheckpointEntry
from tierstore.protocol.manifests import Manifests
from tierstore.scope_codec import bound_key

logger = logging.getLogger(__name__)

REUSE_FROM_NEWEST: Final = 8
"""A checkpoint may reuse artifacts of the newest this-many listed checkpoints (and of those this bridge made)."""
_VERIFY_IN_THREAD: Final = 1 << 20
_BIG_VERIFIES: Final = 2
"""Whole reads of artifacts above ``_VERIFY_IN_THREAD`` that reuse proofs run at once: each holds the artifact in
memory, and a checkpoint's concurrency of 32 must not mean 32 big pages read side by side."""


class Reuse:
    """Reuse candidates and their proofs on one backend."""

    def __init__(self, backend: StorageBackend, manifests: Manifests, codec: Codec) -> None:
        self._backend = backend
        self._codec = codec
        self._manifests = manifests
        self._own: set[str] = set()
        self._big_verifies = PerLoop(lambda: asyncio.Semaphore(_BIG_VERIFIES))  # a semaphore binds to its loop

    def remember(self, checkpoint: str) -> None:
        """A checkpoint this process wrote or restored: later checkpoints may reuse its artifacts."""
        self._own.add(checkpoint)

    def forget(self, checkpoint: str) -> None:
        """A checkpoint deleted."""
        self._own.discard(checkpoint)

    async def candidates(self) -> Mapping[str, CheckpointEntry]:
        """Page id -> the newest entry of a listed manifest that a new checkpoint may reuse."""
        listed = await self._manifests.keys()
        chosen = set(listed[-REUSE_FROM_NEWEST:]) | (self._own & set(listed))
        oldest_first = [key for key in listed if key in chosen]
        manifests, _damaged = await self._manifests.listed(oldest_first)
        index: dict[str, CheckpointEntry] = {}
        for key in [key for key in oldest_first if key in manifests]:
            for entry in manifests[key].pages:
                if entry.identity:
                    index[entry.page_id] = entry
        return index

    async def prove(self, entry: CheckpointEntry) -> CheckpointEntry | None:
        """``entry`` (with its artifact's version token now) when the artifact is still the one it names: there,
        readable, in the entry's tier, of its size and checksum, and either showing the version token recorded
        when it was last verified (one ``head``) or verified by reading it whole. None when that cannot be shown:
        the page is then uploaded anew."""
        key = entry.artifact_id
        info = await self._described(entry, archived=False)
        if info is None or not entry.checksum:
            return None
        if info.version is not None and info.version == entry.version:
            logger.debug("reused %s: its version token is the one last verified", key)
            return entry
        if info.size > _VERIFY_IN_THREAD:
            async with self._big_verifies.get():
                verified = await self._verifies(key, entry.checksum)
        else:
            verified = await self._verifies(key, entry.checksum)
        if not verified:
            logger.debug("reuse of %s refused: it does not verify", key)
            return None
        logger.debug("reused %s: read whole and verified", key)
        # The token of the head before the read: had the object changed in between, the next head shows another.
        return entry.model_copy(update={"version": info.version})

    async def present(self, entry: CheckpointEntry) -> bool:
        """Whether the artifact ``entry`` names is there as the entry says (the head part of :meth:`prove`: its
        id, tier, size and checksum), archived or not, without reading it: the proof for entries a caller keeps
        alive under a lease of its own (``checkpoint(stored=...)``), which nothing but a ``delete_page``, damage
        or a change by another program can take or change."""
        if not entry.checksum:  # stored without one (chuk's plain JSON pages): being there is all a head shows
            try:
                return await self._backend.head(entry.artifact_id) is not None
            except IntegrityError:
                return False
        return await self._described(entry, archived=True) is not None

    async def _described(self, entry: CheckpointEntry, *, archived: bool) -> ObjectInfo | None:
        """The artifact's ``head`` when it matches ``entry`` (there, of its id, tier, size and checksum, and not
        archived unless ``archived``); else None, the reason logged."""
        key = entry.artifact_id
        if not entry.checksum or not ids.parse_artifact_id(key):
            return None
        try:
            info = await self._backend.head(key)
        except IntegrityError:
            logger.debug("%s refused: it cannot be read", key)
            return None
        if info is None or (info.archived and not archived) or info.size != entry.size_bytes:
            logger.debug("%s refused: gone, archived or of another size", key)
            return None
        tier = info.tier.value if info.tier else info.metadata.get("tier")
        bound = bound_key(self._codec, key)
        if tier != entry.tier or info.metadata.get("aid") != bound or info.metadata.get("checksum") != entry.checksum:
            logger.debug("%s refused: in tier %s, or another object", key, tier)
            return None
        return info

    async def _verifies(self, key: str, checksum: str) -> bool:
        try:
            data = await self._backend.get(key)
            if data is None:
                return False
            if len(data) > _VERIFY_IN_THREAD or self._codec.is_big_frame(data):  # a small zstd frame may unpack big
                frame = await asyncio.to_thread(self._codec.decode_frame, data, key)
            else:
                frame = self._codec.decode_frame(data, key)
        except (IntegrityError, ArchivedPageError):
            return False
        return frame.kind == "page" and frame.checksum == checksum
