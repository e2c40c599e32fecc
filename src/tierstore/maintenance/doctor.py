"""``doctor``: probe a store with every operation tierstore needs, on scratch keys, and report what works.

Contract: the checks run in order (write, read, conditional create, tag, tier, list, delete) on keys
``doctor_<UTC time>_<random>_*``, which are removed before it returns, whatever happened. A check that finds the
store unusable as configured (``ConfigurationError``: the bucket or container does not exist) sets the report's
``cause`` and the checks after it are not tried, nor are they once the backend proved unreachable; a check that is
refused or fails is recorded and the next one still runs. Nothing is raised for what a check finds. A local
path that holds no store (:func:`missing_store`) is not probed, since the probe would make one there: the cause
says so.

On a bucket with the optional history calls (:mod:`tierstore.backends.history`), it then reads what the bucket keeps
after a delete and purges the scratch keys' versions: ``warnings`` name what erasure cannot remove (Object Lock or a
retention policy, soft delete) or cannot purge (versions it may not list or delete); ``notes`` what it could not
tell. Neither changes ``ok``: the store works as configured.
"""

from __future__ import annotations

import contextlib
import secrets
import shlex
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from tierstore.backends.base import StorageBackend
from tierstore.backends.filesystem import FileSystemBackend
from tierstore.backends.history import keeps_history, kept_after_delete
from tierstore.enums import StorageTier
from tierstore.errors import (
    AccessDeniedError,
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    IntegrityError,
    NotAStoreError,
    NotSupportedError,
    TierstoreError,
)
from tierstore.maintenance.reports import DoctorCheck, DoctorReport
from tierstore.protocol.history import HistoryPurged, purge_history
from tierstore.simple import is_simple_backend
from tierstore.validate import type_name

_PAYLOAD = b"tierstore doctor"
_CHECKS = (
    ("write", "put an object"),
    ("read", "get an object and its metadata"),
    ("conditional create", "create-if-absent, and refuse a second one"),
    ("tag", "write tags"),
    ("tier", "move an object to another tier and back"),
    ("list", "list keys under a prefix"),
    ("delete", "delete objects"),
)


async def _never() -> None:
    raise AssertionError("a check that is not tried does not run")


def describe(backend: StorageBackend) -> str:
    """The store as a person reads it: a path for the local disk, the backend's repr (no credentials) otherwise."""
    if isinstance(backend, FileSystemBackend):
        return f"the local-disk store at {backend.root}"
    return repr(backend)


def missing_store(backend: object) -> str | None:
    """Why ``backend`` is a local path that holds no store, or None. A store is a directory its first write made,
    or an empty directory (made for it, as a bucket is); a missing path or a directory of other files is none."""
    if not isinstance(backend, FileSystemBackend) or backend.holds_store():
        return None
    root = backend.root
    if not root.exists():
        return (
            f"no tierstore store at {root}: the directory does not exist (check the path; a first write, or "
            f"`mkdir -p {shlex.quote(str(root))}`, makes an empty store there)"
        )
    if any(root.iterdir()):
        return f"no tierstore store at {root}: the directory holds other files and no store (check the path)"
    return None


def require_store(backend: object) -> None:
    """NotAStoreError when ``backend`` is a local path that holds no store (:func:`missing_store`): what reads a
    store says so rather than report an empty one, and never creates the directory."""
    if (missing := missing_store(backend)) is not None:
        raise NotAStoreError(missing)


def require_storage_backend(backend: object, call: str) -> None:
    """NotSupportedError naming ``call`` for a backend of the spec's five-call Custom Backend interface, which
    maintenance cannot run on (it has no listing with sizes, tags, tiers or conditional writes)."""
    if not isinstance(backend, StorageBackend) and is_simple_backend(backend):
        raise NotSupportedError(
            f"{call} needs a backend implementing tierstore's StorageBackend protocol; "
            f"{type_name(backend)} implements the spec's custom backend interface only"
        )


async def doctor(backend: StorageBackend) -> DoctorReport:
    """Probe ``backend`` with every operation tierstore needs (the module docstring says how); never raises for
    what a check finds. NotSupportedError for a custom (five-call) backend."""
    require_storage_backend(backend, "doctor")
    return await _Probe(backend).run()


class _Probe:
    def __init__(self, backend: StorageBackend) -> None:
        self.backend = backend
        self.stem = f"doctor_{datetime.now(UTC):%Y%m%dT%H%M%S}_{secrets.token_hex(4)}"
        self.report = DoctorReport(describe(backend))
        self.created: list[str] = []
        self.stopped: str | None = None

    async def run(self) -> DoctorReport:
        if (missing := missing_store(self.backend)) is not None:
            # Probing would make the store: a mistyped path would be created and called healthy.
            self.report.cause = missing
            self.stopped = "there is no store to check"
            for name, what in _CHECKS:
                await self._check(name, what, _never)
            return self.report
        try:
            await self._check("write", "put an object", self._write)
            await self._check("read", "get an object and its metadata", self._read)
            await self._check("conditional create", "create-if-absent, and refuse a second one", self._create)
            if "tags" in self.backend.capabilities:
                await self._check("tag", "write tags", self._tag)
            else:
                self.report.checks.append(DoctorCheck("tag", "skipped", "the backend has no tags"))
            if "tiers" in self.backend.capabilities:
                archive = "archive" in self.backend.capabilities
                what = "move an object L3 -> L4 and " + ("ask for its restore" if archive else "back")
                await self._check("tier", what, self._tier)
            else:
                self.report.checks.append(DoctorCheck("tier", "skipped", "the backend has no tiers"))
            await self._check("list", "list keys under a prefix", self._list)
            await self._check("delete", "delete objects", self._delete)
        finally:
            with contextlib.suppress(TierstoreError):
                await self.backend.delete_many(self.created)
        if not self.stopped and keeps_history(self.backend):
            await self._history()
        return self.report

    async def _history(self) -> None:
        """What the bucket keeps after a delete: warnings for what erasure cannot remove; and the history of the
        scratch keys purged, which proves that erasure may list and delete versions here."""
        backend: Any = self.backend
        try:
            settings = await backend.history_settings()
        except TierstoreError as exc:
            self.report.warnings.append(f"could not read what the bucket keeps after a delete: {exc}")
        else:
            self.report.warnings.extend(kept_after_delete(settings, "the bucket"))
            if settings.versioning in ("enabled", "suspended"):
                self.report.notes.append(f"versioning is {settings.versioning}: erasure deletes the versions it leaves")
            self.report.notes.extend(settings.notes)
        try:
            purged = await purge_history(backend, self.stem, lambda key: True, HistoryPurged(settings_read=True))
        except TierstoreError as exc:
            self.report.warnings.append(f"erasure could not purge the history of doctor's keys: {exc}")
            return
        for note in purged.notes:
            self.report.warnings.append(f"erasure cannot purge the bucket's history: {note}")
        if purged.left:
            self.report.warnings.append(f"erasure cannot delete every version: {purged.left[0]}")

    async def _check(self, name: str, what: str, step: Callable[[], Awaitable[None]]) -> None:
        check = DoctorCheck(name, detail=what)
        self.report.checks.append(check)
        if self.stopped:
            check.detail = f"not tried: {self.stopped}"
            return
        try:
            await step()
            check.result = "ok"
        except ConfigurationError as exc:
            check.result, check.detail = "failed", str(exc)
            self.report.cause = str(exc)
            self.stopped = "the store cannot be used as configured"
        except AccessDeniedError as exc:
            check.result, check.detail = "denied", f"not allowed to {what}: {exc}"
        except BackendUnavailableError as exc:
            check.result, check.detail = "unavailable", str(exc)
            self.stopped = "the backend is unreachable"
        except TierstoreError as exc:
            check.result, check.detail = "failed", f"{type(exc).__name__}: {exc}"

    def _key(self, suffix: str) -> str:
        key = f"{self.stem}_{suffix}"
        self.created.append(key)
        return key

    async def _write(self) -> None:
        await self.backend.put(self._key("w"), _PAYLOAD, metadata={"doctor": "1"})

    async def _read(self) -> None:
        key = f"{self.stem}_w"
        if await self.backend.get(key) != _PAYLOAD:
            raise IntegrityError("the object read back differs from the one written", key=key)
        info = await self.backend.head(key)
        if info is None or dict(info.metadata) != {"doctor": "1"}:
            raise IntegrityError("the metadata read back differs from what was written", key=key)

    async def _create(self) -> None:
        key = self._key("c")
        await self.backend.put(key, b"first", if_absent=True)
        try:
            await self.backend.put(key, b"second", if_absent=True)
        except ConflictError:
            return
        raise IntegrityError("a second create-if-absent succeeded: two writers could claim one artifact id")

    async def _tag(self) -> None:
        key = self._key("t")
        await self.backend.put(key, b"tagged", tags={"tier": StorageTier.L3.value}, tier=StorageTier.L3)

    async def _tier(self) -> None:
        """A real change of class (L3 -> L4, whose class differs by default everywhere) and back: to L3 again, or,
        where L4 is an archive (a read, and so the way back, needs a restore), a restore request."""
        key = self._key("m")
        await self.backend.put(key, b"tiered", tier=StorageTier.L3)
        await self._moved(key, StorageTier.L4)
        if "archive" in self.backend.capabilities:
            await self.backend.restore(key, days=1, speed="standard")
        else:
            await self._moved(key, StorageTier.L3)

    async def _moved(self, key: str, tier: StorageTier) -> None:
        await self.backend.set_tier(key, tier)
        info = await self.backend.head(key)
        if info is None or info.tier != tier:
            reported = "nothing" if info is None else (info.tier.value if info.tier else "no tier")
            raise IntegrityError(f"the store accepted the move to {tier.value} but reports {reported}", key=key)

    async def _list(self) -> None:
        keys = [entry.key async for entry in self.backend.list(self.stem)]
        if f"{self.stem}_w" not in keys:
            raise IntegrityError("the listing does not show an object just written")

    async def _delete(self) -> None:
        if not await self.backend.delete(f"{self.stem}_w"):
            raise IntegrityError("delete did not find an object just written")
        await self.backend.delete_many([k for k in self.created if not k.endswith("_w")])
        self.created.clear()
