"""Finding pages by modality, tier, page type and metadata key=value without reading every page (issue 28).

Decision (``docs/design/scopes.md``, "Versions and lookups"). Contract of :func:`find_pages`:

* **Where.** The places the bridge reads (:class:`~tierstore.artifacts.lookup.Places`): a bound bridge its session's
  scope then its user's, with the same visibility as ``list_pages``/``load_page`` (a page of the user's scope that a
  tomb of the session's names is absent); an unbound bridge the root.
* **Candidates** come from the catalog (:mod:`tierstore.catalog`): per place, one listing of its pages and one of
  its snapshots, the newest snapshot's rows that the listing proves, and a ``head`` of every other page. A page
  whose cached or fetched description does not match is left out; so a row must be proven by the listing to rule a
  page out, and a stale, damaged or copied snapshot only costs heads.
* **Answers** are never from the index alone: each candidate that matches is described afresh (one ``head``, the
  description ``get_metadata`` gives, its object metadata bound to its key and scope), matched again, and returned
  only if it still matches. Metadata the page's object metadata could not hold (over the budget) is read from its
  frame's header (one ranged read); a chuk JSON page at the root from its body. A custom backend (the spec's five
  calls) has no listing tokens nor object metadata: each page is described, and read for a metadata filter.
* A metadata filter matches a page whose own ``metadata`` holds each key with exactly that value (a ``str``; any
  Unicode, ``%`` and ``=`` included). An archived page whose metadata did not fit its object metadata cannot be matched
  on metadata before it is restored: it is left out of such a search (logged). An object whose metadata names another
  key or size (a page copied from another scope, or damaged) is not a page of this place: it is left out (handed to the
  caller's ``damaged`` when it gives one, else logged as a warning; ``fsck`` reports it), never an error stopping the
  search. Results come in each place's artifact order, the session's first; ``limit`` stops at that many. After the
  heads, each place's catalog folds what it learnt (:meth:`~tierstore.catalog.Catalog.fold`): the next call asks only
  for what changed since.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tierstore import ids
from tierstore.artifacts.lookup import Place, Places, place_clock, wider_backends
from tierstore.artifacts.objects import ObjectArtifacts, artifact_order
from tierstore.backends.base import ListEntry, ObjectInfo
from tierstore.catalog import Catalog
from tierstore.codec.metadata import USER_METADATA, read_user_metadata
from tierstore.concurrency import bounded_in_order
from tierstore.enums import Modality, PageType, StorageTier
from tierstore.errors import ArchivedPageError, IntegrityError, InvalidInputError
from tierstore.models import PageMetadata
from tierstore.validate import as_tier, clip

logger = logging.getLogger(__name__)

Damaged = Callable[[str, IntegrityError], None]
"""Told of each page left out as not of its place: its key and why."""


@dataclass(frozen=True, slots=True)
class Query:
    """What a page must be to be found; None matches anything."""

    modality: str | None = None
    tier: str | None = None
    page_type: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(
        cls,
        modality: Modality | str | None,
        tier: StorageTier | str | None,
        page_type: PageType | str | None,
        metadata: Mapping[str, str] | None,
    ) -> Query:
        """A checked query: known enum values, a metadata mapping of str to str (InvalidInputError otherwise, before
        any I/O)."""
        if metadata is not None and not isinstance(metadata, Mapping):
            raise InvalidInputError(f"metadata to match must be a mapping of str to str, not {type(metadata).__name__}")
        pairs = tuple((metadata or {}).items())
        if not all(isinstance(key, str) and isinstance(value, str) for key, value in pairs):
            raise InvalidInputError("metadata to match must map str keys to str values")
        return cls(
            None if modality is None else _value(Modality, modality, "modality"),
            None if tier is None else as_tier(tier).value,  # any case, as store_page and ls --tier take it
            None if page_type is None else _value(PageType, page_type, "page_type"),
            pairs,
        )

    def described(self, description: PageMetadata) -> bool:
        """Whether a page's description matches (everything but its own metadata)."""
        return (
            (self.modality is None or description.modality == self.modality)
            and (self.tier is None or description.tier == self.tier)
            and (self.page_type is None or (description.page_type or PageType.TRANSCRIPT.value) == self.page_type)
        )

    def holds(self, values: Mapping[str, Any]) -> bool:
        """Whether a page's own metadata has every key with exactly the value asked."""
        return all(values.get(key) == value for key, value in self.metadata)


def _value(kind: type[Modality] | type[PageType], value: object, what: str) -> str:
    try:
        return str(kind(value).value)
    except ValueError:
        raise InvalidInputError(f"{what}={clip(repr(value), 40)}: not a {kind.__name__}") from None


def _row_may_match(query: Query, info: ObjectInfo) -> bool:
    """Whether a page whose ``head`` answered ``info`` may match: False only when its object metadata says it cannot
    (a page described elsewhere, a chuk JSON page, always may)."""
    meta = info.metadata
    if "modality" not in meta:
        return True
    tier = info.tier.value if info.tier is not None else meta.get("tier")
    if (query.modality is not None and meta["modality"] != query.modality) or (
        query.tier is not None and tier != query.tier
    ):
        return False
    if query.page_type is not None and meta.get("pagetype", PageType.TRANSCRIPT.value) != query.page_type:
        return False
    if query.metadata and USER_METADATA in meta:
        values = read_user_metadata(meta[USER_METADATA])
        return values is None or query.holds(values)
    return True


async def _own_metadata(place: Place, key: str, info: ObjectInfo) -> Mapping[str, Any] | None:
    """The page's own metadata: from its object metadata, else its frame's header; None when neither can be read (an
    archived page whose metadata did not fit its object metadata)."""
    values = read_user_metadata(info.metadata.get(USER_METADATA, "")) if USER_METADATA in info.metadata else None
    if values is not None:
        return values
    if not info.metadata.get("modality"):
        return {}  # no description in its metadata: a page of no metadata at all
    if not isinstance(place.artifacts, ObjectArtifacts):
        return {}
    try:
        found = (await place.artifacts.header_fields(key)).get("metadata")
    except ArchivedPageError:
        logger.warning("%s is archived and its metadata is only in its frame: not matched until restored", key)
        return None
    return found if isinstance(found, dict) else {}


async def _judged(place: Place, places: Places, key: str, info: ObjectInfo | None, query: Query) -> PageMetadata | None:
    """The page's description from ``info`` (a fresh ``head``) if it matches; None when gone or not matching;
    IntegrityError when the object is not a page of this place (copied from elsewhere, or damaged)."""
    artifacts = place.artifacts
    if info is None or not isinstance(artifacts, ObjectArtifacts):
        return None
    try:
        description = await artifacts.described(key, info)
    except IntegrityError:
        if "modality" in info.metadata:
            raise  # a description naming another artifact or size
        legacy = await places.describe(key)  # a chuk JSON page (root only), described from its body
        if legacy is None or not query.described(legacy):
            return None
        if query.metadata:  # its own metadata is in its body too
            page = await places.load(key)
            if page is None or page.page_id != legacy.page_id or not query.holds(page.metadata):
                return None
        return legacy
    if not query.described(description):
        return None
    if query.metadata:
        values = await _own_metadata(place, key, info)
        if values is None or not query.holds(values):
            return None
    return description


async def find_pages(
    places: Places, query: Query, limit: int | None, concurrency: int, damaged: Damaged | None = None
) -> list[PageMetadata]:
    """The pages of ``places`` that match ``query`` (module contract); each page left out as not of its place is
    also handed to ``damaged`` (``tierstore ls`` names them and exits 4)."""
    found: list[PageMetadata] = []
    seen: set[str] = set()
    for index, place in enumerate(places.places):
        if limit is not None and len(found) >= limit:
            break
        artifacts = place.artifacts
        if not isinstance(artifacts, ObjectArtifacts):
            entries = [ListEntry(key, 0) for key in await artifacts.page_keys()]
            catalog = None
        else:
            backend = artifacts.backend
            listing = [entry async for entry in backend.list(ids.PAGE_PREFIX) if ids.parse_artifact_id(entry.key)]
            snapshots = [entry async for entry in backend.list(ids.CATALOG_PREFIX)]
            catalog = await Catalog.open(
                backend, [*listing, *snapshots], clock=place_clock(place), watch=wider_backends(places, index)
            )
            entries = sorted(listing, key=lambda entry: artifact_order(entry.key))
        hidden = await places.named_before(index) if index else set()
        entries = [entry for entry in entries if entry.key not in seen and entry.key not in hidden]
        seen.update(entry.key for entry in entries)
        await _search(place, places, query, entries, catalog, found, limit, concurrency, damaged)
        if catalog is not None:
            await catalog.fold()
    return found


async def _search(
    place: Place,
    places: Places,
    query: Query,
    entries: list[ListEntry],
    catalog: Catalog | None,
    found: list[PageMetadata],
    limit: int | None,
    concurrency: int,
    damaged: Damaged | None,
) -> None:

    def left_out(key: str, why: IntegrityError) -> None:
        if damaged is None:
            logger.warning("not a page of this place, left out (fsck reports it): %s", why)
        else:  # the caller names it (`tierstore ls` on stderr, once)
            damaged(key, why)

    if catalog is None:  # a custom backend: its pages' descriptions, one by one
        for entry in entries:
            if limit is not None and len(found) >= limit:
                return
            try:
                described = await places.describe(entry.key)
                if described is None or not query.described(described):
                    continue
                if query.metadata:  # the page itself: a custom backend keeps no object metadata
                    page = await places.load(entry.key)
                    if page is None or not query.holds(page.metadata):
                        continue
            except IntegrityError as why:
                left_out(entry.key, why)
                continue
            found.append(described)
        return
    backend = catalog.backend

    cached = {entry.key for entry in entries if catalog.known(entry) is not None}
    candidates: list[tuple[str, ObjectInfo | None]] = []
    answers = catalog.describe(entries, concurrency=concurrency, damaged=lambda entry, why: left_out(entry.key, why))
    async with contextlib.aclosing(answers):
        async for entry, info in answers:
            if info is not None and _row_may_match(query, info):
                # A row of the snapshot is asked afresh; an answer describe fetched just now is fresh.
                candidates.append((entry.key, None if entry.key in cached else info))

    async def judge(key: str, info: ObjectInfo | None) -> PageMetadata | None:
        try:
            fresh = info if info is not None else await backend.head(key)
            return await _judged(place, places, key, fresh, query)
        except IntegrityError as why:  # damaged anywhere: its head, its frame's header, its body
            left_out(key, why)
            return None

    judged = bounded_in_order((judge(key, info) for key, info in candidates), concurrency)
    async with contextlib.aclosing(judged):
        async for batch in judged:
            for description in batch:
                if description is not None:
                    found.append(description)
                if limit is not None and len(found) >= limit:
                    return
