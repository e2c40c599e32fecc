"""The spec's "Custom Backend" interface, which a user's own backend may implement instead of the rich protocol.

Such a backend chooses its own artifact ids. The bridge stores, loads, deletes and lists through it unchanged;
listing tells pages from checkpoint manifests by reading each object's frame, and calls that need the rich
protocol (tier changes, restores, exact statistics) raise NotSupportedError.
"""

from __future__ import annotations

from typing import Any, Protocol


class SimpleBackend(Protocol):
    async def store(self, page_id: str, data: bytes, metadata: dict[str, Any]) -> str: ...

    async def load(self, artifact_id: str) -> bytes | None: ...

    async def delete(self, artifact_id: str) -> bool: ...

    async def exists(self, artifact_id: str) -> bool: ...

    async def list_pages(self) -> list[str]: ...


_METHODS = ("store", "load", "delete", "exists", "list_pages")


def is_simple_backend(backend: object) -> bool:
    return all(callable(getattr(backend, name, None)) for name in _METHODS)
