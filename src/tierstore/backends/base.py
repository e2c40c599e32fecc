"""The backend protocol: what the bridge asks of a store of objects.

Contract (every adapter keeps to it; the contract suite in ``tests/contract`` checks it):

* A backend stores opaque ``bytes`` under string keys. It knows nothing of pages: the bridge chooses the keys
  (ASCII ``[A-Za-z0-9._-]``, at most :data:`MAX_KEY_LENGTH` characters), the metadata and the tags.
* ``put(..., if_absent=True)`` is an atomic create-if-absent that holds across processes: of two racing
  writers of different bytes exactly one succeeds, the other gets :class:`~tierstore.errors.ConflictError`.
  It is idempotent by content: finding the object already holding exactly these bytes counts as success,
  because a lost answer cannot be told from it (HTTP clients, aiohttp among them, even resend a PUT on their
  own after a dropped keep-alive connection). A plain ``put`` overwrites.
* ``metadata`` values are printable ASCII (the bridge percent-encodes them) and keys are lowercase letters and
  digits, except :data:`RESERVED_METADATA_KEYS` (obstore reads them as HTTP attributes: on one data path they
  would vanish or change how the object is served), refused on every backend; ``head`` returns exactly the
  mapping given to ``put``. ``tags`` are a few labels whose values use the
  character set shared by S3 and Azure; a backend without tags may fold them into nothing.
* ``get`` returns ``None`` for a missing key and raises :class:`~tierstore.errors.ArchivedPageError` for an
  object that must be restored first. ``delete`` returns whether the key existed (``delete_many`` does not say).
* ``list(prefix)`` yields every key under the prefix exactly once, paginating underneath, in no promised order;
  each entry's ``version``, where not None, changes whenever anything ``head`` reports may have (:class:`ListEntry`).
* ``set_tier(key, tier, tags=...)`` moves an object to another tier in place (its storage class follows) and
  merges ``tags`` into its tags; metadata and bytes stay as they are.
* Optional: ``delete_if_version(key, version) -> bool`` deletes ``key`` only while its :attr:`ObjectInfo.version` is
  ``version``, in one conditional request (False when it is not: changed, or gone). Memory and the clouds have it
  (S3 ``If-Match``, GCS ``ifGenerationMatch``, Azure ``If-Match``); the local disk has no atomic conditional
  unlink, so it does not. ``gc`` deletes expired leases with it (:mod:`tierstore.protocol.references`).
* Optional: ``delete_if_judged(key, judge) -> bool`` deletes ``key`` only while ``judge(bytes or None, last
  modified)`` accepts what is there, read and deleted in one step among such deletes: the local disk has it, under a
  lock (:mod:`tierstore.record_deletes` deletes version records with it, or with ``delete_if_version``).
* Optional: ``history(prefix)``, ``delete_versions(versions)`` and ``history_settings()`` list and delete the
  noncurrent versions, delete markers and generations a bucket keeps, and say what it keeps after a delete
  (:mod:`tierstore.backends.history`). The clouds have them (S3 ``ListObjectVersions`` and ``DeleteObjects`` by
  version id, GCS ``versions=true`` and delete by generation, Azure ``include=versions`` and delete by version id),
  on both data paths through the SDK; memory and the local disk keep no versions, so they do not. Erasure purges a
  scope's history with them (:mod:`tierstore.protocol.history`).
* Optional: ``discard_unfinished(prefix) -> int`` discards what killed writers left of writes of keys under
  ``prefix`` that is no object: the local disk's temporary files no write holds, S3's unfinished multipart uploads
  (aborted). Erasure calls it after E4. GCS and Azure have none to discard (README: erasure).
* Errors are translated into :mod:`tierstore.errors`; transient failures are retried inside the adapter with a
  bound, then surface as :class:`~tierstore.errors.BackendUnavailableError`.
* Constructors do no I/O; the first call connects. ``aclose`` releases clients; the backend is an async context
  manager.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, Protocol, Self, runtime_checkable

from tierstore.enums import StorageTier
from tierstore.errors import ConfigurationError, InvalidInputError

Capability = Literal["tiers", "archive", "tags", "range_reads"]
"""What a backend may offer beyond the core: keeping a tier per object (``set_tier``), archive classes that must
be restored before reading (``restore``), object tags, and ranged reads."""

RestoreSpeed = Literal["bulk", "standard", "expedited"]
"""How fast an archived object is brought back (S3 retrieval tiers; Azure maps ``expedited`` to High priority)."""

RestoreState = Literal["not-archived", "pending", "restored", "archived"]

Buffer = bytes | bytearray | memoryview
"""What ``get`` may return: any contiguous bytes."""


JOIN_AT_MOST = 1 << 20
"""Bodies up to this size are joined into bytes for an SDK (:meth:`Chunks.payload`)."""


class Chunks:
    """One body made of consecutive buffers that are never joined into one: a frame's header, then the page's
    content as the caller gave it. A backend writes the buffers one after the other (``views``), hands its SDK a
    file over them (``reader``), or a part of them (``window``); ``bytes(chunks)`` joins them where nothing else
    will do."""

    __slots__ = ("_size", "views")

    def __init__(self, *parts: Buffer) -> None:
        views = []
        size = 0
        for part in parts:  # a loop, not generators: one Chunks is made per page stored
            if len(part):
                view = memoryview(part) if isinstance(part, bytes) else memoryview(part).cast("B")
                views.append(view)
                size += len(view)
        self.views: tuple[memoryview, ...] = tuple(views)
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __bytes__(self) -> bytes:
        return self.views[0].tobytes() if len(self.views) == 1 else b"".join(self.views)

    def window(self, start: int, stop: int) -> Chunks:
        """The bytes from ``start`` to ``stop``, without a copy."""
        parts, offset = [], 0
        for view in self.views:
            lo, hi = max(start - offset, 0), min(stop - offset, len(view))
            if lo < hi:
                parts.append(view[lo:hi])
            offset += len(view)
        return Chunks(*parts)

    def digest(self, hasher: Any) -> Any:
        """``hasher`` (a ``hashlib`` object) updated with every byte, in order."""
        for view in self.views:
            hasher.update(view)
        return hasher

    def crc32(self) -> int:
        """The CRC-32 of every byte, in order, as :func:`zlib.crc32` gives it."""
        value = 0
        for view in self.views:
            value = zlib.crc32(view, value)
        return value

    def reader(self) -> io.BufferedReader:
        """A seekable file over the bytes, reading into the caller's buffers (no copy of the whole)."""
        return io.BufferedReader(_ChunksFile(self.views))

    def payload(self) -> bytes | io.BufferedReader:
        """What to hand an SDK: the joined bytes when small (SDKs spend far less CPU on bytes than on a file),
        else :meth:`reader`, so that a big page is never copied whole."""
        return bytes(self) if self._size <= JOIN_AT_MOST else self.reader()


Body = Buffer | Chunks
"""What ``put`` takes."""


def as_chunks(body: Body) -> Chunks:
    """``body`` as :class:`Chunks`: itself when it is one, else one buffer."""
    return body if isinstance(body, Chunks) else Chunks(body)


class _ChunksFile(io.RawIOBase):
    def __init__(self, views: tuple[memoryview, ...]) -> None:
        self._views = views
        self._size = sum(len(view) for view in views)
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = min(max(base + offset, 0), self._size)
        return self._position

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        written, offset = 0, 0
        for view in self._views:
            if written == len(target):
                break
            start = self._position - offset
            offset += len(view)
            if start >= len(view):
                continue
            piece = view[max(start, 0) : max(start, 0) + len(target) - written]
            target[written : written + len(piece)] = piece
            written += len(piece)
            self._position += len(piece)
        return written


MAX_KEY_LENGTH = 256
METADATA_BUDGET = 1800
"""Bytes of object metadata (keys + values) the bridge may ask for: inside S3's 2 KB with room for overhead."""
MAX_TAGS = 10
MAX_PREFIX_LENGTH = 1024 - MAX_KEY_LENGTH - 1
"""Characters of a prefix: with ``/`` and the longest key, an object name stays within the clouds' 1,024."""
MAX_PREFIX_SEGMENTS = 253
"""``/``-separated segments of a prefix: with the key's, an object name has at most Azure's 254 (Azurite does not
check; the limit is applied on every cloud, so a prefix works on each)."""
RESERVED_METADATA_KEYS: Final = frozenset(
    {"contenttype", "contentencoding", "cachecontrol", "contentdisposition", "contentlanguage", "storageclass"}
)
"""Metadata keys obstore takes for HTTP attributes (Content-Type, ..., the storage class), not user metadata."""

_KEY = re.compile(r"[A-Za-z0-9._-]+")
_PREFIX = re.compile(r"[A-Za-z0-9._\-/]+")
_METADATA_KEY = re.compile(r"[a-z][a-z0-9]{0,39}")
_TAG_TEXT = re.compile(r"[A-Za-z0-9 +\-=._:/@]*")


@dataclass(frozen=True, slots=True)
class RestoreStatus:
    """How far bringing an archived object back has come (``restore``'s answer, and ``head``'s)."""

    state: RestoreState
    expires_at: datetime | None = None
    """Until when a restored copy stays readable, where the provider says."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What ``head`` knows about an object without reading its body."""

    key: str
    size: int
    metadata: Mapping[str, str] = field(default_factory=dict)
    last_modified: datetime | None = None
    tier: StorageTier | None = None
    storage_class: str | None = None
    archived: bool = False
    """True when a ``get`` would raise ArchivedPageError (archived and not, or not yet, restored)."""
    restore: RestoreStatus | None = None
    version: str | None = None
    """A token that changes whenever the object's bytes may have changed (ETag, generation; on disk the inode
    and change time), or None when the backend cannot give one that is sure to: equal tokens mean the object holds
    the bytes it held when seen before. Checkpoint reuse relies on it (:mod:`tierstore.protocol`)."""


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One key ``list`` yields, with its size and, where the store says, when it was last written, its change token
    and its storage class."""

    key: str
    size: int
    last_modified: datetime | None = None
    version: str | None = None
    """A token sure to change whenever anything ``head`` reports of the object may have changed (its bytes, metadata,
    tier, storage class, archive state), or None where the listing cannot give one that is sure to: equal tokens of
    one key mean ``head`` would answer as it did when the token was seen. Stricter than :attr:`ObjectInfo.version`
    (bytes only) and not comparable with it. The catalog trusts its rows by it (:mod:`tierstore.catalog`)."""
    storage_class: str | None = None
    """The storage class the listing shows (S3, GCS, Azure and memory list it), else None."""


@runtime_checkable
class StorageBackend(Protocol):
    """The rich protocol the built-in backends implement. See the module docstring for the contract."""

    name: str
    persistent: bool
    capabilities: frozenset[Capability]

    async def put(
        self,
        key: str,
        data: Body,
        *,
        metadata: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        tier: StorageTier = StorageTier.L3,
        if_absent: bool = False,
    ) -> None:
        """Store ``data`` under ``key`` (overwriting; with ``if_absent``, an atomic create that is idempotent by
        content, else ConflictError), with its metadata, tags and tier."""
        ...

    async def get(self, key: str) -> Buffer | None:
        """The object's bytes; None when there is none, ArchivedPageError when it must be restored first."""
        ...

    async def get_range(self, key: str, start: int, length: int) -> Buffer | None:
        """``length`` bytes of the object from ``start``; None when there is no object."""
        ...

    async def head(self, key: str) -> ObjectInfo | None:
        """What is known of the object without reading its body; None when there is none."""
        ...

    async def delete(self, key: str) -> bool:
        """Delete the object; whether it existed."""
        ...

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Delete every key that exists, in as few requests as the store allows; says nothing of which existed."""
        ...

    def list(self, prefix: str = "") -> AsyncIterator[ListEntry]:
        """Every key under ``prefix`` exactly once, in no promised order."""
        ...

    async def set_tier(self, key: str, tier: StorageTier, *, tags: Mapping[str, str] | None = None) -> None:
        """Move the object to ``tier`` in place (its storage class follows), merging ``tags`` into its tags."""
        ...

    async def restore(self, key: str, *, days: int = 1, speed: RestoreSpeed = "standard") -> RestoreStatus:
        """Start or report bringing an archived object back for ``days``; where that stands."""
        ...

    def usage(self, prefix: str) -> tuple[int, int] | None:
        """``(objects, bytes)`` under the prefix when the backend knows them without I/O (local stores), else None."""
        ...

    async def aclose(self) -> None:
        """Release clients, threads and connections; the backend is not used after."""
        ...


class ClosingContext:
    """Mixin for backends: ``async with backend:`` calls ``aclose()`` on the way out."""

    async def aclose(self) -> None:
        """Nothing to release by default; a backend with clients overrides it."""
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def normalise_prefix(prefix: str) -> str:
    """An object-name prefix as every cloud adapter uses it: no leading or trailing ``/``, then one ``/`` added."""
    if not isinstance(prefix, str):
        raise ConfigurationError("prefix must be a string")
    prefix = prefix.strip("/")
    if prefix and not _PREFIX.fullmatch(prefix):
        raise ConfigurationError(f"invalid prefix {prefix!r}: expected A-Z a-z 0-9 . _ - /")
    if prefix and any(segment in ("", ".", "..") for segment in prefix.split("/")):
        # Clouds and HTTP clients read these as paths: obstore refuses them, an SDK may normalise them away.
        raise ConfigurationError(f"invalid prefix {prefix!r}: an empty, '.' or '..' path segment")
    if len(prefix) > MAX_PREFIX_LENGTH:
        raise ConfigurationError(f"invalid prefix: {len(prefix)} characters, at most {MAX_PREFIX_LENGTH}")
    if prefix.count("/") + 1 > MAX_PREFIX_SEGMENTS:
        raise ConfigurationError(
            f"invalid prefix: {prefix.count('/') + 1} path segments, at most {MAX_PREFIX_SEGMENTS}"
        )
    return f"{prefix}/" if prefix else ""


def check_key(key: str) -> str:
    """Refuse a key outside the safe alphabet before any request is built from it."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        raise InvalidInputError(
            f"invalid object key {key!r}: expected 1-{MAX_KEY_LENGTH} characters of A-Z a-z 0-9 . _ -"
        )
    if key in {".", ".."}:
        raise InvalidInputError(f"invalid object key {key!r}")
    return key


class Checked(dict[str, str]):
    """Metadata or tags that tierstore built itself within the rules of :func:`check_metadata` and
    :func:`check_tags` (the bridge's description of a page, from values it validated once): passed through, not
    checked again. Never made from a caller's values."""

    __slots__ = ()


def check_metadata(metadata: Mapping[str, str] | None, budget: int = METADATA_BUDGET) -> dict[str, str]:
    """Refuse metadata that some cloud would reject or mangle: keys [a-z][a-z0-9]*, printable ASCII values."""
    if type(metadata) is Checked:
        return metadata
    if not metadata:
        return {}
    try:  # the common case in a few C calls; anything amiss is found and named by the loop below
        values = "".join(metadata.values())
        if (
            values.isascii()
            and values.isprintable()
            and all(map(_METADATA_KEY.fullmatch, metadata))
            and RESERVED_METADATA_KEYS.isdisjoint(metadata)
            and sum(map(len, metadata)) + len(values) <= budget
        ):
            return dict(metadata)
    except TypeError:
        pass
    out: dict[str, str] = {}
    total = 0
    for name, value in metadata.items():
        if not isinstance(name, str) or not _METADATA_KEY.fullmatch(name):
            raise InvalidInputError(f"invalid metadata key {name!r}: expected [a-z][a-z0-9]*, at most 40 characters")
        if name in RESERVED_METADATA_KEYS:
            raise InvalidInputError(f"metadata key {name!r} is reserved: a data path would read it as an HTTP header")
        if not isinstance(value, str) or not value.isascii() or not value.isprintable():
            raise InvalidInputError(f"metadata value for {name!r} must be printable ASCII")
        total += len(name) + len(value)
        out[name] = value
    if total > budget:
        raise InvalidInputError(f"object metadata takes {total} bytes, over the budget of {budget}")
    return out


def check_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    """Refuse tags outside the limits S3 and Azure share: at most 10, keys 1-128, values 0-256 characters."""
    if type(tags) is Checked:
        return tags
    if not tags:
        return {}
    if len(tags) > MAX_TAGS:
        raise InvalidInputError(f"{len(tags)} tags given, at most {MAX_TAGS} allowed")
    for name, value in tags.items():
        if not (1 <= len(name) <= 128) or not _TAG_TEXT.fullmatch(name):
            raise InvalidInputError(f"invalid tag key {name!r}")
        if len(value) > 256 or not _TAG_TEXT.fullmatch(value):
            raise InvalidInputError(f"invalid value for tag {name!r}: {value!r}")
    return dict(tags)
