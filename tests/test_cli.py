"""The ``tierstore`` command driven as a user would, in subprocesses: the first minutes (demo, --version, help),
the messages and exit codes, and what each command says about what it did. Every command on every rig is in
``test_cli_rigs.py``, the terminal (progress bars, tables) in ``test_cli_terminal.py``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Store
from tests.emulators import free_port
from tests.emulators_s3 import ACCESS_KEY, REGION, SECRET_KEY
from tests.rigs import azure as azure_rig
from tests.rigs.gcs import PROJECT
from tierstore.cli import exit_codes
from tierstore.errors import StorageFullError

SENTINEL = "SENTINEL-SECRET-7f3a9c"
# A syntactically valid Azure account key (base64) that contains the sentinel.
SENTINEL_KEY = base64.b64encode(SENTINEL.encode() * 2).decode()
SRC = Path(__file__).resolve().parent.parent / "src"


Completed = subprocess.CompletedProcess[str]

# Runs each argv (a JSON list on stdin) as `tierstore ARGV` would, and prints [{code, stdout, stderr}, ...].
BATCH = """
import contextlib, io, json, sys
from tierstore.cli import main

results = []
for argv in json.load(sys.stdin):
    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code
        out.flush()
    results.append({"code": code, "stdout": out.buffer.getvalue().decode(), "stderr": err.getvalue()})
json.dump(results, sys.stdout)
"""


@dataclass
class Cli:
    """Runs ``python -m tierstore`` in a clean environment: no TIERSTORE_* or cloud variables but ours."""

    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    def __call__(self, *args: str, expect: int = 0, **env: str) -> subprocess.CompletedProcess[str]:
        result = self.run(*args, **env)
        assert result.returncode == expect, (
            f"tierstore {' '.join(args)} exited {result.returncode}, not {expect}\n{result.stdout}\n{result.stderr}"
        )
        return result

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tierstore", *args],
            cwd=self.cwd,
            env=self.environment(env),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def json(self, *args: str, expect: int = 0, **env: str) -> Any:
        return json.loads(self(*args, "--json", expect=expect, **env).stdout)

    def batch(self, expect: dict[str, int] | None = None, **commands: list[str]) -> dict[str, Completed]:
        """Run several commands, in order, through ``tierstore.cli.main`` in one process (it spares the interpreter
        and SDK start-up of each): ``{name: its exit code, stdout and stderr}``. Each must exit 0 unless ``expect``
        says otherwise."""
        argvs = json.dumps(list(commands.values()))
        run = subprocess.run(
            [sys.executable, "-c", BATCH],
            input=argvs,
            cwd=self.cwd,
            env=self.environment({}),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        results = {
            name: subprocess.CompletedProcess(argv, r["code"], r["stdout"], r["stderr"])
            for (name, argv), r in zip(commands.items(), json.loads(run.stdout), strict=True)
        }
        for name, result in results.items():
            wanted = (expect or {}).get(name, 0)
            assert result.returncode == wanted, f"{name}: exited {result.returncode}, not {wanted}\n{result.stderr}"
        return results

    def environment(self, extra: dict[str, str]) -> dict[str, str]:
        dropped = ("TIERSTORE_", "AWS_", "AZURE_", "STORAGE_EMULATOR_HOST", "GOOGLE_")
        base = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
        base["PYTHONPATH"] = str(SRC)
        return {**base, **self.env, **extra}


def s3_env(endpoint: str, client: str = "sdk") -> dict[str, str]:
    return {
        "TIERSTORE_CLIENT": client,
        "TIERSTORE_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
    }


def target(store: Store) -> tuple[str, dict[str, str]]:
    """The URL and environment that reach a rig's store from the command line."""
    spec = store.spec
    if store.rig == "memory":
        return "memory://", {}
    if store.rig == "filesystem":
        return f"file://{spec['root']}", {}
    if store.rig.startswith("s3"):
        return f"s3://{spec['bucket']}/agent", s3_env(spec["endpoint"], spec.get("client", "sdk"))
    if store.rig == "gcs":
        return f"gs://{spec['bucket']}/agent", {"STORAGE_EMULATOR_HOST": spec["url"], "TIERSTORE_GCS_PROJECT": PROJECT}
    if store.rig.startswith("azure"):
        env = {"AZURE_STORAGE_CONNECTION_STRING": spec["connection_string"], "TIERSTORE_CLIENT": spec["client"]}
        return f"az://{spec['container']}/agent", {**env, **azure_rig.settings_environment()}
    raise AssertionError(f"no command-line target for rig {store.rig}")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    work = tmp_path / "work"
    work.mkdir()
    return Cli(cwd=work, env={"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "xdg")})


@pytest.fixture
def file_url(tmp_path: Path) -> str:
    """An empty store: a directory made for it (a path that does not exist holds no store)."""
    (tmp_path / "store").mkdir()
    return f"file://{tmp_path}/store"


def ids_of(listing: list[dict[str, Any]]) -> list[str]:
    return [entry["artifact_id"] for entry in listing]


def the_checkpoint(cli: Cli, url: str) -> str:
    checkpoints = cli.json("checkpoints", "--url", url)
    assert len(checkpoints) == 1
    checkpoint_id: str = checkpoints[0]["checkpoint_id"]
    return checkpoint_id


def objects(url: str) -> set[str]:
    return {p.name for p in (Path(url.removeprefix("file://")) / "objects").iterdir()}


# -- the first minutes ------------------------------------------------------------------------------------------


def test_the_demo_leaves_no_trace_and_runs_the_same_twice(cli: Cli, tmp_path: Path) -> None:
    first, second = cli("demo").stdout, cli("demo").stdout
    assert "in a temporary local-disk store at " in first
    assert "Evicted msg_000 -> mem_L3_1" in first
    assert "Restored 10 pages, every checksum verified" in first
    assert "The temporary store is removed again" in first
    assert "tierstore demo --keep" in first
    temporary = Path(first.split("temporary local-disk store at ")[1].split("\n")[0])
    assert not temporary.exists()
    assert "Evicted msg_000 -> mem_L3_1" in second  # a fresh store each time
    assert not (tmp_path / "xdg").exists()  # nothing in the data directory
    assert cli.json("ls", expect=2)["message"].startswith(f"no tierstore store at {tmp_path / 'xdg' / 'tierstore'}")


def test_demo_keep_says_where_and_how_to_remove_it(cli: Cli, tmp_path: Path) -> None:
    store = tmp_path / "xdg" / "tierstore"
    kept = cli("demo", "--keep").stdout
    assert "Kept 15 pages and checkpoint ckpt_" in kept
    assert f"in the local-disk store at {store}." in kept
    assert "look at them:  tierstore ls\n" in kept
    r = cli.batch(ls=["ls", "--json"], again=["demo", "--keep", "--json"], ls_again=["ls", "--json"])
    assert len(json.loads(r["ls"].stdout)) == 15

    again = json.loads(r["again"].stdout)  # safe twice: new artifacts, nothing overwritten
    assert again["kept"] is True
    assert again["artifacts"] == [f"mem_L3_{n}" for n in range(1001, 1016)]  # the next block of numbers
    assert len(json.loads(r["ls_again"].stdout)) == 30
    assert all(command.startswith("tierstore ") for command in again["remove"])
    r = cli.batch(None, **_commands(again["remove"]), ls=["ls", "--json"])
    assert ids_of(json.loads(r["ls"].stdout)) == sorted(f"mem_L3_{n}" for n in range(1, 16))  # key order

    removal = kept.split("remove them:   ")[1].strip().split(" && ")
    r = cli.batch(None, **_commands(removal), ls=["ls", "--json"], checkpoints=["checkpoints", "--json"])
    assert json.loads(r["ls"].stdout) == []
    assert json.loads(r["checkpoints"].stdout) == []


def test_demo_keep_in_a_scope_prints_commands_that_reach_that_scope(cli: Cli, tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    scope = ["--user", "al ice", "--session", "s1"]
    kept = json.loads(cli("demo", "--keep", "--url", url, "--json", *scope).stdout)
    text = cli("demo", "--keep", "--url", url, *scope).stdout
    look = text.split("look at them:  ")[1].splitlines()[0]
    removal = [*kept["remove"], *text.split("remove them:   ")[1].strip().split(" && ")]
    listed = cli.batch(ls=shlex.split(look)[1:], root=["ls", "--url", url, "--json"])
    assert (len(listed["ls"].stdout.splitlines()), json.loads(listed["root"].stdout)) == (1 + 30, [])
    steps = {f"command{i}": shlex.split(line)[1:] for i, line in enumerate(removal)}
    after = cli.batch(None, **steps, ls=["ls", "--url", url, "--json", *scope])
    assert json.loads(after["ls"].stdout) == []


def _commands(lines: list[str]) -> dict[str, list[str]]:
    """Commands as the command line prints them (``tierstore rm ...``), for ``Cli.batch``."""
    return {f"command{i}": line.removeprefix("tierstore ").split() for i, line in enumerate(lines)}


def test_demo_on_a_named_store_leaves_it_as_it_found_it(cli: Cli, file_url: str, tmp_path: Path) -> None:
    cli("demo", "--keep", "--url", file_url)
    root = tmp_path / "root dir"
    r = cli.batch(
        ls=["ls", "--url", file_url, "--json"],
        checkpoints=["checkpoints", "--url", file_url, "--json"],
        demo=["demo", "--url", file_url],
        ls_after=["ls", "--url", file_url, "--json"],
        checkpoints_after=["checkpoints", "--url", file_url, "--json"],
        root=["demo", "--root", str(root), "--keep", "--json"],
        root_ls=["ls", "--url", str(root), "--json"],
    )
    said = r["demo"].stdout
    assert "Evicted msg_000 -> mem_L3_1001" in said  # a second bridge on the store: the next block of numbers
    assert "Removed its 15 pages and its checkpoint again" in said
    assert ids_of(json.loads(r["ls_after"].stdout)) == ids_of(json.loads(r["ls"].stdout))
    assert json.loads(r["checkpoints_after"].stdout) == json.loads(r["checkpoints"].stdout)
    assert not [k for k in objects(file_url) if k.startswith("intent_")]

    kept = json.loads(r["root"].stdout)
    assert kept["store"] == f"the local-disk store at {root}"
    assert kept["remove"][1].endswith(f"--url '{root}'")
    assert len(json.loads(r["root_ls"].stdout)) == 15


def test_demo_refuses_two_stores(cli: Cli, tmp_path: Path) -> None:
    result = cli.run("demo", "--root", str(tmp_path / "r"), "--url", "memory://")
    assert result.returncode == 2
    assert "--root and --url both name a store" in result.stderr
    assert not (tmp_path / "r").exists()


def test_memory_lives_for_one_command(cli: Cli) -> None:
    result = cli.json("demo", "--url", "memory://", "--keep")
    assert result["checkpoint_id"].startswith("ckpt_")
    assert result["stats"]["pages_stored"] == 15
    assert result["kept"] is False
    assert "nothing is kept" in cli("demo", "--url", "memory://").stdout
    assert cli.json("ls", "--url", "memory://") == []


def test_version_and_python_dash_m(cli: Cli) -> None:
    version = cli("--version").stdout.strip()
    assert version.startswith("tierstore ")
    assert version.split()[1][0].isdigit()
    for module in ("tierstore", "tierstore.cli"):
        result = subprocess.run(
            [sys.executable, "-m", module, "ls", "--url", "memory://", "--json"],
            env=cli.environment({}),
            capture_output=True,
            text=True,
            check=False,
        )
        assert (result.returncode, json.loads(result.stdout)) == (0, [])


def test_the_installed_script() -> None:
    script = Path(sys.executable).with_name("tierstore")
    result = subprocess.run(
        [str(script), "ls", "--url", "memory://", "--json"], capture_output=True, text=True, check=False
    )
    assert (result.returncode, json.loads(result.stdout)) == (0, [])


def test_help_says_what_each_command_does_and_the_exit_codes(cli: Cli) -> None:
    text = cli("--help").stdout
    assert "exit codes" in text
    for code, meaning in exit_codes.MEANINGS.items():
        assert f"{code:>3}  {meaning}" in text
    for command in ("demo", "ls", "show", "checkpoints", "migrate", "fsck", "gc", "tier", "restore", "rm", "doctor"):
        assert f"\n    {command}" in text
    assert "archived page" in text.split("\n    restore")[1].split("\n    rm")[0]
    verify = cli("checkpoints", "--help").stdout
    assert "writes nothing" in verify.split("\n    restore")[0].split("\n    verify")[1]
    assert "bring every archived page of a checkpoint back" in verify.split("\n    restore")[1]


def test_storage_full_has_its_own_exit_code() -> None:
    assert exit_codes.of_error(StorageFullError("disk full")) == 9


# -- the command line's own words -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (["ls", "--url", "ftp://host/x"], {}, 2, "unknown storage URL scheme"),
        (["ls", "--url", "s3://"], {}, 2, "need a bucket"),
        (["ls"], {"TIERSTORE_URL": "nonsense"}, 2, "ambiguous storage location: "),
        (["ls", "--url", "s3:/bucket/p"], {}, 2, "malformed s3:// URL"),
        (["ls", "--url", "s3//bucket"], {}, 2, "malformed s3:// URL"),
        (["ls", "--url", "s3:bucket"], {}, 2, "malformed s3:// URL"),
        (["ls", "--url", "file:///etc/passwd"], {}, 2, "is not a directory"),
        (["ls"], {"TIERSTORE_STORAGE_CLASSES": "L4=NOPE", "TIERSTORE_URL": "gs://bucket"}, 2, "storage class 'NOPE'"),
        (["ls"], {"TIERSTORE_COMPRESSION": "gzip"}, 2, "TIERSTORE_COMPRESSION"),
        (["ls"], {"TIERSTORE_CONCURRENCY": "0"}, 2, "TIERSTORE_CONCURRENCY"),
        (["ls"], {"TIERSTORE_STORAGE_CLASSES": "L1=STANDARD"}, 2, "TIERSTORE_STORAGE_CLASSES"),
        (["ls", "--tier", "L1"], {}, 2, "--tier {L2,L3,L4}"),
        (["show", "mem_L3_99"], {}, 5, "ObjectNotFoundError: no artifact 'mem_L3_99'"),
        (["show", "--content", "mem_L3_99"], {}, 5, "ObjectNotFoundError: no artifact 'mem_L3_99'"),
        (["tier", "mem_L3_99", "L4"], {}, 5, "ObjectNotFoundError: no artifact 'mem_L3_99'"),
        (["restore", "mem_L3_99"], {}, 5, "ObjectNotFoundError: no artifact 'mem_L3_99'"),
        (["rm", "mem_L3_99"], {}, 5, "ObjectNotFoundError: no artifact 'mem_L3_99'"),
        (["checkpoints", "show", "ckpt_20260101T000000000000_00000000"], {}, 5, "no checkpoint 'ckpt_2026"),
        (["checkpoints", "verify", "ckpt_20260101T000000000000_00000000"], {}, 5, "no checkpoint 'ckpt_2026"),
        (["checkpoints", "delete", "ckpt_20260101T000000000000_00000000"], {}, 5, "no checkpoint 'ckpt_2026"),
        (["show", "../../etc/passwd"], {}, 2, "InvalidInputError: invalid artifact id '../../etc/passwd'"),
        (["show", "ckpt_x"], {}, 2, "is a checkpoint id, not an artifact id: `tierstore checkpoints show ckpt_x`"),
        (["rm", "ckpt_x"], {}, 2, "`tierstore checkpoints delete ckpt_x`"),
        (["checkpoints", "show", "mem_L3_1"], {}, 2, "not a checkpoint id: `tierstore show mem_L3_1`"),
        (["checkpoints", "delete", "mem_L3_1"], {}, 2, "`tierstore rm mem_L3_1`"),
        (["gc", "--grace", "soon"], {}, 2, "invalid duration"),
        (["tier", "mem_L3_1"], {}, 2, "required"),
        (["tier", "mem_L3_1", "L1"], {}, 2, "invalid choice"),
        (["frobnicate"], {}, 2, "invalid choice"),
    ],
)
def test_exit_codes_and_messages(
    cli: Cli, args: list[str], env: dict[str, str], code: int, message: str, file_url: str
) -> None:
    result = cli.run(*args, **{"TIERSTORE_URL": file_url, **env})
    assert result.returncode == code, result.stderr
    assert message in result.stderr


def test_a_connection_string_in_the_url_is_refused_without_showing_it(cli: Cli, tmp_path: Path) -> None:
    key = "S3NT1N3L+KEY/0123456789abcdefABCDEF=="
    string = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={key};EndpointSuffix=core.windows.net"
    for args in (["ls"], ["doctor"], ["doctor", "--json"], ["fsck"]):
        result = cli.run(*args, TIERSTORE_URL=string)
        assert result.returncode == 2, result.stderr
        assert "looks like an Azure connection string" in result.stderr + result.stdout
        assert key not in result.stderr + result.stdout
        assert "acct" not in result.stderr + result.stdout
    made = [p for p in tmp_path.rglob("*") if "acct" in p.name or "Endpoint" in p.name]
    assert made == []  # no directory named after it


def test_errors_as_json_name_the_error_class(cli: Cli, file_url: str) -> None:
    for args in (["show", "mem_L3_7"], ["checkpoints", "show", "ckpt_1_2"], ["tier", "mem_L3_7", "L4"]):
        error = cli.json(*args, "--url", file_url, expect=5)
        assert error["error"] == "ObjectNotFoundError"
        assert error["exit_code"] == 5
        what, key = ("checkpoint", args[2]) if args[0] == "checkpoints" else ("artifact", args[1])
        assert error["message"] == f"no {what} {key!r}"
    invalid = cli.json("show", "x" * 5000, "--url", file_url, expect=2)
    assert invalid["error"] == "InvalidInputError"


def test_invalid_ids_are_echoed_clipped(cli: Cli, file_url: str) -> None:
    for command in (["show"], ["tier"], ["rm"], ["restore"], ["checkpoints", "show"], ["checkpoints", "delete"]):
        args = [*command, "mem_" + "a" * 4996] + (["L4"] if command == ["tier"] else [])
        result = cli.run(*args, "--url", file_url)
        assert result.returncode == 2, result.stderr
        assert "(5,000 characters)" in result.stderr
        assert len(result.stderr) < 300


def test_a_misspelt_setting_is_named_with_the_closest_one(cli: Cli, file_url: str) -> None:
    (cli.cwd.parent / "xdg" / "tierstore").mkdir(parents=True)  # the store the ignored setting leaves in force
    result = cli("ls", TIERSTORE_ULR=file_url)
    assert "TIERSTORE_ULR is not a tierstore setting and is ignored; did you mean TIERSTORE_URL?" in result.stderr
    (cli.cwd / ".env").write_text("TIERSTORE_CONCURENCY=4\n")
    assert "did you mean TIERSTORE_CONCURRENCY?" in cli("ls").stderr
    (cli.cwd / ".env").unlink()
    assert cli("ls", TIERSTORE_TEST_RIGS="memory", TIERSTORE_URL=file_url).stderr == ""


def test_url_from_the_environment_and_from_a_dotenv_file(cli: Cli, file_url: str) -> None:
    cli("demo", "--keep", TIERSTORE_URL=file_url)
    (cli.cwd / ".env").write_text(f"TIERSTORE_URL={file_url}\n")
    assert len(cli.json("ls")) == 15
    assert len(cli.json("--url", file_url, "ls")) == 15  # options before the command too


def test_show_content_raw_and_empty(cli: Cli, file_url: str) -> None:
    assert "Kept 15 pages" in cli("demo", "--keep", "--url", file_url).stdout
    script = (
        "import asyncio, sys\n"
        "from tierstore import ArtifactsBridge, FileSystemBackend, MemoryPage, Modality\n"
        "async def main():\n"
        "    async with ArtifactsBridge(backend=FileSystemBackend(sys.argv[1])) as bridge:\n"
        "        for content in (None, b'\\x00\\xff', {'k': [1, 'v']}):\n"
        "            print(await bridge.store_page(MemoryPage(page_id='p' * 300, modality=Modality.TEXT, "
        "content=content)))\n"
        "asyncio.run(main())\n"
    )
    stored = subprocess.run(
        [sys.executable, "-c", script, file_url.removeprefix("file://")],
        env=cli.environment({}),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    empty, binary, structured = stored
    r = cli.batch(
        text=["show", "mem_L3_2", "--url", file_url, "--raw"],
        empty_raw=["show", empty, "--raw", "--url", file_url],
        empty=["show", empty, "--content", "--url", file_url],
        binary=["show", binary, "--content", "--url", file_url],
        structured=["show", structured, "--raw", "--url", file_url],
        long=["ls", "--long", "--url", file_url],
        prefix=["ls", "--url", file_url, "--prefix", "ppp", "--json"],
    )
    assert r["text"].stdout == "Message 1 content..."
    assert r["empty_raw"].stdout == ""
    assert r["empty"].stdout.endswith("content:\n(none)\n")
    raw = subprocess.run(  # a real process: the bytes on stdout, as a shell redirection gets them
        [sys.executable, "-m", "tierstore", "show", binary, "--raw", "--url", file_url],
        env=cli.environment({}),
        capture_output=True,
        check=True,
    )
    assert raw.stdout == b"\x00\xff"
    assert "2 bytes of binary content" in r["binary"].stdout
    assert json.loads(r["structured"].stdout) == {"k": [1, "v"]}

    table = r["long"].stdout.splitlines()
    long_rows = [line for line in table if line.startswith((empty + " ", binary + " "))]
    assert len(long_rows) == 2
    assert all(line.endswith("p" * 39 + "…") for line in long_rows)
    assert all(len(line) < 150 for line in table)
    assert {e["page_id"] for e in json.loads(r["prefix"].stdout)} == {"p" * 300}


def test_fsck_finds_damage_and_verify_refuses_it(cli: Cli, file_url: str) -> None:
    checkpoint_id = cli.json("demo", "--keep", "--url", file_url)["checkpoint_id"]
    assert the_checkpoint(cli, file_url) == checkpoint_id
    victim = cli.json("checkpoints", "show", checkpoint_id, "--url", file_url)["pages"][0]["artifact_id"]
    path = Path(file_url.removeprefix("file://")) / "objects" / victim
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))

    r = cli.batch(
        {"human": 1, "report": 1, "show": 4},
        human=["fsck", "--url", file_url],
        report=["fsck", "--url", file_url, "--json"],
        no_verify_json=["fsck", "--url", file_url, "--no-verify", "--json"],
        no_verify=["fsck", "--url", file_url, "--no-verify"],
        restore=["checkpoints", "restore", checkpoint_id, "--url", file_url],
        show=["show", victim, "--url", file_url, "--content"],
    )
    assert "problems found" in r["human"].stdout
    assert victim in r["human"].stdout
    report = json.loads(r["report"].stdout)
    assert report["ok"] is False
    assert [(p["key"], p["kind"]) for p in report["problems"]] == [(victim, "corrupt")]
    assert json.loads(r["no_verify_json"].stdout)["ok"] is True
    assert "skipped (--no-verify)" in r["no_verify"].stdout
    assert "all 10 pages of" in r["restore"].stdout  # none archived

    failed = cli("checkpoints", "verify", checkpoint_id, "--url", file_url, expect=4)
    assert "IntegrityError" in failed.stderr


def test_gc_says_what_it_kept_and_how_to_collect_it(cli: Cli, file_url: str) -> None:
    checkpoint_id = cli.json("demo", "--keep", "--url", file_url)["checkpoint_id"]
    written_for_it = [
        p["artifact_id"] for p in cli.json("checkpoints", "show", checkpoint_id, "--url", file_url)["pages"]
    ]
    # A crash between the pages and the manifest leaves exactly this: artifacts no manifest references.
    (Path(file_url.removeprefix("file://")) / "objects" / checkpoint_id).unlink()

    started = datetime.now(UTC)
    r = cli.batch(
        report=["fsck", "--url", file_url, "--json"],
        fsck=["fsck", "--url", file_url],
        kept=["gc", "--url", file_url, "--json"],
        said=["gc", "--url", file_url],
        dry=["gc", "--url", file_url, "--grace", "0s", "--dry-run", "--json"],
        ls=["ls", "--url", file_url, "--json"],
    )
    report = json.loads(r["report"].stdout)
    assert report["ok"] is True
    assert sorted(o["key"] for o in report["orphans"]) == sorted(written_for_it)
    assert "`tierstore gc` removes them" in r["fsck"].stdout

    kept = json.loads(r["kept"].stdout)
    assert kept["orphans_deleted"] == []
    assert sorted(o["key"] for o in kept["orphans_kept"]) == sorted(written_for_it)
    said = r["said"].stdout
    assert "deleted 0 orphan(s) older than 1h" in said
    assert re.search(
        r"kept 10 orphan\(s\) \([\d.]+ KiB\) younger than 1h: a checkpoint may still be writing them", said
    )
    assert "`tierstore gc --grace 0s` collects them at once" in said
    due = datetime.strptime(said.split("collects them from ")[1][:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert started + timedelta(minutes=50) < due < started + timedelta(minutes=70)

    dry = json.loads(r["dry"].stdout)
    assert sorted(dry["orphans_deleted"]) == sorted(written_for_it)
    assert dry["orphans_kept"] == []
    assert len(json.loads(r["ls"].stdout)) == 15
    assert "deleted 10 orphan(s) older than 0s" in cli("gc", "--url", file_url, "--grace", "0").stdout
    r = cli.batch(ls=["ls", "--url", file_url, "--json"], fsck=["fsck", "--url", file_url, "--json"])
    assert ids_of(json.loads(r["ls"].stdout)) == [f"mem_L3_{n}" for n in range(1, 6)]
    assert json.loads(r["fsck"].stdout)["orphans"] == []


def test_migrate_again_says_what_was_already_there(cli: Cli, file_url: str, tmp_path: Path) -> None:
    cli("demo", "--keep", "--url", file_url)
    destination = f"file://{tmp_path}/copy"
    first = cli.json("migrate", file_url, destination)
    # 15 pages, the block record of their numbers, and the manifest
    assert (first["copied"], first["skipped"], first["checkpoints_copied"], first["checkpoints_skipped"]) == (
        17,
        0,
        1,
        0,
    )
    again = cli("migrate", file_url, destination).stdout
    assert "objects copied             0\n" in again
    assert "already there              17\n" in again
    assert "checkpoints copied         0\n" in again
    assert "checkpoints already there  1\n" in again
    assert cli.json("migrate", file_url, destination)["checkpoints_copied"] == 0


def test_rm_deletes_pages_but_never_a_checkpoints(cli: Cli, file_url: str) -> None:
    kept = cli.json("demo", "--keep", "--url", file_url)
    checkpointed = kept["artifacts"][5]
    refused = cli.run("rm", "mem_L3_1", checkpointed, "--url", file_url)
    assert refused.returncode == 2
    assert f"{checkpointed}: used by checkpoint {kept['checkpoint_id']}" in refused.stderr
    r = cli.batch(
        ls=["ls", "--url", file_url, "--json"],
        rm=["rm", "mem_L3_1", "mem_L3_2", "--url", file_url],
        rm_json=["rm", "mem_L3_3", "--url", file_url, "--json"],
        ls_after=["ls", "--url", file_url, "--json"],
        verify=["checkpoints", "verify", kept["checkpoint_id"], "--url", file_url, "--json"],
    )
    assert len(json.loads(r["ls"].stdout)) == 15  # nothing deleted
    assert r["rm"].stdout == "deleted mem_L3_1\ndeleted mem_L3_2\n"
    assert json.loads(r["rm_json"].stdout) == {"deleted": ["mem_L3_3"]}
    assert "mem_L3_1" not in ids_of(json.loads(r["ls_after"].stdout))
    assert json.loads(r["verify"].stdout)["verified"] == 10


def test_doctor_on_a_healthy_store_leaves_nothing(cli: Cli, file_url: str) -> None:
    report = cli.json("doctor", "--url", file_url)
    assert report["ok"] is True
    assert report["cause"] is None
    results = {c["name"]: c["result"] for c in report["checks"]}
    assert results == dict.fromkeys(["write", "read", "conditional create", "tag", "tier", "list", "delete"], "ok")
    assert "everything tierstore needs works" in cli("doctor", "--url", file_url).stdout
    assert not [k for k in objects(file_url) if k.startswith("doctor_")]


def test_a_closed_pipe_ends_quietly(cli: Cli, file_url: str) -> None:
    cli("demo", "--keep", "--url", file_url)
    command = [sys.executable, "-m", "tierstore", "ls", "--url", file_url]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli.environment({})) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.readline()
        proc.stdout.close()
        stderr = proc.stderr.read()
        proc.wait(timeout=60)
    assert b"Traceback" not in stderr
    assert proc.returncode in (0, 141)


# -- secrets ----------------------------------------------------------------------------------------------------

UNREACHABLE = {"TIERSTORE_RETRY_DEADLINE": "1", "TIERSTORE_RETRY_MAX_ATTEMPTS": "2", "TIERSTORE_CONNECT_TIMEOUT": "1"}


def assert_no_sentinel(result: subprocess.CompletedProcess[str]) -> None:
    assert SENTINEL not in result.stdout + result.stderr
    assert SENTINEL_KEY not in result.stdout + result.stderr


def test_s3_credentials_never_printed_when_the_endpoint_is_dead(cli: Cli) -> None:
    env = {
        **UNREACHABLE,
        "TIERSTORE_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "AWS_ACCESS_KEY_ID": "AKIA" + SENTINEL,
        "AWS_SECRET_ACCESS_KEY": SENTINEL,
        "AWS_DEFAULT_REGION": REGION,
    }
    for args in (["doctor"], ["ls"], ["doctor", "--json"], ["fsck"]):
        result = cli.run(*args, "--url", "s3://some-bucket/p", **env)
        assert result.returncode == 3, result.stderr
        assert_no_sentinel(result)
    assert "cannot be reached" in cli.run("doctor", "--url", "s3://some-bucket", **env).stdout


def test_azure_connection_string_never_printed(cli: Cli) -> None:
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName=devacct;AccountKey={SENTINEL_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{free_port()}/devacct;"
    )
    for variable in ("AZURE_STORAGE_CONNECTION_STRING", "TIERSTORE_AZURE_CONNECTION_STRING"):
        result = cli.run("doctor", "--url", "az://pages", **UNREACHABLE, **{variable: connection})
        assert result.returncode == 3, result.stderr
        assert "devacct" in result.stdout
        assert_no_sentinel(result)


def test_credentials_in_a_url_are_refused_without_being_repeated(cli: Cli) -> None:
    for url in (f"s3://AKIA:{SENTINEL}@bucket/p", f"gs://bucket/p?token={SENTINEL}"):
        result = cli.run("ls", "--url", url)
        assert result.returncode == 2
        assert_no_sentinel(result)
    result = cli.run("migrate", f"s3://k:{SENTINEL}@b/p", "memory://")
    assert result.returncode == 2
    assert_no_sentinel(result)


def test_settings_follow_one_rule_per_kind_on_the_command_line(cli: Cli, file_url: str) -> None:
    easy = {"TIERSTORE_CLIENT": "OBSTORE", "TIERSTORE_RETRY_DEADLINE": "10s", "TIERSTORE_COMPRESSION": ""}
    cli.env.update(easy)
    assert cli.json("ls", "--url", file_url, TIERSTORE_S3_SSE="rot13") == []  # S3's own: not this store's
    refused = cli.json("ls", "--url", "s3://bucket", TIERSTORE_S3_SSE="rot13", expect=2)
    assert "TIERSTORE_S3_SSE" in refused["message"]
    assert "rot13" not in refused["message"]
