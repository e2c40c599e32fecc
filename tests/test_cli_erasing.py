"""A killed erasure (issue 28): ``tierstore users rm`` / ``sessions rm`` killed between E1 and E5 leaves the scope
erasing; ``tierstore users`` and ``sessions`` show it so (``erasing`` under STATE, ``"erasing": true`` in
``--json``) and nothing else so; the same command run again resumes it (``resumed``) and leaves nothing of it.

The erasure is a process of its own, killed (SIGKILL: no ``finally`` runs) either as soon as its first erasing tomb is
in the store (E1, the rest of its steps not begun or under way) or while it waits out its settle period (E4:
everything but the tombs and the registry records deleted).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Store
from tests.contract.conftest import text_page
from tests.test_cli import Cli, target
from tierstore import ArtifactsBridge
from tierstore.backends.base import StorageBackend
from tierstore.protocol.records import is_erasing_tomb
from tierstore.scope_records import session_key, user_key
from tierstore.scopes import scope_of, scope_prefix, user_prefix

pytestmark = pytest.mark.one_data_path


async def _seed(backend: StorageBackend) -> None:
    for user, session in (("alice", "s1"), ("alice", "s2"), ("bob", "s1")):
        async with ArtifactsBridge(backend, user_id=user, session_id=session) as bridge:
            await bridge.store_page(text_page(f"{user} {session}", "a page"))
            await bridge.checkpoint([text_page(f"{user} {session} ckpt", "checkpointed")], name="c")
            await bridge.store_page(text_page(f"{user} shared", "shared"), scope="user")


async def _keys(backend: StorageBackend, prefix: str) -> list[str]:
    return [entry.key async for entry in backend.list(prefix)]


def _reached(backend: StorageBackend, prefix: str, when: str) -> bool:
    keys = asyncio.run(_keys(backend, prefix))
    tombs = [key for key in keys if is_erasing_tomb(key[len(scope_of(key)) :])]
    if when == "marked":
        return bool(tombs)
    return bool(tombs) and len(tombs) == len(keys)  # E4: all else deleted, the tombs and the records left


@pytest.mark.parametrize(("erased", "when"), [("user", "marked"), ("session", "settling")])
def test_a_killed_erasure_is_listed_as_erasing_and_the_same_command_resumes_it(
    store: Store, tmp_path: Path, erased: str, when: str
) -> None:
    if store.rig == "memory":
        pytest.skip("memory:// lives for one command: no erasure outlives its process")
    backend = store.open()
    asyncio.run(_seed(backend))
    url, env = target(store)
    url = url.removesuffix("/agent")  # the rigs' backends store at the bucket's root
    cli = Cli(cwd=tmp_path, env={"HOME": str(tmp_path / "home"), **env})
    rm = ["users", "rm", "alice"] if erased == "user" else ["sessions", "rm", "s1", "--user", "alice"]
    prefix = user_prefix("alice") if erased == "user" else scope_prefix("alice", "s1")

    eraser = subprocess.Popen(
        [sys.executable, "-m", "tierstore", *rm, "--settle", "600", "--url", url],
        cwd=tmp_path,
        env=cli.environment({}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120  # a bound on a hang, not a measurement
        while not _reached(backend, prefix, when):
            assert eraser.poll() is None, f"the erasure ended before it was killed: {eraser.stderr.read()}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, f"the erasure never reached {when}"
            time.sleep(0.05)
    finally:
        eraser.kill()
        eraser.wait()
        eraser.stderr.close()  # type: ignore[union-attr]

    listed = cli.batch(
        users_json=["users", "--json", "--url", url],
        users=["users", "--url", url],
        sessions_json=["sessions", "--user", "alice", "--json", "--url", url],
        sessions=["sessions", "--user", "alice", "--url", url],
        resume=[*rm, "--settle", "0", "--json", "--url", url],
        after=["users", "--json", "--url", url],
        after_sessions=["sessions", "--user", "alice", "--json", "--url", url],
    )
    users = {u["user_id"]: u["erasing"] for u in json.loads(listed["users_json"].stdout)["users"]}
    assert users == {"alice": erased == "user", "bob": False}
    sessions = {s["session_id"]: s["erasing"] for s in json.loads(listed["sessions_json"].stdout)["sessions"]}
    assert sessions == {"s1": True, "s2": erased == "user"}  # a session of a user being erased is being erased
    rows = {line.split()[0]: line.split()[-1] for line in listed["users"].stdout.splitlines()[1:]}
    assert rows == {"alice": "erasing" if erased == "user" else "live", "bob": "live"}
    rows = {line.split()[0]: line.split()[-1] for line in listed["sessions"].stdout.splitlines()[1:]}
    assert rows == {"s1": "erasing", "s2": "erasing" if erased == "user" else "live"}

    resumed = json.loads(listed["resume"].stdout)["erased"]
    assert resumed["resumed"] is True, resumed
    after = {u["user_id"]: u["erasing"] for u in json.loads(listed["after"].stdout)["users"]}
    assert after == ({"bob": False} if erased == "user" else {"alice": False, "bob": False})
    left = {s["session_id"] for s in json.loads(listed["after_sessions"].stdout)["sessions"]}
    assert left == (set() if erased == "user" else {"s2"})
    assert asyncio.run(_keys(backend, prefix)) == []
    record = user_key("alice") if erased == "user" else session_key("alice", "s1")
    assert asyncio.run(_keys(backend, record)) == []
    assert asyncio.run(_keys(backend, scope_prefix("bob", "s1"))) != []
