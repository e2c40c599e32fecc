"""Azure Blob Storage: ``az://container/prefix``.

The package: :mod:`.provider` declares it to tierstore (its ``TIERSTORE_AZURE_*`` settings, URL, extra, loggers);
:mod:`.backend` is :class:`AzureBlobBackend` (its contract); :mod:`.credentials` how credentials are read;
:mod:`.client` and :mod:`.obstore_client` the two data paths; :mod:`.batch` Blob Batch deletes; :mod:`.failures`
what a failure was. Names are imported on first use: importing the package loads none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tierstore.backends import _lazy

if TYPE_CHECKING:
    from tierstore.backends.azure.backend import (
        ACCESS_TIERS as ACCESS_TIERS,
        BATCH_LIMIT as BATCH_LIMIT,
        DEFAULT_STORAGE_CLASSES as DEFAULT_STORAGE_CLASSES,
        TIER_RECORD_TAG as TIER_RECORD_TAG,
        AzureBlobBackend as AzureBlobBackend,
    )
    from tierstore.backends.azure.provider import (
        SCHEME as SCHEME,
        AzureSettings as AzureSettings,
        BatchDeleteMode as BatchDeleteMode,
        from_url as from_url,
    )

_EXPORTS = {
    **dict.fromkeys(
        ("ACCESS_TIERS", "BATCH_LIMIT", "DEFAULT_STORAGE_CLASSES", "TIER_RECORD_TAG", "AzureBlobBackend"), "backend"
    ),
    **dict.fromkeys(("SCHEME", "AzureSettings", "BatchDeleteMode", "from_url"), "provider"),
}
__all__ = sorted(_EXPORTS)
__getattr__ = _lazy.exports(__name__, _EXPORTS)
