"""The command line on a terminal, as a person sees it: run under a pseudo-terminal (the standard library's ``pty``),
its output read back with the terminal's control sequences taken out (what was drawn), and played on a small model of
a terminal (what stays on screen). Nothing here depends on timing: the bar's last frame, drawn when the work is done,
always shows the count, the rate and the time left; then it is cleared.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import Cli

CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
COLUMNS = 80


def bar(label: str, count: int, unit: str) -> re.Pattern[str]:
    """A finished bar: label, bar, count, rate, elapsed time, ETA."""
    return re.compile(rf"{label} ━+ {count}/{count} [\d,.]+ {unit}/s \d+:\d\d:\d\d ETA 0:00:00")


SEQUENCE = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|[\r\n]|[^\x1b\r\n]+")


def left_on_screen(drawn: str) -> list[str]:
    """The lines a terminal shows after ``drawn`` (carriage returns, newlines, cursor up and down, line erases;
    other control sequences, colours and the cursor's visibility, change no text)."""
    lines: list[str] = [""]
    row = column = 0
    for match in SEQUENCE.finditer(drawn):
        text, (argument, command) = match.group(0), match.group(1, 2)
        if command:
            count = int(argument) if argument.isdigit() else 1
            if command == "A":
                row = max(0, row - count)
            elif command == "B":
                row += count
            elif command == "K" and argument == "2":
                lines[row] = ""
            elif command == "K":
                lines[row] = lines[row][:column]
        elif text == "\r":
            column = 0
        elif text == "\n":
            row, column = row + 1, 0
        else:
            current = lines[row].ljust(column)
            lines[row] = current[:column] + text + current[column + len(text) :]
            column += len(text)
        lines += [""] * (row + 1 - len(lines))
    return [line.rstrip() for line in lines if line.strip()]


def on_a_terminal(
    cli: Cli, *args: str, stdout_too: bool = True, columns: int = COLUMNS, raw: list[str] | None = None
) -> tuple[int, str, str]:
    """Run ``tierstore ARGS`` with stderr (and stdout) on a terminal; returns the exit code, the screen, and stdout
    when it was piped instead."""
    env = cli.environment({"COLUMNS": str(columns), "TERM": "xterm-256color"})
    for overriding in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "LINES"):
        env.pop(overriding, None)  # a terminal as a person has one, whatever the CI sets
    main, secondary = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "tierstore", *args],
            cwd=cli.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=secondary if stdout_too else subprocess.PIPE,
            stderr=secondary,
        )
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        piped = process.stdout.read().decode() if process.stdout is not None else ""
        code = process.wait(timeout=120)
    finally:
        os.close(main)
    drawn = b"".join(chunks).decode()
    if raw is not None:
        raw.append(drawn)
    screen = CONTROL.sub("", drawn).replace("\r\n", "\n")
    return code, screen, piped


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    work = tmp_path / "work"
    work.mkdir()
    return Cli(cwd=work, env={"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "xdg")})


@pytest.fixture
def url(cli: Cli, tmp_path: Path) -> str:
    store = f"file://{tmp_path}/store"
    cli("demo", "--keep", "--url", store)
    return store


def test_long_work_draws_a_bar_with_rate_and_time_left(cli: Cli, url: str, tmp_path: Path) -> None:
    code, screen, _ = on_a_terminal(cli, "fsck", "--url", url)
    assert code == 0
    assert bar("checking", 15, "pages").search(screen), screen
    assert screen.rstrip().endswith("ok")

    code, screen, _ = on_a_terminal(cli, "migrate", url, f"file://{tmp_path}/copy")
    assert code == 0
    assert bar("migrating", 17, "objects").search(screen), screen  # 15 pages, 1 block record, 1 checkpoint
    assert "checkpoints copied         1" in screen

    code, screen, _ = on_a_terminal(cli, "gc", "--url", url)
    assert code == 0
    assert bar("looking for orphans", 15, "pages").search(screen), screen


def test_checkpoint_verify_draws_a_bar_and_ends_with_its_verdict(cli: Cli, url: str) -> None:
    [checkpoint] = [c["checkpoint_id"] for c in cli.json("checkpoints", "--url", url)]
    verdict = f"checkpoint {checkpoint} (session_snapshot): all 10 pages load and match their checksums"
    code, screen, _ = on_a_terminal(cli, "checkpoints", "verify", checkpoint, "--url", url)
    assert code == 0
    assert bar("verifying", 10, "pages").search(screen), screen
    assert screen.rstrip().endswith(verdict)
    assert "mem_L3_6" not in screen  # the pages only when asked
    code, screen, _ = on_a_terminal(cli, "checkpoints", "verify", checkpoint, "--pages", "--url", url)
    assert code == 0
    assert screen.rstrip().endswith(verdict)
    assert screen.index("mem_L3_6") < screen.index(verdict)


def test_json_stays_clean_while_the_bar_is_on_the_terminal(cli: Cli, url: str) -> None:
    code, screen, stdout = on_a_terminal(cli, "fsck", "--url", url, "--json", stdout_too=False)
    assert code == 0
    assert bar("checking", 15, "pages").search(screen), screen
    assert json.loads(stdout)["verified"] == 15
    piped = cli("fsck", "--url", url)
    assert piped.stderr == ""  # no terminal, no bar
    assert "━" not in piped.stdout


def test_tables_fit_the_terminal_and_clip_long_page_ids(cli: Cli, url: str) -> None:
    long_id = "q" * 1000
    script = (
        "import asyncio, sys\n"
        "from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality\n"
        "async def main():\n"
        "    async with ArtifactsBridge(backend=FileSystemBackend(sys.argv[1])) as bridge:\n"
        f"        await bridge.store_page(MemoryPage(page_id={long_id!r}, modality=Modality.TEXT, content='x'))\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", script, url.removeprefix("file://")], env=cli.environment({}), check=True)

    drawn: list[str] = []
    code, screen, _ = on_a_terminal(cli, "ls", "--long", "--url", url, raw=drawn)
    assert code == 0
    assert bar("reading metadata", 16, "pages").search(screen), screen
    table = left_on_screen(drawn[0])  # the rows are printed above the bar as they come; the bar goes at the end
    # At 80, with the streamed table's widths (its columns' widest values): see the next test.
    assert table[0].split() == ["ARTIFACT", "TIER", "MODALITY", "SIZE", "CREATED", "PAGE"]
    assert len(table) == 17
    assert all(len(line) <= COLUMNS for line in table)
    row = next(line for line in table if line.startswith("mem_L3_1001 "))
    assert row.rstrip().endswith("q…")
    assert row.split()[:3] == ["mem_L3_1001", "L3", "text"]


LS_LONG = ["ARTIFACT", "TIER", "MODALITY", "SIZE", "CREATED", "STORAGE CLASS", "PAGE"]
LS_LONG_DROPPED_FIRST = ["STORAGE CLASS", "CREATED", "MODALITY", "SIZE", "TIER"]
CHECKPOINTS = ["CHECKPOINT", "NAME", "CREATED", "PAGES", "SIZE"]
CHECKPOINTS_DROPPED_FIRST = ["SIZE", "PAGES", "CREATED"]
CHECKPOINT_ID = re.compile(r"ckpt_\d{8}T\d{12}_[0-9a-f]{8}")


def headers(line: str, names: list[str]) -> list[str]:
    return [name for name in names if re.search(rf"(^|  ){name}(  |$)", line)]


@pytest.mark.parametrize("width", [70, 80, 120])
def test_narrow_terminals_drop_columns_in_the_stated_order_and_never_cut_an_id(cli: Cli, url: str, width: int) -> None:
    script = (
        "import asyncio, sys\n"
        "from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality\n"
        "async def main():\n"
        "    async with ArtifactsBridge(backend=FileSystemBackend(sys.argv[1])) as bridge:\n"
        "        page = MemoryPage(page_id='session_' + 'x' * 200, modality=Modality.TEXT, content='x')\n"
        "        await bridge.checkpoint([page], name='big' + 'y' * 100)\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", script, url.removeprefix("file://")], env=cli.environment({}), check=True)

    drawn: list[str] = []
    code, screen, _ = on_a_terminal(cli, "ls", "-l", "--url", url, columns=width, raw=drawn)
    assert code == 0
    table = left_on_screen(drawn[0])
    assert all(len(line) <= width for line in table), table
    shown = headers(table[0], LS_LONG)
    dropped = [name for name in LS_LONG if name not in shown]
    assert sorted(dropped) == sorted(LS_LONG_DROPPED_FIRST[: len(dropped)])  # a prefix of the stated order
    assert (shown[0], shown[-1]) == ("ARTIFACT", "PAGE")
    assert any(line.startswith("mem_L3_1001 ") for line in table)  # whole, never `mem_L3_…`
    assert width >= 120 or dropped

    code, screen, _ = on_a_terminal(cli, "checkpoints", "--url", url, columns=width)
    assert code == 0
    table = screen[screen.index("CHECKPOINT") :].splitlines()
    assert all(len(line) <= width for line in table), table
    shown = headers(table[0], CHECKPOINTS)
    dropped = [name for name in CHECKPOINTS if name not in shown]
    assert sorted(dropped) == sorted(CHECKPOINTS_DROPPED_FIRST[: len(dropped)])
    assert shown[:2] == ["CHECKPOINT", "NAME"]
    ids = [CHECKPOINT_ID.match(line) for line in table[1:]]
    assert len(ids) == 2
    assert all(ids)
    assert any("bigy" in line for line in table)  # the name, clipped at most, never gone


def test_long_lists_take_a_limit(cli: Cli, url: str) -> None:
    result = cli("ls", "--url", url, "--limit", "3")
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["mem_L3_1", "mem_L3_10", "mem_L3_11"][
        : len(result.stdout.splitlines()) - 1
    ] or len(result.stdout.splitlines()) == 4
    assert len(result.stdout.splitlines()) == 4
    assert "showing 3 of 15 pages (--limit 3)" in result.stderr
    assert len(cli.json("ls", "-l", "--url", url, "--limit", "2")) == 2
    assert len(cli.json("checkpoints", "--url", url, "--limit", "0")) == 0
    assert len(cli.json("checkpoints", "list", "--url", url, "--limit", "5")) == 1


@pytest.mark.parametrize(
    ("label", "args"),
    [
        ("reading metadata", ["ls", "-l"]),
        ("checking", ["fsck"]),
        ("looking for orphans", ["gc"]),
        ("migrating", ["migrate", "{url}", "{copy}"]),
        ("verifying", ["checkpoints", "verify", "{checkpoint}"]),
        ("restoring", ["checkpoints", "restore", "{checkpoint}"]),
    ],
    ids=lambda value: value if isinstance(value, str) else " ".join(value[:2]),
)
def test_the_bar_is_cleared_when_the_work_is_done(
    cli: Cli, url: str, tmp_path: Path, label: str, args: list[str]
) -> None:
    [checkpoint] = [c["checkpoint_id"] for c in cli.json("checkpoints", "--url", url)]
    named = {"url": url, "copy": f"file://{tmp_path}/copy", "checkpoint": checkpoint}
    command = [arg.format(**named) for arg in args] + ([] if args[0] == "migrate" else ["--url", url])
    drawn: list[str] = []
    code, screen, _ = on_a_terminal(cli, *command, raw=drawn)
    assert code == 0, screen
    assert label in screen  # it was drawn
    shown = left_on_screen(drawn[0])
    assert shown, screen
    assert not any("━" in line or label in line for line in shown), shown
