"""Reports render field by field: a field added to a report dataclass appears in the plain text and in ``--json``
with no change to the command line (the lead's reports grow; the renderer must not need to know)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from tierstore.cli import ls
from tierstore.cli.render import JsonArray, StreamedTable, human_size, print_json, print_report, shown, to_plain
from tierstore.enums import Modality, StorageTier
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


def test_the_long_listing_takes_its_widths_from_each_columns_values_not_its_cells(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The streaming `ls -l` prints its header before any page is listed: every column is as wide as its widest
    # possible value, the artifact id as wide as one below a billion pages; a longer one pushes its own row only.
    table = StreamedTable(ls.LONG_COLUMNS)
    header = capsys.readouterr().out
    assert header == "ARTIFACT         TIER  MODALITY    SIZE        CREATED              STORAGE CLASS  PAGE\n"
    widest = {
        "artifact_id": "mem_L4_99999999",
        "tier": StorageTier.L4,
        "modality": Modality.STRUCTURED,
        "size": human_size(1024**3 - 1),
        "created_at": datetime(2026, 12, 5, 23, 59, 59, tzinfo=UTC),
        "storage_class": "INTELLIGENT_TIERING",
        "page_id": "p" * 50,
    }
    table.rows([widest])
    assert capsys.readouterr().out == (
        f"mem_L4_99999999  L4    structured  1024.0 MiB  2026-12-05 23:59:59  INTELLIGENT_…  {'p' * 39}…\n"
    )
    table.rows([{"artifact_id": "mem_L3_1", "tier": "L3", "modality": "text", "size": human_size(5), "page_id": "x"}])
    narrowest = "mem_L3_1         L3    text        5 B         -                    -              x\n"
    assert capsys.readouterr().out == narrowest
    table.rows([{"artifact_id": "mem_L3_100000000", "tier": "L3", "modality": "text", "size": "5 B", "page_id": "x"}])
    assert capsys.readouterr().out.startswith("mem_L3_100000000  L3    text")


@pytest.mark.parametrize("count", [0, 1, 3])
def test_a_streamed_json_listing_is_the_same_document_as_one_printed_at_once(
    capsys: pytest.CaptureFixture[str], count: int
) -> None:
    items = [
        {"page_id": f"line\nbreak\u2028{n}", "meta": {"k": [n, None, "é"]}, "when": datetime(2026, 1, 1, tzinfo=UTC)}
        for n in range(count)
    ]
    print_json(items)
    whole = capsys.readouterr().out
    streamed = ""
    with JsonArray() as array:
        for batch in (items[:1], [], items[1:]):
            array.add(batch)
            out = capsys.readouterr().out
            assert out.count('"page_id"') == len(batch)  # out as soon as they are added
            streamed += out
    streamed += capsys.readouterr().out
    assert streamed == whole
    assert json.loads(streamed) == to_plain(items)
