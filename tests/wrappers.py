"""Backends wrapped to observe or fail calls, so tests can interrupt the bridge at exact points.

They wrap a real backend of the rig under test; every call still reaches it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from tierstore.backends.base import Buffer, StorageBackend
from tierstore.enums import StorageTier
from tierstore.errors import BackendUnavailableError, TierstoreError


class Observed:
    """Delegates every call to ``inner``; counts puts by key prefix, can fail chosen puts, and can check each
    put's arguments (``check_put(key, metadata, tags)``) before it goes out."""

    def __init__(
        self,
        inner: StorageBackend,
        fail_put: Callable[[str], bool] = lambda key: False,
        check_put: Callable[[str, Mapping[str, str] | None, Mapping[str, str] | None], object] | None = None,
        error: type[TierstoreError] = BackendUnavailableError,
    ) -> None:
        self.inner = inner
        self.fail_put = fail_put
        self.error = error
        self.check_put = check_put
        self.puts: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def put(
        self,
        key: str,
        data: Buffer,
        *,
        metadata: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        tier: StorageTier = StorageTier.L3,
        if_absent: bool = False,
    ) -> None:
        if self.check_put is not None:
            self.check_put(key, metadata, tags)
        if self.fail_put(key):
            raise self.error(f"injected failure writing {key}")
        self.puts[key.split("_", 1)[0]] += 1
        await self.inner.put(key, data, metadata=metadata, tags=tags, tier=tier, if_absent=if_absent)
