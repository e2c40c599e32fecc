"""The optional history calls (:mod:`tierstore.backends.history`) on any cloud, from the few requests each cloud's
history client supplies (``backends/{s3,gcs,azure}/history.py``).

Contract: the backend's prefix is added to every name asked for and taken off every name listed (names that are not
keys of this store are skipped); every request runs under the backend's retry policy and deadline, and leaves as a
tierstore error as any other call does. A version the cloud refuses to delete for a reason a retry does not change
(denied: Object Lock, a retention policy, an immutability policy; a conflict) is returned as :class:`Refused`; a
transient refusal of some versions of a batch is retried with the rest. Both data paths use the SDK's client:
obstore has no request that lists or deletes versions.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Final, Protocol

from tierstore.backends.cloud.client import Calls
from tierstore.backends.cloud.failure import Failure
from tierstore.backends.history import HistorySettings, Refused, StoredVersion
from tierstore.errors import InvalidInputError

_LIST_PREFIX: Final = re.compile(r"[A-Za-z0-9._-]*")
_KEY: Final = re.compile(r"[A-Za-z0-9._-]{1,256}")
_BATCH_ROUNDS: Final = 4
"""Batches in a row that may each see some of their versions refused for a transient reason before the rest raise."""


class HistoryClient(Protocol):
    """What one cloud supplies: its version requests by full object name, one attempt each."""

    batch_limit: int
    """Versions per ``delete_versions`` request."""

    async def versions_page(self, prefix: str, token: object | None) -> tuple[Sequence[StoredVersion], object | None]:
        """One page of the versions of names starting with ``prefix`` (``key`` holds the full name), and the next
        page's token (None: done)."""
        ...

    async def delete_versions(self, versions: Sequence[StoredVersion]) -> list[tuple[StoredVersion, Failure, str]]:
        """Delete up to ``batch_limit`` versions (full names); each one not deleted, with its failure and the cloud's
        words (a version already gone is none)."""
        ...

    async def settings(self) -> HistorySettings:
        """What the bucket keeps after a delete; what the credentials may not read is None, with a note."""
        ...


class CloudHistory:
    """Mixin of the clouds' backends: ``history``, ``delete_versions`` and ``history_settings`` through
    ``history_client``."""

    prefix: str
    calls: Calls
    history_client: HistoryClient

    async def history(self, prefix: str = "") -> AsyncIterator[StoredVersion]:
        """Every version kept of every key under ``prefix`` (:mod:`tierstore.backends.history`)."""
        if not isinstance(prefix, str) or not _LIST_PREFIX.fullmatch(prefix):
            raise InvalidInputError(f"invalid list prefix {prefix!r}")
        token: object | None = None
        while True:
            page, token = await self.calls.run("list versions", None, self._versions_fetcher(prefix, token))
            for version in page:
                key = version.key[len(self.prefix) :]
                if version.key.startswith(self.prefix) and _KEY.fullmatch(key):
                    yield replace(version, key=key)
            if token is None:
                return

    def _versions_fetcher(
        self, prefix: str, token: object | None
    ) -> Callable[[], Awaitable[tuple[Sequence[StoredVersion], object | None]]]:
        name = self.prefix + prefix
        return lambda: self.history_client.versions_page(name, token)

    async def delete_versions(self, versions: Sequence[StoredVersion]) -> list[Refused]:
        """Delete exactly ``versions``; those the bucket refused, with why."""
        refused: list[Refused] = []
        limit = max(self.history_client.batch_limit, 1)
        for start in range(0, len(versions), limit):
            chunk = [replace(v, key=self.prefix + v.key) for v in versions[start : start + limit]]
            for _ in range(_BATCH_ROUNDS):
                failed = await self.calls.run(f"delete {len(chunk)} versions", None, self._versions_deleter(chunk))
                for version, failure, words in failed:
                    if not failure.transient:
                        refused.append(Refused(replace(version, key=version.key[len(self.prefix) :]), words))
                chunk = [version for version, failure, _ in failed if failure.transient]
                if not chunk:
                    break
            else:
                failure = next(f for _, f, _ in failed if f.transient)
                raise failure.error("delete versions", chunk[0].key[len(self.prefix) :], where=self.calls.where)
        return refused

    def _versions_deleter(
        self, chunk: list[StoredVersion]
    ) -> Callable[[], Awaitable[list[tuple[StoredVersion, Failure, str]]]]:
        return lambda: self.history_client.delete_versions(chunk)

    async def history_settings(self) -> HistorySettings:
        """What the bucket keeps after a delete (:class:`HistorySettings`)."""
        return await self.calls.run("read the bucket's history settings", None, self.history_client.settings)
