"""The options every cloud adapter takes, with the same meaning on S3, GCS and Azure.

Each is also a ``TIERSTORE_*`` setting (:mod:`tierstore.config`), documented once in ``docs/configuration.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tierstore.backends.cloud.retry import RetryPolicy
from tierstore.errors import ConfigurationError

ClientChoice = Literal["auto", "sdk", "obstore"]
"""Which client moves the data: ``obstore`` (the ``fast`` extra), the cloud's SDK, or ``auto`` (obstore when it is
installed and the cloud supports it, else the SDK). Operations obstore lacks always use the SDK."""


@dataclass(frozen=True, slots=True)
class CloudOptions:
    """Timeouts, retries, pool size and data path of one cloud backend: the same meaning on every cloud."""

    connect_timeout: float = 5.0
    """Seconds to open a connection (TIERSTORE_CONNECT_TIMEOUT)."""
    read_timeout: float = 30.0
    """Seconds the service may stay silent in the middle of an answer (TIERSTORE_READ_TIMEOUT)."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    """Attempts, backoff and the per-call deadline (TIERSTORE_RETRY_MAX_ATTEMPTS, TIERSTORE_RETRY_DEADLINE)."""
    pool_size: int = 64
    """Connections (or, for the threaded GCS SDK, threads) one backend keeps (TIERSTORE_POOL_SIZE)."""
    client: ClientChoice = "auto"
    """Data path (TIERSTORE_CLIENT)."""

    def __post_init__(self) -> None:
        if not self.connect_timeout > 0 or not self.read_timeout > 0:
            raise ConfigurationError("connect_timeout and read_timeout must be positive seconds")
        if isinstance(self.pool_size, bool) or not isinstance(self.pool_size, int) or self.pool_size < 1:
            raise ConfigurationError(f"pool_size must be an int of at least 1, not {self.pool_size!r}")
        if self.client not in ("auto", "sdk", "obstore"):
            raise ConfigurationError(f"client must be auto, sdk or obstore, not {self.client!r}")
