"""chuk-ai-session-manager's bridge calls and pages on tierstore: :class:`TierstoreBridge`, and the conversions
between chuk's ``MemoryPage`` and tierstore's (field for field, validated).

This is the one module that imports chuk; :mod:`tierstore.chuk.manager` builds on it.
"""

from __future__ import annotations

import shlex
from enum import Enum
from typing import Any, Final

from pydantic import ValidationError

from tierstore.bridge import ArtifactsBridge, bridge_from_env
from tierstore.chuk.lease import AgentLease
from tierstore.enums import StorageTier
from tierstore.errors import ArchivedPageError, IntegrityError, InvalidInputError, MissingDependencyError
from tierstore.models import CheckpointEntry, MemoryPage, PageState

try:
    from chuk_ai_session_manager.memory import (
        MemoryManager,
        MemoryPage as ChukPage,
        PageTableEntry as ChukEntry,
        StorageStats as ChukStorageStats,
        StorageTier as ChukTier,
    )
except ImportError as exc:
    raise MissingDependencyError("chuk", "chuk-ai-session-manager") from exc

__all__ = [
    "EVICTED",
    "ChukEntry",
    "ChukPage",
    "MemoryManager",
    "TierstoreBridge",
    "artifact_of",
    "qualified",
    "tier_of",
    "to_chuk",
    "to_tierstore",
]

EVICTED: Final = (StorageTier.L3, StorageTier.L4)
"""The tiers chuk's pages are evicted to storage in."""


class TierstoreBridge:
    """A tierstore :class:`~tierstore.bridge.ArtifactsBridge` with the calls and objects of chuk's bridge.

    Pages go in as chuk's (or tierstore's) ``MemoryPage`` and come back as chuk's; ids, checksums and the stored
    format are tierstore's. ``bridge`` is the tierstore bridge underneath, for everything else it offers. Made by
    :func:`tierstore.integrations.chuk.attach`, it stores the manager's evictions under the agent's lease
    (:mod:`tierstore.chuk.lease`), and a page evicted again unchanged keeps the artifact it had.
    """

    def __init__(self, bridge: ArtifactsBridge | None = None, *, session_id: str | None = None) -> None:
        self.bridge = bridge if bridge is not None else bridge_from_env()
        self._label: str | None = None
        """chuk's session id on a bridge bound to no session: a label for chuk's stats, isolating nothing (``attach``
        binds the manager's session, but on a custom backend, which has no scopes)."""
        if session_id is not None:
            self._relabel(session_id)
        self._lease: AgentLease | None = None
        """Set by attach() on a store with leases: evictions are then owned by the agent's lease."""
        self._known: dict[str, CheckpointEntry] = {}
        """page id -> the artifact this bridge stored or restored for it last (what the lease names)."""
        self._inherited: dict[str, tuple[str, Any]] = {}
        """page id -> (artifact id, bridge) of a page evicted through the manager's bridge before attach()."""

    def __repr__(self) -> str:
        return f"TierstoreBridge({self.bridge!r})"

    @property
    def session_id(self) -> str | None:
        """The session the bridge underneath is bound to; on one bound to none, chuk's label (``configure``)."""
        return self.bridge.session_id if self.bridge.session_id is not None else self._label

    async def configure(self, artifact_store: Any | None = None, session_id: str | None = None) -> None:
        """chuk's ``configure``, as :meth:`tierstore.chuk.calls.ChukCalls.configure` answers it on a bridge bound to
        a session; on one bound to none, ``session_id`` is chuk's label (``None`` clears it), isolating nothing."""
        await self.bridge.configure(artifact_store, session_id if self.bridge.session_id is not None else None)
        if self.bridge.session_id is None:
            self._relabel(session_id)

    def _relabel(self, session_id: str | None) -> None:
        if self.bridge.session_id is not None:
            if session_id != self.bridge.session_id:
                raise InvalidInputError("session_id differs from the session the bridge is bound to")
            return
        if session_id is not None and not isinstance(session_id, str):
            raise InvalidInputError(f"session_id must be a str or None, not {type(session_id).__name__}")
        self._label = session_id

    @property
    def is_persistent(self) -> bool:
        """Whether stored pages outlive the process (False for the in-memory backend)."""
        return self.bridge.is_persistent

    async def store_page(self, page: Any, tier: Any = ChukTier.L3) -> str:
        """Store chuk's (or tierstore's) page in ``tier``; its artifact id (under the agent's lease once attached)."""
        converted, resolved = to_tierstore(page), tier_of(tier)
        self._inherited.pop(converted.page_id, None)
        if self._lease is None:
            return await self.bridge.store_page(converted, resolved)
        entry = await self._lease.store(self.bridge, converted, resolved, self._known.get(converted.page_id))
        self._known[converted.page_id] = entry
        return entry.artifact_id

    async def load_page(self, artifact_id: str) -> Any:
        """chuk's ``MemoryPage``, or None when there is no such page."""
        page = await self.bridge.load_page(artifact_id)
        return None if page is None else to_chuk(page)

    async def delete_page(self, artifact_id: str) -> bool:
        """Delete a stored page; True if there was one."""
        return await self.bridge.delete_page(artifact_id)

    async def store_checkpoint(self, pages: list[Any], checkpoint_name: str) -> str:
        """chuk's ``store_checkpoint`` of chuk's pages (:meth:`tierstore.chuk.calls.ChukCalls.store_checkpoint`)."""
        return await self.bridge.store_checkpoint([to_tierstore(p) for p in pages], checkpoint_name)

    async def load_checkpoint(self, checkpoint_id: str) -> list[Any]:
        """chuk's ``load_checkpoint``, as chuk's pages (:meth:`tierstore.chuk.calls.ChukCalls.load_checkpoint`)."""
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

    async def fault(self, page_id: str, artifact_id: str) -> Any:
        """chuk's page ``page_id``, stored under ``artifact_id``: that page or an error, never another page.

        ``IntegrityError`` when the artifact is missing or holds another page; ``ArchivedPageError`` naming how to
        bring it back when it is archived.
        """
        inherited = self._inherited.get(page_id)
        if inherited is not None and inherited[0] == artifact_id:
            page, where = await inherited[1].load_page(artifact_id), "the manager's bridge before attach()"
            page = None if page is None else to_chuk(to_tierstore(page))
        else:
            try:
                loaded = await self.bridge.load_page(artifact_id)
            except ArchivedPageError as exc:
                raise _ArchivedPageFault(page_id, artifact_id, self.bridge, exc) from exc
            page, where = (None if loaded is None else to_chuk(loaded)), "the store"
        if page is None:
            raise IntegrityError(
                f"page {page_id!r} is stored as {artifact_id!r}, which {where} does not hold (deleted by another "
                "process, or removed): the page is lost; drop it from the manager with `await checkpoint(vm, name, "
                f"drop_missing=True)` or `vm.page_table.remove({page_id!r})`",
                key=artifact_id,
            )
        if page.page_id != page_id:
            raise IntegrityError(
                f"artifact {artifact_id!r} holds page {page.page_id!r}, not page {page_id!r}: refused", key=artifact_id
            )
        return page

    async def aclose(self) -> None:
        """Release this agent's lease (what only it kept alive is then left to ``gc``) and close the clients of the
        bridge underneath; other agents attached with that bridge go on (closing it ends them all, see
        :mod:`tierstore.chuk.lease`)."""
        if self._lease is not None:
            await self._lease.release()
        await self.bridge.aclose(release=False)

    async def __aenter__(self) -> TierstoreBridge:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _reference(self, entry: Any) -> CheckpointEntry:
        """The stored artifact of an evicted page table entry (chuk's, updated in place), for a checkpoint to name
        without reading it. A page still in the manager's bridge before attach() is carried over first."""
        inherited = self._inherited.get(entry.page_id)
        if inherited is not None and inherited[0] == entry.artifact_id:
            page = await self.fault(entry.page_id, entry.artifact_id)
            entry.artifact_id = await self.store_page(page, entry.tier)
        known = self._known.get(entry.page_id)
        if known is None or known.artifact_id != entry.artifact_id:
            known = self._known[entry.page_id] = await self._described(entry.page_id, entry.artifact_id)
        state = PageState(
            last_accessed=entry.last_accessed,
            access_count=entry.access_count,
            dirty=entry.dirty,
            storage_tier=tier_of(entry.tier),
            artifact_id=known.artifact_id,
        )
        return known.model_copy(update={"state": state})

    async def _described(self, page_id: str, artifact_id: str) -> CheckpointEntry:
        """An entry for an artifact this bridge did not store, from its metadata (one request, no body read)."""
        meta = await self.bridge.get_metadata(artifact_id)
        if meta is None:
            raise IntegrityError(f"page {page_id!r} is stored as {artifact_id!r}, which is missing", key=artifact_id)
        if meta.page_id != page_id:
            raise IntegrityError(f"artifact {artifact_id!r} holds page {meta.page_id!r}, not {page_id!r}")
        return CheckpointEntry(
            page_id=page_id,
            artifact_id=artifact_id,
            modality=meta.modality,
            tier=meta.tier or StorageTier.L3.value,
            checksum=meta.checksum,
            size_bytes=meta.size_bytes,
        )


class _ArchivedPageFault(ArchivedPageError):
    """A fault on an archived page: says which page and how to bring it back (``key``: its artifact id)."""

    def __init__(self, page_id: str, artifact_id: str, bridge: ArtifactsBridge, cause: ArchivedPageError) -> None:
        super().__init__(artifact_id, pending=cause.pending)
        state = "a restore is in progress" if cause.pending else "no restore has been requested"
        scope = "" if bridge.user_id is None else f" --user {shlex.quote(bridge.user_id)}"
        scope += "" if bridge.session_id is None else f" --session {shlex.quote(bridge.session_id)}"
        self.args = (
            f"page {page_id!r} is archived in artifact {artifact_id!r} and cannot be read until it is restored "
            f"({state}): `await tierstore.integrations.chuk.restore_archived(vm, {page_id!r})` or `tierstore restore "
            f"{artifact_id}{scope}`, then fault it again once the restore completes",
        )
        self.page_id = page_id


def to_tierstore(page: Any) -> MemoryPage:
    """tierstore's ``MemoryPage`` with the fields of ``page`` (chuk's or tierstore's), validated."""
    if isinstance(page, MemoryPage):
        return page
    if not isinstance(page, ChukPage):
        raise InvalidInputError(f"expected a MemoryPage (tierstore's or chuk's), got {qualified(page)}")
    try:
        return MemoryPage.model_validate(page, from_attributes=True)
    except ValidationError as exc:
        raise InvalidInputError(f"chuk page {page.page_id!r} is not a valid tierstore page: {exc}") from exc


def to_chuk(page: MemoryPage) -> Any:
    """chuk's ``MemoryPage`` with the fields of a tierstore page."""
    return ChukPage.model_validate(page, from_attributes=True)


def tier_of(value: Any) -> StorageTier:
    """tierstore's tier for chuk's or tierstore's ``StorageTier`` (or its value); InvalidInputError otherwise."""
    try:
        return StorageTier(value.value if isinstance(value, Enum) else value)
    except ValueError:
        raise InvalidInputError(f"{value!r} is not a storage tier (L0-L4)") from None


def artifact_of(key: str) -> str:
    """The artifact id a storage key of any scope holds (a scope's prefix ends in ``.``; artifact ids have none)."""
    return key.rpartition(".")[2]


def qualified(value: object) -> str:
    """The qualified class name of ``value``, for error messages."""
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"
