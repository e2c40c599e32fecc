"""Storage locations as written in ``TIERSTORE_URL``, on the command line or in Python: parsed strictly into a
:class:`~tierstore.backends.registry.Location`, and shown without credentials.

Contract: whatever looks like a URL of a known scheme must be a well-formed one (no user info, query, fragment or
port; a container where the scheme has one; no empty path segment), a bare path must be unambiguous (absolute,
``~/``, ``./`` or ``../``), and a value a provider recognises as belonging in a setting (an Azure connection string)
is refused with its advice. The schemes, their URL forms and their own parsing come from
:mod:`tierstore.backends.registry`. No error echoes more of the value than its scheme, and a scheme only when it is a
known one or a short word before ``://`` (``https``): the value may be a credential (a key, a token, a SAS). A
well-formed URL's container is the backend's to check, and its error names it.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from tierstore.backends import registry
from tierstore.backends.registry import Location, names, scheme_of
from tierstore.errors import ConfigurationError

_SHOWN_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,9}")
"""A scheme an error may name back (``https``); anything longer or odder is left unsaid: it may start a secret."""


def redact_url(url: str) -> str:
    """The URL without user info, query and fragment: whatever credentials a URL may carry."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return url.split("://", 1)[0] + "://…"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def parse_location(value: str) -> Location:
    """A storage URL or a local directory, parsed strictly: whatever looks like a URL of a known scheme must be a
    well-formed one, and a bare path must be unambiguous (absolute, ``~/...``, ``./...`` or ``../...``).

    Nothing of ``value`` beyond its scheme is echoed in errors, since a mistaken value may be a credential.
    """
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError("the storage location is empty")
    for scheme in registry.every_scheme():
        advice = scheme.misplaced(value) if scheme.misplaced is not None else None
        if advice is not None:
            raise ConfigurationError(advice)
    head, sep, _rest = value.partition("://")
    if sep:
        written = head.lower()
        if written not in names():
            # Only what is plainly a scheme is named back: a short word, never a piece of a pasted secret.
            shown = f" {written!r}" if _SHOWN_SCHEME.fullmatch(written) else ""
            raise ConfigurationError(f"unknown storage URL scheme{shown}: use {_schemes()}")
        return _parse_url(written, value)
    lowered = value.lower()
    for name in names():
        if lowered.startswith((f"{name}:", f"{name}//")):
            raise ConfigurationError(
                f"malformed {name}:// URL (it needs '://', as in {_example(name)}); refusing to read it as a path"
            )
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", value):
        raise ConfigurationError(
            f"the storage location is neither a URL of a known scheme ({_schemes()}) nor a path (absolute, "
            "./relative or file:///path)"
        )
    if not value.startswith(("/", "~", "./", "../")) and value not in (".", ".."):
        raise ConfigurationError(
            f"ambiguous storage location: write a directory as an absolute path, ./relative or file:///path, or a "
            f"URL ({_schemes()})"
        )
    return Location("file", "", value)


def _parse_url(scheme: str, url: str) -> Location:
    known = scheme_of(scheme)  # unknown scheme or missing extra: refused here
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"malformed {scheme}:// URL") from None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ConfigurationError(
            f"{scheme}:// URLs must not carry credentials: leave them to the SDK's own configuration"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"{scheme}:// URLs take no query or fragment: use TIERSTORE_* settings instead")
    if port is not None or parts.netloc.endswith(":"):
        raise ConfigurationError(f"{scheme}:// URLs take no port: set the endpoint in the settings")
    path = unquote(parts.path)
    if known.locate is not None:
        return known.locate(parts.netloc, path)
    if known.container is None:
        return Location(scheme, "", path)
    if not parts.netloc:
        raise ConfigurationError(f"{scheme}:// URLs need a {known.container}: {_example(scheme)}")
    if "//" in path:
        raise ConfigurationError(
            f"{scheme}:// URLs take no empty path segment ('//'): the prefix would not be the one meant"
        )
    # The netloc as written, not urlsplit's lowercased hostname: a bucket name is never silently changed.
    return Location(scheme, parts.netloc, path.strip("/"))


def _example(scheme: str) -> str:
    return registry.declared(scheme).form()


def _schemes() -> str:
    return ", ".join(f"{name}://" for name in names())
