"""Only commands that write make a store: every other command, and ``doctor``, on a local path that holds no store
(a mistyped path, most often: a missing directory, or one of other files) says so and exits non-zero, and leaves the
path as it was. An empty directory is an empty store, made for it as a bucket is."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import Cli, cli  # noqa: F401 - the fixture
from tierstore.backends.filesystem import FileSystemBackend
from tierstore.cli import exit_codes
from tierstore.maintenance import doctor

CHECKPOINT = "ckpt_20261125T200102123456_ab12cd34"
READING = {
    "ls": ["ls"],
    "ls -l": ["ls", "-l"],
    "show": ["show", "mem_L3_1"],
    "checkpoints": ["checkpoints"],
    "checkpoints show": ["checkpoints", "show", CHECKPOINT],
    "checkpoints verify": ["checkpoints", "verify", CHECKPOINT],
    "checkpoints delete": ["checkpoints", "delete", CHECKPOINT],
    "rm": ["rm", "mem_L3_1"],
    "tier": ["tier", "mem_L3_1", "L4"],
    "restore": ["restore", "mem_L3_1"],
    "fsck": ["fsck"],
    "gc": ["gc"],
    "gc --dry-run": ["gc", "--dry-run"],
    "doctor": ["doctor"],
}


@pytest.mark.parametrize("place", ["missing", "directory of other files"])
def test_no_command_but_a_writing_one_makes_a_store(cli: Cli, tmp_path: Path, place: str) -> None:  # noqa: F811
    path = tmp_path / "mistyped" / "store"
    if place != "missing":
        path.mkdir(parents=True)
        (path / "notes.txt").write_text("not a store")
    url = str(path)
    commands = {name: [*argv, "--url", url] for name, argv in READING.items()}
    commands["migrate from it"] = ["migrate", url, str(tmp_path / "elsewhere")]
    results = cli.batch(expect=dict.fromkeys(commands, exit_codes.USAGE), **commands)
    for name, result in results.items():
        assert f"no tierstore store at {path}" in result.stderr + result.stdout, name
    made = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.name != "work")
    assert made == ([] if place == "missing" else ["mistyped", "mistyped/store", "mistyped/store/notes.txt"])
    assert not (tmp_path / "elsewhere").exists()


def test_writing_commands_make_the_store_and_the_rest_then_work(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    source, destination = tmp_path / "source", tmp_path / "destination"
    cli("demo", "--keep", "--url", str(source))
    cli("migrate", str(source), str(destination))
    cli("doctor", "--url", str(destination))
    assert len(cli.json("ls", "--url", str(destination))) == 15
    empty = tmp_path / "made-for-it"
    empty.mkdir()
    assert cli.json("ls", "--url", str(empty)) == []
    cli("doctor", "--url", str(empty))


async def test_doctor_in_python_does_not_make_a_store(tmp_path: Path) -> None:
    backend = FileSystemBackend(tmp_path / "typo")
    report = await doctor(backend)
    assert report.cause is not None
    assert "no tierstore store at" in report.cause
    assert [c.detail.startswith("not tried") for c in report.checks] == [True] * 7
    assert not (tmp_path / "typo").exists()
