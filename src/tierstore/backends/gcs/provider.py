"""What the GCS provider declares to the rest of tierstore: its ``TIERSTORE_GCS_*`` settings, how a ``gs://`` URL
builds a :class:`~tierstore.backends.gcs.GCSBackend`, its extra, SDK and loggers.

Contract: importing this module imports neither google-cloud-storage nor the shared cloud layer; the backend's
modules load when :func:`from_url` builds one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from tierstore.backends.registry import Location, Scheme
from tierstore.backends.shown import CredentialsHidden

if TYPE_CHECKING:
    from tierstore.backends.gcs.backend import GCSBackend
    from tierstore.config import TierstoreSettings


class GCSSettings(CredentialsHidden):
    """The GCS provider's own settings, each read from its ``TIERSTORE_GCS_*`` variable (see TierstoreSettings)."""

    gcs_project: str | None = Field(
        default=None,
        description="Google Cloud project of the client (TIERSTORE_GCS_PROJECT). Default: from Application "
        "Default Credentials.",
    )


def from_url(location: Location, settings: TierstoreSettings) -> GCSBackend:
    """The backend of a ``gs://bucket/prefix`` URL, configured by ``settings``. No I/O."""
    from tierstore.backends.gcs.backend import GCSBackend

    return GCSBackend(
        location.container,
        prefix=location.path or settings.prefix,
        project=settings.section(GCSSettings).gcs_project,
        storage_classes=settings.storage_classes or None,
        options=settings.cloud_options(),
    )


SCHEME = Scheme(
    "gs",
    from_url,
    container="bucket",
    example="gs://bucket/prefix",
    settings=GCSSettings,
    extra="gcs",
    sdk="google.cloud.storage",
    package="google-cloud-storage",
    loggers=("google", "requests", "urllib3"),
    exports={"GCSBackend": "tierstore.backends.gcs"},
)
