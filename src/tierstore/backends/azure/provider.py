"""What the Azure provider declares to the rest of tierstore: its ``TIERSTORE_AZURE_*`` settings, how an ``az://``
URL builds an :class:`~tierstore.backends.azure.AzureBlobBackend`, its extra, SDK and loggers, and the refusal of a
connection string written where a URL belongs.

Contract: importing this module imports neither azure-storage-blob nor the shared cloud layer; the backend's
modules load when :func:`from_url` builds one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, field_validator

from tierstore.backends.registry import Location, Scheme
from tierstore.backends.shown import CredentialsHidden

if TYPE_CHECKING:
    from tierstore.backends.azure.backend import AzureBlobBackend
    from tierstore.config import TierstoreSettings

BatchDeleteMode = Literal["auto", "batch", "single"]
"""How many blobs are deleted: Blob Batch requests, one request per blob, or batches falling back to single
deletes for good once the service refuses them."""

_CONNECTION_STRING_PARTS = ("accountname=", "accountkey=", "endpointsprotocol=", "sharedaccesssignature=")


class AzureSettings(CredentialsHidden):
    """The Azure provider's own settings, each read from its ``TIERSTORE_AZURE_*`` variable (see
    TierstoreSettings)."""

    azure_account_url: str | None = Field(
        default=None,
        description="Blob service URL, https://ACCOUNT.blob.core.windows.net (TIERSTORE_AZURE_ACCOUNT_URL); "
        "authenticates with DefaultAzureCredential unless it carries a SAS. Default: the connection string.",
    )
    azure_connection_string: SecretStr | None = Field(
        default=None,
        description="Azure Storage connection string (TIERSTORE_AZURE_CONNECTION_STRING). Default: "
        "$AZURE_STORAGE_CONNECTION_STRING, read by the adapter.",
    )
    azure_batch_delete: BatchDeleteMode = Field(
        default="auto",
        description="How Azure deletes many blobs (TIERSTORE_AZURE_BATCH_DELETE): batch, single, or auto (batch, "
        "falling back to single deletes where refused). Default: auto.",
    )

    @field_validator("azure_batch_delete", mode="before")
    @classmethod
    def _azure_lower_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


def misplaced(value: str) -> str | None:
    """The advice when a storage location is an Azure connection string (which carries the account key)."""
    lowered = value.lower()
    if ";" in value and "=" in value and any(part in lowered for part in _CONNECTION_STRING_PARTS):
        return (
            "the storage location looks like an Azure connection string: put it in "
            "TIERSTORE_AZURE_CONNECTION_STRING (or AZURE_STORAGE_CONNECTION_STRING) and use az://CONTAINER/prefix"
        )
    return None


def from_url(location: Location, settings: TierstoreSettings) -> AzureBlobBackend:
    """The backend of an ``az://container/prefix`` URL, configured by ``settings``. No I/O."""
    from tierstore.backends.azure.backend import AzureBlobBackend

    own = settings.section(AzureSettings)
    connection_string = own.azure_connection_string
    return AzureBlobBackend(
        location.container,
        prefix=location.path or settings.prefix,
        connection_string=connection_string.get_secret_value() if connection_string else None,
        account_url=own.azure_account_url,
        storage_classes=settings.storage_classes or None,
        options=settings.cloud_options(),
        batch_delete=own.azure_batch_delete,
    )


SCHEME = Scheme(
    "az",
    from_url,
    container="container",
    example="az://container/prefix",
    settings=AzureSettings,
    extra="azure",
    sdk="azure.storage.blob",
    package="azure-storage-blob",
    loggers=("azure", "aiohttp"),
    exports={"AzureBlobBackend": "tierstore.backends.azure"},
    misplaced=misplaced,
)
