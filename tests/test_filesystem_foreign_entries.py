"""The local-disk store among entries it did not write: every kind of entry standing at an artifact's key, driven
through every call and command; files that are not tierstore's at every level of a store; directories that are not
stores; symbolic links out of the root. Nothing hangs, nothing stops the rest, nothing outside what tierstore
wrote is touched."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import hashlib
import io
import os
import re
import secrets
import shutil
import socket
import stat
import struct
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tierstore import (
    ArtifactsBridge,
    FileSystemBackend,
    InMemoryBackend,
    IntegrityError,
    MemoryPage,
    Modality,
    StorageTier,
)
from tierstore.cli import exit_codes, main
from tierstore.errors import NotAStoreError
from tierstore.maintenance import fsck, gc, migrate

HEALTHY = 3
VICTIM = "mem_L3_999"


def _page(i: int) -> MemoryPage:
    return MemoryPage(page_id=f"page {i}", modality=Modality.TEXT, content=f"content {i}")


def _socket_at(path: Path) -> None:
    """A UNIX socket file at ``path`` (bound at a short path first: socket paths are limited to 107 bytes)."""
    short = Path(tempfile.gettempdir()) / f"ts-{secrets.token_hex(4)}.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(short))
    os.rename(short, path)


def _flip_header_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    (length,) = struct.unpack(">I", data[4:8])
    data[12 + length // 2] ^= 0x04
    path.write_bytes(bytes(data))


def _make(kind: str, path: Path, outside: Path) -> None:
    makers: dict[str, Callable[[], object]] = {
        "empty directory": path.mkdir,
        "named pipe": lambda: os.mkfifo(path),
        "socket": lambda: _socket_at(path),
        "character device": lambda: os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3)),  # /dev/null's
        "symlink to a file outside": lambda: path.symlink_to(outside / "secret.txt"),
        "symlink to a directory outside": lambda: path.symlink_to(outside),
        "dangling symlink": lambda: path.symlink_to(outside / "nothing-here"),
        "page extended to 1 TiB (sparse)": lambda: os.truncate(path, 1 << 40),
        "page with a flipped bit in its disk header": lambda: _flip_header_bit(path),
        "page cut short": lambda: os.truncate(path, path.stat().st_size - 3),
    }
    makers[kind]()


KINDS = [
    "empty directory",
    "named pipe",
    "socket",
    "character device",
    "symlink to a file outside",
    "symlink to a directory outside",
    "dangling symlink",
    "page extended to 1 TiB (sparse)",
    "page with a flipped bit in its disk header",
    "page cut short",
]


def _snapshot(root: Path) -> dict[str, tuple[str, str]]:
    """Every entry under ``root`` (links not followed): its kind and its content's digest or link target."""
    found: dict[str, tuple[str, str]] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory, name)
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                found[str(path.relative_to(root))] = ("link", os.readlink(path))
            elif stat.S_ISREG(mode):
                found[str(path.relative_to(root))] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                found[str(path.relative_to(root))] = (oct(stat.S_IFMT(mode)), "")
    return found


@contextlib.contextmanager
def _hang_guard(seconds: int = 120) -> Iterator[None]:
    """A call that hangs (a FIFO opened for reading waits for a writer forever) ends the run with every thread's
    stack instead of stalling it."""
    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


async def _finds_all_but(bridge: ArtifactsBridge, healthy: list[str], victim: str) -> None:
    """Every search finds every healthy page it matches and leaves the odd entry out, stopped by nothing."""
    for query in ({}, {"tier": "L3"}, {"modality": "text"}, {"metadata": {"k": "v"}}):
        found = {meta.artifact_id for meta in await bridge.find_pages(**query)}
        assert victim not in found, query
        assert found >= (set() if "metadata" in query else set(healthy)), query


@pytest.mark.parametrize("kind", KINDS)
def test_every_call_and_command_reports_skips_or_deletes_an_odd_entry_at_a_key(tmp_path: Path, kind: str) -> None:
    root, outside = tmp_path / "store", tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not tierstore's")
    url = f"file://{root}"

    async def prepare() -> tuple[list[str], str]:
        bridge = ArtifactsBridge(backend=FileSystemBackend(root))
        healthy = [await bridge.store_page(_page(i)) for i in range(HEALTHY)]
        await bridge.checkpoint([_page(0)], name="kept")
        if kind.startswith("page"):
            return healthy, await bridge.store_page(_page(HEALTHY))
        return healthy, VICTIM

    healthy, victim = asyncio.run(prepare())
    path = root / "objects" / victim
    _make(kind, path, outside)
    outside_before = _snapshot(outside)

    async def every_call() -> None:
        bridge = ArtifactsBridge(backend=FileSystemBackend(root))
        assert set(await bridge.list_pages()) >= {*healthy, victim}
        assert {e.artifact_id for e in await bridge.list_page_entries()} >= {*healthy, victim}
        for call in (bridge.load_page, bridge.get_metadata, lambda key: bridge.set_tier(key, "L4")):
            with pytest.raises(IntegrityError):
                await call(victim)
        for i, key in enumerate(healthy):
            loaded = await bridge.load_page(key)
            assert loaded is not None
            assert loaded.content == _page(i).content
        await _finds_all_but(bridge, healthy, victim)
        report = await fsck(bridge)
        assert [p.key for p in report.problems] == [victim]
        assert report.verified >= HEALTHY
        await gc(bridge, grace=timedelta(0))
        async with ArtifactsBridge(backend=InMemoryBackend()) as destination:
            moved = await migrate(bridge.references("migrate").backend, destination.references("migrate").backend)
            assert [p.key for p in moved.problems] == [victim]
            assert set(await destination.list_pages()) >= set(healthy)
        assert set(await bridge.list_pages()) >= {*healthy, victim}

    with _hang_guard():
        asyncio.run(every_call())
        assert _cli("ls", "--url", url)[0] == 0
        code, out, err = _cli("ls", "--long", "--url", url)
        assert code == exit_codes.INTEGRITY
        assert all(key in out for key in healthy)
        assert victim in err
        for search in (["--meta", "k=v"], ["--tier", "L3"]):
            code, out, err = _cli("ls", *search, "--url", url)
            assert (code, victim in err) == (exit_codes.INTEGRITY, True), search
        assert _cli("show", victim, "--url", url)[0] == exit_codes.INTEGRITY
        for check in (["fsck"], ["fsck", "--repair"]):
            code, out, err = _cli(*check, "--url", url)
            assert code == exit_codes.PROBLEMS
            assert victim in out
            assert "Traceback" not in err
        assert _cli("gc", "--grace", "0s", "--url", url)[0] == 0
        assert _cli("rm", victim, "--url", url) == (0, f"deleted {victim}\n", "")
    assert not os.path.lexists(path)
    assert _snapshot(outside) == outside_before  # a symbolic link's target is never what is deleted
    assert _cli("fsck", "--url", url)[0] == 0


def test_a_directory_with_files_in_it_at_a_key_is_reported_and_never_deleted(tmp_path: Path) -> None:
    root = tmp_path / "store"
    asyncio.run(ArtifactsBridge(backend=FileSystemBackend(root)).store_page(_page(0)))
    (root / "objects" / VICTIM).mkdir()
    (root / "objects" / VICTIM / "notes.txt").write_text("the user's")
    url = f"file://{root}"
    code, out, _err = _cli("fsck", "--url", url)
    assert code == exit_codes.PROBLEMS
    assert VICTIM in out
    assert _cli("gc", "--grace", "0s", "--url", url)[0] == 0
    code, _out, err = _cli("rm", VICTIM, "--url", url)
    assert code == exit_codes.INTEGRITY
    assert "remove it yourself" in err
    assert (root / "objects" / VICTIM / "notes.txt").read_text() == "the user's"


def test_deleting_a_checkpoint_keeps_a_directory_with_files_at_one_of_its_artifacts_and_deletes_the_rest(
    tmp_path: Path,
) -> None:
    """The model's soak found delete_checkpoint raising IntegrityError after the checkpoint had gone, when one of
    its artifacts had become a directory with a user's files in it: the sweep keeps that one (fsck names it) and
    the call succeeds."""
    root = tmp_path / "store"

    async def scenario() -> None:
        bridge = ArtifactsBridge(backend=FileSystemBackend(root))
        checkpoint = await bridge.checkpoint([_page(0), _page(1)], name="doomed")
        manifest = await bridge.get_checkpoint_manifest(checkpoint)
        assert manifest is not None
        kept, other = (e.artifact_id for e in manifest.pages)
        (root / "objects" / kept).unlink()
        (root / "objects" / kept).mkdir()
        (root / "objects" / kept / "notes.txt").write_text("the user's")
        assert await bridge.delete_checkpoint(checkpoint) is True
        assert await bridge.list_checkpoints() == []
        assert await bridge.list_pages() == [kept]  # listed, as fsck and ls show it
        assert not (root / "objects" / other).exists()
        assert (root / "objects" / kept / "notes.txt").read_text() == "the user's"
        assert kept in {p.key for p in (await fsck(bridge)).problems}
        assert (await gc(bridge, grace=timedelta(0))).orphans_deleted == []
        assert (root / "objects" / kept / "notes.txt").read_text() == "the user's"

    asyncio.run(scenario())


# -- directories that are not stores, and files that are not tierstore's --------------------------------------


def _home_like(home: Path) -> None:
    """What a home directory holds: dot files, and a ``tmp/`` of the user's own, old enough for any grace."""
    home.mkdir()
    (home / ".bashrc").write_text("export PS1='$ '\n")
    (home / "tmp").mkdir(parents=True)
    (home / "tmp" / "draft.txt").write_text("the user's draft")
    (home / "tmp" / "put-mem_L3_1-0123456789ab").write_text("named like ours, but in no store of ours")
    (home / "objects").mkdir()
    (home / "objects" / "mem_L3_1").write_text("not a page")
    hour_ago = time.time() - 3600
    for path in home.rglob("*"):
        os.utime(path, (hour_ago, hour_ago))


def _only_a_tmp_of_user_files(root: Path) -> None:
    (root / "tmp").mkdir(parents=True)
    (root / "tmp" / "user.txt").write_text("u")


def _one_user_file(root: Path) -> None:
    root.mkdir()
    (root / "notes.txt").write_text("n")


def _directories(*paths: str, files: bool = False) -> Callable[[Path], None]:
    """Only the directories ``paths`` (each holding a user's file if ``files``): no file of the root's own."""

    def make(root: Path) -> None:
        for path in paths:
            (root / path).mkdir(parents=True)
            if files:
                (root / path / "user.txt").write_text("u")

    return make


def _linked_out(name: str, *, marked: bool = False) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        root.mkdir()
        if marked:
            (root / ".tierstore").write_text("")
            (root / ("objects" if name == "tmp" else "tmp")).mkdir()
        (root / name).symlink_to(root.parent / "out")

    return make


ROOTS: dict[str, Callable[[Path], None]] = {
    "a home directory": _home_like,
    "only a tmp/ of user files": _only_a_tmp_of_user_files,
    "one user file": _one_user_file,
    "only empty sub-directories": _directories("Documents", "photos"),
    "only sub-directories of user files": _directories("Documents", "photos/2026", files=True),
    "an empty objects/ beside a user directory": _directories("objects", "Documents"),
    "objects/ and tmp/ beside an empty user directory": _directories("objects", "tmp", "photos"),
    "only an objects/ of user files": _directories("objects", files=True),
    "only an objects/ holding a user directory": _directories("objects/Documents"),
    "tmp/ a symlink out of the root": _linked_out("tmp"),
    "objects/ a symlink out of the root": _linked_out("objects"),
    "a marked store whose tmp/ is a symlink out of it": _linked_out("tmp", marked=True),
    "a marked store whose objects/ is a symlink out of it": _linked_out("objects", marked=True),
}


@pytest.mark.parametrize("shape", list(ROOTS))
def test_a_directory_that_is_not_a_store_is_refused_before_anything_is_touched(tmp_path: Path, shape: str) -> None:
    root, out = tmp_path / "root", tmp_path / "out"
    out.mkdir()
    (out / "elsewhere.txt").write_text("outside the root")
    (out / "put-mem_L3_2-0123456789ab").write_text("outside the root, named like ours")
    ROOTS[shape](root)
    before = _snapshot(tmp_path)

    async def every_call() -> None:
        bridge = ArtifactsBridge(backend=FileSystemBackend(root))
        for call in (
            lambda: bridge.store_page(_page(0)),
            bridge.list_pages,
            lambda: bridge.load_page("mem_L3_1"),
            lambda: bridge.delete_page("mem_L3_1"),
            lambda: bridge.checkpoint([_page(1)], name="c"),
            lambda: fsck(bridge),
            lambda: gc(bridge, grace=timedelta(0)),
        ):
            with pytest.raises(NotAStoreError):
                await call()

    asyncio.run(every_call())
    for argv in (["ls"], ["gc", "--grace", "0s"], ["fsck"], ["rm", "mem_L3_1"]):
        code, _out, err = _cli(*argv, "--url", f"file://{root}")
        assert code == exit_codes.USAGE, err
    assert _snapshot(tmp_path) == before


def test_gc_in_a_store_takes_only_what_tierstore_wrote(tmp_path: Path) -> None:
    """Foreign files at every level of a store, odd names in its ``tmp/``, and the leftovers of a crash: ``gc``
    collects the leftovers, reports the rest, and touches none of it."""
    root = tmp_path / "store"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("outside")

    async def crash_and_leave() -> str:
        bridge = ArtifactsBridge(backend=FileSystemBackend(root))
        await bridge.store_page(_page(0))
        await bridge.checkpoint([_page(1)], name="c")
        checkpoint = (await bridge.list_checkpoints())[0]
        os.unlink(root / "objects" / checkpoint)  # a checkpoint that crashed before its manifest: pages orphaned
        return checkpoint

    asyncio.run(crash_and_leave())
    killed_writer = root / "tmp" / "put-mem_L3_7-0123456789ab"
    killed_writer.write_bytes(b"half a page")
    foreign = {
        "notes.txt": "root level",
        "objects/README": "not a key",
        "objects/mem_L3_1 copy": "a space",
        "tmp/user file.txt": "a space",
        "tmp/put-mem_L3_5-0123456789ab.bak": "almost our pattern",
        "tmp/line\nbreak": "a newline",
        "tmp/sub/put-mem_L3_6-0123456789ab": "in a sub-directory",
    }
    for name, text in foreign.items():
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_text(text)
    (root / os.fsdecode(b"tmp/caf\xe9")).write_text("not UTF-8")
    (root / os.fsdecode(b"objects/mem_L3_\xff")).write_text("not UTF-8")
    (root / "objects" / "mem_L3_2\n").write_text("a newline")
    (root / "objects" / "user dir").mkdir()
    os.mkfifo(root / "objects" / "a pipe")
    (root / "tmp" / "put-mem_L3_8-0123456789ab").mkdir()  # our pattern, but a directory
    (root / "tmp" / "put-mem_L3_9-0123456789ab").symlink_to(outside / "keep.txt")
    os.mkfifo(root / "tmp" / "put-mem_L3_4-0123456789ab")  # our pattern, but a named pipe
    hour_ago = time.time() - 3600
    for path in [*root.rglob("*"), *outside.rglob("*")]:
        os.utime(path, (hour_ago, hour_ago), follow_symlinks=False)
    before = _not_collectable(_snapshot(root))
    before_outside = _snapshot(outside)

    async def collect() -> None:
        bridge = ArtifactsBridge(backend=FileSystemBackend(root))
        report = await fsck(bridge)
        assert len(report.orphans) == 1
        assert [s.name for s in report.strays] == [killed_writer.name]
        assert "notes.txt" in report.foreign
        assert "tmp/line\\nbreak" in report.foreign
        assert "tmp/caf\\xe9" in report.foreign
        assert {"objects/mem_L3_\\xff", "objects/mem_L3_2\\n", "objects/user dir", "objects/a pipe"} <= set(
            report.foreign
        )
        collected = await gc(bridge, grace=timedelta(minutes=10))
        assert collected.strays_removed == [killed_writer.name]
        assert len(collected.orphans_deleted) == 1

    with _hang_guard():
        asyncio.run(collect())
        assert _cli("gc", "--url", f"file://{root}")[0] == 0
    assert not killed_writer.exists()
    assert _not_collectable(_snapshot(root)) == before
    assert _snapshot(outside) == before_outside


def _not_collectable(tree: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """The entries of a store that no tierstore call may change: all but its objects and the killed writer's file."""
    own = re.compile(r"objects/(?:mem|ckpt|intent|tomb|alloc)_[A-Za-z0-9._-]*|tmp/put-mem_L3_7-0123456789ab")
    return {name: what for name, what in tree.items() if not own.fullmatch(name)}


def test_a_store_of_an_earlier_version_is_adopted_and_marked(tmp_path: Path) -> None:
    """A directory holding only tierstore's own layout (no mark: tierstore before the mark existed)."""
    root = tmp_path / "old"

    async def store_then_unmark() -> str:
        key = await ArtifactsBridge(backend=FileSystemBackend(root)).store_page(_page(0))
        return key

    key = asyncio.run(store_then_unmark())
    (root / ".tierstore").unlink()
    (root / "tmp" / "put-mem_L3_2-0123456789ab").write_bytes(b"a killed writer's")
    os.chmod(root, 0o755)  # noqa: S103 - the mode earlier versions left under umask 022

    async def reopen() -> None:
        bridge = ArtifactsBridge(backend=FileSystemBackend(root))
        loaded = await bridge.load_page(key)
        assert loaded is not None
        assert loaded.content == _page(0).content
        assert not (root / ".tierstore").exists()  # reading leaves it as it is
        await bridge.store_page(_page(1))

    asyncio.run(reopen())
    assert (root / ".tierstore").is_file()
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


def test_an_object_file_its_user_may_not_read_is_reported_and_deletable(tmp_path: Path) -> None:
    """Root reads any file, so the calls run in a child that dropped to user nobody, whose store it is."""
    base = Path(tempfile.mkdtemp(prefix="tierstore-unreadable-"))  # under /tmp, which nobody can traverse
    try:
        root = base / "store"

        async def store() -> list[str]:
            bridge = ArtifactsBridge(backend=FileSystemBackend(root))
            return [await bridge.store_page(_page(i)) for i in range(HEALTHY + 1)]

        *healthy, victim = asyncio.run(store())
        for path in [base, *base.rglob("*")]:
            os.chown(path, NOBODY, NOBODY)
        os.chmod(root / "objects" / victim, 0o000)
        failure = _as_nobody(lambda: _check_unreadable(root, healthy, victim))
        assert failure == ""
        assert not (root / "objects" / victim).exists()
    finally:
        shutil.rmtree(base)


NOBODY = 65534


def _as_nobody(check: Callable[[], None]) -> str:
    """Runs ``check`` in a forked child as user nobody; its traceback, or "" when it passed."""
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        os.close(reader)
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            check()
            os._exit(0)
        except BaseException:  # noqa: BLE001 - every failure goes back to the parent
            os.write(writer, traceback.format_exc().encode())
            os._exit(1)
    os.close(writer)
    with os.fdopen(reader, "rb") as answer:
        text = answer.read().decode()
    os.waitpid(child, 0)
    return text


def _check_unreadable(root: Path, healthy: list[str], victim: str) -> None:
    async def calls() -> None:
        bridge = ArtifactsBridge(backend=FileSystemBackend(root))
        assert set(await bridge.list_pages()) == {*healthy, victim}
        for call in (bridge.load_page, bridge.get_metadata, lambda key: bridge.set_tier(key, "L4")):
            with pytest.raises(IntegrityError, match="cannot be read"):
                await call(victim)
        await _finds_all_but(bridge, healthy, victim)
        report = await fsck(bridge)
        assert [p.key for p in report.problems] == [victim]
        await gc(bridge, grace=timedelta(0))

    asyncio.run(calls())
    url = f"file://{root}"
    code, out, err = _cli("ls", "--long", "--url", url)
    assert code == exit_codes.INTEGRITY
    assert all(key in out for key in healthy)
    assert victim in err
    assert _cli("fsck", "--url", url)[0] == exit_codes.PROBLEMS
    assert _cli("rm", victim, "--url", url)[0] == 0


def _replace_by_link(directory: Path, outside: Path) -> None:
    os.symlink(outside, directory)


def _replace_by_file(directory: Path, outside: Path) -> None:
    directory.write_bytes(b"not a directory")


@pytest.mark.parametrize("replacement", [_replace_by_link, _replace_by_file], ids=["symbolic link out", "file"])
@pytest.mark.parametrize("name", ["objects", "tmp"])
def test_a_layout_directory_replaced_after_the_store_was_opened_is_refused_by_every_call(
    tmp_path: Path, name: str, replacement: Callable[[Path, Path], None]
) -> None:
    """``objects/`` or ``tmp/`` swapped, while a bridge is open, for a link to a user's directory holding files at
    tierstore's names (copies of real objects, so a read through the link would return something), or for a file.
    Every call that needs the directory is NotAStoreError; nothing outside is read, written or deleted. A plain
    directory moved in instead is the store's own: tierstore cannot tell it apart, and ``foreign`` reports what
    in it is not tierstore's."""
    root, outside = tmp_path / "store", tmp_path / "outside"
    bridge = ArtifactsBridge(backend=FileSystemBackend(root))

    async def prepare() -> tuple[str, str]:
        key = await bridge.store_page(_page(1))
        return key, await bridge.checkpoint([_page(2)], "before")

    key, checkpoint = asyncio.run(prepare())
    os.rename(root / name, tmp_path / f"moved {name}")
    shutil.copytree(root / "objects" if name == "tmp" else tmp_path / "moved objects", outside)
    (outside / "put-mem_L3_5-0123456789ab").write_bytes(b"a user's file named like a temporary one")
    replacement(root / name, outside)
    before = _snapshot(outside)
    calls: dict[str, Callable[[], Any]] = {
        "store_page": lambda: bridge.store_page(_page(3)),
        "load_page": lambda: bridge.load_page(key),
        "get_metadata": lambda: bridge.get_metadata(key),
        "delete_page": lambda: bridge.delete_page(key),
        "set_tier": lambda: bridge.set_tier(key, StorageTier.L2),
        "list_pages": lambda: bridge.list_pages(),
        "checkpoint": lambda: bridge.checkpoint([_page(4)], "after"),
        "delete_checkpoint": lambda: bridge.delete_checkpoint(checkpoint),
        "fsck": lambda: fsck(bridge),
        "gc": lambda: gc(bridge, grace=timedelta(0)),
    }
    writes = {"store_page", "delete_page", "set_tier", "checkpoint", "delete_checkpoint", "fsck", "gc"}

    async def attack() -> dict[str, str]:
        outcome: dict[str, str] = {}
        for call, run in calls.items():
            try:
                await run()
            except NotAStoreError:
                outcome[call] = "refused"
            else:
                outcome[call] = "done"
        return outcome

    outcome = asyncio.run(attack())
    refused = set(calls) if name == "objects" else writes
    assert {call for call, seen in outcome.items() if seen == "refused"} == refused
    if replacement is _replace_by_link:
        assert _snapshot(outside) == before
