"""The state machine: random sequences of everything a store lives through, checked against :mod:`.world`.

Contract: :func:`machine_for` builds a ``RuleBasedStateMachine`` for one rig. Each example gets a fresh store (and a
destination store for ``migrate``), its own event loop and its own :class:`~tests.model.clock.ModelClock`. Rules
drive the real bridge (several, one through a fault-injecting proxy on network rigs), maintenance (``fsck``, ``gc``,
``migrate``), the command line (in process, through ``tierstore.cli.app.main``), a child process and a fork, and
damage the store behind tierstore's back. After every step :meth:`StoreMachine.check` holds the store to the model:
nothing deleted comes back, no id is issued twice, a loaded page is the page stored under its id or an error,
``get_metadata`` agrees with it, every listed checkpoint restores exactly unless the model knows what broke it (and
then ``fsck`` names it), and no foreign file changed.

Known bugs that other helpers are fixing are switched off by name in :data:`PENDING_FIXES` (see ``FOUND.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.environment import environment
from tests.model.clock import ModelClock
from tests.model.damage import (
    CLOUD_FOREIGN,
    DISK_FOREIGN,
    DISK_ONLY_DAMAGE,
    OBJECT_DAMAGE,
    damage_file,
    damage_object,
    make_foreign,
    object_path,
    snapshot,
)
from tests.model.lookups import LookupRules
from tests.model.repairs import RepairRules
from tests.model.scoped import ScopedRules
from tests.model.world import Artifact, Checkpoint, World, identity
from tests.rigs import load
from tests.wrappers import MoveAt
from tierstore import ArtifactsBridge, MemoryPage, Modality, StorageTier, ids, maintenance
from tierstore.backends.base import StorageBackend
from tierstore.backends.memory import InMemoryBackend
from tierstore.codec import PLAIN
from tierstore.errors import (
    ArchivedPageError,
    BackendUnavailableError,
    IntegrityError,
    InUseError,
    InvalidInputError,
    ObjectNotFoundError,
    TierstoreError,
)
from tierstore.protocol import DEFAULT_LEASE_TTL, UNREADABLE_LEASE_TTL

T = TypeVar("T")

PENDING_FIXES: set[str] = set()
"""Rules and damage kinds switched off until the helper who owns them lands the fix (named in FOUND.md)."""
if os.environ.get("TIERSTORE_MODEL_ALL_RULES"):
    PENDING_FIXES.clear()  # to see whether a pending fix has landed
    PENDING_FIXES.update(filter(None, os.environ.get("TIERSTORE_MODEL_PENDING", "").split(",")))

TIERS = (StorageTier.L2, StorageTier.L3, StorageTier.L4)
HOSTILE_TEXT = st.sampled_from(
    [
        "..",
        ".",
        "../../etc/passwd",
        "a/b",
        "a\\b",
        "nul\x00here",
        "tab\there",
        "\u202eevil\u202c",
        "cafe\u0301",
        "caf\u00e9",
        "x" * 1025,
        "€" * 400,
        " ",
        "mem_L3_1",
        "ckpt_20260101T000000000000_00000000",
        "%2e%2e%2f",
    ]
)
CHILD_SEQUENCES = 2
"""How many sequences of a run may start a child process, or on a cloud run the command line (each costs a second
or two of start-up)."""
STEP_TIMEOUT = 120.0
"""Seconds one step may take before the machine calls it a hang."""

RULES_FIRED: dict[str, Counter[str]] = {}
"""Per rig: how often each rule ran, over the session (for the README's figures)."""


@dataclass(frozen=True)
class Traits:
    """What a rig can do."""

    archives_l4: bool
    disk: bool = False
    processes: bool = False
    network: bool = False
    cli: bool = False
    store_time_moves: bool = True
    """The machine can let the store's time pass (its own clock in memory, file times on disk); an emulator
    keeps its own."""
    tier_moves: bool = True
    """``set_tier`` changes the storage class the store reports (fake-gcs-server keeps the class it was written
    with: /work/shared/notes/emulators.md)."""
    full_checks: bool = True
    """Check every artifact and checkpoint after every step (else a sample, and everything at teardown)."""


TRAITS: dict[str, Traits] = {
    "memory": Traits(archives_l4=True),
    "filesystem": Traits(archives_l4=False, disk=True, processes=True, cli=True),
    "s3_moto": Traits(
        archives_l4=True, processes=True, network=True, cli=True, full_checks=False, store_time_moves=False
    ),
    "gcs": Traits(
        archives_l4=False,
        processes=True,
        network=True,
        cli=True,
        full_checks=False,
        store_time_moves=False,
        tier_moves=False,
    ),
    "azure": Traits(
        archives_l4=True, processes=True, network=True, cli=True, full_checks=False, store_time_moves=False
    ),
}


def new_page(page_id: str, content: str | bytes, tier: StorageTier = StorageTier.L1) -> MemoryPage:
    modality = Modality.IMAGE if isinstance(content, bytes) else Modality.TEXT
    return MemoryPage(page_id=page_id, modality=modality, content=content, storage_tier=tier)


class Lost(Exception):
    """An operation whose outcome is unknown: cancelled, or failed on a faulty network."""


def machine_for(rig: str, server: Any, workdir: Path, examples_seen: Counter[str]) -> type[RuleBasedStateMachine]:
    traits = TRAITS[rig]
    module = load(rig)
    fired = RULES_FIRED.setdefault(rig, Counter())

    class StoreMachine(ScopedRules, LookupRules, RepairRules, RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            examples_seen[rig] += 1
            self.number = examples_seen[rig]
            self.loop = asyncio.new_event_loop()
            self.clock = ModelClock(store_time_moves=traits.store_time_moves)
            self.rng = random.Random(self.number)
            self.memory: dict[int, InMemoryBackend] = {}
            self.spec = self.new_store()
            self.specs = [self.spec]
            self.world = World(archives_l4=traits.archives_l4)
            self.bridges: list[ArtifactsBridge] = [self._bridge()]
            self.faulty: ArtifactsBridge | None = None
            self.proxy: Any = None
            self.destination: tuple[dict[str, Any], StorageBackend] | None = None
            self.working = [new_page(f"w{i}", f"working page {i} v0") for i in range(4)]
            self.version = 0
            self.watched: list[Path] = []
            self.foreign_keys: dict[str, bytes] = {}
            self.before: dict[Path, tuple[str, int, str]] = {}
            self.lease_dead_at = timedelta(0)
            self.manifest_problems: set[str] = set()
            self.children = 0
            self.checks = 0
            self.store_time_moves = traits.store_time_moves
            self.blocks_lost = False
            """Block records were lost: ids stay unique within a scope, not across scopes (README: Scopes)."""

        # -- plumbing ------------------------------------------------------------------------------------------

        def new_store(self) -> dict[str, Any]:
            if rig == "memory":  # a store on the machine's store clock
                self.memory[len(self.memory)] = InMemoryBackend(archive_tiers=[StorageTier.L4], clock=self.clock.store)
                return {"store": len(self.memory) - 1}
            spec: dict[str, Any] = server.new_store()
            if traits.disk:
                Path(spec["root"]).mkdir(parents=True)  # an empty directory is an empty store
                self.clock.disk_roots.append(Path(spec["root"]))
            return spec

        def open_backend(self, spec: dict[str, Any]) -> StorageBackend:
            if rig == "memory":
                return self.memory[spec["store"]]
            backend: StorageBackend = module.open_backend(spec)
            return backend

        def _bridge(self, spec: dict[str, Any] | None = None) -> ArtifactsBridge:
            return ArtifactsBridge(backend=self.open_backend(spec or self.spec), clock=self.clock.host)

        @property
        def root(self) -> Path:
            return Path(self.spec["root"])

        @property
        def bridge(self) -> ArtifactsBridge:
            return self.bridges[0]

        def run(self, awaitable: Awaitable[T], timeout: float = STEP_TIMEOUT) -> T:
            async def bounded() -> T:
                return await asyncio.wait_for(awaitable, timeout)

            return self.loop.run_until_complete(bounded())

        def attempt(self, make: Callable[[], Coroutine[Any, Any, T]], cancel_after: int | None, faulty: bool) -> T:
            """Run one operation; :class:`Lost` when it was cancelled before it finished, or failed on the faulty
            network (a typed BackendUnavailableError). Anything else propagates."""
            if cancel_after is None:
                try:
                    return self.run(make())
                except BackendUnavailableError as exc:
                    if faulty:
                        raise Lost(str(exc)) from exc
                    raise
            task = self.loop.create_task(make())
            for _ in range(cancel_after):
                if task.done():
                    break
                self.loop.run_until_complete(asyncio.sleep(0))
            task.cancel()
            try:
                return self.run(task)
            except asyncio.CancelledError:
                raise Lost("cancelled") from None

        def pick_bridge(self, index: int, faulty: bool) -> ArtifactsBridge:
            if faulty and self.faulty is not None:
                return self.faulty
            return self.bridges[index % len(self.bridges)]

        def pick(self, keys: list[str], index: int) -> str | None:
            return keys[index % len(keys)] if keys else None

        def pending(self, reason: str) -> bool:
            return reason in PENDING_FIXES

        def note(self, name: str) -> None:
            fired[name] += 1

        # -- rules: pages ------------------------------------------------------------------------------------------

        @initialize()
        def begin(self) -> None:
            """Every sequence starts with something to work on: two stored pages and a checkpoint of the working set."""
            for i, tier in enumerate((StorageTier.L3, StorageTier.L2)):
                page = new_page(f"start{i}", f"stored at the start {i}")
                self.world.stored(self.run(self.bridge.store_page(page, tier)), page, tier)
            pages = [p.model_copy(deep=True) for p in self.working]
            self.adopt_checkpoint(self.run(self.bridge.checkpoint(self.working, name="start")), pages, self.bridge)

        @rule(
            which=st.integers(0, 7),
            content=st.one_of(st.text(max_size=40), st.binary(max_size=64)),
            tier=st.sampled_from([None, *TIERS]),
            page_id=st.one_of(st.sampled_from(["p", "notes", "w0"]), HOSTILE_TEXT),
            cancel=st.one_of(st.none(), st.integers(0, 30)),
            faulty=st.booleans(),
        )
        def store(
            self,
            which: int,
            content: str | bytes,
            tier: StorageTier | None,
            page_id: str,
            cancel: int | None,
            faulty: bool,
        ) -> None:
            self.note("store" if cancel is None else "store-cancelled")
            page = new_page(page_id, content)
            bridge = self.pick_bridge(which, faulty)
            try:
                key = self.attempt(lambda: bridge.store_page(page, tier), cancel, bridge is self.faulty)
            except InvalidInputError:
                self.note("store-refused")
                return
            except Lost:
                self.world.attempted_pages.append(page.model_copy(deep=True))
                return
            assert key.startswith(f"mem_{(tier or StorageTier.L3).value}_"), key
            self.world.stored(key, page, tier or StorageTier.L3)

        @rule(which=st.integers(0, 10**6), bridge=st.integers(0, 7))
        def load(self, which: int, bridge: int) -> None:
            key = self.pick(sorted(self.world.artifacts), which)
            if key is None:
                return
            self.note("load")
            self.check_artifact(self.world.artifacts[key], self.pick_bridge(bridge, False))

        @rule(
            which=st.integers(0, 10**6),
            bridge=st.integers(0, 7),
            cancel=st.one_of(st.none(), st.integers(0, 30)),
            faulty=st.booleans(),
        )
        def delete_page(self, which: int, bridge: int, cancel: int | None, faulty: bool) -> None:
            key = self.pick(sorted(self.world.artifacts), which)
            if key is None:
                return
            self.note("delete_page" if cancel is None else "delete_page-cancelled")
            artifact = self.world.artifacts[key]
            chosen = self.pick_bridge(bridge, faulty)
            try:
                deleted = self.attempt(lambda: chosen.delete_page(key), cancel, chosen is self.faulty)
            except Lost:
                if artifact.state == "present":
                    artifact.state = "uncertain"
                return
            except IntegrityError:
                # on disk a directory with files in it at the key is not tierstore's: refused and kept (README)
                assert (artifact.state, artifact.damage) == ("damaged", "directory"), f"delete_page({key}): {artifact}"
                return
            if artifact.state == "present":
                assert deleted is True, f"delete_page({key}) of a present page returned {deleted}"
            elif artifact.state == "gone":
                assert deleted is False, f"delete_page({key}) of a deleted page returned {deleted}"
            elif artifact.state == "damaged" and artifact.damage not in ("remove",):
                assert deleted is True, f"delete_page({key}) of a damaged ({artifact.damage}) page returned {deleted}"
            artifact.state = "gone"

        @rule(
            which=st.integers(0, 10**6),
            tier=st.sampled_from(TIERS),
            bridge=st.integers(0, 7),
            cancel=st.one_of(st.none(), st.integers(0, 30)),
        )
        def set_tier(self, which: int, tier: StorageTier, bridge: int, cancel: int | None) -> None:
            key = self.pick(sorted(self.world.artifacts), which)
            if key is None:
                return
            self.note("set_tier" if cancel is None else "set_tier-cancelled")
            chosen = self.pick_bridge(bridge, False)
            self.judge_set_tier(key, tier, lambda: self.attempt(lambda: chosen.set_tier(key, tier), cancel, False))

        def judge_set_tier(self, key: str, tier: StorageTier, call: Callable[[], object]) -> str:
            """Run a ``set_tier`` of ``key`` and hold its outcome to the model; returns what happened."""
            artifact = self.world.artifacts[key]
            try:
                call()
            except Lost:
                artifact.tier_known = False
                return "lost"
            except InUseError:
                # only while a checkpoint runs, or a cancelled one's lease may live
                assert self.running_checkpoint or self.world.leases_may_live, f"set_tier({key}): in use by nothing"
                return "refused"
            except ObjectNotFoundError:
                assert artifact.state != "present", f"set_tier({key}) of a present page: not found"
                if artifact.state == "uncertain":
                    artifact.state = "gone"
                return "absent"
            except ArchivedPageError:
                assert self.world.archived(artifact) or not artifact.tier_known, f"set_tier({key}): archived"
                return "archived"
            except IntegrityError:
                assert artifact.state == "damaged", f"set_tier({key}) of a healthy page: IntegrityError"
                return "damaged"
            assert artifact.state != "gone", f"set_tier({key}) of a deleted page succeeded"
            self.moved(artifact, tier)
            return "landed"

        def moved(self, artifact: Artifact, tier: StorageTier) -> None:
            """A tier change of ``artifact`` to ``tier`` landed. Setting the tier a page has keeps its restored copy;
            another tier drops it. Where a move whose answer was lost may have taken a restored page out of its
            tier, whether the copy survived is unknown: the tier stays unknown, which allows archived or readable."""
            if artifact.restored and artifact.tier == tier and not artifact.tier_known:
                return
            if artifact.tier != tier:
                artifact.restored = False
            artifact.tier, artifact.tier_known = tier, True

        running_checkpoint = False

        @rule(
            mask=st.integers(1, 15),
            at=st.integers(1, 24),
            which=st.integers(0, 10**6),
            tier=st.sampled_from(TIERS),
        )
        def set_tier_during_checkpoint(self, mask: int, at: int, which: int, tier: StorageTier) -> None:
            """Another bridge moves an artifact (one the checkpoint may reuse, when there is one) to another tier
            just before the checkpoint's ``at``-th storage call: the checkpoint, if listed, names every artifact in
            the tier its manifest says (adopt_checkpoint checks it)."""
            pages = [p for i, p in enumerate(self.working) if mask & (1 << i)]
            wanted = [identity(p) for p in pages]
            candidates = sorted(
                k
                for k, a in self.world.artifacts.items()
                if a.state == "present" and a.checkpoint_owned and identity(a.page) in wanted
            ) or sorted(k for k, a in self.world.artifacts.items() if a.state == "present")
            key = self.pick(candidates, which)
            if key is None:
                return
            self.note("set_tier_during_checkpoint")
            outcomes: list[str] = []

            async def judged_move() -> str:
                failure: TierstoreError | None = None
                try:
                    await self.bridge.set_tier(key, tier)
                except TierstoreError as exc:
                    failure = exc

                def replay() -> None:
                    if failure is not None:
                        raise failure

                outcomes.append(self.judge_set_tier(key, tier, replay))
                return outcomes[-1]

            attacked = MoveAt(self.open_backend(self.spec), at, judged_move)
            writer = ArtifactsBridge(backend=attacked, clock=self.clock.host)
            snapshot_pages = [p.model_copy(deep=True) for p in pages]
            self.running_checkpoint = True
            try:
                checkpoint = self.run(writer.checkpoint(pages, name="raced"))
            finally:
                self.running_checkpoint = False
                if rig != "memory":
                    self.run(writer.aclose())
            self.note(f"set_tier_during_checkpoint-{outcomes[-1] if outcomes else 'after'}")
            self.adopt_checkpoint(checkpoint, snapshot_pages, self.bridge)

        @precondition(lambda self: traits.archives_l4)
        @rule(which=st.integers(0, 10**6))
        def restore_page(self, which: int) -> None:
            key = self.pick(sorted(k for k, a in self.world.artifacts.items() if self.world.archived(a)), which)
            if key is None:
                return
            self.note("restore_page")
            artifact = self.world.artifacts[key]
            try:
                status = self.run(self.bridge.restore_page(key))
            except ObjectNotFoundError:
                assert artifact.state != "present", f"restore_page({key}) of a present page: not found"
                return
            # an uncertain page (its deletion was lost) that restore found is there, restored like a present one
            if status.state == "restored" and artifact.state in ("present", "uncertain"):
                if rig.startswith("azure"):
                    # rehydrated in place into L3's access tier for good, which head reports (docs/azure.md): a
                    # set_tier(L4) after it archives the blob again
                    artifact.tier, artifact.tier_known = StorageTier.L3, True
                    return
                artifact.restored = True
                artifact.restored_until = self.clock.passed + timedelta(days=1) - timedelta(minutes=1)

        @rule(
            page_id=HOSTILE_TEXT,
            call=st.sampled_from(["load_page", "get_metadata", "delete_page", "set_tier", "restore_checkpoint"]),
        )
        def hostile_id(self, page_id: str, call: str) -> None:
            """An id that is no artifact or checkpoint of this store: refused or absent, never anything else."""
            if page_id in self.world.artifacts or page_id in self.world.checkpoints:
                return  # "mem_L3_1" may be a real id here
            self.note("hostile_id")
            before = self.run(self.bridge.list_pages())
            try:
                if call == "set_tier":
                    self.run(self.bridge.set_tier(page_id, StorageTier.L4))
                    result: object = "succeeded"
                elif call == "restore_checkpoint":
                    result = self.run(self.bridge.restore_checkpoint(page_id))
                else:
                    result = self.run(getattr(self.bridge, call)(page_id))
            except (InvalidInputError, ObjectNotFoundError):
                result = None
            assert result in (None, False), f"{call}({page_id!r}) returned {result!r}"
            assert self.run(self.bridge.list_pages()) == before

        # -- rules: the agent's working set and checkpoints --------------------------------------------------

        @rule(
            index=st.integers(0, 3),
            change=st.sampled_from(["content", "touch", "tier"]),
            tier=st.sampled_from([StorageTier.L1, *TIERS]),
        )
        def edit(self, index: int, change: str, tier: StorageTier) -> None:
            self.note(f"edit-{change}")
            page = self.working[index]
            if change == "content":
                self.version += 1
                page.content = f"working page {index} v{self.version}"
            elif change == "touch":
                page.access_count += 1
                page.last_accessed = datetime.now(UTC)
            else:
                page.storage_tier = tier

        @rule(
            mask=st.integers(1, 15),
            bridge=st.integers(0, 7),
            name=st.one_of(st.just("session"), HOSTILE_TEXT),
            cancel=st.one_of(st.none(), st.integers(0, 60)),
            faulty=st.booleans(),
        )
        def checkpoint(self, mask: int, bridge: int, name: str, cancel: int | None, faulty: bool) -> None:
            pages = [p for i, p in enumerate(self.working) if mask & (1 << i)]
            for page in pages:
                hazard = self.world.reuse_hazard(page)
                if hazard is not None and self.pending(hazard):
                    self.version += 1  # the pending bug's path stays switched off: this page is uploaded anew
                    page.content = f"{page.page_id} v{self.version} (avoiding {hazard})"
            chosen = self.pick_bridge(bridge, faulty)
            snapshot_pages = [p.model_copy(deep=True) for p in pages]
            self.note("checkpoint" if cancel is None else "checkpoint-cancelled")
            try:
                key = self.attempt(lambda: chosen.checkpoint(pages, name=name), cancel, chosen is self.faulty)
            except InvalidInputError:
                self.note("checkpoint-refused")
                return
            except Lost:
                self.world.attempted_checkpoints.append(("", snapshot_pages))
                self.world.attempted_pages.extend(snapshot_pages)
                self.world.leases_may_live = True
                self.lease_dead_at = max(
                    self.lease_dead_at, self.clock.passed + DEFAULT_LEASE_TTL + timedelta(minutes=1)
                )
                return
            self.adopt_checkpoint(key, snapshot_pages, self.bridge)

        def adopt_checkpoint(self, key: str, pages: list[MemoryPage], bridge: ArtifactsBridge) -> None:
            manifest = self.run(bridge.get_checkpoint_manifest(key))
            assert manifest is not None, f"checkpoint {key} has no manifest"
            assert [e.page_id for e in manifest.pages] == [p.page_id for p in pages]
            artifacts: list[str] = []
            for entry, page in zip(manifest.pages, pages, strict=True):
                known = self.world.artifacts.get(entry.artifact_id)
                tier = StorageTier(entry.tier)
                if known is None:
                    self.world.issue(entry.artifact_id)
                    self.world.artifacts[entry.artifact_id] = Artifact(
                        entry.artifact_id, page.model_copy(deep=True), tier, exact=False, checkpoint_owned=True
                    )
                else:
                    assert known.checkpoint_owned, f"{key} names {entry.artifact_id}, a store_page artifact"
                    assert identity(known.page) == identity(page), f"{key} reuses {entry.artifact_id}: another page"
                    # an uncertain one (a deletion of it was lost) may be reused if it is there: the proof reads it
                    # and one whose tier a lost set_tier left unknown, if the proof found it in the entry's tier
                    tier_ok = (known.tier == tier and known.tier_known) or not known.tier_known
                    # fake-gcs-server keeps the class a set_tier asked to change (Traits.tier_moves): the store
                    # reports, and the proof finds, the tier it was written in
                    tier_ok = tier_ok or not traits.tier_moves
                    sound = known.state in ("present", "uncertain") and tier_ok
                    if sound:
                        known.state, known.tier, known.tier_known = "present", tier, True
                    assert sound, (
                        f"{key} reuses {entry.artifact_id}, which is {known.state} ({known.damage or 'no damage'}), "
                        f"tier {known.tier.value} (known: {known.tier_known}) where the manifest says {tier.value}"
                    )
                artifacts.append(entry.artifact_id)
            self.world.checkpoints[key] = Checkpoint(key, pages, artifacts)

        @rule(
            which=st.integers(0, 10**6),
            bridge=st.integers(0, 7),
            cancel=st.one_of(st.none(), st.integers(0, 60)),
            faulty=st.booleans(),
        )
        def delete_checkpoint(self, which: int, bridge: int, cancel: int | None, faulty: bool) -> None:
            key = self.pick(sorted(self.world.checkpoints), which)
            if key is None:
                return
            self.note("delete_checkpoint" if cancel is None else "delete_checkpoint-cancelled")
            checkpoint = self.world.checkpoints[key]
            chosen = self.pick_bridge(bridge, faulty)
            try:
                deleted = self.attempt(lambda: chosen.delete_checkpoint(key), cancel, chosen is self.faulty)
            except Lost:
                if checkpoint.listed:
                    self.unsure_of(checkpoint)
                return
            except IntegrityError:
                # another checkpoint's manifest is damaged: this manifest went, its artifacts stay for gc
                assert self.manifest_problems, f"delete_checkpoint({key}): IntegrityError with no damaged manifest"
                self.unsure_of(checkpoint)
                return
            if checkpoint.listed and not checkpoint.uncertain:
                assert deleted, f"delete_checkpoint({key}) of a listed checkpoint returned False"
            self.forget_checkpoint(checkpoint)

        def unsure_of(self, checkpoint: Checkpoint) -> None:
            """Its deletion may or may not have happened, in part or in whole."""
            checkpoint.uncertain = True
            others = {a for c in self.world.listed_checkpoints() if c is not checkpoint for a in c.artifacts}
            for key in checkpoint.artifacts:
                if key not in others and self.world.artifacts[key].state == "present":
                    self.world.artifacts[key].state = "uncertain"

        def forget_checkpoint(self, checkpoint: Checkpoint) -> None:
            was_damaged = checkpoint.manifest_damaged
            checkpoint.listed = False
            checkpoint.uncertain = False
            self.manifest_problems.discard(checkpoint.key)
            if was_damaged:
                # What it named is unknown to the deleter: left for gc, which takes those written for it.
                for key in checkpoint.artifacts:
                    if key not in self.world.referenced() and self.world.artifacts[key].state == "present":
                        self.world.artifacts[key].state = "uncertain"
            else:
                self.world.unreferenced_after_delete(checkpoint.artifacts)

        # -- rules: maintenance and time -----------------------------------------------------------------------

        @rule(by=st.sampled_from([timedelta(0), timedelta(minutes=15), timedelta(hours=2), timedelta(days=8)]))
        def advance_clock(self, by: timedelta) -> None:
            self.note("advance_clock")
            self.clock.advance(by)
            for artifact in self.world.artifacts.values():
                if artifact.restored and traits.store_time_moves and self.clock.passed >= artifact.restored_until:
                    artifact.restored = False  # the restored copy expired (or is about to)
            if traits.store_time_moves and self.clock.passed >= self.lease_dead_at:
                self.world.leases_may_live = False

        def after_waiting(self) -> None:
            self.advance_clock(timedelta(0))  # the bookkeeping of time that passed inside a call

        @rule(wrong_by=st.sampled_from([timedelta(days=-365), timedelta(hours=-2), timedelta(0), timedelta(days=3)]))
        def skew_host_clock(self, wrong_by: timedelta) -> None:
            """The host's wall clock goes wrong (or right again): it may delay clean-up, never lose data."""
            self.note("skew_host_clock")
            self.clock.skew(wrong_by)

        @rule(
            grace=st.sampled_from([timedelta(0), timedelta(hours=1)]),
            via=st.sampled_from(["library", "cli"]),
            cancel=st.one_of(st.none(), st.integers(0, 40)),
        )
        def gc(self, grace: timedelta, via: str, cancel: int | None) -> None:
            if via == "cli" and self.cli_allowed and cancel is None:
                self.note("gc-cli")
                code, out = self.cli("gc", "--grace", f"{int(grace.total_seconds())}s", "--json")
                if self.manifest_problems:
                    assert code in (0, 4), out
                else:
                    assert code == 0, out
                if code == 0:
                    self.collected(json.loads(out)["orphans_deleted"])
                return
            self.note("gc" if cancel is None else "gc-cancelled")
            try:
                report = self.attempt(
                    lambda: maintenance.gc(self.bridge, grace=grace, clock=self.clock.host), cancel, False
                )
            except Lost:
                return
            except IntegrityError:
                assert self.manifest_problems, "gc: IntegrityError with no damaged manifest"
                return
            self.collected(report.orphans_deleted)

        def collected(self, keys: list[str]) -> None:
            for key in keys:
                artifact = self.world.artifacts.get(key)
                if artifact is None:
                    continue  # an orphan the model never saw (a cancelled checkpoint's)
                assert artifact.state in ("uncertain", "damaged"), f"gc deleted {key}, which is {artifact.state}"
                artifact.state = "gone"

        @rule(via=st.sampled_from(["library", "cli"]))
        def fsck(self, via: str) -> None:
            self.note(f"fsck-{via}")
            if via == "cli" and self.cli_allowed:
                code, out = self.cli("fsck", "--json")
                report = json.loads(out)
                problems = {p["key"] for p in report["problems"]}
                orphans = {o["key"] for o in report["orphans"]}
                archived = set(report["archived"])
                assert code == (1 if problems else 0), out
            else:
                found = self.run(maintenance.fsck(self.bridge, clock=self.clock.host))
                problems = {p.key for p in found.problems}
                orphans = {o.key for o in found.orphans}
                archived = set(found.archived)
            self.judge_fsck(problems, orphans, archived)

        def judge_fsck(self, problems: set[str], orphans: set[str], archived: set[str]) -> None:
            readable = [c for c in self.world.listed_checkpoints() if not c.manifest_damaged]
            referenced = {a for c in readable for a in c.artifacts}  # what fsck can know is referenced
            must, may = set(self.manifest_problems), set(self.manifest_problems)
            for key, artifact in self.world.artifacts.items():
                if artifact.state == "damaged":
                    may.add(key)
                    in_archive = traits.archives_l4 and (artifact.tier == StorageTier.L4 or not artifact.tier_known)
                    if (key in referenced or artifact.damage not in ("remove",)) and not in_archive:
                        must.add(key)  # corrupt, or missing while a checkpoint names it (an archived one is unread)
                elif artifact.state == "gone" and key in referenced:
                    must.add(key)
                    may.add(key)
                elif artifact.state == "uncertain" and key in referenced:
                    may.add(key)
                if artifact.state == "present":
                    assert key not in orphans, f"fsck calls {key} an orphan, but it is {artifact.state}"
            for checkpoint in self.world.checkpoints.values():
                if checkpoint.uncertain:
                    may.update(checkpoint.artifacts)
            may |= set(self.foreign_keys) | {k for k in problems if k not in self.world.artifacts}
            missing = must - problems
            # a removed (damaged) page nobody names is simply absent: not required
            assert not missing, f"fsck does not name {sorted(missing)}; it names {sorted(problems)}"
            unexpected = problems - may
            assert not unexpected, f"fsck names {sorted(unexpected)} that nothing damaged"
            for key in archived:
                described = self.world.artifacts.get(key)
                assert described is None or described.tier == StorageTier.L4 or not described.tier_known, key

        @rule(via=st.sampled_from(["library", "cli"]))
        def migrate(self, via: str) -> None:
            if self.destination is None:
                spec = self.new_store()
                self.specs.append(spec)
                self.destination = (spec, self.open_backend(spec))
            spec, destination = self.destination
            if via == "cli" and self.cli_allowed:
                self.note("migrate-cli")
                _code, out = self.cli("migrate", self.url(), self.url(spec), "--json")
                report = json.loads(out)
                assert "problems" in report, f"tierstore migrate failed: {out}"
                problems = {p["key"] for p in report["problems"]}
                archived = set(report["archived"])
            else:
                self.note("migrate")
                found = self.run(maintenance.migrate(self.bridge.backend, destination))  # type: ignore[arg-type]
                problems, archived = {p.key for p in found.problems}, set(found.archived)
            self.judge_migrate(destination, problems, archived)

        def judge_migrate(self, destination: StorageBackend, problems: set[str], archived: set[str]) -> None:
            assert problems.isdisjoint(self.foreign_keys), f"migrate reports the user's own {sorted(problems)}"
            copy = ArtifactsBridge(backend=destination, clock=self.clock.host)
            listed = set(self.run(copy.list_pages()))
            for key, artifact in self.world.artifacts.items():
                in_archive = self.world.archives_l4 and artifact.tier == StorageTier.L4  # restored copies stay behind
                if artifact.state == "present" and key not in archived and not in_archive:
                    if key in problems:
                        assert self.dest_damaged, f"migrate reports {key}, which is healthy"
                        continue
                    assert key in listed, f"migrate left {key} behind"
                    try:
                        self.expect_page(artifact, self.run(copy.load_page(key)), f"the copy of {key}")
                    except ArchivedPageError:
                        # copied while it was archived; a later migrate skips a copy whose bytes are the same
                        assert traits.archives_l4, f"the copy of {key} is archived"
            copied = set(self.run(copy.list_checkpoints()))
            for checkpoint in self.world.listed_checkpoints():
                if self.world.restorable(checkpoint) and not self.dest_damaged:
                    assert checkpoint.key in copied, f"migrate left checkpoint {checkpoint.key} behind"
            for key in copied:
                try:
                    self.run(copy.restore_checkpoint(key))
                except IntegrityError:
                    assert self.dest_damaged, f"the copy of checkpoint {key} does not restore"
                except ArchivedPageError:
                    assert traits.archives_l4, f"the copy of checkpoint {key} is archived"

        dest_damaged = False

        @precondition(lambda self: self.destination is not None and not self.pending("migrate-resume-damaged"))
        @rule(which=st.integers(0, 10**6), data=st.data())
        def damage_destination(self, which: int, data: st.DataObject) -> None:
            assert self.destination is not None
            spec, destination = self.destination
            keys = sorted(
                k
                for k in self.run(ArtifactsBridge(backend=destination).list_pages())
                if k in self.world.artifacts
                and not (traits.archives_l4 and self.world.artifacts[k].tier == StorageTier.L4)
            )
            key = self.pick(keys, which)
            if key is None:
                return
            self.note("damage_destination")
            if traits.disk:
                damage_file(object_path(Path(spec["root"]), key), "flip", self.rng, None)
            else:
                try:
                    self.run(damage_object(destination, key, "flip", self.rng, None))
                except ArchivedPageError:
                    return  # copied while archived: the raw read cannot reach it
            self.dest_damaged = True

        # -- rules: damage and foreign files ------------------------------------------------------------------

        @rule(
            which=st.integers(0, 10**6),
            other=st.integers(0, 10**6),
            kind=st.sampled_from(OBJECT_DAMAGE + DISK_ONLY_DAMAGE),
            manifest=st.booleans(),
        )
        def damage(self, which: int, other: int, kind: str, manifest: bool) -> None:
            if kind in DISK_ONLY_DAMAGE and not traits.disk:
                return
            if self.pending(f"damage-{kind}"):
                return
            if manifest:
                self.damage_manifest(which, kind)
                return
            # what is there as a regular file (or object) to damage: healthy, or damaged in its bytes only
            regular = ("", "flip", "truncate", "extend", "swap")
            live = sorted(
                k
                for k, a in self.world.artifacts.items()
                if a.state == "present" or (a.state == "damaged" and a.damage in regular)
            )
            # an archive-tier object rewritten by the raw calls is archived anew, restored or not: left alone
            live = [k for k in live if not (traits.archives_l4 and self.world.artifacts[k].tier == StorageTier.L4)]
            key = self.pick(live, which)
            if key is None:
                return
            others = [k for k in live if k != key]
            partner = self.pick(others, other)
            if kind in ("swap", "symlink") and partner is None:
                return
            self.note(f"damage-{kind}")
            if traits.disk:
                target = object_path(self.root, partner) if partner else None
                damage_file(object_path(self.root, key), kind, self.rng, target)
            else:
                self.run(damage_object(self.bridge.backend, key, kind, self.rng, partner))  # type: ignore[arg-type]
            for hit in [key, partner] if kind == "swap" else [key]:
                assert hit is not None
                self.world.artifacts[hit].state = "damaged"
                self.world.artifacts[hit].damage = "remove" if kind == "remove" else kind

        def damage_manifest(self, which: int, kind: str) -> None:
            listed = sorted(c.key for c in self.world.listed_checkpoints() if not c.uncertain)
            key = self.pick(listed, which)
            if key is None or kind not in ("flip", "truncate", "extend"):
                return
            self.note(f"damage-manifest-{kind}")
            if traits.disk:
                damage_file(object_path(self.root, key), kind, self.rng, None)
            else:
                self.run(damage_object(self.bridge.backend, key, kind, self.rng, None))  # type: ignore[arg-type]
            self.world.checkpoints[key].manifest_damaged = True
            self.manifest_problems.add(key)
            # Each bridge keeps the manifests it read: a fresh one sees the damage.
            old, self.bridges = self.bridges, [self._bridge() for _ in self.bridges]
            for bridge in old:  # closed, not dropped: a dropped cloud backend leaves its client's keeper task
                self.run(bridge.aclose())

        @rule(
            record=st.sampled_from(["lease", "tomb"]),
            how=st.sampled_from(["garbage", "other-frame", "directory", "fifo", "symlink"]),
        )
        def damage_record(self, record: str, how: str) -> None:
            """A lease or tomb that cannot be read stands in the store (issue 21): nothing stops, fsck names it, and an
            unreadable lease protects everything (set_tier refused, gc and sweeps keep all) until it expires."""
            if how in ("directory", "fifo", "symlink") and not traits.disk:
                return
            self.note(f"damage_record-{record}-{how}")
            now = self.clock.host.now()
            if record == "lease":
                key = ids.INTENT_PREFIX + ids.timestamped(ids.CHECKPOINT_PREFIX, now)
            else:
                key = ids.timestamped(ids.TOMB_PREFIX, now) + "_d"
            backend: StorageBackend = self.bridge.backend  # type: ignore[assignment]
            if how == "garbage":
                self.run(backend.put(key, b"not a frame"))
            elif how == "other-frame":
                self.run(backend.put(key, PLAIN.encode_record(key + "x", {"state": "deleted"}).data))
            else:
                self.run(self.bridge.list_pages())  # the store's directories exist
                path = object_path(self.root, key)
                path.parent.mkdir(parents=True, exist_ok=True)
                if how == "directory":
                    path.mkdir()
                elif how == "fifo":
                    os.mkfifo(path)
                else:
                    path.symlink_to(workdir / f"nothing-here{self.number}")
            if record == "lease":
                self.world.leases_may_live = True
                ends = self.clock.passed + UNREADABLE_LEASE_TTL + timedelta(minutes=1)
                self.lease_dead_at = max(self.lease_dead_at, ends)

        @rule(newest_only=st.booleans())
        def lose_block_records(self, newest_only: bool) -> None:
            """A new bridge stores and deletes a page, then ``alloc_`` block records are lost (the newest of each
            tier, or all but the oldest): a bridge opened after never issues an id issued before, which a page, tomb,
            lease or manifest may still name (issue 21 item 14; the world asserts no id is issued twice)."""
            backend: StorageBackend = self.bridge.backend  # type: ignore[assignment]
            deleting = self._bridge()
            page = new_page("lost-block", "stored by a bridge whose block record is lost")
            key = self.run(deleting.store_page(page))
            self.world.stored(key, page, StorageTier.L3)
            assert self.run(deleting.delete_page(key))
            self.world.gone(key)
            self.run(deleting.aclose())
            tombs, _ = self.run(self.bridge.references("model").tombs())
            named = {e.key for e in self.run(_listed(backend, ids.PAGE_PREFIX))}.union(*(t.artifacts for t in tombs))
            if not self.world.issued <= named:  # a tomb pruned: its id may come again, as README says
                self.note("lose_block_records-skipped")
                return
            self.note(f"lose_block_records-{'newest' if newest_only else 'all-but-oldest'}")
            records = sorted(
                (parsed, e.key)
                for e in self.run(_listed(backend, ids.ALLOC_PREFIX))
                if (parsed := ids.parse_alloc_key(e.key)) is not None
            )
            lost: list[str] = []
            for tier in {parsed[0] for parsed, _ in records}:
                of_tier = [key for parsed, key in records if parsed[0] == tier]
                lost += of_tier[-1:] if newest_only else of_tier[1:]
            for key in lost:
                self.run(backend.delete(key))
            self.blocks_lost = self.blocks_lost or bool(lost)
            old, self.bridges = self.bridges, [self._bridge() for _ in self.bridges]
            for bridge in old:
                self.run(bridge.aclose())
            page = new_page("after-loss", "stored once block records were lost")
            self.world.stored(self.run(self.bridge.store_page(page)), page, StorageTier.L3)

        @rule(kind=st.sampled_from(DISK_FOREIGN + CLOUD_FOREIGN))
        def foreign(self, kind: str) -> None:
            if traits.disk:
                if kind not in DISK_FOREIGN or self.pending(f"foreign-{kind}"):
                    return
                self.note(f"foreign-{kind}")
                self.run(self.bridge.list_pages())  # the store's directories exist
                self.root.joinpath("objects").mkdir(parents=True, exist_ok=True)
                self.watched += make_foreign(self.root, workdir / f"outside{self.number}", kind)
                self.before = snapshot(self.watched)
            elif kind in CLOUD_FOREIGN:
                self.note("foreign-object")
                body = f"the user's own {kind}".encode()
                self.run(self.bridge.backend.put(kind, body))  # type: ignore[union-attr]
                self.foreign_keys[kind] = body

        # -- rules: more bridges, processes, the network ---------------------------------------------------------

        @precondition(lambda self: len(self.bridges) < 3)
        @rule()
        def open_bridge(self) -> None:
            self.note("open_bridge")
            self.bridges.append(self._bridge())

        @precondition(lambda self: traits.network and self.faulty is None)
        @rule(share=st.sampled_from([0.1, 0.3]), seed=st.integers(0, 1000))
        def faulty_network(self, share: float, seed: int) -> None:
            from tests.faults import FaultProxy

            self.note("faulty_network")
            proxy = FaultProxy(
                module.upstream(self.spec),
                share=share,
                seed=seed,
                faults=("slowdown", "error500", "throttle", "reset", "lose-answer", "truncate"),
            )
            self.proxy = self.run(proxy.start())
            self.faulty = ArtifactsBridge(
                backend=module.open_backend(module.through(self.spec, proxy.url)), clock=self.clock.host
            )

        @precondition(lambda self: traits.processes and self.number <= CHILD_SEQUENCES and not self.children)
        @rule(count=st.integers(1, 3))
        def child_process(self, count: int) -> None:
            """Another process stores pages into the same store (a second of interpreter start-up each, so only the
            first sequences of a run do it, once)."""
            self.note("child_process")
            self.children += 1
            child = subprocess.run(
                [sys.executable, "-m", "tests.rigs.child", rig, json.dumps(self.spec), "store", str(count)],
                cwd=Path(__file__).resolve().parents[2],
                capture_output=True,
                text=True,
                timeout=STEP_TIMEOUT,
                check=True,
            )
            keys = json.loads(child.stdout.strip().splitlines()[-1])
            assert len(keys) == count
            for i, key in enumerate(keys):
                page = new_page(f"child_{i}", f"{i}")  # its page id and content carry the child's pid
                self.world.issue(key)
                self.world.artifacts[key] = Artifact(key, page, StorageTier.L3, exact=False)
                self.world.artifacts[key].damage = "child"

        @precondition(lambda self: traits.disk and not self.pending("fork"))
        @rule()
        def fork(self) -> None:
            """A forked child stores a page through the bridge it inherited, while the parent keeps its own."""
            self.note("fork")
            page = new_page("forked", "stored by a forked child")
            first = new_page("before-fork", "claims a block")
            self.world.stored(self.run(self.bridge.store_page(first)), first, StorageTier.L3)
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                code = 1
                try:
                    os.close(read)
                    loop = asyncio.new_event_loop()
                    key = loop.run_until_complete(asyncio.wait_for(self.bridge.store_page(page), 20))
                    os.write(write, key.encode())
                    code = 0
                finally:
                    os._exit(code)
            os.close(write)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise AssertionError("a forked child hung storing a page through its inherited bridge")
            with os.fdopen(read) as f:
                key = f.read()
            assert os.waitstatus_to_exitcode(status) == 0, "the forked child failed to store"
            assert key, "the forked child stored nothing"
            self.world.stored(key, page, StorageTier.L3)

        # -- the command line ---------------------------------------------------------------------------------------

        def url(self, spec: dict[str, Any] | None = None) -> str:
            spec = spec or self.spec
            if rig == "filesystem":
                return f"file://{spec['root']}"
            if rig.startswith("s3"):
                return f"s3://{spec['bucket']}"
            if rig == "gcs":
                return f"gs://{spec['bucket']}"
            return f"az://{spec['container']}"

        def cli_environment(self) -> dict[str, str]:
            if rig.startswith("s3"):
                from tests.test_cli import s3_env

                return dict(s3_env(self.spec["endpoint"], self.spec.get("client", "sdk")))
            if rig == "gcs":
                from tests.rigs.gcs import PROJECT

                return {"STORAGE_EMULATOR_HOST": self.spec["url"], "TIERSTORE_GCS_PROJECT": PROJECT}
            if rig.startswith("azure"):
                from tests.rigs import azure as azure_rig

                env = {"AZURE_STORAGE_CONNECTION_STRING": self.spec["connection_string"], "TIERSTORE_CLIENT": "sdk"}
                return {**env, **azure_rig.settings_environment()}
            return {}

        @property
        def cli_allowed(self) -> bool:
            """The command line, in every sequence on the disk; on a cloud (a second of client start-up a
            command) in the first ones only."""
            return traits.cli and (traits.disk or self.number == 1)

        def cli(self, *args: str) -> tuple[int, str]:
            """``tierstore ARGS`` in this process (so it sees the machine's clock); exit code and stdout."""
            from tierstore.cli.app import main

            argv = [*args] if args[0] == "migrate" else [*args, "--url", self.url()]
            out, err = io.StringIO(), io.StringIO()
            with environment(self.cli_environment()), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(argv)
            assert "Traceback" not in err.getvalue(), err.getvalue()
            return code, out.getvalue()

        @precondition(lambda self: self.cli_allowed)
        @rule(which=st.integers(0, 10**6))
        def cli_rm(self, which: int) -> None:
            key = self.pick(sorted(self.world.artifacts), which)
            if key is None:
                return
            artifact = self.world.artifacts[key]
            if artifact.state == "damaged" and self.pending("cli-damaged"):
                return
            self.note("cli-rm")
            code, out = self.cli("rm", key, "--json")
            if code == 4 and self.manifest_problems:
                return  # a manifest it cannot read may name the page: rm refuses rather than break a checkpoint
            referenced = key in self.world.referenced()
            leased = self.world.leases_may_live  # rm refuses what a live lease names or wrote
            if artifact.state == "present":
                assert code in ((2,) if referenced else (0, 2) if leased else (0,)), (code, out)
            elif artifact.state == "gone":
                assert code == 5, (code, out)
            elif artifact.state == "damaged" and artifact.damage != "remove":
                assert code in ((0, 2) if referenced or leased else (0,)), (code, out)
            if code == 0:
                artifact.state = "gone"

        @precondition(lambda self: self.cli_allowed)
        @rule(which=st.integers(0, 10**6), tier=st.sampled_from(TIERS))
        def cli_tier(self, which: int, tier: StorageTier) -> None:
            key = self.pick(sorted(self.world.artifacts), which)
            if key is None:
                return
            self.note("cli-tier")
            artifact = self.world.artifacts[key]
            code, out = self.cli("tier", key, tier.value, "--json")
            if code == 8 and self.world.leases_may_live:
                return  # InUseError: a cancelled checkpoint's lease may still name it
            if artifact.state == "present" and not self.world.archived(artifact):
                assert code == 0, (code, out)
            elif artifact.state == "gone":
                assert code == 5, (code, out)
            if code == 0:
                assert artifact.state != "gone"
                self.moved(artifact, tier)

        @precondition(lambda self: self.cli_allowed)
        @rule(which=st.integers(0, 10**6), verb=st.sampled_from(["verify", "delete"]))
        def cli_checkpoints(self, which: int, verb: str) -> None:
            key = self.pick(sorted(self.world.checkpoints), which)
            if key is None:
                return
            self.note(f"cli-checkpoints-{verb}")
            checkpoint = self.world.checkpoints[key]
            code, out = self.cli("checkpoints", verb, key, "--json")
            if not checkpoint.listed and not checkpoint.uncertain:
                assert code == 5, (code, out)
            elif verb == "verify":
                if self.world.restorable(checkpoint):
                    assert code == 0, (code, out)
                elif code == 0:  # what broke it may not have happened (a deletion cancelled before it began)
                    assert self.may_restore(checkpoint) or checkpoint.uncertain, (code, out)
                else:
                    assert code in (4, 6) or checkpoint.uncertain, (code, out)
            elif code == 0:
                self.forget_checkpoint(checkpoint)
            else:
                assert code == 4, (code, out)
                assert self.manifest_problems, (code, out)

        @precondition(lambda self: self.cli_allowed)
        @rule()
        def cli_ls(self) -> None:
            if not traits.disk and fired["cli-ls"] >= 2 * self.number:
                return  # the slowest command on a cloud: a couple of times a sequence is enough
            if self.pending("cli-damaged") and any(a.state == "damaged" for a in self.world.artifacts.values()):
                return
            self.note("cli-ls")
            code, out = self.cli("ls", "--long", "--json")
            damaged = any(a.state == "damaged" for a in self.world.artifacts.values())
            assert code in ((0, 4) if damaged else (0,)), (code, out)  # 4: a damaged page named, the rest listed
            shown = {entry["artifact_id"] for entry in json.loads(out)}
            for key, artifact in self.world.artifacts.items():
                if artifact.state == "present":
                    assert key in shown, f"tierstore ls --long does not show {key}"
                elif artifact.state == "gone":
                    assert key not in shown, f"tierstore ls --long shows deleted {key}"

        # -- invariants -------------------------------------------------------------------------------------------

        @invariant()
        def holds(self) -> None:
            self.check(full=traits.full_checks)

        def check(self, full: bool) -> None:
            listed = set(self.run(self.bridge.list_pages()))
            for key in sorted(listed - set(self.world.artifacts)):
                self.adopt_unknown_artifact(key)
            for key, artifact in self.world.artifacts.items():
                if artifact.state == "gone":
                    assert key not in listed, f"{key} was deleted and is listed again"
                elif artifact.state == "present":
                    assert key in listed, f"{key} is not listed"
                elif artifact.state == "uncertain" and key not in listed:
                    artifact.state = "gone"
            checkpoints = set(self.run(self.bridge.list_checkpoints()))
            for key in sorted(checkpoints - set(self.world.checkpoints)):
                self.adopt_unknown_checkpoint(key)
            for key, checkpoint in self.world.checkpoints.items():
                if checkpoint.uncertain:
                    if key not in checkpoints:
                        self.forget_checkpoint(checkpoint)
                    continue
                assert (key in checkpoints) == checkpoint.listed, f"checkpoint {key}: listed {key in checkpoints}"
            artifacts = sorted(self.world.artifacts)
            # On a cloud (full=False) a step checks one artifact and, every third step, one checkpoint: a request
            # there costs what a whole step costs on disk, and teardown checks everything.
            self.checks += 1
            chosen = artifacts if full else self.rng.sample(artifacts, min(1, len(artifacts)))
            for key in chosen:
                self.check_artifact(self.world.artifacts[key], self.rng.choice(self.bridges))
            listed_checkpoints = sorted(c.key for c in self.world.listed_checkpoints())
            picked = (
                listed_checkpoints
                if full
                else self.rng.sample(listed_checkpoints, min(1 if self.checks % 3 == 0 else 0, len(listed_checkpoints)))
            )
            for key in picked:
                self.check_checkpoint(self.world.checkpoints[key], self.rng.choice(self.bridges))
            if full or self.checks % 4 == 0:  # on a cloud, each bound bridge's listings cost two requests
                self.check_scopes()
            if self.watched:
                now = snapshot(self.watched)
                changed = {str(p): (self.before[p], now[p]) for p in self.watched if self.before[p] != now[p]}
                assert not changed, f"files that are not tierstore's changed: {changed}"
            for key, body in self.foreign_keys.items():
                stored = self.run(self.bridge.backend.get(key))  # type: ignore[union-attr]
                assert stored is not None, f"the foreign object {key} was deleted"
                assert bytes(stored) == body, f"the foreign object {key} changed"

        def adopt_unknown_artifact(self, key: str) -> None:
            """A listed artifact the model was never told of: the result of a call whose outcome was lost."""
            assert key not in self.world.issued, f"{key} was deleted and is listed again"
            try:
                page = self.run(self.bridge.load_page(key))
            except ArchivedPageError:
                page = None
            candidates = self.world.attempted_pages
            assert page is not None or candidates, f"{key} appeared from nowhere"
            if page is not None:
                matches = [p for p in candidates if identity(p) == identity(page)]
                assert matches, f"{key} appeared from nowhere, holding page {page.page_id!r}"
                exact = any(p == page for p in matches)
            else:
                matches, exact = candidates[:1], False
            self.world.issue(key)
            self.world.artifacts[key] = Artifact(
                key, page or matches[0], StorageTier.L3, state="uncertain", exact=exact, tier_known=False
            )

        def adopt_unknown_checkpoint(self, key: str) -> None:
            restored = self.run(self.bridge.restore_checkpoint(key))
            options = [pages for _, pages in self.world.attempted_checkpoints]
            assert any([identity(p) for p in restored] == [identity(p) for p in pages] for pages in options), (
                f"checkpoint {key} appeared from nowhere"
            )
            manifest = self.run(self.bridge.get_checkpoint_manifest(key))
            assert manifest is not None
            for entry, page in zip(manifest.pages, restored, strict=True):
                if entry.artifact_id not in self.world.artifacts:
                    self.world.issue(entry.artifact_id)
                    self.world.artifacts[entry.artifact_id] = Artifact(
                        entry.artifact_id, page, StorageTier(entry.tier), exact=False, checkpoint_owned=True
                    )
                else:
                    artifact = self.world.artifacts[entry.artifact_id]
                    artifact.checkpoint_owned = True
                    if artifact.state == "uncertain":
                        artifact.state = "present"  # a listed checkpoint names it: it stays
                        artifact.tier, artifact.tier_known = StorageTier(entry.tier), True
            self.world.checkpoints[key] = Checkpoint(key, restored, [e.artifact_id for e in manifest.pages])

        def expect_page(self, artifact: Artifact, page: MemoryPage | None, what: str) -> None:
            assert page is not None, f"{what}: None for a present artifact"
            if artifact.damage == "child":
                assert page.page_id.startswith("p"), what
            elif artifact.exact:
                assert page == artifact.page, f"{what}: another page than the one stored"
            else:
                assert identity(page) == identity(artifact.page), f"{what}: another page than the one stored"

        def check_artifact(self, artifact: Artifact, bridge: ArtifactsBridge) -> None:
            key = artifact.key
            try:
                page = self.run(bridge.load_page(key))
            except ArchivedPageError:
                assert self.world.archived(artifact) or not artifact.tier_known, f"{key}: archived, but {artifact}"
                return
            except IntegrityError:
                assert artifact.state == "damaged", f"load_page({key}): IntegrityError, but it is {artifact.state}"
                return
            if artifact.state == "gone":
                assert page is None, f"load_page({key}) returned a deleted page"
            elif artifact.state == "damaged":
                assert page is None or artifact.damage == "remove", f"load_page({key}) returned a damaged page"
            elif artifact.state == "uncertain":
                if page is None:
                    artifact.state = "gone"
                else:
                    self.expect_page(artifact, page, f"load_page({key})")
            else:
                assert not self.world.archived(artifact), f"load_page({key}) read an archived page"
                self.expect_page(artifact, page, f"load_page({key})")
            try:
                meta = self.run(bridge.get_metadata(key))
            except IntegrityError:
                assert artifact.state == "damaged", f"get_metadata({key}): IntegrityError, but {artifact.state}"
                return
            if meta is None:
                assert artifact.state != "present", f"get_metadata({key}) is None for a present page"
                return
            assert artifact.state != "gone", f"get_metadata({key}) describes a deleted page"
            if page is not None and artifact.state != "damaged":
                assert meta.page_id == page.page_id, f"get_metadata({key}) page id {meta.page_id!r}"
                assert meta.modality == page.modality.value, f"get_metadata({key}) modality {meta.modality}"
                if artifact.tier_known and traits.tier_moves:
                    assert meta.tier == artifact.tier.value, f"get_metadata({key}) tier {meta.tier}"
            if artifact.state == "damaged":
                expected = artifact.page.page_id
                if artifact.damage != "child":
                    assert meta.page_id == expected, f"get_metadata({key}) of a damaged page describes another"

        def check_checkpoint(self, checkpoint: Checkpoint, bridge: ArtifactsBridge) -> None:
            key = checkpoint.key
            try:
                pages = self.run(bridge.restore_checkpoint(key))
            except (IntegrityError, ArchivedPageError) as exc:
                failure = str(exc)
                assert not self.world.restorable(checkpoint), f"listed checkpoint {key} does not restore: {failure}"
                return
            except ObjectNotFoundError:
                assert checkpoint.uncertain, f"listed checkpoint {key} is not found"
                return
            assert self.may_restore(checkpoint), f"checkpoint {key} restored although what it names is broken"
            assert pages == checkpoint.pages, f"checkpoint {key} restores other pages"

        def may_restore(self, checkpoint: Checkpoint) -> bool:
            """Could restoring it succeed? Not while its manifest or one of its artifacts is known broken."""
            if checkpoint.manifest_damaged:
                return False
            for key in checkpoint.artifacts:
                artifact = self.world.artifacts[key]
                if artifact.state in ("damaged", "gone") or (self.world.archived(artifact) and artifact.tier_known):
                    return False
            return True

        # -- the end ----------------------------------------------------------------------------------------------

        def teardown(self) -> None:
            try:
                if not traits.full_checks:
                    self.check(full=True)
                self.fsck("library")
            finally:
                try:
                    for bridge in self.bridges + ([self.faulty] if self.faulty else []) + self.close_scoped():
                        with contextlib.suppress(Exception):
                            self.run(bridge.aclose(), timeout=30)
                    if self.destination is not None:
                        with contextlib.suppress(Exception):
                            self.run(self.destination[1].aclose(), timeout=30)
                    if self.proxy is not None:
                        self.run(self.proxy.stop(), timeout=30)
                finally:
                    _shut_down(self.loop)
                    for spec in self.specs:
                        drop = getattr(server, "drop_store", None)
                        if drop is not None:
                            with contextlib.suppress(Exception):
                                drop(spec)
                        if "root" in spec:
                            shutil.rmtree(spec["root"], ignore_errors=True)

    StoreMachine.__name__ = StoreMachine.__qualname__ = f"StoreMachine_{rig}"
    return StoreMachine


def _shut_down(loop: asyncio.AbstractEventLoop) -> None:
    """Close the loop as ``asyncio.run`` does: cancel what is left (the backends' per-loop client keepers close
    their clients so), then close."""
    try:
        left = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.wait(left, timeout=30))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


async def _listed(backend: StorageBackend, prefix: str) -> list[Any]:
    return [entry async for entry in backend.list(prefix)]
