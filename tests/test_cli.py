"""The ``tierstore`` command driven as a user would: subprocesses against memory, local-disk and emulated clouds."""

from __future__ import annotations

import base64
import json
import os
import pty
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.emulators import free_port
from tests.emulators_s3 import ACCESS_KEY, REGION, SECRET_KEY
from tests.rigs.gcs import PROJECT

SENTINEL = "SENTINEL-SECRET-7f3a9c"
# A syntactically valid Azure account key (base64) that contains the sentinel.
SENTINEL_KEY = base64.b64encode(SENTINEL.encode() * 2).decode()


@dataclass
class Cli:
    """Runs ``python -m tierstore.cli`` in a clean environment: no TIERSTORE_* or cloud variables but ours."""

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
            [sys.executable, "-m", "tierstore.cli", *args],
            cwd=self.cwd,
            env=self.environment(env),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def json(self, *args: str, expect: int = 0, **env: str) -> Any:
        return json.loads(self(*args, "--json", expect=expect, **env).stdout)

    def environment(self, extra: dict[str, str]) -> dict[str, str]:
        dropped = ("TIERSTORE_", "AWS_", "AZURE_", "STORAGE_EMULATOR_HOST", "GOOGLE_")
        base = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
        base["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent / "src")
        return {**base, **self.env, **extra}


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    work = tmp_path / "work"
    work.mkdir()
    return Cli(cwd=work, env={"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "xdg")})


@pytest.fixture
def file_url(tmp_path: Path) -> str:
    return f"file://{tmp_path}/store"


def ids_of(listing: list[dict[str, Any]]) -> list[str]:
    return [entry["artifact_id"] for entry in listing]


def the_checkpoint(cli: Cli, url: str) -> str:
    checkpoints = cli.json("checkpoints", "--url", url)
    assert len(checkpoints) == 1
    checkpoint_id: str = checkpoints[0]["checkpoint_id"]
    return checkpoint_id


# -- the local-disk store ---------------------------------------------------------------------------------------


def test_demo_then_every_reading_command(cli: Cli, file_url: str) -> None:
    demo = cli("demo", "--url", file_url).stdout
    assert "Evicted msg_000 -> mem_L3_1" in demo
    assert "Restored 10 pages, every checksum verified" in demo

    table = cli("ls", "--url", file_url).stdout.splitlines()
    assert table[0].split() == ["ARTIFACT", "TIER", "MODALITY", "SIZE", "CREATED", "STORAGE", "CLASS", "PAGE"]
    assert len(table) == 1 + 15
    assert table[1].split()[:3] == ["mem_L3_1", "L3", "text"]
    listing = cli.json("ls", "--url", file_url)
    assert ids_of(listing) == [f"mem_L3_{n}" for n in range(1, 16)]
    assert {e["storage_class"] for e in listing} == {"L3"}
    assert len(cli.json("ls", "--url", file_url, "--prefix", "msg_00", "--tier", "L3", "--modality", "text")) == 15
    assert len(cli.json("ls", "--url", file_url, "--prefix", "msg_000")) == 2
    assert len(cli.json("ls", "--url", file_url, "--prefix", "msg_009")) == 1
    assert cli.json("ls", "--url", file_url, "--modality", "image") == []
    assert cli("ls", "--url", file_url, "--tier", "L4").stdout.splitlines()[1:] == []

    shown = cli("show", "mem_L3_1", "--url", file_url, "--content").stdout
    assert "page_id" in shown
    assert "msg_000" in shown
    assert "Message 0 content..." in shown
    assert cli("show", "mem_L3_2", "--url", file_url, "--raw").stdout == "Message 1 content..."
    as_json = cli.json("show", "mem_L3_3", "--url", file_url, "--content")
    assert as_json["metadata"]["page_id"] == "msg_002"
    assert as_json["page"]["content"] == "Message 2 content..."

    checkpoint_id = the_checkpoint(cli, file_url)
    manifest = cli.json("checkpoints", "show", checkpoint_id, "--url", file_url)
    assert manifest["name"] == "session_snapshot"
    assert [p["page_id"] for p in manifest["pages"]] == [f"msg_{i:03d}" for i in range(10)]
    assert "session_snapshot" in cli("checkpoints", "list", "--url", file_url).stdout
    restored = cli("checkpoints", "restore", checkpoint_id, "--url", file_url).stdout
    assert "all 10 pages restored and verified" in restored
    assert cli.json("checkpoints", "restore", checkpoint_id, "--url", file_url)["verified"] == 10

    fsck = cli.json("fsck", "--url", file_url)
    assert (fsck["ok"], fsck["pages"], fsck["checkpoints"], fsck["verified"]) == (True, 15, 1, 15)
    assert fsck["problems"] == fsck["orphans"] == []

    cli("checkpoints", "delete", checkpoint_id, "--url", file_url)
    cli("checkpoints", "show", checkpoint_id, "--url", file_url, expect=5)
    cli("checkpoints", "delete", checkpoint_id, "--url", file_url, expect=5)
    assert ids_of(cli.json("ls", "--url", file_url)) == [f"mem_L3_{n}" for n in range(1, 6)]


def test_options_may_come_before_the_command(cli: Cli, file_url: str) -> None:
    cli("demo", "--url", file_url)
    assert len(cli.json("--url", file_url, "ls")) == 15


def test_with_nothing_configured_the_demo_uses_the_data_directory(cli: Cli, tmp_path: Path) -> None:
    first = cli("demo").stdout
    store = tmp_path / "xdg" / "tierstore"
    assert f"on the local-disk store at {store}" in first
    assert (store / "objects" / "mem_L3_1").exists()
    assert len(cli.json("ls")) == 15

    elsewhere = tmp_path / "explicit"
    assert str(elsewhere) in cli("demo", TIERSTORE_DATA_DIR=str(elsewhere)).stdout
    assert (elsewhere / "objects").is_dir()
    assert str(tmp_path / "root") in cli("demo", "--root", str(tmp_path / "root")).stdout


def test_url_from_the_environment_and_from_a_dotenv_file(cli: Cli, file_url: str) -> None:
    cli("demo", TIERSTORE_URL=file_url)
    (cli.cwd / ".env").write_text(f"TIERSTORE_URL={file_url}\n")
    assert len(cli.json("ls")) == 15


def test_memory_lives_for_one_command(cli: Cli) -> None:
    result = cli.json("demo", "--url", "memory://")
    assert result["checkpoint_id"].startswith("ckpt_")
    assert result["stats"]["pages_stored"] == 15
    assert cli.json("ls", "--url", "memory://") == []


def test_tier_and_restore(cli: Cli, file_url: str) -> None:
    cli("demo", "--url", file_url)
    assert "mem_L3_1 is now in L4" in cli("tier", "mem_L3_1", "L4", "--url", file_url).stdout
    assert ids_of(cli.json("ls", "--url", file_url, "--tier", "L4")) == ["mem_L3_1"]
    assert "is not archived" in cli("restore", "mem_L3_1", "--url", file_url, "--days", "2").stdout
    assert cli.json("restore", "mem_L3_1", "--url", file_url)["state"] == "not-archived"
    cli("tier", "mem_L3_1", "L1", "--url", file_url, expect=2)
    cli("tier", "mem_L3_99", "L4", "--url", file_url, expect=5)


def test_doctor_on_a_healthy_store(cli: Cli, file_url: str) -> None:
    report = cli.json("doctor", "--url", file_url)
    assert report["ok"] is True
    results = {c["name"]: c["result"] for c in report["checks"]}
    assert results == dict.fromkeys(["write", "read", "conditional create", "tag", "list", "delete"], "ok")
    assert "everything tierstore needs works" in cli("doctor", "--url", file_url).stdout
    store = Path(file_url.removeprefix("file://"))
    assert not [p for p in (store / "objects").iterdir() if p.name.startswith("doctor_")]


# -- damage, orphans and garbage collection ---------------------------------------------------------------------


def test_fsck_finds_damage_and_restore_refuses_it(cli: Cli, file_url: str) -> None:
    cli("demo", "--url", file_url)
    checkpoint_id = the_checkpoint(cli, file_url)
    victim = cli.json("checkpoints", "show", checkpoint_id, "--url", file_url)["pages"][0]["artifact_id"]
    path = Path(file_url.removeprefix("file://")) / "objects" / victim
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))

    human = cli("fsck", "--url", file_url, expect=1).stdout
    assert "problems found" in human
    assert victim in human
    report = cli.json("fsck", "--url", file_url, expect=1)
    assert report["ok"] is False
    assert [(p["key"], p["kind"]) for p in report["problems"]] == [(victim, "corrupt")]
    assert cli.json("fsck", "--url", file_url, "--no-verify")["ok"] is True

    failed = cli("checkpoints", "restore", checkpoint_id, "--url", file_url, expect=4)
    assert "IntegrityError" in failed.stderr
    cli("show", victim, "--url", file_url, "--content", expect=4)


def test_orphans_are_listed_then_collected(cli: Cli, file_url: str) -> None:
    cli("demo", "--url", file_url)
    checkpoint_id = the_checkpoint(cli, file_url)
    written_for_it = [
        p["artifact_id"] for p in cli.json("checkpoints", "show", checkpoint_id, "--url", file_url)["pages"]
    ]
    # A crash between the pages and the manifest leaves exactly this: artifacts no manifest references.
    (Path(file_url.removeprefix("file://")) / "objects" / checkpoint_id).unlink()

    report = cli.json("fsck", "--url", file_url)
    assert report["ok"] is True
    assert sorted(o["key"] for o in report["orphans"]) == sorted(written_for_it)
    assert "tierstore gc" in cli("fsck", "--url", file_url).stdout

    assert cli.json("gc", "--url", file_url)["orphans_deleted"] == []  # younger than the default hour
    dry = cli.json("gc", "--url", file_url, "--grace", "0s", "--dry-run")
    assert sorted(dry["orphans_deleted"]) == sorted(written_for_it)
    assert len(cli.json("ls", "--url", file_url)) == 15
    assert "deleted 10 orphan(s) older than 0s" in cli("gc", "--url", file_url, "--grace", "0").stdout
    assert ids_of(cli.json("ls", "--url", file_url)) == [f"mem_L3_{n}" for n in range(1, 6)]
    assert cli.json("fsck", "--url", file_url)["orphans"] == []


# -- exit codes and messages ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (["ls", "--url", "ftp://host/x"], {}, 2, "unknown storage URL scheme"),
        (["ls", "--url", "s3://"], {}, 2, "need a bucket"),
        (["ls"], {"TIERSTORE_CONCURRENCY": "0"}, 2, "TIERSTORE_CONCURRENCY"),
        (["ls"], {"TIERSTORE_STORAGE_CLASSES": "L1=STANDARD"}, 2, "TIERSTORE_STORAGE_CLASSES"),
        (["show", "mem_L3_99"], {}, 5, "no artifact 'mem_L3_99'"),
        (["show", "../../etc/passwd"], {}, 2, "InvalidInputError"),
        (["checkpoints", "restore", "ckpt_20260101T000000000000_00000000"], {}, 5, "no checkpoint"),
        (["gc", "--grace", "soon"], {}, 2, "invalid duration"),
        (["tier", "mem_L3_1"], {}, 2, "required"),
        (["frobnicate"], {}, 2, "invalid choice"),
    ],
)
def test_exit_codes(cli: Cli, args: list[str], env: dict[str, str], code: int, message: str, file_url: str) -> None:
    result = cli.run(*args, **{"TIERSTORE_URL": file_url, **env})
    assert result.returncode == code, result.stderr
    assert message in result.stderr


def test_errors_as_json_for_scripts(cli: Cli, file_url: str) -> None:
    error = cli.json("show", "mem_L3_7", "--url", file_url, expect=5)
    assert error == {"error": "error", "message": "no artifact 'mem_L3_7'", "exit_code": 5}


def test_help_documents_the_exit_codes(cli: Cli) -> None:
    text = cli("--help").stdout
    for fragment in ("exit codes", "2 usage or configuration error", "3 backend", "4 integrity error"):
        assert fragment in text
    for command in ("demo", "ls", "show", "checkpoints", "migrate", "fsck", "gc", "tier", "restore", "doctor"):
        assert command in text


def test_the_installed_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("tierstore")
    result = subprocess.run(
        [str(script), "ls", "--url", "memory://", "--json"], capture_output=True, text=True, check=False
    )
    assert (result.returncode, json.loads(result.stdout)) == (0, [])


def test_a_closed_pipe_ends_quietly(cli: Cli, file_url: str) -> None:
    cli("demo", "--url", file_url)
    command = [sys.executable, "-m", "tierstore.cli", "ls", "--url", file_url]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli.environment({})) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.readline()
        proc.stdout.close()
        stderr = proc.stderr.read()
        proc.wait(timeout=60)
    assert b"Traceback" not in stderr
    assert proc.returncode in (0, 141)


# -- progress bars ----------------------------------------------------------------------------------------------


def run_with_stderr_on_a_terminal(cli: Cli, *args: str) -> tuple[int, str]:
    main, secondary = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "tierstore.cli", *args],
            cwd=cli.cwd,
            env=cli.environment({"COLUMNS": "60"}),
            stdout=subprocess.DEVNULL,
            stderr=secondary,
        )
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        return process.wait(timeout=60), b"".join(chunks).decode()
    finally:
        os.close(main)


def test_progress_bar_on_a_terminal_only(cli: Cli, file_url: str) -> None:
    cli("demo", "--url", file_url)
    code, terminal = run_with_stderr_on_a_terminal(cli, "fsck", "--url", file_url)
    assert code == 0
    assert "checking [" in terminal
    assert "15/15" in terminal
    piped = cli("fsck", "--url", file_url)
    assert piped.stderr == ""
    assert "[" not in piped.stdout


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


# -- emulated clouds --------------------------------------------------------------------------------------------


def s3_env(endpoint: str) -> dict[str, str]:
    return {
        "TIERSTORE_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
    }


def gcs_env(url: str) -> dict[str, str]:
    return {"STORAGE_EMULATOR_HOST": url, "TIERSTORE_GCS_PROJECT": PROJECT}


@pytest.fixture
def s3_url(rig_server: Callable[[str], Any], cli: Cli) -> str:
    spec = rig_server("s3_moto").new_store()
    cli.env.update(s3_env(spec["endpoint"]))
    return f"s3://{spec['bucket']}/agent"


@pytest.fixture
def gs_url(rig_server: Callable[[str], Any], cli: Cli) -> str:
    spec = rig_server("gcs").new_store()
    cli.env.update(gcs_env(spec["url"]))
    return f"gs://{spec['bucket']}/agent"


def test_s3_on_moto(cli: Cli, s3_url: str) -> None:
    assert "Restored 10 pages" in cli("demo", "--url", s3_url).stdout
    listing = cli.json("ls", "--url", s3_url)
    assert ids_of(listing) == [f"mem_L3_{n}" for n in range(1, 16)]
    assert {e["storage_class"] for e in listing} == {"STANDARD"}
    assert "Message 0 content..." in cli("show", "mem_L3_1", "--content", "--url", s3_url).stdout
    checkpoint_id = the_checkpoint(cli, s3_url)
    assert cli.json("checkpoints", "restore", checkpoint_id, "--url", s3_url)["verified"] == 10
    assert cli.json("fsck", "--url", s3_url)["ok"] is True
    doctor = cli.json("doctor", "--url", s3_url)
    assert doctor["ok"] is True, doctor

    # The archive flow: L4 is GLACIER on S3; a read needs a restore first (moto restores at once).
    assert "storage class GLACIER" in cli("tier", "mem_L3_1", "L4", "--url", s3_url).stdout
    meta = cli.json("show", "mem_L3_1", "--url", s3_url)["metadata"]
    assert (meta["tier"], meta["storage_class"], meta["archived"]) == ("L4", "GLACIER", True)
    archived = cli("show", "mem_L3_1", "--content", "--url", s3_url, expect=6)
    assert "restore_page" in archived.stderr
    assert cli.json("restore", "mem_L3_1", "--url", s3_url, "--speed", "expedited")["state"] in ("pending", "restored")
    assert "Message 0 content..." in cli("show", "mem_L3_1", "--content", "--url", s3_url).stdout
    assert cli.json("fsck", "--url", s3_url)["ok"] is True


def test_migrate_file_to_s3_then_s3_to_gcs(cli: Cli, file_url: str, s3_url: str, gs_url: str) -> None:
    cli("demo", "--url", file_url)
    cli("tier", "mem_L3_2", "L2", "--url", file_url)
    checkpoint_id = the_checkpoint(cli, file_url)
    original = {e["artifact_id"]: (e["checksum"], e["tier"]) for e in cli.json("ls", "--url", file_url)}

    report = cli.json("migrate", file_url, s3_url)
    assert (report["copied"], report["checkpoints_copied"], report["problems"]) == (16, 1, [])
    again = cli("migrate", file_url, s3_url).stdout  # resumable: what is there is skipped
    assert "already there       16" in again

    for url in (s3_url, gs_url):
        if url == gs_url:
            human = cli("migrate", s3_url, gs_url)
            assert "checkpoints copied  1" in human.stdout
            assert human.stderr == ""  # no progress bar in a pipe
        copied = {e["artifact_id"]: (e["checksum"], e["tier"]) for e in cli.json("ls", "--url", url)}
        assert copied == original
        assert the_checkpoint(cli, url) == checkpoint_id
        assert cli.json("checkpoints", "restore", checkpoint_id, "--url", url)["verified"] == 10
        assert cli.json("fsck", "--url", url)["ok"] is True


def test_gcs_on_fake_gcs_server(cli: Cli, gs_url: str) -> None:
    cli("demo", "--url", gs_url)
    assert len(cli.json("ls", "--url", gs_url)) == 15
    assert cli.json("fsck", "--url", gs_url)["ok"] is True
    doctor = cli.json("doctor", "--url", gs_url)
    assert doctor["ok"] is True, doctor


def test_azure_on_azurite(cli: Cli, rig_server: Callable[[str], Any]) -> None:
    spec = rig_server("azure").new_store()
    cli.env["AZURE_STORAGE_CONNECTION_STRING"] = spec["connection_string"]
    url = f"az://{spec['container']}/agent"
    cli("demo", "--url", url)
    checkpoint_id = the_checkpoint(cli, url)
    assert cli.json("checkpoints", "restore", checkpoint_id, "--url", url)["verified"] == 10
    assert cli.json("fsck", "--url", url)["ok"] is True
    doctor = cli.json("doctor", "--url", url)
    assert doctor["ok"] is True, doctor
    assert "devstoreaccount1" in doctor["backend"]
    assert "AccountKey" not in json.dumps(doctor)
