"""The values settings take, parsed by one rule each wherever they are written (a variable, ``.env``, the command
line): durations, local directories, the tier-to-storage-class mapping, and the default data directory.

Contract: a mistake raises :class:`~tierstore.errors.ConfigurationError` that never echoes the value given (it may
be a secret pasted in the wrong place).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from tierstore.enums import StorageTier
from tierstore.errors import ConfigurationError

_CONFIGURABLE_TIERS = (StorageTier.L2, StorageTier.L3, StorageTier.L4)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?")
_UNIT_SECONDS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
LONGEST_DURATION: Final = timedelta(days=36_500)
"""A hundred years: the longest duration a setting or option takes."""


def parse_duration(text: str) -> timedelta:
    """The one rule for durations, in settings and on the command line: seconds (``90``, ``2.5``), or a number with a
    unit: ``ms``, ``s``, ``m``, ``h``, ``d``, ``w`` (``250ms``, ``10s``, ``5m``, ``1h``, ``2d``, ``1w``). The message
    never echoes the text (a setting's value stays unshown)."""
    match = _DURATION.fullmatch(text.strip().lower()) if isinstance(text, str) else None
    if not match:
        raise ConfigurationError("not a duration: use seconds or a number with a unit, e.g. 250ms, 10s, 5m, 1h, 2d")
    seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    if not seconds <= LONGEST_DURATION.total_seconds():  # beyond it, a time minus the duration would overflow
        raise ConfigurationError(f"a duration is at most {LONGEST_DURATION.days} days")
    return timedelta(seconds=seconds)


def local_directory(value: str | os.PathLike[str], variable: str) -> Path:
    """A directory named in a setting, by the rule for paths in ``TIERSTORE_URL``: absolute, ``~/...``, ``./...`` or
    ``../...`` (a bare word could be a typo as well as a directory), resolved against the working directory now."""
    text = os.fspath(value)
    if not text.startswith(("/", "~", "./", "../")) and text not in (".", ".."):
        raise ConfigurationError(
            f"{variable} must be an absolute path, ~/..., ./... or ../... (a bare word could be a typo)"
        )
    return Path(text).expanduser().absolute()


def default_data_dir() -> Path:
    """``$TIERSTORE_DATA_DIR``, else ``$XDG_DATA_HOME/tierstore``, else ``~/.local/share/tierstore``."""
    if explicit := os.environ.get("TIERSTORE_DATA_DIR"):
        return local_directory(explicit, "TIERSTORE_DATA_DIR")
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "tierstore"


def parse_storage_classes(value: str) -> dict[StorageTier, str]:
    """``"L3=STANDARD,L4=DEEP_ARCHIVE"`` -> ``{L3: "STANDARD", L4: "DEEP_ARCHIVE"}``; tiers L2-L4 only."""
    mapping: dict[StorageTier, str] = {}
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        tier_name, sep, storage_class = (s.strip() for s in item.partition("="))
        if not sep:
            raise ConfigurationError("a storage class entry is not TIER=CLASS (e.g. L4=DEEP_ARCHIVE)")
        mapping[_configurable_tier(tier_name)] = storage_class
    return checked_storage_classes(mapping)


def _configurable_tier(name: Any) -> StorageTier:
    try:
        tier = StorageTier(name.upper() if isinstance(name, str) else name)
    except ValueError:
        raise ConfigurationError("unknown tier in the storage class mapping: use L2, L3 or L4") from None
    if tier not in _CONFIGURABLE_TIERS:
        raise ConfigurationError(f"tier {tier.value} lives in the process and has no storage class: use L2, L3 or L4")
    return tier


def checked_storage_classes(mapping: Mapping[Any, Any]) -> dict[StorageTier, str]:
    """A tier-to-storage-class mapping given as a mapping (in Python), checked as the text form is."""
    checked: dict[StorageTier, str] = {}
    for tier_name, storage_class in mapping.items():
        tier = _configurable_tier(tier_name)
        if not isinstance(storage_class, str) or not storage_class.strip():
            raise ConfigurationError(f"the storage class for {tier.value} is empty")
        checked[tier] = storage_class.strip()
    return checked
