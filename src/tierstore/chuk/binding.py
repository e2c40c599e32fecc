"""Where a chuk agent's storage lives: its ``MemoryManager``'s session scope, and how that session's pre-scopes state
reaches it (``docs/design/scopes.md``, the chuk bullet).

Contract:

* :func:`bound_bridge` gives the bridge an attached agent works through: bound to the manager's ``session_id`` and a
  user (``user_id=``, else the given bridge's, else ``TIERSTORE_USER_ID``). A bridge bound to no session is replaced
  by one bound to that scope, on the same backend with the same settings (:meth:`ArtifactsBridge.scoped`); a bridge
  already bound to that very scope is used as it is; one bound to another session, or to another user, is
  ``InvalidInputError``, as is a session or user id that :func:`tierstore.scopes.check_scope_id` refuses. No I/O.
  On a backend of the spec's custom interface, which has no scopes, the bridge stays as it is (bound to nothing:
  the agent works where it always did, its session a label for chuk's stats); ``user_id=`` there is
  ``NotSupportedError``.
* :func:`carry_over` brings a checkpoint that the root (the store before scopes) holds for this session into the
  session's scope, once it is asked for by id and the session's scope lacks it: every page is read from the root
  and verified, then written as a new checkpoint of the session's scope, named ``<its name> (carried over from
  <id>)``. Asked for again, that copy is the answer (also once the root's is deleted); one deleted from the session
  is made again. The root is only read: nothing tierstore did not write in this scope is deleted or rewritten, and
  an old process still working at the root goes on undisturbed. A checkpoint whose pages name another session is
  not this session's: it is absent here (``ObjectNotFoundError``, saying where it is).

Why a copy, and not a reference to the root's artifacts: a checkpoint names artifacts of its own scope only (each
scope's records speak of their own prefix, which is what makes ``gc`` and erasure safe per prefix), and an old
process may delete the root's checkpoint, and its ``gc`` the artifacts, at any moment. Why it is safe at every step:
the copy is an ordinary checkpoint (:mod:`tierstore.protocol.writer`), listed only once whole; a crash or kill before
its manifest leaves orphans under an expired lease, which ``gc`` of the session's scope collects, and the next
restore carries over again; two processes carrying the same checkpoint over at once may each list a whole copy
(the later one reuses what the first uploaded once it is listed; the newer copy is then the answer). A root
checkpoint deleted while it is read fails the carry-over typed (``IntegrityError`` or ``ObjectNotFoundError``),
listing nothing; an archived page of it is ``ArchivedPageError`` naming how to bring it back at the root, since a
copy needs its bytes.
"""

from __future__ import annotations

from tierstore import ids
from tierstore.bridge import ArtifactsBridge, bridge_from_env
from tierstore.chuk.state import STATE_PAGE_ID
from tierstore.errors import (
    ArchivedPageError,
    IntegrityError,
    InvalidInputError,
    NotSupportedError,
    ObjectNotFoundError,
)
from tierstore.models import CheckpointManifest, MemoryPage
from tierstore.scopes import check_scope_id


def bound_bridge(bridge: ArtifactsBridge | None, session_id: object, user_id: str | None) -> ArtifactsBridge:
    """The bridge an agent of session ``session_id`` works through (module docstring). No I/O."""
    session = _checked(session_id, "session id", "the MemoryManager's session_id")
    user = None if user_id is None else _checked(user_id, "user id", "user_id")
    base = bridge if bridge is not None else bridge_from_env()
    if base.session_id is not None:
        if base.session_id != session:
            raise InvalidInputError(
                f"the bridge is bound to session {base.session_id!r}, and the MemoryManager's session is {session!r}:"
                " an agent works in its manager's session; pass a bridge bound to no session (it is bound to the "
                "manager's), or one bound to that session"
            )
        if user is not None and user != base.user_id:
            raise InvalidInputError(f"the bridge is bound to user {base.user_id!r}, not to user_id {user!r}")
        return base
    if user is not None and base.user_id is not None and user != base.user_id:
        raise InvalidInputError(f"the bridge is bound to user {base.user_id!r}, not to user_id {user!r}")
    if user is None:
        user = base.user_id if base.user_id is not None or bridge is None else _user_from_settings()
    try:
        return base.scoped(user_id=user, session_id=session)
    except NotSupportedError:
        if user_id is not None:
            raise
        return base  # the spec's custom backend has no scopes: the agent works where it always did


def _checked(value: object, kind: str, name: str) -> str:
    try:
        return check_scope_id(value, "session id" if kind == "session id" else "user id")
    except InvalidInputError as exc:
        raise InvalidInputError(f"{name} {value!r} cannot name a tierstore scope: {exc}") from None


def _user_from_settings() -> str | None:
    from tierstore.config import load_settings  # on use: the settings know every cloud's

    return load_settings().user_id


async def carry_over(bridge: ArtifactsBridge, checkpoint_id: str) -> str | None:
    """The id of a copy, in ``bridge``'s session scope, of the root's checkpoint ``checkpoint_id``; None when the
    bridge is bound to no session or the root holds no such checkpoint (module docstring)."""
    session = bridge.session_id
    if session is None:
        return None
    root = bridge.scoped()  # shares the backend and its clients: nothing of its own to close
    try:
        manifest = await root.get_checkpoint_manifest(checkpoint_id)
    except IntegrityError:
        # damaged at the root: a copy made before answers, if there is one
        if (copied := await _copy_of(bridge, checkpoint_id, None)) is None:
            raise
        return copied
    copied = await _copy_of(bridge, checkpoint_id, manifest)
    if copied is not None or manifest is None:
        return copied
    try:
        if any(e.page_id == STATE_PAGE_ID for e in manifest.pages):  # the agent's state names its session: read first
            _check_session(await root.restore_checkpoint(checkpoint_id, only=[STATE_PAGE_ID]), session, checkpoint_id)
        pages = await root.restore_checkpoint(checkpoint_id)
        _check_session(pages, session, checkpoint_id)
        return await bridge.checkpoint(pages, name=carried_name(manifest.name, checkpoint_id))
    except ArchivedPageError as exc:
        exc.args = (
            f"checkpoint {checkpoint_id} was made before scopes, at the root of the store, and is carried over into "
            f"session {session!r} by copying its pages, which needs archived pages read: {exc} (at the root: no "
            "--user or --session); then restore again",
        )
        raise


def carried_name(name: str, checkpoint_id: str) -> str:
    """The name of the session's copy of the root's checkpoint ``checkpoint_id`` named ``name``: the name, then
    ``(carried over from <id>)``, which finds the copy again (the mark alone when both exceed a name's limit)."""
    mark = f"carried over from {checkpoint_id}"
    named = f"{name} ({mark})"
    return named if len(named.encode()) <= ids.MAX_ID_BYTES else mark


async def _copy_of(bridge: ArtifactsBridge, checkpoint_id: str, original: CheckpointManifest | None) -> str | None:
    """The newest checkpoint of the session that is a copy of the root's ``checkpoint_id``, whose manifest is
    ``original`` (None: deleted or damaged there): one listing, and one manifest read a checkpoint of the session,
    newest first, until it is found. A name is free text, so a checkpoint named like a copy is one only when it
    holds the original's pages, each page id with its identity, in order; with the original gone, the name is all
    there is to go by (README, chuk: what it cannot promise)."""
    mark = f"carried over from {checkpoint_id}"
    for listed in reversed(await bridge.list_checkpoints()):
        try:
            manifest = await bridge.get_checkpoint_manifest(listed)
        except IntegrityError:
            continue  # damaged: fsck names it; not a copy to rely on
        if manifest is None or not (manifest.name == mark or manifest.name.endswith(f" ({mark})")):
            continue
        if original is None or _holds_the_same_pages(manifest, original):
            return listed
    return None


def _holds_the_same_pages(copy: CheckpointManifest, original: CheckpointManifest) -> bool:
    """Whether ``copy`` names the pages ``original`` does, by page id and identity, in order; never when the original
    records no identity of a page (a manifest chuk wrote): then a copy is made anew, and reuses the last one's
    artifacts."""
    wanted = [(entry.page_id, entry.identity) for entry in original.pages]
    return all(identity for _, identity in wanted) and [(e.page_id, e.identity) for e in copy.pages] == wanted


def _check_session(pages: list[MemoryPage], session: str, checkpoint_id: str) -> None:
    others = sorted({p.session_id for p in pages if p.session_id is not None and p.session_id != session})
    if others:
        error = ObjectNotFoundError(checkpoint_id)
        error.args = (
            f"checkpoint {checkpoint_id} is not in session {session!r}; the root of the store (before scopes) holds "
            f"it for session {others[0]!r}: attach a MemoryManager of that session to restore it",
        )
        raise error
