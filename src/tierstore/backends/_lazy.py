"""Names a package exports from its modules, imported on first use: a provider package whose ``__init__`` stays
light, so that reading its declaration (``provider``) or settings never loads its backend or the cloud layer."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def exports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: each of ``names`` from its module (relative to the package) on
    first use, cached in the package; AttributeError for any other name (so submodules import as usual)."""

    def getattr_(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        vars(importlib.import_module(package))[name] = value
        return value

    return getattr_
