"""Backends addressed by URL scheme.

Each backend module declares ``SCHEME``, a :class:`Scheme` naming the URL scheme it serves and the function
that builds it from a parsed :class:`Location` and the settings. The modules are imported only when a URL of
their scheme is used, and importing one imports no SDK: a missing extra is found before the import, from
:attr:`Scheme.sdk`, and reported as :class:`~tierstore.errors.MissingDependencyError` naming the pip command.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tierstore.errors import ConfigurationError, MissingDependencyError

if TYPE_CHECKING:
    from tierstore.backends.base import StorageBackend
    from tierstore.config import TierstoreSettings


@dataclass(frozen=True, slots=True)
class Location:
    """A parsed storage URL: ``scheme://container/path``."""

    scheme: str
    container: str
    """The bucket or container (empty for ``file`` and ``memory``)."""
    path: str
    """The rest: a prefix inside the container, or the directory of a ``file`` URL."""


@dataclass(frozen=True, slots=True)
class Scheme:
    name: str
    build: Callable[[Location, TierstoreSettings], StorageBackend]
    container: str | None = None
    """What the URL's first part names ("bucket", "container"); None when the scheme has none."""


_MODULES: Final = {
    "file": ("tierstore.backends.filesystem", None, None, None),
    "memory": ("tierstore.backends.memory", None, None, None),
    "s3": ("tierstore.backends.s3", "s3", "aioboto3", "aioboto3"),
    "gs": ("tierstore.backends.gcs", "gcs", "google.cloud.storage", "google-cloud-storage"),
    "az": ("tierstore.backends.azure", "azure", "azure.storage.blob", "azure-storage-blob"),
}
"""The built-in schemes: the module declaring each, and its extra (checked before the module is imported)."""

_registered: dict[str, Scheme] = {}


def register(scheme: Scheme) -> None:
    """Serve URLs of ``scheme.name`` with ``scheme.build`` (a third party's backend, or a replacement)."""
    _registered[scheme.name] = scheme


def names() -> list[str]:
    return sorted({*_MODULES, *_registered})


def scheme_of(name: str) -> Scheme:
    """The declaration of a known scheme (importing its module, never its SDK); ConfigurationError otherwise."""
    if name in _MODULES:
        module, extra, sdk, package = _MODULES[name]
        if extra is not None and sdk is not None and package is not None and not _importable(sdk):
            raise MissingDependencyError(extra, package)
    if name in _registered:
        return _registered[name]
    if name not in _MODULES:
        raise ConfigurationError(
            f"unknown storage URL scheme {name[:20]!r}: use {', '.join(f'{n}://' for n in names())}"
        )
    declared: Scheme = importlib.import_module(module).SCHEME
    _registered[name] = declared
    return declared


def _importable(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False
