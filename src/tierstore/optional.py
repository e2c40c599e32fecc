"""Lazy imports of optional packages: a missing extra becomes MissingDependencyError, not an import-time crash.

A neutral module (it imports only :mod:`tierstore.errors`), so the codec (zstd) and the cloud adapters (their SDKs)
share it without the codec importing from ``backends/``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from tierstore.errors import MissingDependencyError


def require(module: str, *, extra: str, package: str) -> ModuleType:
    """``import module``, or MissingDependencyError naming ``pip install 'tierstore[extra]'`` for ``package``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(extra, package) from exc
