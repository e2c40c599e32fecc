"""The model: what the store must hold, as far as the machine's own actions determine it.

Contract: pure bookkeeping, no I/O. An artifact is in one of four states:

* ``present`` - it must load as exactly the page stored (or, in an archive tier, raise ArchivedPageError);
* ``gone`` - deleted: it must never be listed or loaded again, and its id never issued again;
* ``damaged`` - a damage rule hit it: loading it is an IntegrityError (or None once removed), never a page;
* ``uncertain`` - an operation on it was cancelled or faulted, or gc may collect it: it loads as its page or is
  absent; once seen absent it is ``gone``.

A checkpoint must restore exactly while every artifact it names is present; otherwise restoring it must fail
typed, and fsck must name what broke it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from tierstore import MemoryPage, StorageTier
from tierstore.codec import VOLATILE_FIELDS

State = Literal["present", "gone", "damaged", "uncertain"]


def identity(page: MemoryPage) -> dict[str, object]:
    """A page without its bookkeeping fields: what an artifact holds whatever checkpoint names it."""
    return page.model_dump(exclude=set(VOLATILE_FIELDS))


@dataclass
class Artifact:
    key: str
    page: MemoryPage
    tier: StorageTier
    state: State = "present"
    exact: bool = True
    """A ``store_page`` artifact loads as exactly its page; a checkpoint's as its page's identity."""
    checkpoint_owned: bool = False
    tier_known: bool = True
    restored: bool = False
    """An archived page brought back by ``restore_page``."""
    restored_until: timedelta = timedelta(0)
    """When the restored copy expires, in the time the machine has let pass."""
    damage: str = ""


@dataclass
class Checkpoint:
    key: str
    pages: list[MemoryPage]
    artifacts: list[str]
    listed: bool = True
    uncertain: bool = False
    """Deleted by a cancelled or faulted call: listed or not."""
    manifest_damaged: bool = False


@dataclass
class World:
    archives_l4: bool
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    checkpoints: dict[str, Checkpoint] = field(default_factory=dict)
    issued: set[str] = field(default_factory=set)
    attempted_pages: list[MemoryPage] = field(default_factory=list)
    """Pages of calls whose outcome is unknown (cancelled, faulted): an artifact nobody told the model about must
    hold one of them."""
    attempted_checkpoints: list[tuple[str, list[MemoryPage]]] = field(default_factory=list)
    leases_may_live: bool = False
    """A cancelled checkpoint may have left its lease (until it expires, it protects what it names)."""

    # -- queries ----------------------------------------------------------------------------------------------

    def listed_checkpoints(self) -> list[Checkpoint]:
        return [c for c in self.checkpoints.values() if c.listed]

    def referenced(self) -> set[str]:
        return {a for c in self.listed_checkpoints() for a in c.artifacts}

    def archived(self, artifact: Artifact) -> bool:
        return self.archives_l4 and artifact.tier == StorageTier.L4 and not artifact.restored

    def restorable(self, checkpoint: Checkpoint) -> bool:
        """Must restore exactly."""
        if checkpoint.manifest_damaged or checkpoint.uncertain:
            return False
        return all(
            self.artifacts[a].state == "present"
            and (self.artifacts[a].tier_known or not self.archives_l4)
            and not self.archived(self.artifacts[a])
            for a in checkpoint.artifacts
        )

    def reuse_hazard(self, page: MemoryPage) -> str | None:
        """Why a checkpoint of ``page`` as it is could reuse an artifact that is not as its manifest says: the
        reason, when one of the listed checkpoints names an artifact of this page's identity that was deleted,
        damaged or moved to another tier since."""
        wanted = identity(page)
        for checkpoint in self.listed_checkpoints():
            for key, stored in zip(checkpoint.artifacts, checkpoint.pages, strict=True):
                artifact = self.artifacts[key]
                if stored.page_id != page.page_id or identity(artifact.page) != wanted:
                    continue
                if artifact.state in ("gone", "uncertain"):
                    return "reuse-after-delete"
                if artifact.state == "damaged":
                    return "reuse-after-damage"
                if not artifact.tier_known or artifact.tier != _checkpoint_tier(page):
                    return "reuse-after-retier"
        return None

    # -- changes ----------------------------------------------------------------------------------------------

    def issue(self, key: str) -> None:
        assert key not in self.issued, f"id {key} issued twice"
        self.issued.add(key)

    def stored(self, key: str, page: MemoryPage, tier: StorageTier) -> None:
        self.issue(key)
        self.artifacts[key] = Artifact(key, page.model_copy(deep=True), tier)

    def gone(self, key: str) -> None:
        artifact = self.artifacts.get(key)
        if artifact is not None:
            artifact.state = "gone"

    def unreferenced_after_delete(self, keys: list[str]) -> None:
        """A checkpoint was deleted: its artifacts no other listed checkpoint names are deleted with it (unless a
        lease that may still live protects them)."""
        still = self.referenced()
        for key in keys:
            artifact = self.artifacts[key]
            if key in still or artifact.state == "gone":
                continue
            if artifact.state == "damaged":
                if artifact.damage != "directory":  # a directory with files in it is kept, never deleted
                    artifact.damage = "remove"  # deleted, or still there damaged: either is allowed
            elif self.leases_may_live or artifact.state == "uncertain":
                artifact.state = "uncertain"
            else:
                artifact.state = "gone"


def _checkpoint_tier(page: MemoryPage) -> StorageTier:
    return (
        page.storage_tier if page.storage_tier in (StorageTier.L2, StorageTier.L3, StorageTier.L4) else StorageTier.L3
    )
