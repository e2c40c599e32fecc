"""No credential in any log line or error: what the cloud SDKs log at DEBUG, and the SDK errors tierstore chains.

Every cloud backend registers the credentials it holds or reads (:func:`register_secret`); :func:`install` puts
one log-record factory in place that rewrites each record of the SDK loggers tierstore drives (botocore,
aiobotocore, urllib3, requests, google, azure, aiohttp) with those values and the usual credential-bearing
fields (``Authorization`` and security-token headers, SAS signatures, account keys, private keys) replaced by
``***``. :func:`scrub_error` does the same to an SDK exception (and its causes) before tierstore chains it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from typing import Any, Final

MASK: Final = "***"
SDK_LOGGERS: Final = ("botocore", "aiobotocore", "boto3", "urllib3", "requests", "google", "azure", "aiohttp")
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


def install() -> None:
    """Scrub every record of the SDK loggers, however they are configured (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        make = logging.getLogRecordFactory()

        def scrubbing(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = make(*args, **kwargs)
            if record.name.startswith(SDK_LOGGERS):
                try:
                    record.msg, record.args = scrub(record.getMessage()), ()
                except Exception:  # noqa: BLE001 - a message that cannot be formatted is dropped, not leaked
                    record.msg, record.args = "(log message withheld: it could not be checked for credentials)", ()
            return record

        logging.setLogRecordFactory(scrubbing)
        _installed = True
