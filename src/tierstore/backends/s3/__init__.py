"""Amazon S3 and S3-compatible stores: ``s3://bucket/prefix``.

The package: :mod:`.provider` declares it to tierstore (its ``TIERSTORE_S3_*`` settings, URL, extra, loggers);
:mod:`.backend` is :class:`S3Backend` (its contract); :mod:`.config` what one backend is configured with;
:mod:`.client` and :mod:`.obstore_client` the two data paths; :mod:`.failures` what a failure was; :mod:`.multipart`
and :mod:`.wire` the request details. Names are imported on first use: importing the package loads none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tierstore.backends import _lazy

if TYPE_CHECKING:
    from tierstore.backends.s3.backend import (
        ARCHIVE_CLASSES as ARCHIVE_CLASSES,
        DEFAULT_STORAGE_CLASSES as DEFAULT_STORAGE_CLASSES,
        STORAGE_CLASSES as STORAGE_CLASSES,
        S3Backend as S3Backend,
    )
    from tierstore.backends.s3.provider import (
        SCHEME as SCHEME,
        AddressingStyle as AddressingStyle,
        S3Settings as S3Settings,
        ServerSideEncryption as ServerSideEncryption,
        from_url as from_url,
    )

_EXPORTS = {
    **dict.fromkeys(("ARCHIVE_CLASSES", "DEFAULT_STORAGE_CLASSES", "STORAGE_CLASSES", "S3Backend"), "backend"),
    **dict.fromkeys(("SCHEME", "AddressingStyle", "S3Settings", "ServerSideEncryption", "from_url"), "provider"),
}
__all__ = sorted(_EXPORTS)
__getattr__ = _lazy.exports(__name__, _EXPORTS)
