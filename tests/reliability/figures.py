"""Figures the reliability tests measured, collected for the README's "Guarantees" section.

Each test calls :func:`record`; at the end of the session ``tests/conftest.py`` prints the totals and writes
them to ``.reliability/figures.json``.
"""

from __future__ import annotations

from collections import defaultdict

FIGURES: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))


def record(figure: str, count: int, rig: str) -> None:
    FIGURES[figure][rig] += count
