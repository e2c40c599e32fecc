"""The model's rules for scopes (issue 28): users' and sessions' pages and checkpoints on the machine's store, beside
the root's, checked against what each scope may see.

Contract: :class:`ScopedRules` is mixed into the machine of :mod:`.machine` and uses its plumbing (``run``,
``attempt``, ``open_backend``, ``spec``, ``clock``, ``world``, ``note``, ``bridges``). It keeps its own record of
scoped artifacts and checkpoints (never in ``world.artifacts``, which the root's rules and checks own), so every root
rule (gc, fsck, damage, lost block records, clocks, the command line) runs beside scoped data unchanged and must leave
it alone: the root's own check already fails if the root lists a scoped key. After every step :meth:`check_scopes`
holds each bound bridge to the model:

* a scope never sees another's page or checkpoint: a bridge lists exactly the present pages of its session and of its
  user's shared scope, and exactly the checkpoints of its narrowest scope; a page or checkpoint of any other scope
  (or of the root) loads as ``None`` / restores as ``ObjectNotFoundError`` / deletes as ``False``, like an absent
  one, and such a call changes nothing;
* a page loads as the page stored under its id; a deleted one never comes back;
* no id is issued twice within a scope, nor across the store while no block record was lost;
* the latest version of a page id is the last one stored: ``load_page_id`` loads the newest present version of the
  bridge's session (else of its user's shared scope), ``list_versions`` lists exactly the present versions newest
  first, ``delete_page_id`` deletes them all (relaxed only where a cancelled store of that page id may have landed);
* an erased scope leaves nothing: after ``erase_user`` / ``erase_session`` (cancelled at any await, then run again)
  no key is left under its prefix, the registry names it no more, none of its pages loads or is listed, and every
  other scope and the root are as they were;
* every scope holding pages after a store is listed by ``users()`` / ``sessions()``: checked after each store into a
  scope of a user erased earlier in the sequence (its bridge, opened before, stores the scope's next life).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from tests.model.world import identity
from tierstore import ArtifactsBridge, MemoryPage, Modality
from tierstore.errors import ObjectNotFoundError, TierstoreError
from tierstore.protocol.erasure import ErasureOptions, erase_session, erase_user
from tierstore.scopes import scope_prefix, user_prefix
from tierstore.store import Store

if TYPE_CHECKING:
    from tests.model.world import World

Scope = tuple[str | None, str | None]
"""(user, session) of a page's or checkpoint's scope; session None: the user's shared scope."""

BINDINGS: tuple[Scope, ...] = (("alice", "s1"), ("alice", "s2"), ("bob", "s1"), ("bob", None), (None, "s1"))
"""The bridges' bindings: two users with two sessions between them, one session id in three scopes, a bridge bound to a
user alone (its shared scope), and a session without a user."""

State = Literal["present", "gone", "uncertain"]


@dataclass
class ScopedArtifact:
    key: str
    page: MemoryPage
    scope: Scope
    state: State = "present"
    exact: bool = True
    """A ``store_page`` artifact loads as exactly its page; a checkpoint's as its page's identity."""
    seq: int = 0
    """When it was stored, in the sequence's order: a later store of a page id is a later version."""


@dataclass
class ScopedCheckpoint:
    key: str
    pages: list[MemoryPage]
    scope: Scope
    artifacts: list[str]
    state: State = "present"


@dataclass
class ScopedWorld:
    artifacts: dict[str, ScopedArtifact] = field(default_factory=dict)
    checkpoints: dict[str, ScopedCheckpoint] = field(default_factory=dict)
    issued: dict[Scope, set[str]] = field(default_factory=dict)
    attempted: list[tuple[Scope, MemoryPage]] = field(default_factory=list)
    attempted_checkpoints: list[tuple[Scope, list[MemoryPage]]] = field(default_factory=list)

    def versions(self, order: list[Scope], page_id: str) -> dict[Scope, list[ScopedArtifact]]:
        """The versions of ``page_id`` each scope of ``order`` surely holds, newest first."""
        return {
            scope: sorted(
                (
                    a
                    for a in self.artifacts.values()
                    if a.scope == scope and a.page.page_id == page_id and a.state == "present" and a.exact
                ),
                key=lambda a: -a.seq,
            )
            for scope in order
        }

    def unsure(self, order: list[Scope], page_id: str) -> bool:
        """Whether a cancelled store of ``page_id`` in ``order``'s scopes may have landed: which is the latest, the
        model cannot say."""
        return any(s in order and p.page_id == page_id for s, p in self.attempted) or any(
            a.scope in order and a.page.page_id == page_id and a.state == "uncertain" for a in self.artifacts.values()
        )


async def _keys_under(backend: Any, prefix: str) -> list[str]:
    return [entry.key async for entry in backend.list(prefix)]


def narrowest(binding: Scope) -> Scope:
    """Where a bridge bound to ``binding`` stores by default and keeps its checkpoints."""
    return binding


def shared(binding: Scope) -> Scope | None:
    """The user's shared scope a bridge bound to ``binding`` also sees (None without a user)."""
    user, session = binding
    return (user, None) if user is not None and session is not None else None


def sees(binding: Scope | None, scope: Scope) -> bool:
    """Does a bridge bound to ``binding`` (None: unbound, the root) see a page of ``scope``?"""
    return binding is not None and (scope == binding or scope == shared(binding))


class HoldsScopedWorld:
    """Each rule mixin's view of the machine's one world of scoped pages, made on first use."""

    @property
    def scoped(self) -> ScopedWorld:
        world: ScopedWorld = self.__dict__.setdefault("_scoped_world", ScopedWorld())
        return world


class ScopedRules(HoldsScopedWorld):
    """Rules and checks for scoped pages (module contract); mixed into the model's state machine."""

    world: World
    bridges: list[ArtifactsBridge]
    store_time_moves: bool
    blocks_lost: bool
    run: Any
    attempt: Any
    note: Any
    open_backend: Any
    spec: dict[str, Any]
    clock: Any

    def scoped_bridge(self, index: int) -> tuple[Scope, ArtifactsBridge]:
        binding = BINDINGS[index % len(BINDINGS)]
        bridges: dict[Scope, ArtifactsBridge] = self.__dict__.setdefault("_scoped_bridges", {})
        if binding not in bridges:
            user, session = binding
            bridges[binding] = ArtifactsBridge(
                backend=self.open_backend(self.spec), clock=self.clock.host, user_id=user, session_id=session
            )
        return binding, bridges[binding]

    def scoped_number(self) -> int:
        """A number no earlier scoped call of this sequence used: contents that are unique, so each page found in a
        listing matches one call."""
        number: int = self.__dict__.get("_scoped_number", 0) + 1
        self.__dict__["_scoped_number"] = number
        return number

    def issue_scoped(self, key: str, scope: Scope) -> None:
        issued = self.scoped.issued.setdefault(scope, set())
        assert key not in issued, f"id {key} issued twice in scope {scope}"
        issued.add(key)
        if not self.blocks_lost:
            others = self.world.issued.union(*(keys for s, keys in self.scoped.issued.items() if s != scope))
            assert key not in others, f"id {key} of scope {scope} was issued in another scope or the root"

    # -- rules ----------------------------------------------------------------------------------------------

    @initialize()
    def scoped_begin(self) -> None:
        """Every sequence starts with a page in a session's scope and one in its user's shared scope."""
        self.scoped_store(0, False, "alice's note in session s1", "notes", None)
        self.scoped_store(1, True, "alice's name, shared by her sessions", "name", None)

    @rule(
        which=st.integers(0, 9),
        to_user=st.booleans(),
        content=st.one_of(st.text(max_size=20), st.binary(max_size=32)),
        page_id=st.sampled_from(["p", "notes", "w0", "mem_L3_1"]),
        cancel=st.one_of(st.none(), st.integers(0, 20)),
    )
    def scoped_store(self, which: int, to_user: bool, content: str | bytes, page_id: str, cancel: int | None) -> None:
        binding, bridge = self.scoped_bridge(which)
        scope = shared(binding) if to_user and shared(binding) is not None else narrowest(binding)
        assert scope is not None
        modality = Modality.IMAGE if isinstance(content, bytes) else Modality.TEXT
        tag = {"scope": repr(scope), "n": self.scoped_number()}
        page = MemoryPage(page_id=page_id, modality=modality, content=content, metadata=tag)
        shared_scope = scope != narrowest(binding)
        self.note("scoped_store" if cancel is None else "scoped_store-cancelled")
        try:
            key = self.attempt(lambda: bridge.store_page(page, scope="user" if shared_scope else None), cancel, False)
        except Exception as exc:
            if type(exc).__name__ != "Lost":
                raise
            self.scoped.attempted.append((scope, page.model_copy(deep=True)))
            return
        self.issue_scoped(key, scope)
        self.scoped.artifacts[key] = ScopedArtifact(key, page.model_copy(deep=True), scope, seq=self.scoped_number())
        if scope[0] in self.__dict__.get("_erased_users", ()):  # a next life, by a bridge opened before its erasure
            self.note("scoped_store-next-life")
            self.check_registered(scope)

    def check_registered(self, scope: Scope) -> None:
        """A scope holding a page a store put there (and returned) is listed by ``users()`` / ``sessions()``."""
        store = Store(self.open_backend(self.spec))
        user, session = scope
        assert user in {info.user_id for info in self.run(store.users())}, f"users() does not list {scope}"
        if session is not None:
            sessions = {info.session_id for info in self.run(store.sessions(user))}
            assert session in sessions, f"sessions() does not list {scope}, which holds a page"

    @rule(
        which=st.integers(0, 10**6),
        by=st.integers(0, 10),
        call=st.sampled_from(["load", "metadata", "delete"]),
        root=st.booleans(),
    )
    def scoped_cross(self, which: int, by: int, call: str, root: bool) -> None:
        """Any bridge (a bound one or the root's) loads, describes or deletes any scoped page; or a bound one any
        of the root's pages, which it never sees."""
        if root:
            self.bound_probes_the_root(which, by, call)
            return
        keys = sorted(self.scoped.artifacts)
        if not keys:
            return
        artifact = self.scoped.artifacts[keys[which % len(keys)]]
        binding, bridge = (None, self.bridges[0]) if by == len(BINDINGS) else self.scoped_bridge(by)
        visible = sees(binding, artifact.scope)
        self.note(f"scoped_cross-{call}-{'own' if visible else 'other'}")
        key = artifact.key
        if call == "load":
            page = self.run(bridge.load_page(key))
            if not visible or artifact.state == "gone":
                assert page is None, f"{binding} loaded {key} of scope {artifact.scope} ({artifact.state})"
            elif page is None:
                assert artifact.state == "uncertain", f"{binding}: {key} of its scope is None"
                artifact.state = "gone"
            else:
                same = page == artifact.page if artifact.exact else identity(page) == identity(artifact.page)
                assert same, f"{binding}: {key} loads another page than the one stored"
        elif call == "metadata":
            meta = self.run(bridge.get_metadata(key))
            if not visible or artifact.state == "gone":
                assert meta is None, f"{binding} described {key} of scope {artifact.scope} ({artifact.state})"
            elif meta is not None:
                assert meta.page_id == artifact.page.page_id, f"{binding}: {key} describes another page"
            else:
                assert artifact.state == "uncertain", f"{binding}: {key} of its scope has no metadata"
        else:
            deleted = self.run(bridge.delete_page(key))
            if not visible:
                assert deleted is False, f"{binding} deleted {key} of scope {artifact.scope}"
            elif artifact.state == "present":
                assert deleted is True, f"{binding}: delete_page({key}) of a present page returned {deleted}"
            elif artifact.state == "gone":
                assert deleted is False, f"{binding}: delete_page({key}) of a deleted page returned {deleted}"
            if visible:
                artifact.state = "gone"

    def bound_probes_the_root(self, which: int, by: int, call: str) -> None:
        keys = sorted(self.world.artifacts)
        if not keys:
            return
        key = keys[which % len(keys)]
        binding, bridge = self.scoped_bridge(by)
        self.note(f"scoped_cross-{call}-root")
        if call == "load":
            assert self.run(bridge.load_page(key)) is None, f"{binding} loaded the root's {key}"
        elif call == "metadata":
            assert self.run(bridge.get_metadata(key)) is None, f"{binding} described the root's {key}"
        else:
            assert self.run(bridge.delete_page(key)) is False, f"{binding} deleted the root's {key}"

    @rule(which=st.integers(0, 9), cancel=st.one_of(st.none(), st.integers(0, 40)))
    def scoped_checkpoint(self, which: int, cancel: int | None) -> None:
        binding, bridge = self.scoped_bridge(which)
        pages = [
            MemoryPage(page_id=f"c{i}", modality=Modality.TEXT, content=f"{binding} {i} {self.scoped_number()}")
            for i in range(2)
        ]
        self.note("scoped_checkpoint" if cancel is None else "scoped_checkpoint-cancelled")
        copies = [p.model_copy(deep=True) for p in pages]
        try:
            key = self.attempt(lambda: bridge.checkpoint(pages, name="scoped"), cancel, False)
        except Exception as exc:
            if type(exc).__name__ != "Lost":
                raise
            self.scoped.attempted_checkpoints.append((narrowest(binding), copies))
            self.scoped.attempted.extend((narrowest(binding), p) for p in copies)  # its uploads may be listed
            return
        self.adopt_scoped_checkpoint(key, copies, binding, bridge, "present")

    def adopt_scoped_checkpoint(
        self, key: str, pages: list[MemoryPage], binding: Scope, bridge: ArtifactsBridge, state: State
    ) -> None:
        manifest = self.run(bridge.get_checkpoint_manifest(key))
        assert manifest is not None, f"{binding}: checkpoint {key} has no manifest"
        for entry, page in zip(manifest.pages, pages, strict=True):
            known = self.scoped.artifacts.get(entry.artifact_id)
            if known is None:
                self.issue_scoped(entry.artifact_id, binding)
                self.scoped.artifacts[entry.artifact_id] = ScopedArtifact(
                    entry.artifact_id, page.model_copy(deep=True), binding, exact=False
                )
            else:
                assert known.scope == binding, f"{binding}: checkpoint {key} names {entry.artifact_id} of {known.scope}"
                assert identity(known.page) == identity(page), f"{binding}: {key} reuses another page's artifact"
                known.state = "present"  # a listed checkpoint names it
        artifacts = [e.artifact_id for e in manifest.pages]
        self.scoped.checkpoints[key] = ScopedCheckpoint(key, pages, binding, artifacts, state)

    @rule(which=st.integers(0, 10**6), by=st.integers(0, 10), delete=st.booleans())
    def scoped_checkpoint_cross(self, which: int, by: int, delete: bool) -> None:
        """Any bridge restores or deletes any scoped checkpoint: only its own scope's are there for it."""
        keys = sorted(self.scoped.checkpoints)
        if not keys:
            return
        checkpoint = self.scoped.checkpoints[keys[which % len(keys)]]
        binding, bridge = (None, self.bridges[0]) if by == len(BINDINGS) else self.scoped_bridge(by)
        own = binding == checkpoint.scope
        self.note(f"scoped_checkpoint_cross-{'delete' if delete else 'restore'}-{'own' if own else 'other'}")
        if delete:
            deleted = self.run(bridge.delete_checkpoint(checkpoint.key))
            if not own:
                assert deleted is False, f"{binding} deleted checkpoint {checkpoint.key} of {checkpoint.scope}"
            else:
                if checkpoint.state == "present":
                    assert deleted is True, f"{binding}: its checkpoint {checkpoint.key} was not deleted"
                checkpoint.state = "gone"
                still = {a for c in self.scoped.checkpoints.values() if c.state != "gone" for a in c.artifacts}
                for name in set(checkpoint.artifacts) - still:
                    if self.scoped.artifacts[name].state == "present":
                        self.scoped.artifacts[name].state = "uncertain"  # deleted with it, unless a lease keeps it
            return
        try:
            restored = self.run(bridge.restore_checkpoint(checkpoint.key))
        except ObjectNotFoundError:
            assert not own or checkpoint.state != "present", f"{binding}: its checkpoint {checkpoint.key} is missing"
            if own:
                checkpoint.state = "gone"
            return
        except TierstoreError as exc:  # one of its pages deleted by delete_page: never a partial restore
            failure = f"{binding}: restore of {checkpoint.key} of {checkpoint.scope} failed: {exc!r}"
        else:
            failure = ""
        if failure:
            assert own, failure
            assert any(self.scoped.artifacts[a].state != "present" for a in checkpoint.artifacts), failure
            return
        assert own, f"{binding} restored checkpoint {checkpoint.key} of scope {checkpoint.scope}"
        assert checkpoint.state != "gone", f"{binding}: deleted checkpoint {checkpoint.key} restored"
        assert [identity(p) for p in restored] == [identity(p) for p in checkpoint.pages], checkpoint.key

    @rule(which=st.integers(0, 9), whole_user=st.booleans(), cancel=st.one_of(st.none(), st.integers(0, 40)))
    def scoped_erase(self, which: int, whole_user: bool, cancel: int | None) -> None:
        """Erase a session, or a user with every session of theirs; a cancelled erasure is run again, and resumes."""
        binding, _ = self.scoped_bridge(which)
        user, session = binding
        if session is None:
            whole_user = True
        if not self.store_time_moves and self.scoped.attempted_checkpoints:
            return  # a cancelled checkpoint's lease never lapses in an emulator's time: the erasure would wait it out
        erased = {s for s in self.every_scope() if s[0] == user and (whole_user or s == binding)}
        self.note(f"scoped_erase-{'user' if whole_user else 'session'}{'' if cancel is None else '-cancelled'}")
        backend = self.open_backend(self.spec)
        waited = [0.0]

        class Slept:  # the erasure's waits let the store's time pass, and nothing else
            def now(inner) -> Any:
                return self.clock.host.now()

            def monotonic(inner) -> float:
                return waited[0]

        async def sleep(seconds: float) -> None:
            waited[0] += seconds
            self.clock.advance(timedelta(seconds=seconds))

        def erase() -> Any:
            if whole_user:
                return erase_user(backend, user, ErasureOptions(clock=Slept(), sleep=sleep))
            assert session is not None
            return erase_session(backend, user, session, ErasureOptions(clock=Slept(), sleep=sleep))

        if cancel is not None:
            try:
                self.attempt(erase, cancel, False)
            except Exception as exc:
                if type(exc).__name__ != "Lost":
                    raise
        self.run(erase())
        self.__dict__.setdefault("_erased_users", set()).add(user)
        for artifact in self.scoped.artifacts.values():
            if artifact.scope in erased:
                artifact.state = "gone"
        for checkpoint in self.scoped.checkpoints.values():
            if checkpoint.scope in erased:
                checkpoint.state = "gone"
        prefix = user_prefix(user) if whole_user else scope_prefix(user, session)
        left = self.run(_keys_under(backend, prefix))
        assert not left, f"erasing {binding} ({'user' if whole_user else 'session'}) left {left[:5]}"
        store = Store(backend)
        users = {info.user_id for info in self.run(store.users())}
        if whole_user:
            assert user not in users, f"the registry still names the erased user {user!r}"
        else:
            sessions = {info.session_id for info in self.run(store.sessions(user))}
            assert session not in sessions, f"the registry still names the erased session {binding}"
        self.after_waiting()

    @rule(
        which=st.integers(0, 9),
        page_id=st.sampled_from(["p", "notes", "name", "mem_L3_1"]),
        call=st.sampled_from(["latest", "list", "delete"]),
    )
    def scoped_versions(self, which: int, page_id: str, call: str) -> None:
        binding, bridge = self.scoped_bridge(which)
        order = [binding] + ([own] if (own := shared(binding)) is not None else [])
        present = self.scoped.versions(order, page_id)
        unsure = self.scoped.unsure(order, page_id)
        self.note(f"scoped_versions-{call}{'-unsure' if unsure else ''}")
        if call == "latest":
            page = self.run(bridge.load_page_id(page_id))
            first = next((versions for versions in present.values() if versions), [])
            if not unsure:
                expected = first[0].page if first else None
                assert page == expected, f"{binding}: load_page_id({page_id!r}) is not the last stored: {page}"
            elif page is not None:
                assert page.page_id == page_id, f"{binding}: load_page_id({page_id!r}) loaded {page.page_id!r}"
        elif call == "list":
            listed = [v.artifact_id for v in self.run(bridge.list_versions(page_id))]
            expected_ids = [a.key for scope in order for a in present[scope]]
            if not unsure:
                assert listed == expected_ids, f"{binding}: list_versions({page_id!r}) {listed} != {expected_ids}"
            else:
                assert set(expected_ids) <= set(listed), f"{binding}: list_versions({page_id!r}) lost a version"
        else:
            deleted = self.run(bridge.delete_page_id(page_id))
            if not unsure:
                count = sum(len(v) for v in present.values())
                assert deleted == count, f"{binding}: delete_page_id({page_id!r}) deleted {deleted}, not {count}"
            for artifact in self.scoped.artifacts.values():
                if artifact.scope in order and artifact.page.page_id == page_id:
                    artifact.state = "gone"

    def every_scope(self) -> set[Scope]:
        return {a.scope for a in self.scoped.artifacts.values()} | {c.scope for c in self.scoped.checkpoints.values()}

    def after_waiting(self) -> None:
        """What the machine does when time passes (its advance_clock rule), after an erasure let some pass."""

    # -- the check ------------------------------------------------------------------------------------------

    def check_scopes(self) -> None:
        bridges: dict[Scope, ArtifactsBridge] = self.__dict__.get("_scoped_bridges", {})
        for binding, bridge in bridges.items():
            listed = set(self.run(bridge.list_pages()))
            for key in sorted(listed - set(self.scoped.artifacts)):
                self.adopt_scoped(key, binding, bridge)
            for key, artifact in self.scoped.artifacts.items():
                visible = sees(binding, artifact.scope)
                if not visible or artifact.state == "gone":
                    assert key not in listed, f"{binding} lists {key} of scope {artifact.scope} ({artifact.state})"
                elif artifact.state == "present":
                    assert key in listed, f"{binding} does not list {key} of its scope {artifact.scope}"
                elif key not in listed:
                    artifact.state = "gone"  # uncertain, and not there
            checkpoints = set(self.run(bridge.list_checkpoints()))
            for key in sorted(checkpoints - set(self.scoped.checkpoints)):
                options = [pages for scope, pages in self.scoped.attempted_checkpoints if scope == binding]
                restored = self.run(bridge.restore_checkpoint(key))
                assert any([identity(p) for p in restored] == [identity(p) for p in o] for o in options), (
                    f"{binding} lists checkpoint {key} from nowhere"
                )
                self.adopt_scoped_checkpoint(key, restored, binding, bridge, "uncertain")
            for key, checkpoint in self.scoped.checkpoints.items():
                if checkpoint.scope != binding or checkpoint.state == "gone":
                    assert key not in checkpoints, f"{binding} lists checkpoint {key} of {checkpoint.scope}"
                elif checkpoint.state == "present":
                    assert key in checkpoints, f"{binding} does not list its checkpoint {key}"

    def adopt_scoped(self, key: str, binding: Scope, bridge: ArtifactsBridge) -> None:
        """A listed page the model was never told of: a cancelled store of a scope this bridge sees."""
        page = self.run(bridge.load_page(key))
        assert page is not None, f"{binding} lists {key}, which does not load"
        scopes = [s for s, p in self.scoped.attempted if sees(binding, s) and identity(p) == identity(page)]
        assert scopes, f"{binding} lists {key} from nowhere, holding page {page.page_id!r}"
        assert len(set(scopes)) == 1, f"{binding}: {key} matches attempts in several scopes: {scopes}"
        self.issue_scoped(key, scopes[0])
        self.scoped.artifacts[key] = ScopedArtifact(key, page, scopes[0], state="uncertain", exact=False)

    def close_scoped(self) -> list[ArtifactsBridge]:
        """The scoped bridges, for the machine's teardown to close."""
        return list(self.__dict__.get("_scoped_bridges", {}).values())
