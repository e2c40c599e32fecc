"""Lazy imports of the optional SDKs: a missing extra becomes MissingDependencyError, not an import-time crash."""

from __future__ import annotations

import importlib
from types import ModuleType

from tierstore.errors import MissingDependencyError


def require(module: str, *, extra: str, package: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(extra, package) from exc
