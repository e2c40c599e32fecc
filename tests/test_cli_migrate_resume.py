"""``tierstore migrate`` run again after the destination's copy was damaged: it says so and replaces the copy."""

from __future__ import annotations

from pathlib import Path

from tests.test_cli import Cli, cli, file_url, the_checkpoint

__all__ = ["cli", "file_url"]  # fixtures


def test_migrate_again_replaces_a_copy_damaged_at_the_destination(cli: Cli, file_url: str, tmp_path: Path) -> None:
    cli("demo", "--keep", "--url", file_url)
    destination = f"file://{tmp_path}/copy"
    assert cli.json("migrate", file_url, destination)["copied"] == 17
    checkpoint = the_checkpoint(cli, destination)
    victim = cli.json("checkpoints", "show", checkpoint, "--url", destination)["pages"][0]["artifact_id"]
    path = tmp_path / "copy" / "objects" / victim
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # one bit of the page's content, in place
    with path.open("r+b") as f:
        f.write(data)
    cli("checkpoints", "verify", checkpoint, "--url", destination, expect=4)

    again = cli("migrate", file_url, destination).stdout
    assert "damaged copies replaced    1\n" in again
    assert f"\n  {victim}\n" in again
    assert "already there              16\n" in again
    cli("checkpoints", "verify", checkpoint, "--url", destination)
    report = cli.json("migrate", file_url, destination)
    assert (report["copied"], report["skipped"], report["repaired"]) == (0, 17, [])
