"""Where the bridge keeps its artifacts: the one seam between the bridge and the two kinds of backend.

* :class:`~tierstore.artifacts.objects.ObjectArtifacts` runs on tierstore's rich
  :class:`~tierstore.backends.base.StorageBackend` protocol (every built-in backend): the bridge chooses every key,
  claims ids with create-if-absent, and orders deletions against checkpoints in progress (:mod:`tierstore.refs`).
* :class:`~tierstore.artifacts.custom.CustomArtifacts` wraps a backend written to the spec's *Custom Backend*
  interface (``store``/``load``/``delete``/``exists``/``list_pages``), which chooses its own artifact ids. Calls
  that need more (tier changes, restores, maintenance) raise NotSupportedError there.

The bridge talks to both through :class:`Artifacts` and never asks which one it has.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from tierstore.backends.base import ListEntry, StorageBackend
from tierstore.codec import Buffer, Encoded, PreparedPage
from tierstore.enums import StorageTier
from tierstore.models import CheckpointEntry, CheckpointManifest, MemoryPage, PageMetadata
from tierstore.refs import Doomed, References


class CheckpointLease(Protocol):
    async def start(self) -> None: ...

    async def renew(self) -> None: ...

    def fresh(self) -> bool:
        """Renewed recently enough, by this process's monotonic clock, for the manifest to be written now."""
        ...

    async def release(self) -> None: ...

    async def abandon(self) -> None: ...


class Artifacts(Protocol):
    name: str
    persistent: bool
    binds_keys: bool
    """Whether a frame names the key it is stored under (False when the backend chooses ids after the write)."""

    def artifact_key(self, value: object) -> str | None:
        """The key of an artifact id given by a caller; None for text that is no artifact id of this store.
        Raises InvalidInputError for what is not an id at all (wrong type, empty, control characters)."""
        ...

    def checkpoint_key(self, value: object) -> str | None: ...

    async def create_page(
        self, page: MemoryPage, prepared: PreparedPage, tier: StorageTier, owner: str | None
    ) -> tuple[str, Encoded]: ...

    async def read(self, key: str) -> Buffer | None: ...

    async def describe(self, key: str) -> PageMetadata | None: ...

    async def delete_page(self, key: str) -> int | None:
        """Delete a page; returns its size, or None when there was none."""
        ...

    async def discard(self, keys: list[str]) -> None:
        """Delete artifacts only this bridge knows of (a failed checkpoint's uploads)."""
        ...

    async def page_keys(self) -> list[str]: ...

    async def page_entries(self) -> list[ListEntry]:
        """Every page's key with its size and time, from the listing alone (one request per thousand on a
        cloud; a custom backend's listing has neither, so they are 0 and None)."""
        ...

    async def checkpoint_keys(self) -> list[str]: ...

    async def manifest(self, key: str) -> CheckpointManifest | None: ...

    async def write_manifest(self, manifest: CheckpointManifest) -> str: ...

    async def delete_checkpoint(self, key: str, manifest: CheckpointManifest | None) -> None:
        """Delete a checkpoint and what only it references; ``manifest`` None: it is damaged, drop it alone."""
        ...

    def lease(self, checkpoint: str, reuse: list[str]) -> CheckpointLease: ...

    async def reusable(self) -> Mapping[str, CheckpointEntry]:
        """Page id -> the newest entry of a listed manifest that a new checkpoint may reuse."""
        ...

    async def prove(self, entry: CheckpointEntry) -> CheckpointEntry | None:
        """``entry`` (with its artifact's current version token) when its artifact is shown to be the one it names,
        verified and in its tier; None when that cannot be shown (the page is then uploaded anew)."""
        ...

    async def doomed(self) -> Doomed: ...

    def remember_restored(self, key: str) -> None:
        """A checkpoint this bridge restored: later checkpoints may reuse its artifacts."""
        ...

    def usage(self) -> tuple[int, int, int] | None:
        """``(pages, bytes, checkpoints)`` when known without I/O."""
        ...

    async def set_tier(self, key: str, tier: StorageTier) -> None:
        """Move an artifact to another tier in place, unless a checkpoint in progress names it (InUseError);
        NotSupportedError where the backend has no tiers."""
        ...

    def rich(self, call: str) -> StorageBackend:
        """The rich backend, or NotSupportedError naming ``call``."""
        ...

    def references(self, call: str) -> References:
        """The deletion protocol on the rich backend, or NotSupportedError naming ``call``."""
        ...

    async def aclose(self) -> None: ...
