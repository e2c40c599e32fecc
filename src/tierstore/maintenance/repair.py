"""``fsck --repair``: rewrite the scopes' bookkeeping from what the store itself holds (issue 28). Never a page.

What it does, scope by scope (a bound bridge's scopes, or every scope the store holds keys in for the root):

* **Version records.** A page whose object metadata says it is version *n* (``ver``, written by ``store_page``) whose
  record slot ``v.{P}.{9999999999-n}`` is empty or holds a record that cannot be read gets its record again, built
  from the page itself (read whole and verified, so page id, checksum, modality, page type and size are the frame's;
  tier and time from its head), as ``store_page`` writes it but marked ``rebuilt``: into an empty slot
  create-if-absent, over a damaged record in place (never deleted first: while the slot is empty a reader would take
  the version before for the latest; while the damaged record stands it says IntegrityError). A slot holding a sound
  record naming another artifact is left (the number went to another store) and reported (``unrepairable``): a repair
  never claims a new number for an old page, which would make it the latest. Nor does it rebuild a record that could
  make an older write the latest when records lost behind its back let a later store take a number again
  (:func:`tierstore.maintenance.repair_order.plan`): several pages claiming one number (which holds it is not
  provable); an order of numbers the pages' ``stored`` times disagree with, or cannot show (a page stored before pages
  carried it, beside another page of its id) — ``stored`` is the storing host's time of the store, in the page's
  metadata, which ``set_tier`` leaves, unlike the page's last-modified time (a disk rewrite, an S3 or GCS copy in
  place move it); a lower number whose record the store dates after this page's last change (a record a repair wrote
  dates no claim and is not counted: marked ``rebuilt``, or, as older repairs wrote it, dated after its own page's
  last change, which a store's record, written before its page, never is); a higher number of the id left without a
  record. Each such page is reported (``unrepairable``).
  (Hosts' clocks: two stores' ``stored`` times are ordered right unless the host of the older one ran ahead of the
  newer one's by more than the time between them, and the store's own dates cannot tell; a clock-skewed fleet whose
  records are also lost can still make the repair misorder, never make it invent a number.)
* **Pages it cannot read.** An archived page (its body needs a restore) is reported, not read: restore it, then
  repair again. A damaged page whose metadata says it is version *n* keeps slot *n*'s record (reported); one whose
  page id cannot be told keeps every unreadable record of its number (any number, when its metadata cannot be read).
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

Why it is safe beside a running store. Pages are never written, moved or deleted; every write is a record, and a version
record is written create-if-absent at the page's own number only. A live ``store_page`` of the same page id claims *n* =
newest listed + 1 by create-if-absent, then writes its page. If it claims the slot the repair wanted first, the repair's
create fails and the repair reports the old page (the live store's record names the live page, which is the newest:
nothing hides it). If the repair's create comes first, the live store's create fails and it takes the next number, as
against any other store: its page is still the newest version, since the repaired number is lower or the one it then
skips. A repaired record names what its page's store wrote (same artifact, checksum, page id), so a reader that follows
it gets that page, verified, or skips it. A damaged record is replaced by a plain put: no store writes over it (a
store's create fails on any object there), and another repair writes the same record of the same page. Only
``delete_page_id`` empties a damaged slot a page claims, and it deletes the pages before their records: so if the page
is still there once the put returned, the slot was never emptied before the put, and no store's claim was replaced. If
the page is gone, the repair deletes its record again while it names that page (``late``) and looks at the scope once
more: had a store claimed the emptied slot in between, its page gets its record back then, or, still in flight, from the
next repair. Deleting a stale record past the grace period is ``gc``'s argument: a store in flight writes its page
within the grace period of its record.

Why it never writes into a scope being erased. Before each record's writes the scope (and its user's) is listed for
an erasing tomb; one there, the scope is skipped (``erasing``). Each write is issued only while that look is younger
than :func:`tierstore.catalog.fold_window` (the erasure's settle period minus one request deadline), the fence of a
catalog fold; a repair stalled longer between its look and a write writes nothing there (``late``). A write so issued
is one request, ending within a deadline; so an erasure whose E1 came after the look lists it in E3 or after E4's
wait and deletes it, as it does a ``store_page`` in flight (:mod:`tierstore.protocol.erasure`). As for a
``store_page``, a process stopped *during* that one request for longer than the settle period (no deadline ends a
request to the local disk) could land it after the erasure; so the repair looks for the record's page once its put
has returned, and a page gone meanwhile (erased, or deleted) has its record deleted again (``late``): a record
outlives its erased scope only if the repair process also dies in between (then it names no page there, and
holds the page id's digest, not the id). Deleting needs no fence (it can only remove); a registry record is deleted
only at E5, after E4's wait.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import unquote

from tierstore import ids
from tierstore.artifacts.scoped import PrefixedBackend
from tierstore.backends.base import ListEntry, StorageBackend
from tierstore.bridge import ArtifactsBridge
from tierstore.catalog import bound_key, fold_window
from tierstore.catalog.upkeep import complete_catalog
from tierstore.codec import Codec
from tierstore.concurrency import bounded_gather
from tierstore.errors import ArchivedPageError, ConflictError, IntegrityError
from tierstore.maintenance import repair_order as order
from tierstore.maintenance.repair_order import Claim
from tierstore.maintenance.reports import Problem
from tierstore.protocol.records import as_utc, is_erasing_tomb
from tierstore.protocol.references import References
from tierstore.record_deletes import delete_named, stale_grace
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
from tierstore.versions import (
    LAST_VERSION,
    STORED,
    VERSIONS_PREFIX,
    VersionRecord,
    read_stored_stamp,
    version_key,
)

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
    late: list[str] = field(default_factory=list)
    """Version records not written because the look for an erasing tomb before them was older than a catalog fold
    may use (:func:`tierstore.catalog.fold_window`: the process stalled), or deleted again because their page was
    gone once the put returned (erased or deleted meanwhile); the next repair writes those whose page is there."""
    catalogs_written: list[str] = field(default_factory=list)
    """Catalog snapshots written afresh (whole keys): none where the listing proves no row or the store refused."""


async def repair(
    bridge: ArtifactsBridge,
    *,
    grace: timedelta = timedelta(hours=1),
    concurrency: int = 32,
    settle: timedelta | None = None,
) -> RepairReport:
    """Repair the registry and version records of ``bridge``'s scopes (every scope, for an unbound bridge) from
    the store itself (module contract); writes no page. A stale record younger than ``settle`` (the longest a
    ``store_page`` may take; default the store's settle period) is kept whatever ``grace`` is: a store in flight."""
    backend = bridge.backend
    report = RepairReport()
    if not isinstance(backend, StorageBackend):
        return report
    grace = stale_grace(backend, grace, settle)
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
    again: bool = True,
) -> None:
    view = PrefixedBackend(backend, prefix)
    replaced: list[str] = []  # damaged records replaced, then found naming a page gone: a store's claim may have been
    codec = ScopedCodec("none", prefix)
    refs = References(view, concurrency=concurrency, clock=bridge.clock, codec=codec)
    # The store's time as gc reads it (a record written and deleted again), before the records are listed: one
    # written at a listed key since then is younger than the cutoff, and kept (tierstore.record_deletes).
    now = None if await _erasing(backend, prefix) else await refs.store_time()
    records = {e.key: e for e in await refs.listed(VERSIONS_PREFIX) if ids.is_version_record_key(e.key)}
    pages = {e.key: e for e in await refs.listed(ids.PAGE_PREFIX) if ids.parse_artifact_id(e.key) is not None}
    claims: list[Claim] = []
    unread: list[int] = []  # version numbers of pages whose page id cannot be told (damaged head or frame)

    async def read_claim(key: str) -> None:
        try:
            info = await view.head(key)
        except IntegrityError:
            unread.append(0)  # any number: no unreadable record of this scope is deleted
            return
        ver = None if info is None else info.metadata.get(_VER, "")
        if info is None or ver is None or not ver.isdigit() or len(ver) > 10 or int(ver) < 1:
            return
        named = info.metadata.get("pageid")
        stamp, written = read_stored_stamp(info.metadata.get(STORED)), as_utc(info.last_modified)
        try:
            data = await view.get(key)
        except ArchivedPageError:
            data, why = None, "archived: `tierstore restore ID` (with the scope's --user/--session), then repair again"
        except IntegrityError:
            data, why = None, "damaged: its record slot is kept (`tierstore fsck` names the page)"
        else:
            if data is None:
                return  # deleted meanwhile
            why = ""
        decoded = None
        if data is not None:
            try:
                decoded = codec.decode_page(data, key)
            except IntegrityError:
                why = "damaged: its record slot is kept (`tierstore fsck` names the page)"
        if decoded is None or data is None:
            if named is None:
                unread.append(int(ver))
            claims.append(Claim(key, None if named is None else unquote(named), int(ver), stamp, written, None, why))
            return
        page, checksum = decoded
        if checksum is None:
            return
        record = VersionRecord(
            key=version_key(page.page_id, int(ver)),
            version=int(ver),
            page_id=page.page_id,
            artifact_id=key,
            tier=(info.tier.value if info.tier else info.metadata.get("tier", "L3")),
            size=len(data),
            created=stamp or info.last_modified or bridge.clock.now(),
            modality=page.modality.value,
            page_type=page.page_type.value,
            checksum=checksum,
            rebuilt=True,
        )
        claims.append(Claim(key, page.page_id, int(ver), stamp, written, record, ""))

    async def slot_of(claim: Claim) -> tuple[str, bool]:
        return ("unknown", False) if claim.page_id is None else await _read_slot(view, codec, claim.slot, claim.page_id)

    async def rebuild(claim: Claim, record: VersionRecord) -> None:
        key, slot, ver = claim.key, claim.slot, claim.version
        looked = bridge.clock.monotonic()
        if await _erasing(backend, prefix):
            return

        def late() -> bool:  # the fence of a catalog fold: no write issued after its look may outlive an erasure
            if bridge.clock.monotonic() - looked < fold_window(backend):
                return False
            report.late.append(prefix + slot)
            logger.info("fsck --repair: %s not written: its look for an erasure is too old", prefix + slot)
            return True

        state = await _slot(view, codec, slot, record.page_id)
        if state == key:
            return
        if state not in ("empty", "damaged"):
            report.unrepairable.append(
                Problem(prefix + key, "conflict", f"its version {ver} went to {state} meanwhile")
            )
            return
        if late():
            return
        data = codec.encode_record(slot, record.fields()).data
        try:  # no await between the fence and the put's issue
            # A damaged record is replaced in place, never deleted first: while it stands a reader is told the
            # version is damaged (IntegrityError), and an empty slot would let it take the version before for the
            # latest. A store never claims a slot holding an object, so only a sound record can replace it.
            await view.put(slot, data, metadata={"kind": "version"}, if_absent=state == "empty")
        except ConflictError:
            taken = await _slot(view, codec, slot, record.page_id)
            if taken != key:
                report.unrepairable.append(
                    Problem(prefix + key, "conflict", f"its version {ver} went to {taken} meanwhile")
                )
            return
        if not await _still_there(view, key, record.checksum):
            # Gone while the put was in flight (erased, deleted): so is the record, deleted only while it names that
            # page (tierstore.record_deletes): never a store's record at that number since (the slot emptied by a
            # delete_page_id, which deletes the pages before their records, or by a gc, and claimed again). Over a
            # damaged record, the put may have replaced such a store's record: the scope is looked at once more, below.
            await delete_named(view, codec, record.page_id, [(slot, key)], 1)
            report.late.append(prefix + slot)
            if state == "damaged":
                replaced.append(slot)
            return
        report.versions_written.append(prefix + slot)
        logger.info("fsck --repair: wrote version record %s for %s", prefix + slot, prefix + key)

    await bounded_gather((read_claim(key) for key in pages), concurrency)
    read = dict(zip((c.key for c in claims), await bounded_gather(map(slot_of, claims), concurrency), strict=True))
    states = {key: state for key, (state, _rebuilt) in read.items()}
    claimed = {c.slot for c in claims if c.page_id is not None}
    # When the store wrote each record: a claim's time, unless a repair wrote the record again (its time is then
    # the repair's, and tells nothing of when the number was claimed).
    rebuilt = {c.slot for c in claims if read[c.key][1]}
    recorded = {k: as_utc(e.last_modified) for k, e in records.items() if k not in rebuilt}
    plan = order.plan(claims, states, recorded)
    for claim, doubt in plan:
        if doubt is not None:
            report.unrepairable.append(Problem(prefix + claim.key, "conflict", doubt))
    await bounded_gather(
        (rebuild(c, c.record) for c, doubt in plan if doubt is None and c.record is not None), concurrency
    )
    if replaced and again:  # the store whose claim was replaced: its record again now, if its page has landed
        await _repair_versions(backend, prefix, report, grace, concurrency, bridge, again=False)
        return
    # Else estimated from what was listed, which can only keep more.
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
        if state == "damaged" and unread and (0 in unread or _number(entry.key) in unread):
            return None  # a page whose page id cannot be told may be this slot's: kept, that page reported
        return entry.key  # unreadable and claimed by no page, or naming no page: past the grace period

    old = [k for k in await bounded_gather((stale(e) for e in records.values()), concurrency) if k is not None]
    if old and not await _erasing(backend, prefix):
        deleted = await refs.prune_stale_versions(old, cutoff)  # only as judged: a later store may take the number
        report.records_deleted.extend(prefix + key for key in deleted)


def _number(slot: str) -> int:
    """The version number a record key ``v.{P}.{inverted}`` names."""
    return LAST_VERSION - int(slot.rsplit(".", 1)[1])


async def _still_there(view: PrefixedBackend, key: str, checksum: str) -> bool:
    """Is the page at ``key`` still the one of checksum ``checksum`` (a damaged one counts as there)?"""
    try:
        info = await view.head(key)
    except IntegrityError:
        return True
    return info is not None and info.metadata.get("checksum", checksum) == checksum


async def _slot(view: PrefixedBackend, codec: Codec, slot: str, page_id: str | None) -> str:
    """What the version record slot ``slot`` holds: ``empty``, ``damaged``, or the artifact its record names."""
    return (await _read_slot(view, codec, slot, page_id))[0]


async def _read_slot(view: PrefixedBackend, codec: Codec, slot: str, page_id: str | None) -> tuple[str, bool]:
    """:func:`_slot`, and whether the record there is one a repair wrote (:attr:`VersionRecord.rebuilt`)."""
    try:
        data = await view.get(slot)
        if data is None:
            return "empty", False
        fields = codec.decode_record(data, slot)
        named = page_id if page_id is not None else str(fields.get("page_id"))
        record = VersionRecord.parse(slot, fields, named)
        return record.artifact_id, record.rebuilt
    except IntegrityError:
        return "damaged", False
