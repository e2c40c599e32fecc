"""Durations on the command line: the one rule of settings (:func:`tierstore.setting_values.parse_duration`), its
refusal an argparse usage error (exit 2) that says the rule."""

from __future__ import annotations

import argparse
from datetime import timedelta

from tierstore.errors import ConfigurationError
from tierstore.setting_values import parse_duration as parse_setting


def parse_duration(text: str) -> timedelta:
    """``90``, ``30s``, ``15m``, ``1h``, ``2d``, ``1w``: the rule every duration setting follows too."""
    try:
        return parse_setting(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(f"invalid duration {text[:40]!r}: {exc}") from None
