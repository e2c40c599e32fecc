"""``tierstore checkpoints delete ID``: the checkpoint goes; what went with it, what stayed, why, and until when.

Contract: the checkpoint is deleted as :meth:`~tierstore.bridge.ArtifactsBridge.delete_checkpoint` does it. Each
artifact its manifest named is then looked up in the store and reported as deleted (gone), kept for another
checkpoint (it goes when the last checkpoint naming it is deleted), or kept for a live lease: a running checkpoint,
or an agent attached to the store, refers to it; once that lease ends (the agent closes its bridge, or stops
renewing it and it expires) nothing refers to it and the first ``tierstore gc`` after that deletes it, when it is
older than gc's grace period. What is looked up after the deletion shows what other processes did meanwhile too: an
artifact kept for no reason found is reported as such (``fsck`` says more).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tierstore.bridge import ArtifactsBridge
from tierstore.cli.context import Invocation
from tierstore.cli.escape import escaped
from tierstore.cli.render import print_json
from tierstore.concurrency import bounded_gather
from tierstore.errors import IntegrityError, ObjectNotFoundError

SHOWN_IDS = 8
"""Artifact ids printed per line; ``--json`` lists them all."""


@dataclass
class Kept:
    """Artifacts kept for one reason: ``by`` the checkpoints or leases that still refer to them."""

    artifact_ids: list[str] = field(default_factory=list)
    by: set[str] = field(default_factory=set)
    lease_expires: datetime | None = None


@dataclass
class Deletion:
    """What ``checkpoints delete`` did: the artifacts it deleted and those it kept, with who still uses them."""

    checkpoint_id: str
    name: str | None
    deleted: list[str] = field(default_factory=list)
    kept_for_checkpoints: Kept = field(default_factory=Kept)
    kept_for_leases: Kept = field(default_factory=Kept)
    kept_unexplained: list[str] = field(default_factory=list)


async def delete(inv: Invocation, checkpoint: str) -> int:
    """``tierstore checkpoints delete ID``: delete a checkpoint and the artifacts only it uses; say what stays."""
    async with inv.bridge() as bridge:
        try:
            manifest = await bridge.get_checkpoint_manifest(checkpoint)
        except IntegrityError:
            manifest = None  # deleted alone: what it named is unknown, gc collects what was written for it
        if not await bridge.delete_checkpoint(checkpoint):
            raise ObjectNotFoundError(checkpoint)
        named = sorted({entry.artifact_id for entry in manifest.pages}) if manifest is not None else []
        deletion = await _what_became_of(bridge, checkpoint, manifest.name if manifest else None, named, inv)
    if inv.json:
        print_json(
            {
                "checkpoint_id": checkpoint,
                "deleted": True,
                "artifacts_deleted": deletion.deleted,
                "artifacts_kept_for_checkpoints": deletion.kept_for_checkpoints.artifact_ids,
                "kept_for_checkpoints": sorted(deletion.kept_for_checkpoints.by),
                "artifacts_kept_for_leases": deletion.kept_for_leases.artifact_ids,
                "kept_for_leases": sorted(deletion.kept_for_leases.by),
                "artifacts_kept_unexplained": deletion.kept_unexplained,
            }
        )
    else:
        _say(deletion, manifest is not None)
    return 0


async def _what_became_of(
    bridge: ArtifactsBridge, checkpoint: str, name: str | None, named: list[str], inv: Invocation
) -> Deletion:
    refs = bridge.references("checkpoints delete")

    async def still_there(key: str) -> bool:
        try:
            return await refs.head(key) is not None
        except IntegrityError:
            return True  # there, damaged

    found = await bounded_gather((still_there(key) for key in named), inv.settings.concurrency)
    deletion = Deletion(checkpoint, name, deleted=[key for key, there in zip(named, found, strict=True) if not there])
    remaining = [key for key, there in zip(named, found, strict=True) if there]
    if not remaining:
        return deletion
    manifests, _damaged = await refs.manifests.listed()
    users: dict[str, set[str]] = {}
    for manifest in manifests.values():
        for entry in manifest.pages:
            users.setdefault(entry.artifact_id, set()).add(manifest.checkpoint_id or manifest.name)
    intents = await refs.leases()
    now = refs.estimated_store_time(intent.renewed for intent in intents)
    live = [intent for intent in intents if intent.live(now)]
    for key in remaining:
        leases = [intent for intent in live if intent.protects_everything or key in intent.reuse]
        if key in users:
            deletion.kept_for_checkpoints.artifact_ids.append(key)
            deletion.kept_for_checkpoints.by |= users[key]
        elif leases:
            kept = deletion.kept_for_leases
            kept.artifact_ids.append(key)
            kept.by |= {intent.key for intent in leases}
            ends = [intent.renewed + intent.ttl for intent in leases if intent.renewed is not None]
            if ends:
                kept.lease_expires = max([*ends, *([kept.lease_expires] if kept.lease_expires else [])])
        else:
            deletion.kept_unexplained.append(key)
    return deletion


def _ids(keys: list[str]) -> str:
    shown = ", ".join(escaped(key) for key in keys[:SHOWN_IDS])
    return shown if len(keys) <= SHOWN_IDS else f"{shown}, … ({len(keys)} in all; --json lists them)"


def _say(deletion: Deletion, manifest_read: bool) -> None:
    named = f" ({escaped(deletion.name)})" if deletion.name else ""
    print(f"deleted checkpoint {deletion.checkpoint_id}{named}")
    if not manifest_read:
        print("its manifest could not be read, so its artifacts are left to `tierstore gc`, which collects them")
        return
    if deletion.deleted:
        print(f"deleted {len(deletion.deleted)} artifact(s) nothing else uses: {_ids(deletion.deleted)}")
    elif not (deletion.kept_for_checkpoints.artifact_ids or deletion.kept_for_leases.artifact_ids):
        print("deleted no artifact: it had none")
    for_checkpoints = deletion.kept_for_checkpoints
    if for_checkpoints.artifact_ids:
        print(
            f"kept {len(for_checkpoints.artifact_ids)} artifact(s) other checkpoints use: "
            f"{_ids(for_checkpoints.artifact_ids)}"
        )
        print(f"  used by {_ids(sorted(for_checkpoints.by))}; they go with the last checkpoint that uses them")
    for_leases = deletion.kept_for_leases
    if for_leases.artifact_ids:
        print(
            f"kept {len(for_leases.artifact_ids)} artifact(s) a running agent or checkpoint still refers to: "
            f"{_ids(for_leases.artifact_ids)}"
        )
        expires = (
            f", which expires {for_leases.lease_expires:%Y-%m-%d %H:%M:%S} UTC unless renewed"
            if for_leases.lease_expires
            else ""
        )
        print(f"  held by lease {_ids(sorted(for_leases.by))}{expires}")
        print("  when that lease ends (its agent closes its bridge, or stops and the lease expires), the first")
        print("  `tierstore gc` after that deletes those no checkpoint uses, once older than its grace period (1 h)")
    if deletion.kept_unexplained:
        print(
            f"kept {len(deletion.kept_unexplained)} artifact(s) for no reason found now (another process may have "
            f"used them meanwhile; `tierstore fsck` says more): {_ids(deletion.kept_unexplained)}"
        )
