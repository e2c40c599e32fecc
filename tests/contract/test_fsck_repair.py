"""Capability: core (issue 28). ``fsck`` reports damaged registry and version records as problems; ``fsck --repair``
(:mod:`tierstore.maintenance.repair`) writes version records again from their pages, deletes unreadable registry
records (the scope's next write registers it again) and stale version records past the grace period, never touches
a page, never writes into a scope being erased, and beside a store racing it never hides the newest version."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.contract.conftest import store_time_passes, text_page
from tests.reliability.figures import record
from tests.soak import scaled
from tests.wrappers import HeldVersionPuts, Jittered, Observed
from tierstore import ArtifactsBridge, FileSystemBackend, StorageTier
from tierstore.artifacts.scoped import PrefixedBackend
from tierstore.backends.base import StorageBackend
from tierstore.backends.memory import InMemoryBackend
from tierstore.catalog import Catalog
from tierstore.cli.app import main
from tierstore.clock import ManualClock
from tierstore.errors import ArchivedPageError, BackendUnavailableError, IntegrityError
from tierstore.maintenance import fsck
from tierstore.maintenance.repair import repair
from tierstore.protocol.erasure import ErasureOptions, erase_session
from tierstore.protocol.references import References
from tierstore.scope_codec import ScopedCodec
from tierstore.scope_records import session_key, user_key
from tierstore.scopes import scope_prefix
from tierstore.store import Store
from tierstore.versions import version_key

SESSION = scope_prefix("alice", "s1")


async def _pages(backend: StorageBackend) -> dict[str, bytes]:
    """Every page of the store, by key, with its bytes: what a repair must leave as it was."""
    found = {}
    async for entry in backend.list(""):
        if "mem_" in entry.key:
            data = await backend.get(entry.key)
            assert data is not None
            found[entry.key] = bytes(data)
    return found


async def _three_versions(backend: StorageBackend) -> tuple[ArtifactsBridge, list[str]]:
    bridge = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    stored = [await bridge.store_page(text_page("p", f"v{n}")) for n in (1, 2, 3)]
    return bridge, stored


async def test_fsck_reports_damaged_registry_and_version_records(backend: StorageBackend) -> None:
    bridge, _ = await _three_versions(backend)
    await ArtifactsBridge(backend, user_id="bob", session_id="s1").store_page(text_page("q", "bob's"))
    await backend.put(session_key("alice", "s1"), b"not a record")
    bobs = await backend.get(user_key("bob"))
    assert bobs is not None
    await backend.delete(user_key("alice"))
    await backend.put(user_key("alice"), bytes(bobs))  # a sound frame, at another scope's key
    await backend.put("scope_junk", b"neither")
    await backend.put(SESSION + version_key("p", 2), b"not a version record")

    root = await fsck(ArtifactsBridge(backend))
    damaged = {session_key("alice", "s1"), user_key("alice"), SESSION + version_key("p", 2)}
    assert {p.key for p in root.problems} == damaged
    assert "scope_junk" in root.foreign  # no record's name: a user's own file
    scoped = await fsck(bridge)
    assert {p.key for p in scoped.problems} == {session_key("alice", "s1"), user_key("alice"), version_key("p", 2)}
    assert not scoped.ok


async def test_repair_rewrites_version_records_from_their_pages_and_touches_no_page(backend: StorageBackend) -> None:
    bridge, stored = await _three_versions(backend)
    await backend.delete(SESSION + version_key("p", 3))  # the newest: its page is found by no page id
    await backend.put(SESSION + version_key("p", 2), b"not a version record")
    stale = await bridge.store_page(text_page("gone", "its page deleted behind tierstore's back"))
    await backend.delete(SESSION + stale)
    pages = await _pages(backend)
    if backend.name not in ("in-memory", "filesystem"):
        await asyncio.sleep(1.1)  # the stale record written before the repair's time, to the second (S3, Azure)

    report = await repair(bridge, grace=timedelta(0), settle=timedelta(0))
    assert sorted(report.versions_written) == sorted([SESSION + version_key("p", 3), SESSION + version_key("p", 2)])
    assert SESSION + version_key("gone", 1) in report.records_deleted
    assert report.unrepairable == []
    assert await _pages(backend) == pages
    assert [v.artifact_id for v in await bridge.list_versions("p")] == stored[::-1]
    latest = await bridge.load_page_id("p")
    assert latest is not None
    assert latest.content == "v3"
    after = await fsck(bridge)
    assert after.problems == []
    assert after.stale_versions == []
    assert (await repair(bridge, grace=timedelta(0))) == type(report)()  # nothing left to do


async def test_repair_leaves_a_number_another_store_holds_and_says_so(backend: StorageBackend) -> None:
    bridge, stored = await _three_versions(backend)
    await backend.delete(SESSION + version_key("p", 2))
    other = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    taken = await other.store_page(text_page("p", "took number 4"))
    report = await repair(bridge, grace=timedelta(hours=1))
    assert report.versions_written == [SESSION + version_key("p", 2)]
    assert [v.artifact_id for v in await bridge.list_versions("p")] == [taken, *stored[::-1]]
    # A page whose slot holds a sound record of another artifact: left, reported.
    codec = ScopedCodec("none", SESSION)
    second = await backend.get(SESSION + version_key("p", 2))
    assert second is not None
    fields = {**codec.decode_record(second, version_key("p", 2)), "version": 1}  # sound, naming the second page
    await backend.delete(SESSION + version_key("p", 1))
    await backend.put(SESSION + version_key("p", 1), codec.encode_record(version_key("p", 1), fields).data)
    report = await repair(bridge, grace=timedelta(hours=1))
    assert [p.key for p in report.unrepairable] == [SESSION + stored[0]]


@pytest.mark.parametrize(
    "lost", ["the newest record, then the number taken again", "two records, a lower number taken"]
)
async def test_repair_never_makes_an_older_page_the_latest(backend: StorageBackend, lost: str) -> None:
    """Records lost behind tierstore's back let a later store take a number an older page still claims (the same
    one, or a lower one than the older page's): which page the empty or damaged slot is is then not provable, or the
    older page's number is above the newer's. Repair rebuilds none of those records and reports the pages; the
    latest stays the newest write (or a typed error), never an older one."""
    bridge, stored = await _three_versions(backend)
    if lost.startswith("the newest"):
        await backend.delete(SESSION + version_key("p", 3))
        newest = await bridge.store_page(text_page("p", "newest"))  # takes number 3 again
        await backend.put(SESSION + version_key("p", 3), b"its record damaged")
        doubted = {stored[2], newest}
    else:
        await backend.delete(SESSION + version_key("p", 3))
        await backend.delete(SESSION + version_key("p", 2))
        await store_time_passes(backend, SESSION + stored[2])  # the store's times order the two (S3: in seconds)
        newest = await bridge.store_page(text_page("p", "newest"))  # takes number 2, below the older page's 3
        doubted = {stored[2]}
    pages = await _pages(backend)
    report = await repair(bridge, grace=timedelta(hours=1))
    assert {p.key for p in report.unrepairable} >= {SESSION + key for key in doubted}
    assert SESSION + version_key("p", 3) not in report.versions_written
    assert await _pages(backend) == pages
    try:
        latest = await bridge.load_page_id("p")
    except IntegrityError:
        return  # the damaged slot still says so
    assert latest is not None
    assert latest.content == "newest", f"{latest} is an older write made the latest"
    assert newest in {v.artifact_id for v in await bridge.list_versions("p")}


@pytest.mark.parametrize("retiered", ["the older page", "the newer page", "both", "neither"])
async def test_repair_orders_by_the_stored_time_a_tier_change_leaves(backend: StorageBackend, retiered: str) -> None:
    """``set_tier`` moves a page's last-modified time (a disk rewrite, a copy in place), so the repair orders pages
    whose records were lost by the time each page's store stamped into its metadata. Records of v2 and v3 lost, a
    later store takes number 2 again, then pages are retiered: v3 (older than the later store, number above it) is
    never rebuilt, whichever page moved; the latest stays the later store. Without the reuse, the same tier changes
    let the repair write both records, newest last."""
    bridge, stored = await _three_versions(backend)
    await backend.delete(SESSION + version_key("p", 3))
    await backend.delete(SESSION + version_key("p", 2))
    await store_time_passes(backend, SESSION + stored[2])
    newest = await bridge.store_page(text_page("p", "newest"))  # number 2, below the older page's 3
    moved = {"the older page": [stored[2]], "the newer page": [newest], "both": [stored[2], newest]}.get(retiered, [])
    await store_time_passes(backend, SESSION + newest)
    for key in moved:
        await bridge.set_tier(key, StorageTier.L2)
    report = await repair(bridge, grace=timedelta(hours=1))
    assert SESSION + stored[2] in {p.key for p in report.unrepairable}
    assert SESSION + version_key("p", 3) not in report.versions_written
    latest = await bridge.load_page_id("p")
    assert latest is not None
    assert latest.content == "newest", f"{latest} is an older write made the latest ({report})"

    first = [await bridge.store_page(text_page("q", f"q{n}")) for n in (1, 2, 3)]
    for n in (2, 3):
        await backend.delete(SESSION + version_key("q", n))
    if moved:  # the lower numbers now carry the later last-modified times
        await store_time_passes(backend, SESSION + first[2])
        for key in first[:2]:
            await bridge.set_tier(key, StorageTier.L2)
    report = await repair(bridge, grace=timedelta(hours=1))
    assert sorted(report.versions_written) == sorted(SESSION + version_key("q", n) for n in (2, 3)), report
    latest = await bridge.load_page_id("q")
    assert latest is not None
    assert latest.content == "q3"


@pytest.mark.parametrize("damage", ["a byte of its body flipped", "cut short", "its bytes replaced"])
async def test_repair_keeps_a_damaged_record_a_damaged_page_may_claim(backend: StorageBackend, damage: str) -> None:
    """The newest version's record and its page both damaged: ``load_page_id`` is IntegrityError. The page cannot
    be read, but its metadata says it is that version, so the repair keeps the record (reports the page) instead of
    deleting it as claimed by no page: the latest stays IntegrityError, never the version before it."""
    bridge, stored = await _three_versions(backend)
    key = SESSION + stored[2]
    info, data = await backend.head(key), await backend.get(key)
    assert info is not None
    assert data is not None
    body = {
        "a byte of its body flipped": bytes(data[:-3]) + bytes([data[-3] ^ 0xFF]) + bytes(data[-2:]),
        "cut short": bytes(data[: len(data) // 2]),
        "its bytes replaced": b"not a frame",
    }[damage]
    await backend.delete(key)
    await backend.put(key, body, metadata=info.metadata)  # its metadata as it was: version 3 of "p"
    await backend.put(SESSION + version_key("p", 3), b"its record damaged")
    with pytest.raises(IntegrityError):
        await bridge.load_page_id("p")
    report = await repair(bridge, grace=timedelta(0))
    assert SESSION + version_key("p", 3) not in report.records_deleted
    assert key in {p.key for p in report.unrepairable}
    with pytest.raises(IntegrityError):
        await bridge.load_page_id("p")


async def test_repair_reports_an_archived_page_and_repairs_the_rest(backend: StorageBackend) -> None:
    """An archived (L4) versioned page cannot be read before a restore: where the store archives, the repair
    reports it (restore, then repair again) instead of failing, and still writes the other records; elsewhere L4 is
    readable and its record is written like any other."""
    bridge, stored = await _three_versions(backend)
    other = await bridge.store_page(text_page("q", "beside it"))
    await bridge.set_tier(stored[0], StorageTier.L4)
    for slot in (version_key("p", 1), version_key("q", 1)):
        await backend.delete(SESSION + slot)
    try:
        await backend.get(SESSION + stored[0])
        archived = False
    except ArchivedPageError:
        archived = True
    report = await repair(bridge, grace=timedelta(0))
    assert SESSION + version_key("q", 1) in report.versions_written
    assert (SESSION + version_key("p", 1) in report.versions_written) is not archived
    assert ({p.key for p in report.unrepairable} == {SESSION + stored[0]}) is archived
    assert [v.artifact_id for v in await bridge.list_versions("q")] == [other]


@pytest.mark.parametrize("how", ["lost", "damaged, a repair failing at its put"])
@pytest.mark.parametrize("which", [1, 2, 3])
async def test_a_deleted_page_id_never_comes_back(backend: StorageBackend, which: int, how: str) -> None:
    """A version whose record is gone (deleted behind tierstore's back) or damaged (a repair failing to replace it
    leaves it as it was) is still deleted by ``delete_page_id``: no later repair finds a page of that page id to
    give a record back, so the deleted page id never loads again."""
    bridge, stored = await _three_versions(backend)
    slot = SESSION + version_key("p", which)
    if how == "lost":
        await backend.delete(slot)
    else:
        await backend.put(slot, b"its record damaged")
        failing = ArtifactsBridge(
            Observed(backend, fail_put=lambda key: key.startswith(SESSION + "v.")), user_id="alice", session_id="s1"
        )
        with pytest.raises(BackendUnavailableError):
            await repair(failing, grace=timedelta(0))
        assert await backend.get(slot) == b"its record damaged"  # replaced in place or not at all: never deleted
    assert await bridge.delete_page_id("p") == 3
    report = await repair(bridge, grace=timedelta(0))
    assert report.versions_written == []
    assert await bridge.load_page_id("p") is None
    assert await bridge.list_versions("p") == []
    assert [key for key in stored if await bridge.load_page(key) is not None] == []


async def test_an_archived_scoped_page_is_named_by_the_id_and_scope_restore_takes(backend: StorageBackend) -> None:
    """Where the store archives, reading a scope's archived page is ArchivedPageError naming its artifact id (not
    the whole key in the store, which ``tierstore restore`` refuses), and the command line's hint names the scope's
    flags; the id restores it."""
    import argparse

    from tierstore.cli.app import message

    bridge, stored = await _three_versions(backend)
    await bridge.set_tier(stored[0], StorageTier.L4)
    if "archive" not in backend.capabilities:
        assert await bridge.load_page(stored[0]) is not None  # L4 is readable here: nothing to restore
        return
    with pytest.raises(ArchivedPageError) as raised:
        await bridge.load_page(stored[0])
    assert raised.value.key == stored[0]
    hint = message(raised.value, argparse.Namespace(url="memory://", user="alice", session="s1"))
    assert f"`tierstore restore {stored[0]} --url memory:// --user alice --session s1`" in hint
    await bridge.restore_page(raised.value.key)


class _Stalled:
    """``inner``, whose repair process stalls for an hour at its read of a version record slot (after the look for
    an erasing tomb, before any write)."""

    def __init__(self, inner: StorageBackend, clock: ManualClock, at: str) -> None:
        self.inner, self.clock, self.at, self.armed = inner, clock, at, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _stall(self, call: str, key: str) -> None:
        if self.armed and call == self.at and key.startswith(SESSION + "v."):
            self.clock.advance(timedelta(hours=1))

    async def get(self, key: str) -> Any:
        self._stall("get", key)
        return await self.inner.get(key)


@pytest.mark.parametrize(("slot", "at"), [("empty", "get"), ("damaged", "get")])
async def test_a_repair_stalled_after_its_erasure_look_writes_nothing(
    backend: StorageBackend, slot: str, at: str
) -> None:
    """A repair stalled between its look for an erasing tomb and a write for longer than a catalog fold may wait
    (``fold_window``: an erasure begun meanwhile may have ended) issues no write there and says so (``late``); the
    next repair writes the record."""
    bridge, _stored = await _three_versions(backend)
    key = SESSION + version_key("p", 3)
    if slot == "empty":
        await backend.delete(key)
    else:
        await backend.put(key, b"its record damaged")
    clock = ManualClock()
    stalled = _Stalled(backend, clock, at)
    stalling = ArtifactsBridge(stalled, user_id="alice", session_id="s1", clock=clock)
    stalled.armed = True
    report = await repair(stalling, grace=timedelta(hours=2))
    assert report.late == [key]
    assert report.versions_written == []
    assert (await backend.get(key) is None) == (slot == "empty")
    report = await repair(bridge, grace=timedelta(hours=2))
    assert report.versions_written == [key]
    latest = await bridge.load_page_id("p")
    assert latest is not None
    assert latest.content == "v3"


async def test_a_repair_stopped_inside_its_put_leaves_nothing_in_a_scope_erased_meanwhile(
    backend: StorageBackend,
) -> None:
    """The repair's put is issued in time and then held (its process stopped inside the request) while the whole
    erasure of the session runs; when it lands, the repair finds the record's page gone and deletes the record again:
    the erased scope holds nothing."""
    await _three_versions(backend)
    await backend.delete(SESSION + version_key("p", 3))
    held = HeldVersionPuts(backend)
    task = asyncio.ensure_future(repair(ArtifactsBridge(held, user_id="alice", session_id="s1")))
    await held.putting.wait()
    await erase_session(backend, "alice", "s1", ErasureOptions(settle=timedelta(0)))
    held.go.set()
    report = await task
    assert report.versions_written == []
    assert report.late == [SESSION + version_key("p", 3)]
    assert [entry.key async for entry in backend.list(SESSION)] == []


@pytest.mark.parametrize("lost", [1, 2, 3])
async def test_fsck_reports_a_page_no_version_record_names_and_repair_writes_it(
    backend: StorageBackend, lost: int
) -> None:
    """A record deleted behind tierstore's back, its page kept: ``load_page_id`` does not find that page (the
    README says it does not look for it), so ``fsck`` of the scope and of the root names the page (``missing``),
    and ``fsck --repair`` writes the record again, after which the latest is the newest and ``fsck`` is clean."""
    bridge, stored = await _three_versions(backend)
    await backend.delete(SESSION + version_key("p", lost))
    for checked, key in ((bridge, stored[lost - 1]), (ArtifactsBridge(backend), SESSION + stored[lost - 1])):
        found = await fsck(checked)
        assert [(p.key, p.kind) for p in found.problems] == [(key, "missing")], found.problems
        assert not found.ok
    report = await repair(bridge, grace=timedelta(hours=1))
    assert report.versions_written == [SESSION + version_key("p", lost)]
    latest = await bridge.load_page_id("p")
    assert latest is not None
    assert latest.content == "v3"
    assert (await fsck(bridge)).problems == []
    assert (await fsck(ArtifactsBridge(backend))).problems == []


async def test_names_under_the_registry_prefix_that_are_no_record_are_foreign(
    backend: StorageBackend, caplog: pytest.LogCaptureFixture
) -> None:
    """A user's own root files named ``scope_...`` (no record's shape, :func:`tierstore.ids.kind_of`'s sibling
    ``scope_of_record``) are foreign: no fsck problem, untouched by repair, no warning from users/sessions."""
    await _three_versions(backend)
    names = ["scope_mine.txt", "scope_", "scope_notes", user_key("alice") + ".bak", session_key("alice", "s1") + "x"]
    for name in names:
        await backend.put(name, b"a user's own bytes")
    found = await fsck(ArtifactsBridge(backend))
    assert found.problems == []
    assert set(names) <= set(found.foreign)
    await repair(ArtifactsBridge(backend), grace=timedelta(0))
    assert [name for name in names if await backend.get(name) is None] == []
    with caplog.at_level("WARNING"):
        store = Store(backend)
        assert [u.user_id for u in await store.users()] == ["alice"]
        assert [s.session_id for s in await store.sessions("alice")] == ["s1"]
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == []


async def test_repair_deletes_an_unreadable_registry_record_and_the_next_write_registers_again(
    backend: StorageBackend,
) -> None:
    await _three_versions(backend)
    await backend.put(session_key("alice", "s1"), b"not a record")
    store = Store(backend)
    assert [s.session_id for s in await store.sessions("alice")] == []
    report = await repair(ArtifactsBridge(backend))
    assert report.records_deleted == [session_key("alice", "s1")]
    assert (await fsck(ArtifactsBridge(backend))).problems == []
    assert (await fsck(ArtifactsBridge(backend))).unregistered == [SESSION]
    await ArtifactsBridge(backend, user_id="alice", session_id="s1").store_page(text_page("p", "again"))
    assert [s.session_id for s in await store.sessions("alice")] == ["s1"]
    assert (await fsck(ArtifactsBridge(backend))).unregistered == []


async def test_repair_writes_nothing_into_a_scope_being_erased(backend: StorageBackend) -> None:
    bridge, _ = await _three_versions(backend)
    await backend.delete(SESSION + version_key("p", 3))
    await backend.put(session_key("alice", "s1"), b"not a record")
    for prefix in (SESSION, scope_prefix("alice")):
        view = PrefixedBackend(backend, prefix)
        await References(view, concurrency=4, codec=ScopedCodec("none", prefix)).write_tomb("erasing", [])
        before = sorted([e.key async for e in backend.list("")])
        for handle in (bridge, ArtifactsBridge(backend)):
            report = await repair(handle, grace=timedelta(0))
            assert report.versions_written == []
            assert report.records_deleted == []
            assert SESSION in report.erasing
        assert sorted([e.key async for e in backend.list("")]) == before
        async for entry in backend.list(prefix + "tomb_"):
            await backend.delete(entry.key)


async def test_a_repair_racing_a_store_never_hides_the_newest_version(tmp_path: Path) -> None:
    """The repair of the newest version's lost (or damaged) record races a store of the same page id, every call of
    both delayed by a random number of event-loop steps: the page stored last is the latest, whichever claims the
    number first; the repair says when the store took it (both happen among the seeds)."""
    outcomes: dict[str, int] = {}
    for seed in range(scaled(24)):
        backend: StorageBackend = InMemoryBackend() if seed % 4 else FileSystemBackend(tmp_path / str(seed))
        bridge, stored = await _three_versions(backend)
        if seed % 2:
            await backend.put(SESSION + version_key("p", 3), b"damaged")  # replaced in place by the repair
        else:
            await backend.delete(SESSION + version_key("p", 3))
        rng = random.Random(seed)
        racer = ArtifactsBridge(Jittered(backend, rng), user_id="alice", session_id="s1")
        repairer = ArtifactsBridge(Jittered(backend, rng), user_id="alice", session_id="s1")
        newest, report = await asyncio.gather(racer.store_page(text_page("p", "newest")), repair(repairer))
        latest = await bridge.load_page_id("p")
        assert latest is not None
        assert latest.content == "newest", f"seed {seed}: {report}"
        listed = [v.artifact_id for v in await bridge.list_versions("p")]
        assert listed[0] == newest, f"seed {seed}: {report}"
        assert (stored[2] in listed) == (not report.unrepairable), f"seed {seed}: {report}"
        ended = "the store took the number" if report.unrepairable else "repaired first"
        outcomes[ended] = outcomes.get(ended, 0) + 1
    assert len(outcomes) == 2, outcomes  # else the seeds never raced where it matters
    for ended, count in outcomes.items():
        record(f"repair x store of the same page id: {ended}", count, "memory+filesystem")


def test_the_command_line_repairs_and_says_what_it_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.delenv("TIERSTORE_USER_ID", raising=False)
    monkeypatch.delenv("TIERSTORE_SESSION_ID", raising=False)
    backend = FileSystemBackend(tmp_path)
    asyncio.run(_three_versions(backend))
    asyncio.run(backend.delete(SESSION + version_key("p", 3)))
    url = ["--url", str(tmp_path), "--user", "alice", "--session", "s1"]
    assert main(["fsck", "--repair", "--json", *url]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["repaired"]["versions_written"] == [SESSION + version_key("p", 3)]
    assert out["ok"] is True
    assert main(["fsck", "--repair", *url]) == 0
    assert "repaired:" in capsys.readouterr().out


async def test_repair_completes_each_scopes_catalog_and_the_roots_and_a_second_repair_writes_none() -> None:
    memory = InMemoryBackend()  # its listing proves a row at once (a cloud's once settled: test_catalog.py)
    await _three_versions(memory)
    root_page = await ArtifactsBridge(memory).store_page(text_page("q", "at the root"))
    damaged = "cat_00000000T000000000000Z_damaged"
    await memory.put(damaged, b"not a snapshot")
    await memory.put(SESSION + damaged, b"not a snapshot")
    pages = await _pages(memory)

    report = await repair(ArtifactsBridge(memory), grace=timedelta(0))

    written = sorted(report.catalogs_written)  # the session's and the root's: no other scope holds a page
    assert len(written) == 2, written
    assert "." not in written[0]
    assert written[1].startswith(SESSION)
    for view in (PrefixedBackend(memory, SESSION), memory):
        listing = [entry async for entry in view.list("")]
        catalog = await Catalog.open(view, listing)
        assert catalog.source not in (None, damaged)
        described = [entry for entry in listing if "mem_" in entry.key and entry.key.count(".") == 0]
        assert described
        assert all(catalog.known(entry) is not None for entry in described)
    assert root_page in pages
    assert await _pages(memory) == pages  # no page touched
    assert (await repair(ArtifactsBridge(memory), grace=timedelta(0))).catalogs_written == []
