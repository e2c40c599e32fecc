"""The records the writer and the sweeper share: a lease (``intent_``) and a tomb (``tomb_``), as they are stored and
as they are read back. Pure data: parsing and encoding, no I/O. :mod:`tierstore.protocol` says what each is for.

* :class:`Lease` - a checkpoint (or a running agent) in progress: the artifacts it may reuse, and when the store last
  wrote it. One record, whoever reads it; the writer keeps its own renewed by a
  :class:`~tierstore.protocol.keeper.LeaseKeeper`.
* :class:`Tomb` - artifacts being deleted (``pending``), deleted (``deleted``), or being moved to another tier
  (``moving``).
* :class:`Doomed` - what the tombs say, as a writer reads them before it lists a checkpoint.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from tierstore import ids
from tierstore.codec import PLAIN, Buffer, Codec
from tierstore.errors import IntegrityError

DEFAULT_LEASE_TTL: Final = timedelta(minutes=10)
"""How long a lease lives after its last write unless renewed (``ArtifactsBridge(lease_ttl=...)``)."""
STORE_TIME_RESOLUTION: Final = timedelta(seconds=1)
"""How coarse a store's times may be: S3 and Azure give last-modified times in whole seconds, so a lease and the time
it is judged by may each read up to a second early, and a lease renewed a moment ago could look a second old. A lease
counts as live this much longer than its ``ttl`` (only keeps more; it matters for short leases: ``lease_ttl`` may
be as short as a second)."""
UNREADABLE_LEASE_TTL: Final = timedelta(hours=6)
"""How long a lease that cannot be read counts as live (from its last write), protecting everything; ``gc`` then
deletes it as it deletes any expired lease."""

TombState = Literal["pending", "deleted", "moving", "erasing"]
"""``pending``: a sweep's candidates, before it knows which it deletes; ``deleted``: deleted or being deleted, whatever
leases say; ``moving``: a tier change in progress; ``erasing``: the whole scope is being erased
(:mod:`tierstore.protocol.erasure`), which dooms everything and fails every checkpoint that sees it."""
TOMB_SUFFIX: Final[dict[TombState, str]] = {"pending": "p", "deleted": "d", "moving": "m", "erasing": "e"}
ERASING_SUFFIX: Final = "_" + TOMB_SUFFIX["erasing"]
DELETED_SUFFIX: Final = "_" + TOMB_SUFFIX["deleted"]


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease record as the store holds it: a checkpoint in progress and the artifacts it may reuse."""

    key: str
    checkpoint: str
    reuse: frozenset[str]
    renewed: datetime | None
    """When the store last wrote the lease (its last-modified, the store's time); None where it does not say."""
    ttl: timedelta
    protects_everything: bool = False
    """Set for a lease that could not be read: until it expires nothing may be deleted, nor moved."""

    def live(self, now: datetime | None) -> bool:
        """Live unless ``now`` (the store's time) is ``ttl`` past its last write, and :data:`STORE_TIME_RESOLUTION`
        more where the store counts whole seconds (either time without a fraction); a lease whose age cannot be
        told is live."""
        if now is None or self.renewed is None:
            return True
        coarse = self.renewed.microsecond == 0 or now.microsecond == 0
        return now < self.renewed + self.ttl + (STORE_TIME_RESOLUTION if coarse else timedelta(0))

    @classmethod
    def unreadable(cls, key: str, written: datetime | None) -> Lease:
        """What a lease that cannot be read stands for: everything, until it expires."""
        return cls(key, "", frozenset(), written, UNREADABLE_LEASE_TTL, protects_everything=True)

    @classmethod
    def parse(cls, key: str, data: Buffer, written: datetime | None, codec: Codec = PLAIN) -> Lease:
        """The lease stored under ``key``, written at ``written`` (the store's time); IntegrityError if it is none."""
        record = codec.decode_record(data, key)
        checkpoint = record.get("checkpoint")
        ttl = record.get("ttl")
        if not isinstance(checkpoint, str) or not isinstance(ttl, int | float) or ttl <= 0:
            raise IntegrityError(f"lease {key} is malformed")
        _when(record.get("renewed"))  # the writer's own clock: for people to read, never for deciding
        return cls(key, checkpoint, _names(record.get("reuse")), as_utc(written), timedelta(seconds=ttl))


def encode_lease(
    checkpoint: str, reuse: list[str], ttl: timedelta, now: datetime, codec: Codec = PLAIN
) -> tuple[str, bytes]:
    """The key and stored bytes of ``checkpoint``'s lease, written at ``now`` by its writer's clock."""
    key = ids.INTENT_PREFIX + checkpoint
    record = {"checkpoint": checkpoint, "reuse": reuse, "renewed": now.isoformat(), "ttl": ttl.total_seconds()}
    return key, codec.encode_record(key, record).data


@dataclass(frozen=True, slots=True)
class Tomb:
    """A tomb record: artifacts being deleted, deleted, or being moved."""

    key: str
    state: TombState
    artifacts: frozenset[str]
    at: datetime

    @classmethod
    def parse(cls, key: str, data: Buffer, codec: Codec = PLAIN) -> Tomb:
        """The tomb stored under ``key``; IntegrityError if it is none."""
        record = codec.decode_record(data, key)
        state = record.get("state")
        if state not in TOMB_SUFFIX:
            raise IntegrityError(f"tomb {key} is malformed")
        return cls(key, state, _names(record.get("artifacts")), _when(record.get("at")))


def encode_tomb(state: TombState, artifacts: Iterable[str], now: datetime, codec: Codec = PLAIN) -> tuple[str, bytes]:
    """A new tomb's key (named by the writer's clock, unique by a random part) and stored bytes."""
    key = f"{ids.timestamped(ids.TOMB_PREFIX, now)}_{TOMB_SUFFIX[state]}"
    record = {"state": state, "artifacts": sorted(artifacts), "at": now.isoformat()}
    return key, codec.encode_record(key, record).data


@dataclass(frozen=True, slots=True)
class Doomed:
    """Artifacts named by tombs: being deleted, deleted or being moved. ``everything`` when a tomb could not be
    read."""

    artifacts: frozenset[str]
    everything: bool = False
    deleted: frozenset[str] = frozenset()
    """Those of ``artifacts`` a deleted tomb names: gone, or about to go whatever leases say."""
    erasing: bool = False
    """An erasing tomb is there (read, or listed by its key and unreadable): the scope is being erased, and no
    checkpoint of it may be listed."""

    def __contains__(self, artifact: object) -> bool:
        return self.everything or artifact in self.artifacts


def is_erasing_tomb(key: str) -> bool:
    """Whether ``key`` (in a scope's view) names an erasing tomb, by its name alone."""
    return ids.is_tomb_key(key) and key.endswith(ERASING_SUFFIX)


def as_utc(when: datetime | None) -> datetime | None:
    """A backend's time as an aware UTC datetime (a naive one is read as UTC)."""
    if when is None:
        return None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


async def quietly(awaitable: Awaitable[Any]) -> None:
    """Clean-up that must not mask the error being handled; what it leaves behind, ``gc`` collects."""
    try:
        await awaitable
    except Exception:  # noqa: BLE001 - deliberately broad: this runs while another error propagates
        return


def _when(value: Any) -> datetime:
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    if parsed is None:
        raise IntegrityError("record has no valid time")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _names(value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise IntegrityError("record does not hold a list of keys")
    return frozenset(value)
