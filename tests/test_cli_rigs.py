"""Every command on every rig (``tests/rigs``: memory, local disk, S3 on moto and LocalStack, GCS, Azure), in plain
text and with ``--json``, in subprocesses as a user runs them.

``memory://`` lives for one command, so on that rig each command meets an empty store; the others also get a store
with the demo's pages kept in it.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Store
from tests.test_cli import Cli, ids_of, target

CLOUD_RIGS = ("s3_moto", "s3_localstack", "gcs", "azure")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    work = tmp_path / "work"
    work.mkdir()
    return Cli(cwd=work, env={"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "xdg")})


def test_every_command_on_an_empty_store(store: Store, cli: Cli, tmp_path: Path) -> None:
    url, env = target(store)
    cli.env.update(env)

    assert cli("ls", "--url", url).stdout.split() == [
        "ARTIFACT",
        "TIER",
        "MODALITY",
        "SIZE",
        "CREATED",
        "STORAGE",
        "CLASS",
        "PAGE",
    ]
    assert cli.json("ls", "--url", url) == []
    assert cli("checkpoints", "--url", url).stdout.split() == ["CHECKPOINT", "NAME", "CREATED", "PAGES", "SIZE"]
    assert cli.json("checkpoints", "list", "--url", url) == []
    assert cli.json("fsck", "--url", url)["pages"] == 0
    assert cli.json("gc", "--url", url, "--dry-run")["orphans_deleted"] == []
    assert cli.json("doctor", "--url", url)["ok"] is True
    assert cli.json("migrate", url, f"file://{tmp_path}/copy")["copied"] == 0

    # Not found, in the same words whether the command or the backend noticed.
    for args in (["show", "mem_L3_1"], ["tier", "mem_L3_1", "L4"], ["restore", "mem_L3_1"]):
        assert "ObjectNotFoundError: no artifact 'mem_L3_1'" in cli(*args, "--url", url, expect=5).stderr
        assert cli.json(*args, "--url", url, expect=5)["message"] == "no artifact 'mem_L3_1'"
    missing = "ckpt_20260101T000000000000_00000000"
    assert cli.json("checkpoints", "verify", missing, "--url", url, expect=5)["message"] == f"no checkpoint {missing!r}"

    # The demo on a named store takes away what it wrote: run twice, the store lists nothing.
    assert "Restored 10 pages, every checksum verified" in cli("demo", "--url", url).stdout
    assert cli.json("demo", "--url", url)["kept"] is False
    assert cli.json("ls", "--url", url) == []
    assert cli.json("checkpoints", "--url", url) == []


def test_every_command_on_a_store_with_pages(store: Store, cli: Cli, tmp_path: Path) -> None:
    if store.rig == "memory":
        pytest.skip("memory:// lives for one command: no store with pages outlives the demo")
    url, env = target(store)
    cli.env.update(env)
    kept = cli("demo", "--keep", "--url", url).stdout
    assert "Kept 15 pages and checkpoint ckpt_" in kept
    checkpoint = kept.split("Kept 15 pages and checkpoint ")[1].split()[0]

    table = cli("ls", "--url", url).stdout.splitlines()
    assert len(table) == 16
    assert table[1].split()[:3] == ["mem_L3_1", "L3", "text"]
    listing = cli.json("ls", "--url", url, "--tier", "L3", "--modality", "text", "--prefix", "msg_00")
    artifacts = ids_of(listing)
    assert artifacts == [f"mem_L3_{n}" for n in range(1, 16)]
    assert all(entry["storage_class"] for entry in listing)

    assert "Message 0 content..." in cli("show", "mem_L3_1", "--content", "--url", url).stdout
    shown = cli.json("show", "mem_L3_2", "--content", "--url", url)
    assert (shown["metadata"]["page_id"], shown["page"]["content"]) == ("msg_001", "Message 1 content...")
    assert cli("show", "mem_L3_3", "--raw", "--url", url).stdout == "Message 2 content..."

    assert checkpoint in cli("checkpoints", "--url", url).stdout
    assert [c["checkpoint_id"] for c in cli.json("checkpoints", "--url", url)] == [checkpoint]
    assert "session_snapshot" in cli("checkpoints", "show", checkpoint, "--url", url).stdout
    manifest = cli.json("checkpoints", "show", checkpoint, "--url", url)
    assert [p["artifact_id"] for p in manifest["pages"]] == artifacts[5:]
    verified = cli("checkpoints", "verify", checkpoint, "--url", url).stdout
    assert "all 10 pages load and match their checksums" in verified
    assert cli.json("checkpoints", "restore", checkpoint, "--url", url)["verified"] == 10

    copy = f"file://{tmp_path}/copy"
    assert "checkpoints copied         1\n" in cli("migrate", url, copy).stdout
    again = cli.json("migrate", url, copy)
    assert (again["checkpoints_copied"], again["checkpoints_skipped"], again["problems"]) == (0, 1, [])

    assert cli("fsck", "--url", url).stdout.endswith("\nok\n")
    fsck = cli.json("fsck", "--url", url)
    assert (fsck["ok"], fsck["pages"], fsck["checkpoints"], fsck["verified"], fsck["orphans"]) == (True, 15, 1, 15, [])
    assert "deleted 0 orphan(s)" in cli("gc", "--url", url).stdout
    assert cli.json("gc", "--url", url)["orphans_kept"] == []
    assert "everything tierstore needs works" in cli("doctor", "--url", url).stdout

    archive_flow(store.rig, cli, url)

    refused = cli.run("rm", artifacts[5], "--url", url)
    assert (refused.returncode, f"used by checkpoint {checkpoint}" in refused.stderr) == (2, True)
    assert cli("rm", "mem_L3_2", "--url", url).stdout == "deleted mem_L3_2\n"
    assert cli.json("rm", "mem_L3_3", "--url", url) == {"deleted": ["mem_L3_3"]}
    assert "deleted checkpoint" in cli("checkpoints", "delete", checkpoint, "--url", url).stdout
    assert cli.json("checkpoints", "delete", checkpoint, "--url", url, expect=5)["error"] == "ObjectNotFoundError"
    assert ids_of(cli.json("ls", "--url", url)) == ["mem_L3_1", "mem_L3_4", "mem_L3_5"]


def archive_flow(rig: str, cli: Cli, url: str) -> None:
    """``tier`` to L4, then what the store makes of it: an archive to restore from (S3, Azure) or not."""
    moved = cli("tier", "mem_L3_1", "L4", "--url", url).stdout
    meta: dict[str, Any] = cli.json("show", "mem_L3_1", "--url", url)["metadata"]
    if rig == "gcs":
        # fake-gcs-server keeps the old storage class (README, emulators): the command says what the store reports.
        assert "accepted the move to L4 but reports L3" in moved
        assert meta["tier"] == "L3"
    else:
        assert moved.startswith("mem_L3_1 is now in L4")
        assert meta["tier"] == "L4"
    if not meta["archived"]:
        assert "is not archived" in cli("restore", "mem_L3_1", "--url", url).stdout
        assert cli.json("restore", "mem_L3_1", "--url", url)["state"] == "not-archived"
        return
    archived = cli("show", "mem_L3_1", "--content", "--url", url, expect=6).stderr
    assert "`tierstore restore mem_L3_1`" in archived
    assert "bridge" not in archived
    assert cli.json("show", "mem_L3_1", "--raw", "--url", url, expect=6)["error"] == "ArchivedPageError"
    restoring = cli("restore", "mem_L3_1", "--url", url, "--speed", "expedited").stdout
    assert restoring.startswith(("mem_L3_1 is being restored", "mem_L3_1 is restored"))
    # The emulators finish a restore at once; Azure then reports the blob back in its online tier.
    assert cli.json("restore", "mem_L3_1", "--url", url)["state"] in ("restored", "not-archived")
    assert "Message 0 content..." in cli("show", "mem_L3_1", "--content", "--url", url).stdout


def test_doctor_leads_with_a_missing_bucket(store: Store, cli: Cli) -> None:
    if store.rig not in CLOUD_RIGS:
        pytest.skip("only cloud stores have a bucket or container that may be missing")
    url, env = target(store)
    cli.env.update(env)
    scheme = url.split("://")[0]
    missing = f"{scheme}://missing-{uuid.uuid4().hex[:12]}/agent"
    plain = cli("doctor", "--url", missing, expect=2).stdout
    lines = plain.splitlines()
    assert lines[1].startswith("cause:")
    assert "does not exist" in lines[1]
    report = json.loads(cli("doctor", "--url", missing, "--json", expect=2).stdout)
    assert report["ok"] is False
    assert "does not exist" in report["cause"]
    results = [c["result"] for c in report["checks"]]
    assert results[0] == "failed"
    assert set(results[1:]) <= {"not tried", "skipped"}  # skipped: tags, which GCS does not have
    assert "not tried" in results
