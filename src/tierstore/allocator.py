"""Artifact ids that are unique across processes and restarts sharing one store, and never issued twice.

``mem_{tier}_{n}``: numbers come in blocks of :data:`BLOCK`. A bridge claims a block for a tier by writing the
record ``alloc_{tier}_{block}`` with create-if-absent; exactly one bridge wins each block, and only it issues the
block's numbers, in order, once each. So two bridges never get the same id, and an id deleted by one bridge is not
issued again by another: its block belongs to the first for good (``gc`` never deletes block records). Each id is
still written with create-if-absent, so nothing is ever overwritten; a number whose key is already taken (an object
copied in from elsewhere) is skipped.

A bridge claims each block above the highest block record of its tier and above every id a tomb names. Block
records are only ever added, so a store that holds any of them normally holds the highest block an id came from;
but a store put back from a backup may have lost the newest records and kept older ones, or a record may be lost
while a bridge runs. What an id issued again could then harm is a deleted page's: a live page's key is taken (the
create-if-absent skips it), a checkpoint naming an id whose page is gone fails its checksum on restore, but a
deleted id issued again would load as a page someone deleted. Its tomb names it for the retention period, so the
tombs are read at every claim: every checkpoint reads them anyway (W2 of :mod:`tierstore.protocol`) and they are
cached with the bridge's references, so a claim costs one listing of tombs and reads only tombs new to the bridge;
a process's first claim reads every tomb (they are pruned after their retention, so they grow with a week's
deletions and tier changes, not with the store). A tomb that cannot be read names nothing here (fsck reports it):
a deleted id that only a damaged tomb names may come again once block records are lost too. Leases and manifests
are not read at a start: they grow with a store's checkpoints, and a start must not. A store with no block record
of the tier at all (a backup of pages and tombs put back without them) is read for every id it holds or names,
manifests and leases included, once. Numbers therefore have gaps: a process that stores three pages uses 1-3 of
its block, and the next process starts at the next block (1001).

Scopes (issue 28, ``docs/design/scopes.md``): a bridge bound to a user or session writes its pages under its scope's
prefix, but its ids come from these same root records, so ids are unique store-wide and one scope's id under another's
prefix names no object. Its allocator reads the tombs (and, at an evidenced start, the pages and records) of the
bridge's own scopes (``refs``: one :class:`References` per scope, the root's for an unbound bridge): an id deleted in a
scope is never issued again into that scope, whichever of its scopes the bridge stores in.

Blocks are process-local: a forked child (``os.fork``, multiprocessing's ``fork``, gunicorn ``--preload``) forgets
every block, lock and cached number it inherited, at the fork and again wherever it sees another process id, and
claims blocks of its own, so parent and child never issue the same id.
"""

from __future__ import annotations

import asyncio
import os
import socket
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from tierstore import ids
from tierstore.backends.base import StorageBackend
from tierstore.clock import SYSTEM_CLOCK, Clock
from tierstore.codec import PLAIN, Codec
from tierstore.enums import StorageTier
from tierstore.errors import ConflictError, IntegrityError
from tierstore.loops import PerLoop
from tierstore.protocol.references import References

BLOCK: Final = 1000
LAST_BLOCK: Final = (10**ids.MAX_ARTIFACT_DIGITS - 1) // BLOCK - 1
"""The last block whose every number is an artifact id. A record or tomb naming a block past it is no bridge's (no
store claims 10**15 blocks): it is left out of every reckoning, so it cannot push the numbers past the id format."""
_RESCAN_AFTER: Final = 16
"""Consecutive lost block claims after which the store is listed again (other bridges far ahead of this one)."""
_GIVE_UP_AFTER: Final = 10_000


@dataclass(slots=True)
class _Block:
    next: int
    last: int


class IdAllocator:
    """Issues this bridge's artifact ids from blocks it claims (the module docstring says why they are unique)."""

    def __init__(
        self,
        backend: StorageBackend,
        *,
        clock: Clock = SYSTEM_CLOCK,
        refs: References | Sequence[References] | None = None,
        codec: Codec = PLAIN,
    ) -> None:
        """``backend``: the store, where the block records are; ``refs``: the records of the scopes whose tombs name
        ids never to issue again (default: the store's root); ``codec``: frames the block records (the root's)."""
        self._backend = backend
        self._clock = clock
        self._codec = codec
        if refs is None:
            refs = References(backend, concurrency=8, clock=clock, codec=codec)
        self._scopes: tuple[References, ...] = (refs,) if isinstance(refs, References) else tuple(refs)
        self._forget()
        _ALLOCATORS.add(self)

    def _forget(self) -> None:
        """Drop every block, lock and number known: in a forked child they are the parent's."""
        self._pid = os.getpid()
        self._blocks: dict[StorageTier, _Block] = {}
        self._highest_block: dict[StorageTier, int] = {}
        self._locks: PerLoop[dict[StorageTier, asyncio.Lock]] = PerLoop(dict)  # a lock binds to its loop

    async def claim(self, tier: StorageTier, write: Callable[[str], Awaitable[None]]) -> str:
        """Run ``write(key)`` (a create-if-absent put) on this bridge's next free key; returns that key."""
        for _ in range(_GIVE_UP_AFTER):
            key = ids.artifact_id(tier, await self._take(tier))
            try:
                await write(key)
            except ConflictError:
                continue
            return key
        raise ConflictError(f"{_GIVE_UP_AFTER} keys in a row were taken in blocks of this bridge's own")

    def ready_key(self, tier: StorageTier) -> str | None:
        """This bridge's next free key of ``tier`` if a block it holds has one left (no I/O, no await); None when
        a block must be claimed first (:meth:`claim` does)."""
        if self._pid != os.getpid():  # forked by a path that ran no at-fork hook (a C extension's fork())
            self._forget()
        block = self._blocks.get(tier)
        if block is not None and block.next <= block.last:  # no await before the increment: nobody else takes it
            block.next += 1
            return ids.artifact_id(tier, block.next - 1)
        return None

    async def _take(self, tier: StorageTier) -> int:
        if self._pid != os.getpid():  # forked by a path that ran no at-fork hook (a C extension's fork())
            self._forget()
        block = self._blocks.get(tier)
        if block is not None and block.next <= block.last:  # no await before the increment: nobody else takes it
            block.next += 1
            return block.next - 1
        lock = self._locks.get().setdefault(tier, asyncio.Lock())
        async with lock:
            block = self._blocks.get(tier)
            if block is None or block.next > block.last:
                block = self._blocks[tier] = await self._claim_block(tier)
            number = block.next
            block.next += 1
        return number

    async def _claim_block(self, tier: StorageTier) -> _Block:
        if tier not in self._highest_block:
            highest = await self._highest_in_store(tier)
            self._highest_block[tier] = highest if highest >= 0 else await self._highest_evidenced(tier)
        doomed: set[str] = set()
        for scope in self._scopes:  # at every claim: a record may be lost while this bridge runs
            tombs, _unreadable = await scope.tombs()
            doomed.update(*(tomb.artifacts for tomb in tombs))
        named = _highest_block_of(tier, doomed)
        block = max(self._highest_block[tier], named) + 1
        for lost in range(1, _GIVE_UP_AFTER + 1):
            if block > LAST_BLOCK:
                raise ConflictError(
                    f"tier {tier.value}'s artifact numbers are used up: a block record or tomb names block "
                    f"{block - 1}, the last whose ids have at most {ids.MAX_ARTIFACT_DIGITS} digits"
                )
            key = ids.alloc_key(tier, block)
            record = {"at": self._clock.now().isoformat(), "host": socket.gethostname(), "pid": os.getpid()}
            try:
                await self._backend.put(key, self._codec.encode_record(key, record).data, if_absent=True)
            except ConflictError:
                block += 1
                if lost % _RESCAN_AFTER == 0:
                    block = max(block, await self._highest_in_store(tier) + 1)
                continue
            self._highest_block[tier] = block
            return _Block(next=block * BLOCK + 1, last=(block + 1) * BLOCK)
        raise ConflictError(f"lost {_GIVE_UP_AFTER} block claims in a row for tier {tier.value}")

    async def _highest_in_store(self, tier: StorageTier) -> int:
        """The highest block claimed in the store, from its block records (-1: none)."""
        highest = -1
        async for entry in self._backend.list(ids.alloc_key(tier, 0)[:-1]):
            parsed = ids.parse_alloc_key(entry.key)
            if parsed is not None and parsed[0] == tier and parsed[1] <= LAST_BLOCK:
                highest = max(highest, parsed[1])
        return highest

    async def _highest_evidenced(self, tier: StorageTier) -> int:
        """The highest block of any id of ``tier`` that the store holds or names: pages, the ids in tombs, leases
        and manifests. A record that cannot be read names nothing here (fsck reports it)."""
        named: set[str] = set()
        for refs in self._scopes:
            named.update(entry.key for entry in await refs.listed(ids.artifact_id(tier, 0)[:-1]))
            tombs, _damaged = await refs.tombs()
            named.update(*(tomb.artifacts for tomb in tombs))
            named.update(*(lease.reuse for lease in await refs.leases()))
            try:
                manifests, _unreadable = await refs.manifests.listed()
            except IntegrityError:
                manifests = {}
            named.update(entry.artifact_id for manifest in manifests.values() for entry in manifest.pages)
        return _highest_block_of(tier, named)


def _highest_block_of(tier: StorageTier, keys: set[str]) -> int:
    """The highest block of ``tier`` an artifact id among ``keys`` came from (-1: none)."""
    highest = -1
    for key in keys:
        parsed = ids.parse_artifact_id(key)
        if parsed is not None and parsed[0] == tier and (parsed[1] - 1) // BLOCK <= LAST_BLOCK:
            highest = max(highest, (parsed[1] - 1) // BLOCK)
    return highest


_ALLOCATORS: Final[weakref.WeakSet[IdAllocator]] = weakref.WeakSet()


def _forget_in_child() -> None:
    for allocator in list(_ALLOCATORS):
        allocator._forget()


os.register_at_fork(after_in_child=_forget_in_child)
