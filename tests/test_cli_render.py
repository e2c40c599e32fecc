"""Reports render field by field: a field added to a report dataclass appears in the plain text and in ``--json``
with no change to the command line (the lead's reports grow; the renderer must not need to know)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pytest

from tierstore.cli.render import print_json, print_report, shown
from tierstore.maintenance import FsckReport, Orphan


@dataclass(frozen=True)
class Leftover:
    key: str
    size: int


@dataclass
class GrownReport(FsckReport):
    leftovers: list[Leftover] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def test_a_new_field_shows_in_plain_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    report = GrownReport(pages=3, leftovers=[Leftover("tmp_upload_1", 2048)], notes=["one note"])
    report.orphans.append(Orphan("mem_L3_9", 10, None, "ckpt_x"))

    print_report(report, hints={"orphans": "tierstore gc removes them"})
    text = capsys.readouterr().out
    # Counts are aligned to the longest field name, which grows as reports gain fields.
    assert re.search(r"^pages +3$", text, re.MULTILINE)
    assert re.search(r"^leftovers +1$", text, re.MULTILINE)
    assert "\nleftovers:\nKEY           SIZE\ntmp_upload_1  2.0 KiB\n" in text
    assert "\nnotes:\n  one note\n" in text
    assert "\norphans (tierstore gc removes them):\nKEY       SIZE  LAST MODIFIED  CHECKPOINT\n" in text
    assert "archived" in text  # empty lists are counted, not listed
    assert "\narchived:" not in text

    print_json(report)
    as_json = json.loads(capsys.readouterr().out)
    assert as_json["leftovers"] == [{"key": "tmp_upload_1", "size": 2048}]
    assert as_json["notes"] == ["one note"]
    assert as_json["orphans"][0]["last_modified"] is None


def test_values_typed_by_a_user_are_shown_clipped() -> None:
    assert shown("mem_L3_1") == "'mem_L3_1'"
    long = shown("x" * 5000)
    assert long.endswith("…' (5,000 characters)")
    assert len(long) < 90
