"""The ``tierstore`` command line.

Every command works on the backend ``--url`` names, else ``TIERSTORE_URL``, else the local-disk store in the data
directory (see :mod:`tierstore.config`). Output is a table for people, or JSON with ``--json``; long operations draw
a progress bar on stderr when it is a terminal.

Exit codes (also in ``tierstore --help``):

===  ===================================================================================
0   success
1   problems found: ``fsck`` found damage, ``migrate`` left something behind, ``doctor`` found a check failing
2   usage or configuration error (bad arguments, settings or URL, an extra not installed)
3   the backend is unavailable, or the credentials do not allow the operation
4   integrity error: stored bytes are not what was written
5   not found: no such artifact or checkpoint
6   archived: the page must be restored first (``tierstore restore ID``)
7   not supported by this backend
8   any other tierstore error
130 interrupted
141 stdout closed early (e.g. ``tierstore ls | head``)
===  ===================================================================================
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, get_args

from tierstore import maintenance
from tierstore._console import ProgressBar, human_size, print_fields, print_json, print_table, to_plain
from tierstore.backends.base import RestoreSpeed, StorageBackend
from tierstore.backends.filesystem import FileSystemBackend
from tierstore.bridge import ArtifactsBridge
from tierstore.config import TierstoreSettings, backend_from_url, default_data_dir, load_settings, redact_url
from tierstore.demo import run_demo
from tierstore.enums import Modality, StorageTier
from tierstore.errors import (
    AccessDeniedError,
    ArchivedPageError,
    BackendUnavailableError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    MissingDependencyError,
    NotSupportedError,
    ObjectNotFoundError,
    TierstoreError,
)
from tierstore.models import CheckpointManifest, MemoryPage, PageMetadata

__all__ = ["default_data_dir", "main"]

T = TypeVar("T")

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_INTEGRITY = 4
EXIT_NOT_FOUND = 5
EXIT_ARCHIVED = 6
EXIT_NOT_SUPPORTED = 7
EXIT_ERROR = 8
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # what a shell reports for a command killed by SIGPIPE, e.g. `tierstore ls | head`

_EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (InvalidInputError, EXIT_USAGE),  # ConfigurationError included
    (MissingDependencyError, EXIT_USAGE),
    (BackendUnavailableError, EXIT_UNAVAILABLE),
    (AccessDeniedError, EXIT_UNAVAILABLE),
    (IntegrityError, EXIT_INTEGRITY),
    (ObjectNotFoundError, EXIT_NOT_FOUND),
    (ArchivedPageError, EXIT_ARCHIVED),
    (NotSupportedError, EXIT_NOT_SUPPORTED),
    (TierstoreError, EXIT_ERROR),
)

_EPILOG = """\
exit codes: 0 ok; 1 problems found (fsck, migrate, doctor); 2 usage or configuration error; 3 backend
unavailable or access denied; 4 integrity error; 5 not found; 6 archived (restore first); 7 not supported by
the backend; 8 other error; 130 interrupted.

The backend is --url, else $TIERSTORE_URL, else the local-disk store in $TIERSTORE_DATA_DIR (default
$XDG_DATA_HOME/tierstore or ~/.local/share/tierstore). URLs: file:///path, memory://, s3://bucket/prefix,
gs://bucket/prefix, az://container/prefix. Other settings: docs/configuration.md.
"""


class _Exit(Exception):
    """Ends a command with a message on stderr and an exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# -- plumbing ---------------------------------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> TierstoreSettings:
    settings: TierstoreSettings = args.settings
    return settings


def _url(args: argparse.Namespace) -> str | None:
    url: str | None = getattr(args, "url", None)
    return url or _settings(args).url


def _bridge(args: argparse.Namespace, backend: StorageBackend | None = None) -> ArtifactsBridge:
    settings = _settings(args)
    return ArtifactsBridge(
        backend=backend if backend is not None else backend_from_url(_url(args), settings),
        compression=settings.compression,
        concurrency=settings.concurrency,
    )


def _wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


async def _bounded_gather(awaitables: Iterable[Awaitable[T]], limit: int, progress: ProgressBar | None) -> list[T]:
    semaphore = asyncio.Semaphore(limit)
    todo = list(awaitables)
    done = 0

    async def one(awaitable: Awaitable[T]) -> T:
        nonlocal done
        async with semaphore:
            result = await awaitable
        done += 1
        if progress is not None:
            progress(done, len(todo))
        return result

    return list(await asyncio.gather(*(one(a) for a in todo)))


@contextlib.asynccontextmanager
async def _closing(backend: StorageBackend) -> AsyncIterator[StorageBackend]:
    try:
        yield backend
    finally:
        await backend.aclose()


def _describe(backend: Any) -> str:
    if isinstance(backend, FileSystemBackend):
        return f"the local-disk store at {backend.root}"
    return repr(backend)


# -- demo -------------------------------------------------------------------------------------------------------


async def _demo(args: argparse.Namespace) -> int:
    if args.root:
        backend: StorageBackend = FileSystemBackend(args.root)
    else:
        backend = backend_from_url(_url(args), _settings(args))
    as_json = _wants_json(args)
    if not as_json:
        print(f"tierstore demo: the spec's complete example on {_describe(backend)}\n")
    async with _bridge(args, backend) as bridge:
        checkpoint_id = await run_demo(bridge, say=(lambda _line: None) if as_json else print)
        if as_json:
            print_json({"checkpoint_id": checkpoint_id, "stats": bridge.get_stats()})
    return EXIT_OK


# -- ls and show ------------------------------------------------------------------------------------------------

_LS_COLUMNS = (
    ("artifact_id", "ARTIFACT"),
    ("tier", "TIER"),
    ("modality", "MODALITY"),
    ("size", "SIZE"),
    ("created_at", "CREATED"),
    ("storage_class", "STORAGE CLASS"),
    ("page_id", "PAGE"),
)


def _matches(meta: PageMetadata, args: argparse.Namespace) -> bool:
    if args.tier and meta.tier != args.tier:
        return False
    if args.modality and meta.modality != args.modality:
        return False
    return not args.prefix or meta.page_id.startswith(args.prefix)


async def _ls(args: argparse.Namespace) -> int:
    async with _bridge(args) as bridge:
        artifact_ids = await bridge.list_pages()
        with ProgressBar("reading metadata") as bar:
            found = await _bounded_gather(
                (bridge.get_metadata(a) for a in artifact_ids), _settings(args).concurrency, bar
            )
    listed = [m for m in found if m is not None and _matches(m, args)]
    if _wants_json(args):
        print_json(listed)
    else:
        rows = [{**m.model_dump(), "size": human_size(m.size_bytes)} for m in listed]
        print_table(rows, _LS_COLUMNS)
    return EXIT_OK


def _content_text(page: MemoryPage) -> str | None:
    """The content as text, or None for binary content."""
    if isinstance(page.content, bytes):
        return None
    if isinstance(page.content, str):
        return page.content
    return json.dumps(to_plain(page.content), indent=2, ensure_ascii=False)


async def _show(args: argparse.Namespace) -> int:
    async with _bridge(args) as bridge:
        meta = await bridge.get_metadata(args.id)
        if meta is None:
            raise _Exit(EXIT_NOT_FOUND, f"no artifact {args.id!r}")
        page = await bridge.load_page(args.id) if args.content or args.raw else None
    if args.raw:
        assert page is not None
        content = page.content
        sys.stdout.buffer.write(content if isinstance(content, bytes) else str(_content_text(page)).encode("utf-8"))
        sys.stdout.buffer.flush()
        return EXIT_OK
    if _wants_json(args):
        shown: dict[str, Any] = {"metadata": meta}
        if page is not None:
            shown["page"] = page.model_dump(mode="python")
        print_json(shown)
        return EXIT_OK
    print_fields({k: v for k, v in meta.model_dump().items() if v is not None})
    if page is not None:
        text = _content_text(page)
        print("\ncontent:")
        if text is None:
            size = len(page.content) if isinstance(page.content, bytes) else 0
            print(f"({size} bytes of binary content: `tierstore show {args.id} --raw > FILE` writes them)")
        else:
            print(text)
    return EXIT_OK


# -- checkpoints ------------------------------------------------------------------------------------------------


def _manifest_row(checkpoint_id: str, manifest: CheckpointManifest) -> dict[str, Any]:
    return {
        "checkpoint_id": checkpoint_id,
        "name": manifest.name,
        "created_at": manifest.created_at,
        "pages": manifest.page_count,
        "size": human_size(sum(e.size_bytes for e in manifest.pages)),
    }


async def _checkpoints_list(args: argparse.Namespace) -> int:
    async with _bridge(args) as bridge:
        checkpoint_ids = await bridge.list_checkpoints()
        manifests = await _bounded_gather(
            (bridge.get_checkpoint_manifest(c) for c in checkpoint_ids), _settings(args).concurrency, None
        )
    found = [(c, m) for c, m in zip(checkpoint_ids, manifests, strict=True) if m is not None]
    if _wants_json(args):
        print_json([{**m.model_dump(mode="json", exclude={"pages"}), "checkpoint_id": c} for c, m in found])
        return EXIT_OK
    columns = (("checkpoint_id", "CHECKPOINT"), ("name", "NAME"), ("created_at", "CREATED"), ("pages", "PAGES"))
    print_table([_manifest_row(c, m) for c, m in found], (*columns, ("size", "SIZE")))
    return EXIT_OK


_ENTRY_COLUMNS = (
    ("page_id", "PAGE"),
    ("artifact_id", "ARTIFACT"),
    ("modality", "MODALITY"),
    ("tier", "TIER"),
    ("size", "SIZE"),
)


async def _manifest(bridge: ArtifactsBridge, checkpoint_id: str) -> CheckpointManifest:
    manifest = await bridge.get_checkpoint_manifest(checkpoint_id)
    if manifest is None:
        raise _Exit(EXIT_NOT_FOUND, f"no checkpoint {checkpoint_id!r}")
    return manifest


async def _checkpoints_show(args: argparse.Namespace) -> int:
    async with _bridge(args) as bridge:
        manifest = await _manifest(bridge, args.id)
    if _wants_json(args):
        print_json(manifest)
        return EXIT_OK
    row = _manifest_row(args.id, manifest)
    print_fields(
        {
            "checkpoint": row["checkpoint_id"],
            "name": row["name"],
            "created": row["created_at"],
            "pages": row["pages"],
            "size": row["size"],
        }
    )
    print()
    print_table([{**e.model_dump(), "size": human_size(e.size_bytes)} for e in manifest.pages], _ENTRY_COLUMNS)
    return EXIT_OK


async def _checkpoints_restore(args: argparse.Namespace) -> int:
    """Restore = load every page of the checkpoint and verify it; nothing is written."""
    async with _bridge(args) as bridge:
        manifest = await _manifest(bridge, args.id)
        pages = await bridge.restore_checkpoint(args.id)
    if _wants_json(args):
        print_json({"checkpoint_id": args.id, "verified": len(pages), "pages": [p.page_id for p in pages]})
        return EXIT_OK
    print(f"checkpoint {args.id} ({manifest.name}): all {len(pages)} pages restored and verified\n")
    print_table([{**e.model_dump(), "size": human_size(e.size_bytes)} for e in manifest.pages], _ENTRY_COLUMNS)
    return EXIT_OK


async def _checkpoints_delete(args: argparse.Namespace) -> int:
    async with _bridge(args) as bridge:
        deleted = await bridge.delete_checkpoint(args.id)
    if not deleted:
        raise _Exit(EXIT_NOT_FOUND, f"no checkpoint {args.id!r}")
    if _wants_json(args):
        print_json({"checkpoint_id": args.id, "deleted": True})
    else:
        print(f"deleted checkpoint {args.id} (and the artifacts no other checkpoint uses)")
    return EXIT_OK


# -- migrate, fsck, gc ------------------------------------------------------------------------------------------


async def _migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    source = backend_from_url(args.source, settings)
    destination = backend_from_url(args.destination, settings)
    async with _closing(source), _closing(destination):
        with ProgressBar("migrating") as bar:
            report = await maintenance.migrate(source, destination, concurrency=settings.concurrency, progress=bar)
    trouble = bool(report.problems or report.archived or report.incomplete_checkpoints)
    if _wants_json(args):
        print_json({"source": redact_url(args.source), "destination": redact_url(args.destination), **_plain(report)})
        return EXIT_PROBLEMS if trouble else EXIT_OK
    print(f"migrated {redact_url(args.source)} -> {redact_url(args.destination)}")
    print_fields(
        {
            "objects copied": report.copied,
            "already there": report.skipped,
            "checkpoints copied": report.checkpoints_copied,
        }
    )
    _print_problems(report.problems)
    if report.archived:
        print(f"\nnot copied, archived (restore them first, then run migrate again): {', '.join(report.archived)}")
    if report.incomplete_checkpoints:
        names = ", ".join(report.incomplete_checkpoints)
        print(f"\nnot copied, some of their pages could not be copied: {names}")
    return EXIT_PROBLEMS if trouble else EXIT_OK


def _plain(report: Any) -> dict[str, Any]:
    plain: dict[str, Any] = to_plain(report)
    return plain


def _print_problems(problems: Sequence[maintenance.Problem]) -> None:
    if problems:
        print(f"\n{len(problems)} problem(s):")
        print_table([to_plain(p) for p in problems], (("key", "KEY"), ("kind", "KIND"), ("detail", "DETAIL")))


async def _fsck(args: argparse.Namespace) -> int:
    settings = _settings(args)
    async with _bridge(args) as bridge:
        with ProgressBar("checking") as bar:
            report = await maintenance.fsck(
                bridge, verify=not args.no_verify, concurrency=settings.concurrency, progress=bar
            )
    code = EXIT_OK if report.ok else EXIT_PROBLEMS
    if _wants_json(args):
        print_json({"ok": report.ok, **_plain(report)})
        return code
    print_fields(
        {
            "pages": report.pages,
            "checkpoints": report.checkpoints,
            "verified": report.verified if not args.no_verify else "skipped (--no-verify)",
            "archived": len(report.archived),
            "orphans": len(report.orphans),
            "problems": len(report.problems),
        }
    )
    if report.orphans:
        print("\norphans (written for a checkpoint that does not reference them; `tierstore gc` removes them):")
        rows = [{**to_plain(o), "size": human_size(o.size), "last_modified": o.last_modified} for o in report.orphans]
        print_table(rows, (("key", "ARTIFACT"), ("size", "SIZE"), ("last_modified", "WRITTEN"), ("checkpoint", "FOR")))
    _print_problems(report.problems)
    print("\nok" if report.ok else "\nproblems found")
    return code


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``90``, ``30s``, ``15m``, ``1h``, ``2d``, ``1w``."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: use e.g. 30s, 15m, 1h, 2d")
    return timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])


def format_duration(duration: timedelta) -> str:
    seconds = duration.total_seconds()
    for unit in ("w", "d", "h", "m"):
        if seconds >= _UNIT_SECONDS[unit] and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds / _UNIT_SECONDS[unit]:g}{unit}"
    return f"{seconds:g}s"


async def _gc(args: argparse.Namespace) -> int:
    async with _bridge(args) as bridge:
        report = await maintenance.gc(bridge, grace=args.grace, dry_run=args.dry_run)
    if _wants_json(args):
        print_json({"dry_run": args.dry_run, **_plain(report)})
        return EXIT_OK
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {len(report.orphans_deleted)} orphan(s) older than {format_duration(args.grace)}")
    for key in report.orphans_deleted:
        print(f"  {key}")
    print(f"{verb} {report.intents_removed} stale intent(s) and {report.tombs_pruned} old tomb record(s)")
    return EXIT_OK


# -- tier and restore -------------------------------------------------------------------------------------------


async def _tier(args: argparse.Namespace) -> int:
    async with _bridge(args) as bridge:
        await bridge.set_tier(args.id, StorageTier(args.tier))
        meta = await bridge.get_metadata(args.id)
    if _wants_json(args):
        print_json(meta)
        return EXIT_OK
    storage_class = f" (storage class {meta.storage_class})" if meta and meta.storage_class else ""
    print(f"{args.id} is now in {args.tier}{storage_class}")
    return EXIT_OK


async def _restore(args: argparse.Namespace) -> int:
    async with _bridge(args) as bridge:
        status = await bridge.restore_page(args.id, days=args.days, speed=args.speed)
    if _wants_json(args):
        print_json({"artifact_id": args.id, **_plain(status)})
        return EXIT_OK
    meaning = {
        "not-archived": "is not archived: it can be loaded now",
        "pending": "is being restored: load it once the restore completes",
        "restored": "is restored: it can be loaded now",
        "archived": "is still archived",
    }[status.state]
    until = f" (until {status.expires_at:%Y-%m-%d %H:%M} UTC)" if status.expires_at else ""
    print(f"{args.id} {meaning}{until}")
    return EXIT_OK


# -- doctor -----------------------------------------------------------------------------------------------------

CheckResult = Literal["ok", "denied", "failed", "unavailable", "skipped"]


@dataclass
class _Check:
    name: str
    result: CheckResult = "skipped"
    detail: str = ""


class _Doctor:
    """Runs each operation tierstore needs against scratch keys ``doctor_<time>_<random>_*``, then removes them."""

    def __init__(self, backend: StorageBackend) -> None:
        self.backend = backend
        self.stem = f"doctor_{datetime.now(UTC):%Y%m%dT%H%M%S}_{secrets.token_hex(4)}"
        self.checks: list[_Check] = []
        self.created: list[str] = []
        self.unreachable = False

    async def run(self) -> list[_Check]:
        try:
            await self._check("write", "put an object", self._write)
            await self._check("read", "get an object and its metadata", self._read)
            await self._check("conditional create", "create-if-absent, and refuse a second one", self._create)
            if "tags" in self.backend.capabilities:
                await self._check("tag", "write tags and change an object's tier", self._tag)
            else:
                self.checks.append(_Check("tag", "skipped", "the backend has no tags"))
            await self._check("list", "list keys under a prefix", self._list)
            await self._check("delete", "delete objects", self._delete)
        finally:
            with contextlib.suppress(TierstoreError):
                await self.backend.delete_many(self.created)
        return self.checks

    async def _check(self, name: str, what: str, step: Callable[[], Awaitable[None]]) -> None:
        check = _Check(name, detail=what)
        self.checks.append(check)
        if self.unreachable:
            check.detail = "not tried: the backend is unreachable"
            return
        try:
            await step()
            check.result = "ok"
        except AccessDeniedError as exc:
            check.result, check.detail = "denied", f"not allowed to {what}: {exc}"
        except BackendUnavailableError as exc:
            check.result, check.detail = "unavailable", str(exc)
            self.unreachable = True
        except TierstoreError as exc:
            check.result, check.detail = "failed", f"{type(exc).__name__}: {exc}"

    def _key(self, suffix: str) -> str:
        key = f"{self.stem}_{suffix}"
        self.created.append(key)
        return key

    async def _write(self) -> None:
        await self.backend.put(self._key("w"), b"tierstore doctor", metadata={"doctor": "1"})

    async def _read(self) -> None:
        key = f"{self.stem}_w"
        if await self.backend.get(key) != b"tierstore doctor":
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
        await self.backend.set_tier(key, StorageTier.L3)

    async def _list(self) -> None:
        keys = [entry.key async for entry in self.backend.list(self.stem)]
        if f"{self.stem}_w" not in keys:
            raise IntegrityError("the listing does not show an object just written")

    async def _delete(self) -> None:
        if not await self.backend.delete(f"{self.stem}_w"):
            raise IntegrityError("delete did not find an object just written")
        await self.backend.delete_many([k for k in self.created if not k.endswith("_w")])
        self.created.clear()


async def _doctor(args: argparse.Namespace) -> int:
    backend = backend_from_url(_url(args), _settings(args))
    async with _closing(backend):
        checks = await _Doctor(backend).run()
    denied = [c.name for c in checks if c.result in ("denied", "unavailable")]
    failed = [c.name for c in checks if c.result == "failed"]
    code = EXIT_UNAVAILABLE if denied else EXIT_PROBLEMS if failed else EXIT_OK
    if _wants_json(args):
        print_json({"backend": _describe(backend), "ok": code == EXIT_OK, "checks": checks})
        return code
    print(f"backend: {_describe(backend)}\n")
    print_table([to_plain(c) for c in checks], (("name", "CHECK"), ("result", "RESULT"), ("detail", "DETAIL")))
    if any(c.result == "unavailable" for c in checks):
        print("\nthe backend cannot be reached: check the URL, endpoint and network")
    elif denied:
        print(f"\nmissing permissions: {', '.join(denied)}")
    elif failed:
        print(f"\nfailing: {', '.join(failed)}")
    else:
        print("\neverything tierstore needs works")
    return code


# -- parser and entry point -------------------------------------------------------------------------------------


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help="backend URL: file:///path, memory://, s3://bucket/prefix, gs://bucket/prefix, az://container/prefix "
        "(default: $TIERSTORE_URL, else the local-disk store)",
    )
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts")
    return common


def _parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="tierstore",
        description="Durable, tiered storage for agent memory pages.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[[argparse.Namespace], Awaitable[int]], help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help, parents=[common])
        sub.set_defaults(run=run)
        return sub

    demo = command("demo", _demo, "run the spec's complete example on the configured backend")
    demo.add_argument("--root", help="run it on the local-disk store in this directory instead")

    ls = command("ls", _ls, "list stored pages with tier, modality, size, created time and storage class")
    ls.add_argument("--tier", choices=[t.value for t in StorageTier], help="only pages in this tier")
    ls.add_argument("--modality", choices=[m.value for m in Modality], help="only pages of this modality")
    ls.add_argument("--prefix", help="only pages whose page id starts with this")

    show = command("show", _show, "show a stored page's metadata")
    show.add_argument("id", help="artifact id, e.g. mem_L3_1")
    show.add_argument("--content", action="store_true", help="load the page and show its content too")
    show.add_argument("--raw", action="store_true", help="write only the content to stdout (bytes as they are)")

    _add_checkpoints(command("checkpoints", _checkpoints_list, "list, show, verify or delete checkpoints"), common)

    migrate = command("migrate", _migrate, "copy every page and checkpoint from one backend to another")
    migrate.add_argument("source", metavar="SRC", help="source backend URL")
    migrate.add_argument("destination", metavar="DST", help="destination backend URL")

    fsck = command("fsck", _fsck, "verify every page and manifest and list orphans")
    fsck.add_argument("--no-verify", action="store_true", help="list and cross-check only; do not read page bodies")

    gc = command("gc", _gc, "delete orphans older than a grace period")
    gc.add_argument("--grace", type=parse_duration, default=timedelta(hours=1), help="e.g. 30m, 1h, 2d (default 1h)")
    gc.add_argument("--dry-run", action="store_true", help="report what would be deleted; delete nothing")

    tier = command("tier", _tier, "move a stored page to another tier (its storage class follows)")
    tier.add_argument("id", help="artifact id")
    tier.add_argument("tier", choices=["L2", "L3", "L4"], help="the tier to move it to")

    restore = command("restore", _restore, "start bringing an archived page back, and report its state")
    restore.add_argument("id", help="artifact id")
    restore.add_argument("--days", type=int, default=1, help="days the restored copy stays readable (S3; default 1)")
    restore.add_argument("--speed", choices=get_args(RestoreSpeed), default="standard", help="default: standard")

    command("doctor", _doctor, "check the backend is reachable and the credentials allow what tierstore needs")
    return parser


def _add_checkpoints(checkpoints: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    actions = checkpoints.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("list", help="list checkpoints (the default)", parents=[common]).set_defaults(
        run=_checkpoints_list
    )
    for name, run, help in (
        ("show", _checkpoints_show, "show a checkpoint's manifest"),
        ("restore", _checkpoints_restore, "load and verify every page of a checkpoint (writes nothing)"),
        ("delete", _checkpoints_delete, "delete a checkpoint and the artifacts only it uses"),
    ):
        action = actions.add_parser(name, help=help, description=help, parents=[common])
        action.add_argument("id", help="checkpoint id, e.g. ckpt_20261125T200102123456_ab12cd34")
        action.set_defaults(run=run)


def _exit_code(exc: BaseException) -> int:
    return next(code for kind, code in _EXIT_CODES if isinstance(exc, kind))


def _fail(args: argparse.Namespace, code: int, kind: str, message: str) -> int:
    print(f"tierstore: {kind}: {message}", file=sys.stderr)
    if _wants_json(args):
        print_json({"error": kind, "message": message, "exit_code": code})
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.settings = load_settings()
        code: int = asyncio.run(args.run(args))
    except _Exit as exc:
        return _fail(args, exc.code, "error", str(exc))
    except TierstoreError as exc:
        return _fail(args, _exit_code(exc), type(exc).__name__, str(exc))
    except KeyboardInterrupt:
        print("tierstore: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away; point stdout at /dev/null so the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return code


if __name__ == "__main__":
    sys.exit(main())
