"""Storage providers, addressed by URL scheme: the one list of them, and what each declares about itself.

Contract:

* :data:`BUILT_IN` is the list: one line per provider, its URL scheme and the module declaring it. That module
  declares ``SCHEME``, a :class:`Scheme`: how to build the backend from a parsed :class:`Location` and the settings,
  and everything the rest of tierstore asks of a provider (its ``TIERSTORE_*`` settings, its extra and SDK, the
  SDK loggers that may carry credentials, the names ``tierstore`` re-exports, an example URL, a value that belongs
  in a setting rather than a URL). Everything that lists providers (settings, URL parsing and help, redaction,
  ``tierstore.__all__``) asks here, so adding a provider is its package plus one line of :data:`BUILT_IN`.
* A declaring module is light: importing it imports neither its SDK nor the shared cloud layer; the backend's own
  modules load when a backend is built or named. A missing extra is found from :attr:`Scheme.sdk` before that,
  and reported as :class:`~tierstore.errors.MissingDependencyError` naming the pip command.
* :func:`register` adds a third party's scheme (or replaces one) at run time: its URLs, its settings (read through
  ``TierstoreSettings.section`` when its backend is built) and its SDK loggers' scrubbing all hold from then on.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

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
    """What a storage provider declares: its URL scheme, how to build its backend, and what tierstore asks of it."""

    name: str
    """The URL scheme (``s3`` for ``s3://``)."""
    build: Callable[[Location, TierstoreSettings], StorageBackend]
    container: str | None = None
    """What the URL's first part names ("bucket", "container"); None when the scheme has none."""
    example: str = ""
    """The URL's form, for help and errors (``s3://bucket/prefix``); default ``NAME://``."""
    settings: Any = None
    """A pydantic model of the provider's own ``TIERSTORE_*`` settings (each field documented with its variable and
    default), merged into :class:`tierstore.config.TierstoreSettings`; an invalid one fails only this scheme."""
    extra: str | None = None
    """The pip extra that installs the SDK (``tierstore[s3]``)."""
    sdk: str | None = None
    """A module of the SDK, checked (never imported) before the backend's modules are."""
    package: str | None = None
    """The distribution that provides :attr:`sdk`, for the MissingDependencyError."""
    loggers: tuple[str, ...] = ()
    """The SDK's loggers (and its HTTP stack's), whose records are scrubbed of credentials."""
    exports: Mapping[str, str] = field(default_factory=dict)
    """Public names ``tierstore`` re-exports, with the module each comes from (``S3Backend``: its package)."""
    misplaced: Callable[[str], str | None] | None = None
    """Given a storage location as written, the advice when it is something of this provider's that belongs in a
    setting (an Azure connection string); None when it is not. Asked before the location is parsed."""
    locate: Callable[[str, str], Location] | None = None
    """The location of a URL from its netloc and unquoted path, where the generic ``container/prefix`` rule does not
    apply (``file://``)."""

    def form(self) -> str:
        """The URL's form, for help: :attr:`example`, else ``NAME://``."""
        return self.example or f"{self.name}://"


BUILT_IN: Final[Mapping[str, str]] = {
    "file": "tierstore.backends.filesystem",
    "memory": "tierstore.backends.memory",
    "s3": "tierstore.backends.s3.provider",
    "gs": "tierstore.backends.gcs.provider",
    "az": "tierstore.backends.azure.provider",
}
"""Every built-in provider: its URL scheme and the module declaring its :class:`Scheme` (``SCHEME``)."""

_registered: dict[str, Scheme] = {}
_registrations = 0


def register(scheme: Scheme) -> None:
    """Serve URLs of ``scheme.name`` with ``scheme.build`` (a third party's backend, or a replacement), from now
    on, whenever it is called: its URLs parse, its ``TIERSTORE_<SCHEME>_*`` settings are read when its backend is
    built (``section``; no attribute of settings read before), and its SDK loggers are scrubbed from the next
    record on."""
    global _registrations
    _registered[scheme.name] = scheme
    _registrations += 1


def registrations() -> int:
    """How many times :func:`register` was called: what caches of the registry's answers compare."""
    return _registrations


def names() -> list[str]:
    """Every known URL scheme, sorted."""
    return sorted({*BUILT_IN, *_registered})


def declared(name: str) -> Scheme:
    """The declaration of a known scheme, without checking its extra; ConfigurationError for an unknown one."""
    if name in _registered:
        return _registered[name]
    if name not in BUILT_IN:
        raise ConfigurationError(
            f"unknown storage URL scheme {name[:20]!r}: use {', '.join(f'{n}://' for n in names())}"
        )
    scheme: Scheme = importlib.import_module(BUILT_IN[name]).SCHEME
    _registered[name] = scheme
    return scheme


def every_scheme() -> list[Scheme]:
    """The declarations of every known scheme: the built-in ones in the order of :data:`BUILT_IN`, then the rest."""
    return [declared(name) for name in [*BUILT_IN, *sorted(set(_registered) - set(BUILT_IN))]]


def scheme_of(name: str) -> Scheme:
    """The declaration of a known scheme whose extra is installed: ConfigurationError for an unknown scheme,
    MissingDependencyError (naming the pip command) for a missing extra."""
    scheme = declared(name)
    if scheme.sdk is not None and not _importable(scheme.sdk):
        raise MissingDependencyError(scheme.extra or scheme.name, scheme.package or scheme.sdk.split(".")[0])
    return scheme


def url_forms() -> str:
    """The URL form of every scheme, for help texts: ``file:///path, memory://, s3://bucket/prefix, …``."""
    return ", ".join(scheme.form() for scheme in every_scheme())


def sdk_loggers() -> tuple[str, ...]:
    """Every provider's SDK loggers, whose records may carry credentials."""
    return tuple(dict.fromkeys(logger for scheme in every_scheme() for logger in scheme.loggers))


def exports() -> dict[str, str]:
    """The public names of every provider that ``tierstore`` re-exports, with their modules."""
    return {name: module for scheme in every_scheme() for name, module in scheme.exports.items()}


def settings_models() -> dict[str, Any]:
    """Each scheme's own settings model, by scheme (schemes with none left out)."""
    return {scheme.name: scheme.settings for scheme in every_scheme() if scheme.settings is not None}


def _importable(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False
