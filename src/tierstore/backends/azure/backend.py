"""Azure Blob Storage backend: block blobs in one container, through azure-storage-blob (aio) or obstore.

Contract (Azure's part; the rest is :class:`~tierstore.backends.cloud.backend.CloudBackend`'s):

* Construction only: the constructor does no I/O and fails with MissingDependencyError when the ``azure`` extra
  is missing (or, with ``client="obstore"``, the ``fast`` extra). Credentials are read as
  :mod:`tierstore.backends.azure.credentials` says; ``repr`` and errors never show a key or SAS.
* Tiers -> access tiers: L0-L3 Hot and L4 Archive unless ``storage_classes`` says otherwise (Hot, Cool, Cold,
  Archive, in any case); L3 must be online, because archived blobs rehydrate to it.
* The data path: obstore (:mod:`~tierstore.backends.azure.obstore_client`) when ``options.client`` is
  ``"obstore"``, or ``"auto"`` with obstore installed and credentials obstore can use; otherwise the SDK
  (:mod:`~tierstore.backends.azure.client`), which also serves everything obstore lacks, blob versions among it
  (:mod:`~tierstore.backends.azure.history`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from tierstore.backends.azure.batch import BATCH_LIMIT
from tierstore.backends.azure.client import TIER_RECORD_TAG, SdkClient
from tierstore.backends.azure.credentials import AzureAuth
from tierstore.backends.azure.history import AzureHistory
from tierstore.backends.azure.obstore_client import ObstoreClient
from tierstore.backends.azure.provider import BatchDeleteMode
from tierstore.backends.base import normalise_prefix
from tierstore.backends.cloud import obstore_calls
from tierstore.backends.cloud.backend import CloudBackend
from tierstore.backends.cloud.client import ObjectClient
from tierstore.backends.cloud.history import CloudHistory
from tierstore.backends.cloud.options import CloudOptions
from tierstore.backends.cloud.tiers import TierMap
from tierstore.enums import StorageTier
from tierstore.errors import ConfigurationError

logger = logging.getLogger(__name__)

__all__ = [
    "ACCESS_TIERS",
    "BATCH_LIMIT",
    "DEFAULT_STORAGE_CLASSES",
    "TIER_RECORD_TAG",
    "AzureBlobBackend",
]

ACCESS_TIERS: Final = ("Hot", "Cool", "Cold", "Archive")
DEFAULT_STORAGE_CLASSES: Mapping[StorageTier, str] = MappingProxyType(
    {
        StorageTier.L0: "Hot",
        StorageTier.L1: "Hot",
        StorageTier.L2: "Hot",
        StorageTier.L3: "Hot",
        StorageTier.L4: "Archive",
    }
)
_CONTAINER_NAME: Final = re.compile(r"(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*")
_SPELLING: Final = {name.lower(): name for name in ACCESS_TIERS}


def access_tiers(overrides: Mapping[StorageTier, str] | None) -> TierMap:
    """Tiers as Azure access tiers: the defaults with ``overrides`` merged (any spelling of a tier's name); L3
    must stay online, since archived blobs rehydrate to it."""
    tiers = TierMap(
        "Azure",
        DEFAULT_STORAGE_CLASSES,
        overrides,
        known=ACCESS_TIERS,
        archives={"Archive"},
        spell=lambda name: _SPELLING.get(name.lower(), name),
    )
    if tiers.is_archive(tiers.class_of(StorageTier.L3)):
        raise ConfigurationError("L3 must map to an online access tier: archived blobs rehydrate to it")
    return tiers


class AzureBlobBackend(CloudHistory, CloudBackend):
    """A container of Azure Blob Storage (see this module for the contract)."""

    name = "azure-blob"
    container_word = "container"

    def __init__(
        self,
        container: str,
        *,
        prefix: str = "",
        connection_string: str | None = None,
        account_url: str | None = None,
        credential: Any = None,
        storage_classes: Mapping[StorageTier, str] | None = None,
        options: CloudOptions | None = None,
        max_concurrency: int = 8,
        max_single_put_size: int = 64 * 1024 * 1024,
        max_block_size: int = 4 * 1024 * 1024,
        list_page_size: int = 5000,
        batch_delete: BatchDeleteMode = "auto",
    ) -> None:
        """``max_concurrency``: parallel block transfers of one blob; ``max_single_put_size``: above it, uploads
        are staged in blocks of ``max_block_size``; ``list_page_size``: blobs per List Blobs page (1-5000);
        ``batch_delete``: ``"auto"`` (Blob Batch, falling back to single deletes for good once refused),
        ``"batch"`` or ``"single"``."""
        options = options or CloudOptions()
        if not isinstance(container, str) or not _CONTAINER_NAME.fullmatch(container):
            raise ConfigurationError(f"invalid container name {container!r}: 3-63 of a-z 0-9 and single hyphens")
        if max_concurrency < 1 or not 1 <= list_page_size <= 5000 or max_block_size < 1 or max_single_put_size < 1:
            raise ConfigurationError("max_concurrency and block sizes must be positive, list_page_size 1-5000")
        if batch_delete not in ("auto", "batch", "single"):
            raise ConfigurationError(f"batch_delete must be 'auto', 'batch' or 'single', not {batch_delete!r}")
        tiers = access_tiers(storage_classes)
        auth = AzureAuth.resolve(connection_string, account_url, credential)
        sdk = SdkClient(
            container,
            auth,
            tiers,
            options,
            max_concurrency=max_concurrency,
            max_single_put_size=max_single_put_size,
            max_block_size=max_block_size,
            list_page_size=list_page_size,
            batch_delete=batch_delete,
        )
        normalise_prefix(prefix)  # a bad prefix is refused before a data path is chosen
        super().__init__(container, _data_path(sdk, options), tiers, prefix=prefix, options=options)
        self.history_client = AzureHistory(sdk)  # on both data paths: obstore lists no versions


def _data_path(sdk: SdkClient, options: CloudOptions) -> ObjectClient:
    if options.client == "sdk":
        return sdk
    access = sdk.auth.obstore_access()
    refusal = access if isinstance(access, str) else None
    if not obstore_calls.chosen(options.client, refusal) or isinstance(access, str):
        if refusal is not None and obstore_calls.installed():
            logger.info("client='auto' falls back to the Azure SDK data path: %s", refusal)
        return sdk
    return ObstoreClient(sdk, access)
