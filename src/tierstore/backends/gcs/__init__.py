"""Google Cloud Storage: ``gs://bucket/prefix``.

The package: :mod:`.provider` declares it to tierstore (its ``TIERSTORE_GCS_*`` settings, URL, extra, loggers);
:mod:`.backend` is :class:`GCSBackend` (its contract); :mod:`.client` and :mod:`.calls` the requests through the
SDK; :mod:`.metadata` how tags and the tier record are kept; :mod:`.failures` what a failure was. Names are imported
on first use: importing the package loads none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tierstore.backends import _lazy

if TYPE_CHECKING:
    from tierstore.backends.gcs.backend import (
        CHUNK_MULTIPLE as CHUNK_MULTIPLE,
        DEFAULT_STORAGE_CLASSES as DEFAULT_STORAGE_CLASSES,
        MAX_MULTIPART_SIZE as MAX_MULTIPART_SIZE,
        STORAGE_CLASSES as STORAGE_CLASSES,
        TAG_PREFIX as TAG_PREFIX,
        TIER_KEY as TIER_KEY,
        GCSBackend as GCSBackend,
    )
    from tierstore.backends.gcs.provider import (
        SCHEME as SCHEME,
        GCSSettings as GCSSettings,
        from_url as from_url,
    )

_EXPORTS = {
    **dict.fromkeys(
        (
            "CHUNK_MULTIPLE",
            "DEFAULT_STORAGE_CLASSES",
            "MAX_MULTIPART_SIZE",
            "STORAGE_CLASSES",
            "TAG_PREFIX",
            "TIER_KEY",
            "GCSBackend",
        ),
        "backend",
    ),
    **dict.fromkeys(("SCHEME", "GCSSettings", "from_url"), "provider"),
}
__all__ = sorted(_EXPORTS)
__getattr__ = _lazy.exports(__name__, _EXPORTS)
