"""Configuration from the environment, and backends addressed by one URL.

* :class:`TierstoreSettings` reads ``TIERSTORE_*`` environment variables (and a ``.env`` file in the working
  directory, when there is one). Every setting is optional; with none set, tierstore uses the local-disk store
  under :func:`default_data_dir`.
* :func:`backend_from_url` builds a backend from ``file:///path`` (or a bare path), ``memory://``,
  ``s3://bucket/prefix``, ``gs://bucket/prefix`` or ``az://container/prefix``; :func:`bridge_from_env` builds an
  :class:`~tierstore.bridge.ArtifactsBridge` from the settings.
* Each cloud SDK keeps its own conventions (``AWS_*``, ``AWS_ENDPOINT_URL``, ``STORAGE_EMULATOR_HOST``, Application
  Default Credentials, ``AZURE_STORAGE_CONNECTION_STRING``, ``DefaultAzureCredential``): this module never reads
  them; the adapters and SDKs do.
* Mistakes raise :class:`~tierstore.errors.ConfigurationError` before any I/O, and a missing extra raises
  :class:`~tierstore.errors.MissingDependencyError` naming the ``pip install``. No message, repr or log line built
  here contains a credential: URLs are shown without user info, query or fragment, and settings errors never
  echo the value that was given.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tierstore.backends._retry import RetryPolicy
from tierstore.enums import StorageTier
from tierstore.errors import ConfigurationError, MissingDependencyError

if TYPE_CHECKING:
    from tierstore.backends.base import StorageBackend
    from tierstore.bridge import ArtifactsBridge

SCHEMES = ("file", "memory", "s3", "gs", "az")
_CONFIGURABLE_TIERS = (StorageTier.L2, StorageTier.L3, StorageTier.L4)
# The module each cloud adapter imports first, to report a missing extra before any backend is built.
_SDK_OF_EXTRA = {"s3": ("aioboto3", "aioboto3"), "gcs": ("google.cloud.storage", "google-cloud-storage")}


def default_data_dir() -> Path:
    """``$TIERSTORE_DATA_DIR``, else ``$XDG_DATA_HOME/tierstore``, else ``~/.local/share/tierstore``."""
    if explicit := os.environ.get("TIERSTORE_DATA_DIR"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "tierstore"


def parse_storage_classes(value: str) -> dict[StorageTier, str]:
    """``"L3=STANDARD,L4=DEEP_ARCHIVE"`` -> ``{L3: "STANDARD", L4: "DEEP_ARCHIVE"}``; tiers L2-L4 only."""
    mapping: dict[StorageTier, str] = {}
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        tier_name, sep, storage_class = (s.strip() for s in item.partition("="))
        if not sep:
            raise ConfigurationError(f"storage class entry {tier_name!r} is not TIER=CLASS (e.g. L4=DEEP_ARCHIVE)")
        mapping[_configurable_tier(tier_name)] = storage_class
    return _checked_storage_classes(mapping)


def _configurable_tier(name: Any) -> StorageTier:
    try:
        tier = StorageTier(name.upper() if isinstance(name, str) else name)
    except ValueError:
        raise ConfigurationError(f"unknown tier {name!r} in the storage class mapping: use L2, L3 or L4") from None
    if tier not in _CONFIGURABLE_TIERS:
        raise ConfigurationError(f"tier {tier.value} lives in the process and has no storage class: use L2, L3 or L4")
    return tier


def _checked_storage_classes(mapping: Mapping[Any, Any]) -> dict[StorageTier, str]:
    checked: dict[StorageTier, str] = {}
    for tier_name, storage_class in mapping.items():
        tier = _configurable_tier(tier_name)
        if not isinstance(storage_class, str) or not storage_class.strip():
            raise ConfigurationError(f"the storage class for {tier.value} is empty")
        checked[tier] = storage_class.strip()
    return checked


class TierstoreSettings(BaseSettings):
    """tierstore's settings. Each field is read from ``TIERSTORE_<FIELD>`` (case-insensitive) or ``.env``."""

    model_config = SettingsConfigDict(
        env_prefix="TIERSTORE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,
        validate_default=True,
    )

    url: str | None = Field(
        default=None,
        description="Where pages are stored (TIERSTORE_URL): file:///path or a path, memory://, s3://bucket/prefix, "
        "gs://bucket/prefix or az://container/prefix. Default: the local-disk store in data_dir.",
    )
    data_dir: Path | None = Field(
        default=None,
        description="Directory of the local-disk store when no URL is set (TIERSTORE_DATA_DIR). Default: "
        "$XDG_DATA_HOME/tierstore, else ~/.local/share/tierstore.",
    )
    prefix: str = Field(
        default="",
        description="Object-name prefix inside the bucket or container (TIERSTORE_PREFIX), used when the URL has "
        "no path of its own. Default: none.",
    )
    storage_classes: Annotated[dict[StorageTier, str], NoDecode] = Field(
        default_factory=dict,
        description="Tier to storage class / access tier overrides, merged over the backend's defaults "
        "(TIERSTORE_STORAGE_CLASSES), e.g. L3=STANDARD,L4=DEEP_ARCHIVE. Tiers L2-L4 only. Default: none.",
    )
    compression: Literal["none", "zstd"] = Field(
        default="none",
        description="Compression of stored pages (TIERSTORE_COMPRESSION); zstd needs tierstore[zstd]. Default: none.",
    )
    concurrency: int = Field(
        default=32,
        ge=1,
        description="Most concurrent page transfers of one bridge or command (TIERSTORE_CONCURRENCY). Default: 32.",
    )
    retry_max_attempts: int = Field(
        default=6,
        ge=1,
        description="Attempts of one cloud request before BackendUnavailableError (TIERSTORE_RETRY_MAX_ATTEMPTS). "
        "Default: 6.",
    )
    retry_deadline: float = Field(
        default=30.0,
        gt=0,
        description="Seconds after the first attempt of a request when no new attempt starts "
        "(TIERSTORE_RETRY_DEADLINE). Default: 30.",
    )
    connect_timeout: float | None = Field(
        default=None,
        gt=0,
        description="Seconds to establish a connection (TIERSTORE_CONNECT_TIMEOUT). Default: the adapter's "
        "(S3 and GCS 10, Azure 5).",
    )
    read_timeout: float | None = Field(
        default=None,
        gt=0,
        description="Seconds to wait for each read from the service (TIERSTORE_READ_TIMEOUT). Default: the "
        "adapter's (S3 and GCS 60, Azure 30).",
    )
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
    s3_addressing_style: Literal["auto", "virtual", "path"] | None = Field(
        default=None,
        description="Bucket addressing style (TIERSTORE_S3_ADDRESSING_STYLE): auto, virtual or path. Default: the "
        "SDK's.",
    )
    s3_sse: Literal["AES256", "aws:kms"] | None = Field(
        default=None,
        description="Server-side encryption on every write (TIERSTORE_S3_SSE): AES256 or aws:kms. Default: the "
        "bucket's.",
    )
    s3_kms_key_id: str | None = Field(
        default=None,
        description="KMS key for s3_sse=aws:kms (TIERSTORE_S3_KMS_KEY_ID). Default: the account's AWS managed key.",
    )
    gcs_project: str | None = Field(
        default=None,
        description="Google Cloud project of the client (TIERSTORE_GCS_PROJECT). Default: from Application "
        "Default Credentials.",
    )
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
    azure_batch_delete: Literal["auto", "batch", "single"] = Field(
        default="auto",
        description="How Azure deletes many blobs (TIERSTORE_AZURE_BATCH_DELETE): batch, single, or auto (batch, "
        "falling back to single deletes where refused). Default: auto.",
    )

    @field_validator("storage_classes", mode="before")
    @classmethod
    def _parse_storage_classes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_storage_classes(value)
        if isinstance(value, Mapping):
            return _checked_storage_classes(value)
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, (redact_url(value) if name in {"url", "azure_account_url"} and value else value)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.retry_max_attempts, deadline=self.retry_deadline)

    def local_data_dir(self) -> Path:
        return self.data_dir.expanduser() if self.data_dir else default_data_dir()


def load_settings(**overrides: Any) -> TierstoreSettings:
    """The settings from the environment (and ``.env``), with ``overrides`` on top; ConfigurationError if invalid."""
    try:
        return TierstoreSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"TIERSTORE_{'_'.join(str(p) for p in error['loc']).upper()}: {_plain(error['msg'])}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise ConfigurationError(f"invalid settings: {problems}") from None


def _plain(message: str) -> str:
    """A pydantic message without the 'Value error, ' preamble of errors raised by our validators."""
    return message.removeprefix("Value error, ")


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


def backend_from_url(url: str | os.PathLike[str] | None, settings: TierstoreSettings | None = None) -> StorageBackend:
    """The backend a URL names, configured by ``settings`` (default: from the environment). No I/O.

    ``None`` or ``""`` means ``settings.url``, else the local-disk store in ``settings.data_dir`` or
    :func:`default_data_dir`.
    """
    settings = settings if settings is not None else load_settings()
    location = os.fspath(url) if url is not None else None
    if not location:
        location = settings.url
    if not location:
        return _filesystem(settings.local_data_dir())
    if "://" not in location:
        return _filesystem(Path(location))
    scheme, bucket, path = _split(location)
    if scheme == "file":
        return _filesystem(Path(path or "/") if not bucket or bucket == "localhost" else _bad_file_url())
    if scheme == "memory":
        from tierstore.backends.memory import InMemoryBackend

        return InMemoryBackend()
    if not bucket:
        what = "container" if scheme == "az" else "bucket"
        raise ConfigurationError(f"{scheme}:// URLs need a {what}: {scheme}://{what.upper()}/prefix")
    prefix = path.strip("/") or settings.prefix
    if scheme == "s3":
        return _s3(bucket, prefix, settings)
    if scheme == "gs":
        return _gcs(bucket, prefix, settings)
    return _azure(bucket, prefix, settings)


def bridge_from_env(settings: TierstoreSettings | None = None) -> ArtifactsBridge:
    """An ArtifactsBridge on the backend the settings name, with their compression and concurrency. No I/O."""
    from tierstore.bridge import ArtifactsBridge

    settings = settings if settings is not None else load_settings()
    backend = backend_from_url(settings.url, settings)
    return ArtifactsBridge(backend=backend, compression=settings.compression, concurrency=settings.concurrency)


def _split(url: str) -> tuple[str, str, str]:
    scheme = url.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"unknown storage URL scheme {scheme[:20]!r}: use file://, memory://, s3://, gs:// or az://"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"malformed {scheme}:// URL") from None
    if "@" in parts.netloc:
        raise ConfigurationError(
            f"{scheme}:// URLs must not carry credentials: leave them to the SDK's own configuration"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"{scheme}:// URLs take no query or fragment: use TIERSTORE_* settings instead")
    if port is not None or parts.netloc.endswith(":"):
        raise ConfigurationError(f"{scheme}:// URLs take no port: set the endpoint in the settings")
    # The netloc as written, not urlsplit's lowercased hostname: a bucket name is never silently changed.
    return scheme, parts.netloc, unquote(parts.path)


def _bad_file_url() -> Path:
    raise ConfigurationError("file URLs take an absolute local path: file:///path/to/store")


def _filesystem(root: Path) -> StorageBackend:
    from tierstore.backends.filesystem import FileSystemBackend

    return FileSystemBackend(root)


def _require_sdk(extra: str) -> None:
    """Report a missing extra now, before the backend is built, rather than on the first request."""
    module, package = _SDK_OF_EXTRA[extra]
    try:
        found = importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        found = False
    if not found:
        raise MissingDependencyError(extra, package)


def _timeouts(settings: TierstoreSettings, connect: float, read: float) -> tuple[float, float]:
    return (settings.connect_timeout or connect, settings.read_timeout or read)


def _s3(bucket: str, prefix: str, settings: TierstoreSettings) -> StorageBackend:
    _require_sdk("s3")
    from tierstore.backends.s3 import S3Backend

    connect, read = _timeouts(settings, 10.0, 60.0)
    return S3Backend(
        bucket,
        prefix=prefix,
        region=settings.s3_region,
        endpoint_url=settings.s3_endpoint_url,
        profile=settings.s3_profile,
        addressing_style=settings.s3_addressing_style,
        storage_classes=settings.storage_classes or None,
        sse=settings.s3_sse,
        kms_key_id=settings.s3_kms_key_id,
        retry=settings.retry_policy(),
        connect_timeout=connect,
        read_timeout=read,
    )


def _gcs(bucket: str, prefix: str, settings: TierstoreSettings) -> StorageBackend:
    _require_sdk("gcs")
    from tierstore.backends.gcs import GCSBackend

    return GCSBackend(
        bucket,
        prefix=prefix,
        project=settings.gcs_project,
        storage_classes=settings.storage_classes or None,
        retry=settings.retry_policy(),
        timeout=_timeouts(settings, 10.0, 60.0),
    )


def _azure(container: str, prefix: str, settings: TierstoreSettings) -> StorageBackend:
    from tierstore.backends.azure import AzureBlobBackend

    connection_string = settings.azure_connection_string
    connect, read = _timeouts(settings, 5.0, 30.0)
    return AzureBlobBackend(
        container,
        prefix=prefix,
        connection_string=connection_string.get_secret_value() if connection_string else None,
        account_url=settings.azure_account_url,
        storage_classes=settings.storage_classes or None,
        retry=settings.retry_policy(),
        connect_timeout=connect,
        read_timeout=read,
        batch_delete=settings.azure_batch_delete,
    )


def misspelt_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """``TIERSTORE_*`` names in ``environ`` that are no setting but close to one: ``{given: closest setting}``.

    Settings ignore unknown variables; this lets a caller warn about a likely typo (``TIERSTORE_ULR``). Names that
    resemble no setting (another tool's ``TIERSTORE_*`` variable) are left alone.
    """
    import difflib

    known = [name.upper() for name in TierstoreSettings.model_fields]
    found: dict[str, str] = {}
    for name in environ:
        rest = name.upper().removeprefix("TIERSTORE_")
        if not name.upper().startswith("TIERSTORE_") or rest in known:
            continue
        closest = difflib.get_close_matches(rest, known, n=1, cutoff=0.6)
        if closest:
            found[name] = f"TIERSTORE_{closest[0]}"
    return found
