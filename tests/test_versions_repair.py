"""A damaged or lost version record never lets an older version pass for the latest, on any path, before, during or
after ``fsck --repair`` (issue 28; ``src/tierstore/versions.py``, ``src/tierstore/maintenance/repair.py``). Found by
the outside attack on versions (round 13): a repair stopped between deleting a damaged record and writing it again,
an explicit version or the list reading a damaged record as absent, and a repair taking a record it wrote itself for
a later store."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import pytest

from tests.contract.conftest import store_time_passes, text_page
from tests.wrappers import HeldVersionPuts
from tierstore import ArtifactsBridge, IntegrityError
from tierstore.backends.base import StorageBackend
from tierstore.maintenance import fsck
from tierstore.maintenance.repair import repair
from tierstore.scope_codec import ScopedCodec
from tierstore.scopes import scope_prefix, user_prefix
from tierstore.versions import version_key

pytestmark = pytest.mark.bridge_only

Scope = Literal["session", "user"]
PREFIX = {"session": scope_prefix("alice", "s1"), "user": user_prefix("alice")}
CALLS = ("put", "get", "get_range", "head", "delete", "delete_many")


async def _stored(backend: StorageBackend, scope: Scope, count: int, page_id: str = "p") -> ArtifactsBridge:
    bridge = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    for n in range(1, count + 1):
        await bridge.store_page(text_page(page_id, f"{scope}-v{n}"), scope=scope)
    return bridge


def _content(page: Any) -> str | None:
    return None if page is None else str(page.content)


async def _damage(backend: StorageBackend, key: str) -> None:
    record = await backend.get(key)
    assert record is not None
    await backend.put(key, bytes(record[:-3]) + bytes([record[-3] ^ 0xFF]) + bytes(record[-2:]))


async def _readers_see(bridge: ArtifactsBridge, scope: Scope, damaged: int, count: int) -> None:
    """Every path finds the damaged version itself or says it is damaged: never the version before it, another
    scope's, or a list without it."""
    try:
        latest = await bridge.load_page_id("p", scope=scope)
    except IntegrityError:
        assert damaged == count, "a damaged record below the latest stopped the latest"
    else:
        assert latest is not None
        assert latest.content == f"{scope}-v{count}", f"the latest is {latest.content}"
    try:
        explicit = await bridge.load_page_id("p", damaged)
    except IntegrityError:
        pass
    else:
        assert explicit is not None
        assert explicit.content == f"{scope}-v{damaged}", f"version {damaged} is {explicit.content}"
    try:
        listed = await bridge.list_versions("p", scope=scope)
    except IntegrityError:
        pass
    else:
        assert [v.version for v in listed] == list(range(count, 0, -1)), listed


class _StopAt:
    """``inner``, whose repair is looked at by readers once its ``at``-th call has returned, then cancelled there
    (what a process killed between two of its requests leaves)."""

    def __init__(self, inner: StorageBackend, at: int, look: Any) -> None:
        self.inner, self.at, self.look, self.calls = inner, at, look, 0
        self.repairing: asyncio.Task[Any] | None = None

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in CALLS:
            return attribute

        async def counted(*args: Any, **kwargs: Any) -> Any:
            result = await attribute(*args, **kwargs)
            self.calls += 1
            if self.calls == self.at:
                await self.look()
                assert self.repairing is not None
                self.repairing.cancel()
                await asyncio.sleep(0)
            return result

        return counted


@pytest.mark.parametrize(("scope", "damaged"), [("session", 3), ("user", 2)])
async def test_a_repair_stopped_at_any_call_never_lets_the_version_before_pass_for_the_damaged_one(
    backend: StorageBackend, scope: Scope, damaged: int
) -> None:
    """A damaged record whose page is there is replaced in place, never deleted first: a reader during the repair,
    after it was stopped at any of its calls, or after it ends sees that version or IntegrityError on every path
    (the latest, that version, the list), never the version before it; the next repair completes it."""
    calls, at = None, 1
    while calls is None or at <= calls:
        bridge = await _stored(backend, scope, 3)
        await _damage(backend, PREFIX[scope] + version_key("p", damaged))
        await _readers_see(bridge, scope, damaged, 3)

        async def look(bridge: ArtifactsBridge = bridge) -> None:
            await _readers_see(bridge, scope, damaged, 3)

        stopping = _StopAt(backend, at, look)
        stopping.repairing = asyncio.ensure_future(repair(ArtifactsBridge(stopping, user_id="alice", session_id="s1")))
        try:
            await stopping.repairing
        except asyncio.CancelledError:
            pass
        else:
            calls = stopping.calls  # the whole repair: every call has now been a stop
        await _readers_see(bridge, scope, damaged, 3)
        await repair(bridge)
        assert _content(await bridge.load_page_id("p", damaged, scope=scope)) == f"{scope}-v{damaged}"
        assert [v.version for v in await bridge.list_versions("p", scope=scope)] == [3, 2, 1]
        assert (await fsck(bridge)).problems == []
        assert await bridge.delete_page_id("p") == 3
        at += 1
    assert calls is not None
    assert calls > 10, calls  # the repair's calls were all stops


@pytest.mark.parametrize("damaged", [2, 1])
@pytest.mark.parametrize("users", [2, 0])
async def test_a_damaged_session_record_is_an_error_on_every_path_never_the_users_page(
    backend: StorageBackend, damaged: int, users: int
) -> None:
    """The session's version record is damaged, its page there: the latest, that version and the list say
    IntegrityError (the session's copy shadows the user's: its version is not the user's, nor None); the other
    versions load; the user's scope asked for by name answers for itself. Once that page is deleted, the damaged
    record is skipped again on every path."""
    bridge = await _stored(backend, "session", 2)
    sessions = [v.artifact_id for v in await bridge.list_versions("p", scope="session")][::-1]
    for n in range(1, users + 1):
        await bridge.store_page(text_page("p", f"user-v{n}"), scope="user")
    await _damage(backend, PREFIX["session"] + version_key("p", damaged))
    if damaged == 2:
        with pytest.raises(IntegrityError):
            await bridge.load_page_id("p")
    else:
        assert _content(await bridge.load_page_id("p")) == "session-v2"
    with pytest.raises(IntegrityError):
        await bridge.load_page_id("p", damaged)
    with pytest.raises(IntegrityError):
        await bridge.load_page_id("p", damaged, scope="session")
    with pytest.raises(IntegrityError):
        await bridge.list_versions("p")
    other = 3 - damaged
    assert _content(await bridge.load_page_id("p", other)) == f"session-v{other}"
    users_own = await bridge.load_page_id("p", damaged, scope="user")
    assert _content(users_own) == (f"user-v{damaged}" if users else None)
    assert [v.version for v in await bridge.list_versions("p", scope="user")] == list(range(users, 0, -1))
    with pytest.raises(IntegrityError):
        await bridge.list_versions("p", scope="session")

    await bridge.delete_page(sessions[damaged - 1])
    expected = [("session", other)] + [("user", n) for n in range(users, 0, -1)]
    assert [(v.scope, v.version) for v in await bridge.list_versions("p")] == expected
    loaded = await bridge.load_page_id("p", damaged)
    assert _content(loaded) == (f"user-v{damaged}" if users else None)  # the session holds none now


@pytest.mark.parametrize("written_by", ["this repair", "an older repair (no mark)"])
@pytest.mark.parametrize("first", ["lost", "damaged"])
@pytest.mark.parametrize("scope", ["session", "user"])
async def test_a_record_a_repair_wrote_is_never_taken_for_a_later_store(
    backend: StorageBackend, scope: Scope, first: str, written_by: str
) -> None:
    """v1 then v2. v1's record is lost (or damaged) and a repair writes it again, after v2's page was written. Then
    v2's record is lost: the next repair writes it (the record of v1 is the repair's, not a store's claim made after
    v2), and the latest is v2 again."""
    bridge = await _stored(backend, scope, 2)
    prefix = PREFIX[scope]
    first_slot, second_slot = prefix + version_key("p", 1), prefix + version_key("p", 2)
    pages = sorted([e.key async for e in backend.list(prefix + "mem_")])
    await store_time_passes(backend, pages[-1])
    if first == "lost":
        await backend.delete(first_slot)
    else:
        await _damage(backend, first_slot)
    assert (await repair(bridge)).versions_written == [first_slot]
    if written_by.startswith("an older"):  # as tierstore wrote it before records carried the mark
        codec = ScopedCodec("none", prefix)
        data = await backend.get(first_slot)
        assert data is not None
        fields = codec.decode_record(data, version_key("p", 1))
        fields.pop("rebuilt", None)
        await backend.put(first_slot, codec.encode_record(version_key("p", 1), fields).data)
    await backend.delete(second_slot)
    report = await repair(bridge)
    assert report.unrepairable == []
    assert report.versions_written == [second_slot]
    assert _content(await bridge.load_page_id("p")) == f"{scope}-v2"
    assert [v.version for v in await bridge.list_versions("p", scope=scope)] == [2, 1]
    assert (await fsck(bridge)).problems == []


async def test_a_repair_whose_put_lands_after_delete_page_id_and_a_new_store_gives_the_store_its_record_back(
    backend: StorageBackend,
) -> None:
    """The one race the in-place replacement leaves (``src/tierstore/maintenance/repair.py``): the repair's put over
    a damaged record is in flight while ``delete_page_id`` deletes the page and the record, and a store claims the
    freed number, whose record the put then replaces. The repair finds its page gone, deletes its record again
    (``late``) and looks at the scope once more: the store's page gets its record back, the latest is that store."""
    bridge = await _stored(backend, "session", 1)
    slot = PREFIX["session"] + version_key("p", 1)
    await _damage(backend, slot)
    held = HeldVersionPuts(backend)
    repairing = asyncio.ensure_future(repair(ArtifactsBridge(held, user_id="alice", session_id="s1")))
    await held.putting.wait()
    assert await bridge.delete_page_id("p") == 1
    newest = await bridge.store_page(text_page("p", "newest"))
    assert await backend.get(slot) is not None  # the store took number 1 again
    held.go.set()
    report = await repairing
    assert report.late == [slot]
    assert report.versions_written == [slot]  # the second look: the store's page, its record again
    assert [v.artifact_id for v in await bridge.list_versions("p")] == [newest]
    assert _content(await bridge.load_page_id("p")) == "newest"
