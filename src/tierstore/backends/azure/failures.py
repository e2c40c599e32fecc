"""What a failed Azure request was: :func:`classify` turns whatever azure-storage-blob (with azure-core and aiohttp
under it) or obstore raised into a :class:`~tierstore.backends.cloud.failure.Failure`.

Contract: the service's answer (HTTP status and ``x-ms-error-code``) decides where there is one. Azure's own codes
refine the status, and each of them refuses the request: ``BlobArchived`` is archived, not a conflict;
``ContainerNotFound`` is a missing container, not a missing blob; ``ServerBusy`` is throttling. No token from a token
credential (on either path) is ``configuration`` when no credential was there, ``denied`` when one was refused.
``applied="no"`` only for such refusals, a connection that never opened and a connect timeout. Anything
unrecognised is "unknown".
"""

from __future__ import annotations

from typing import Final

from tierstore.backends.cloud import obstore_failures
from tierstore.backends.cloud.failure import Failure, FailureKind, from_status

_KIND_OF_CODE: Final[dict[str, FailureKind]] = {
    "BlobNotFound": "not-found",
    "ContainerNotFound": "no-container",
    "ContainerBeingDeleted": "no-container",
    "BlobArchived": "archived",
    "BlobBeingRehydrated": "archived",
    "BlobAlreadyExists": "conflict",
    "ConditionNotMet": "conflict",
    "InvalidRange": "range",
    "ServerBusy": "throttled",
}

_NONE_GAVE_A_TOKEN: Final = "failed to retrieve a token from the included credentials"  # noqa: S105 - words
"""azure-identity's words when no credential of DefaultAzureCredential's chain (or a ChainedTokenCredential) was
found or worked."""
_OBSTORE_PROVIDER: Final = "External Azure credential provider"
"""obstore's words for an error its credential provider (our token provider) raised."""
_OWN_REFUSAL: Final = "ConfigurationError: the Azure token credential"
"""The start of what our token provider raises for a credential's own error (:mod:`.credentials`), as obstore
quotes it."""
_TRANSPORT_CLOSED: Final = "HTTP transport has already been closed"
"""azure-core's ValueError for a request on a client closed meanwhile (nothing was sent)."""


def answered(status: int | None, code: str) -> Failure:
    """The failure an Azure answer means: its code where Azure has one we know (each of them refuses the request),
    else its status."""
    kind = _KIND_OF_CODE.get(code)
    if kind is not None:
        return Failure(kind, "no", status, code)
    return from_status(status, code) if status is not None else Failure("unknown", "maybe", None, code)


def classify(error: BaseException) -> Failure:
    """Classify what azure-storage-blob or obstore raised (obstore's by the shared reading, with :func:`answered`)."""
    if obstore_failures.raised_by_obstore(error):
        if _OBSTORE_PROVIDER in str(error):
            return _token_failure(error)  # our token provider (azure-identity) failed, as obstore reports it
        return obstore_failures.classify(error, answered)
    return _classify_sdk(error)


def _token_failure(error: BaseException) -> Failure:
    """No token: no credential of azure-identity's chain was there (configuration), one was refused (denied), or its
    token endpoint could not be reached (network: retried)."""
    if _OWN_REFUSAL in str(error):  # our provider refused the credential's own error: its words are the code
        said = str(error).split("ConfigurationError: ", 1)[1].split("\n\nDebug source:")[0].strip()
        return Failure("configuration", "no", code=said)
    if "ServiceRequestError" in str(error):
        return Failure("network", "no")  # through obstore: the token endpoint could not be reached, as on the SDK path
    unavailable = any(cls.__name__ == "CredentialUnavailableError" for cls in type(error).__mro__)
    if unavailable or any(words in str(error) for words in (_NONE_GAVE_A_TOKEN, "CredentialUnavailableError")):
        return Failure("configuration", "no", code="CredentialUnavailableError")
    return Failure("denied", "no", code="ClientAuthenticationError")


def _classify_sdk(error: BaseException) -> Failure:
    from azure.core import exceptions as core

    if isinstance(error, core.IncompleteReadError):
        return Failure("network", "maybe")
    if isinstance(error, core.ClientAuthenticationError) and not _sdk_code(error):
        # A token credential's failure (its token endpoint's answer, if any): storage's own refusals carry a code.
        return _token_failure(error)
    if isinstance(error, core.HttpResponseError) and error.status_code is not None:
        if isinstance(error, core.DecodeError) and error.status_code < 300:
            return Failure("network", "maybe")  # a garbled answer to a request that worked
        return answered(int(error.status_code), _sdk_code(error))
    if isinstance(error, core.ClientAuthenticationError):
        return _token_failure(error)  # no token could be had: nothing was sent to storage
    if isinstance(error, core.ServiceRequestTimeoutError):
        return Failure("timeout", "no")
    if isinstance(error, core.ServiceResponseTimeoutError):
        return Failure("timeout", "maybe")
    if isinstance(error, core.ServiceRequestError | core.ServiceResponseError):
        # azure-core reports every aiohttp ClientError as a ServiceRequestError, a dropped keep-alive connection
        # after the request went out among them: only a connection that never opened proves nothing was sent.
        return Failure("network", "no" if _never_connected(error) else "maybe")
    if isinstance(error, TimeoutError):
        return Failure("timeout", "maybe")
    if isinstance(error, ConnectionRefusedError):
        return Failure("network", "no")
    if isinstance(error, OSError):
        return Failure("network", "maybe")
    if isinstance(error, ValueError) and _TRANSPORT_CLOSED in str(error):
        return Failure("network", "no")  # the backend was closed under the call: a retry opens a new client
    if isinstance(error, ValueError | TypeError):
        return Failure("configuration", "no")  # the SDK refused to build the request
    return Failure("unknown", "maybe")


def _sdk_code(error: BaseException) -> str:
    """Azure's error code as the service spelt it (the SDK may hold it as a StorageErrorCode member)."""
    code = getattr(error, "error_code", None)
    return str(getattr(code, "value", code) or "")


def _never_connected(error: BaseException) -> bool:
    import aiohttp

    inner = getattr(error, "inner_exception", None) or error.__cause__
    return isinstance(inner, aiohttp.ClientConnectorError | ConnectionRefusedError)
