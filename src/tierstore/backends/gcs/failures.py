"""What a failed google-cloud-storage call was: every exception the library (and requests and google-auth under
it) raises, as one :class:`~tierstore.backends.cloud.failure.Failure`.

* An answer from the service (``GoogleAPICallError``, or the media layer's ``InvalidResponse``) is classified by its
  HTTP status and the reason of its first error; :class:`BucketMissing` is a 404 to a write, which on GCS only
  means the bucket does not exist.
* No answer: a connection that could not be opened (refused, unresolvable, or not opened in time) certainly did
  not reach the service (``applied="no"``); one reset, cut short or silent after the request was sent may have.
* A download whose bytes fail their CRC32C/MD5 is ``corrupt``; missing credentials, or a credentials file that
  cannot be used (told apart by google-auth's words), are ``configuration``, a refused token refresh ``denied``, a
  token endpoint that cannot be reached ``network``.

The SDK is imported here only when a failure is classified, by which time it is loaded.
"""

from __future__ import annotations

from typing import Any

from tierstore.backends.cloud.failure import Failure, from_status
from tierstore.backends.gcs.calls import Aborted

_NONE_FOUND = "default credentials were not found"
"""google-auth's words when no source of Application Default Credentials had any (other DefaultCredentialsErrors
are about a credentials file it found: missing, not JSON, not a complete key)."""


class BucketMissing(Exception):
    """A write answered 404: the bucket is not there (a missing object never fails a write)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"HTTP 404 {_reason(cause)}".strip())


def classify(error: BaseException) -> Failure:
    """What a failed GCS request was, from what google-cloud-storage, google-auth or requests raised."""
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth
    from google.cloud.storage import exceptions as storage
    from requests import exceptions as http

    if isinstance(error, BucketMissing):
        return Failure("no-container", "no", 404, "notFound")
    if isinstance(error, Aborted):
        return Failure("network", "no", code="aborted")
    if isinstance(error, api.GoogleAPICallError) and isinstance(error.code, int):
        return from_status(error.code, _reason(error))
    if isinstance(error, storage.InvalidResponse):
        status = getattr(getattr(error, "response", None), "status_code", None)
        return from_status(status) if isinstance(status, int) else Failure("unknown")
    if isinstance(error, storage.DataCorruption):
        return Failure("corrupt")
    if isinstance(error, auth.DefaultCredentialsError) and _NONE_FOUND not in str(error):
        return Failure("configuration", "no", code="credentials file")  # found one, but cannot use it
    if isinstance(error, auth.DefaultCredentialsError | auth.MalformedError):
        return Failure("configuration", "no", code=type(error).__name__)
    if isinstance(error, auth.RefreshError):
        # A token endpoint that answered "no" is a refusal; one that could not be reached is a network failure.
        if getattr(error, "retryable", False) or _connect_failed(error):
            return Failure("network", "no", code="token refresh")
        return Failure("denied", "no", code="token refresh")
    if isinstance(error, auth.TransportError):
        return Failure("network", "no", code="token refresh")
    if _connect_failed(error):
        return Failure("timeout" if isinstance(error, http.ConnectTimeout) else "network", "no")
    if isinstance(error, http.Timeout):
        return Failure("timeout")
    if isinstance(error, http.ConnectionError | http.ChunkedEncodingError | http.ContentDecodingError | OSError):
        return Failure("network")
    return Failure("unknown")


def _reason(error: BaseException) -> str:
    errors: Any = getattr(error, "errors", None)
    if isinstance(errors, list | tuple) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("reason") or "")
    return ""


def _connect_failed(error: BaseException) -> bool:
    """Did the request fail before a connection to the service was open (so it certainly was not sent)?"""
    from urllib3 import exceptions as pool

    seen: set[int] = set()
    pending: list[object] = [error]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, pool.ConnectTimeoutError | ConnectionRefusedError):
            return True
        pending += [*current.args, getattr(current, "reason", None), current.__cause__, current.__context__]
    return False
