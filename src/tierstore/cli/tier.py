"""``tierstore tier ID TIER``: move a stored page to another tier in place; its storage class follows.

Contract: it reports the tier the store reports afterwards, and says so when that is not the one asked for.
"""

from __future__ import annotations

from tierstore.cli.context import AddCommand, Invocation, artifact_id, choice
from tierstore.cli.render import print_json
from tierstore.enums import StorageTier
from tierstore.errors import ObjectNotFoundError

TIERS = ("L2", "L3", "L4")


def register(add: AddCommand) -> None:
    """Add ``tierstore tier ID TIER`` to the parser."""
    tier = add("tier", run, "move a stored page to another tier in place (its storage class follows)")
    tier.add_argument("id", help="artifact id, e.g. mem_L3_1")
    tier.add_argument("tier", type=choice(TIERS), choices=TIERS, help="the tier to move it to (any case)")


async def run(inv: Invocation) -> int:
    """``tierstore tier``: move a page to another tier in place; its storage class follows."""
    key = artifact_id(inv.args.id)
    async with inv.bridge() as bridge:
        await bridge.set_tier(key, StorageTier(inv.args.tier))
        meta = await bridge.get_metadata(key)
    if meta is None:
        raise ObjectNotFoundError(key)  # deleted meanwhile
    if inv.json:
        print_json(meta)
        return 0
    storage_class = f" (storage class {meta.storage_class})" if meta.storage_class else ""
    if meta.tier == inv.args.tier:
        print(f"{key} is now in {meta.tier}{storage_class}")
    else:
        print(f"{key}: the store accepted the move to {inv.args.tier} but reports {meta.tier}{storage_class}")
    return 0
