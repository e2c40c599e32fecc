"""``fsck --repair``: rewrite the scopes' bookkeeping from what the store itself holds (issue 28). Never a page.

What it does, scope by scope (a bound bridge's scopes, or every scope the store holds keys in for the root):

* **Version records.** A page whose object metadata says it is version *n* (``ver``, written by ``store_page``) whose
  record slot ``v.{P}.{9999999999-n}`` is empty or holds a record that cannot be read gets its record again, built
  from the page itself (read whole and verified, so page id, checksum, modality, page type and size are the
  frame's; tier and time from its head): the damaged record is deleted, then the new one written create-if-absent,
  exactly as ``store_page`` writes it. A slot holding a sound record naming another artifact is left (the number
  went to another store) and reported (``unrepairable``): a repair never claims a new number for an old page, which
  would make it the latest. Nor does it rebuild a number that records lost behind its back let a later store take
  again: when several pages claim one number (which one holds it is not provable), or a page of the same id with a
  lower number was written after it by the store's times (an older write would become the latest), none is rebuilt
  and each is reported. Two writes within the store's time resolution (a second on S3) are taken in number order.
* **Stale version records** (naming no page) older than the grace period, and version records that cannot be read
  and that no page claims, older than it too, are deleted, as ``gc`` deletes the stale ones.
* **Registry records** (``scope_...`` at the root) that cannot be read are deleted, so that the scope's next write
  registers it again (:func:`tierstore.scope_records.register` is create-if-absent: a damaged record would block it
  forever). A missing record cannot be written here: the ids are in clear only in the record itself (pages do not
  carry them; ``docs/design/scopes.md`` says so), so ``fsck`` reports the scope (``unregistered``) and its next
  write registers it.
* **Catalog snapshots** (``cat_...``): each repaired scope's catalog, and the root's for an unbound bridge, is
  completed by :func:`tierstore.catalog.upkeep.complete_catalog` (the pages its current snapshot does not prove
  described afresh, one new snapshot when there were any: the catalog's own rules, so never in a scope being erased
  and never a row its listing does not prove); the snapshots it supersedes are ``gc``'s past the grace period.

Why it is safe beside a running store. Pages are never written, moved or deleted; every write is a record, and a
version record is written create-if-absent at the page's own number only. A live ``store_page`` of the same page id
claims *n* = newest listed + 1 by create-if-absent, then writes its page. If it claims the slot the repair wanted
first, the repair's create fails and the repair reports the old page (the live store's record names the live page,
which is the newest: nothing hides it). If the repair's create comes first, the live store's create fails and it
takes the next number, as against any other store: its page is still the newest version, since the repaired number
is lower or the one it then skips. A repaired record is the very record its page's store wrote (same artifact,
checksum, page id), so a reader that follows it gets that page, verified, or skips it; a slot the repair freed by
deleting a damaged record is filled by whichever create comes first, and either names a page that is really there.
Deleting a stale record past the grace period is ``gc``'s argument: a store in flight writes its page within the
grace period of its record.

Why it never writes into a scope being erased. Before each write the scope (and its user's) is listed for an erasing
tomb; one there, the scope is skipped (``erasing``). A write that follows a look finding none is one request, ending
within the settle period (:func:`tierstore.protocol.erasure.settle_period`); so an erasure whose E1 came after the
look lists it in E3 or after E4's wait and deletes it, as it does a ``store_page`` in flight
(:mod:`tierstore.protocol.erasure`), and a registry record it deletes only at E5, after that wait.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tierstore import ids
from tierstore.artifacts.scoped import PrefixedBackend
from tierstore.backends.base import ListEntry, ObjectInfo, StorageBackend
from tierstore.bridge import ArtifactsBridge
from tierstore.catalog import bound_key
from tierstore.catalog.upkeep import complete_catalog
from tierstore.codec import Codec
from tierstore.concurrency import bounded_gather
from tierstore.errors import ConflictError, IntegrityError
from tierstore.maintenance.reports import Problem
from tierstore.protocol.records import as_utc, is_erasing_tomb
from tierstore.protocol.references import References
from tierstore.scope_codec import ScopedCodec
from tierstore.scopes import (
    RECORD_PREFIX,
    SCOPED_PREFIX,
    scope_of,
    scope_of_record,
    scope_prefix,
    user_prefix,
    user_prefix_of,
)
from tierstore.versions import VERSIONS_PREFIX, VersionRecord, version_key

logger = logging.getLogger(__name__)

_VER = "ver"


@dataclass
class RepairReport:
    """What ``fsck --repair`` wrote and deleted (never a page), and what it could not repair."""

    versions_written: list[str] = field(default_factory=list)
    """Version records written again from their pages (whole keys)."""
    records_deleted: list[str] = field(default_factory=list)
    """Records deleted: unreadable registry records, unreadable version records no page claims, stale version
    records past the grace period."""
    unrepairable: list[Problem] = field(default_factory=list)
    """Pages whose version number another store's record holds: found by artifact id only."""
    erasing: list[str] = field(default_factory=list)
    """Scopes being erased: nothing was written there."""
    catalogs_written: list[str] = field(default_factory=list)
    """Catalog snapshots written afresh (whole keys): none where the listing proves no row or the store refused."""


async def repair(
    bridge: ArtifactsBridge, *, grace: timedelta = timedelta(hours=1), concurrency: int = 32
) -> RepairReport:
    """Repair the registry and version records of ``bridge``'s scopes (every scope, for an unbound bridge) from
    the store itself (module contract); writes no page."""
    backend = bridge.backend
    report = RepairReport()
    if not isinstance(backend, StorageBackend):
        return report
    if bridge.user_id is None and bridge.session_id is None:
        scopes = sorted({scope_of(e.key) async for e in backend.list(SCOPED_PREFIX)} - {""})
        await _repair_registry(backend, report, concurrency)
    else:
        scopes = [scope_prefix(bridge.user_id, bridge.session_id)]
        if bridge.user_id is not None and bridge.session_id is not None:
            scopes.append(user_prefix(bridge.user_id))
    for prefix in scopes:
        if await _erasing(backend, prefix):
            report.erasing.append(prefix)
            continue
        await _repair_versions(backend, prefix, report, grace, concurrency, bridge)
        await _complete_catalog(PrefixedBackend(backend, prefix), report, concurrency)
    if bridge.user_id is None and bridge.session_id is None:
        await _complete_catalog(backend, report, concurrency)
    return report


async def _complete_catalog(backend: StorageBackend, report: RepairReport, concurrency: int) -> None:
    written = await complete_catalog(backend, concurrency=concurrency)
    if written is not None:
        report.catalogs_written.append(bound_key(backend, written))


async def _erasing(backend: StorageBackend, prefix: str) -> bool:
    """Whether the scope at ``prefix``, or its user's, holds an erasing tomb (one listing each)."""
    for scope in {prefix, user_prefix_of(prefix)}:
        async for entry in backend.list(scope + ids.TOMB_PREFIX):
            if is_erasing_tomb(entry.key[len(scope) :]):
                return True
    return False


async def _repair_registry(backend: StorageBackend, report: RepairReport, concurrency: int) -> None:
    """Delete registry records that cannot be read (their scope's next write registers it again)."""
    codec = Codec("none")
    keys = [e.key async for e in backend.list(RECORD_PREFIX)]

    async def damaged(key: str) -> str | None:
        if scope_of_record(key) is None:
            return None  # no record's name: fsck reports it, nothing here is ours to delete
        try:
            data = await backend.get(key)
            if data is not None:
                codec.decode_record(data, key)
        except IntegrityError:
            return key
        return None

    for key in [k for k in await bounded_gather((damaged(k) for k in keys), concurrency) if k is not None]:
        scope = scope_of_record(key)
        if scope is not None and await _erasing(backend, scope):
            report.erasing.append(scope)  # its erasure deletes the record at E5
            continue
        await backend.delete(key)
        report.records_deleted.append(key)
        logger.info("fsck --repair: deleted the unreadable registry record %s", key)


async def _repair_versions(
    backend: StorageBackend,
    prefix: str,
    report: RepairReport,
    grace: timedelta,
    concurrency: int,
    bridge: ArtifactsBridge,
) -> None:
    view = PrefixedBackend(backend, prefix)
    codec = ScopedCodec("none", prefix)
    refs = References(view, concurrency=concurrency, clock=bridge.clock, codec=codec)
    records = {e.key: e for e in await refs.listed(VERSIONS_PREFIX) if ids.is_version_record_key(e.key)}
    pages = {e.key: e for e in await refs.listed(ids.PAGE_PREFIX) if ids.parse_artifact_id(e.key) is not None}
    claimed: set[str] = set()
    claims: list[_Claim] = []

    async def read_claim(key: str) -> None:
        info = await _head(view, key)
        ver = None if info is None else info.metadata.get(_VER, "")
        if info is None or ver is None or not ver.isdigit() or len(ver) > 10 or int(ver) < 1:
            return
        try:
            data = await view.get(key)
            if data is None:
                return
            page, checksum = codec.decode_page(data, key)
        except IntegrityError:
            return  # a damaged page names nothing: fsck reports it
        if checksum is None:
            return
        slot = version_key(page.page_id, int(ver))
        claimed.add(slot)
        record = VersionRecord(
            key=slot,
            version=int(ver),
            page_id=page.page_id,
            artifact_id=key,
            tier=(info.tier.value if info.tier else info.metadata.get("tier", "L3")),
            size=len(data),
            created=info.last_modified or bridge.clock.now(),
            modality=page.modality.value,
            page_type=page.page_type.value,
            checksum=checksum,
        )
        claims.append(_Claim(key, record, as_utc(info.last_modified)))

    async def rebuild(claim: _Claim) -> None:
        key, record, slot, ver = claim.key, claim.record, claim.record.key, claim.record.version
        state = await _slot(view, codec, slot, record.page_id)
        if state == key:
            return
        if state not in ("empty", "damaged"):
            report.unrepairable.append(
                Problem(prefix + key, "conflict", f"its version {ver} is {state}'s: found by artifact id only")
            )
            return
        doubt = _doubt(claim, claims)
        if doubt is not None:
            report.unrepairable.append(Problem(prefix + key, "conflict", doubt))
            return
        if await _erasing(backend, prefix):
            return
        if state == "damaged":
            await view.delete(slot)
            report.records_deleted.append(prefix + slot)
        try:
            await view.put(
                slot, codec.encode_record(slot, record.fields()).data, metadata={"kind": "version"}, if_absent=True
            )
        except ConflictError:
            taken = await _slot(view, codec, slot, record.page_id)
            if taken != key:
                report.unrepairable.append(
                    Problem(prefix + key, "conflict", f"its version {ver} went to {taken} meanwhile")
                )
            return
        report.versions_written.append(prefix + slot)
        logger.info("fsck --repair: wrote version record %s for %s", prefix + slot, prefix + key)

    await bounded_gather((read_claim(key) for key in pages), concurrency)
    await bounded_gather((rebuild(claim) for claim in claims), concurrency)
    # The store's time as gc reads it (a record written and deleted again, not past an erasing look); else estimated
    # from what was listed, which can only keep more.
    now = None if await _erasing(backend, prefix) else await refs.store_time()
    if now is None:
        times = [*(e.last_modified for e in records.values()), *(e.last_modified for e in pages.values())]
        now = refs.estimated_store_time(times, bridge.clock)
    if now is None:
        return
    cutoff = now - grace

    async def stale(entry: ListEntry) -> str | None:
        written = as_utc(entry.last_modified)
        if entry.key in claimed or written is None or written > cutoff:  # at least the grace old, as gc judges
            return None
        state = await _slot(view, codec, entry.key, None)
        if state == "empty" or state in pages:
            return None  # deleted meanwhile, or names a page that is there
        return entry.key  # unreadable and claimed by no page, or naming no page: past the grace period

    old = [k for k in await bounded_gather((stale(e) for e in records.values()), concurrency) if k is not None]
    if old and not await _erasing(backend, prefix):
        deleted = await refs.prune(old, "version record without its page")
        report.records_deleted.extend(prefix + key for key in deleted)


@dataclass(frozen=True, slots=True)
class _Claim:
    """A page whose metadata says it is version ``record.version`` of its page id, and the record it would get."""

    key: str
    record: VersionRecord
    written: datetime | None


def _doubt(claim: _Claim, claims: list[_Claim]) -> str | None:
    """Why the record of ``claim`` may not be written again (None: it may). Another page claiming the same number
    (its record was lost and a later store took the number again): which one holds it is not provable, so neither
    gets it. A page of the same id with a lower number written after this one (numbers taken again after records
    were lost): the record would make the older write the latest."""
    same = [c for c in claims if c.record.page_id == claim.record.page_id and c.key != claim.key]
    rivals = sorted(c.key for c in same if c.record.version == claim.record.version)
    if rivals:
        return f"version {claim.record.version} is claimed by {', '.join(rivals)} too: none is rebuilt"
    if claim.written is None:
        return None
    later = sorted(
        c.key
        for c in same
        if c.record.version < claim.record.version and (c.written is None or c.written > claim.written)
    )
    if later:
        return f"its version {claim.record.version} is above {', '.join(later)}, written after it: not rebuilt"
    return None


async def _head(view: PrefixedBackend, key: str) -> ObjectInfo | None:
    with contextlib.suppress(IntegrityError):
        return await view.head(key)
    return None


async def _slot(view: PrefixedBackend, codec: Codec, slot: str, page_id: str | None) -> str:
    """What the version record slot ``slot`` holds: ``empty``, ``damaged``, or the artifact its record names."""
    try:
        data = await view.get(slot)
        if data is None:
            return "empty"
        fields = codec.decode_record(data, slot)
        named = page_id if page_id is not None else str(fields.get("page_id"))
        return VersionRecord.parse(slot, fields, named).artifact_id
    except IntegrityError:
        return "damaged"
