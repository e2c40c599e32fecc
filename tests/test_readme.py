"""The README's first minutes hold: its program runs as pasted, ``.ci/run`` runs its commands, and the command line's
documentation (README, docs/configuration.md) names every command and exit code the code has."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tierstore.cli import app, exit_codes

README = (ROOT / "README.md").read_text()
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()


def section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def test_the_api_in_short_is_a_program_that_runs_as_pasted(tmp_path: Path) -> None:
    program = blocks(section(README, "The API in short"), "python")[0]
    (tmp_path / "example.py").write_text(program)
    runs = [
        subprocess.run(
            [sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
        )
        for _ in range(2)
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert run.stderr == ""
    # A print commented ``# -> X`` prints X on the first run, in an empty directory.
    prints = [line for line in program.splitlines() if line.strip().startswith("print(")]
    printed = runs[0].stdout.splitlines()
    assert len(printed) == len(prints)
    promised = [
        (out, re.sub(r" \(.*\)$", "", line.split("# -> ")[1]))
        for out, line in zip(printed, prints, strict=True)
        if "# -> " in line
    ]
    assert len(promised) >= 5
    for out, promise in promised:
        assert out == promise
    assert runs[1].stdout.splitlines()[0] == "mem_L3_1001 True L3"  # a second run: a block of its own
    leftovers = {p.name.split("_")[0] for p in (tmp_path / "agent-memory" / "objects").iterdir()}
    assert leftovers == {"tomb", "alloc"}  # its pages and checkpoint are gone; deletion and block records stay


def test_ci_runs_the_readme_commands_unchanged() -> None:
    """.ci/run: the venv, the README's test command, then the type and lint checks Development names."""
    fresh = section(README, "On a fresh machine")
    setup, tests = blocks(fresh, "sh")
    [checks] = blocks(section(README, "Development"), "sh")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "python3 -m venv .venv" in setup
    assert "`.ci/run` runs exactly that command on a clean clone, after creating the venv with " in fresh
    assert "--durations=" in tests, "the run lists its slowest tests"
    for check in ("-m mypy", "-m ruff check .", "-m ruff format --check ."):
        assert check in checks, check
    commands = [line for line in ci if line and not line.startswith(("#", "set ", "cd "))]
    assert commands == ["python3 -m venv .venv", tests.strip(), checks.strip()]


def test_the_docs_list_every_exit_code() -> None:
    table = CONFIGURATION.split("### Exit codes")[1].split("###")[0]
    documented = [int(code) for code in re.findall(r"^\| (\d+) \|", table, re.M)]
    assert documented == list(exit_codes.MEANINGS)


def test_the_docs_name_every_command() -> None:
    parser = app.parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert commands is not None
    readme = section(README, "Configuration and the command line")
    for name in commands:
        assert f"| `tierstore {name}" in CONFIGURATION, name
        assert re.search(rf"`{name}( [A-Z]+.*?)?`", readme), name
    for action in ("show", "verify", "restore", "delete"):
        assert f"`tierstore checkpoints {action} ID" in CONFIGURATION
        assert f"`checkpoints {action} ID`" in readme or action == "show", action


def test_every_guarantee_names_tests_that_exist() -> None:
    rows = [line for line in section(README, "Guarantees").splitlines() if line.startswith("| ") and "---" not in line]
    promises = rows[1:]  # the first row is the table's heading
    assert len(promises) >= 10
    sources = {path.relative_to(ROOT).as_posix(): path.read_text() for path in (ROOT / "tests").rglob("test_*.py")}
    for row in promises:
        named = re.findall(r"`(tests/[\w/]+\.py)?::(test_\w+)`", row)
        assert named, f"a guarantee names no test: {row[:80]}"
        assert named[0][0], f"a guarantee's first test has no file: {row[:80]}"
        path = ""
        for written, test in named:
            path = written or path  # `::test_name` is a test in the file named before it
            assert re.search(rf"^(async )?def {test}\(", sources.get(path, ""), re.M), f"{path}::{test}"
