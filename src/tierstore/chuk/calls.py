"""The calls of chuk-ai-session-manager's own ``ArtifactsBridge``, on top of tierstore's bridge API.

chuk's ``MemoryManager`` and its users call ``configure``, ``is_persistent``, ``store_checkpoint`` and
``load_checkpoint``; :class:`ChukCalls` gives tierstore's :class:`~tierstore.bridge.ArtifactsBridge` those calls
with chuk's signatures and, where they do not weaken a tierstore guarantee, chuk's semantics. Where they would,
tierstore's hold: ids stay tierstore's (``ckpt_...``, ``mem_<tier>_<n>``), and ``load_checkpoint`` returns every
page of the checkpoint, verified, or raises; it never drops the pages it could not load as chuk does.

Why the bridge keeps them: the spec calls none of them, but they are chuk's ``ArtifactsBridge`` API, so code written
for chuk calls them on whichever ``ArtifactsBridge`` it imports (``tests/compat/test_bridge_calls.py`` runs each call
on both). This is their one implementation: :class:`tierstore.chuk.bridge.TierstoreBridge` offers the same calls
with chuk's pages by converting them and calling these.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from tierstore.errors import InvalidInputError, NotSupportedError
from tierstore.models import CheckpointManifest, MemoryPage


class _Bridge(Protocol):
    """What :class:`ChukCalls` needs of the class it is mixed into."""

    @property
    def session_id(self) -> str | None: ...

    @property
    def backend(self) -> object: ...

    async def checkpoint(self, pages: Iterable[MemoryPage], name: str) -> str: ...

    async def restore_checkpoint(self, checkpoint_id: str) -> list[MemoryPage]: ...

    async def get_checkpoint_manifest(self, checkpoint_id: str) -> CheckpointManifest | None: ...


class ChukCalls:
    """Mixin: chuk-ai-session-manager's bridge calls for a class that has tierstore's bridge API."""

    async def configure(self: _Bridge, artifact_store: Any | None = None, session_id: str | None = None) -> None:
        """chuk's ``configure``, which checks and changes nothing: tierstore's bridge gets its backend and its scope
        when it is built (``ArtifactsBridge(backend=..., session_id=...)`` or ``ArtifactsBridge.from_env()``).

        A session id other than the one the bridge is bound to is InvalidInputError (chuk's would relabel the
        bridge; tierstore's session is a boundary, which a running bridge never crosses: build another bridge, or
        ``bridge.scoped(session_id=...)``); ``None`` or the bound id is accepted. A chuk-artifacts
        ``ArtifactStore`` is refused rather than silently ignored, since pages would not go where its caller
        expects.
        """
        if artifact_store is not None:
            raise NotSupportedError(
                f"tierstore stores pages on its own backends, not in a {type(artifact_store).__name__}: build the "
                "bridge on one (ArtifactsBridge(backend=...) or ArtifactsBridge.from_env(), which reads TIERSTORE_URL)"
            )
        if session_id is not None and not isinstance(session_id, str):
            raise InvalidInputError(f"session_id must be a str or None, not {type(session_id).__name__}")
        if session_id is not None and session_id != self.session_id:
            bound = (
                f"session_id {session_id!r}: this bridge is bound to no session"
                if self.session_id is None
                else f"session_id {session_id!r} is not the session this bridge is bound to, {self.session_id!r}"
            )
            raise InvalidInputError(
                f"{bound}; its session is chosen when it is built and never changes: build one with "
                "ArtifactsBridge(session_id=...) or bridge.scoped(session_id=...)"
            )

    @property
    def is_persistent(self: _Bridge) -> bool:
        """Whether stored pages outlive the process (False for the in-memory backend)."""
        return bool(getattr(self.backend, "persistent", True))

    async def store_checkpoint(self: _Bridge, pages: list[MemoryPage], checkpoint_name: str) -> str:
        """chuk's name for :meth:`~tierstore.bridge.ArtifactsBridge.checkpoint`; returns the checkpoint id."""
        return await self.checkpoint(pages, name=checkpoint_name)

    async def load_checkpoint(self: _Bridge, checkpoint_id: str) -> list[MemoryPage]:
        """Every page of the checkpoint, verified; ``[]`` when there is no such checkpoint, as in chuk.

        An id that cannot be one of this store's checkpoints (another library's, or a typo) is not there either;
        a checkpoint whose pages are missing or damaged raises ``IntegrityError`` instead of coming back partial.
        """
        if not isinstance(checkpoint_id, str):
            raise InvalidInputError(f"checkpoint id must be a str, not {type(checkpoint_id).__name__}")
        try:
            manifest = await self.get_checkpoint_manifest(checkpoint_id)
        except InvalidInputError:
            return []
        if manifest is None:
            return []
        return await self.restore_checkpoint(checkpoint_id)
