"""``tierstore gc``: delete orphans older than a grace period, stale intents and old tomb records.

Contract: says what it deleted, and what it kept and why: orphans younger than the grace period (a checkpoint may
still be writing them), with when a plain ``gc`` will collect them and how to collect them at once.
"""

from __future__ import annotations

from datetime import timedelta

from tierstore import maintenance
from tierstore.cli.context import AddCommand, Invocation
from tierstore.cli.durations import parse_duration
from tierstore.cli.render import ProgressBar, human_size, print_json, print_report, to_plain
from tierstore.maintenance import GcReport

_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SHOWN = ("orphans_deleted", "orphans_kept", "intents_removed", "tombs_pruned", "in_progress", "unreadable_manifests")


def format_duration(duration: timedelta) -> str:
    """A duration in the largest unit that says it exactly (``90m`` stays ``90m``, ``3600s`` is ``1h``)."""
    seconds = duration.total_seconds()
    for unit in ("w", "d", "h", "m"):
        if seconds >= _UNIT_SECONDS[unit] and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds / _UNIT_SECONDS[unit]:g}{unit}"
    return f"{seconds:g}s"


def register(add: AddCommand) -> None:
    """Add ``tierstore gc`` (``--grace``, ``--dry-run``) to the parser."""
    gc = add("gc", run, "delete orphans older than a grace period, stale intents and old tomb records")
    gc.add_argument("--grace", type=parse_duration, default=timedelta(hours=1), help="e.g. 30m, 1h, 2d (default 1h)")
    gc.add_argument("--dry-run", action="store_true", help="report what would be deleted; delete nothing")


async def run(inv: Invocation) -> int:
    """``tierstore gc``: delete orphans older than the grace period, stale intents and old tombs; say what was kept."""
    async with inv.bridge() as bridge:
        with ProgressBar("looking for orphans", "pages") as bar:
            report = await maintenance.gc(bridge, grace=inv.args.grace, dry_run=inv.args.dry_run, progress=bar)
    if inv.json:
        print_json({"dry_run": inv.args.dry_run, **to_plain(report)})
        return 0
    _print(report, inv.args.grace, dry_run=inv.args.dry_run)
    return 0


def _print(report: GcReport, grace: timedelta, *, dry_run: bool) -> None:
    deleted, kept = ("would delete", "would keep") if dry_run else ("deleted", "kept")
    print(f"{deleted} {len(report.orphans_deleted)} orphan(s) older than {format_duration(grace)}")
    for key in report.orphans_deleted:
        print(f"  {key}")
    if report.orphans_kept:
        size = human_size(sum(o.size for o in report.orphans_kept))
        print(
            f"{kept} {len(report.orphans_kept)} orphan(s) ({size}) younger than {format_duration(grace)}: "
            "a checkpoint may still be writing them"
        )
        written = [o.last_modified for o in report.orphans_kept if o.last_modified is not None]
        if written:
            due = max(written) + grace
            print(f"  `tierstore gc` collects them from {due:%Y-%m-%d %H:%M:%S} UTC;")
        print("  if no checkpoint is being written to this store now, `tierstore gc --grace 0s` collects them at once")
    if report.in_progress:
        print(f"{kept} what {len(report.in_progress)} checkpoint(s) in progress wrote (their lease is live):")
        for running in report.in_progress:
            expires = running.lease_expires
            print(
                f"  {running.checkpoint}  lease expires "
                + (f"{expires:%Y-%m-%d %H:%M:%S} UTC" if expires else "(unknown)")
            )
        print("  a writer that died leaves its lease to expire; `tierstore gc` then collects what it wrote")
    for key in report.unreadable_manifests:
        print(
            f"looked for no orphans: checkpoint manifest {key} cannot be read, so what it references is unknown; "
            f"`tierstore fsck` names it, and `tierstore checkpoints delete {key}` lets gc go on"
        )
    print(f"{deleted} {report.intents_removed} stale intent(s) and {report.tombs_pruned} old tomb record(s)")
    labels = {"strays_removed": "strays that would be removed"} if dry_run else {}
    print_report(report, skip=_SHOWN, labels=labels)
