"""What a failed S3 request was, from whatever aioboto3 or obstore raised: one :class:`Failure` per exception.

* An answer from S3 is read by its HTTP status and S3 error code, through one table shared by both data paths:
  ``InvalidObjectState`` and ``ObjectNotInActiveTierError`` are an archived object, ``NoSuchBucket`` a missing
  bucket, 412 ``PreconditionFailed`` a create-if-absent that met an object (or a copy whose source changed), 409
  ``ConditionalRequestConflict`` a racing conditional write (retried), ``SlowDown``/``ServiceUnavailable``/
  throttling answers refusals that did not take effect.
* Without an answer: only a connection that could not be opened is certainly not applied. A reset, a lost or
  truncated answer, or a timeout after the request went out may have taken effect.
* What obstore raised is classified by :mod:`tierstore.backends.cloud.obstore_failures`, with this table.
* Credentials that cannot be had (none, partial, an unknown profile, an SSO session to sign in again, a source
  giving only expired ones) and a request signed for another region than the bucket's are ``configuration``.
"""

from __future__ import annotations

import socket
from typing import Any, Final

from tierstore.backends.cloud import obstore_failures
from tierstore.backends.cloud.failure import Applied, Failure, FailureKind, from_status

_CODES: Final[dict[str, tuple[FailureKind, Applied]]] = {
    "NoSuchKey": ("not-found", "no"),
    "NotFound": ("not-found", "no"),
    "NoSuchUpload": ("not-found", "no"),
    "NoSuchBucket": ("no-container", "no"),
    "InvalidObjectState": ("archived", "no"),
    "ObjectNotInActiveTierError": ("archived", "no"),
    "PreconditionFailed": ("conflict", "no"),
    "InvalidRange": ("range", "no"),
    "ConditionalRequestConflict": ("throttled", "no"),
    "OperationAborted": ("throttled", "no"),
    "SlowDown": ("throttled", "no"),
    "Throttling": ("throttled", "no"),
    "ThrottlingException": ("throttled", "no"),
    "RequestLimitExceeded": ("throttled", "no"),
    "TooManyRequests": ("throttled", "no"),
    "TooManyRequestsException": ("throttled", "no"),
    "ServiceUnavailable": ("server", "no"),
    "InternalError": ("server", "maybe"),
    "RequestTimeout": ("timeout", "maybe"),
    "AccessDenied": ("denied", "no"),
    "AllAccessDisabled": ("denied", "no"),
    "InvalidAccessKeyId": ("denied", "no"),
    "SignatureDoesNotMatch": ("denied", "no"),
    "ExpiredToken": ("denied", "no"),
    "InvalidToken": ("denied", "no"),
    "AuthorizationHeaderMalformed": ("configuration", "no"),  # signed for another region than the bucket's
    "PermanentRedirect": ("configuration", "no"),
    "InvalidArgument": ("invalid", "no"),
    "InvalidRequest": ("invalid", "no"),
    "InvalidTag": ("invalid", "no"),
    "InvalidStorageClass": ("invalid", "no"),
    "MalformedXML": ("invalid", "no"),
    "MetadataTooLarge": ("invalid", "no"),
    "EntityTooLarge": ("invalid", "no"),
    "KeyTooLongError": ("invalid", "no"),
}


def from_answer(status: int | None, code: str) -> Failure:
    """The failure S3 answered with: its error code where the table knows it, else its HTTP status."""
    if code in _CODES:
        kind, applied = _CODES[code]
        return Failure(kind, applied, status, code)
    if status:
        return from_status(status, code)
    return Failure("unknown", "maybe", None, code)


# -- aioboto3 --------------------------------------------------------------------------------------------------

_CONFIGURATION_ERRORS: Final = (
    "NoCredentialsError",
    "PartialCredentialsError",
    "CredentialRetrievalError",
    "NoRegionError",
    "ProfileNotFound",
    "InvalidConfigError",
    "UnknownCredentialError",
    "SSLError",
    "ProxyConnectionError",
    "InvalidEndpointConfigurationError",
    "UnauthorizedSSOTokenError",
    "SSOTokenLoadError",
    "TokenRetrievalError",
)
_STILL_EXPIRED: Final = "refreshed credentials are still expired"
"""botocore's RuntimeError when a credential source (credential_process, SSO) gives only expired credentials."""


def classify(error: BaseException) -> Failure:
    """Classify an exception aioboto3 (botocore, aiobotocore, aiohttp) raised."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0) or None
        return from_answer(status, str(response.get("Error", {}).get("Code") or ""))
    names = {cls.__name__ for cls in type(error).__mro__}
    if names & set(_CONFIGURATION_ERRORS):
        return Failure("configuration", "no", code=type(error).__name__)
    if isinstance(error, RuntimeError) and _STILL_EXPIRED in str(error):
        return Failure("configuration", "no", code="ExpiredCredentials")
    if "ParamValidationError" in names:
        return Failure("invalid", "no", code=type(error).__name__)
    if "FlexibleChecksumError" in names:
        return Failure("corrupt", "maybe", code=type(error).__name__)
    if "ConnectTimeoutError" in names or _failed_to_connect(error):
        return Failure("network", "no", code=type(error).__name__)
    if "ReadTimeoutError" in names or isinstance(error, TimeoutError) or "ServerTimeoutError" in names:
        return Failure("timeout", "maybe", code=type(error).__name__)
    if _is_network_error(error, names):
        return Failure("network", "maybe", code=type(error).__name__)
    return Failure("unknown", "maybe", code=type(error).__name__)


def _failed_to_connect(error: BaseException) -> bool:
    """aiobotocore raises EndpointConnectionError for a failed connect and for a reset after sending alike: the
    aiohttp error it wraps tells them apart."""
    cause: Any = error
    if type(error).__name__ == "EndpointConnectionError":
        cause = getattr(error, "kwargs", {}).get("error")
    names = {cls.__name__ for cls in type(cause).__mro__}
    return "ClientConnectorError" in names or isinstance(cause, socket.gaierror)


def _is_network_error(error: BaseException, names: set[str]) -> bool:
    botocore_network = {"ConnectionError", "HTTPClientError", "IncompleteReadError", "ResponseStreamingError"}
    if names & botocore_network and type(error).__module__.startswith(("botocore", "aiobotocore")):
        return True
    return isinstance(error, ConnectionError) or type(error).__module__.startswith("aiohttp")


# -- obstore ---------------------------------------------------------------------------------------------------


def classify_obstore(error: BaseException) -> Failure:
    """Classify an exception obstore raised, reading S3's answer by :func:`from_answer`."""
    return obstore_failures.classify(error, from_answer)
