"""Terminal output for the CLI, stdlib only: aligned tables, JSON for scripts, and a progress bar.

The progress bar draws on stderr only when stderr is a terminal, so pipes and log files stay clean.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel

Column = tuple[str, str]
"""(field name in each row, header shown)."""


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


def print_json(value: Any, out: IO[str] | None = None) -> None:
    print(json.dumps(to_plain(value), indent=2, ensure_ascii=False), file=out or sys.stdout)


def cell(value: Any) -> str:
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
    if size is None:
        return "-"
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], out: IO[str] | None = None) -> None:
    """Rows as left-aligned columns under a header; nothing but the header when there are no rows."""
    out = out or sys.stdout
    cells = [[cell(row.get(name)) for name, _ in columns] for row in rows]
    widths = [max([len(header)] + [len(r[i]) for r in cells]) for i, (_, header) in enumerate(columns)]
    lines = [[header for _, header in columns], *cells]
    for line in lines:
        print("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip(), file=out)


def print_fields(fields: Mapping[str, Any], out: IO[str] | None = None) -> None:
    """``name: value`` lines, names aligned."""
    out = out or sys.stdout
    width = max((len(name) for name in fields), default=0)
    for name, value in fields.items():
        print(f"{name.ljust(width)}  {cell(value)}", file=out)


class ProgressBar:
    """``bar(done, total)`` redraws a one-line bar on stderr, at most every ``interval`` seconds, on a TTY only."""

    def __init__(self, label: str, *, stream: IO[str] | None = None, interval: float = 0.1) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_tty(self.stream)
        self.interval = interval
        self._last_draw = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last_draw < self.interval:
            return
        self._last_draw = now
        self._draw(done, total)

    def _draw(self, done: int, total: int) -> None:
        columns = shutil.get_terminal_size((80, 24)).columns
        counter = f" {done}/{total}"
        room = max(10, columns - len(self.label) - len(counter) - 4)
        filled = room if total <= 0 else min(room, room * done // total)
        bar = "#" * filled + "-" * (room - filled)
        self.stream.write(f"\r{self.label} [{bar}]{counter}")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """End the bar's line, if one was drawn."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _is_tty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
