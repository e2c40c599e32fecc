"""``fsck``: verify every page frame and manifest of a store, and find what failures left behind.

It reports damaged objects (each frame checked against its key, length and digests, so a swapped or misplaced
object is damaged too), what checkpoints reference but the store lacks, and orphans: artifacts written for a
checkpoint that no manifest references and whose checkpoint is not running (no live lease), e.g. after a crash.
Stray temporary files of killed writers are listed too, and what the store holds that tierstore did not write
(``foreign``; never touched). Archived pages are reported as archived, not as damaged, and each listed checkpoint
naming one as needing those pages restored first (``archived_checkpoints``, with the command that does it).
Artifacts written by ``store_page`` are live pages, never orphans; a bound bridge's version records naming no page are
listed (``stale_versions``), unreadable ones are problems (the root's fsck reads every scope's for that). A registry
record (``scope_...``) that cannot be read or names another scope is a problem (another name there is foreign); a
scope holding keys without its registry records is listed (``unregistered``: ``tierstore users`` does not show it
until its next write registers it), and one whose erasing tomb is there without its record is a problem
(``unfinished``: an erasure stopped in its last step, which the same ``rm`` ends). One damaged object never stops
the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote

from tierstore import ids
from tierstore.artifacts.scoped import PrefixedBackend
from tierstore.backends.base import ListEntry, StorageBackend
from tierstore.bridge import ArtifactsBridge
from tierstore.clock import Clock
from tierstore.codec import Codec
from tierstore.concurrency import Progress, bounded_gather
from tierstore.errors import ArchivedPageError, IntegrityError, InvalidInputError
from tierstore.maintenance.doctor import require_store
from tierstore.maintenance.reports import ArchivedCheckpoint, FsckReport, Orphan, Problem, StaleVersion, Stray
from tierstore.models import CheckpointEntry
from tierstore.protocol.records import is_erasing_tomb
from tierstore.protocol.references import References
from tierstore.scope_codec import ScopedCodec
from tierstore.scope_records import session_key, user_key
from tierstore.scopes import (
    RECORD_PREFIX,
    SCOPED_PREFIX,
    record_key,
    scope_of,
    scope_of_record,
    scope_prefix,
    user_prefix,
    user_prefix_of,
)
from tierstore.versions import stale_records, version_key

logger = logging.getLogger(__name__)


async def listed(backend: StorageBackend, prefix: str) -> list[ListEntry]:
    """Every entry under ``prefix``, listed once."""
    return [entry async for entry in backend.list(prefix)]


async def fsck(
    bridge: ArtifactsBridge,
    *,
    verify: bool = True,
    concurrency: int = 32,
    progress: Progress | None = None,
    clock: Clock | None = None,
    store_time: datetime | None = None,
) -> FsckReport:
    """Check the store; writes nothing. Whether a lease is live is judged in the store's time: ``store_time`` (a
    moment the store's clock has reached, as ``gc`` reads it), else estimated from the times of the pages and leases
    listed (:meth:`tierstore.protocol.references.References.estimated_store_time`), so a lease may count as live
    longer than it is, never shorter. ``clock``: this host's clocks (default: the bridge's), which only bound that
    estimate. NotAStoreError for a local path that holds no store."""
    refs = bridge.references("fsck")
    require_store(bridge.backend)
    report = FsckReport()
    manifests, damaged = await refs.manifests.listed(fresh=verify)  # verifying: damage since a read is seen too
    report.problems.extend(Problem(key, "corrupt", "checkpoint manifest cannot be read") for key in damaged)
    report.checkpoints = len(manifests) + len(damaged)
    # While a manifest cannot be read, what it names is unknown: any artifact may be one of its, so none is an orphan.
    unknown_references = bool(damaged)
    expected: dict[str, tuple[str, CheckpointEntry]] = {
        e.artifact_id: (checkpoint, e) for checkpoint, m in manifests.items() for e in m.pages
    }
    # Leases are read after the pages are listed, so a checkpoint that wrote a listed page before its lease was
    # read counts as running (the order tierstore.protocol relies on).
    listed_pages = await refs.listed(ids.PAGE_PREFIX)
    pages = {entry.key: entry for entry in listed_pages if ids.parse_artifact_id(entry.key) is not None}
    lookalikes = [entry.key for entry in listed_pages if entry.key not in pages]  # a user's own mem_notes.txt
    if store_time is None:
        store_time = refs.estimated_store_time((entry.last_modified for entry in pages.values()), clock)
    leases = await refs.leases()
    reused, running, everything = refs.protection_of(leases, store_time)
    report.in_progress = sorted(running)
    _, damaged_tombs = await refs.tombs()
    unreadable = [
        *(
            (i.key, "lease cannot be read: it protects everything until it expires")
            for i in leases
            if i.protects_everything
        ),
        *((key, "tomb cannot be read: checkpoints upload anew what they would reuse") for key in damaged_tombs),
        *((key, "block record cannot be read") for key in await refs.unreadable_blocks()),
    ]
    for key, detail in unreadable:
        report.problems.append(Problem(key, "corrupt", detail))
    report.pages = len(pages)

    async def check(key: str) -> None:
        try:
            await _check_page(key)
        except ArchivedPageError:
            report.archived.append(key)
        except IntegrityError as exc:
            report.problems.append(Problem(key, "corrupt", str(exc)))

    async def _check_page(key: str) -> None:
        found = expected.get(key)
        if verify:
            data = await refs.read(key)
            if data is None:
                return  # deleted while we looked
            page, checksum = bridge.codec.decode_page(data, key)
            if found is not None and (page.page_id != found[1].page_id or checksum != found[1].checksum):
                raise IntegrityError(f"does not hold page {found[1].page_id!r} as {found[0]} names it")
            report.verified += 1
        if found is not None or key in reused or everything:
            return
        info = await refs.head(key)
        owner = info.metadata.get("ckpt") if info is not None else None
        if info is not None and owner and owner not in running and not unknown_references:
            report.orphans.append(Orphan(key, info.size, info.last_modified, owner))

    await bounded_gather((check(key) for key in pages), concurrency, progress=progress)
    for artifact, (checkpoint, entry) in expected.items():
        if artifact not in pages:
            report.problems.append(Problem(artifact, "missing", f"page {entry.page_id!r} of {checkpoint}"))
    record_names: dict[str, str] = {}
    stale, damaged_records = await stale_records(refs, pages, concurrency, record_names)
    report.stale_versions = [StaleVersion(e.key, e.last_modified) for e in sorted(stale, key=lambda e: e.key)]
    report.problems.extend(Problem(key, "corrupt", "version record cannot be read") for key in damaged_records)
    if verify and (bridge.user_id is not None or bridge.session_id is not None):
        report.problems.extend(await _unrecorded(refs, "", pages, record_names, damaged_records, concurrency))
    root = await _root_listings(bridge)
    registry_problems, report.unregistered = await _registry(bridge, root, concurrency)
    report.problems.extend(registry_problems)
    report.problems.extend(await _scopes_damaged_versions(root, concurrency, verify=verify))
    report.strays = sorted((Stray(e.key, e.size, e.last_modified) for e in await refs.strays()), key=lambda s: s.name)
    report.foreign = sorted({*await refs.foreign(), *_foreign_registry_names(root), *lookalikes})
    snapshots = await refs.catalog_snapshots()
    report.problems.extend(Problem(e.key, "corrupt", "catalog snapshot cannot be read") for e in snapshots.damaged)
    report.archived.sort()
    archived = set(report.archived)
    for checkpoint, manifest in sorted(manifests.items()):
        named = sorted({e.artifact_id for e in manifest.pages} & archived)
        if named:
            restore = f"tierstore checkpoints restore {checkpoint}"
            report.archived_checkpoints.append(ArchivedCheckpoint(checkpoint, named, restore))
            logger.info("fsck: %s cannot be restored until %d archived pages are: %s", checkpoint, len(named), restore)
    report.problems.sort(key=lambda p: p.key)
    report.orphans.sort(key=lambda o: o.key)
    for problem in report.problems:
        logger.info("fsck: %s is %s: %s", problem.key, problem.kind, problem.detail)
    for orphan in report.orphans:
        logger.info("fsck: %s is an orphan of %s", orphan.key, orphan.checkpoint)
    return report


@dataclass(frozen=True)
class _RootListings:
    """The root's fsck lists the registry records, then every scoped key, once each for all its checks of scopes."""

    backend: StorageBackend
    records: list[ListEntry]
    scoped: list[ListEntry]


async def _root_listings(bridge: ArtifactsBridge) -> _RootListings | None:
    """None for a bound bridge, or a custom (five-call) backend, which hold no scopes of others."""
    backend = bridge.backend
    if bridge.user_id is not None or bridge.session_id is not None or not isinstance(backend, StorageBackend):
        return None
    return _RootListings(backend, await listed(backend, RECORD_PREFIX), await listed(backend, SCOPED_PREFIX))


async def _registry(
    bridge: ArtifactsBridge, root: _RootListings | None, concurrency: int
) -> tuple[list[Problem], list[str]]:
    """The registry records that cannot be read or name another scope than their key (problems), and the scopes that
    hold keys but lack their records (``unregistered``): every scope's for the root, the bridge's own when bound."""
    backend = bridge.backend
    if not isinstance(backend, StorageBackend):
        return [], []
    if root is not None:
        keys = [entry.key for entry in root.records if scope_of_record(entry.key) is not None]
        scopes = {scope_of(entry.key) for entry in root.scoped} - {""}
        erasing = [e.key for e in root.scoped if is_erasing_tomb(e.key[len(scope_of(e.key)) :])]
    else:
        erasing = []
        own = scope_prefix(bridge.user_id, bridge.session_id)
        scopes = {own} if await _holds_keys(backend, own) else set()
        shared = user_prefix(bridge.user_id)
        if bridge.user_id is not None and own != shared and await _holds_keys(backend, shared):
            scopes.add(shared)
        records = sorted({record_key(own), record_key(user_prefix_of(own))})
        keys = [key for key in records if await backend.head(key) is not None]
    codec = Codec("none")

    async def check(key: str) -> Problem | None:
        try:
            data = await backend.get(key)
            if data is None:
                return None
            record = codec.decode_record(data, key)
            user, session = record.get("user"), record.get("session")
            named = user_key(user) if session is None else session_key(user, session)
        except (IntegrityError, InvalidInputError, TypeError, AttributeError):
            return Problem(key, "corrupt", _UNREADABLE_RECORD)
        return None if named == key else Problem(key, "corrupt", "registry record names another scope than its key")

    problems = [p for p in await bounded_gather((check(key) for key in keys), concurrency) if p is not None]
    held = {scope_of_record(key) for key in keys}
    problems.extend(Problem(key, "unfinished", _UNFINISHED) for key in erasing if scope_of(key) not in held)
    # A session's scope needs its user's record too (``tierstore users`` lists users, then their sessions).
    needed = scopes | {user_prefix_of(scope) for scope in scopes}
    return problems, sorted(scope for scope in needed if scope not in held)


async def _scopes_damaged_versions(root: _RootListings | None, concurrency: int, *, verify: bool) -> list[Problem]:
    """For the root: the version records of every scope that cannot be read (whole keys), and, verifying, the pages
    no record names at their number; a bound bridge's own are checked with its scope's pages above."""
    if root is None:
        return []
    backend = root.backend
    problems: list[Problem] = []
    for prefix in sorted({scope_of(entry.key) for entry in root.scoped} - {""}):
        view = PrefixedBackend(backend, prefix)
        refs = References(view, concurrency=concurrency, codec=ScopedCodec("none", prefix))
        pages = {entry.key for entry in await refs.listed(ids.PAGE_PREFIX)}
        named: dict[str, str] = {}
        _stale, damaged = await stale_records(refs, pages, concurrency, named)
        problems.extend(Problem(prefix + key, "corrupt", "version record cannot be read") for key in damaged)
        if verify:
            problems.extend(await _unrecorded(refs, prefix, pages, named, damaged, concurrency))
    return problems


async def _unrecorded(
    refs: References,
    prefix: str,
    pages: Collection[str],
    named: dict[str, str],
    damaged: list[str],
    concurrency: int,
) -> list[Problem]:
    """The pages of a scope no version record names at their own number (one head a page): ``load_page_id`` does not
    find them, and may give an older version in their place."""
    found = await unrecorded_pages(
        refs, [key for key in pages if ids.parse_artifact_id(key)], named, damaged, concurrency
    )
    return [
        Problem(
            prefix + key,
            "missing",
            f"version {version} of page {page_id!r} has no version record naming it: load_page_id does not find it"
            " (it may give an older version); `tierstore fsck --repair` writes the record again where that cannot"
            " make an older write the latest (else it says why)",
        )
        for key, page_id, version in found
    ]


async def _holds_keys(backend: StorageBackend, prefix: str) -> bool:
    async for _entry in backend.list(prefix):
        return True
    return False


_UNFINISHED = (
    "an erasure stopped after deleting its scope's registry record (`tierstore users` no longer lists it): run the "
    "same `tierstore users rm` / `sessions rm` again to end it"
)
_UNREADABLE_RECORD = (
    "registry record cannot be read: `tierstore fsck --repair` deletes it, and the scope's next write registers it"
)


def older_than(when: datetime | None, cutoff: datetime) -> bool:
    """``when`` is known and before ``cutoff``."""
    return when is not None and when.astimezone(UTC) < cutoff


async def unrecorded_pages(
    refs: References, pages: Collection[str], named: Mapping[str, str], damaged: Collection[str], concurrency: int
) -> list[tuple[str, str, int]]:
    """The pages among ``pages`` whose metadata says they are version *n* of a page id while no record names them
    there (``named``: what each readable record names, :func:`stale_records`; slots in ``damaged`` are reported as
    such already): ``(artifact, page id, n)`` each. ``load_page_id`` does not find such a page (its record was lost
    behind tierstore's back; a store writes the record before its page, so none is in flight). One head a page."""

    async def judge(key: str) -> tuple[str, str, int] | None:
        try:
            info = await refs.head(key)
        except IntegrityError:
            return None  # fsck reports the page itself
        if info is None:
            return None
        ver, page_id = info.metadata.get("ver", ""), info.metadata.get("pageid")
        if page_id is None or not ver.isdigit() or len(ver) > ids.VERSION_DIGITS or int(ver) < 1:
            return None
        slot = version_key(unquote(page_id), int(ver))
        if slot in damaged or named.get(slot) == key:
            return None
        return key, unquote(page_id), int(ver)

    found = await bounded_gather((judge(key) for key in pages), concurrency)
    return sorted(entry for entry in found if entry is not None)


def _foreign_registry_names(root: _RootListings | None) -> list[str]:
    """For the root: keys under the registry's prefix that are no scope's record (``scope_mine.txt``,
    ``scope_{U}.bak``): a user's own files, foreign, never touched nor a problem."""
    return [] if root is None else [entry.key for entry in root.records if scope_of_record(entry.key) is None]
