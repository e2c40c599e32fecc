"""Capability: core (issue 28). Versions of a page id in a scope, on every rig: each store of a page id by a bound
bridge is a new version; ``list_versions`` gives them newest first (the session's, then the user's); the latest is the
last stored (by a store that began after every other had returned); a crashed store (record written, page not) and
a stale or damaged record are skipped, never a wrong page (``fsck`` lists a record without its page, ``gc`` deletes it
past the grace period, an unreadable one is a problem); ``delete_page_id`` removes every version; another scope never
sees one; the latest is found in at most 3 requests, counted below the bridge; ``migrate`` carries versions."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta

import pytest

from tests.contract.conftest import text_page
from tests.soak import scaled
from tests.wrappers import Counted, Observed
from tierstore import (
    ArtifactsBridge,
    BackendUnavailableError,
    IntegrityError,
    MemoryPage,
    NotSupportedError,
    ObjectNotFoundError,
)
from tierstore.backends.base import StorageBackend
from tierstore.backends.memory import InMemoryBackend
from tierstore.maintenance import fsck, gc, migrate
from tierstore.scope_codec import ScopedCodec
from tierstore.scopes import scope_prefix
from tierstore.versions import VersionRecord, version_key, versions_prefix

SESSION = scope_prefix("alice", "s1")


def page(page_id: str, content: str) -> MemoryPage:
    return text_page(page_id, content)


async def raw_keys(backend: StorageBackend, prefix: str) -> list[str]:
    return sorted([entry.key async for entry in backend.list(prefix)])


async def contents(bridge: ArtifactsBridge, page_id: str) -> list[tuple[str, int, str]]:
    """Each listed version's scope, number and content (loaded by artifact id and by version)."""
    shown: list[tuple[str, int, str]] = []
    for version in await bridge.list_versions(page_id):
        by_id = await bridge.load_page(version.artifact_id)
        by_version = await bridge.load_page_id(page_id, version.version, scope=version.scope)
        assert by_id is not None
        assert by_version is not None
        assert by_id.content == by_version.content
        shown.append((version.scope, version.version, str(by_id.content)))
    return shown


async def test_versions_list_newest_first_and_the_latest_is_the_last_stored(backend: StorageBackend) -> None:
    s1 = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    s2 = ArtifactsBridge(backend, user_id="alice", session_id="s2")
    stored = [await s1.store_page(page("p", f"p{n}")) for n in range(1, 4)]
    shared = await s1.store_page(page("p", "shared"), scope="user")
    other = await s1.store_page(page("q", "q1"))
    versions = await s1.list_versions("p")
    assert [v.artifact_id for v in versions] == [*reversed(stored), shared]
    assert all(v.page_id == "p" and v.tier == "L3" and v.size_bytes > 0 for v in versions)
    assert versions[0].created_at >= versions[2].created_at
    assert await contents(s1, "p") == [
        ("session", 3, "p3"),
        ("session", 2, "p2"),
        ("session", 1, "p1"),
        ("user", 1, "shared"),
    ]
    latest = await s1.load_page_id("p")
    assert latest is not None
    assert latest.content == "p3"
    from_user = await s1.load_page_id("p", scope="user")
    assert from_user is not None
    assert from_user.content == "shared"
    from_s2 = await s2.load_page_id("p")  # s2 has no version of its own: its user's
    assert from_s2 is not None
    assert from_s2.content == "shared"
    assert [(v.scope, v.version) for v in await s2.list_versions("p")] == [("user", 1)]
    assert await s1.load_page_id("p", 4) is None
    assert await s1.load_page_id("absent") is None
    assert [v.artifact_id for v in await s1.list_versions("q")] == [other]
    assert sorted(await s1.list_pages()) == sorted([*stored, shared, other])  # records are no pages
    # Maintenance, the root's and the scope's, leaves versions and their records alone.
    root = ArtifactsBridge(backend)
    assert (await fsck(root)).problems == []
    await gc(root, grace=timedelta(0), tomb_retention=timedelta(0))
    await gc(s1, grace=timedelta(0), tomb_retention=timedelta(0))
    assert [v.artifact_id for v in await s1.list_versions("p")] == [*reversed(stored), shared]


async def test_another_scope_never_sees_a_version(backend: StorageBackend) -> None:
    alice = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    await alice.store_page(page("p", "alice's"))
    await alice.store_page(page("p", "alice's shared"), scope="user")
    for user, session in (("bob", "s1"), ("bob", None), (None, "s1")):
        stranger = ArtifactsBridge(backend, user_id=user, session_id=session)
        assert await stranger.list_versions("p") == []
        assert await stranger.load_page_id("p") is None
        assert await stranger.load_page_id("p", 1) is None
        assert await stranger.delete_page_id("p") == 0
    other_session = ArtifactsBridge(backend, user_id="alice", session_id="s2")
    assert [v.scope for v in await other_session.list_versions("p")] == ["user"]
    assert await other_session.load_page_id("p", scope="session") is None
    root = ArtifactsBridge(backend)
    await root.store_page(page("p", "the root's"))
    for call in (root.list_versions("p"), root.load_page_id("p"), root.delete_page_id("p")):
        with pytest.raises(NotSupportedError, match="bound to a user or session"):
            await call
    assert await raw_keys(backend, "v.") == []  # the root's store_page writes no version record
    assert [v.scope for v in await alice.list_versions("p")] == ["session", "user"]


@pytest.mark.atomic_create
async def test_concurrent_stores_number_versions_in_real_time_order(backend: StorageBackend) -> None:
    """Promise: versions of stores that overlap in time are distinct, in no promised order; a store that began after
    another returned has a higher version; so the latest, once they have all returned, is one of the stores that
    began after the last one before them had returned."""
    writers = [ArtifactsBridge(backend, user_id="alice", session_id="s1") for _ in range(3)]
    rounds: list[set[str]] = []
    for r in range(scaled(2)):
        stored = await asyncio.gather(*(w.store_page(page("p", f"round {r} by {i}")) for i, w in enumerate(writers)))
        rounds.append(set(stored))
    versions = await writers[0].list_versions("p")
    assert len({v.version for v in versions}) == len(versions) == sum(map(len, rounds))
    by_round = [sorted(v.version for v in versions if v.artifact_id in artifacts) for artifacts in rounds]
    assert all(earlier[-1] < later[0] for earlier, later in itertools.pairwise(by_round))
    latest = await writers[1].load_page_id("p")
    assert latest is not None
    assert str(latest.content).startswith(f"round {len(rounds) - 1} ")
    last = await writers[2].store_page(page("p", "last"))
    assert (await writers[0].list_versions("p"))[0].artifact_id == last
    assert (latest := await writers[1].load_page_id("p")) is not None
    assert latest.content == "last"


async def test_a_store_that_crashed_after_its_record_is_skipped(backend: StorageBackend) -> None:
    bridge = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    first = await bridge.store_page(page("p", "first"))
    failing = ArtifactsBridge(
        Observed(backend, fail_put=lambda key: key.startswith(SESSION + "mem_")), user_id="alice", session_id="s1"
    )
    with pytest.raises(BackendUnavailableError):
        await failing.store_page(page("p", "never stored"))
    assert len(await raw_keys(backend, SESSION + versions_prefix("p"))) == 2  # its record was written first
    assert [v.artifact_id for v in await bridge.list_versions("p")] == [first]
    assert (loaded := await bridge.load_page_id("p")) is not None
    assert loaded.content == "first"
    assert await bridge.load_page_id("p", 2) is None
    after = await bridge.store_page(page("p", "after"))
    assert [(v.version, v.artifact_id) for v in await bridge.list_versions("p")] == [(3, after), (1, first)]
    # fsck lists the record without its page; gc deletes it once past the grace period (a store may be in flight).
    report = await fsck(bridge)
    assert [v.key for v in report.stale_versions] == [version_key("p", 2)]
    assert report.problems == []
    assert (await gc(bridge, grace=timedelta(hours=1))).versions_deleted == []
    # Whatever the grace, a record younger than the longest a store takes is kept: it may be a store in flight.
    assert (await gc(bridge, grace=timedelta(0), settle=timedelta(hours=1))).versions_deleted == []
    if backend.name not in ("in-memory", "filesystem"):
        await asyncio.sleep(1.1)  # the stale record written before gc's time, to the second (S3, Azure)
    assert (await gc(bridge, grace=timedelta(0), settle=timedelta(0))).versions_deleted == [version_key("p", 2)]
    assert len(await raw_keys(backend, SESSION + versions_prefix("p"))) == 2
    assert (await fsck(bridge)).stale_versions == []
    assert (loaded := await bridge.load_page_id("p")) is not None
    assert loaded.content == "after"


async def test_a_stale_or_damaged_record_never_gives_a_wrong_page(backend: StorageBackend) -> None:
    bridge = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    older = [await bridge.store_page(page("p", f"p{n}")) for n in (1, 2)]
    stranger = await bridge.store_page(page("q", "another page id"))
    codec = ScopedCodec("none", SESSION)
    newest = SESSION + version_key("p", 3)
    first_record = await backend.get(SESSION + version_key("p", 1))
    assert first_record is not None
    q_record = VersionRecord.parse(
        version_key("q", 1),
        codec.decode_record(await backend.get(SESSION + version_key("q", 1)) or b"", version_key("q", 1)),
        "q",
    )
    forged = {**q_record.fields(), "version": 3, "page_id": "p"}  # a well-formed record naming q's page as p's
    damages = {
        "garbage": b"not a record",
        "a flipped byte": bytes(first_record[:40]) + bytes([first_record[40] ^ 1]) + bytes(first_record[41:]),
        "another slot's record": bytes(first_record),
        "a record naming another page": codec.encode_record(version_key("p", 3), forged).data,
    }
    for what, data in damages.items():
        await backend.put(newest, data)  # version 3's slot, as if its store had written this
        loaded = await bridge.load_page_id("p")
        assert loaded is not None, what
        assert loaded.content == "p2", what
        assert [v.artifact_id for v in await bridge.list_versions("p")] == older[::-1], what
        assert await bridge.load_page_id("p", 3) is None, what
        await backend.delete(newest)
    await backend.put(newest, b"not a record")
    assert [(p.key, p.kind) for p in (await fsck(bridge)).problems] == [(version_key("p", 3), "corrupt")]
    await backend.delete(newest)
    # A version whose page was deleted behind tierstore's back: its record is stale, the older one is the latest.
    await backend.delete(SESSION + older[1])
    assert (loaded := await bridge.load_page_id("p")) is not None
    assert loaded.content == "p1"
    assert [v.artifact_id for v in await bridge.list_versions("p")] == older[:1]
    # The last record naming a present page gone bad: a load says so; delete_page_id finds the page by its description.
    await backend.put(SESSION + version_key("p", 1), b"not a record")
    with pytest.raises(IntegrityError):
        await bridge.load_page_id("p")
    assert await bridge.delete_page_id("p") == 1
    assert await bridge.load_page(older[0]) is None
    assert (await bridge.load_page(stranger)) is not None


async def test_delete_page_id_removes_every_version_and_delete_page_one(backend: StorageBackend) -> None:
    bridge = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    stored = [await bridge.store_page(page("p", f"p{n}")) for n in range(1, 4)]
    shared = await bridge.store_page(page("p", "shared"), scope="user")
    kept = await bridge.store_page(page("q", "kept"))
    assert await bridge.delete_page(stored[1]) is True  # one version: its page and its record
    assert [v.version for v in await bridge.list_versions("p", scope="session")] == [3, 1]
    assert len(await raw_keys(backend, SESSION + versions_prefix("p"))) == 2
    assert await bridge.delete_page_id("p", scope="session") == 2
    assert await bridge.list_versions("p", scope="session") == []
    assert await raw_keys(backend, SESSION + versions_prefix("p")) == []
    assert (loaded := await bridge.load_page_id("p")) is not None
    assert loaded.content == "shared"
    assert await bridge.delete_page_id("p") == 1
    assert await bridge.list_versions("p") == []
    assert await bridge.load_page_id("p") is None
    assert sorted(await bridge.list_pages()) == [kept]
    for artifact in [*stored, shared]:
        assert await bridge.load_page(artifact) is None
        with pytest.raises(ObjectNotFoundError):
            await bridge.set_tier(artifact, "L2")
    again = await bridge.store_page(page("p", "again"))
    assert [(v.version, v.artifact_id) for v in await bridge.list_versions("p")] == [(1, again)]
    assert (await fsck(bridge)).problems == []


async def test_the_latest_version_is_found_in_at_most_three_requests(backend: StorageBackend) -> None:
    counted = Counted(backend)
    bridge = ArtifactsBridge(counted, user_id="alice", session_id="s1")
    for n in range(scaled(3)):
        await bridge.store_page(page("p", f"p{n}"))
        await bridge.store_page(page(f"other {n}", "another page id"))
    await bridge.store_page(page("shared", "in the user's scope"), scope="user")
    measured = {}
    for what, lookup in {
        "latest": bridge.load_page_id("p"),
        "a given version": bridge.load_page_id("p", 1),
        "latest, from the user's scope": bridge.load_page_id("shared"),
        "absent": bridge.load_page_id("absent"),
    }.items():
        counted.reset()
        assert await lookup is not None or what == "absent"
        measured[what] = counted.total()
    assert measured == {"latest": 3, "a given version": 2, "latest, from the user's scope": 5, "absent": 2}
    assert counted.requests == {"list": 2}  # the absent one: a listing of each scope


async def test_migrate_carries_versions(backend: StorageBackend) -> None:
    bridge = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    stored = [await bridge.store_page(page("p", f"p{n}")) for n in (1, 2)]
    shared = await bridge.store_page(page("p", "shared"), scope="user")
    destination = InMemoryBackend()
    report = await migrate(backend, destination)
    assert report.problems == []
    moved = ArtifactsBridge(destination, user_id="alice", session_id="s1")
    assert [v.artifact_id for v in await moved.list_versions("p")] == [*reversed(stored), shared]
    loaded = await moved.load_page_id("p")
    assert loaded is not None
    assert loaded.content == "p2"
