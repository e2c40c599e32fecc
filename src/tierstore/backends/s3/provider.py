"""What the S3 provider declares to the rest of tierstore: its ``TIERSTORE_S3_*`` settings, how an ``s3://`` URL
builds an :class:`~tierstore.backends.s3.S3Backend`, its extra, SDK and loggers.

Contract: importing this module imports neither aioboto3 nor the shared cloud layer (the registry and the settings
read it on every run); the backend's modules load when :func:`from_url` builds one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from tierstore.backends.registry import Location, Scheme
from tierstore.backends.shown import CredentialsHidden

if TYPE_CHECKING:
    from tierstore.backends.s3.backend import S3Backend
    from tierstore.config import TierstoreSettings

AddressingStyle = Literal["auto", "virtual", "path"]
"""How a request names the bucket: in the host name (``virtual``), in the path (``path``), or the SDK's choice."""
ServerSideEncryption = Literal["AES256", "aws:kms"]
"""Server-side encryption asked of every write: S3-managed keys, or KMS."""


class S3Settings(CredentialsHidden):
    """The S3 provider's own settings, each read from its ``TIERSTORE_S3_*`` variable (see TierstoreSettings)."""

    s3_region: str | None = Field(
        default=None,
        description="AWS region (TIERSTORE_S3_REGION). Default: the SDK's (AWS_REGION, AWS_DEFAULT_REGION, config).",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="S3-compatible endpoint (TIERSTORE_S3_ENDPOINT_URL). Default: the SDK's (AWS_ENDPOINT_URL, "
        "else AWS).",
    )
    s3_profile: str | None = Field(
        default=None,
        description="AWS shared-config profile (TIERSTORE_S3_PROFILE). Default: the SDK's (AWS_PROFILE).",
    )
    s3_addressing_style: AddressingStyle | None = Field(
        default=None,
        description="Bucket addressing style (TIERSTORE_S3_ADDRESSING_STYLE): auto, virtual or path. Default: the "
        "SDK's.",
    )
    s3_sse: ServerSideEncryption | None = Field(
        default=None,
        description="Server-side encryption on every write (TIERSTORE_S3_SSE): AES256 or aws:kms. Default: the "
        "bucket's.",
    )
    s3_kms_key_id: str | None = Field(
        default=None,
        description="KMS key for s3_sse=aws:kms (TIERSTORE_S3_KMS_KEY_ID). Default: the account's AWS managed key.",
    )

    @field_validator("s3_addressing_style", mode="before")
    @classmethod
    def _s3_lower_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("s3_sse", mode="before")
    @classmethod
    def _sse_spelling(cls, value: Any) -> Any:
        spellings = {"aes256": "AES256", "aws:kms": "aws:kms"}
        return spellings.get(value.strip().lower(), value) if isinstance(value, str) else value


def from_url(location: Location, settings: TierstoreSettings) -> S3Backend:
    """The backend of an ``s3://bucket/prefix`` URL, configured by ``settings``. No I/O."""
    from tierstore.backends.s3.backend import S3Backend

    own = settings.section(S3Settings)
    return S3Backend(
        location.container,
        prefix=location.path or settings.prefix,
        region=own.s3_region,
        endpoint_url=own.s3_endpoint_url,
        profile=own.s3_profile,
        addressing_style=own.s3_addressing_style,
        storage_classes=settings.storage_classes or None,
        options=settings.cloud_options(),
        sse=own.s3_sse,
        kms_key_id=own.s3_kms_key_id,
    )


SCHEME = Scheme(
    "s3",
    from_url,
    container="bucket",
    example="s3://bucket/prefix",
    settings=S3Settings,
    extra="s3",
    sdk="aioboto3",
    package="aioboto3",
    loggers=("botocore", "aiobotocore", "boto3", "aiohttp", "urllib3"),
    exports={"S3Backend": "tierstore.backends.s3"},
)
