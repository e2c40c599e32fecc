"""chuk-ai-session-manager's ``MemoryManager`` on tierstore storage: :func:`attach`, :func:`checkpoint`,
:func:`restore`, :func:`restore_archived` (imported by users from :mod:`tierstore.integrations.chuk`).

Evicting to L3 or L4 stores the page through tierstore, and faults bring chuk's own ``MemoryPage`` back: the page
asked for or an error, never another one (every fault checks the page id it loaded). :func:`checkpoint` and
:func:`restore` save and rebuild a manager across a restart: its pages with their tiers, L0 order and pins, its page
table and its search hints. Evicted pages are never copied for that: a checkpoint names the artifacts the manager
refers to, and a restore refers to the checkpoint's, so restarts with nothing changed store nothing new. An
attached manager keeps what it refers to alive with a lease (:mod:`tierstore.chuk.lease`); what no
checkpoint and no running agent refers to any more is left to ``gc``.

chuk's ``MemoryManager`` has no public hook for its storage, so :func:`attach` sets the private attributes chuk 0.11
reads (``_bridge``, ``_bridge_configured``) and routes the manager's ``load`` (the loader its fault handler calls)
through the page-id check; :func:`restore` fills ``_page_store`` and the search hints (``_page_hints``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final

from pydantic import ValidationError

from tierstore.backends.base import RestoreSpeed, RestoreStatus
from tierstore.bridge import ArtifactsBridge
from tierstore.chuk.binding import bound_bridge, carry_over
from tierstore.chuk.bridge import (
    EVICTED,
    ChukEntry,
    ChukPage,
    MemoryManager,
    TierstoreBridge,
    artifact_of,
    qualified,
    tier_of,
    to_chuk,
    to_tierstore,
)
from tierstore.chuk.lease import AgentLease
from tierstore.chuk.state import STATE_PAGE_ID, ManagerState, read_state, state_page
from tierstore.concurrency import bounded_gather
from tierstore.enums import StorageTier
from tierstore.errors import (
    ArchivedPageError,
    IntegrityError,
    InvalidInputError,
    NotSupportedError,
    ObjectNotFoundError,
    TierstoreError,
)
from tierstore.models import CheckpointEntry, CheckpointManifest, MemoryPage

__all__ = ["TierstoreBridge", "attach", "checkpoint", "restore", "restore_archived"]

logger = logging.getLogger(__name__)

_CONCURRENCY: Final = 16  # pages read or described at once by checkpoint and restore
_LOADER_MARK: Final = "_tierstore_checked_load"
_SWEEP_WAITS: Final = (0.1, 0.2, 0.4, 0.8, 1.5, 2.0, 2.0, 2.0, 2.0, 2.0)
"""Pauses while a deletion that may have missed a restoring agent's lease runs (about 13 s in all)."""


def attach(manager: Any, bridge: ArtifactsBridge | None = None, *, user_id: str | None = None) -> TierstoreBridge:
    """Make ``manager`` (chuk's ``MemoryManager``) store evicted pages through tierstore; returns its new bridge.

    The agent works in its manager's session scope: its evicted pages, its lease and its checkpoints live there
    (:mod:`tierstore.chuk.binding`). The scope is ``manager.session_id`` and the user ``user_id``, else the bridge's,
    else ``TIERSTORE_USER_ID``; a ``bridge`` bound to no session is replaced by one bound to that scope, on the same
    backend with the same settings (closing either ends the agent); one bound to another session or user is
    InvalidInputError. Without ``bridge``, the store is the one ``TIERSTORE_*`` names (``TIERSTORE_URL``; the
    local-disk store when unset). Pages the manager evicted through its previous bridge stay there and fault from
    there (checked like any other); the next :func:`checkpoint` or eviction carries them into the session's scope.
    A checkpoint made before scopes (at the root of the store) is carried over by :func:`restore`.
    """
    if not isinstance(manager, MemoryManager):
        raise InvalidInputError(f"expected chuk's MemoryManager, got {qualified(manager)}")
    for name in ("_bridge", "_bridge_configured", "_page_store", "_page_hints", "_search_handler"):
        if not hasattr(manager, name):
            raise NotSupportedError(
                f"this chuk-ai-session-manager's MemoryManager has no {name}; tierstore supports 0.11's"
            )
    bound = bound_bridge(bridge, manager.session_id, user_id)
    previous, configured = manager._bridge, bool(manager._bridge_configured)
    adapter = TierstoreBridge(bound)
    if bound.session_id is None:  # a custom backend: no scopes, the session is chuk's label as before them
        adapter._label = manager.session_id
    try:
        adapter._lease = AgentLease(bound.references("chuk agents"))
    except NotSupportedError:
        adapter._lease = None  # a custom backend has no leases: checkpoints and restores copy evicted pages
    else:
        bound.on_close(adapter._lease.release)  # closing either bridge ends the agent
        if bridge is not None and bridge is not bound:
            bridge.on_close(adapter._lease.release)
    if configured and previous is not None:
        for entry in manager.page_table.entries.values():
            if entry.artifact_id and tier_of(entry.tier) in EVICTED:
                adapter._inherited[entry.page_id] = (entry.artifact_id, previous)
    manager._bridge = adapter
    manager._bridge_configured = True
    if not getattr(manager, _LOADER_MARK, False):
        manager.load = _checked_loader(manager)
        setattr(manager, _LOADER_MARK, True)
    return adapter


def _checked_loader(manager: Any) -> Callable[..., Coroutine[Any, Any, Any]]:
    """chuk's ``MemoryManager.load`` (the fault handler's loader), with stored pages loaded by :meth:`fault`."""
    original = type(manager).load

    async def load(page_id: str, tier: Any, artifact_id: str | None = None) -> Any:
        page = await original(manager, page_id, tier, None)  # chuk's in-memory store
        if page is not None or not artifact_id:
            return page
        adapter = manager._bridge
        if isinstance(adapter, TierstoreBridge) and manager._bridge_configured:
            return await adapter.fault(page_id, artifact_id)
        return await original(manager, page_id, tier, artifact_id)

    return load


async def checkpoint(manager: Any, name: str, *, drop_missing: bool = False) -> str:
    """Checkpoint ``manager``: every page it holds or has evicted (with its tier), its page table, L0 order, pins
    and search hints; returns the checkpoint id.

    Pages in memory are checkpointed as tierstore checkpoints are (an unchanged one reuses its artifact). Evicted
    pages are not read: the checkpoint names the artifacts the manager refers to, each shown there as stored (one
    metadata request, so archived pages need no restore). The agent's lease names them all before the manifest is
    written. An evicted page whose artifact another process deleted (``delete_page``, ``tierstore rm``) can be
    neither faulted nor checkpointed: ``IntegrityError`` names it and what to do, nothing is listed, and the
    manager is left as it was; with ``drop_missing=True`` such pages are dropped from the manager instead (its page
    table, hints and search) and the checkpoint is made without them.
    """
    adapter = _adapter(manager)
    for _ in range(len(manager.page_table.entries) + 1):
        try:
            return await _checkpoint(manager, adapter, name)
        except _MissingPage as missing:
            if not drop_missing or not missing.gone:
                raise missing.error from missing.cause
            logger.info("dropped page %r from the manager: its artifact %s was deleted", missing.page_id, missing.key)
            _drop(manager, adapter, missing.page_id)
    raise TierstoreError(f"checkpoint {name!r}: pages kept being deleted while it ran; nothing was checkpointed")


class _MissingPage(Exception):
    """An evicted page the checkpoint could not show stored: the error for the caller, and whether it is gone."""

    def __init__(self, page_id: str, key: str, gone: bool, cause: IntegrityError) -> None:
        super().__init__(page_id)
        self.page_id, self.key, self.gone, self.cause = page_id, key, gone, cause
        if gone:
            what = "was deleted by another process, or is being deleted"
            way = "`await checkpoint(vm, name, drop_missing=True)` (it leaves out every such page), or "
        else:  # damage or a change by another program: not for drop_missing to decide
            what, way = "is not as it was stored (damaged, replaced or moved to another tier; run fsck)", ""
        self.error = IntegrityError(
            f"page {page_id!r} is evicted to artifact {key}, which {what}; the page cannot be checkpointed, and "
            f"nothing was checkpointed: drop it from the manager with {way}`vm.page_table.remove({page_id!r})`",
            key=key,
        )


def _drop(manager: Any, adapter: TierstoreBridge, page_id: str) -> None:
    """Forget an evicted page whose artifact is gone: the page table, hints and search no longer show it."""
    manager.page_table.remove(page_id)
    manager._page_store.pop(page_id, None)
    manager._page_hints.pop(page_id, None)
    hints = getattr(manager._search_handler, "page_hints", None)
    if isinstance(hints, dict):
        hints.pop(page_id, None)
    adapter._known.pop(page_id, None)


async def _checkpoint(manager: Any, adapter: TierstoreBridge, name: str) -> str:
    l0 = list(manager.working_set.get_l0_page_ids())
    order = {page_id: i for i, page_id in enumerate(l0)}
    table = list(manager.page_table.entries.values())
    if STATE_PAGE_ID in manager.page_table.entries:
        raise InvalidInputError(f"page id {STATE_PAGE_ID!r} is reserved for the manager's state in a checkpoint")
    pages: list[MemoryPage] = []
    evicted: list[Any] = []
    for entry in sorted(table, key=lambda e: order.get(e.page_id, len(order))):
        tier = tier_of(entry.tier)
        page = manager._page_store.get(entry.page_id)
        if tier in EVICTED and entry.artifact_id and (page is None or adapter._lease is not None):
            evicted.append(entry)
            continue
        if page is None:
            raise TierstoreError(
                f"page {entry.page_id!r} is registered in {tier.value} but is neither in memory nor in storage; "
                "nothing was checkpointed"
            )
        pages.append(to_tierstore(page).model_copy(update={"storage_tier": tier}))
    if adapter._lease is None:  # no leases on this backend: the checkpoint holds copies
        loaded = await bounded_gather((adapter.fault(e.page_id, e.artifact_id) for e in evicted), _CONCURRENCY)
        for page, entry in zip(loaded, evicted, strict=True):
            pages.append(to_tierstore(page).model_copy(update={"storage_tier": tier_of(entry.tier)}))
        evicted = []
    try:
        stored = await bounded_gather((adapter._reference(e) for e in evicted), _CONCURRENCY)
        if adapter._lease is not None:
            await adapter._lease.name(_referenced(manager, adapter))  # before any manifest can name them
        state = ManagerState(
            entries=[e.model_dump(mode="json") for e in manager.page_table.entries.values()],
            l0=l0,
            pinned=[e.page_id for e in table if manager.working_set.is_pinned(e.page_id)],
            hints={pid: hint for pid, hint in manager._page_hints.items() if pid in manager.page_table.entries},
        )
        pages.append(state_page(state, manager.session_id))
        return await adapter.bridge.checkpoint(pages, name=name, stored=stored)
    except IntegrityError as exc:
        artifact = None if exc.key is None else artifact_of(exc.key)
        page_id = next((e.page_id for e in evicted if e.artifact_id == artifact), None)
        if page_id is None or artifact is None:
            raise
        raise _MissingPage(page_id, artifact, await _gone(adapter, artifact), exc) from exc


async def _gone(adapter: TierstoreBridge, key: str) -> bool:
    """Whether an artifact is deleted, or named by a deletion's deleted tomb (being deleted, whatever leases say)."""
    try:
        if await adapter.bridge.get_metadata(key) is None:
            return True
    except IntegrityError:
        return False
    return adapter._lease is not None and key in (await adapter._lease.threats([key])).deleted


async def restore(manager: Any, checkpoint_id: str) -> list[Any]:
    """Rebuild a checkpoint in ``manager`` (a fresh one, attached to the checkpoint's store); returns its pages.

    L0 pages return to the context window in their order, L1/L2 pages to memory, and evicted (L3/L4) pages to the
    page table only: the manager refers to the checkpoint's artifacts, which are checked (present, the right page,
    one metadata request each) but neither read nor copied, so archived pages stay archived. The page table, pins
    and search hints are those of the checkpoint. Returns chuk's pages: those in memory, read and verified, and the
    evicted ones without their content. Everything is read and checked before the manager changes, so an unknown
    checkpoint (``ObjectNotFoundError``), a damaged one (``IntegrityError``) or a failing store leaves it as it was.

    A checkpoint the session's scope lacks but the root of the store holds for this session (made before scopes)
    is carried over first: read from the root, verified, and written as a checkpoint of the session's scope, whose
    artifacts the manager then refers to; the root is only read (:func:`tierstore.chuk.binding.carry_over`).
    """
    adapter = _adapter(manager)
    bridge = adapter.bridge
    manifest = await bridge.get_checkpoint_manifest(checkpoint_id)
    if manifest is None:  # made before scopes, at the root: copied into the session's scope (chuk.binding)
        carried = await carry_over(bridge, checkpoint_id)
        manifest = None if carried is None else await bridge.get_checkpoint_manifest(carried)
        if carried is None or manifest is None:
            raise ObjectNotFoundError(checkpoint_id)
        checkpoint_id = carried
    if not any(e.page_id == STATE_PAGE_ID for e in manifest.pages):
        return await _restore_pages(manager, adapter, checkpoint_id)
    evicted = [e for e in manifest.pages if e.page_id != STATE_PAGE_ID and _entry_tier(e) in EVICTED]
    evicted_ids = {e.page_id for e in evicted}
    lease = adapter._lease
    wanted = None if lease is None else [e.page_id for e in manifest.pages if e.page_id not in evicted_ids]
    loaded = {p.page_id: p for p in await bridge.restore_checkpoint(checkpoint_id, only=wanted)}
    state = read_state(loaded.pop(STATE_PAGE_ID))
    refs = {e.page_id: e.model_copy(update={"state": None}) for e in evicted}
    if lease is None:  # no leases on this backend: the manager keeps copies of its own
        copies = [(loaded.pop(e.page_id), e.tier) for e in evicted]
        stored = await bounded_gather((bridge.store_page(page, tier) for page, tier in copies), _CONCURRENCY)
        for evicted_entry, artifact_id in zip(evicted, stored, strict=True):
            refs[evicted_entry.page_id] = refs[evicted_entry.page_id].model_copy(update={"artifact_id": artifact_id})
    else:
        await bounded_gather((_check_stored(adapter, e) for e in evicted), _CONCURRENCY)
        await _rely_on(manager, adapter, lease, refs)
    _rebuild(manager, adapter, state, loaded, refs, manifest)
    for page_id in state.l0:
        page = manager._page_store.get(page_id)
        if page is not None:
            await manager.add_to_working_set(page)
    for page_id in state.pinned:
        manager.pin_page(page_id)
    return [*(to_chuk(p) for p in loaded.values()), *(_described_page(e, refs[e.page_id]) for e in evicted)]


def _rebuild(
    manager: Any,
    adapter: TierstoreBridge,
    state: ManagerState,
    loaded: dict[str, MemoryPage],
    refs: dict[str, CheckpointEntry],
    manifest: CheckpointManifest,
) -> None:
    try:
        entries = [ChukEntry.model_validate(e) for e in state.entries]
    except ValidationError as exc:
        raise IntegrityError(f"checkpoint {manifest.checkpoint_id}: a page table entry is malformed ({exc})") from exc
    listed = {e.page_id for e in entries}
    missing = (set(loaded) | set(refs)) - listed
    if missing:
        raise IntegrityError(f"checkpoint {manifest.checkpoint_id}: pages {sorted(missing)} have no page table entry")
    for entry in entries:
        if entry.page_id in refs:
            entry.artifact_id = refs[entry.page_id].artifact_id
            adapter._known[entry.page_id] = refs[entry.page_id]
        elif entry.page_id not in loaded:
            continue  # neither in memory nor stored when checkpointed: chuk lost it before, as it would
        adapter._inherited.pop(entry.page_id, None)
        manager.page_table.register_entry(entry)
        if entry.page_id in loaded:
            manager._page_store[entry.page_id] = to_chuk(loaded[entry.page_id])
    for page_id, hint in state.hints.items():
        if page_id in listed:
            manager._page_hints[page_id] = hint
            manager._search_handler.set_hint(page_id, hint)


async def _rely_on(
    manager: Any,
    adapter: TierstoreBridge,
    lease: AgentLease,
    refs: dict[str, CheckpointEntry],
    pages: dict[str, MemoryPage] | None = None,
) -> None:
    """Have the agent's lease name the checkpoint's artifacts ``refs`` (page id -> entry) before the manager relies
    on them. A deletion that may have missed the lease (its pending tomb names one of them) is waited for, a few
    seconds at most, as routine maintenance (``gc``, deleting old checkpoints) beside an agent must not fail it.
    What a deleted tomb names, or a deletion still running, gets a copy of our own (from ``pages`` when read
    already); one that cannot be read (gone, or archived) fails the restore with ``IntegrityError``."""
    ours = {e.artifact_id for e in refs.values()}
    threats = await lease.name(_referenced(manager, adapter) | ours)
    for delay in _SWEEP_WAITS:
        if not threats.pending & ours:
            break
        await asyncio.sleep(delay)
        threats = await lease.threats(ours)
    for page_id in [pid for pid, e in refs.items() if e.artifact_id in threats.deleted | threats.pending]:
        artifact = refs[page_id].artifact_id
        try:
            page = (pages or {}).get(page_id) or to_tierstore(await adapter.fault(page_id, artifact))
        except (ArchivedPageError, IntegrityError) as exc:
            raise IntegrityError(
                f"page {page_id!r} of this checkpoint ({artifact}) is being deleted or was deleted, and cannot be "
                f"copied ({exc}); restore again once the deletion has ended, or restore another checkpoint",
                key=artifact,
            ) from exc
        refs[page_id] = await lease.store(adapter.bridge, page, StorageTier(refs[page_id].tier), None)


async def _restore_pages(manager: Any, adapter: TierstoreBridge, checkpoint_id: str) -> list[Any]:
    """A checkpoint without the manager's state (made before this release, or by a bridge alone): every page is
    read; evicted pages are referred to where leases keep them alive, else stored anew."""
    pages = [to_chuk(p) for p in await adapter.bridge.restore_checkpoint(checkpoint_id)]
    evicted = [p for p in pages if tier_of(p.storage_tier) in EVICTED]
    if adapter._lease is None:
        stored = await bounded_gather((adapter.store_page(p, p.storage_tier) for p in evicted), _CONCURRENCY)
        for page, artifact_id in zip(evicted, stored, strict=True):
            page.artifact_id = artifact_id
    else:
        manifest = await adapter.bridge.get_checkpoint_manifest(checkpoint_id)
        by_page = {e.page_id: e for e in manifest.pages} if manifest else {}
        refs = {p.page_id: by_page[p.page_id].model_copy(update={"state": None}) for p in evicted}
        await _rely_on(manager, adapter, adapter._lease, refs, {p.page_id: to_tierstore(p) for p in evicted})
        for page in evicted:
            page.artifact_id = refs[page.page_id].artifact_id
            adapter._known[page.page_id] = refs[page.page_id]
    for page in pages:
        adapter._inherited.pop(page.page_id, None)
        manager.page_table.register(page)
        tier = tier_of(page.storage_tier)
        if tier not in EVICTED:
            manager._page_store[page.page_id] = page
        if tier == StorageTier.L0:
            await manager.add_to_working_set(page)
        if page.pinned:
            manager.pin_page(page.page_id)
    return pages


async def restore_archived(
    manager: Any, page_id: str, *, days: int = 1, speed: RestoreSpeed = "standard"
) -> RestoreStatus:
    """Ask the store to bring the archived page ``page_id`` of ``manager`` back (S3 Glacier, Azure Archive), so a
    fault can read it once the status is ``restored``."""
    adapter = _adapter(manager)
    entry = manager.page_table.lookup(page_id)
    if entry is None or not entry.artifact_id:
        raise ObjectNotFoundError(page_id)
    return await adapter.bridge.restore_page(entry.artifact_id, days=days, speed=speed)


async def _check_stored(adapter: TierstoreBridge, entry: CheckpointEntry) -> None:
    meta = await adapter.bridge.get_metadata(entry.artifact_id)
    if meta is None:
        raise IntegrityError(f"page {entry.page_id!r} is missing: {entry.artifact_id}", key=entry.artifact_id)
    if meta.page_id != entry.page_id or (entry.checksum and meta.checksum and meta.checksum != entry.checksum):
        raise IntegrityError(
            f"artifact {entry.artifact_id} does not hold page {entry.page_id!r} as checkpointed", key=entry.artifact_id
        )


def _referenced(manager: Any, adapter: TierstoreBridge) -> set[str]:
    """The artifacts the agent's lease must name: the latest one stored or restored for each page it holds."""
    return {entry.artifact_id for pid, entry in adapter._known.items() if pid in manager.page_table.entries}


def _entry_tier(entry: CheckpointEntry) -> StorageTier:
    return entry.state.storage_tier if entry.state is not None else tier_of(entry.tier)


def _described_page(entry: CheckpointEntry, stored: CheckpointEntry) -> Any:
    state = entry.state
    page = ChukPage(page_id=entry.page_id, modality=entry.modality, storage_tier=_entry_tier(entry).value)
    page.artifact_id = stored.artifact_id
    if state is not None:
        page.last_accessed, page.access_count, page.dirty = state.last_accessed, state.access_count, state.dirty
    return page


def _adapter(manager: Any) -> TierstoreBridge:
    adapter = getattr(manager, "_bridge", None)
    if not isinstance(adapter, TierstoreBridge):
        raise InvalidInputError("this MemoryManager does not store through tierstore: call attach(manager) first")
    bound = adapter.bridge.session_id
    if bound is not None and manager.session_id != bound:
        raise InvalidInputError(
            f"this MemoryManager's session is {manager.session_id!r} now, and its storage is session {bound!r}'s: "
            "attach(manager) again to work in the new session (its pages evicted before come along at the next "
            "checkpoint)"
        )
    return adapter
