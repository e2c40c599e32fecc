"""Erasure touches only what tierstore wrote (issue 28): under an erased scope's prefix, a key of a shape tierstore
never writes there, or a directory with files in it at a page's key on the local disk, is left as it was and reported
(``Erased.foreign``); everything of tierstore's there goes, and the erasure ends."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import get_args

import pytest

from tierstore import ArtifactsBridge, FileSystemBackend, InMemoryBackend, MemoryPage, Modality, ids
from tierstore.backends.base import StorageBackend
from tierstore.clock import ManualClock
from tierstore.protocol.erasure import ErasureOptions, erase_session, erase_user, erasing
from tierstore.scope_records import session_key, user_key
from tierstore.scopes import scope_prefix, user_prefix


@pytest.mark.parametrize("where", ["memory", "filesystem"])
def test_erasure_leaves_what_tierstore_did_not_write_and_reports_it(where: str, tmp_path: Path) -> None:
    backend: StorageBackend = InMemoryBackend() if where == "memory" else FileSystemBackend(tmp_path / "store")
    prefix = scope_prefix("alice", "s1")

    async def scenario() -> None:
        alice = ArtifactsBridge(backend, user_id="alice", session_id="s1")
        await alice.store_page(MemoryPage(page_id="p", modality=Modality.TEXT, content="alice's"))
        await alice.checkpoint([MemoryPage(page_id="c", modality=Modality.TEXT, content="checkpointed")], name="c")
        await backend.put(prefix + "mynotes.txt", b"a user's own notes")
        foreign = [prefix + "mynotes.txt"]
        if where == "filesystem":
            directory = tmp_path / "store" / "objects" / (prefix + "mem_L3_888888")
            directory.mkdir()
            (directory / "notes.txt").write_text("a user's file")
            foreign.append(prefix + "mem_L3_888888")
        erased = await asyncio.wait_for(erase_session(backend, "alice", "s1", ErasureOptions(settle=timedelta(0))), 30)
        assert sorted(erased.foreign) == sorted(foreign)
        assert sorted([entry.key async for entry in backend.list(prefix)]) == sorted(foreign)
        assert bytes(await backend.get(prefix + "mynotes.txt") or b"") == b"a user's own notes"
        if where == "filesystem":
            assert (tmp_path / "store" / "objects" / (prefix + "mem_L3_888888") / "notes.txt").read_text() == (
                "a user's file"
            )

    asyncio.run(scenario())


LOOKALIKES: dict[ids.KeyKind, tuple[str, ...]] = {
    "page": ("mem_L3_1.txt", "mem_L3_1x", "mem_L9_1", "mem_L3_01"),
    "manifest": ("ckpt_mine.json", "ckpt_20261206T020916409664_66aa91c4.bak", "ckpt_20261206T020916409664"),
    "lease": ("intent_letter.doc", "intent_ckpt_20261206T020916409664_66aa91c4-old", "intent_"),
    "tomb": ("tomb_stone.txt", "tomb_20261206T020916409664_66aa91c4_e.old", "tomb_stone_e"),
    "version record": ("v.history.csv", "v.j3kmu6hatlnbjfkyv75igkxnri.99", "v.j3kmu6hatlnbjfkyv75igkxnri.9999999997x"),
    "catalog snapshot": ("cat_pictures.zip", "cat_20261206T020916409664_66aa91c4.json"),
}
"""For each kind of key tierstore writes in a scope, a user's own file names that begin like one."""


def test_every_kind_has_lookalikes_and_tierstore_s_own_names_are_recognised() -> None:
    assert set(LOOKALIKES) == set(get_args(ids.KeyKind))
    stamp = "20261206T020916409664_66aa91c4"
    own = {
        "page": "mem_L3_1",
        "manifest": f"ckpt_{stamp}",
        "lease": f"intent_ckpt_{stamp}",
        "tomb": f"tomb_{stamp}_e",
        "version record": "v.j3kmu6hatlnbjfkyv75igkxnri.9999999997",
        "catalog snapshot": f"cat_{stamp}",
    }
    assert {kind: ids.kind_of(key) for kind, key in own.items()} == {kind: kind for kind in own}
    assert [name for names in LOOKALIKES.values() for name in names if ids.kind_of(name) is not None] == []


@pytest.mark.parametrize(
    ("kind", "name"),
    [pytest.param(kind, name, id=f"{kind}:{name}") for kind, names in LOOKALIKES.items() for name in names],
)
@pytest.mark.parametrize("erase", ["session", "user"])
def test_a_user_s_file_named_like_a_record_of_any_kind_is_left_and_reported(kind: str, name: str, erase: str) -> None:
    """No wait either: a lease look-alike is no unreadable lease to wait ``lease_ttl`` for (the clock never moves,
    so a wait would end in InUseError), and a tomb look-alike ending in ``_e`` marks no scope erasing."""
    backend = InMemoryBackend()
    prefix = scope_prefix("alice", "s1")
    options = ErasureOptions(settle=timedelta(0), clock=ManualClock(), sleep=_no_wait, patience=timedelta(0))

    async def scenario() -> None:
        alice = ArtifactsBridge(backend, user_id="alice", session_id="s1")
        await alice.store_page(MemoryPage(page_id="p", modality=Modality.TEXT, content="alice's"))
        await backend.put(prefix + name, b"a user's own bytes")
        assert not await erasing(backend, prefix)
        if erase == "session":
            erased = await erase_session(backend, "alice", "s1", options)
        else:
            erased = await erase_user(backend, "alice", options)
        assert erased.foreign == [prefix + name]
        assert [entry.key async for entry in backend.list(user_prefix("alice"))] == [prefix + name]
        assert bytes(await backend.get(prefix + name) or b"") == b"a user's own bytes"

    asyncio.run(scenario())


async def _no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


@pytest.mark.parametrize("erase", ["session", "user"])
def test_root_keys_that_only_begin_like_the_scope_s_registry_records_are_left_and_reported(erase: str) -> None:
    backend = InMemoryBackend()
    user, session = user_key("alice"), session_key("alice", "s1")
    lookalikes = [user + "-notes", user + ".backup", session + ".bak", session + "x", "scope_mine"]

    async def scenario() -> None:
        for chat in ("s1", "s2"):
            bridge = ArtifactsBridge(backend, user_id="alice", session_id=chat)
            await bridge.store_page(MemoryPage(page_id="p", modality=Modality.TEXT, content="alice's"))
        for key in lookalikes:
            await backend.put(key, b"a user's own bytes")
        options = ErasureOptions(settle=timedelta(0))
        if erase == "session":
            erased = await erase_session(backend, "alice", "s1", options)
            assert erased.records == [session]
            records = [user, session_key("alice", "s2")]
        else:
            erased = await erase_user(backend, "alice", options)
            assert sorted(erased.records) == sorted([user, session, session_key("alice", "s2")])
            records = []
        foreign = [key for key in lookalikes if key.startswith(erased.records[-1])]
        assert sorted(erased.foreign) == sorted(foreign)
        assert sorted([e.key async for e in backend.list("scope_")]) == sorted(records + lookalikes)

    asyncio.run(scenario())
