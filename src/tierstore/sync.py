"""SyncBridge: the bridge's calls for sync code, over the same :class:`~tierstore.bridge.ArtifactsBridge`.

Contract: every call of the async bridge, same name, same arguments, same results and errors, blocking until done
(its properties too; ``scoped`` gives a SyncBridge). Not mirrored, being async code's own: ``aclose`` (``close`` is
this class's), ``on_close`` (it registers an awaitable) and ``references`` (an async protocol handle).
The calls run on an event loop of the SyncBridge's own, in a daemon thread it starts on first use, so a SyncBridge
works from any thread, also from inside a running event loop (where it blocks that loop while it waits). ``close()``
(or leaving ``with``) closes the bridge's clients of that loop and stops the thread; the bridge itself stays usable
from async code, and a chuk agent attached with it goes on (closing the bridge itself ends it). Calls from several
threads at once share that one loop, as async tasks do. A call made on that loop itself (from a progress callback)
is NotSupportedError: it would wait for itself. A call interrupted in the caller (``KeyboardInterrupt``) is
cancelled on the loop, as ``asyncio.run`` would. A forked child never waits for its parent's loop (its thread does
not exist there): it starts a loop of its own on first use, and exits without stopping the parent's. It wraps an
``ArtifactsBridge`` only: anything else (chuk's ``TierstoreBridge``, which ``attach`` returns) is InvalidInputError,
saying to pass the bridge underneath.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Coroutine, Iterable, Mapping
from concurrent.futures import CancelledError, Future
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

from tierstore.backends.base import RestoreSpeed, RestoreStatus
from tierstore.bridge import ArtifactsBridge, ScopeChoice, bridge_from_env
from tierstore.concurrency import Progress
from tierstore.enums import Modality, PageType, StorageTier
from tierstore.errors import InvalidInputError, NotSupportedError
from tierstore.models import (
    CheckpointEntry,
    CheckpointManifest,
    MemoryPage,
    PageEntry,
    PageMetadata,
    PageVersion,
    StorageStats,
)

if TYPE_CHECKING:
    from tierstore.config import TierstoreSettings

T = TypeVar("T")


def _result(outcome: Future[T]) -> T:
    """``outcome.result()``, waited for in slices of :data:`_WAIT_SLICE`: a Ctrl-C whose signal lands between Python's
    check for signals and the start of a wait wakes nothing, and a call that runs until interrupted would then wait
    for ever; between slices Python looks again."""
    while True:
        try:
            return outcome.result(timeout=_WAIT_SLICE)
        except TimeoutError:
            if outcome.done():  # the call's own TimeoutError
                raise


_WAIT_SLICE: Final = 0.25


class SyncBridge:
    """``SyncBridge(bridge)``: ``bridge``'s calls, blocking. ``SyncBridge()`` alone wraps ``ArtifactsBridge()``."""

    def __init__(self, bridge: ArtifactsBridge | None = None) -> None:
        if bridge is not None and not isinstance(bridge, ArtifactsBridge):
            raise InvalidInputError(_not_a_bridge(bridge))
        self.bridge = bridge if bridge is not None else ArtifactsBridge()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._start = threading.Lock()
        self._pid = os.getpid()
        _live.add(self)

    @classmethod
    def from_env(cls, settings: TierstoreSettings | None = None) -> SyncBridge:
        """A SyncBridge over ``ArtifactsBridge.from_env(settings)``. No I/O."""
        return cls(bridge_from_env(settings))

    def __repr__(self) -> str:
        return f"SyncBridge({self.bridge!r})"

    # -- the loop -----------------------------------------------------------------------------------------------

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._start:
            if self._pid != os.getpid():  # forked (also by a fork() that ran no at-fork hook)
                self._forget_parents_loop()
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="tierstore-sync", daemon=True)
                thread.start()
                self._loop = loop
                # Stops the loop (its clients closed) when close() is not called: once unreachable, or at exit.
                self._finalizer = weakref.finalize(self, _stop, loop, thread, self.bridge, os.getpid())
            return self._loop

    def _forget_parents_loop(self) -> None:
        """In a forked child: the loop's thread stayed in the parent, so nothing would ever run on it here."""
        if self._finalizer is not None:
            self._finalizer.detach()
        self._loop, self._finalizer, self._pid = None, None, os.getpid()

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        loop = self._running_loop()
        if _current_loop() is loop:  # a progress callback, say: waiting here would stop the loop it waits for
            call.close()
            raise NotSupportedError(
                "a SyncBridge call cannot be made on the SyncBridge's own event loop (from a progress callback, "
                "for instance): it would wait for itself for ever; use the async bridge (.bridge) there"
            )
        outcome: Future[T] = Future()
        ended = threading.Event()
        tasks: list[asyncio.Task[T]] = []

        def start() -> None:
            if not outcome.set_running_or_notify_cancel():  # interrupted before it started: it never runs
                call.close()
                ended.set()
                return
            task = loop.create_task(call)
            tasks.append(task)
            task.add_done_callback(finished)

        def finished(task: asyncio.Task[T]) -> None:
            _settle(outcome, task)
            ended.set()

        try:  # an interrupt may come at any bytecode here, also before the call is scheduled or waited for
            loop.call_soon_threadsafe(start)
            return _result(outcome)
        except BaseException:
            if outcome.cancel():  # it never runs (``start`` will see that, if it was scheduled at all)
                call.close()
            else:  # it started (or ended): cancel it, and wait as asyncio.run does
                loop.call_soon_threadsafe(lambda: [task.cancel() for task in tasks])
                ended.wait()  # the cancelled call has ended before the caller goes on
            raise

    def close(self) -> None:
        """Close the bridge's clients on this SyncBridge's loop and stop its thread (a later call starts them
        again)."""
        with self._start:
            finalizer, self._finalizer, self._loop = self._finalizer, None, None
        if finalizer is not None:
            finalizer()

    def __enter__(self) -> SyncBridge:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the bridge's calls ---------------------------------------------------------------------------------------

    @property
    def user_id(self) -> str | None:
        """The user the bridge is bound to (None: no user) (:attr:`ArtifactsBridge.user_id`)."""
        return self.bridge.user_id

    @property
    def session_id(self) -> str | None:
        """The session the bridge is bound to (None: no session) (:attr:`ArtifactsBridge.session_id`)."""
        return self.bridge.session_id

    @property
    def is_persistent(self) -> bool:
        """Whether stored pages outlive the process (:attr:`ArtifactsBridge.is_persistent`)."""
        return self.bridge.is_persistent

    def scoped(self, *, user_id: str | None = None, session_id: str | None = None) -> SyncBridge:
        """A new SyncBridge over ``bridge.scoped(...)``: the same backend and settings, bound to ``user_id`` and
        ``session_id`` (:meth:`ArtifactsBridge.scoped`). No I/O."""
        return SyncBridge(self.bridge.scoped(user_id=user_id, session_id=session_id))

    def configure(self, artifact_store: Any | None = None, session_id: str | None = None) -> None:
        """chuk's ``configure``, which checks and changes nothing (:meth:`ArtifactsBridge.configure`), blocking."""
        self._run(self.bridge.configure(artifact_store, session_id))

    def find_pages(
        self,
        *,
        modality: Modality | str | None = None,
        tier: StorageTier | str | None = None,
        page_type: PageType | str | None = None,
        metadata: Mapping[str, str] | None = None,
        limit: int | None = None,
    ) -> list[PageMetadata]:
        """The descriptions of the pages this bridge sees that match, each from a ``head`` of its page now
        (:meth:`ArtifactsBridge.find_pages`), blocking."""
        return self._run(
            self.bridge.find_pages(modality=modality, tier=tier, page_type=page_type, metadata=metadata, limit=limit)
        )

    def store_page(
        self, page: MemoryPage, tier: StorageTier | str | None = None, *, scope: ScopeChoice | None = None
    ) -> str:
        """Store a page as a new artifact and return its id (:meth:`ArtifactsBridge.store_page`), blocking."""
        return self._run(self.bridge.store_page(page, tier, scope=scope))

    def load_page(self, artifact_id: str) -> MemoryPage | None:
        """The page stored under ``artifact_id``, verified; None if absent (:meth:`ArtifactsBridge.load_page`)."""
        return self._run(self.bridge.load_page(artifact_id))

    def delete_page(self, artifact_id: str) -> bool:
        """Delete a page no checkpoint or running agent uses; whether it existed
        (:meth:`ArtifactsBridge.delete_page`)."""
        return self._run(self.bridge.delete_page(artifact_id))

    def list_versions(self, page_id: str, *, scope: ScopeChoice | None = None) -> list[PageVersion]:
        """A page id's versions, newest first (:meth:`ArtifactsBridge.list_versions`), blocking."""
        return self._run(self.bridge.list_versions(page_id, scope=scope))

    def load_page_id(
        self, page_id: str, version: int | None = None, *, scope: ScopeChoice | None = None
    ) -> MemoryPage | None:
        """A page id's latest (or given) version, verified (:meth:`ArtifactsBridge.load_page_id`), blocking."""
        return self._run(self.bridge.load_page_id(page_id, version, scope=scope))

    def delete_page_id(self, page_id: str, *, scope: ScopeChoice | None = None) -> int:
        """Delete every version of a page id (:meth:`ArtifactsBridge.delete_page_id`), blocking."""
        return self._run(self.bridge.delete_page_id(page_id, scope=scope))

    def list_pages(self) -> list[str]:
        """Every stored page's artifact id (:meth:`ArtifactsBridge.list_pages`)."""
        return self._run(self.bridge.list_pages())

    def list_page_entries(self) -> list[PageEntry]:
        """Every stored page with what listing tells of it (:meth:`ArtifactsBridge.list_page_entries`)."""
        return self._run(self.bridge.list_page_entries())

    def get_metadata(self, artifact_id: str) -> PageMetadata | None:
        """A page's metadata without reading its body; None if absent (:meth:`ArtifactsBridge.get_metadata`)."""
        return self._run(self.bridge.get_metadata(artifact_id))

    def set_tier(self, artifact_id: str, tier: StorageTier | str) -> None:
        """Move a page to another tier in place (:meth:`ArtifactsBridge.set_tier`)."""
        self._run(self.bridge.set_tier(artifact_id, tier))

    def restore_page(self, artifact_id: str, *, days: int = 1, speed: RestoreSpeed = "standard") -> RestoreStatus:
        """Bring an archived page back, or say how far that is (:meth:`ArtifactsBridge.restore_page`)."""
        return self._run(self.bridge.restore_page(artifact_id, days=days, speed=speed))

    def get_stats(self) -> StorageStats:
        """What this bridge has done so far, without I/O (:meth:`ArtifactsBridge.get_stats`)."""
        return self.bridge.get_stats()

    def collect_stats(self) -> StorageStats:
        """The pages and bytes actually stored (:meth:`ArtifactsBridge.collect_stats`)."""
        return self._run(self.bridge.collect_stats())

    def store_leased(
        self,
        page: MemoryPage,
        tier: StorageTier | str | None = None,
        *,
        owner: str,
        reuse: CheckpointEntry | None = None,
    ) -> CheckpointEntry:
        """Store a page under ``owner``'s lease, or reuse ``reuse`` (:meth:`ArtifactsBridge.store_leased`)."""
        return self._run(self.bridge.store_leased(page, tier, owner=owner, reuse=reuse))

    def checkpoint(self, pages: Iterable[MemoryPage], name: str, *, stored: Iterable[CheckpointEntry] = ()) -> str:
        """Checkpoint ``pages`` under ``name``; the checkpoint's id (:meth:`ArtifactsBridge.checkpoint`)."""
        return self._run(self.bridge.checkpoint(pages, name, stored=stored))

    def restore_checkpoint(
        self, checkpoint_id: str, *, only: Iterable[str] | None = None, progress: Progress | None = None
    ) -> list[MemoryPage]:
        """Every page of a checkpoint, each verified, or an error: never partial
        (:meth:`ArtifactsBridge.restore_checkpoint`)."""
        return self._run(self.bridge.restore_checkpoint(checkpoint_id, only=only, progress=progress))

    def list_checkpoints(self) -> list[str]:
        """Every checkpoint's id (:meth:`ArtifactsBridge.list_checkpoints`)."""
        return self._run(self.bridge.list_checkpoints())

    def get_checkpoint_manifest(self, checkpoint_id: str) -> CheckpointManifest | None:
        """A checkpoint's manifest; None if absent (:meth:`ArtifactsBridge.get_checkpoint_manifest`)."""
        return self._run(self.bridge.get_checkpoint_manifest(checkpoint_id))

    def delete_checkpoint(self, checkpoint_id: str) -> bool:
        """Delete a checkpoint and the artifacts only it uses; whether it existed
        (:meth:`ArtifactsBridge.delete_checkpoint`)."""
        return self._run(self.bridge.delete_checkpoint(checkpoint_id))

    def store_checkpoint(self, pages: list[MemoryPage], checkpoint_name: str) -> str:
        """chuk's name for :meth:`checkpoint` (:meth:`ArtifactsBridge.store_checkpoint`), blocking."""
        return self._run(self.bridge.store_checkpoint(pages, checkpoint_name))

    def load_checkpoint(self, checkpoint_id: str) -> list[MemoryPage]:
        """Every page of the checkpoint, verified; ``[]`` when there is none (:meth:`ArtifactsBridge.load_checkpoint`),
        blocking."""
        return self._run(self.bridge.load_checkpoint(checkpoint_id))


def _settle(outcome: Future[T], task: asyncio.Task[T]) -> None:
    if task.cancelled():
        outcome.set_exception(CancelledError())
    elif (error := task.exception()) is not None:
        outcome.set_exception(error)
    else:
        outcome.set_result(task.result())


def _current_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread, bridge: ArtifactsBridge, pid: int) -> None:
    if os.getpid() != pid:
        return  # a forked child at exit: the loop and its thread are the parent's
    try:
        asyncio.run_coroutine_threadsafe(_shutdown(bridge), loop).result()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


_live: weakref.WeakSet[SyncBridge] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for sync_bridge in list(_live):
        sync_bridge._start = threading.Lock()  # a thread of the parent's may have held it at the fork
        sync_bridge._forget_parents_loop()


os.register_at_fork(after_in_child=_after_fork_in_child)


async def _shutdown(bridge: ArtifactsBridge) -> None:
    """As ``asyncio.run`` ends: the bridge's clients closed, then every task left cancelled (clients' keepers close
    theirs)."""
    try:
        await bridge.aclose(release=False)
    finally:
        current = asyncio.current_task()
        others = [t for t in asyncio.all_tasks() if t is not current]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


def _not_a_bridge(value: object) -> str:
    kind = type(value).__qualname__
    inner = getattr(value, "bridge", None)
    if isinstance(inner, ArtifactsBridge):  # chuk's TierstoreBridge (what attach returns), or the like
        return (
            f"SyncBridge wraps tierstore's ArtifactsBridge, not a {kind}: pass the bridge underneath, "
            "SyncBridge(adapter.bridge) (its calls take and return tierstore's pages)"
        )
    return f"SyncBridge wraps tierstore's ArtifactsBridge, not a {kind}"
