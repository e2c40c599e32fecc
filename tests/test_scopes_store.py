"""The registry of scopes, the store-level handle, the settings and the command line's scopes (issue 28).

* A scope's first page or manifest registers it (``scope_{U}``, ``scope_{U}.{S}`` at the root: pinned keys, the ids in
  clear, create-if-absent, user first); a failed registration fails that write and the next one tries again.
* ``Store.users()`` / ``sessions(user)`` count each scope's pages and bytes from listings; ``Store.bridge`` binds;
  ``legacy()`` is the root.
* ``TIERSTORE_USER_ID`` / ``TIERSTORE_SESSION_ID`` bind ``from_env()`` bridges; a hostile one is ConfigurationError.
* ``--user`` / ``--session`` bind every command's bridge; ``tierstore users`` / ``sessions`` list the registry."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.contract.test_scopes import HOSTILE_IDS
from tests.environment import environment
from tests.soak import scaled
from tierstore import (
    ArtifactsBridge,
    BackendUnavailableError,
    ConfigurationError,
    FileSystemBackend,
    InMemoryBackend,
    InvalidInputError,
    MemoryPage,
    Modality,
    Store,
    load_settings,
)
from tierstore.cli.app import main
from tierstore.clock import ManualClock
from tierstore.codec import PLAIN
from tierstore.protocol.erasure import ErasureOptions, erase_session
from tierstore.scope_records import session_key, user_key

ALICE = "scope_53edp2jylsnozd6ns4wbwo3gpu"
ALICE_S1 = f"{ALICE}.benf2bzp4lkpscer5rdinhrttm"


def page(name: str, size: int = 10) -> MemoryPage:
    return MemoryPage(page_id=name, modality=Modality.TEXT, content="x" * size)


async def scope_keys(backend: InMemoryBackend) -> list[str]:
    return sorted([entry.key async for entry in backend.list("scope_")])


def test_registry_keys_are_pinned() -> None:
    assert (user_key("alice"), session_key("alice", "s1")) == (ALICE, ALICE_S1)
    assert user_key(None) == "scope_p7v7ezqcpabcw3lfcdrzpar3o4"


async def test_a_scopes_first_write_registers_it_once_with_its_ids_in_clear() -> None:
    backend = InMemoryBackend()
    await ArtifactsBridge(backend).store_page(page("legacy"))
    assert await scope_keys(backend) == []  # the root registers nothing
    alice = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    assert await scope_keys(backend) == []  # binding writes nothing: the first write does
    await alice.store_page(page("p"))
    assert await scope_keys(backend) == [ALICE, ALICE_S1]
    first = await backend.get(ALICE_S1)
    await ArtifactsBridge(backend, user_id="alice", session_id="s1").store_page(page("q"))
    assert await backend.get(ALICE_S1) == first  # create-if-absent: the first write's record stays
    assert first is not None
    assert PLAIN.decode_record(first, ALICE_S1) == {
        "user": "alice",
        "session": "s1",
        "created": PLAIN.decode_record(first, ALICE_S1)["created"],
    }
    alone = await backend.get(ALICE)
    assert alone is not None
    assert set(PLAIN.decode_record(alone, ALICE)) == {"user", "created"}


@pytest.mark.parametrize("how", ["checkpoint of nothing", "shared page", "session without user"])
async def test_every_first_write_registers(how: str) -> None:
    backend = InMemoryBackend()
    if how == "checkpoint of nothing":
        await ArtifactsBridge(backend, user_id="alice", session_id="s1").checkpoint([], name="empty")
        expected = [ALICE, ALICE_S1]
    elif how == "shared page":
        await ArtifactsBridge(backend, user_id="alice", session_id="s1").store_page(page("p"), scope="user")
        expected = [ALICE]
    else:
        await ArtifactsBridge(backend, session_id="s1").store_page(page("p"))
        expected = [user_key(None), session_key(None, "s1")]
    assert await scope_keys(backend) == sorted(expected)


async def test_a_failed_registration_fails_the_write_and_the_next_write_registers() -> None:
    class Refusing(InMemoryBackend):
        refuse = True

        async def put(self, key: str, data: Any, **kwargs: Any) -> None:
            if self.refuse and key.startswith("scope_"):
                raise BackendUnavailableError("the store is away")
            await super().put(key, data, **kwargs)

    backend = Refusing()
    bridge = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    with pytest.raises(BackendUnavailableError):
        await bridge.store_page(page("p"))
    assert [entry.key async for entry in backend.list()] == []  # no page of an unregistered scope
    backend.refuse = False
    stored = await bridge.store_page(page("p"))
    assert await scope_keys(backend) == [ALICE, ALICE_S1]
    assert await bridge.list_pages() == [stored]


async def test_store_lists_users_and_sessions_with_pages_and_bytes(tmp_path: Path) -> None:
    backend = FileSystemBackend(tmp_path)
    async with Store(backend) as store:
        await store.legacy().store_page(page("legacy", 1000))
        alice = {s: store.bridge(user_id="alice", session_id=s) for s in ("s1", "s2")}
        sizes = {
            "s1": [await alice["s1"].store_page(page(f"p{i}", 100)) for i in range(2)],
            "s2": [await alice["s2"].store_page(page("p", 200))],
        }
        await alice["s1"].store_page(page("shared", 300), scope="user")
        await store.bridge(user_id="bob").store_page(page("bob's"))
        await store.bridge(session_id="anonymous").store_page(page("nobody's"))
        users = await store.users()
        listed = {(u.user_id, u.sessions, u.pages) for u in users}
        assert listed == {(None, 1, 1), ("alice", 2, 4), ("bob", 0, 1)}
        assert [u.user_id for u in users] == [None, "alice", "bob"]
        sessions = await store.sessions("alice")
        assert [(s.session_id, s.pages) for s in sessions] == [("s1", 2), ("s2", 1)]
        by_session = {s.session_id: s.bytes for s in sessions}
        for session, artifacts in sizes.items():
            sizes_stored = [
                e.size_bytes for e in await alice[session].list_page_entries() if e.artifact_id in artifacts
            ]
            assert by_session[session] == sum(sizes_stored)
        assert [s.session_id for s in await store.sessions()] == ["anonymous"]
        assert await store.sessions("carol") == []
        assert await store.legacy().list_pages() == ["mem_L3_1"]
        for hostile in HOSTILE_IDS:
            with pytest.raises(InvalidInputError):
                store.bridge(user_id=hostile)
            with pytest.raises(InvalidInputError):
                await store.sessions(hostile)


def test_settings_bind_from_env_bridges_and_refuse_hostile_ids(tmp_path: Path) -> None:
    with environment({"TIERSTORE_URL": "memory://", "TIERSTORE_USER_ID": "alice", "TIERSTORE_SESSION_ID": "s1"}):
        bridge = ArtifactsBridge.from_env()
        assert (bridge.user_id, bridge.session_id) == ("alice", "s1")
    with environment({"TIERSTORE_URL": "memory://", "TIERSTORE_USER_ID": "", "TIERSTORE_SESSION_ID": ""}):
        assert (load_settings().user_id, load_settings().session_id) == (None, None)  # empty is unset
    for variable in ("TIERSTORE_USER_ID", "TIERSTORE_SESSION_ID"):
        for hostile in ("a/b", "..", "tab\there", "e\u0301", "x" * 129):
            with environment({variable: hostile}), pytest.raises(ConfigurationError, match=variable):
                load_settings()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def artifacts(out: str) -> list[str]:
    return [entry["artifact_id"] for entry in json.loads(out)]


def test_the_command_line_binds_with_user_and_session_and_lists_scopes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIERSTORE_USER_ID", raising=False)
    monkeypatch.delenv("TIERSTORE_SESSION_ID", raising=False)
    url = ("--url", str(tmp_path))

    async def fill() -> None:
        backend = FileSystemBackend(tmp_path)
        await ArtifactsBridge(backend).store_page(page("legacy"))
        await ArtifactsBridge(backend, user_id="alice", session_id="s1").store_page(page("mine"))

    asyncio.run(fill())
    assert artifacts(run(capsys, "ls", "--json", *url)[1]) == ["mem_L3_1"]
    assert artifacts(run(capsys, "ls", "--json", "--user", "alice", "--session", "s1", *url)[1]) == ["mem_L3_1001"]
    with environment({"TIERSTORE_USER_ID": "alice", "TIERSTORE_SESSION_ID": "s1"}):
        assert artifacts(run(capsys, "ls", "--json", *url)[1]) == ["mem_L3_1001"]
        assert artifacts(run(capsys, "ls", "--json", "--session", "s2", *url)[1]) == []  # the option wins
    code, out = run(capsys, "users", "--json", *url)
    assert code == 0
    assert [(u["user_id"], u["sessions"], u["pages"]) for u in json.loads(out)["users"]] == [("alice", 1, 1)]
    code, out = run(capsys, "sessions", "--json", "--user", "alice", *url)
    assert (code, [s["session_id"] for s in json.loads(out)["sessions"]]) == (0, ["s1"])
    code, out = run(capsys, "users", *url)
    assert code == 0
    assert out.splitlines()[0].split() == ["USER", "SESSIONS", "PAGES", "SIZE", "CREATED", "STATE"]
    for option in ("--user", "--session"):
        assert main(["ls", option, "a/b", *url]) == 2
        assert "InvalidInputError" in capsys.readouterr().err


async def test_a_burst_of_first_writes_registers_the_scope_once() -> None:
    written: list[str] = []

    class Counting(InMemoryBackend):
        async def put(self, key: str, data: Any, **kwargs: Any) -> None:
            written.append(key)
            await super().put(key, data, **kwargs)

    bridge = ArtifactsBridge(Counting(), user_id="alice", session_id="s1")
    await asyncio.gather(*(bridge.store_page(page(f"p{i}")) for i in range(scaled(20))))
    assert [key for key in written if key.startswith("scope_")] == [ALICE, ALICE_S1]


async def test_a_bridge_that_outlives_an_erasure_of_its_scope_registers_it_again() -> None:
    clock = ManualClock()
    backend = InMemoryBackend()
    bridge = ArtifactsBridge(backend, user_id="alice", session_id="s1", clock=clock)
    await bridge.store_page(page("before"))

    async def no_wait(seconds: float) -> None:
        clock.advance(seconds)

    await erase_session(backend, "alice", "s1", ErasureOptions(settle=timedelta(0), clock=clock, sleep=no_wait))
    assert await scope_keys(backend) == [ALICE]  # the session's record went last; the user's stays
    after = await bridge.store_page(page("after"))  # a page of the scope's next life names it again
    assert await scope_keys(backend) == [ALICE, ALICE_S1]
    assert [s.session_id for s in await Store(backend).sessions("alice")] == ["s1"]
    assert await bridge.list_pages() == [after]
