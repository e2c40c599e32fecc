"""tierstore: durable, tiered storage for an AI agent's paged memory.

Names are imported on first use, so ``import tierstore`` stays cheap and loads neither the cloud layer nor a cloud
SDK. Each storage provider's public names (``tierstore.S3Backend``, …) come from its declaration in
:mod:`tierstore.backends.registry`; one raises MissingDependencyError when its extra is missing. For a type
checker, import them from their package (``from tierstore.backends.s3 import S3Backend``).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tierstore.backends.base import (
        ObjectInfo as ObjectInfo,
        StorageBackend as StorageBackend,
    )
    from tierstore.backends.cloud import (
        CloudOptions as CloudOptions,
        RetryPolicy as RetryPolicy,
    )
    from tierstore.backends.filesystem import (
        FileSystemBackend as FileSystemBackend,
    )
    from tierstore.backends.memory import (
        InMemoryBackend as InMemoryBackend,
    )
    from tierstore.bridge import (
        ArtifactsBridge as ArtifactsBridge,
        bridge_from_env as bridge_from_env,
    )
    from tierstore.chuk.page_table import (
        Affinity as Affinity,
        PageTable as PageTable,
        PageTableEntry as PageTableEntry,
        PageTableStats as PageTableStats,
    )
    from tierstore.chuk.working_set import (
        AntiThrashPolicy as AntiThrashPolicy,
        PinnedSet as PinnedSet,
        TokenBudget as TokenBudget,
        WorkingSetConfig as WorkingSetConfig,
        WorkingSetManager as WorkingSetManager,
        WorkingSetStats as WorkingSetStats,
    )
    from tierstore.config import (
        TierstoreSettings as TierstoreSettings,
        backend_from_url as backend_from_url,
        load_settings as load_settings,
        parse_location as parse_location,
    )
    from tierstore.enums import (
        CompressionLevel as CompressionLevel,
        Modality as Modality,
        PageType as PageType,
        StorageTier as StorageTier,
    )
    from tierstore.errors import (
        AccessDeniedError as AccessDeniedError,
        ArchivedPageError as ArchivedPageError,
        BackendUnavailableError as BackendUnavailableError,
        ConfigurationError as ConfigurationError,
        ConflictError as ConflictError,
        IntegrityError as IntegrityError,
        InvalidInputError as InvalidInputError,
        MissingDependencyError as MissingDependencyError,
        NotSupportedError as NotSupportedError,
        ObjectNotFoundError as ObjectNotFoundError,
        ScopeErasingError as ScopeErasingError,
        StorageFullError as StorageFullError,
        TierstoreError as TierstoreError,
    )
    from tierstore.models import (
        CheckpointEntry as CheckpointEntry,
        CheckpointManifest as CheckpointManifest,
        MemoryPage as MemoryPage,
        PageEntry as PageEntry,
        PageMetadata as PageMetadata,
        PageState as PageState,
        PageVersion as PageVersion,
        StorageStats as StorageStats,
        UTCDateTime as UTCDateTime,
    )
    from tierstore.store import (
        SessionInfo as SessionInfo,
        Store as Store,
        UserInfo as UserInfo,
    )
    from tierstore.sync import (
        SyncBridge as SyncBridge,
    )

_EXPORTS = {
    "ArtifactsBridge": "tierstore.bridge",
    "SyncBridge": "tierstore.sync",
    "InMemoryBackend": "tierstore.backends.memory",
    "FileSystemBackend": "tierstore.backends.filesystem",
    "StorageBackend": "tierstore.backends.base",
    "RetryPolicy": "tierstore.backends.cloud",
    "CloudOptions": "tierstore.backends.cloud",
    "ObjectInfo": "tierstore.backends.base",
    "MemoryPage": "tierstore.models",
    "PageMetadata": "tierstore.models",
    "PageEntry": "tierstore.models",
    "PageState": "tierstore.models",
    "PageVersion": "tierstore.models",
    "UTCDateTime": "tierstore.models",
    "CheckpointManifest": "tierstore.models",
    "CheckpointEntry": "tierstore.models",
    "StorageStats": "tierstore.models",
    "Modality": "tierstore.enums",
    "StorageTier": "tierstore.enums",
    "CompressionLevel": "tierstore.enums",
    "PageType": "tierstore.enums",
    "TierstoreSettings": "tierstore.config",
    "backend_from_url": "tierstore.config",
    "bridge_from_env": "tierstore.bridge",
    **dict.fromkeys(("Store", "UserInfo", "SessionInfo"), "tierstore.store"),
    "parse_location": "tierstore.config",
    "load_settings": "tierstore.config",
    **dict.fromkeys(("PageTable", "PageTableEntry", "PageTableStats", "Affinity"), "tierstore.chuk.page_table"),
    **dict.fromkeys(
        ("WorkingSetManager", "WorkingSetConfig", "WorkingSetStats", "TokenBudget", "PinnedSet", "AntiThrashPolicy"),
        "tierstore.chuk.working_set",
    ),
    **{
        name: "tierstore.errors"
        for name in (
            "TierstoreError",
            "InvalidInputError",
            "ConfigurationError",
            "IntegrityError",
            "ConflictError",
            "ObjectNotFoundError",
            "ScopeErasingError",
            "ArchivedPageError",
            "BackendUnavailableError",
            "AccessDeniedError",
            "StorageFullError",
            "NotSupportedError",
            "MissingDependencyError",
        )
    },
}

__version__ = "0.1.0"


def _every_export() -> dict[str, str]:
    """The names above and each provider's (asked of the registry only here, so the bare import reads none)."""
    from tierstore.backends import registry

    return {**_EXPORTS, **registry.exports()}


def __getattr__(name: str) -> Any:
    """A public name, imported on first use (``__all__`` too: the providers' names are known once asked for)."""
    if name == "__all__":
        return sorted(_every_export())
    module = _EXPORTS.get(name)
    if module is None and not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is None:
        module = _every_export().get(name)  # not a submodule (``from tierstore import ids`` asks here first)
    if module is None:
        raise AttributeError(f"module 'tierstore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Every public name of the package."""
    return sorted(_every_export())
