"""Google Cloud Storage backend: the shared cloud layer on the official ``google-cloud-storage`` library.

Contract (on top of :mod:`tierstore.backends.cloud.backend`):

* One bucket that must already exist; a write into a missing one raises ConfigurationError.
* Tier -> storage class: L0-L3 -> STANDARD, L4 -> ARCHIVE unless ``storage_classes`` says otherwise (STANDARD,
  NEARLINE, COLDLINE, ARCHIVE). GCS reads every class directly, ARCHIVE included, so there is no ``archive``
  capability: ``head().archived`` is always False and ``restore`` answers ``not-archived``.
* No object tags on GCS (no ``tags`` capability): tags are folded into custom metadata, hidden from ``head``.
* Data path: the SDK in a thread pool (:mod:`.client`). obstore is not used on GCS: its GCS store writes through
  the XML API, which fake-gcs-server, the emulator every test runs against, does not accept for uploads, so that
  path could not be tested; ``options.client="obstore"`` is refused, ``"auto"`` means the SDK.
* Generations (:mod:`tierstore.backends.history`): listed with ``versions=true`` and deleted by generation
  (:mod:`tierstore.backends.gcs.history`).
* Credentials: Application Default Credentials unless ``credentials`` is given; with ``STORAGE_EMULATOR_HOST``
  set the library talks to that emulator anonymously. The constructor does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from tierstore.backends.cloud import CloudBackend, CloudOptions, TierMap
from tierstore.backends.cloud.history import CloudHistory
from tierstore.backends.gcs.client import CHUNK_MULTIPLE, MAX_MULTIPART_SIZE, GCSClient
from tierstore.backends.gcs.history import GCSHistory
from tierstore.backends.gcs.metadata import TAG_PREFIX, TIER_KEY
from tierstore.enums import StorageTier
from tierstore.errors import ConfigurationError

__all__ = [
    "CHUNK_MULTIPLE",
    "DEFAULT_STORAGE_CLASSES",
    "MAX_MULTIPART_SIZE",
    "STORAGE_CLASSES",
    "TAG_PREFIX",
    "TIER_KEY",
    "GCSBackend",
]

DEFAULT_STORAGE_CLASSES: Final[Mapping[StorageTier, str]] = {
    StorageTier.L0: "STANDARD",
    StorageTier.L1: "STANDARD",
    StorageTier.L2: "STANDARD",
    StorageTier.L3: "STANDARD",
    StorageTier.L4: "ARCHIVE",
}
STORAGE_CLASSES: Final = frozenset({"STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"})


class GCSBackend(CloudHistory, CloudBackend):
    """A bucket of Google Cloud Storage (see this module for the contract)."""

    name = "gcs"

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        project: str | None = None,
        credentials: Any = None,
        client_options: Mapping[str, Any] | Any = None,
        storage_classes: Mapping[StorageTier, str] | None = None,
        options: CloudOptions | None = None,
        multipart_threshold: int = MAX_MULTIPART_SIZE,
        chunk_size: int = 32 * CHUNK_MULTIPLE,
    ) -> None:
        if not isinstance(bucket, str) or not bucket:
            raise ConfigurationError("GCSBackend needs a bucket name")
        options = options or CloudOptions()
        if options.client == "obstore":
            raise ConfigurationError(
                "client='obstore' is not available on gs://: obstore's GCS store uploads through the XML API, which "
                "the GCS emulator tierstore is tested against does not accept, so tierstore keeps GCS on the "
                "google-cloud-storage SDK; use client='sdk' or 'auto'"
            )
        if isinstance(multipart_threshold, bool) or not 0 <= multipart_threshold <= MAX_MULTIPART_SIZE:
            raise ConfigurationError(f"multipart_threshold must be between 0 and {MAX_MULTIPART_SIZE} bytes")
        if isinstance(chunk_size, bool) or chunk_size <= 0 or chunk_size % CHUNK_MULTIPLE:
            raise ConfigurationError(f"chunk_size must be a positive multiple of {CHUNK_MULTIPLE} bytes")
        tiers = TierMap("GCS", DEFAULT_STORAGE_CLASSES, storage_classes, known=STORAGE_CLASSES, archives=())
        client = GCSClient(
            bucket,
            project=project,
            credentials=credentials,
            client_options=client_options,
            options=options,
            multipart_threshold=multipart_threshold,
            chunk_size=chunk_size,
        )
        super().__init__(bucket, client, tiers, prefix=prefix, options=options)
        self.history_client = GCSHistory(client)
