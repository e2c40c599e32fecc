"""Versions of a page id in a scope, and its latest version found in at most 3 requests (issue 28).

Decision (``docs/design/scopes.md``, "Versions and lookups"): each ``store_page`` of a bridge bound to a scope is a new
version of its page id there. Contract:

* **Claim.** A store lists the scope's records ``v.{P}.`` (``P`` = :func:`tierstore.scopes.segment` of the page id),
  takes *n* = the newest listed + 1, and writes the record ``v.{P}.{9999999999 - n}`` with create-if-absent (another
  store took *n*: *n* + 1, and so on); the record is a record frame bound to its whole key (scope prefix included)
  naming the artifact, *n*, the page id, tier, size, created time (the storing host's clock), modality, page type
  and the checksum of the page's frame, which the frame's write token makes unique to this write. Only then is the
  page written (create-if-absent, its object metadata carrying ``ver`` = *n* and ``stored``, the record's created
  time, which ``set_tier`` leaves: ``fsck --repair`` orders pages by it). So a crash leaves a record without a
  page, never a page no record names, and a store that begins after another has returned lists that one's record:
  **version numbers follow real time between stores that do not overlap** (overlapping stores of one page id get
  distinct numbers in no promised order). *n* is one more than the newest *remaining* record: numbers a deletion
  freed at the top are given again (``delete_page_id`` then a store: version 1).
* **Latest.** One listing of ``v.{P}.`` (one request per 1,000 versions), then, newest first, one GET of the record
  and one GET of the page it names: 3 requests when the newest record's page is there. A record is never trusted:
  a record that is damaged (or copied from another key: its frame names another), whose page is absent (a store in
  flight or crashed, a deleted version), or whose page is not the one it was written for (another checksum or
  page id) costs its requests and the next older is tried; but a damaged record whose version's page is there (a
  page of the scope says it is that version, one head a page) is IntegrityError, never the version before it; so on
  every path: a given ``version`` (not another scope's version of that number, nor None) and :meth:`Versions.list`
  (not a list without it). A page that is there but damaged is IntegrityError, as ``load_page`` says of it, never an
  older version in its place.
* **Scopes.** A bridge bound to a session and a user reads its session's versions of a page id first, then its
  user's: a page id with a loadable version in the session's scope is loaded from there whatever the user's scope
  holds (the session's copy shadows the shared one; 5 requests for a page id found in the user's scope only: the
  session's tombs are listed too, which hide an artifact id the session deleted and that was issued again in the
  user's scope, as ``load_page`` hides it).
  :meth:`Versions.list` lists in that order too, so the first version listed is the one :meth:`Versions.load` gives.
* **Deletion.** ``delete_page_id``: every version whose page its record names and still holds (checked by the
  checksum in the page's object metadata), through the deletion protocol (one tomb naming them all, then the pages),
  then their records and any damaged record; and every page of the scope whose metadata says it is a version of
  that page id, whatever the records say (one listing of the pages, the scope's catalog, a head of each page it
  does not prove): a version whose record was lost, or that a killed repair had not written again yet, is found
  only so, and ``fsck --repair`` would otherwise give it back its record and the deleted page id. A record
  whose page is absent is left: it may be a store in flight, whose page
  would otherwise land unnamed; readers skip it. ``delete_page`` of one artifact: the page, then its record (its
  metadata's ``ver`` names it). A record is deleted only while it is the one judged (it names the artifact deleted:
  :mod:`tierstore.record_deletes`), never a later store's record at a number freed meanwhile.
* Only the narrowest ``store_page`` path writes versions: pages a checkpoint uploads and ``store_leased`` pages
  belong to their manifests and leases, and have no version. An unbound bridge (the root) has no version records:
  these calls refuse there (the bridge says so) rather than scan every page.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote

from tierstore import ids
from tierstore.backends.base import METADATA_BUDGET, Checked, Chunks, ListEntry
from tierstore.codec import Encoded, PreparedPage
from tierstore.concurrency import alongside, bounded_gather
from tierstore.enums import StorageTier
from tierstore.errors import ConflictError, IntegrityError, InvalidInputError
from tierstore.models import MemoryPage, PageVersion
from tierstore.record_deletes import delete_named
from tierstore.validate import clip
from tierstore.version_records import (
    DIGITS,
    LAST_VERSION as LAST_VERSION,
    STORED as STORED,
    VER,
    VERSIONS_PREFIX as VERSIONS_PREFIX,
    VersionRecord as VersionRecord,
    listed_version as listed_version,
    read_stored_stamp as read_stored_stamp,
    stale_records as stale_records,
    stored_stamp as stored_stamp,
    version_key as version_key,
    versions_prefix as versions_prefix,
)

if TYPE_CHECKING:
    from tierstore.artifacts.objects import ObjectArtifacts

logger = logging.getLogger(__name__)

_DIGITS: Final = DIGITS
_CLAIMS: Final = 10_000
_VER: Final = VER


class Versions:
    """The versions of page ids in a bound bridge's scopes, narrowest first (module contract)."""

    def __init__(
        self, scopes: list[tuple[str, ObjectArtifacts]], hidden: Callable[[str], Awaitable[set[str]]] | None = None
    ) -> None:
        self._places: dict[str, ObjectArtifacts] = dict(scopes)
        self._hidden = hidden
        """The artifact ids absent from a scope for this bridge: a wider scope's id that a narrower scope's tomb
        names (an id deleted in the session and issued again in its user's scope), as ``load_page`` hides it."""

    def _hider(self) -> Callable[[str, str], Awaitable[bool]]:
        """Whether an artifact id is hidden in a scope, the tombs read at most once per scope for one call."""
        known: dict[str, set[str]] = {}

        async def hides(name: str, artifact: str) -> bool:
            if self._hidden is None:
                return False
            if name not in known:
                known[name] = await self._hidden(name)
            return artifact in known[name]

        return hides

    def _chosen(self, scope: str | None) -> list[tuple[str, ObjectArtifacts]]:
        if scope is None:
            return list(self._places.items())
        if scope not in self._places:
            if scope not in ("session", "user"):
                raise InvalidInputError(f"scope must be 'session' or 'user', not {clip(repr(scope), 40)}")
            raise InvalidInputError(f"scope={scope!r}: this bridge is bound to no {scope}")
        return [(scope, self._places[scope])]

    # -- reading -------------------------------------------------------------------------------------------

    async def load(self, page_id: str, version: int | None, scope: str | None) -> MemoryPage | None:
        """The latest (or ``version``) of ``page_id`` in the first of the chosen scopes holding a loadable one;
        None when none does. IntegrityError when that version's record is damaged and its page is there."""
        hides = self._hider()
        for name, objects in self._chosen(scope):
            reader = _Reader(objects, page_id, name, hides)
            if version is not None:
                key = version_key(page_id, version)
                record = await reader.record(key, version)
                if record is not None and await hides(name, record.artifact_id):
                    record = None
                page = None if record is None else await _page_of(objects, record)
                if page is not None:
                    return page
                continue
            for number, key in await _listed(objects, page_id):
                record = await reader.record(key, number)
                if record is not None and await hides(name, record.artifact_id):
                    continue  # absent for this bridge, as load_page says of it
                page = None if record is None else await _page_of(objects, record)
                if page is not None:
                    return page
        return None

    async def list(self, page_id: str, scope: str | None, concurrency: int) -> list[PageVersion]:
        """Every version of ``page_id`` whose page is there, the chosen scopes in lookup order, each newest first;
        IntegrityError when a version's record is damaged and its page is there (as :meth:`load` says)."""
        found: list[PageVersion] = []
        hides = self._hider()
        for name, objects in self._chosen(scope):
            listed = await _listed(objects, page_id)
            if listed:
                await hides(name, "")  # the tombs read once, before the concurrent descriptions
            reader = _Reader(objects, page_id, name, hides)

            async def describe(
                number: int, key: str, objects: ObjectArtifacts = objects, name: str = name, reader: _Reader = reader
            ) -> PageVersion | None:
                record = await reader.record(key, number)
                if record is None or await hides(name, record.artifact_id):
                    return None
                info = await _held(objects, record)
                if info is None:
                    return None
                size, tier = info
                return PageVersion(
                    page_id=page_id,
                    version=record.version,
                    artifact_id=record.artifact_id,
                    scope="session" if name == "session" else "user",
                    tier=tier,
                    created_at=record.created,
                    size_bytes=size,
                )

            described = await bounded_gather((describe(n, key) for n, key in listed), concurrency)
            found.extend(v for v in described if v is not None)
        return found

    # -- deleting ------------------------------------------------------------------------------------------

    async def delete_id(self, page_id: str, scope: str | None, concurrency: int) -> int:
        """Delete every version of ``page_id`` in the chosen scopes (module contract); how many pages went."""
        deleted = 0
        hides = self._hider()
        for name, objects in self._chosen(scope):
            listed = await _listed(objects, page_id)

            async def judge(key: str, objects: ObjectArtifacts = objects) -> tuple[str, str | None, bool]:
                """The record's key, the artifact it names if that still holds its page, whether it is damaged."""
                data = await objects.backend.get(key)
                if data is None:
                    return key, None, False
                try:
                    record = VersionRecord.parse(key, objects.codec.decode_record(data, key), page_id)
                except IntegrityError:
                    return key, None, True
                return key, (record.artifact_id if await _held(objects, record) else None), False

            judged = await bounded_gather((judge(key) for _n, key in listed), concurrency)
            pages = {artifact for _key, artifact, _damaged in judged if artifact is not None}
            # A version whose record is lost (behind tierstore's back, or a repair killed between deleting a
            # damaged record and writing it again) is found only by its page: every page is looked at, or
            # ``fsck --repair`` would give it its record back and the deleted page id would load again.
            pages |= await _versions_of(objects, page_id, concurrency)
            hidden = {artifact for artifact in pages if await hides(name, artifact)}  # absent, as for delete_page
            pages -= hidden
            if pages:
                await objects.refs.delete_recorded(sorted(pages))
            records = [(k, a) for k, a, damaged in judged if a not in hidden and (a or damaged)]
            await delete_named(objects.backend, objects.codec, page_id, records, concurrency)  # only as judged
            deleted += len(pages)
        return deleted


async def _listed(objects: ObjectArtifacts, page_id: str) -> list[tuple[int, str]]:
    """The version records of ``page_id`` listed in a scope, newest first (one request per 1,000)."""
    prefix = versions_prefix(page_id)
    found = [(v, entry.key) async for entry in objects.backend.list(prefix) if (v := listed_version(entry.key, prefix))]
    return sorted(found, reverse=True)


async def _record(objects: ObjectArtifacts, page_id: str, key: str) -> VersionRecord | None:
    """The record at ``key``; None when absent or damaged (logged: ``fsck`` has no more to say of it)."""
    data = await objects.backend.get(key)
    if data is None:
        return None
    try:
        return VersionRecord.parse(key, objects.codec.decode_record(data, key), page_id)
    except IntegrityError as exc:
        logger.warning("skipping a damaged version record: %s", exc)
        return None


class _Reader:
    """The version records of one page id in one scope as one call reads them: a damaged record whose version's
    page is there is IntegrityError, whichever path reads it (the latest, an explicit version, the list)."""

    def __init__(
        self, objects: ObjectArtifacts, page_id: str, name: str, hides: Callable[[str, str], Awaitable[bool]]
    ) -> None:
        self._objects, self._page_id, self._name, self._hides = objects, page_id, name, hides
        self._versions: set[int] | None = None
        self._looking = asyncio.Lock()

    async def record(self, key: str, number: int) -> VersionRecord | None:
        """The record at ``key`` (version ``number``); None when absent, or damaged with no page of the scope (not
        hidden from this bridge) saying it is that version: a store in flight or crashed, a deleted version."""
        record = await _record(self._objects, self._page_id, key)
        if record is None and await _damaged(self._objects, key) and number in await self._stored():
            # Its page is there: that version is that page, and only its record can say so. Not another one.
            raise IntegrityError(f"version record {key} is damaged (`tierstore fsck` names it)", key=key)
        return record

    async def _stored(self) -> set[int]:
        async with self._looking:  # one look at the pages, however many records of the call are damaged
            if self._versions is None:
                self._versions = await self._look()
            return self._versions

    async def _look(self) -> set[int]:
        """The versions of the page id that pages of the scope say they are (their ``ver``), one head a page."""
        objects, page_id = self._objects, self._page_id

        async def version_of(key: str) -> int | None:
            try:
                info = await objects.backend.head(key)
            except IntegrityError:
                return None
            ver = None if info is None else info.metadata.get(_VER, "")
            if info is None or ver is None or not ver.isdigit() or len(ver) > _DIGITS:
                return None
            if await _page_id(objects, key, info.metadata) != page_id or await self._hides(self._name, key):
                return None
            return int(ver)

        return {v for v in await bounded_gather(map(version_of, await objects.page_keys()), 32) if v is not None}


async def _damaged(objects: ObjectArtifacts, key: str) -> bool:
    """Is there an object at ``key`` (a record that cannot be read, not a store still in flight)?"""
    try:
        return await objects.backend.head(key) is not None
    except IntegrityError:
        return True


async def _page_of(objects: ObjectArtifacts, record: VersionRecord) -> MemoryPage | None:
    """The page ``record`` was written for, verified; None when its artifact is absent or holds another page."""
    data = await objects.backend.get(record.artifact_id)
    if data is None:
        return None
    page, checksum = await objects.codec.decode_page_off_loop(data, record.artifact_id, bound=True)
    if checksum != record.checksum or page.page_id != record.page_id:
        return None
    return page


async def _held(objects: ObjectArtifacts, record: VersionRecord) -> tuple[int, str] | None:
    """``(size, tier)`` of the page ``record`` was written for, from one head (and a ranged read of the header
    where the page id did not fit in the metadata); None when its artifact is absent, damaged or holds another page
    (checksum, page id or version differ)."""
    try:
        info = await objects.backend.head(record.artifact_id)
    except IntegrityError:
        return None
    if info is None or info.metadata.get("checksum") != record.checksum:
        return None
    if info.metadata.get(_VER, str(record.version)) != str(record.version):
        return None
    if await _page_id(objects, record.artifact_id, info.metadata) != record.page_id:
        return None
    return info.size, info.tier.value if info.tier else info.metadata.get("tier", record.tier)


async def _page_id(objects: ObjectArtifacts, key: str, metadata: Mapping[str, str]) -> str | None:
    """The page id of the page at ``key``: from its object metadata, else its description (a page id too long for
    the metadata is in the frame's header); None when it cannot be told."""
    if "pageid" in metadata:
        return unquote(metadata["pageid"])
    try:
        described = await objects.describe(key)
    except IntegrityError:
        return None
    return None if described is None else described.page_id


async def _versions_of(objects: ObjectArtifacts, page_id: str, concurrency: int) -> set[str]:
    """Every page of the scope whose metadata says it is a version (``ver``) of ``page_id``: one listing of the
    pages, the scope's catalog (:mod:`tierstore.catalog`), and a head of each page it does not prove (a damaged
    one is skipped: its page id cannot be told)."""
    from tierstore.catalog import Catalog  # on use: the catalog module is not needed to store or load

    entries = await objects.page_entries()
    snapshots = [entry async for entry in objects.backend.list(ids.CATALOG_PREFIX)]
    catalog = await Catalog.open(objects.backend, [*entries, *snapshots], clock=objects.refs.clock)
    found: set[str] = set()

    def damaged(entry: ListEntry, exc: IntegrityError) -> None:
        logger.warning("delete_page_id: %s cannot be read, left (`tierstore fsck` names it): %s", entry.key, exc)

    async for entry, info in catalog.describe(entries, concurrency=concurrency, damaged=damaged):
        if info is None or not info.metadata.get(_VER, "").isdigit():
            continue
        try:
            named = await _page_id(objects, entry.key, info.metadata)
        except IntegrityError:
            continue
        if named == page_id:
            found.add(entry.key)
    return found


async def store_version(
    objects: ObjectArtifacts,
    page: MemoryPage,
    prepared: PreparedPage,
    tier: StorageTier,
    before: Callable[[], Awaitable[None]] | None = None,
) -> tuple[str, Encoded]:
    """Store ``page`` as the next version of its page id in the scope of ``objects``: record first, page last
    (module contract). ``before``: awaited alongside the listing, done before anything is written (the scope's
    registration, :mod:`tierstore.artifacts.scoped`). Returns the artifact id and the frame written."""
    codec, backend = objects.codec, objects.backend
    tags = Checked(codec.page_tags(page, tier))
    now = objects.refs.clock.now()
    listing = _listed(objects, page.page_id)
    listed = await (listing if before is None else alongside(listing, before()))
    next_version = 1 + max((v for v, _key in listed), default=0)
    written: list[Encoded] = []

    async def write(key: str) -> None:
        nonlocal next_version
        encoded = codec.frame_page(prepared, key)
        version = await _claim(objects, page, key, encoded, tier, now, next_version)
        next_version = version + 1  # the page's key may be taken (a copy from elsewhere): the next key, version
        ver, stamp = str(version), stored_stamp(now)
        extra = len(_VER) + len(ver) + len(STORED) + len(stamp)
        metadata = codec.object_metadata(page, tier, None, encoded, key, METADATA_BUDGET - extra)
        metadata[_VER] = ver
        metadata[STORED] = stamp
        body = Chunks(encoded.head, encoded.body)
        await backend.put(key, body, metadata=Checked(metadata), tags=tags, tier=tier, if_absent=True)
        written.append(encoded)

    key = await objects.allocator.claim(tier, write)
    return key, written[-1]


async def _claim(
    objects: ObjectArtifacts,
    page: MemoryPage,
    key: str,
    encoded: Encoded,
    tier: StorageTier,
    now: datetime,
    version: int,
) -> int:
    """Write the record of the first free version from ``version`` on, naming the page about to be written at
    ``key``; returns its number."""
    for _ in range(_CLAIMS):
        if version > LAST_VERSION:
            break
        record = VersionRecord(
            key=version_key(page.page_id, version),
            version=version,
            page_id=page.page_id,
            artifact_id=key,
            tier=tier.value,
            size=encoded.size,
            created=now,
            modality=page.modality.value,
            page_type=page.page_type.value,
            checksum=encoded.checksum,
        )
        data = objects.codec.encode_record(record.key, record.fields()).data
        try:
            await objects.backend.put(record.key, data, metadata={"kind": "version"}, if_absent=True)
        except ConflictError:
            version += 1
            continue
        return version
    # Not ConflictError: the allocator would take it for the page's key being taken, and try 10,000 keys.
    raise IntegrityError(
        f"no version number of page id {clip(page.page_id, 100)!r} can be claimed after {version - 1}: the records "
        f"there are not tierstore's (`tierstore fsck` names them; delete_page_id clears them)"
    )


async def delete_version(objects: ObjectArtifacts, key: str) -> int | None:
    """Delete the page at ``key`` in the scope of ``objects`` through the deletion protocol, then its version record
    (named by the page's ``ver``, and only if it names this artifact); its size, or None when there is none."""
    try:
        info = await objects.backend.head(key)
    except IntegrityError:
        await objects.refs.delete_recorded([key])  # damaged, but there: deleted as ever; its record is left stale
        return 0
    if info is None:
        return None
    await objects.refs.delete_recorded([key])
    ver = info.metadata.get(_VER, "")
    if ver.isdigit() and len(ver) <= _DIGITS:
        page_id = await _page_id(objects, key, info.metadata)
        if page_id is not None:  # only while it names this artifact, not a later store's record at its number
            await delete_named(objects.backend, objects.codec, page_id, [(version_key(page_id, int(ver)), key)], 1)
    return info.size
