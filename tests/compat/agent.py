"""One run of a chuk agent on tierstore, as its own process: ``python -m tests.compat.agent RIG SPEC_JSON ACTION ...``.

Each run builds a new chuk ``MemoryManager``, attaches it to the rig's store, does its work and prints one JSON line
describing what the model would see (manifest, search results, context), then closes the bridge ``attach`` returned,
as an agent that ends cleanly does (``--crash``: prints, then kills itself with SIGKILL before a checkpoint, its
lease taken for ``--lease-ttl`` seconds).

* ``new N`` - N pages with hints ``topic <i>``; pins ``msg_0``; evicts every third page to L3 and the one after it
  to L4; checkpoints;
* ``restart BASE`` - restores checkpoint BASE, reports, checkpoints again; ``--delete-base`` then deletes BASE;
  ``--fault ID`` faults page ID in at level 0 and evicts it to its tier again; ``--change ID`` faults it, changes
  its content and evicts it again;
* ``--before-scopes``: the agent is attached as the release before scopes did it, at the root of the store (not in
  its session's scope); ``restart`` of a root checkpoint without it carries that checkpoint over into the session, and
  one that fails for a reason a race with another process explains (the checkpoint or a page of it deleted
  meanwhile) prints ``{"error": <its class>}`` instead;
* ``--die-at N``: the process kills itself (SIGKILL) as it makes its N-th call to the store, counted from the
  restore on (nothing it does after that call's start reaches the store);
* ``ends`` - one ``new 3`` agent (pages ``<way>_msg_<i>``, no checkpoint) for each way an agent can end (``ENDS``),
  one after another, each ending so; the last, ``exit``, is left attached as the process exits normally.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from typing import Any
from unittest.mock import patch

from chuk_ai_session_manager.memory import MemoryManager, StorageTier as ChukTier

import tierstore.chuk.manager
from tests.rigs import load
from tierstore import ArchivedPageError, ArtifactsBridge, IntegrityError, ObjectNotFoundError, SyncBridge
from tierstore.integrations.chuk import attach, checkpoint, restore

SESSION = "agent_session"
ENDS = ("aclose", "bridge_aclose", "with", "bridge_with", "exit")
"""How an agent can end but by a kill: ``aclose()`` of the bridge ``attach`` returned or of the one it was given,
``async with`` either, or the process exiting without closing anything (a ``SyncBridge`` over its bridge, used and
closed first, does not end it)."""


@contextmanager
def before_scopes() -> Iterator[None]:
    """``attach`` as the release before scopes did it: the agent works on the bridge as given, at the root."""
    with patch.object(tierstore.chuk.manager, "bound_bridge", lambda bridge, session, user: bridge):
        yield


class DiesAt:
    """A backend whose process dies (SIGKILL) at its N-th call once armed: what a kill at that step leaves."""

    CALLS = ("put", "get", "get_range", "head", "delete", "delete_many", "set_tier", "restore", "list")

    def __init__(self, inner: Any) -> None:
        self.inner, self.left = inner, -1

    def arm(self, calls: int) -> None:
        self.left = calls

    def _step(self) -> None:
        if self.left > 0:
            self.left -= 1
            if self.left == 0:
                os.kill(os.getpid(), signal.SIGKILL)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in self.CALLS:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._step()
            return attribute(*args, **kwargs)

        return call


def hint(i: int) -> str:
    return f"topic {i} notes"


async def new_agent(vm: Any, count: int, prefix: str = "") -> None:
    for i in range(count):
        page = vm.create_page(f"turn {i}: " + "words " * 30, page_id=f"{prefix}msg_{i}", hint=hint(i))
        assert await vm.add_to_working_set(page)
    vm.pin_page(f"{prefix}msg_0")
    for i in range(1, count):
        if i % 3 == 1:
            assert await vm.evict_page(f"{prefix}msg_{i}", ChukTier.L3)
        elif i % 3 == 2:
            assert await vm.evict_page(f"{prefix}msg_{i}", ChukTier.L4)


async def end_each_way(args: argparse.Namespace) -> dict[str, Any]:
    """An agent per way of ending (``ENDS``), each ended so; returns each one's evicted artifacts."""
    evicted: dict[str, list[str]] = {}
    for way in ENDS:
        vm = MemoryManager(session_id=way)
        bridge = ArtifactsBridge(load(args.rig).open_backend(json.loads(args.spec)))
        adapter = attach(vm, bridge)
        if way == "with":
            async with adapter:
                await new_agent(vm, 3, f"{way}_")
        elif way == "bridge_with":
            async with bridge:
                await new_agent(vm, 3, f"{way}_")
        else:
            await new_agent(vm, 3, f"{way}_")
        if way == "aclose":
            await adapter.aclose()
        elif way == "bridge_aclose":
            await bridge.aclose()
        elif way == "exit":
            with SyncBridge(bridge) as sync:  # a side call from sync code, on a loop of its own: the agent goes on
                assert sync.list_checkpoints() == []
        evicted[way] = sorted(e.artifact_id for e in vm.page_table.entries.values() if e.artifact_id)
    return evicted


async def fault_and_evict(vm: Any, page_id: str, change: bool) -> None:
    tier = vm.page_table.lookup(page_id).tier
    result = await vm.handle_fault(page_id, target_level=0)
    assert result.success, result.error
    if change:
        result.page.content += " and a change"
    assert await vm.evict_page(page_id, tier)


async def report(vm: Any) -> dict[str, Any]:
    context = vm.build_context()
    archived: dict[str, str] = {}
    for entry in vm.page_table.entries.values():
        if entry.tier == ChukTier.L4:
            try:
                await vm._bridge.fault(entry.page_id, entry.artifact_id)
            except ArchivedPageError as exc:
                archived[entry.page_id] = str(exc)
    found = await vm.search_pages("topic", limit=1000)
    return {
        "available": [[p.page_id, p.tier, p.hint] for p in context.manifest.available_pages],
        "working_set": [[p.page_id, p.level, p.tokens_est] for p in context.manifest.working_set],
        "found": sorted(r.page_id for r in found.results),
        "l0": vm.working_set.get_l0_page_ids(),
        "pinned": sorted(p for p in vm.page_table.entries if vm.working_set.is_pinned(p)),
        "artifacts": {pid: e.artifact_id for pid, e in vm.page_table.entries.items() if e.artifact_id},
        "archived": archived,
        "context": context.developer_message.count("words"),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.action == "ends":
        return await end_each_way(args)
    vm = MemoryManager(session_id=SESSION)
    backend = load(args.rig).open_backend(json.loads(args.spec))
    if args.die_at:
        backend = DiesAt(backend)
    with before_scopes() if args.before_scopes else nullcontext():
        adapter = attach(vm, ArtifactsBridge(backend, lease_ttl=timedelta(seconds=args.lease_ttl)))
    out: dict[str, Any] = {}
    if args.action == "new":
        await new_agent(vm, int(args.arg or 9))
    else:
        if isinstance(backend, DiesAt):
            backend.arm(args.die_at)
        try:
            await restore(vm, args.arg)
        except (IntegrityError, ObjectNotFoundError) as exc:
            if args.before_scopes:
                raise
            await adapter.aclose()
            return {"error": type(exc).__name__}
        out["restored"] = await report(vm)
        for page_id in args.fault:
            await fault_and_evict(vm, page_id, change=False)
        for page_id in args.change:
            await fault_and_evict(vm, page_id, change=True)
    if args.crash:
        return out
    out["checkpoint"] = await checkpoint(vm, f"{args.action} run")
    out["before"] = await report(vm)
    if args.delete_base:
        assert await adapter.bridge.delete_checkpoint(args.arg)
    await adapter.aclose()
    return out


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("rig")
    parser.add_argument("spec")
    parser.add_argument("action", choices=["new", "restart", "ends"])
    parser.add_argument("arg", nargs="?", default="")
    parser.add_argument("--delete-base", action="store_true")
    parser.add_argument("--crash", action="store_true")
    parser.add_argument("--before-scopes", action="store_true")
    parser.add_argument("--die-at", type=int, default=0)
    parser.add_argument("--lease-ttl", type=float, default=600.0)
    parser.add_argument("--fault", action="append", default=[])
    parser.add_argument("--change", action="append", default=[])
    return parser.parse_args(argv)


def main() -> None:
    args = parse(sys.argv[1:])
    print(json.dumps(asyncio.run(run(args))), flush=True)
    if args.crash:  # after the loop ended, as a kill between two renewals would: no close, no exit hook
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main()
