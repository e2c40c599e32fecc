"""``tierstore doctor``: check that the store is reachable and the credentials allow what tierstore needs.

Contract: leads with the cause when the store cannot be used at all (e.g. the bucket does not exist: exit 2); exit 3
when the backend is unreachable or a permission is missing, 1 when a check fails, 0 when everything works. What the
bucket keeps that erasure cannot remove is a warning line, which changes no exit code.
"""

from __future__ import annotations

from tierstore import maintenance
from tierstore.backends.cloud.failure import FIXES
from tierstore.cli.context import AddCommand, Invocation, closing
from tierstore.cli.render import Column, print_json, print_table, to_plain
from tierstore.maintenance import DoctorReport


def register(add: AddCommand) -> None:
    """Add ``tierstore doctor`` to the parser."""
    add("doctor", run, "check the store is reachable and the credentials allow every operation tierstore needs")


def exit_code(report: DoctorReport) -> int:
    """Doctor's exit code: 2 when the store cannot be used as configured, 3 when a check was denied or unanswered,
    1 when one failed, else 0."""
    if report.cause is not None:
        return 2
    if report.having("denied", "unavailable"):
        return 3
    return 1 if report.having("failed") else 0


async def run(inv: Invocation) -> int:
    """``tierstore doctor``: check the store exists and the credentials allow every operation; creates nothing."""
    backend = inv.backend(existing=False)  # doctor reports a missing store as its cause
    async with closing(backend):
        report = await maintenance.doctor(backend)
    code = exit_code(report)
    if inv.json:
        print_json({"ok": report.ok, **to_plain(report)})
        return code
    print(f"backend: {report.backend}")
    if report.cause:
        print(f"cause:   {report.cause}")
    print()
    print_table(
        [to_plain(c) for c in report.checks],
        [Column("name", "CHECK"), Column("result", "RESULT"), Column("detail", "DETAIL", wrap=True)],
    )
    if report.warnings or report.notes:
        print()
    for warning in report.warnings:
        print(f"warning: {warning}")
    for note in report.notes:
        print(f"note:    {note}")
    print(f"\n{_verdict(report)}")
    return code


def _verdict(report: DoctorReport) -> str:
    if report.cause:
        then = "create it or fix the URL" if "does not exist" in report.cause else "fix that"
        return f"the store cannot be used as configured ({report.cause}): {then}, then run doctor again"
    if report.having("unavailable"):
        return "the backend cannot be reached: check the URL, endpoint and network"
    if denied := report.having("denied"):
        details = [c.detail for c in report.checks if c.result == "denied"]
        fixes = sorted({fix for fix in FIXES.values() if any(fix in detail for detail in details)})
        if fixes and not report.having("ok"):  # refused for what the credentials are, not for what they may do
            return f"the credentials do not work: {'; '.join(fixes)}"
        return f"missing permissions: {', '.join(denied)}" + "".join(f"; {fix}" for fix in fixes)
    if failed := report.having("failed"):
        return f"failing: {', '.join(failed)}"
    return "everything tierstore needs works"
