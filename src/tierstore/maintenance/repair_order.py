"""The order ``fsck --repair`` proves before it writes a version record again (issue 28;
:mod:`tierstore.maintenance.repair` argues the rest of the repair).

Contract: :func:`plan` says, of each page whose record slot is empty or damaged, why its record may not be written
(None: it may), so that no rebuilt record makes an older write the latest. Its inputs are what the repair read: each
page's claim (:class:`Claim`), what each slot holds, and when the store dates each record that is a store's claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tierstore.versions import VersionRecord, version_key


@dataclass(frozen=True, slots=True)
class Claim:
    """A page whose metadata says it is version ``version`` of its page id, and the record it would get (None when
    its body cannot be read: archived or damaged, ``why``)."""

    key: str
    page_id: str | None
    """None: the page is damaged and its metadata does not name its page id."""
    version: int
    stamp: datetime | None
    """The storing host's time of its store (metadata ``stored``): ``set_tier`` does not move it."""
    written: datetime | None
    """Its last-modified time: at or after its store (``set_tier`` moves it later), so only an upper bound."""
    record: VersionRecord | None
    why: str

    @property
    def slot(self) -> str:
        """The key of the version record this page claims."""
        return version_key(self.page_id or "", self.version)


def plan(
    claims: list[Claim], states: dict[str, str], recorded: dict[str, datetime | None]
) -> list[tuple[Claim, str | None]]:
    """Each page whose record slot is empty or damaged, and why its record may not be written (None: it may).

    A record is written again only where that cannot change the latest version to an older write. Against every
    other page of the page id: not the same number (which of two holds it is not provable), and an order of numbers
    that the pages' stored times (``stored``, a time ``set_tier`` leaves) agree with, strictly; a page without one
    (stored before pages carried it) proves no order, so none is rebuilt beside another page of its id. And the
    store's own time must not contradict it: a page with a lower number whose record the store dates after this
    page's last change was claimed after this page was written. Then, highest number first, no page of the id with a
    higher number may be left without a record (damaged, archived, doubted): this one would become the latest."""
    plan: list[tuple[Claim, str | None]] = []
    visible: set[str] = {c.key for c in claims if states.get(c.key) not in ("empty", "damaged", "unknown")}
    for claim in sorted(claims, key=lambda c: -c.version):
        state = states.get(claim.key)
        if state == claim.key:
            continue
        if state not in ("empty", "damaged"):
            if state != "unknown":
                plan.append((claim, f"its version {claim.version} is {state}'s: found by artifact id only"))
            else:
                plan.append((claim, claim.why))
            continue
        if claim.record is None:
            plan.append((claim, claim.why))
            continue
        same = [c for c in claims if c.key != claim.key and c.page_id in (claim.page_id, None)]
        doubt = _doubt(claim, same, states, recorded)
        if doubt is None:
            hidden = sorted(c.key for c in same if c.version > claim.version and c.key not in visible)
            if hidden:
                doubt = f"{', '.join(hidden)}, of a higher number, gets no record: this one would become the latest"
        if doubt is None:
            visible.add(claim.key)
        plan.append((claim, doubt))
    return plan


def _doubt(claim: Claim, same: list[Claim], states: dict[str, str], recorded: dict[str, datetime | None]) -> str | None:
    """Why the order of ``claim`` against the other pages of its id is not provable (:func:`plan`)."""
    rivals = sorted(c.key for c in same if c.version == claim.version)
    if rivals:
        return f"version {claim.version} is claimed by {', '.join(rivals)} too: none is rebuilt"
    for other in sorted(same, key=lambda c: c.key):
        lower = other.version < claim.version
        if claim.stamp is None or other.stamp is None:
            return f"its order against {other.key} is not provable (a page stored before pages carried their time)"
        if other.stamp == claim.stamp or (other.stamp < claim.stamp) != lower:
            return f"its version {claim.version} disagrees with the stored times of {other.key}: not rebuilt"
        record_time = recorded.get(other.slot) if states.get(other.key) == other.key else None
        if record_time is not None and other.written is not None and record_time > other.written:
            record_time = None  # written after its own page: not the claim its store made before the page (a repair's)
        if lower and record_time is not None and claim.written is not None and record_time > claim.written:
            return f"its version {claim.version} is above {other.key}, whose record was written after it"
    return None
