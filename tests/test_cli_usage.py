"""What the command line says about being used wrong: ``--json`` answers usage errors in JSON too; ``migrate`` has
no meaningless ``--url`` and refuses to copy a store onto itself."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import Cli, cli  # noqa: F401 - the fixture
from tierstore.cli import exit_codes


def test_usage_errors_are_json_when_json_is_asked_for(cli: Cli) -> None:  # noqa: F811
    results = cli.batch(
        dict.fromkeys(("unknown", "missing", "choice", "plain"), exit_codes.USAGE),
        unknown=["frobnicate", "--json"],
        missing=["tier", "mem_L3_1", "--json"],
        choice=["ls", "--tier", "L1", "--json"],
        plain=["ls", "--tier", "L1"],
    )
    for name in ("unknown", "missing", "choice"):
        error = json.loads(results[name].stdout)
        assert error["error"] == "UsageError", name
        assert error["exit_code"] == exit_codes.USAGE
        assert error["message"] in results[name].stderr.replace(": error: ", ": ")
    assert "invalid choice: 'L1'" in json.loads(results["choice"].stdout)["message"]
    assert results["plain"].stdout == ""


def test_migrate_takes_no_url_and_no_store_twice(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    store = tmp_path / "store"
    cli("demo", "--keep", "--url", str(store))
    (tmp_path / "link").symlink_to(store)
    results = cli.batch(
        {"url_after": exit_codes.USAGE, "url_before": exit_codes.USAGE, "same": exit_codes.USAGE, "linked": 2},
        help=["migrate", "--help"],
        url_after=["migrate", str(store), str(tmp_path / "copy"), "--url", str(store)],
        url_before=["--url", str(store), "migrate", str(store), str(tmp_path / "copy")],
        same=["migrate", str(store), f"file://{store}"],
        linked=["migrate", str(store), str(tmp_path / "link")],
    )
    assert "--url" not in results["help"].stdout
    assert "--json" in results["help"].stdout
    assert "migrate takes no --url" in results["url_before"].stderr
    for name in ("same", "linked"):
        assert "SRC and DST are the same store" in results[name].stderr, name
    assert not (tmp_path / "copy").exists()


def test_every_duration_option_refuses_a_bad_duration_as_a_usage_error(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    """``gc --grace``, ``fsck --grace`` and ``rm --settle`` read durations by one rule; past its bound (a hundred years)
    or not a number, each is a usage error before any I/O, in JSON when asked (``--settle inf`` was a traceback)."""
    url = ["--url", str(tmp_path / "store"), "--json"]
    commands = {
        f"{name}-{text}": [*command, text, *url]
        for text in ("inf", "1e300", "9" * 400, "36501d")
        for name, command in {
            "gc": ["gc", "--grace"],
            "fsck": ["fsck", "--repair", "--grace"],
            "users": ["users", "rm", "alice", "--settle"],
            "sessions": ["sessions", "rm", "s1", "--user", "alice", "--settle"],
        }.items()
    }
    results = cli.batch(dict.fromkeys(commands, exit_codes.USAGE), **commands)
    for name, result in results.items():
        assert "invalid duration" in json.loads(result.stdout)["message"], name
    assert not (tmp_path / "store").exists()
