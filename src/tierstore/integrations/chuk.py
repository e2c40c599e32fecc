"""tierstore storage under chuk-ai-session-manager's ``MemoryManager``, in one line::

    from tierstore.integrations.chuk import attach

    attach(vm)  # vm: a chuk MemoryManager; pages evicted to L3/L4 now go to TIERSTORE_URL's store

Evicting to L3 or L4 stores the page through tierstore, and faults bring chuk's own ``MemoryPage`` back.
:func:`checkpoint` and :func:`restore` save and rebuild a manager's pages (with their tiers, L0 order and pins)
across a restart. chuk's ``MemoryManager`` has no public hook for its storage, so :func:`attach` sets the private
attributes chuk 0.11 reads (``_bridge``, ``_bridge_configured``) and :func:`restore` fills its ``_page_store``.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import ValidationError

from tierstore.bridge import ArtifactsBridge, bridge_from_env
from tierstore.concurrency import bounded_gather
from tierstore.enums import StorageTier
from tierstore.errors import InvalidInputError, MissingDependencyError, NotSupportedError, TierstoreError
from tierstore.models import MemoryPage

try:
    from chuk_ai_session_manager.memory import (
        MemoryManager,
        MemoryPage as ChukPage,
        StorageStats as ChukStorageStats,
        StorageTier as ChukTier,
    )
except ImportError as exc:
    raise MissingDependencyError("chuk", "chuk-ai-session-manager") from exc

__all__ = ["TierstoreBridge", "attach", "checkpoint", "restore"]

_EVICTED = (StorageTier.L3, StorageTier.L4)
_CONCURRENCY = 16  # pages read or stored at once by checkpoint and restore


class TierstoreBridge:
    """A tierstore :class:`~tierstore.bridge.ArtifactsBridge` with the calls and objects of chuk's bridge.

    Pages go in as chuk's (or tierstore's) ``MemoryPage`` and come back as chuk's; ids, checksums and the stored
    format are tierstore's. ``bridge`` is the tierstore bridge underneath, for everything else it offers.
    """

    def __init__(self, bridge: ArtifactsBridge | None = None, *, session_id: str | None = None) -> None:
        self.bridge = bridge if bridge is not None else bridge_from_env()
        if session_id is not None:
            self.bridge.session_id = session_id

    def __repr__(self) -> str:
        return f"TierstoreBridge({self.bridge!r})"

    @property
    def session_id(self) -> str | None:
        return self.bridge.session_id

    async def configure(self, artifact_store: Any | None = None, session_id: str | None = None) -> None:
        await self.bridge.configure(artifact_store, session_id)

    @property
    def is_persistent(self) -> bool:
        return self.bridge.is_persistent

    async def store_page(self, page: Any, tier: Any = ChukTier.L3) -> str:
        return await self.bridge.store_page(to_tierstore(page), _tier(tier))

    async def load_page(self, artifact_id: str) -> Any:
        """chuk's ``MemoryPage``, or None when there is no such page."""
        page = await self.bridge.load_page(artifact_id)
        return None if page is None else to_chuk(page)

    async def delete_page(self, artifact_id: str) -> bool:
        return await self.bridge.delete_page(artifact_id)

    async def store_checkpoint(self, pages: list[Any], checkpoint_name: str) -> str:
        return await self.bridge.store_checkpoint([to_tierstore(p) for p in pages], checkpoint_name)

    async def load_checkpoint(self, checkpoint_id: str) -> list[Any]:
        return [to_chuk(p) for p in await self.bridge.load_checkpoint(checkpoint_id)]

    def get_stats(self) -> Any:
        """chuk's ``StorageStats`` (backend, persistent, session id, pages stored)."""
        stats = self.bridge.get_stats()
        return ChukStorageStats(
            backend=stats.backend,
            persistent=stats.persistent,
            session_id=self.session_id,
            pages_stored=stats.pages_stored,
        )

    async def aclose(self) -> None:
        await self.bridge.aclose()


def attach(manager: Any, bridge: ArtifactsBridge | None = None) -> TierstoreBridge:
    """Make ``manager`` (chuk's ``MemoryManager``) store evicted pages through tierstore; returns its new bridge.

    Without ``bridge``, the store is the one ``TIERSTORE_*`` names (``TIERSTORE_URL``; the local-disk store when
    unset). Attach before evicting to L3/L4: pages stored through the manager's previous bridge stay there.
    """
    if not isinstance(manager, MemoryManager):
        raise InvalidInputError(f"expected chuk's MemoryManager, got {_qualified(manager)}")
    for name in ("_bridge", "_bridge_configured", "_page_store"):
        if not hasattr(manager, name):
            raise NotSupportedError(
                f"this chuk-ai-session-manager's MemoryManager has no {name}; tierstore supports 0.11's"
            )
    adapter = TierstoreBridge(bridge)
    if adapter.session_id is None:
        adapter.bridge.session_id = manager.session_id
    manager._bridge = adapter
    manager._bridge_configured = True
    return adapter


async def checkpoint(manager: Any, name: str) -> str:
    """Checkpoint every page ``manager`` holds or has evicted, with its tier, L0 order and pin; returns its id.

    Pages evicted to storage are read back to be checkpointed, so the checkpoint holds every page itself.
    """
    adapter = _adapter(manager)
    working_set = manager.working_set
    l0_order = {page_id: i for i, page_id in enumerate(working_set.get_l0_page_ids())}
    entries = sorted(manager.page_table.entries.values(), key=lambda e: l0_order.get(e.page_id, len(l0_order)))
    loaded = await bounded_gather((manager.load(e.page_id, e.tier, e.artifact_id) for e in entries), _CONCURRENCY)
    pages: list[MemoryPage] = []
    for entry, page in zip(entries, loaded, strict=True):
        if page is None:
            raise TierstoreError(
                f"page {entry.page_id!r} is registered in {_tier(entry.tier).value} but is neither in memory nor "
                "in storage; nothing was checkpointed"
            )
        pinned = bool(page.pinned) or working_set.is_pinned(entry.page_id)
        pages.append(to_tierstore(page).model_copy(update={"storage_tier": _tier(entry.tier), "pinned": pinned}))
    return await adapter.bridge.checkpoint(pages, name=name)


async def restore(manager: Any, checkpoint_id: str) -> list[Any]:
    """Rebuild a checkpoint's pages in ``manager`` (a fresh one, attached to the checkpoint's store).

    Pages return to their tiers: L0 pages to the context window in their order, L1/L2 pages to memory, L3/L4
    pages to storage, each stored anew so the manager does not depend on the checkpoint (which may then be
    deleted). Pinned pages are pinned again. Returns chuk's pages. Everything is read and stored before the
    manager changes, so an unknown checkpoint (``ObjectNotFoundError``), a damaged one (``IntegrityError``) or a
    failing store leaves it as it was.
    """
    adapter = _adapter(manager)
    pages = [to_chuk(p) for p in await adapter.bridge.restore_checkpoint(checkpoint_id)]
    evicted = [p for p in pages if _tier(p.storage_tier) in _EVICTED]
    stored = await bounded_gather((adapter.store_page(p, p.storage_tier) for p in evicted), _CONCURRENCY)
    for page, artifact_id in zip(evicted, stored, strict=True):
        page.artifact_id = artifact_id
    for page in pages:
        manager.page_table.register(page)
        tier = _tier(page.storage_tier)
        if tier not in _EVICTED:
            manager._page_store[page.page_id] = page
        if tier == StorageTier.L0:
            await manager.add_to_working_set(page)
        if page.pinned:
            manager.pin_page(page.page_id)
    return pages


def to_tierstore(page: Any) -> MemoryPage:
    """tierstore's ``MemoryPage`` with the fields of ``page`` (chuk's or tierstore's), validated."""
    if isinstance(page, MemoryPage):
        return page
    if not isinstance(page, ChukPage):
        raise InvalidInputError(f"expected a MemoryPage (tierstore's or chuk's), got {_qualified(page)}")
    try:
        return MemoryPage.model_validate(page, from_attributes=True)
    except ValidationError as exc:
        raise InvalidInputError(f"chuk page {page.page_id!r} is not a valid tierstore page: {exc}") from exc


def to_chuk(page: MemoryPage) -> Any:
    """chuk's ``MemoryPage`` with the fields of a tierstore page."""
    return ChukPage.model_validate(page, from_attributes=True)


def _tier(value: Any) -> StorageTier:
    try:
        return StorageTier(value.value if isinstance(value, Enum) else value)
    except ValueError:
        raise InvalidInputError(f"{value!r} is not a storage tier (L0-L4)") from None


def _adapter(manager: Any) -> TierstoreBridge:
    adapter = getattr(manager, "_bridge", None)
    if not isinstance(adapter, TierstoreBridge):
        raise InvalidInputError("this MemoryManager does not store through tierstore: call attach(manager) first")
    return adapter


def _qualified(value: object) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"
