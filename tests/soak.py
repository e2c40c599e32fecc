"""One knob for every attack's volume: ``TIERSTORE_SOAK=N`` multiplies each count by N (default 1, sized for CI)."""

from __future__ import annotations

import os


def factor() -> int:
    """The soak multiplier: a positive integer from ``TIERSTORE_SOAK``, 1 when unset."""
    raw = os.environ.get("TIERSTORE_SOAK", "").strip() or "1"
    value = int(raw)
    if value < 1:
        raise ValueError(f"TIERSTORE_SOAK must be a positive integer, not {raw!r}")
    return value


def scaled(count: int, override: str | None = None) -> int:
    """``count`` for a CI run, ``count * N`` under ``TIERSTORE_SOAK=N``; a set ``override`` variable (one of the
    per-attack variables earlier versions read, e.g. ``TIERSTORE_CRASHES``) gives the count itself instead."""
    raw = os.environ.get(override, "").strip() if override else ""
    return int(raw) if raw else count * factor()
