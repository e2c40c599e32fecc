"""The one error taxonomy of tierstore.

Every error tierstore raises on purpose derives from :class:`TierstoreError`. Adapters translate their
SDK's exceptions into these types; nothing above the adapters ever sees a provider exception.
Messages never contain credentials: adapters build them from keys, status codes and error codes only.
"""

from __future__ import annotations


class TierstoreError(Exception):
    """Base class of every error tierstore raises on purpose."""


class InvalidInputError(TierstoreError, ValueError):
    """Bad input (ids, metadata, settings) refused before any I/O."""


class ConfigurationError(InvalidInputError):
    """A setting, URL or environment variable is wrong or missing."""


class NotAStoreError(ConfigurationError):
    """The local store's directory holds files tierstore did not write and no mark of a store (see
    :mod:`tierstore.backends.disk_root`): refused before anything in it is read or written. Also what ``fsck``,
    ``gc`` and ``migrate``'s source raise for a local path that does not exist: there is no store to read."""


class IntegrityError(TierstoreError):
    """Stored bytes do not match what was written (checksum, length, format or identity)."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class ObjectNotFoundError(TierstoreError, LookupError):
    """An operation that needs an existing object (tier change, restore) found none."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object {key!r}")
        self.key = key


class ConflictError(TierstoreError):
    """A create-if-absent write found the object already there."""

    def __init__(self, key: str) -> None:
        super().__init__(f"object {key!r} already exists")
        self.key = key


class InUseError(ConflictError):
    """A tier change refused because a checkpoint in progress (or a running agent's lease) names the artifact: its
    manifest would name it in the tier it has now. Try again once that checkpoint has ended."""

    def __init__(self, key: str, holder: str) -> None:
        TierstoreError.__init__(self, f"{key} is in use by {holder}: try again once it has ended")
        self.key = key
        self.holder = holder


class ScopeErasingError(ConflictError):
    """A checkpoint refused because its scope is being erased (``delete_user`` / ``delete_session``, or an erasure
    that crashed and waits to be resumed): nothing of it was listed, and what it uploaded was deleted."""

    def __init__(self, key: str, scope: str) -> None:
        where = scope or "(root)"
        TierstoreError.__init__(self, f"checkpoint {key}: its scope {where} is being erased; nothing was listed")
        self.key = key
        self.scope = scope


class ArchivedPageError(TierstoreError):
    """The object sits in an archive class and must be restored before it can be read. Raised by
    ``restore_checkpoint``, it names the checkpoint and every archived page of it (``archived``: artifact id to page
    id); ``key`` is the first of them."""

    def __init__(
        self, key: str, *, pending: bool = False, checkpoint: str | None = None, archived: dict[str, str] | None = None
    ) -> None:
        state = "a restore is already in progress" if pending else "no restore has been requested"
        if checkpoint is None or not archived:
            message = (
                f"artifact {key!r} is archived and cannot be read until it is restored ({state}); "
                f"call `await bridge.restore_page({key!r})` and load it again once the restore completes"
            )
        else:
            named = ", ".join(f"page {page!r} ({artifact})" for artifact, page in list(archived.items())[:10])
            more = f" and {len(archived) - 10} more" if len(archived) > 10 else ""
            message = (
                f"checkpoint {checkpoint} cannot be restored until its archived pages are: {named}{more}; restore "
                f"them with `tierstore checkpoints restore {checkpoint}` (or `tierstore restore ID` for each, or "
                f"`await bridge.restore_page(ID)`), then restore the checkpoint again once the restores complete"
            )
        super().__init__(message)
        self.key = key
        self.pending = pending
        self.checkpoint = checkpoint
        self.archived = dict(archived or {key: ""})


class BackendUnavailableError(TierstoreError):
    """The storage service could not be reached, or kept failing after the bounded retries."""


class AccessDeniedError(TierstoreError):
    """The credentials in use are not allowed to perform the operation (or the local store is read-only)."""


class StorageFullError(TierstoreError):
    """The store has no room left for the write (a full disk, an exhausted quota).

    Deleting still works on a full store: ``delete_page``, ``delete_checkpoint`` and ``gc`` free space.
    """


class NotSupportedError(TierstoreError):
    """The backend does not offer the capability the call needs."""


class MissingDependencyError(TierstoreError, ImportError):
    """An optional extra is not installed; the message names the exact pip command."""

    def __init__(self, extra: str, package: str) -> None:
        super().__init__(
            f"this needs the {package!r} package, which tierstore installs with its {extra!r} extra: "
            f"pip install 'tierstore[{extra}]'"
        )
        self.extra = extra
        self.package = package
