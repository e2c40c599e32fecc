"""The bridge's lookups (issue 28): :meth:`LookupCalls.find_pages`, beside the calls on versions it extends.

:class:`LookupCalls` is mixed into :class:`~tierstore.bridge.ArtifactsBridge`; :mod:`tierstore.finding` says how
pages are found without reading every page and why a stale or damaged catalog never yields a wrong page.
"""

from __future__ import annotations

from collections.abc import Mapping

from tierstore.enums import Modality, PageType, StorageTier
from tierstore.errors import InvalidInputError
from tierstore.finding import Query, find_pages
from tierstore.models import PageMetadata
from tierstore.version_calls import VersionCalls


class LookupCalls(VersionCalls):
    """Versions of a page id, and pages found by what describes them (module contract)."""

    async def find_pages(
        self,
        *,
        modality: Modality | str | None = None,
        tier: StorageTier | str | None = None,
        page_type: PageType | str | None = None,
        metadata: Mapping[str, str] | None = None,
        limit: int | None = None,
    ) -> list[PageMetadata]:
        """The descriptions (as ``get_metadata`` gives them, each from a ``head`` of its page now) of the pages this
        bridge sees whose modality, tier and page type are those given and whose own ``metadata`` holds every
        key=value given; at most ``limit``. A bound bridge searches its session's pages then its user's; an unbound
        one the root. Candidates come from the catalog of each scope (:mod:`tierstore.catalog`): a later call asks
        the store only for pages changed since (:mod:`tierstore.finding`)."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise InvalidInputError(f"limit must be an int of at least 0, not {limit!r}")
        query = Query.of(modality, tier, page_type, metadata)
        return await find_pages(self._places, query, limit, self.concurrency)
