"""The spec's "Custom Backend" interface, which a user's own backend may implement instead of the rich protocol.

Such a backend chooses its own artifact ids. The bridge stores, loads, deletes and lists through it unchanged;
listing tells pages from checkpoint manifests by reading each object's frame, and calls that need the rich
protocol (tier changes, restores, exact statistics) raise NotSupportedError.
"""

from __future__ import annotations

from typing import Any, Protocol


class SimpleBackend(Protocol):
    """The spec's five-call backend: it stores bytes under ids it chooses, and nothing more."""

    async def store(self, page_id: str, data: bytes, metadata: dict[str, Any]) -> str:
        """Store ``data`` for ``page_id`` with its metadata; the artifact id it chose."""
        ...

    async def load(self, artifact_id: str) -> bytes | None:
        """The bytes stored under ``artifact_id``; None when there are none."""
        ...

    async def delete(self, artifact_id: str) -> bool:
        """Delete the artifact; whether it existed."""
        ...

    async def exists(self, artifact_id: str) -> bool:
        """Whether an artifact is stored under ``artifact_id``."""
        ...

    async def list_pages(self) -> list[str]:
        """Every artifact id stored, pages and checkpoint manifests alike."""
        ...


_METHODS = ("store", "load", "delete", "exists", "list_pages")


def is_simple_backend(backend: object) -> bool:
    """Whether ``backend`` has the five calls of :class:`SimpleBackend` (checked as it is used: by name)."""
    return all(callable(getattr(backend, name, None)) for name in _METHODS)
