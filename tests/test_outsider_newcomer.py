"""Breaks an outsider found using tierstore as a new user would (issues 24 and 25), each kept as a regression."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from tests.emulators import free_port
from tests.rigs import azure as azure_rig
from tierstore import ArtifactsBridge, FileSystemBackend, InMemoryBackend
from tierstore.backends.azure import AzureBlobBackend
from tierstore.backends.cloud import ClientChoice, CloudOptions, RetryPolicy
from tierstore.backends.cloud.failure import FIXES, from_status
from tierstore.config import MisspeltSettingWarning, backend_from_url, load_settings
from tierstore.errors import ConfigurationError, NotAStoreError
from tierstore.maintenance import fsck, gc, migrate
from tierstore.maintenance.doctor import missing_store


@pytest.mark.parametrize("name", ["plain", "ü ñ", "it's", "a;touch b", "$HOME", "-dash"])
def test_the_mkdir_a_missing_store_suggests_makes_exactly_that_directory(tmp_path: Path, name: str) -> None:
    root = tmp_path / name
    message = missing_store(FileSystemBackend(root))
    assert message is not None
    command = re.search(r"`(mkdir -p [^`]*)`", message)
    assert command is not None, message
    assert shlex.split(command.group(1)) == ["mkdir", "-p", str(root)]
    subprocess.run(["sh", "-c", command.group(1)], check=True, cwd=tmp_path)
    assert root.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_sync_call_from_a_progress_callback_on_the_sync_bridges_loop_is_refused_not_a_deadlock(
    tmp_path: Path,
) -> None:
    from tierstore import ArtifactsBridge, MemoryPage, Modality, SyncBridge
    from tierstore.errors import NotSupportedError

    page = MemoryPage(page_id="note", modality=Modality.TEXT, content="Call at 5.")
    seen: list[BaseException] = []

    def progress(done: int, total: int) -> None:
        try:
            bridge.list_pages()  # runs on the SyncBridge's own loop: it must not wait for that loop
        except NotSupportedError as error:
            seen.append(error)

    with SyncBridge(ArtifactsBridge(backend=FileSystemBackend(tmp_path / "store"))) as bridge:
        checkpoint_id = bridge.checkpoint([page], "one")
        assert bridge.restore_checkpoint(checkpoint_id, progress=progress) == [page]
        assert seen
        assert "own event loop" in str(seen[0])
        assert len(bridge.list_pages()) == 1  # the SyncBridge still works after the refusal


# -- names are case-insensitive wherever tierstore reads them ---------------------------------------------------


def _choice_arguments() -> list[tuple[str, argparse.Action]]:
    """Every argument of every command (subcommands too) that takes one of a set of values."""
    from tierstore.cli.app import parser

    found: list[tuple[str, argparse.Action]] = []
    pending: list[tuple[str, argparse.ArgumentParser]] = [("tierstore", parser())]
    while pending:
        name, current = pending.pop()
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending += [(f"{name} {sub}", subparser) for sub, subparser in action.choices.items()]
            elif action.choices:
                found.append((name, action))
    return found


def test_every_choice_on_the_command_line_takes_any_case() -> None:
    arguments = _choice_arguments()
    assert {(name, action.dest) for name, action in arguments} >= {
        ("tierstore tier", "tier"),
        ("tierstore ls", "tier"),
        ("tierstore ls", "modality"),
        ("tierstore restore", "speed"),
        ("tierstore checkpoints restore", "speed"),
    }
    for name, action in arguments:
        choices = [str(value) for value in action.choices or ()]
        for value in choices:
            for spelt in (value.upper(), value.lower(), value.swapcase(), f" {value} "):
                assert callable(action.type), (name, action.dest)
                assert action.type(spelt) == value, (name, action.dest, spelt)


def test_tier_names_in_any_case_move_list_and_store(tmp_path: Path) -> None:
    import asyncio
    import json
    import os
    import sys

    from tierstore import ArtifactsBridge, MemoryPage, Modality, StorageTier

    store = tmp_path / "store"

    async def store_one() -> str:
        async with ArtifactsBridge(backend=FileSystemBackend(store)) as bridge:
            page = MemoryPage(page_id="p", modality=Modality.TEXT, content="x")
            artifact = await bridge.store_page(page, tier="l2")
            await bridge.set_tier(artifact, "l3")
            meta = await bridge.get_metadata(artifact)
            assert meta is not None
            assert meta.tier == StorageTier.L3
            return artifact

    artifact = asyncio.run(store_one())
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "xdg")}

    def tierstore(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "tierstore", *args, "--url", str(store)]
        return subprocess.run(command, capture_output=True, text=True, env=env, check=False)

    moved = tierstore("tier", artifact, "l4")
    assert moved.returncode == 0, moved.stderr
    assert f"{artifact} is now in L4" in moved.stdout
    listed = tierstore("ls", "--tier", "l4", "--modality", "TEXT", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [row["artifact_id"] for row in json.loads(listed.stdout)] == [artifact]
    refused = tierstore("tier", artifact, "l9")
    assert refused.returncode == 2
    assert "invalid choice" in refused.stderr


# -- checkpoints delete says what it deleted, what it kept, why, and when gc collects it --------------------------

AGENT = "ckpt_20300101T000000000000_a9e17000"  # the lease of a running agent (its own checkpoint-like name)


def test_checkpoints_delete_says_what_went_what_stayed_why_and_until_when(tmp_path: Path) -> None:
    import asyncio
    import json
    import os
    import sys

    from tierstore import ArtifactsBridge, MemoryPage, Modality

    store = tmp_path / "store"

    pages = {n: MemoryPage(page_id=f"p{n}", modality=Modality.TEXT, content=f"page {n}") for n in (1, 2, 3)}

    async def prepare() -> tuple[str, dict[str, str]]:
        async with ArtifactsBridge(backend=FileSystemBackend(store)) as bridge:
            doomed = await bridge.checkpoint(list(pages.values()), name="before")
            manifest = await bridge.get_checkpoint_manifest(doomed)
            assert manifest is not None
            artifacts = {e.page_id: e.artifact_id for e in manifest.pages}
            await bridge.checkpoint([pages[1]], name="after")  # reuses p1's artifact
            lease = bridge.references("agent").lease(AGENT, [artifacts["p2"]])  # a running agent refers to p2
            await lease.start()
            await lease.abandon()  # left live, as an agent in another process keeps it
            return doomed, artifacts

    doomed, artifacts = asyncio.run(prepare())
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "xdg")}

    def tierstore(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "tierstore", *args, "--url", str(store)]
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        assert result.returncode == 0, result.stderr
        return result

    said = tierstore("checkpoints", "delete", doomed).stdout
    lines = said.splitlines()
    assert lines[0] == f"deleted checkpoint {doomed} (before)"
    assert lines[1] == f"deleted 1 artifact(s) nothing else uses: {artifacts['p3']}"
    assert lines[2] == f"kept 1 artifact(s) other checkpoints use: {artifacts['p1']}"
    assert lines[3].startswith("  used by ckpt_")
    assert lines[3].endswith("they go with the last checkpoint that uses them")
    assert lines[4] == f"kept 1 artifact(s) a running agent or checkpoint still refers to: {artifacts['p2']}"
    assert lines[5].startswith(f"  held by lease intent_{AGENT}, which expires ")
    assert lines[6].startswith("  when that lease ends")
    assert lines[7].startswith("  `tierstore gc` after that deletes those no checkpoint uses")

    # What it said about gc holds: kept while the lease lives, collected by the first gc after it ends.
    tierstore("gc", "--grace", "0s")
    still = json.loads(tierstore("ls", "--json").stdout)
    assert artifacts["p2"] in [row["artifact_id"] for row in still]

    async def agent_ends() -> None:
        async with ArtifactsBridge(backend=FileSystemBackend(store)) as bridge:
            await bridge.references("agent").lease(AGENT, []).release()

    asyncio.run(agent_ends())
    tierstore("gc", "--grace", "0s")
    left = [row["artifact_id"] for row in json.loads(tierstore("ls", "--json").stdout)]
    assert left == [artifacts["p1"]]
    [last] = [c["checkpoint_id"] for c in json.loads(tierstore("checkpoints", "--json").stdout)]
    report = json.loads(tierstore("checkpoints", "delete", last, "--json").stdout)
    assert report["deleted"] is True
    assert report["artifacts_deleted"] == [artifacts["p1"]]
    assert report["artifacts_kept_for_checkpoints"] == report["artifacts_kept_for_leases"] == []


_READING_MAINTENANCE: dict[str, Callable[[FileSystemBackend], Coroutine[Any, Any, object]]] = {
    "fsck": lambda backend: fsck(ArtifactsBridge(backend=backend)),
    "fsck --no-verify": lambda backend: fsck(ArtifactsBridge(backend=backend), verify=False),
    "gc": lambda backend: gc(ArtifactsBridge(backend=backend)),
    "gc --dry-run": lambda backend: gc(ArtifactsBridge(backend=backend), dry_run=True),
    "migrate from": lambda backend: migrate(backend, InMemoryBackend()),
}


@pytest.mark.parametrize("call", sorted(_READING_MAINTENANCE))
@pytest.mark.parametrize("place", ["missing", "foreign"])
def test_maintenance_on_a_path_that_holds_no_store_says_so_and_makes_nothing(
    tmp_path: Path, call: str, place: str
) -> None:
    root = tmp_path / "store"
    if place == "foreign":
        root.mkdir()
        (root / "notes.txt").write_text("not a store")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(NotAStoreError, match="no tierstore store at"):
        asyncio.run(_READING_MAINTENANCE[call](FileSystemBackend(root)))
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("variant", ["tierstore_url", "Tierstore_Url", "TIERSTORE_url"])
@pytest.mark.parametrize("variant_first", [True, False])
def test_a_setting_set_twice_in_different_cases_reads_the_upper_case_one_and_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variant: str, variant_first: bool
) -> None:
    """Which of two cases won depended on the environment's order: pages could go to memory and be lost."""
    for name in list(os.environ):
        if name.upper().startswith("TIERSTORE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    canonical = ("TIERSTORE_URL", f"file://{tmp_path / 'store'}")
    given = [(variant, "memory://"), canonical] if variant_first else [canonical, (variant, "memory://")]
    for name, value in given:
        monkeypatch.setenv(name, value)
    with pytest.warns(MisspeltSettingWarning, match=f"{variant} is ignored: TIERSTORE_URL"):
        backend = backend_from_url(None, load_settings())
    assert isinstance(backend, FileSystemBackend)
    assert backend.root == tmp_path / "store"
    cli = subprocess.run(
        [sys.executable, "-m", "tierstore", "ls"], capture_output=True, text=True, env=dict(os.environ), check=False
    )
    assert f"tierstore: warning: {variant} is ignored: TIERSTORE_URL" in cli.stderr
    assert "no tierstore store at" in cli.stderr, cli.stderr
    assert cli.returncode == 2


def _wrong_azure_credentials(port: int) -> dict[str, str]:
    endpoint = f"http://127.0.0.1:{port}/{azure_rig.ACCOUNT}"
    expired_sas = "sv=2021-08-06&ss=b&srt=sco&sp=rl&se=2020-01-01T00:00:00Z&sig=c2lnbmF0dXJl"
    return {
        "wrong key": azure_rig.connection_string(port, key="d3Jvbmcta2V5LXdyb25nLWtleQ=="),
        "expired SAS": f"BlobEndpoint={endpoint};SharedAccessSignature={expired_sas}",
    }


@pytest.mark.emulator
@pytest.mark.parametrize("client", ["sdk", "obstore"])
@pytest.mark.parametrize("mistake", ["wrong key", "expired SAS"])
def test_azure_credentials_that_do_not_authenticate_name_what_to_check_and_doctor_says_so(
    rig_server: Callable[[str], Any], tmp_path: Path, client: str, mistake: str
) -> None:
    server = rig_server("azure")
    spec = server.new_store(client=client)
    try:
        env = {
            **{k: v for k, v in os.environ.items() if not k.upper().startswith(("TIERSTORE_", "AZURE_"))},
            "AZURE_STORAGE_CONNECTION_STRING": _wrong_azure_credentials(server.port)[mistake],
            "TIERSTORE_CLIENT": client,
            "TIERSTORE_RETRY_DEADLINE": "10",
        }
        url = f"az://{spec['container']}/agent"

        def tierstore(*args: str) -> subprocess.CompletedProcess[str]:
            command = [sys.executable, "-m", "tierstore", "--url", url, *args]
            return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, check=False)

        listed = tierstore("ls")
        assert listed.returncode == 3, listed.stderr
        assert "AccessDeniedError" in listed.stderr
        codes = [code for code in ("AuthenticationFailed", "AuthorizationFailure") if code in listed.stderr]
        assert codes, listed.stderr
        assert listed.stderr.strip().endswith(FIXES[codes[0]]), listed.stderr
        assert "AZURE_STORAGE_CONNECTION_STRING" in FIXES[codes[0]]
        doctor = tierstore("doctor")
        assert doctor.returncode == 3, doctor.stdout
        assert f"the credentials do not work: {FIXES[codes[0]]}" in " ".join(doctor.stdout.split()), doctor.stdout
        assert "missing permissions" not in doctor.stdout
    finally:
        server.drop_store(spec)


@pytest.mark.parametrize(
    ("status", "code", "shown"), [(403, "403", "HTTP 403"), (403, "AccessDenied", "HTTP 403 AccessDenied")]
)
def test_a_failure_named_only_by_its_status_says_the_status_once(status: int, code: str, shown: str) -> None:
    assert from_status(status, code).describe() == shown


class _BrokenCredential:
    """An async TokenCredential of the caller's own whose get_token fails with an error of its own."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise RuntimeError("the vault said no")


@pytest.mark.parametrize("client", ["sdk", "obstore"])
def test_a_token_credential_that_raises_is_a_configuration_error_naming_its_error(client: ClientChoice) -> None:
    url = f"https://127.0.0.1:{free_port()}/{azure_rig.ACCOUNT}"  # the token is asked for before any request
    options = CloudOptions(client=client, retry=RetryPolicy(max_attempts=3, deadline=20.0))
    backend = AzureBlobBackend("agent-memory", account_url=url, credential=_BrokenCredential(), options=options)

    async def get() -> None:
        try:
            await backend.get("k")
        finally:
            await backend.aclose()

    with pytest.raises(ConfigurationError) as failed:
        asyncio.run(get())
    assert "_BrokenCredential failed to give a token" in str(failed.value)
    assert "RuntimeError: the vault said no" in str(failed.value)
