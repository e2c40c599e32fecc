"""migrate never carries a scope being erased (issue 28): an erasure asked for at the source, finished or not, before
or while migrate runs, never comes back at the destination (``src/tierstore/maintenance/migrate.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import timedelta

import pytest

from tierstore import ArtifactsBridge, InMemoryBackend, MemoryPage, Modality, Store
from tierstore.backends.base import ListEntry
from tierstore.maintenance import migrate
from tierstore.protocol.erasure import ErasureOptions, erase_session, erase_user
from tierstore.scope_records import session_key
from tierstore.scopes import RECORD_PREFIX, SCOPED_PREFIX, scope_prefix


def _page(content: str) -> MemoryPage:
    return MemoryPage(page_id=content, modality=Modality.TEXT, content=content)


@pytest.mark.parametrize("erasing", ["session", "user"])
def test_a_scope_being_erased_is_not_copied_and_the_report_names_it(erasing: str) -> None:
    async def scenario() -> None:
        source = InMemoryBackend()
        alice = ArtifactsBridge(source, user_id="alice", session_id="s1")
        await alice.store_page(_page("alice's"))
        await alice.store_page(_page("alice's shared"), scope="user")
        await alice.checkpoint([_page("alice's checkpoint")], name="c")
        bob = ArtifactsBridge(source, user_id="bob", session_id="s1")
        kept = await bob.store_page(_page("bob's"))
        # an erasure that stopped after its first step (E1): its erasing tomb is all it wrote
        stopped = alice if erasing == "session" else Store(source).bridge(user_id="alice")
        await stopped.references("test").write_tomb("erasing", [])

        destination = InMemoryBackend()
        report = await migrate(source, destination)
        prefix = scope_prefix("alice", "s1") if erasing == "session" else scope_prefix("alice")
        assert report.erasing == [prefix]
        assert report.problems == []
        left = [entry.key async for entry in destination.list(prefix)]
        assert left == [], f"migrate copied {left} of a scope being erased"
        users = {(u.user_id, u.sessions) for u in await Store(destination).users()}
        assert ("bob", 1) in users
        if erasing == "user":
            assert all(user != "alice" for user, _ in users)
        else:
            sessions = [s.session_id for s in await Store(destination).sessions("alice")]
            assert sessions == []
            shared = ArtifactsBridge(destination, user_id="alice", session_id="s2")
            assert [p.page_id for p in [await shared.load_page(k) for k in await shared.list_pages()] if p] == [
                "alice's shared"
            ]
        assert (await ArtifactsBridge(destination, user_id="bob", session_id="s1").load_page(kept)) is not None

    asyncio.run(asyncio.wait_for(scenario(), 30))


class _ErasedMidway(InMemoryBackend):
    """The in-memory store on which ``erase`` runs (an erasure asked for while migrate runs) at the first read of a key
    under ``prefix`` (``when``: "copying"), or once that has happened, at the next listing of the registry records
    (``when``: "looking last": after migrate's last listing of the scoped keys, before its last of the records), or
    in the middle of that last listing of the scoped keys (``when``: "inside the last listing")."""

    prefix = "-"
    when = "copying"
    erase: Callable[[], Awaitable[object]] | None = None
    copying = False

    async def get(self, key: str) -> bytes | None:
        if key.startswith(self.prefix):
            self.copying = True
            if self.when == "copying":
                await self._erase()
        return await super().get(key)

    async def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        if prefix == RECORD_PREFIX and self.copying and self.when == "looking last":
            await self._erase()
        listed = [entry async for entry in super().list(prefix)]
        if prefix == SCOPED_PREFIX and self.copying and self.when == "inside the last listing":
            await self._erase()  # the listing has shown every key of the scope, and will show no erasing tomb
        for entry in listed:
            yield entry

    async def _erase(self) -> None:
        erase, self.erase = self.erase, None
        if erase is not None:
            await erase()


@pytest.mark.parametrize("when", ["copying", "inside the last listing", "looking last"])
@pytest.mark.parametrize(
    "erasing", ["session", "user", "session, then used again", "user, then used again", "user with no shared page"]
)
def test_a_scope_erased_while_migrate_copies_it_is_erased_at_the_destination_too(erasing: str, when: str) -> None:
    async def scenario() -> None:
        source = _ErasedMidway()
        source.when = when
        alice = ArtifactsBridge(source, user_id="alice", session_id="s1")
        for n in range(6):
            await alice.store_page(_page(f"alice's {n}"))
            if erasing != "user with no shared page":
                await alice.store_page(_page(f"alice's shared {n}"), scope="user")
        kept = await ArtifactsBridge(source, user_id="bob", session_id="s1").store_page(_page("bob's"))
        options = ErasureOptions(settle=timedelta(0))
        whole_user = erasing.startswith("user")

        async def erase() -> None:
            await (
                erase_user(source, "alice", options) if whole_user else erase_session(source, "alice", "s1", options)
            )
            if erasing.endswith("used again"):  # the scope's next life, before migrate looks again
                again = MemoryPage(page_id="alice's 0", modality=Modality.TEXT, content="next life")  # an old id
                await ArtifactsBridge(source, user_id="alice", session_id="s1").store_page(again)

        source.prefix, source.erase = scope_prefix("alice", "s1"), erase
        prefix = scope_prefix("alice") if whole_user else scope_prefix("alice", "s1")
        destination = InMemoryBackend()
        for run in ("first", "again"):
            report = await migrate(source, destination)
            assert source.erase is None, "the erasure ran during the first migration"
            assert report.problems == [], (run, report.problems)
            if erasing.endswith("used again"):
                at = ArtifactsBridge(destination, user_id="alice", session_id="s1")
                contents = [p.content for p in [await at.load_page(key) for key in await at.list_pages()] if p]
                old = {f"alice's {n}" for n in range(6)} | (
                    {f"alice's shared {n}" for n in range(6)} if whole_user else set()
                )
                assert old.isdisjoint(contents), f"{run}: {contents}"
                continue
            assert report.erasing == ([prefix] if run == "first" else []), run
            left = [entry.key async for entry in destination.list(prefix)]
            assert left == [], f"{run}: the destination holds {left} of an erased scope"
            users = {u.user_id for u in await Store(destination).users()}
            assert users == ({"bob"} if whole_user else {"alice", "bob"}), run
            if not whole_user:
                assert [s.session_id for s in await Store(destination).sessions("alice")] == [], run
        bob = ArtifactsBridge(destination, user_id="bob", session_id="s1")
        assert await bob.load_page(kept) is not None

    asyncio.run(asyncio.wait_for(scenario(), 30))


class _TokensLater(InMemoryBackend):
    """The in-memory store listing its objects without a change token until a first read, as S3 lists an object
    written in the last seconds (``tierstore.backends.s3.wire.LISTING_SETTLED``)."""

    read = False

    async def get(self, key: str) -> bytes | None:
        self.read = True
        return await super().get(key)

    async def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        async for entry in super().list(prefix):
            yield entry if self.read else replace(entry, version=None)


def test_a_registry_record_whose_change_token_appears_meanwhile_is_no_erasure() -> None:
    async def scenario() -> None:
        source = _TokensLater()
        alice = ArtifactsBridge(source, user_id="alice", session_id="s1")
        stored = await alice.store_page(_page("alice's"))
        destination = InMemoryBackend()
        report = await migrate(source, destination)
        assert report.erasing == []
        assert await ArtifactsBridge(destination, user_id="alice", session_id="s1").load_page(stored) is not None

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_a_registry_record_deleted_by_a_repair_meanwhile_is_no_erasure() -> None:
    """``fsck --repair`` deletes an unreadable registry record of a live scope: the scope's keys stay, so migrate
    erases nothing at the destination."""

    async def scenario() -> None:
        source = _ErasedMidway()
        alice = ArtifactsBridge(source, user_id="alice", session_id="s1")
        stored = await alice.store_page(_page("alice's"))

        async def repair() -> None:
            await source.delete(session_key("alice", "s1"))

        source.prefix, source.erase = scope_prefix("alice", "s1"), repair
        destination = InMemoryBackend()
        report = await migrate(source, destination)
        assert report.erasing == []
        assert await ArtifactsBridge(destination, user_id="alice", session_id="s1").load_page(stored) is not None

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_pages_deleted_meanwhile_are_no_erasure() -> None:
    """Every page of a session deleted while migrate runs (no erasure: its record stays): nothing is erased at the
    destination, the user's other scopes least of all."""

    async def scenario() -> None:
        source = _ErasedMidway()
        alice = ArtifactsBridge(source, user_id="alice", session_id="s1")
        stored = [await alice.store_page(_page(f"alice's {n}")) for n in range(3)]
        shared = await alice.store_page(_page("alice's shared"), scope="user")

        async def delete_all() -> None:
            for key in [*stored, shared]:
                assert await alice.delete_page(key)

        source.prefix, source.erase = scope_prefix("alice", "s1"), delete_all
        destination = InMemoryBackend()
        report = await migrate(source, destination)
        assert report.erasing == []
        assert {u.user_id for u in await Store(destination).users()} == {"alice"}
        assert [s.session_id for s in await Store(destination).sessions("alice")] == ["s1"]

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_a_scope_without_a_record_emptied_meanwhile_is_no_erasure() -> None:
    """A session whose record is missing (written before scopes were registered, or repaired away) and whose pages
    are all deleted while migrate runs: with no record to watch, only an erasing tomb would count, and there is none."""

    async def scenario() -> None:
        source = _ErasedMidway()
        alice = ArtifactsBridge(source, user_id="alice", session_id="s1")
        stored = [await alice.store_page(_page(f"alice's {n}")) for n in range(3)]
        await source.delete(session_key("alice", "s1"))

        async def delete_all() -> None:
            for key in stored:
                assert await alice.delete_page(key)

        source.prefix, source.erase = scope_prefix("alice", "s1"), delete_all
        destination = InMemoryBackend()
        report = await migrate(source, destination)
        assert report.erasing == []

    asyncio.run(asyncio.wait_for(scenario(), 30))
