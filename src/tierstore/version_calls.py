"""The bridge's calls on versions of a page id (issue 28): ``list_versions``, ``load_page_id``, ``delete_page_id``.

:class:`VersionCalls` is mixed into :class:`~tierstore.bridge.ArtifactsBridge`; :mod:`tierstore.versions` says what
a version is, how the latest is found in 3 requests, and why a record never yields a wrong page. Versions are kept
per scope: a bridge bound to a user or session has them (its ``store_page`` makes them), an unbound bridge (the
store's root) has no version records, and these calls refuse there with NotSupportedError rather than read every
page's description (decided in ``docs/design/scopes.md``; ``list_pages`` and ``get_metadata`` remain for that).
"""

from __future__ import annotations

from typing import Literal

from tierstore import ids
from tierstore.artifacts.lookup import Places
from tierstore.artifacts.objects import ObjectArtifacts
from tierstore.errors import InvalidInputError, NotSupportedError
from tierstore.models import MemoryPage, PageVersion
from tierstore.validate import clip
from tierstore.versions import Versions

Scope = Literal["session", "user"]


class VersionCalls:
    """Versions of a page id on a bound bridge (module contract)."""

    _places: Places
    concurrency: int

    async def list_versions(self, page_id: str, *, scope: Scope | None = None) -> list[PageVersion]:
        """The versions of ``page_id`` whose pages are stored: the session's newest first, then the user's newest
        first (``scope``: one of them only), so the first listed is the one :meth:`load_page_id` loads. A version
        whose store crashed or is still running (its record written, its page not yet) is not listed. One listing,
        then one read of its record and one head of its page per version. NotSupportedError on an unbound bridge;
        IntegrityError when a version's record is damaged and its page is there (as :meth:`load_page_id` says)."""
        return await self._versions("list_versions", page_id).list(page_id, scope, self.concurrency)

    async def load_page_id(
        self, page_id: str, version: int | None = None, *, scope: Scope | None = None
    ) -> MemoryPage | None:
        """The latest stored version of ``page_id`` (``version``: that one), verified; None when there is none.

        A bridge bound to a session looks in its session's scope first, then its user's: a page id with a version in
        the session's scope is loaded from there, however new the user's versions are (the session's copy shadows
        the shared one; ``scope`` looks in one only). The latest is the highest version number whose page is there:
        a store that returned before another began has the lower number. Usually 3 requests (a listing, the record,
        the page); a stale or damaged version record only costs more, never returns another page: the page read
        must be the one its record was written for (page id, scope, checksum of that very write). NotSupportedError
        on an unbound bridge; IntegrityError when the version's page is damaged, or its record while its page is there
        (never the version before it, nor another scope's: ``fsck --repair`` writes the record again)."""
        versions = self._versions("load_page_id", page_id)
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            raise InvalidInputError(f"version must be an int of at least 1, not {clip(repr(version), 40)}")
        return await versions.load(page_id, version, scope)

    async def delete_page_id(self, page_id: str, *, scope: Scope | None = None) -> int:
        """Delete every version of ``page_id`` in this bridge's scopes (``scope``: in one only), through the deletion
        protocol (one tomb naming them, the pages, then their records); how many pages were deleted. A store of the
        page id running meanwhile may land after it, as a new version. NotSupportedError on an unbound bridge."""
        return await self._versions("delete_page_id", page_id).delete_id(page_id, scope, self.concurrency)

    def _versions(self, call: str, page_id: str) -> Versions:
        ids.check_text_id(page_id, "page id")
        if not self._places.scoped:
            raise NotSupportedError(
                f"{call} needs a bridge bound to a user or session (ArtifactsBridge(user_id=..., session_id=...)): "
                "versions are kept per scope, and an unbound bridge's pages (the store's root) have no version records"
            )
        places = self._places
        index = {place.name: n for n, place in enumerate(places.places)}
        scopes = [(place.name, place.artifacts) for place in places.places]

        async def hidden(name: str) -> set[str]:  # the tombs of the narrower scopes, as load_page reads them
            return await places.named_before(index[name]) if index.get(name) else set()

        return Versions(
            [(name, artifacts) for name, artifacts in scopes if isinstance(artifacts, ObjectArtifacts)], hidden
        )
