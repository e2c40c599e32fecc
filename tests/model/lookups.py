"""The model's rules for lookups (issue 28): ``find_pages`` and catalog folds on the scoped pages of :mod:`.scoped`.

Contract: :class:`LookupRules` is mixed into the machine of :mod:`.machine` beside :class:`~tests.model.scoped.
ScopedRules`, whose record of scoped pages it reads and never changes. Its invariant, checked by each ``scoped_find``:
``find_pages`` returns exactly the visible pages that match, each the page stored: every present page of the
bridge's scopes that ``store_page`` stored and that matches is found; everything found is a matching page of the
bridge's scopes (a page the model holds present or uncertain, or one a cancelled call may have landed) and describes
that very page. ``scoped_fold`` writes a catalog snapshot of a scope at any moment (stale by the next store, delete
or erasure), so later finds trust its rows where the listing proves them and ask the store elsewhere. ``scoped_ls``
holds ``tierstore ls -l``'s listing of a bound bridge (:class:`~tierstore.cli.ls_pages.PageListing`, its places merged
in key order as their listing pages come, the first page of 1, 2 or the usual keys) to the same: each key once, in key
order, every present page of the bridge's scopes, nothing deleted or of another scope, each row describing its page.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import rule

from tests.model.scoped import BINDINGS, HoldsScopedWorld, sees
from tierstore import ArtifactsBridge, MemoryPage, Modality
from tierstore.backends import slices
from tierstore.catalog.upkeep import rebuild_catalog
from tierstore.cli.ls_pages import PageListing
from tierstore.models import PageEntry, PageMetadata


def matches(page: MemoryPage, modality: Modality | None, metadata: dict[str, str]) -> bool:
    return (modality is None or page.modality == modality) and all(
        page.metadata.get(k) == v for k, v in metadata.items()
    )


class LookupRules(HoldsScopedWorld):
    """Rules for ``find_pages`` and catalog folds (module contract); mixed into the model's state machine."""

    run: Any
    note: Any
    scoped_bridge: Any

    @rule(which=st.integers(0, 9))
    def scoped_fold(self, which: int) -> None:
        _binding, bridge = self.scoped_bridge(which)
        self.note("scoped_fold")
        self.run(rebuild_catalog(bridge.references("fold").backend))

    @rule(
        which=st.integers(0, 9),
        modality=st.sampled_from([None, Modality.TEXT, Modality.IMAGE]),
        scope_of=st.one_of(st.none(), st.integers(0, len(BINDINGS) - 1)),
    )
    def scoped_find(self, which: int, modality: Modality | None, scope_of: int | None) -> None:
        binding, bridge = self.scoped_bridge(which)
        metadata = {} if scope_of is None else {"scope": repr(BINDINGS[scope_of])}
        self.note("scoped_find")
        found = self.run(bridge.find_pages(modality=modality, metadata=metadata))
        self.check_found(bridge, binding, found, modality, metadata)

    @rule(which=st.integers(0, 9), first_page=st.sampled_from([1, 2, slices.FIRST_PAGE]))
    def scoped_ls(self, which: int, first_page: int) -> None:
        binding, bridge = self.scoped_bridge(which)
        self.note("scoped_ls")

        async def listed() -> list[tuple[PageEntry, PageMetadata | None]]:
            async with PageListing(bridge) as listing:
                rows = [row async for batch in listing.describe(4, damaged=damaged) for row in batch]
                await listing.fold()
            return rows

        def damaged(entry: PageEntry, why: Exception) -> None:
            raise AssertionError(f"{binding}: ls -l calls {entry.artifact_id} damaged: {why}")

        usual, slices.FIRST_PAGE = slices.FIRST_PAGE, first_page  # a page boundary between a scope's first keys
        try:
            rows = self.run(listed())
        finally:
            slices.FIRST_PAGE = usual
        keys = [entry.artifact_id for entry, _ in rows]
        assert keys == sorted(set(keys)), f"{binding}: ls -l lists out of key order or twice: {keys}"
        for artifact in self.scoped.artifacts.values():
            if sees(binding, artifact.scope) and artifact.state == "present":
                assert artifact.key in keys, f"{binding}: ls -l misses {artifact.key}"
        unknown = {key for key in keys if key not in self.scoped.artifacts}
        if unknown:  # a cancelled store's page, which check_scopes adopts from list_pages (or fails)
            assert unknown <= set(self.run(bridge.list_pages())), f"{binding}: ls -l shows {unknown}, not listed"
        for entry, described in rows:
            known = self.scoped.artifacts.get(entry.artifact_id)
            if known is None:
                continue
            assert sees(binding, known.scope), f"{binding}: ls -l shows {known.key} of scope {known.scope}"
            assert known.state != "gone", f"{binding}: ls -l shows deleted {known.key}"
            if described is None:  # gone between its listing and its description: nothing else runs meanwhile
                assert known.state == "uncertain", f"{binding}: ls -l lists {known.key} but cannot describe it"
                continue
            assert described.page_id == known.page.page_id, f"{binding}: {known.key} describes another page"
            assert described.modality == known.page.modality.value, f"{binding}: {known.key} another modality"

    def check_found(
        self,
        bridge: ArtifactsBridge,
        binding: Any,
        found: list[Any],
        modality: Modality | None,
        metadata: dict[str, str],
    ) -> None:
        visible = {key: a for key, a in self.scoped.artifacts.items() if sees(binding, a.scope)}
        got = {str(d.artifact_id): d for d in found}
        assert len(got) == len(found), f"{binding}: find_pages gave a page twice"
        for artifact in visible.values():
            if artifact.exact and artifact.state == "present" and matches(artifact.page, modality, metadata):
                assert artifact.key in got, f"{binding}: find_pages missed {artifact.key} ({modality}, {metadata})"
        landed = [page for scope, page in self.scoped.attempted if sees(binding, scope)]
        for key, described in got.items():
            known = visible.get(key)
            if known is None:
                assert key not in self.scoped.artifacts, f"{binding}: find_pages gave {key} of another scope"
                assert any(p.page_id == described.page_id and matches(p, modality, metadata) for p in landed), (
                    f"{binding}: find_pages gave {key}, which nothing stored in its scopes"
                )
                continue
            artifact = known
            assert artifact.state != "gone", f"{binding}: find_pages gave {key}, deleted"
            assert matches(artifact.page, modality, metadata), f"{binding}: {key} does not match"
            assert described.page_id == artifact.page.page_id, f"{binding}: {key} describes another page"
            assert described.modality == artifact.page.modality.value, f"{binding}: {key} another modality"
