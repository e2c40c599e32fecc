"""``tierstore checkpoints [list|show|verify|delete]``: the store's checkpoints.

Contract: ``verify`` loads every page of a checkpoint and checks it as ``ArtifactsBridge.restore_checkpoint`` does,
and writes nothing; it draws a progress bar on a terminal, prints its verdict last and the pages only with
``--pages``. ``restore`` brings every archived page of the checkpoint back from its archive class (as ``tierstore
restore ID`` does for one page) and reports how far that is. ``delete`` removes the checkpoint and the artifacts no
other checkpoint uses, and says what it kept, why and until when (:mod:`tierstore.cli.checkpoint_delete`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tierstore.bridge import ArtifactsBridge
from tierstore.cli import checkpoint_delete
from tierstore.cli.context import AddCommand, Invocation, checkpoint_id, common_options
from tierstore.cli.escape import escaped
from tierstore.cli.render import (
    Column,
    ProgressBar,
    human_size,
    limit_option,
    limited,
    print_fields,
    print_json,
    print_table,
    to_plain,
)
from tierstore.cli.restore import options as restore_options
from tierstore.concurrency import bounded_gather
from tierstore.errors import ObjectNotFoundError
from tierstore.models import CheckpointManifest

# On a narrow terminal, columns go in the order of ``drop``; ids never do, and are never cut.
_LIST_COLUMNS = (
    Column("checkpoint_id", "CHECKPOINT"),
    Column("name", "NAME", max_width=40, min_width=10),
    Column("created_at", "CREATED", drop=3),
    Column("pages", "PAGES", drop=2),
    Column("size", "SIZE", drop=1),
)
_STATE_WORDS = {
    "not-archived": "not archived: can be read now",
    "restored": "restored: can be read now",
    "pending": "being restored: readable once the restore completes",
    "archived": "still archived",
}
_ENTRY_COLUMNS = (
    Column("page_id", "PAGE", max_width=40, min_width=12),
    Column("artifact_id", "ARTIFACT"),
    Column("modality", "MODALITY", drop=1),
    Column("tier", "TIER", drop=3),
    Column("size", "SIZE", drop=2),
)


def register(add: AddCommand) -> None:
    """Add ``tierstore checkpoints`` and its actions (show, verify, restore, delete) to the parser."""
    checkpoints = add("checkpoints", list_checkpoints, "list, show, verify, restore or delete checkpoints")
    limit_option(checkpoints, "checkpoints (the oldest)")
    actions = checkpoints.add_subparsers(dest="action", metavar="ACTION")
    common = common_options(type(checkpoints))
    listing = actions.add_parser("list", help="list checkpoints (the default)", parents=[common])
    listing.set_defaults(run=list_checkpoints)
    limit_option(listing, "checkpoints (the oldest)")
    for name, run, help, artifact_command in (
        ("show", show, "show a checkpoint's manifest: its pages and their artifacts", "show"),
        (
            "verify",
            verify,
            "load every page of a checkpoint and verify it, as restore_checkpoint does (writes nothing)",
            "show --content",
        ),
        (
            "restore",
            restore,
            "bring every archived page of a checkpoint back so it can be read, and report how far that is",
            "restore",
        ),
        ("delete", delete, "delete a checkpoint and the artifacts no other checkpoint uses", "rm"),
    ):
        action = actions.add_parser(name, help=help, description=help, parents=[common])
        action.add_argument("id", help="checkpoint id, e.g. ckpt_20261125T200102123456_ab12cd34")
        action.set_defaults(run=run, artifact_command=artifact_command)
        if name == "verify":
            action.add_argument("--pages", action="store_true", help="list the checkpoint's pages after the verdict")
        if name == "restore":
            restore_options(action)


def _row(checkpoint: str, manifest: CheckpointManifest) -> dict[str, Any]:
    return {
        "checkpoint_id": checkpoint,
        "name": escaped(manifest.name),
        "created_at": manifest.created_at,
        "pages": manifest.page_count,
        "size": human_size(sum(e.size_bytes for e in manifest.pages)),
    }


def _entries(manifest: CheckpointManifest) -> list[dict[str, Any]]:
    return [{**e.model_dump(), "page_id": escaped(e.page_id), "size": human_size(e.size_bytes)} for e in manifest.pages]


async def list_checkpoints(inv: Invocation) -> int:
    """``tierstore checkpoints``: every checkpoint with its name, time, page count and size."""
    async with inv.bridge() as bridge:
        everything = await bridge.list_checkpoints()
        ids = limited(everything, getattr(inv.args, "limit", None), len(everything), "checkpoints")
        manifests = await bounded_gather((bridge.get_checkpoint_manifest(c) for c in ids), inv.settings.concurrency)
    found = [(c, m) for c, m in zip(ids, manifests, strict=True) if m is not None]
    if inv.json:
        print_json([{**m.model_dump(mode="json", exclude={"pages"}), "checkpoint_id": c} for c, m in found])
    else:
        print_table([_row(c, m) for c, m in found], _LIST_COLUMNS)
    return 0


def _checkpoint(inv: Invocation) -> str:
    return checkpoint_id(inv.args.id, artifact_command=inv.args.artifact_command)


async def _manifest(bridge: ArtifactsBridge, checkpoint: str) -> CheckpointManifest:
    manifest = await bridge.get_checkpoint_manifest(checkpoint)
    if manifest is None:
        raise ObjectNotFoundError(checkpoint)
    return manifest


async def show(inv: Invocation) -> int:
    """``tierstore checkpoints show ID``: one checkpoint's pages and their artifacts."""
    checkpoint = _checkpoint(inv)
    async with inv.bridge() as bridge:
        manifest = await _manifest(bridge, checkpoint)
    if inv.json:
        print_json(manifest)
        return 0
    row = _row(checkpoint, manifest)
    print_fields(
        {"checkpoint": checkpoint, "name": row["name"], "created": row["created_at"], "pages": row["pages"]}
        | {"size": row["size"]}
    )
    print()
    print_table(_entries(manifest), _ENTRY_COLUMNS)
    return 0


async def verify(inv: Invocation) -> int:
    """``tierstore checkpoints verify ID``: load and verify every page as ``restore_checkpoint`` does; no writes."""
    checkpoint = _checkpoint(inv)
    async with inv.bridge() as bridge:
        manifest = await _manifest(bridge, checkpoint)
        with ProgressBar("verifying", "pages") as bar:
            pages = await bridge.restore_checkpoint(checkpoint, progress=bar)
    if inv.json:
        print_json({"checkpoint_id": checkpoint, "verified": len(pages), "pages": [p.page_id for p in pages]})
        return 0
    if inv.args.pages:
        print_table(_entries(manifest), _ENTRY_COLUMNS)
        print()
    name = escaped(manifest.name)
    print(f"checkpoint {checkpoint} ({name}): all {len(pages)} pages load and match their checksums")
    return 0


async def restore(inv: Invocation) -> int:
    """``tierstore checkpoints restore ID``: bring every archived page of a checkpoint back, and say how far that is."""
    checkpoint = _checkpoint(inv)
    async with inv.bridge() as bridge:
        manifest = await _manifest(bridge, checkpoint)
        artifacts = sorted({e.artifact_id for e in manifest.pages})
        with ProgressBar("restoring", "pages") as bar:
            statuses = await bounded_gather(
                (bridge.restore_page(a, days=inv.args.days, speed=inv.args.speed) for a in artifacts),
                inv.settings.concurrency,
                progress=bar,
            )
    states = Counter(status.state for status in statuses)
    if inv.json:
        print_json(
            {
                "checkpoint_id": checkpoint,
                "pages": len(artifacts),
                "states": dict(sorted(states.items())),
                "artifacts": [{"artifact_id": a, **to_plain(s)} for a, s in zip(artifacts, statuses, strict=True)],
            }
        )
        return 0
    for state in ("not-archived", "restored", "pending", "archived"):
        if states[state]:
            print(f"{states[state]:>6} {_STATE_WORDS[state]}")
    readable = states["not-archived"] + states["restored"]
    if readable == len(artifacts):
        print(f"\nall {len(artifacts)} pages of {checkpoint} can be read: `tierstore checkpoints verify {checkpoint}`")
    else:
        print(
            f"\n{readable} of {len(artifacts)} pages of {checkpoint} can be read; the rest are being restored: run "
            "this again to see how far it is"
        )
    return 0


async def delete(inv: Invocation) -> int:
    """``tierstore checkpoints delete ID`` (:func:`checkpoint_delete.delete`)."""
    return await checkpoint_delete.delete(inv, _checkpoint(inv))
