"""Every command on every rig (``tests/rigs``: memory, local disk, S3 on moto, GCS, Azure; on the data path a
command takes, obstore's, as ``one_data_path`` in tests/conftest.py says), in plain text and with ``--json``: the
first command of a test in a subprocess of its own, the rest through the same entry point in one subprocess per step
(``Cli.batch``), which spares a second of interpreter and SDK start-up a command.

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
from tierstore import PageEntry
from tierstore.cli import exit_codes

pytestmark = pytest.mark.one_data_path

ARCHIVE_RIGS = ("s3_moto", "s3_moto_obstore", "s3_localstack", "s3_localstack_obstore", "azure", "azure_obstore")
CLOUD_RIGS = ("s3_moto", "s3_moto_obstore", "s3_localstack", "s3_localstack_obstore", "gcs", "azure", "azure_obstore")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    work = tmp_path / "work"
    work.mkdir()
    return Cli(cwd=work, env={"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "xdg")})


def test_every_command_on_an_empty_store(store: Store, cli: Cli, tmp_path: Path) -> None:
    url, env = target(store)
    cli.env.update(env)
    if store.rig == "filesystem":
        Path(store.spec["root"]).mkdir(parents=True, exist_ok=True)  # an empty store; no directory is none
    missing = "ckpt_20260101T000000000000_00000000"
    doctor_code = {"doctor_json": 1} if store.rig == "gcs" else {}  # KEEPS_THE_CLASS below
    r = cli.batch(
        {"show": 5, "show_json": 5, "tier": 5, "tier_json": 5, "restore": 5, "restore_json": 5, "verify_json": 5}
        | doctor_code,
        ls=["ls", "--url", url],
        ls_long=["ls", "--long", "--url", url],
        ls_json=["ls", "--url", url, "--json"],
        checkpoints=["checkpoints", "--url", url],
        checkpoints_json=["checkpoints", "list", "--url", url, "--json"],
        fsck_json=["fsck", "--url", url, "--json"],
        gc_json=["gc", "--url", url, "--dry-run", "--json"],
        doctor_json=["doctor", "--url", url, "--json"],
        migrate_json=["migrate", url, f"file://{tmp_path}/copy", "--json"],
        show=["show", "mem_L3_1", "--url", url],
        show_json=["show", "mem_L3_1", "--url", url, "--json"],
        tier=["tier", "mem_L3_1", "L4", "--url", url],
        tier_json=["tier", "mem_L3_1", "L4", "--url", url, "--json"],
        restore=["restore", "mem_L3_1", "--url", url],
        restore_json=["restore", "mem_L3_1", "--url", url, "--json"],
        verify_json=["checkpoints", "verify", missing, "--url", url, "--json"],
    )
    assert r["ls"].stdout.split() == ["ARTIFACT", "SIZE", "STORED"]
    assert r["ls_long"].stdout.split() == [
        "ARTIFACT",
        "TIER",
        "MODALITY",
        "SIZE",
        "CREATED",
        "STORAGE",
        "CLASS",
        "PAGE",
    ]
    assert json.loads(r["ls_json"].stdout) == []
    assert r["checkpoints"].stdout.split() == ["CHECKPOINT", "NAME", "CREATED", "PAGES", "SIZE"]
    assert json.loads(r["checkpoints_json"].stdout) == []
    assert json.loads(r["fsck_json"].stdout)["pages"] == 0
    assert json.loads(r["gc_json"].stdout)["orphans_deleted"] == []
    assert_doctor(store.rig, json.loads(r["doctor_json"].stdout))
    assert json.loads(r["migrate_json"].stdout)["copied"] == 0
    # Not found, in the same words whether the command or the backend noticed.
    for command in ("show", "tier", "restore"):
        assert "ObjectNotFoundError: no artifact 'mem_L3_1'" in r[command].stderr
        assert json.loads(r[f"{command}_json"].stdout)["message"] == "no artifact 'mem_L3_1'"
    assert json.loads(r["verify_json"].stdout)["message"] == f"no checkpoint {missing!r}"

    # The demo on a named store takes away what it wrote: run twice, the store lists nothing.
    assert "Restored 10 pages, every checksum verified" in cli("demo", "--url", url).stdout
    again = cli.batch(
        demo_json=["demo", "--url", url, "--json"],
        ls_json=["ls", "--url", url, "--json"],
        checkpoints_json=["checkpoints", "--url", url, "--json"],
    )
    assert json.loads(again["demo_json"].stdout)["kept"] is False
    assert json.loads(again["ls_json"].stdout) == []
    assert json.loads(again["checkpoints_json"].stdout) == []


def test_every_command_on_a_store_with_pages(store: Store, cli: Cli, tmp_path: Path) -> None:
    if store.rig == "memory":
        pytest.skip("memory:// lives for one command: no store with pages outlives the demo")
    url, env = target(store)
    cli.env.update(env)
    kept = cli("demo", "--keep", "--url", url).stdout
    assert "Kept 15 pages and checkpoint ckpt_" in kept
    checkpoint = kept.split("Kept 15 pages and checkpoint ")[1].split()[0]
    copy = f"file://{tmp_path}/copy"
    r = cli.batch(
        {"doctor": 1, "doctor_json": 1} if store.rig == "gcs" else {},
        ls=["ls", "--url", url],
        ls_long=["ls", "-l", "--url", url],
        ls_json=["ls", "--url", url, "--tier", "L3", "--modality", "text", "--prefix", "msg_00", "--json"],
        ls_short_json=["ls", "--url", url, "--json"],
        show=["show", "mem_L3_1", "--content", "--url", url],
        show_json=["show", "mem_L3_2", "--content", "--url", url, "--json"],
        raw=["show", "mem_L3_3", "--raw", "--url", url],
        checkpoints=["checkpoints", "--url", url],
        checkpoints_json=["checkpoints", "--url", url, "--json"],
        manifest=["checkpoints", "show", checkpoint, "--url", url],
        manifest_json=["checkpoints", "show", checkpoint, "--url", url, "--json"],
        verify=["checkpoints", "verify", checkpoint, "--url", url],
        verify_json=["checkpoints", "verify", checkpoint, "--url", url, "--json"],
        migrate=["migrate", url, copy],
        migrate_again_json=["migrate", url, copy, "--json"],
        fsck=["fsck", "--url", url],
        fsck_json=["fsck", "--url", url, "--json"],
        gc=["gc", "--url", url],
        gc_json=["gc", "--url", url, "--json"],
        doctor=["doctor", "--url", url],
        doctor_json=["doctor", "--url", url, "--json"],
    )
    table = r["ls"].stdout.splitlines()
    assert len(table) == 16
    assert table[1].split()[0] == "mem_L3_1"
    numbered = [f"mem_L3_{n}" for n in range(1, 16)]
    assert [e["artifact_id"] for e in json.loads(r["ls_short_json"].stdout)] == sorted(numbered)  # key order
    short = json.loads(r["ls_short_json"].stdout)
    assert all(e["size_bytes"] > 0 and e["last_modified"] for e in short)
    # One set of names: the short listing's fields are Python's PageEntry's, and the long listing has them too.
    assert set(short[0]) == set(PageEntry.model_fields)
    assert set(short[0]) <= set(json.loads(r["ls_json"].stdout)[0])
    long_table = r["ls_long"].stdout.splitlines()
    assert len(long_table) == 16
    assert long_table[1].split()[:3] == ["mem_L3_1", "L3", "text"]
    listing = json.loads(r["ls_json"].stdout)
    assert ids_of(listing) == sorted(numbered)
    assert all(entry["storage_class"] for entry in listing)

    assert "Message 0 content..." in r["show"].stdout
    shown = json.loads(r["show_json"].stdout)
    assert (shown["metadata"]["page_id"], shown["page"]["content"]) == ("msg_001", "Message 1 content...")
    assert r["raw"].stdout == "Message 2 content..."

    assert checkpoint in r["checkpoints"].stdout
    assert [c["checkpoint_id"] for c in json.loads(r["checkpoints_json"].stdout)] == [checkpoint]
    assert "session_snapshot" in r["manifest"].stdout
    assert [p["artifact_id"] for p in json.loads(r["manifest_json"].stdout)["pages"]] == numbered[5:]
    assert "all 10 pages load and match their checksums" in r["verify"].stdout
    assert json.loads(r["verify_json"].stdout)["verified"] == 10

    assert "checkpoints copied         1\n" in r["migrate"].stdout
    again = json.loads(r["migrate_again_json"].stdout)
    assert (again["checkpoints_copied"], again["checkpoints_skipped"], again["problems"]) == (0, 1, [])

    assert r["fsck"].stdout.endswith("\nok\n")
    fsck = json.loads(r["fsck_json"].stdout)
    assert (fsck["ok"], fsck["pages"], fsck["checkpoints"], fsck["verified"], fsck["orphans"]) == (True, 15, 1, 15, [])
    assert "deleted 0 orphan(s)" in r["gc"].stdout
    assert json.loads(r["gc_json"].stdout)["orphans_kept"] == []
    assert_doctor(store.rig, json.loads(r["doctor_json"].stdout))
    if store.rig != "gcs":
        assert "everything tierstore needs works" in r["doctor"].stdout

    archive_flow(store.rig, cli, url)

    r = cli.batch(
        {"rm_refused": 2, "delete_again_json": 5},
        rm_refused=["rm", numbered[5], "--url", url],
        rm=["rm", "mem_L3_2", "--url", url],
        rm_json=["rm", "mem_L3_3", "--url", url, "--json"],
        delete=["checkpoints", "delete", checkpoint, "--url", url],
        delete_again_json=["checkpoints", "delete", checkpoint, "--url", url, "--json"],
        ls_json=["ls", "--url", url, "--json"],
    )
    assert f"used by checkpoint {checkpoint}" in r["rm_refused"].stderr
    assert r["rm"].stdout == "deleted mem_L3_2\n"
    assert json.loads(r["rm_json"].stdout) == {"deleted": ["mem_L3_3"]}
    assert "deleted checkpoint" in r["delete"].stdout
    assert json.loads(r["delete_again_json"].stdout)["error"] == "ObjectNotFoundError"
    assert ids_of(json.loads(r["ls_json"].stdout)) == ["mem_L3_1", "mem_L3_4", "mem_L3_5"]


KEEPS_THE_CLASS = "accepted the move to L4 but reports L3"
"""fake-gcs-server answers a storage-class rewrite and keeps the old class (README, emulators): doctor's tier check,
a real change of class, says so there and only there."""


def assert_doctor(rig: str, report: dict[str, Any]) -> None:
    results = {c["name"]: (c["result"], c["detail"]) for c in report["checks"]}
    if rig == "gcs":
        assert results.pop("tier") == ("failed", f"IntegrityError: the store {KEEPS_THE_CLASS}")
    else:
        assert report["ok"] is True
    assert all(result in ("ok", "skipped") for result, _detail in results.values()), results


def archive_flow(rig: str, cli: Cli, url: str) -> None:
    """``tier`` to L4, then what the store makes of it: an archive to restore from (S3, Azure) or not."""
    r = cli.batch(tier=["tier", "mem_L3_1", "L4", "--url", url], show_json=["show", "mem_L3_1", "--url", url, "--json"])
    meta: dict[str, Any] = json.loads(r["show_json"].stdout)["metadata"]
    if rig == "gcs":
        # fake-gcs-server keeps the old storage class (README, emulators): the command says what the store reports.
        assert "accepted the move to L4 but reports L3" in r["tier"].stdout
        assert meta["tier"] == "L3"
    else:
        assert r["tier"].stdout.startswith("mem_L3_1 is now in L4")
        assert meta["tier"] == "L4"
    if not meta["archived"]:
        r = cli.batch(
            restore=["restore", "mem_L3_1", "--url", url], restore_json=["restore", "mem_L3_1", "--url", url, "--json"]
        )
        assert "is not archived" in r["restore"].stdout
        assert json.loads(r["restore_json"].stdout)["state"] == "not-archived"
        return
    r = cli.batch(
        {"show": 6, "raw_json": 6},
        show=["show", "mem_L3_1", "--content", "--url", url],
        raw_json=["show", "mem_L3_1", "--raw", "--url", url, "--json"],
        restore=["restore", "mem_L3_1", "--url", url, "--speed", "expedited"],
        restore_json=["restore", "mem_L3_1", "--url", url, "--json"],
        restored=["show", "mem_L3_1", "--content", "--url", url],
    )
    assert f"`tierstore restore mem_L3_1 --url {url}`" in r["show"].stderr
    assert "bridge" not in r["show"].stderr
    assert json.loads(r["raw_json"].stdout)["error"] == "ArchivedPageError"
    assert r["restore"].stdout.startswith(("mem_L3_1 is being restored", "mem_L3_1 is restored"))
    # The emulators finish a restore at once; Azure then reports the blob back in its online tier.
    assert json.loads(r["restore_json"].stdout)["state"] in ("restored", "not-archived")
    assert "Message 0 content..." in r["restored"].stdout


def test_checkpoints_restore_brings_back_every_archived_page(store: Store, cli: Cli) -> None:
    if store.rig == "memory":
        pytest.skip("memory:// lives for one command: no store with pages outlives the demo")
    url, env = target(store)
    cli.env.update(env)
    kept = cli("demo", "--keep", "--url", url).stdout
    checkpoint = kept.split("Kept 15 pages and checkpoint ")[1].split()[0]
    pages = [p["artifact_id"] for p in cli.json("checkpoints", "show", checkpoint, "--url", url)["pages"]]
    archived = pages[:3]
    r = cli.batch(
        {"verify": exit_codes.ARCHIVED} if store.rig in ARCHIVE_RIGS else {},
        **{f"tier{i}": ["tier", artifact, "L4", "--url", url] for i, artifact in enumerate(archived)},
        verify=["checkpoints", "verify", checkpoint, "--url", url],
        restore=["checkpoints", "restore", checkpoint, "--url", url],
        restore_json=["checkpoints", "restore", checkpoint, "--url", url, "--json"],
        verify_after=["checkpoints", "verify", checkpoint, "--url", url],
    )
    report = json.loads(r["restore_json"].stdout)
    assert report["pages"] == len(pages)
    assert sorted(a["artifact_id"] for a in report["artifacts"]) == sorted(pages)
    if store.rig in ARCHIVE_RIGS:
        assert f"`tierstore checkpoints restore {checkpoint} --url {url}`" in r["verify"].stderr
        # The emulators finish a restore at once (Azure then reports the blob back online).
        assert "restored: can be read now" in r["restore"].stdout or "not archived" in r["restore"].stdout
    else:
        assert report["states"] == {"not-archived": len(pages)}
    assert r["restore"].stdout.rstrip().endswith(f"`tierstore checkpoints verify {checkpoint}`")
    assert "all 10 pages load and match their checksums" in r["verify_after"].stdout


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
    assert repr(missing.split("/")[2]) in report["cause"]  # the bucket or container, by name
    assert "create it or fix the URL" in plain
    results = [c["result"] for c in report["checks"]]
    assert results[0] == "failed"
    assert set(results[1:]) <= {"not tried", "skipped"}  # skipped: tags, which GCS does not have
    assert "not tried" in results
