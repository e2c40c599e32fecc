"""``tierstore rm ID...``: delete stored pages.

Contract: all ids are checked before anything is deleted: a missing one is ``ObjectNotFoundError`` (exit 5), and one
that a listed checkpoint uses is refused (exit 2) with the checkpoint to delete instead, so ``rm`` never breaks a
checkpoint it can see. A damaged page (its metadata cannot be read) is deleted like any other.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from tierstore.cli.context import AddCommand, Invocation, artifact_id
from tierstore.cli.render import print_json
from tierstore.concurrency import bounded_gather
from tierstore.errors import IntegrityError, InvalidInputError, ObjectNotFoundError

if TYPE_CHECKING:
    from tierstore.bridge import ArtifactsBridge


def register(add: AddCommand) -> None:
    rm = add("rm", run, "delete stored pages (not those a checkpoint uses: delete the checkpoint instead)")
    rm.add_argument("ids", nargs="+", metavar="ID", help="artifact ids, e.g. mem_L3_1")


async def run(inv: Invocation) -> int:
    keys = list(dict.fromkeys(artifact_id(value, checkpoint_command="delete") for value in inv.args.ids))
    async with inv.bridge() as bridge:
        limit = inv.settings.concurrency
        for key, there in zip(keys, await bounded_gather(map(partial(_exists, bridge), keys), limit), strict=True):
            if not there:
                raise ObjectNotFoundError(key)
        checkpoints = await bridge.list_checkpoints()
        manifests = await bounded_gather(map(bridge.get_checkpoint_manifest, checkpoints), limit)
        for checkpoint, manifest in zip(checkpoints, manifests, strict=True):
            used = sorted({e.artifact_id for e in manifest.pages} & set(keys)) if manifest else []
            if used:
                raise InvalidInputError(
                    f"{', '.join(used)}: used by checkpoint {checkpoint}; "
                    f"`tierstore checkpoints delete {checkpoint}` deletes it with the artifacts only it uses"
                )
        for key in keys:
            await bridge.delete_page(key)
    if inv.json:
        print_json({"deleted": keys})
    else:
        for key in keys:
            print(f"deleted {key}")
    return 0


async def _exists(bridge: ArtifactsBridge, key: str) -> bool:
    """Whether a page is stored under ``key``: a damaged one is, and can be deleted."""
    try:
        return await bridge.get_metadata(key) is not None
    except IntegrityError:
        return True
