"""Where the bridge keeps its artifacts: the one seam between the bridge and the two kinds of backend.

* :class:`~tierstore.artifacts.objects.ObjectArtifacts` runs on tierstore's rich
  :class:`~tierstore.backends.base.StorageBackend` protocol (every built-in backend): the bridge chooses every key,
  claims ids with create-if-absent, and orders deletions against checkpoints in progress (:mod:`tierstore.protocol`,
  which the bridge also holds for what only such a store has: leases, reuse, tiers, restores, maintenance).
* :class:`~tierstore.artifacts.custom.CustomArtifacts` wraps a backend written to the spec's *Custom Backend*
  interface (``store``/``load``/``delete``/``exists``/``list_pages``), which chooses its own artifact ids. Calls
  that need more (tier changes, restores, maintenance) raise NotSupportedError there.

The bridge talks to both through :class:`Artifacts`: each member is one both really do. :func:`open_artifacts`
chooses the side for a backend, and on a rich one builds the protocol (:class:`~tierstore.protocol.Guard`) with it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from tierstore.artifacts.custom import CustomArtifacts
from tierstore.artifacts.objects import ObjectArtifacts
from tierstore.backends.base import ListEntry, StorageBackend
from tierstore.clock import Clock
from tierstore.codec import Buffer, Codec, Encoded, PreparedPage
from tierstore.enums import StorageTier
from tierstore.errors import InvalidInputError
from tierstore.models import CheckpointManifest, MemoryPage, PageMetadata
from tierstore.protocol import Guard, Reuse
from tierstore.simple import SimpleBackend, is_simple_backend
from tierstore.validate import type_name


class Artifacts(Protocol):
    """Pages and manifests on one store, whichever kind of backend it is."""

    name: str
    persistent: bool
    binds_keys: bool
    """Whether a frame names the key it is stored under (False when the backend chooses ids after the write)."""

    def artifact_key(self, value: object) -> str | None:
        """The key of an artifact id given by a caller; None for text that is no artifact id of this store.
        Raises InvalidInputError for what is not an id at all (wrong type, empty, control characters)."""
        ...

    def checkpoint_key(self, value: object) -> str | None:
        """The key of a checkpoint id given by a caller, as :meth:`artifact_key` does for artifacts."""
        ...

    async def create_page(
        self, page: MemoryPage, prepared: PreparedPage, tier: StorageTier, owner: str | None
    ) -> tuple[str, Encoded]:
        """Store a prepared page as a new artifact (``owner``: the checkpoint it is written for); its key and frame."""
        ...

    async def read(self, key: str) -> Buffer | None:
        """The stored bytes of an artifact, unverified; None when there is none."""
        ...

    async def describe(self, key: str) -> PageMetadata | None:
        """What is known of a stored page without reading its body where the store allows; None when absent."""
        ...

    async def delete_page(self, key: str) -> int | None:
        """Delete a page; returns its size, or None when there was none."""
        ...

    async def discard(self, keys: list[str]) -> None:
        """Delete artifacts only this bridge knows of (a failed checkpoint's uploads)."""
        ...

    async def page_keys(self) -> list[str]:
        """Every page's key (checkpoint manifests and bookkeeping excluded)."""
        ...

    async def page_entries(self) -> list[ListEntry]:
        """Every page's key with its size and time, from the listing alone (one request per thousand on a
        cloud; a custom backend's listing has neither, so they are 0 and None)."""
        ...

    async def checkpoint_keys(self) -> list[str]:
        """Every listed checkpoint's key, oldest first."""
        ...

    async def manifest(self, key: str) -> CheckpointManifest | None:
        """A checkpoint's manifest; None when absent; IntegrityError when it cannot be read."""
        ...

    async def write_manifest(self, manifest: CheckpointManifest) -> str:
        """Write a manifest, create-if-absent (the last step of a checkpoint); returns the checkpoint's id."""
        ...

    async def delete_checkpoint(self, key: str, manifest: CheckpointManifest | None) -> None:
        """Delete a checkpoint and what only it references; ``manifest`` None: it is damaged, drop it alone."""
        ...

    def usage(self) -> tuple[int, int, int] | None:
        """``(pages, bytes, checkpoints)`` when known without I/O."""
        ...

    async def aclose(self) -> None:
        """Release the backend's clients."""
        ...


def open_artifacts(
    backend: StorageBackend | SimpleBackend, codec: Codec, *, concurrency: int, lease_ttl: timedelta, clock: Clock
) -> tuple[Artifacts, Guard | None]:
    """The artifacts on ``backend``, and the checkpoint protocol where it has one (a rich backend; None on a custom
    one). InvalidInputError for an object that is neither kind of backend."""
    if isinstance(backend, StorageBackend):
        objects = ObjectArtifacts(backend, codec, concurrency=concurrency, lease_ttl=lease_ttl, clock=clock)
        return objects, Guard(objects.refs, Reuse(backend, objects.refs.manifests, codec))
    if is_simple_backend(backend):
        return CustomArtifacts(backend, codec), None
    raise InvalidInputError(
        f"{type_name(backend)} is not a storage backend: implement store/load/delete/exists/list_pages (the spec's "
        "Custom Backend) or tierstore's StorageBackend protocol"
    )
