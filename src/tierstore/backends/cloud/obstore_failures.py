"""What a failed obstore request was, the same on every cloud that uses obstore (S3, Azure): one
:class:`~tierstore.backends.cloud.failure.Failure` per exception obstore raised.

Contract:

* obstore (object_store underneath) reports the service's answer and the transport failure in its message text
  (``... status code: 412 ... <Code>PreconditionFailed</Code>``, ``HttpError { kind: Connect ...``). An answer is
  read by the cloud's own table (the ``answered`` function each cloud passes: S3's error codes, Azure's
  ``x-ms-error-code``); where that table knows neither code nor status, obstore's error class decides.
* Without an answer: a connection that never opened was certainly not applied; a timeout, a dropped connection or
  a body cut short may have been.
* obstore's error classes, decided once: ``AlreadyExistsError``/``PreconditionError`` are a conflict, a
  ``NotFoundError`` or the builtin ``FileNotFoundError`` a missing object, ``PermissionDeniedError``/
  ``UnauthenticatedError`` a refusal, ``UnknownConfigurationKeyError``/``NotSupportedError`` the configuration.
  ``InvalidPathError`` is ``configuration`` (ConfigurationError, with the fix ``TIERSTORE_CLIENT=sdk``): obstore
  raises it for an object name its path type cannot hold (an empty segment, ``.`` or ``..``, a control character).
  A listing never lets it out: it continues through the SDK instead
  (:func:`tierstore.backends.cloud.obstore_calls.list_page`), and tierstore sends no such name itself (its names
  and prefixes are checked before any request), so this reading is a last resort.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from tierstore.backends.cloud.failure import Failure

Answered = Callable[[int | None, str], Failure]
"""A cloud's reading of an answer: its HTTP status (None when only a code was given) and its error code."""

_STATUS: Final = re.compile(r"status code: (\d{3})")
_CODE: Final = re.compile(r"<Code>([A-Za-z0-9.]+)</Code>")
_TRANSPORT: Final = re.compile(r"HttpError \{\s*kind: (\w+)")
_BY_CLASS: Final[dict[str, Failure]] = {
    "AlreadyExistsError": Failure("conflict", "no", 412),
    "PreconditionError": Failure("conflict", "no", 412),
    "NotFoundError": Failure("not-found", "no", 404),
    "PermissionDeniedError": Failure("denied", "no", 403),
    "UnauthenticatedError": Failure("denied", "no", 401),
    "UnknownConfigurationKeyError": Failure("configuration", "no", code="UnknownConfigurationKeyError"),
    "NotSupportedError": Failure("configuration", "no", code="NotSupportedError"),
    "InvalidPathError": Failure("configuration", "no", code="InvalidPathError"),
}


def raised_by_obstore(error: BaseException) -> bool:
    """Is ``error`` one of obstore's (its own classes, or the builtin FileNotFoundError it raises)?"""
    return type(error).__module__.startswith("obstore") or isinstance(error, FileNotFoundError)


def classify(error: BaseException, answered: Answered) -> Failure:
    """The failure an obstore exception means; ``answered`` reads the service's answer the cloud's way."""
    text = str(error)
    status_match, code_match = _STATUS.search(text), _CODE.search(text)
    if status_match or code_match:
        status = int(status_match.group(1)) if status_match else None
        failure = answered(status, code_match.group(1) if code_match else "")
        if failure.kind != "unknown":
            return failure
    name = type(error).__name__
    if name in _BY_CLASS:
        return _BY_CLASS[name]
    if isinstance(error, FileNotFoundError):
        return Failure("not-found", "no", 404)
    transport = _TRANSPORT.search(text)
    if transport is not None:
        kind = transport.group(1)
        if kind == "Connect":
            return Failure("network", "no", code="connect")
        if kind == "Timeout":
            return Failure("timeout", "maybe", code="timeout")
        return Failure("network", "maybe", code=kind.lower())  # "request": dropped before an answer
    if "body error" in text:
        return Failure("network", "maybe", code="body")
    if "redirect without LOCATION" in text:  # S3's 301 to a request sent to another region than the bucket's
        return Failure("configuration", "no", 301, "PermanentRedirect")
    if "Timeout" in text or "timed out" in text:
        return Failure("timeout", "maybe", code="timeout")
    return Failure("unknown", "maybe", code=name)


def dropped_before_an_answer(failure: Failure) -> bool:
    """Did the connection drop after the request went out and before any answer (obstore's ``Request`` kind)?"""
    return failure.code == "request"
