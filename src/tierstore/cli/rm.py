"""``tierstore rm ID...``: delete stored pages.

Contract: all ids are checked before anything is deleted: a missing one is ``ObjectNotFoundError`` (exit 5), and one
that a listed checkpoint uses is refused (exit 2) with the checkpoint to delete instead, so ``rm`` never breaks a
checkpoint it can see (a session's command also sees its user's checkpoints, which may use the shared pages it can
delete); one that a live lease names or wrote (a running chuk agent's page, or a checkpoint's being
written) is refused too (exit 2), as deleting it would fail that agent's next fault. A damaged page (its metadata
cannot be read) is deleted like any other.
"""

from __future__ import annotations

from functools import partial

from tierstore.bridge import ArtifactsBridge
from tierstore.cli.context import AddCommand, Invocation, artifact_id
from tierstore.cli.render import print_json
from tierstore.concurrency import bounded_gather
from tierstore.errors import IntegrityError, InvalidInputError, ObjectNotFoundError


def register(add: AddCommand) -> None:
    """Add ``tierstore rm ID...`` to the parser."""
    rm = add("rm", run, "delete stored pages (not those a checkpoint uses: delete the checkpoint instead)")
    rm.add_argument("ids", nargs="+", metavar="ID", help="artifact ids, e.g. mem_L3_1")


async def run(inv: Invocation) -> int:
    """``tierstore rm``: delete the pages named; none of them if one is used by a checkpoint or a running agent."""
    keys = list(dict.fromkeys(artifact_id(value, checkpoint_command="delete") for value in inv.args.ids))
    async with inv.bridge() as bridge:
        limit = inv.settings.concurrency
        for key, there in zip(keys, await bounded_gather(map(partial(_exists, bridge), keys), limit), strict=True):
            if not there:
                raise ObjectNotFoundError(key)
        # A session's bridge also deletes its user's shared pages: the user's checkpoints and leases protect those.
        shared = inv.user_id is not None and inv.session_id is not None
        user = ArtifactsBridge(bridge.backend, user_id=inv.user_id) if shared else None
        for protector in (bridge, user) if user is not None else (bridge,):
            await _refuse_checkpointed(protector, keys, limit)
            await _refuse_leased(protector, keys, limit)
        for key in keys:
            await bridge.delete_page(key)
    if inv.json:
        print_json({"deleted": keys})
    else:
        for key in keys:
            print(f"deleted {key}")
    return 0


async def _refuse_checkpointed(bridge: ArtifactsBridge, keys: list[str], limit: int) -> None:
    """InvalidInputError for keys a checkpoint ``bridge`` lists uses, naming the checkpoint to delete instead."""
    checkpoints = await bridge.list_checkpoints()
    manifests = await bounded_gather(map(bridge.get_checkpoint_manifest, checkpoints), limit)
    for checkpoint, manifest in zip(checkpoints, manifests, strict=True):
        used = sorted({e.artifact_id for e in manifest.pages} & set(keys)) if manifest else []
        if used:
            raise InvalidInputError(
                f"{', '.join(used)}: used by checkpoint {checkpoint}; "
                f"`tierstore checkpoints delete {checkpoint}` deletes it with the artifacts only it uses"
            )


async def _exists(bridge: ArtifactsBridge, key: str) -> bool:
    """Whether a page is stored under ``key``: a damaged one is, and can be deleted."""
    try:
        return await bridge.get_metadata(key) is not None
    except IntegrityError:
        return True


async def _refuse_leased(bridge: ArtifactsBridge, keys: list[str], limit: int) -> None:
    """InvalidInputError for keys a live lease (judged in the store's time) names or owns, as ``gc`` keeps them."""
    refs = bridge.references("rm")
    named, running, everything = await refs.protection(await refs.store_time())
    if everything:
        raise InvalidInputError(
            "a lease that cannot be read protects every page until it expires (`tierstore fsck` names it); "
            "nothing was deleted"
        )

    async def owner(key: str) -> str | None:
        try:
            info = await refs.head(key)
        except IntegrityError:  # damaged: deleted like any other, as no running writer can use it
            return None
        return None if info is None else info.metadata.get("ckpt")

    owners = await bounded_gather(map(owner, keys), limit)
    used = [key for key, by in zip(keys, owners, strict=True) if key in named or by in running]
    if used:
        raise InvalidInputError(
            f"{', '.join(used)}: in use by a running chuk agent or checkpoint (a live lease; `tierstore fsck` lists "
            "it in progress); end it, or wait for its lease to expire, then try again"
        )
