"""The writer's side of the protocol: one checkpoint, from its lease to its manifest (:func:`write_checkpoint`).

The steps W0-W4 of :mod:`tierstore.protocol`, in order: (W0) take a lease naming the artifacts to reuse, prove each
(:class:`~tierstore.protocol.reuse.Reuse`) and upload every page that cannot be proven or has no candidate; (W1) renew
the lease; (W2) read the tombs and upload anew whatever they name; again from W1 while something was uploaded or the
lease is no longer fresh (an erasing tomb there fails the checkpoint instead: its scope is being erased,
:mod:`tierstore.protocol.erasure`); (W3) write the manifest, create-if-absent; (W4) release the lease. A failure
before W3 discards the uploads and releases the lease; one during W3 whose outcome is unknown leaves both to expire,
since the manifest may still land. On a store without the protocol (a custom backend: no leases, no tombs, no reuse)
only the uploads and W3 remain. Entries a caller keeps under a lease of its own (``Plan.kept``) are not read, but shown
present before W2 (:meth:`~tierstore.protocol.reuse.Reuse.present`, one ``head``), so a deletion that finished
before, its tomb pruned or not, fails the checkpoint rather than leave it listed without the page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from tierstore.codec import VOLATILE_FIELDS, Encoded, PreparedPage
from tierstore.concurrency import bounded_gather
from tierstore.enums import StorageTier
from tierstore.errors import BackendUnavailableError, IntegrityError, ScopeErasingError, TierstoreError
from tierstore.ids import TOMB_PREFIX
from tierstore.models import CheckpointEntry, CheckpointManifest, MemoryPage, PageState
from tierstore.protocol.records import Doomed, is_erasing_tomb, quietly
from tierstore.protocol.references import References
from tierstore.protocol.reuse import Reuse
from tierstore.scopes import user_prefix_of

REUPLOAD_ROUNDS: Final = 3
"""Rounds of W1-W2 before a checkpoint whose artifacts keep being deleted, or whose lease cannot be renewed in
time, fails."""

_KEPT_REMEDY: Final = "store the page again (store_leased) or checkpoint without it"

Create = Callable[[MemoryPage, PreparedPage, StorageTier, str | None], Awaitable[tuple[str, Encoded]]]
"""Upload one page as a new artifact owned by a checkpoint: ``(page, prepared, tier, owner) -> (key, encoded)``."""


class ManifestStore(Protocol):
    """Where the writer puts what it wrote: the seam it needs of :class:`tierstore.artifacts.Artifacts`."""

    async def write_manifest(self, manifest: CheckpointManifest) -> str:
        """Write the manifest, create-if-absent; the checkpoint's id."""
        ...

    async def manifest(self, key: str) -> CheckpointManifest | None:
        """The manifest under ``key``, or None."""
        ...

    async def discard(self, keys: list[str]) -> None:
        """Delete uploads that no manifest will name."""
        ...


@dataclass(frozen=True, slots=True)
class Guard:
    """The protocol on a store that has it: its records (leases, tombs) and what may be reused."""

    references: References
    reuse: Reuse


@dataclass(frozen=True, slots=True)
class Written:
    """A listed checkpoint, and what it uploaded."""

    checkpoint_id: str
    uploaded: int
    uploaded_bytes: int


@dataclass(frozen=True, slots=True)
class Plan:
    """What to checkpoint: the pages (prepared with their identity) and their tiers, then entries already stored
    under a lease of the caller's (``stored``)."""

    checkpoint_id: str
    name: str
    created_at: datetime
    pages: list[MemoryPage]
    prepared: list[PreparedPage]
    tiers: list[StorageTier]
    kept: list[CheckpointEntry]


def new_entry(page: MemoryPage, artifact: str, tier: StorageTier, encoded: Encoded, identity: str) -> CheckpointEntry:
    """The entry a manifest holds for ``page`` just written as ``artifact`` (its frame ``encoded``), without the
    page's bookkeeping (:func:`with_state` adds it)."""
    return CheckpointEntry(
        page_id=page.page_id,
        artifact_id=artifact,
        modality=page.modality.value,
        tier=tier.value,
        checksum=encoded.checksum,
        size_bytes=encoded.size,
        identity=identity,
    )


def with_state(entry: CheckpointEntry, page: MemoryPage) -> CheckpointEntry:
    """``entry`` carrying ``page``'s bookkeeping fields (what a restore puts back), page id and modality."""
    state = PageState.model_validate({name: getattr(page, name) for name in VOLATILE_FIELDS})
    return entry.model_copy(update={"page_id": page.page_id, "modality": page.modality.value, "state": state})


async def write_checkpoint(
    plan: Plan, store: ManifestStore, create: Create, concurrency: int, guard: Guard | None
) -> Written:
    """Write ``plan`` as one checkpoint by steps W0-W4; returns it once listed, or raises with nothing listed."""
    checkpoint_id, checked, prepared, tiers = plan.checkpoint_id, plan.pages, plan.prepared, plan.tiers
    reusable = {} if guard is None else await guard.reuse.candidates()
    candidates: dict[int, CheckpointEntry] = {}
    for i, (page, prep) in enumerate(zip(checked, prepared, strict=True)):
        earlier = reusable.get(page.page_id)
        if earlier is not None and earlier.identity == prep.identity and earlier.tier == tiers[i].value:
            candidates[i] = earlier
    lease = None
    if guard is not None:
        lease = guard.references.lease(checkpoint_id, [e.artifact_id for e in [*candidates.values(), *plan.kept]])
        await lease.start()  # W0
    entries: dict[int, CheckpointEntry] = {}
    written: list[str] = []
    uploaded_bytes = 0
    manifest_sent = False

    async def upload(i: int) -> None:
        nonlocal uploaded_bytes
        artifact, encoded = await create(checked[i], prepared[i], tiers[i], checkpoint_id)
        written.append(artifact)
        uploaded_bytes += encoded.size
        entries[i] = new_entry(checked[i], artifact, tiers[i], encoded, prepared[i].identity)

    async def reuse_or_upload(i: int) -> None:
        assert guard is not None  # candidates exist only where the protocol does
        proven = await guard.reuse.prove(candidates[i])
        if proven is None:
            await upload(i)
        else:
            entries[i] = proven

    unproven: list[CheckpointEntry] = []

    async def prove_kept(entry: CheckpointEntry) -> None:
        assert guard is not None
        if not await guard.reuse.present(entry):
            unproven.append(entry)

    try:
        doomed = Doomed(frozenset())
        work = [*(upload(i) for i in range(len(checked)) if i not in candidates), *map(reuse_or_upload, candidates)]
        if guard is not None:  # before W2, as reused artifacts are: a deletion after it wrote its tomb first
            work.extend(map(prove_kept, plan.kept))
        for _ in range(REUPLOAD_ROUNDS):
            await bounded_gather(work, concurrency)
            if guard is None or lease is None:
                break
            await lease.renew()  # W1
            lease.mark()
            doomed = await guard.references.doomed()  # W2
            erased = "" if doomed.erasing else await _erasing_user(guard.references.backend)
            if doomed.erasing or erased:  # the scope, or its user, is being erased: nothing of it may be listed
                raise ScopeErasingError(checkpoint_id, erased or getattr(guard.references.backend, "prefix", ""))
            fresh = set(written)
            todo = [
                i
                for i, e in entries.items()
                if e.artifact_id in doomed.artifacts or (doomed.everything and e.artifact_id not in fresh)
            ]
            if not todo and lease.fresh():  # else the tombs were read too long after the renewal: again
                break
            work = [upload(i) for i in todo]
        else:
            raise IntegrityError(
                f"checkpoint {checkpoint_id}: its artifacts kept being deleted, or its lease could not be renewed "
                "in time, while it ran"
            )
        if unproven:
            raise IntegrityError(
                f"checkpoint {checkpoint_id}: page {unproven[0].page_id!r} was given as stored in "
                f"{unproven[0].artifact_id}, which is gone, damaged or no longer in tier {unproven[0].tier}; nothing "
                f"was listed: {_KEPT_REMEDY}",
                key=unproven[0].artifact_id,
            )
        gone = [e for e in plan.kept if e.artifact_id in doomed.deleted]  # an unreadable tomb: the protocol's end
        if gone:
            raise IntegrityError(
                f"checkpoint {checkpoint_id}: artifact {gone[0].artifact_id} of page {gone[0].page_id!r} is "
                f"being deleted or was deleted; nothing was listed: {_KEPT_REMEDY}",
                key=gone[0].artifact_id,
            )
        manifest = CheckpointManifest(
            name=plan.name,
            created_at=plan.created_at.replace(tzinfo=None),
            page_count=len(checked) + len(plan.kept),
            pages=[*(with_state(entries[i], page) for i, page in enumerate(checked)), *plan.kept],
            checkpoint_id=checkpoint_id,
        )
        manifest_sent = True
        checkpoint_id = await store.write_manifest(manifest)  # W3
        if guard is not None and lease is not None and (lease.stalled or not await lease.held_throughout()):
            await _fence(guard, store, manifest, concurrency)
    except BaseException as exc:
        if manifest_sent and not await _manifest_refused(store, checkpoint_id, exc):
            # The manifest may exist, now or once a write still in flight lands: keep every artifact it
            # names and let the lease expire rather than release it; gc collects them if none appears.
            if lease is not None:
                await lease.abandon()
        else:
            await quietly(store.discard(written))
            if lease is not None:
                await lease.release()
        raise
    if lease is not None:
        await lease.release()  # W4
    if guard is not None:
        guard.reuse.remember(checkpoint_id)
    return Written(checkpoint_id, len(written), uploaded_bytes)


async def _fence(guard: Guard, store: ManifestStore, manifest: CheckpointManifest, concurrency: int) -> None:
    """Between W1 and the end of W3 the lease went ``ttl / 2`` or more without a write (the writer was paused, or a
    write was slow), or went: a deleter may have taken what it named before the manifest was listed. Or it did so
    at any time since W0 (``LeaseKeeper.stalled``): an erasure of the scope may have run to its end meanwhile,
    deleting what the writer uploaded or proved, and its tomb with it (:mod:`tierstore.protocol.erasure`).
    Every artifact is shown there again (one head each); if one is not, the manifest is deleted and the checkpoint
    fails, so it stays listed only for the moment this takes, never for good."""
    present = await bounded_gather(map(guard.reuse.present, manifest.pages), concurrency)
    missing = [entry for entry, there in zip(manifest.pages, present, strict=True) if not there]
    if missing:
        await store.discard([manifest.checkpoint_id])
        raise IntegrityError(
            f"checkpoint {manifest.checkpoint_id}: it ran past its lease (the process was paused, a write was slow, "
            f"or the lease was deleted) and artifact {missing[0].artifact_id} of page {missing[0].page_id!r} was "
            "taken meanwhile; nothing was listed",
            key=missing[0].artifact_id,
        )


async def _manifest_refused(store: ManifestStore, checkpoint_id: str, error: BaseException) -> bool:
    """Did a failed manifest write certainly not take effect, now or later? Only a typed refusal says so (a lost
    answer, a timeout or a cancellation may still land), and only while no manifest is there."""
    if not isinstance(error, TierstoreError) or isinstance(error, BackendUnavailableError):
        return False
    try:
        return await store.manifest(checkpoint_id) is None
    except Exception:  # noqa: BLE001 - any doubt keeps the artifacts
        return False


async def _erasing_user(backend: object) -> str:
    """The prefix of the user whose session's scope ``backend`` is, when an erasing tomb is in the user's scope
    (its erasure's E1, before it marks each session); else empty. One listing, for a session's checkpoint only:
    a user's erasure may be stopped after its own tomb, before the session's, and must refuse it all the same."""
    inner, prefix = getattr(backend, "inner", None), getattr(backend, "prefix", None)
    if inner is None or not isinstance(prefix, str):
        return ""
    try:
        user = user_prefix_of(prefix)
    except ValueError:
        return ""
    if user == prefix:
        return ""
    async for entry in inner.list(user + TOMB_PREFIX):
        if is_erasing_tomb(entry.key[len(user) :]):
            return user
    return ""
