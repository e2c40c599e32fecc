"""No credential in any log line or error: what the cloud SDKs log at DEBUG, and the SDK errors tierstore chains.

Every cloud backend registers the credentials it holds or reads (:func:`register_secret`); :func:`install` puts one
log-record factory in place that rewrites each record of tierstore's own loggers and of the SDK loggers it drives
(each provider declares them: botocore, aiobotocore, urllib3, requests, google, azure, aiohttp, …) with those values
and the usual credential- bearing fields (``Authorization`` and security-token headers, SAS signatures, account
keys, private keys) replaced by ``***``. :func:`scrub_error` does the same to an SDK exception (and its causes);
tierstore never chains the SDK's exception itself (its attributes, e.g. an aiohttp error's request URL, may carry a
SAS), but :func:`sanitized`, a copy as text with credentials removed, and :func:`sanitize_chain` puts such copies
into a tierstore error's ``__cause__``/``__context__`` chain. :class:`Secret` holds a credential that no ``repr`` or
``str`` shows.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from typing import Any, Final

MASK: Final = "***"


def scrubbed_loggers() -> tuple[str, ...]:
    """Every logger whose records are scrubbed: tierstore's own hierarchy (a retry line names what the SDK raised)
    and each provider's SDK loggers, as the registry declares them (they log requests, headers included, at
    DEBUG)."""
    from tierstore.backends import registry

    return ("tierstore", *registry.sdk_loggers())


_MIN_SECRET: Final = 6
_PATTERNS: Final = (
    re.compile(r"(?i)(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)[^'\"\s,}&]+"),
    re.compile(r"(?i)(x-amz-security-token=)[^&\s'\"]+"),
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*b?['\"]?)[^'\"\n}]+"),
    re.compile(r"(?i)([?&]sig=)[^&\s'\"]+"),
    re.compile(r"(?i)(accountkey=)[^;\s'\"]+"),
    re.compile(r"(?i)(sharedaccesssignature=)[^;\s'\"]+"),
    re.compile(r"(?i)(\"?private_key\"?\s*[:=]\s*\")[^\"]+"),
    re.compile(r"(-----BEGIN [A-Z ]*PRIVATE KEY-----)[\s\S]*?(?=-----END)"),
    re.compile(r"(?i)(aws_secret_access_key['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+"),
    re.compile(r"(?i)(\"?(?:access|refresh|id)_token\"?\s*[:=]\s*\"?)[^\"\s,}]+"),
)

_secrets: set[str] = set()
_lock = threading.Lock()
_installed = False


def register_secret(value: object) -> None:
    """Never show ``value`` (a key, token, SAS or connection string) in SDK logs or chained errors."""
    if isinstance(value, str) and len(value) >= _MIN_SECRET:
        with _lock:
            _secrets.add(value)
            for part in value.replace("&", ";").split(";"):  # the parts of a connection string or SAS
                name, sep, inner = part.partition("=")
                if sep and len(inner) >= _MIN_SECRET and name.strip().lower() in _SECRET_PARTS:
                    _secrets.add(inner.strip())
    install()


_SECRET_PARTS: Final = frozenset({"accountkey", "sharedaccesssignature", "sig"})


def scrub(text: str) -> str:
    """``text`` with every registered credential and every credential-bearing field replaced by ``***``."""
    if not text:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def scrub_error(error: BaseException) -> BaseException:
    """``error`` with credentials removed from its arguments, and from those of its causes."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        with contextlib.suppress(AttributeError, TypeError):
            current.args = tuple(scrub(a) if isinstance(a, str) else a for a in current.args)
        current = current.__cause__ or current.__context__
    return error


class Secret:
    """A credential that no ``repr``, ``str`` or walk of public attributes shows; :meth:`reveal` hands it to an SDK."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register_secret(value)

    @classmethod
    def wrap(cls, value: str | None) -> Secret | None:
        """``value`` as a Secret (None stays None)."""
        return None if value is None else cls(value)

    def reveal(self) -> str:
        """The credential itself, for the SDK that sends it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class ScrubbedError(Exception):
    """What an SDK raised, as its type and text with credentials removed: chained by tierstore in its stead."""


def sanitized(error: BaseException) -> ScrubbedError:
    """A copy of ``error`` and of its ``__cause__``/``__context__`` chain as text, credentials removed; the
    traceback (code locations, no values) is kept for debugging."""
    copies: dict[int, ScrubbedError] = {}

    def copy(current: BaseException) -> ScrubbedError:
        if isinstance(current, ScrubbedError):
            return current
        if id(current) in copies:
            return copies[id(current)]
        try:
            text = scrub(str(current))
        except Exception:  # noqa: BLE001 - a text that cannot be made is withheld, not leaked
            text = "(message withheld)"
        made = copies[id(current)] = ScrubbedError(f"{type(current).__module__}.{type(current).__qualname__}: {text}")
        made.__traceback__ = current.__traceback__
        made.__cause__ = None if current.__cause__ is None else copy(current.__cause__)
        made.__context__ = None if current.__context__ is None else copy(current.__context__)
        made.__suppress_context__ = current.__suppress_context__
        return made

    return copy(error)


def sanitize_chain(error: BaseException, keep: type[BaseException]) -> None:
    """Replace every exception in ``error``'s chain that is not a ``keep`` (tierstore's own) by its sanitized copy."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and isinstance(current, keep):
        seen.add(id(current))
        for link in ("__cause__", "__context__"):
            linked = getattr(current, link)
            if linked is not None and not isinstance(linked, keep):
                setattr(current, link, sanitized(linked))
        current = current.__cause__ or current.__context__


def install() -> None:
    """Scrub every record of the SDK loggers, however they are configured (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        make = logging.getLogRecordFactory()
        from tierstore.backends import registry

        known: list[tuple[int, tuple[str, ...]]] = [(registry.registrations(), scrubbed_loggers())]

        def scrubbing(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = make(*args, **kwargs)
            if known[0][0] != registry.registrations():  # a provider registered since: its loggers too
                known[0] = (registry.registrations(), scrubbed_loggers())
            if record.name.startswith(known[0][1]):
                try:
                    record.msg, record.args = scrub(record.getMessage()), ()
                except Exception:  # noqa: BLE001 - a message that cannot be formatted is dropped, not leaked
                    record.msg, record.args = "(log message withheld: it could not be checked for credentials)", ()
            return record

        logging.setLogRecordFactory(scrubbing)
        _installed = True
