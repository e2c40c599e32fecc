"""A scripted, in-process :class:`~tierstore.backends.cloud.client.ObjectClient`: tierstore's own client protocol
over a dict, with the failure of any request written into a script, so that what
:class:`~tierstore.backends.cloud.backend.CloudBackend` decides above every cloud (retries, create-then-verify,
range guards, archived reads, batch fallback, listing) is tested in milliseconds.

It is no mocked SDK: no cloud library is involved. The adapters themselves are proven against the emulators
(``tests/contract``, ``tests/test_<cloud>_specific.py``); this double proves only the logic above them.

Script: ``client.fail("put", failure, ...)`` makes the next ``put`` requests fail with those failures, in order. A
failure with ``applied="maybe"`` takes effect first and loses its answer (as a reset after the service acted);
one with ``applied="no"`` is refused before anything happens.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tierstore.backends.base import Buffer, Chunks, RestoreSpeed, RestoreStatus
from tierstore.backends.cloud import CloudOptions, Failure, RetryPolicy, TierMap
from tierstore.backends.cloud.backend import CloudBackend
from tierstore.backends.cloud.client import Calls, Head, Listed, page_size
from tierstore.enums import StorageTier

HOT, COLD = "HOT", "COLD"


class ScriptedError(Exception):
    """What the scripted service raises; its adapter's ``classify`` would answer ``failure``."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.describe())
        self.failure = failure


@dataclass
class Stored:
    data: bytes
    metadata: Mapping[str, str]
    tags: dict[str, str]
    storage_class: str
    tier: StorageTier
    restore: RestoreStatus | None = None
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))


class ScriptedClient:
    has_tags = True

    def __init__(self, *, batch_limit: int = 0, digests: bool = True, page_size: int = 2) -> None:
        self.batch_limit = batch_limit
        self.digests = digests
        """Whether ``holds`` answers (as from an MD5 the service keeps) or leaves it to a read of the bytes."""
        self.page_size = page_size
        self.refuse_batches = False
        self.restore_completes = False
        self.objects: dict[str, Stored] = {}
        self.requests: list[tuple[str, str]] = []
        self._script: defaultdict[str, list[Failure]] = defaultdict(list)
        self.closed = False

    def fail(self, operation: str, *failures: Failure) -> None:
        self._script[operation].extend(failures)

    def _request(self, operation: str, name: str) -> Failure | None:
        """Record the request; raise a scripted refusal, or hand back a failure to raise once it took effect."""
        self.requests.append((operation, name))
        if not self._script[operation]:
            return None
        failure = self._script[operation].pop(0)
        if failure.applied == "no":
            raise ScriptedError(failure)
        return failure

    @staticmethod
    def _after(failure: Failure | None) -> None:
        if failure is not None:
            raise ScriptedError(failure)

    def _found(self, name: str) -> Stored:
        if name not in self.objects:
            raise ScriptedError(Failure("not-found", "no", 404))
        return self.objects[name]

    # -- the ObjectClient protocol ----------------------------------------------------------------------------

    def classify(self, error: BaseException) -> Failure:
        return error.failure if isinstance(error, ScriptedError) else Failure("unknown")

    def check_metadata(self, metadata: Mapping[str, str]) -> None:
        return None

    async def put(
        self,
        name: str,
        data: Chunks,
        *,
        metadata: Mapping[str, str],
        tags: Mapping[str, str],
        storage_class: str,
        tier: StorageTier,
        if_absent: bool,
        calls: Calls,
    ) -> None:
        lost = self._request("put", name)
        if if_absent and name in self.objects:
            raise ScriptedError(Failure("conflict", "no", 412))
        archived = RestoreStatus("archived") if storage_class == COLD else None
        self.objects[name] = Stored(bytes(data), dict(metadata), dict(tags), storage_class, tier, archived)
        self._after(lost)

    async def get(self, name: str, start: int, length: int | None) -> Buffer:
        lost = self._request("get", name)
        stored = self._found(name)
        if stored.storage_class == COLD and (stored.restore is None or stored.restore.state != "restored"):
            raise ScriptedError(Failure("archived", "no", 403))
        if start >= len(stored.data) > 0:
            raise ScriptedError(Failure("range", "no", 416))
        self._after(lost)
        return stored.data[start : None if length is None else start + length]

    async def head(self, name: str) -> Head:
        lost = self._request("head", name)
        stored = self._found(name)
        self._after(lost)
        return Head(
            size=len(stored.data),
            metadata=stored.metadata,
            last_modified=stored.modified,
            storage_class=stored.storage_class,
            recorded_tier=stored.tier.value,
            restore=stored.restore,
        )

    async def holds(self, name: str, data: Chunks) -> bool | None:
        lost = self._request("holds", name)
        stored = self._found(name)
        self._after(lost)
        return stored.data == bytes(data) if self.digests else None

    async def list_page(
        self, prefix: str, token: str | None, limit: int | None = None
    ) -> tuple[Sequence[Listed], str | None]:
        lost = self._request("list", prefix)
        names = sorted(n for n in self.objects if n.startswith(prefix))
        start, size = int(token or 0), page_size(limit, self.page_size)
        page = [Listed(n, len(self.objects[n].data), self.objects[n].modified) for n in names[start:][:size]]
        following = start + size
        self._after(lost)
        return page, str(following) if following < len(names) else None

    async def delete(self, name: str) -> None:
        lost = self._request("delete", name)
        self._found(name)
        del self.objects[name]
        self._after(lost)

    async def delete_batch(self, names: Sequence[str]) -> list[tuple[str, Failure]] | None:
        lost = self._request("delete_batch", ",".join(names))
        if self.refuse_batches:
            return None
        for name in names:
            self.objects.pop(name, None)
        self._after(lost)
        return []

    async def set_class(
        self, name: str, storage_class: str, tier: StorageTier, tags: Mapping[str, str], calls: Calls
    ) -> None:
        lost = self._request("set_class", name)
        stored = self._found(name)
        stored.storage_class, stored.tier = storage_class, tier
        stored.tags.update(tags)
        stored.restore = RestoreStatus("archived") if storage_class == COLD else None
        self._after(lost)

    async def restore(self, name: str, *, days: int, speed: RestoreSpeed) -> None:
        lost = self._request("restore", name)
        self._found(name).restore = RestoreStatus("restored" if self.restore_completes else "pending")
        self._after(lost)

    def secrets(self) -> list[str]:
        return []

    def describe(self) -> str:
        return ", scripted"

    async def aclose(self) -> None:
        self.closed = True


QUICK = RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0, deadline=10.0)


class ScriptedBackend(CloudBackend):
    name = "scripted"


def scripted_backend(client: ScriptedClient, *, prefix: str = "store/", policy: RetryPolicy = QUICK) -> CloudBackend:
    """A CloudBackend on ``client``: L0-L3 in the class HOT, L4 in the archive class COLD."""
    tiers = TierMap(
        "scripted",
        {StorageTier.L0: HOT, StorageTier.L1: HOT, StorageTier.L2: HOT, StorageTier.L3: HOT, StorageTier.L4: COLD},
        None,
        known=[HOT, COLD],
        archives=[COLD],
    )
    return ScriptedBackend("bucket", client, tiers, prefix=prefix, options=CloudOptions(retry=policy))
