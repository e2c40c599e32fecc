"""One classification of a failed cloud request, and the one table that turns it into a tierstore error.

Each cloud adapter answers one question about whatever its SDK (or obstore) raised: :class:`Failure` - the HTTP
status and provider code when the service answered, what kind of failure it is, and whether the request may have
taken effect. Everything else is decided here, the same on every cloud: which kinds are worth another attempt
(:attr:`Failure.transient`) and which error the caller sees (:meth:`Failure.error`). An unknown failure is a
:class:`~tierstore.errors.BackendUnavailableError` on every cloud.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from tierstore.errors import (
    AccessDeniedError,
    ArchivedPageError,
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    ObjectNotFoundError,
    TierstoreError,
)

FailureKind = Literal[
    "not-found",  # no such object
    "no-container",  # the bucket or container itself is missing
    "conflict",  # a precondition (create-if-absent, a generation, an ETag) failed
    "archived",  # the object must be restored before it can be read
    "range",  # a ranged read starts at or past the end of the object
    "denied",  # the credentials do not allow it
    "invalid",  # the service refused the request as malformed
    "configuration",  # no credentials, no region, an unusable endpoint: nothing a retry changes
    "throttled",  # 429, SlowDown, a racing conditional write (S3's 409 ConditionalRequestConflict)
    "server",  # 5xx
    "network",  # the connection failed, was reset, or the answer was cut short
    "timeout",  # no answer in time
    "corrupt",  # the bytes received fail their transfer checksum
    "unknown",
]

Applied = Literal["no", "maybe"]
"""Whether a failed request may have taken effect on the service ("no" only when it certainly did not)."""

TRANSIENT_KINDS: Final[frozenset[FailureKind]] = frozenset({"throttled", "server", "network", "timeout", "corrupt"})


class RangeNotSatisfiable(TierstoreError):
    """Internal: a ranged read began at or past the end of an existing object (the backend answers ``b""``)."""


FIXES: Final[Mapping[str, str]] = {
    # AWS (botocore's exception names and S3's error codes)
    "NoCredentialsError": "no AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
    "AWS_PROFILE (or TIERSTORE_S3_PROFILE) to a configured profile, or sign in with `aws sso login`",
    "PartialCredentialsError": "the AWS credentials are incomplete: set both AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones)",
    "ProfileNotFound": "the AWS profile named by AWS_PROFILE (or TIERSTORE_S3_PROFILE) is not in ~/.aws/config or "
    "~/.aws/credentials: name one that is, or unset it",
    "NoRegionError": "no AWS region is set: set AWS_REGION (or TIERSTORE_S3_REGION)",
    "AuthorizationHeaderMalformed": "the requests were signed for another AWS region than the bucket's (with no "
    "region set, us-east-1): set AWS_REGION (or TIERSTORE_S3_REGION) to the bucket's region",
    "PermanentRedirect": "the bucket is in another AWS region than the one requests go to (with no region set, "
    "us-east-1): set AWS_REGION (or TIERSTORE_S3_REGION) to the bucket's region",
    "UnauthorizedSSOTokenError": "the AWS SSO session has expired: run `aws sso login` (with --profile, the profile "
    "AWS_PROFILE or TIERSTORE_S3_PROFILE names)",
    "SSOTokenLoadError": "the AWS profile uses SSO, but no one has signed in: run `aws sso login` (with --profile, "
    "the profile AWS_PROFILE or TIERSTORE_S3_PROFILE names)",
    "TokenRetrievalError": "the AWS SSO token could not be refreshed: run `aws sso login` again",
    "ExpiredCredentials": "the AWS credentials have expired, and their source gave only expired ones again: renew "
    "them at their source (the profile's credential_process, `aws sso login`, or new AWS_* variables)",
    "CredentialRetrievalError": "the AWS credential provider failed: check the profile's credential_process or SSO "
    "session (`aws sso login`)",
    "InvalidAccessKeyId": "the AWS access key is not valid: check AWS_ACCESS_KEY_ID (and the endpoint it belongs to)",
    "SignatureDoesNotMatch": "the AWS secret key does not match the access key: check AWS_SECRET_ACCESS_KEY",
    "ExpiredToken": "the AWS session token has expired: renew it (`aws sso login`, or a new AWS_SESSION_TOKEN)",
    "InvalidToken": "the AWS session token is not valid: renew it, or unset AWS_SESSION_TOKEN",
    # Azure (azure-identity's token credentials)
    "CredentialUnavailableError": "no Azure credential gave a token (each one tried is listed in the chained error): "
    "sign in with `az login`, set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET, use a managed "
    "identity, or give a connection string (AZURE_STORAGE_CONNECTION_STRING)",
    "ClientAuthenticationError": "Azure AD refused the credential's token request: check AZURE_CLIENT_ID, "
    "AZURE_TENANT_ID and AZURE_CLIENT_SECRET, or sign in again with `az login`",
    # Azure Storage (its error codes): a wrong account key or a bad SAS is AuthenticationFailed on Azure, and
    # AuthorizationFailure on Azurite, which Azure also answers for a SAS or role that does not grant the operation
    "AuthenticationFailed": "Azure could not authenticate the request: check the AccountKey of the connection string "
    "(TIERSTORE_AZURE_CONNECTION_STRING, else AZURE_STORAGE_CONNECTION_STRING) against the account's keys, or, "
    "for a SharedAccessSignature, that it has not expired (se=) and is copied whole",
    "AuthorizationFailure": "Azure refused these credentials: check the AccountKey of the connection string "
    "(TIERSTORE_AZURE_CONNECTION_STRING, else AZURE_STORAGE_CONNECTION_STRING), or that its SharedAccessSignature "
    "has not expired (se=) and grants read, add, create, write, delete, list and tag (sp=racwdlt), or, with a "
    "token credential, the identity's role on the container (Storage Blob Data Contributor)",
    # Google Cloud (google.auth's exception names)
    "DefaultCredentialsError": "no Google Cloud credentials were found: run `gcloud auth application-default login`, "
    "or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file",
    "credentials file": "the Google Cloud credentials file (GOOGLE_APPLICATION_CREDENTIALS, else gcloud's "
    "application default credentials) is missing, not JSON, or not a complete key: point "
    "GOOGLE_APPLICATION_CREDENTIALS at a service account key file as downloaded, or unset it and run "
    "`gcloud auth application-default login`",
    "MalformedError": "the Google Cloud credentials are malformed (not a complete service account key): use a key "
    "file as downloaded, or run `gcloud auth application-default login`",
    "token refresh": "Google Cloud refused to refresh the credentials' token: sign in again "
    "(`gcloud auth application-default login`) or check the service account key",
    # obstore (its error classes)
    "InvalidPathError": "obstore cannot read an object name in this store (one with an empty segment, '.' or '..', "
    "written by another tool): set TIERSTORE_CLIENT=sdk, whose data path reads every name",
}
"""What to do about a failure, by its code: an error names the cause and the variables or command that fix it."""


@dataclass(frozen=True, slots=True)
class Failure:
    """What one failed request was: its kind, whether it may have taken effect, and the service's status and code
    when it answered. The same on every cloud; each cloud's classifier makes one."""

    kind: FailureKind
    applied: Applied = "maybe"
    status: int | None = None
    code: str = ""

    @property
    def transient(self) -> bool:
        """Is this kind of failure worth another attempt (throttling, 5xx, network, timeout, a corrupt transfer)?"""
        return self.kind in TRANSIENT_KINDS

    def describe(self) -> str:
        """``HTTP 503 SlowDown``, or the kind when the service did not answer: for messages and logs."""
        answer = f"HTTP {self.status}" if self.status is not None else self.kind
        code = "" if self.code == str(self.status) else self.code  # S3 names a bare HEAD's failure by its status
        return f"{answer} {code}".strip()

    def error(self, what: str, key: str | None, *, container: str = "bucket", where: str = "") -> TierstoreError:
        """The tierstore error for this failure of ``what`` (e.g. ``"put 'mem_L3_1'"``) on ``key``; ``where``: what
        the request reached (``bucket 'name' (endpoint=…)``), named in the message."""
        on = f" on {where}" if where else ""
        fix = f"; {FIXES[self.code]}" if self.code in FIXES else ""
        detail = f"{what}{on} failed: {self.describe()}{fix}"
        if key is not None:
            if self.kind == "not-found":
                return ObjectNotFoundError(key)
            if self.kind == "conflict":
                return ConflictError(key)
            if self.kind == "archived":
                return ArchivedPageError(key)
            if self.kind == "corrupt":
                return IntegrityError(f"{detail}: the bytes received fail their checksum", key=key)
        if self.kind == "range":
            return RangeNotSatisfiable(detail)
        if self.kind == "no-container":
            named = f": {where}" if where else ""
            return ConfigurationError(f"{what}: the {container} does not exist{named}")
        if self.kind == "denied":
            return AccessDeniedError(detail if fix else f"{detail}: the credentials do not allow it")
        if self.kind == "invalid":
            return InvalidInputError(f"{detail}: the service refused the request")
        if self.kind == "configuration":
            return ConfigurationError(detail)
        return BackendUnavailableError(detail)


def kind_of_status(status: int) -> FailureKind:
    """The kind of an HTTP error status, where the provider's own code says nothing more specific."""
    if status == 404:
        return "not-found"
    if status in (409, 412):
        return "conflict"
    if status in (401, 403):
        return "denied"
    if status == 416:
        return "range"
    if status == 408:
        return "timeout"
    if status == 429:
        return "throttled"
    if status >= 500:
        return "server"
    if status >= 400:
        return "invalid"
    return "unknown"


def from_status(status: int, code: str = "", *, refused: bool = False) -> Failure:
    """A failure the service answered with. ``refused``: its answer says the request did not take effect."""
    kind = kind_of_status(status)
    applied: Applied = "no" if refused or kind not in ("server", "timeout") else "maybe"
    return Failure(kind, applied, status, code)
