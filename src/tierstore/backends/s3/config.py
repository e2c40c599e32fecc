"""What one S3 backend is configured with, checked once before any request: where, who, encryption, multipart.

Both clients (aioboto3 and obstore) read the same :class:`S3Config`, so they reach the same bucket as the same
principal and write objects the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from tierstore.backends.cloud.options import CloudOptions
from tierstore.backends.cloud.redact import Secret
from tierstore.backends.s3.endpoint import configured_endpoint, shown
from tierstore.backends.s3.provider import AddressingStyle, ServerSideEncryption
from tierstore.backends.s3.wire import MiB
from tierstore.errors import ConfigurationError

MIN_PART_SIZE: Final = 5 * MiB
MAX_PART_SIZE: Final = 5 * 1024 * MiB
_BUCKET: Final = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True, slots=True)
class S3Config:
    """One S3 backend's configuration, checked when made: the bucket, where and as whom, encryption, multipart."""

    bucket: str
    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    access_key_id: str | None = None
    secret_access_key: Secret | None = None
    session_token: Secret | None = None
    addressing_style: AddressingStyle | None = None
    sse: ServerSideEncryption | None = None
    kms_key_id: str | None = None
    multipart_threshold: int = 64 * MiB
    """Bodies larger than this go up as a multipart upload."""
    multipart_chunk: int = 16 * MiB
    multipart_concurrency: int = 8
    """Parts of one upload in flight at once."""
    options: CloudOptions = field(default_factory=CloudOptions)

    def __post_init__(self) -> None:
        if not isinstance(self.bucket, str) or not _BUCKET.fullmatch(self.bucket):
            raise ConfigurationError(f"invalid S3 bucket name {self.bucket!r}")
        if self.sse not in (None, "AES256", "aws:kms"):
            raise ConfigurationError(f"sse must be 'AES256' or 'aws:kms', not {self.sse!r}")
        if self.kms_key_id and self.sse != "aws:kms":
            raise ConfigurationError("kms_key_id needs sse='aws:kms'")
        if self.addressing_style not in (None, "auto", "virtual", "path"):
            raise ConfigurationError(f"addressing_style must be auto, virtual or path, not {self.addressing_style!r}")
        if not MIN_PART_SIZE <= self.multipart_chunk <= MAX_PART_SIZE:
            raise ConfigurationError(f"multipart_chunk must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes")
        if self.multipart_threshold < 1 or self.multipart_concurrency < 1:
            raise ConfigurationError("multipart_threshold and multipart_concurrency must be at least 1")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ConfigurationError("give both access_key_id and secret_access_key, or neither")

    def encryption(self) -> dict[str, str]:
        """The SSE parameters of every PutObject, CopyObject and CreateMultipartUpload."""
        params: dict[str, str] = {}
        if self.sse:
            params["ServerSideEncryption"] = self.sse
        if self.kms_key_id:
            params["SSEKMSKeyId"] = self.kms_key_id
        return params

    def secrets(self) -> list[str]:
        """The credentials given as arguments, so that no log line or error shows them."""
        return [s.reveal() for s in (self.secret_access_key, self.session_token) if s]

    def describe(self) -> str:
        """The endpoint without user info, path or query, and where it was set when not here, for ``repr``."""
        found = configured_endpoint(self.endpoint_url, self.profile)
        if found is None:
            return ""
        endpoint, where = found
        return f", endpoint={shown(endpoint)!r}" + (f" from {where}" if where else "")
