"""What the command line prints: JSON for scripts, tables and ``name  value`` lines for people, progress bars.

Contract:

* ``--json`` output is one JSON document on stdout, built by :func:`to_plain` from models and dataclasses field by
  field, so a field added to a report shows up without a change here.
* ``--json`` of a listing that streams (:class:`JsonArray`) is written item by item as the items come, the same
  bytes as that document printed at once; a failure midway leaves it unfinished (no JSON parser accepts it).
* Tables and report summaries are plain, aligned text, all columns, when stdout is not a terminal (so ``grep``,
  ``awk`` and ``head`` keep working). Long cells are clipped to their column's ``max_width``; ids never are. On a
  terminal a table fits the window: columns are dropped in their stated order (``Column.drop``, lowest first), then
  clippable columns narrow down to their ``min_width``, then a wrapping column wraps; ids are never cut or dropped
  (a window narrower than the ids alone lets the terminal wrap the line).
* A table printed as its rows come (:class:`StreamedTable`) cannot measure its cells first: each column is as wide
  as its ``width`` (the widest value its domain holds, or its header), and its last column takes the room the
  others leave, up to its ``max_width``. Each row is flushed as it is printed.
* Progress bars are drawn on stderr, only when stderr is a terminal, with the count, the rate and the time left;
  rows printed while one is drawn on the same terminal are printed above it. rich, which draws them and measures
  the terminal, is imported only then (a command writing to a pipe or a file does without it).
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import os
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from tierstore.errors import InvalidInputError

if TYPE_CHECKING:
    from rich.progress import Progress, ProgressColumn

ELLIPSIS = "…"
T = TypeVar("T")


@dataclass(frozen=True)
class Column:
    """One column of a table: which field of a row it shows, under which header, clipped to which width."""

    field: str
    header: str
    max_width: int | None = None
    """Cells longer than this are clipped (``…``), on a terminal or not. None: never clipped (ids)."""
    drop: int | None = None
    """On a narrow terminal, columns are dropped lowest ``drop`` first; None: never dropped."""
    min_width: int | None = None
    """On a narrow terminal, a clipped column narrows down to this once the droppable columns are gone."""
    wrap: bool = False
    """A column of free text (a message): on a terminal it takes the width left and wraps, never clipped."""
    width: int | None = None
    """How wide a :class:`StreamedTable` makes the column: its widest possible value (at least its header)."""


def to_plain(value: Any) -> Any:
    """Something ``json.dumps`` accepts: models, dataclasses, enums, datetimes, paths and bytes (as base64)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_plain(v) for v in value]
    return value


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout (see :func:`to_plain` for what it may hold)."""
    print(json.dumps(to_plain(value), indent=2, ensure_ascii=False))


def clip(text: str, width: int | None) -> str:
    """``text`` cut to ``width`` characters, the last one ``…``, when longer; ``width`` None: never cut."""
    if width is None or len(text) <= width:
        return text
    return text[: width - 1] + ELLIPSIS


def shown(value: str, width: int = 60) -> str:
    """A value the user typed, quoted for a message, clipped when long (with its length)."""
    if len(value) <= width:
        return repr(value)
    return f"{clip(value, width)!r} ({len(value):,} characters)"


def cell(value: Any) -> str:
    """A value as a table shows it: ``-`` for None, an enum's value, a time to the second, yes/no."""
    if value is None:
        return "-"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def human_size(size: int | None) -> str:
    """A size in bytes as people read it (``1.5 MiB``); ``-`` when unknown."""
    if size is None:
        return "-"
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024:
            return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"


def stdout_is_terminal() -> bool:
    """Whether stdout is a terminal (tables then fit its width)."""
    return _is_terminal(sys.stdout)


def terminal_width() -> int:
    """The width of the terminal stdout is (as rich measures it: ``COLUMNS``, else the terminal's)."""
    from rich.console import Console

    return Console(file=sys.stdout).width


_GAP = 2
_WRAP_MIN = 20


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> None:
    """Rows under a header; nothing but the header when there are no rows. See the module's contract."""
    cells = [[clip(cell(row.get(c.field)), c.max_width) for c in columns] for row in rows]
    widths = [max([len(c.header)] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]
    shown = list(range(len(columns)))
    if stdout_is_terminal():
        shown, widths = fit(columns, widths, terminal_width())
    for line in [[c.header for c in columns], *cells]:
        for text in _lines([line[i] for i in shown], [widths[i] for i in shown], [columns[i] for i in shown]):
            print(text)


class StreamedTable:
    """A table printed as its rows come: the header at once, rows as :meth:`rows` is called (module contract)."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self.columns = list(columns)
        last = self.columns[-1]
        widths = [max(len(c.header), c.width or 0) for c in self.columns]
        widths[-1] = max(len(last.header), last.max_width or widths[-1])
        self.shown = list(range(len(self.columns)))
        if stdout_is_terminal():
            window = terminal_width()
            widths[-1] = max(len(last.header), min(widths[-1], last.min_width or widths[-1]))
            self.shown, widths = fit(self.columns, widths, window)
            if self.shown[-1] == len(self.columns) - 1 and last.max_width is not None:
                others = sum(widths[i] + _GAP for i in self.shown[:-1])
                widths[-1] = max(widths[-1], min(last.max_width, window - others))
        self.widths = widths
        self._print([c.header for c in self.columns])

    def rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Rows, printed in one write and flushed."""
        if rows:
            print(
                "\n".join(
                    self._text([clip(cell(row.get(c.field)), c.max_width) for c in self.columns]) for row in rows
                ),
                flush=True,
            )

    def _print(self, line: Sequence[str]) -> None:
        print(self._text(line), flush=True)

    def _text(self, line: Sequence[str]) -> str:
        shown = self.shown
        texts = _lines([line[i] for i in shown], [self.widths[i] for i in shown], [self.columns[i] for i in shown])
        return "\n".join(texts)


class JsonArray:
    """A JSON array printed item by item as the items come: the bytes :func:`print_json` prints for the whole list,
    each item flushed as soon as it is added (the comma that follows it comes with the next). A context manager:
    the array is closed when the block ends without an error; after one it stays unfinished, so no JSON parser
    takes what was printed for the whole list."""

    def __init__(self) -> None:
        self.count = 0

    def add(self, items: Sequence[Any]) -> None:
        """Items, printed in one write and flushed."""
        parts = []
        for item in items:
            # Structural newlines only: json.dumps escapes every newline inside a string (not every line separator).
            text = "  " + json.dumps(to_plain(item), indent=2, ensure_ascii=False).replace("\n", "\n  ")
            parts.append(("[\n" if self.count == 0 else ",\n") + text)
            self.count += 1
        if parts:
            sys.stdout.write("".join(parts))
            sys.stdout.flush()

    def __enter__(self) -> JsonArray:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            print("\n]" if self.count else "[]", flush=True)
        elif self.count and not issubclass(exc_type, OSError):  # a closed pipe takes no more
            print(flush=True)  # the error that follows (``--json``: its own document) starts on a line of its own


def fit(columns: Sequence[Column], widths: Sequence[int], window: int) -> tuple[list[int], list[int]]:
    """Which columns a ``window`` columns wide shows, and how wide each is (module contract)."""
    shown, widths = list(range(len(columns))), list(widths)

    def need(i: int) -> int:
        return min(widths[i], _WRAP_MIN) if columns[i].wrap else widths[i]

    def total() -> int:
        return sum(need(i) for i in shown) + _GAP * (len(shown) - 1)

    for i in sorted((i for i, c in enumerate(columns) if c.drop is not None), key=lambda i: columns[i].drop or 0):
        if total() <= window:
            break
        shown.remove(i)
    for i in shown:
        if columns[i].min_width is not None and total() > window:
            narrowest = max(columns[i].min_width or 0, len(columns[i].header))
            widths[i] = max(narrowest, widths[i] - (total() - window))
    for i in shown:
        if columns[i].wrap:
            rest = window - (total() - need(i))
            widths[i] = min(widths[i], max(_WRAP_MIN, rest))
    return shown, widths


def _lines(texts: Sequence[str], widths: Sequence[int], columns: Sequence[Column]) -> list[str]:
    """One row as lines: clipped to the widths, a wrapping column's text continued on lines of its own."""
    parts: list[list[str]] = []
    for text, width, column in zip(texts, widths, columns, strict=True):
        if column.wrap:
            parts.append(textwrap.wrap(text, width) or [""])
        elif column.max_width is not None:
            parts.append([clip(text, width)])
        else:
            parts.append([text])
    lines = []
    for n in range(max(len(p) for p in parts)):
        cells = [(p[n] if n < len(p) else "") for p in parts]
        lines.append((" " * _GAP).join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    return lines


def limit_option(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--limit N`` (show the first N ``what`` only) to ``parser``."""
    parser.add_argument(
        "--limit", type=int, metavar="N", default=argparse.SUPPRESS, help=f"show the first N {what} only (default: all)"
    )


def limited(items: list[T], limit: int | None, total: int, what: str) -> list[T]:
    """The first ``limit`` items; says on stderr how many of ``total`` are shown when that is not all."""
    if limit is None or limit >= len(items):
        return items
    if limit < 0:
        raise InvalidInputError(f"--limit must be 0 or more, not {limit}")
    print(f"tierstore: showing {limit} of {total} {what} (--limit {limit})", file=sys.stderr)
    return items[:limit]


def print_fields(fields: Mapping[str, Any]) -> None:
    """``name  value`` lines, names aligned."""
    width = max((len(name) for name in fields), default=0)
    for name, value in fields.items():
        print(f"{name.ljust(width)}  {cell(value)}")


def label(field_name: str) -> str:
    """A field's name as a report's label: ``orphans_deleted`` as ``orphans deleted``."""
    return field_name.replace("_", " ")


def print_report(
    report: Any,
    *,
    labels: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
    hints: Mapping[str, str] | None = None,
    skip: Sequence[str] = (),
) -> None:
    """Every field of a report dataclass: a summary (numbers, and the length of lists), then a section per
    non-empty list, as a table when its items are dataclasses. Fields added to the report appear unasked."""
    labels, values, hints = labels or {}, values or {}, hints or {}
    fields = [f.name for f in dataclasses.fields(report) if f.name not in skip]
    summary = {}
    for name in fields:
        value = getattr(report, name)
        summary[labels.get(name, label(name))] = values.get(name, len(value) if isinstance(value, list) else value)
    print_fields(summary)
    for name in fields:
        items = getattr(report, name)
        if not isinstance(items, list) or not items:
            continue
        hint = f" ({hints[name]})" if name in hints else ""
        print(f"\n{labels.get(name, label(name))}{hint}:")
        print_items(items)


def print_items(items: Sequence[Any]) -> None:
    """A list from a report: a table of dataclasses, or one item a line."""
    if dataclasses.is_dataclass(items[0]):
        names = [f.name for f in dataclasses.fields(items[0])]
        rows = [{n: _item_cell(n, getattr(item, n)) for n in names} for item in items]
        print_table(rows, [_item_column(n, len(names) - i) for i, n in enumerate(names)])
        return
    for item in items:
        print(f"  {cell(item)}")


def _item_column(name: str, rank: int) -> Column:
    """Ids (keys, names, checkpoints) whole and kept; a detail wraps; the rest give way from the last one."""
    if name in ("key", "name", "checkpoint", "artifact_id"):
        return Column(name, label(name).upper())
    if name in ("detail", "message"):
        return Column(name, label(name).upper(), wrap=True)
    return Column(name, label(name).upper(), 80, drop=rank)


def _item_cell(name: str, value: Any) -> Any:
    return human_size(value) if name in ("size", "size_bytes") and isinstance(value, int) else value


def _rate(unit: str) -> ProgressColumn:
    """A column of items per second: the recent rate while running, the overall rate once finished."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Task) -> Text:
            if task.finished and task.finished_time:
                speed: float | None = task.completed / task.finished_time
            else:
                speed = task.speed
            if speed is None:
                return Text(f"? {unit}/s", style="progress.data.speed")
            figure = f"{speed:,.1f}" if speed < 10 else f"{speed:,.0f}"
            return Text(f"{figure} {unit}/s", style="progress.data.speed")

    return Rate()


class ProgressBar:
    """``bar(done, total)`` updates a bar on stderr, on a terminal only, e.g.
    ``checking ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 12/40 8.0 pages/s 0:00:01 ETA 0:00:03``.

    A context manager: the bar is drawn from entry to exit and cleared then, so what the command prints next (a
    listing, a report, a verdict) is all that stays on screen.
    """

    def __init__(self, label: str, unit: str = "objects", *, rows_below: bool = False) -> None:
        """``rows_below``: the command prints while the bar is drawn; when stdout is the bar's terminal, what it
        prints then goes above the bar (through the bar's console), not through it."""
        self.enabled = _is_terminal(sys.stderr)
        self._progress: Progress | None = None
        if not self.enabled:
            return
        from rich import progress
        from rich.console import Console

        self._progress = progress.Progress(
            progress.TextColumn(label),
            progress.BarColumn(),
            progress.MofNCompleteColumn(),
            _rate(unit),
            progress.TimeElapsedColumn(),
            progress.TextColumn("ETA"),
            progress.TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            redirect_stdout=rows_below and _same_terminal(sys.stdout, sys.stderr),
            redirect_stderr=False,
            transient=True,
        )
        self._task = self._progress.add_task(label, total=None)

    def __call__(self, done: int, total: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=done, total=total)

    def __enter__(self) -> ProgressBar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()


def _same_terminal(one: Any, other: Any) -> bool:
    try:
        return _is_terminal(one) and os.path.samestat(os.fstat(one.fileno()), os.fstat(other.fileno()))
    except (AttributeError, OSError, ValueError):
        return False


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
