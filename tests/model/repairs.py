"""The model's rule for ``fsck --repair`` of version records (issue 28): a version record of a scoped page damaged or
lost behind tierstore's back, then a repair stopped at any await, then a whole one.

Contract: :class:`RepairRules` is mixed into the machine of :mod:`.machine` beside :mod:`.scoped`, whose record of
scoped pages it reads and leaves as it was: a record the repair may not rebuild (reported, as the clocks of the
sequence can make it: ``stored`` times that do not order the pages) is put back by hand, so every other rule and
check sees the store it expects. What it holds the store to: while a damaged record stands, and at every point of a
repair, the version it names loads as itself or IntegrityError, on every path (the latest, that version, the
list), never the version before it nor another scope's; once a repair says it wrote the record, that version loads
again and the list is whole.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import rule

from tests.model.scoped import HoldsScopedWorld, ScopedArtifact, shared
from tierstore import ArtifactsBridge, MemoryPage
from tierstore.errors import IntegrityError
from tierstore.maintenance.repair import repair
from tierstore.scopes import scope_prefix
from tierstore.versions import version_key


class RepairRules(HoldsScopedWorld):
    """The repair rule (module contract); mixed into the model's state machine."""

    run: Any
    attempt: Any
    note: Any
    scoped_bridge: Any

    @rule(
        which=st.integers(0, 9),
        page_id=st.sampled_from(["p", "notes", "name"]),
        pick=st.integers(0, 3),
        lose=st.booleans(),
        cancel=st.one_of(st.none(), st.integers(0, 15)),
    )
    def scoped_record_repair(self, which: int, page_id: str, pick: int, lose: bool, cancel: int | None) -> None:
        binding, bridge = self.scoped_bridge(which)
        order = [binding] + ([own] if (own := shared(binding)) is not None else [])
        if self.scoped.unsure(order, page_id):
            return
        present = self.scoped.versions(order, page_id)
        scopes = [scope for scope in order if present[scope]]
        if not scopes:
            return
        scope = scopes[pick % len(scopes)]
        where: Any = "session" if scope[1] is not None else "user"
        numbers = {v.artifact_id: v.version for v in self.run(bridge.list_versions(page_id, scope=where))}
        target = present[scope][pick % len(present[scope])]
        number = numbers[target.key]
        slot = scope_prefix(*scope) + version_key(page_id, number)
        backend = bridge.backend
        original = self.run(backend.get(slot))
        assert original is not None, f"{slot}: the record of {target.key} is not there"
        self.note("scoped_record_repair-lost" if lose else "scoped_record_repair-damaged")
        if lose:
            self.run(backend.delete(slot))
        else:
            self.run(backend.put(slot, bytes(original[:-3]) + bytes([original[-3] ^ 0xFF]) + bytes(original[-2:])))
        latest = present[scopes[0]][0]
        damaged = None if lose else target
        self.readers_see(bridge, page_id, where, number, latest, damaged)
        if cancel is not None:
            try:
                self.attempt(lambda: repair(bridge), cancel, False)
            except Exception as exc:
                if type(exc).__name__ != "Lost":
                    raise
                self.note("scoped_record_repair-stopped")
            self.readers_see(bridge, page_id, where, number, latest, damaged)
        report = self.run(repair(bridge))
        if not self.names(bridge, page_id, where, number, target):
            said = any(p.key.endswith("." + target.key) for p in report.unrepairable) or report.late
            assert said, f"{slot}: the repair neither wrote the record of {target.key} nor said why: {report}"
            self.note("scoped_record_repair-refused")
            self.run(backend.put(slot, bytes(original)))  # as its store wrote it: the model goes on
        assert self.names(bridge, page_id, where, number, target), f"{slot}: version {number} is not {target.key}"
        latest_page = self.run(bridge.load_page_id(page_id))
        assert latest_page == latest.page, f"{binding}: load_page_id({page_id!r}) is {latest_page}, not {latest.key}"

    def names(self, bridge: ArtifactsBridge, page_id: str, where: Any, number: int, target: ScopedArtifact) -> bool:
        try:
            page = self.run(bridge.load_page_id(page_id, number, scope=where))
        except IntegrityError:
            return False
        return page == target.page and any(
            v.artifact_id == target.key and v.version == number
            for v in self.run(bridge.list_versions(page_id, scope=where))
        )

    def readers_see(
        self,
        bridge: ArtifactsBridge,
        page_id: str,
        where: Any,
        number: int,
        latest: ScopedArtifact,
        damaged: ScopedArtifact | None,
    ) -> None:
        """With the record of ``damaged`` damaged (None: lost, which the README lets pass for the version before):
        every path gives that version or IntegrityError, never another page."""
        if damaged is None:
            return
        try:
            page: MemoryPage | None = self.run(bridge.load_page_id(page_id))
        except IntegrityError:
            assert damaged is latest, f"load_page_id({page_id!r}): IntegrityError, but {latest.key} is the latest"
        else:
            assert page == latest.page, f"load_page_id({page_id!r}) is {page}, not {latest.key}"
        try:
            page = self.run(bridge.load_page_id(page_id, number, scope=where))
        except IntegrityError:
            pass
        else:
            assert page == damaged.page, f"version {number} of {page_id!r} ({where}) is {page}, not {damaged.key}"
        try:
            listed = [v.artifact_id for v in self.run(bridge.list_versions(page_id, scope=where))]
        except IntegrityError:
            return
        assert damaged.key in listed, f"list_versions({page_id!r}, {where}) leaves out {damaged.key}: {listed}"
