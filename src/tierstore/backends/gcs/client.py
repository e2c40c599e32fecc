"""The requests GCSBackend makes, through the official, synchronous ``google-cloud-storage`` library.

Contract (what :class:`~tierstore.backends.cloud.client.ObjectClient` asks, and what only GCS does):

* Every library call runs in a thread pool this client owns (``options.pool_size`` threads, started on demand),
  never on the event loop; the HTTP session keeps one pooled connection per thread. A call whose caller stops
  waiting (its deadline passed, or it was cancelled) is aborted (:mod:`.calls`): if it has not started it never
  runs, and the sockets of its requests are shut, so no thread stays blocked on a server that trickles an answer
  (which no per-read timeout ends). ``aclose`` aborts every call still running and waits for none of them.
  The library's background fetch of bucket metadata for its tracing is switched off: no request leaves outside
  the pool. The library's client is made on the first call, in the pool (finding Application Default
  Credentials may query a metadata server), and closed by :meth:`GCSClient.aclose`.
* Each request is one attempt: the library's own retries are off (``retry=None`` on every call, no urllib3
  retries) and each attempt is bounded by ``timeout=(connect, read)`` from the options. The shared loop retries.
* ``put`` is a multipart upload up to ``multipart_threshold`` bytes, else a resumable one in ``chunk_size``
  pieces; ``if_absent`` sends ``ifGenerationMatch=0``. The digest hook compares the object's ``md5Hash``.
* Custom metadata carries user metadata, folded tags and the recorded tier (:mod:`.metadata`).
* ``set_class`` rewrites the object onto itself with ``ifGenerationMatch`` (new class and metadata in one write),
  or, within one class, patches the metadata with ``ifMetagenerationMatch``; a lost race re-reads and tries again.
* GCS reads every storage class directly: nothing is ever archived, ``restore`` is never needed.
* No batch delete: fake-gcs-server, the emulator the tests use, has none (``batch_limit = 0``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from tierstore.backends._optional import require
from tierstore.backends.base import Buffer, Chunks, RestoreSpeed
from tierstore.backends.cloud.client import Calls, Head, Listed, page_size
from tierstore.backends.cloud.failure import Failure
from tierstore.backends.cloud.options import CloudOptions
from tierstore.backends.gcs.calls import Job, pool_classes
from tierstore.backends.gcs.failures import BucketMissing, classify
from tierstore.backends.gcs.metadata import fold, retiered, unfold
from tierstore.enums import StorageTier

T = TypeVar("T")

MAX_MULTIPART_SIZE: Final = 8 * 1024 * 1024
"""The library sends anything larger as a resumable upload whatever it is asked."""
CHUNK_MULTIPLE: Final = 256 * 1024
LIST_PAGE_SIZE: Final = 1000
"""GCS's largest page (fake-gcs-server returns everything in one page unless asked for a size)."""
CONTENT_TYPE: Final = "application/octet-stream"
RACE_ATTEMPTS: Final = 3
"""Tier changes that lose a race with another writer (a 412 on the generation read just before) re-read and retry."""
_EXTRA: Final = "gcs"
_PACKAGE: Final = "google-cloud-storage"
_CREDENTIAL_FIELDS: Final = ("token", "refresh_token", "client_secret")


class GCSClient:
    """Google Cloud Storage's requests through google-cloud-storage on pool threads, one attempt each,
    ended by a call's deadline; GCS has no tags and no batch delete here."""

    has_tags = False
    batch_limit = 0

    def __init__(
        self,
        bucket: str,
        *,
        project: str | None,
        credentials: Any,
        client_options: Mapping[str, Any] | Any,
        options: CloudOptions,
        multipart_threshold: int,
        chunk_size: int,
    ) -> None:
        self.bucket_name = bucket
        self.threads = options.pool_size
        self.timeout = (options.connect_timeout, options.read_timeout)
        self.multipart_threshold = multipart_threshold
        self.chunk_size = chunk_size
        self._project = project
        self._credentials = credentials
        self._client_options = client_options
        self._pool: ThreadPoolExecutor | None = None
        self._running: set[Job] = set()
        self._client: Any = None
        self._bucket: Any = None
        self._opening = threading.Lock()
        self._pid = os.getpid()

    # -- plumbing ---------------------------------------------------------------------------------------------

    def classify(self, error: BaseException) -> Failure:
        return classify(error)

    def _forget_the_parents(self) -> None:
        """In a forked child: the pool's threads stayed in the parent, and the client's pooled connections are
        sockets the parent still uses."""
        self._pool, self._client, self._bucket, self._running = None, None, None, set()
        self._opening, self._pid = threading.Lock(), os.getpid()

    async def _in_pool(self, work: Callable[[], T]) -> T:
        if self._pid != os.getpid():
            self._forget_the_parents()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="tierstore-gcs")
        job = Job()
        self._running.add(job)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, job.run, work)
        except asyncio.CancelledError:
            job.abort()  # nothing the call started outlives it
            raise
        finally:
            self._running.discard(job)

    def _open(self) -> Any:
        """The library's bucket handle, making the client on first use (runs in a pool thread)."""
        with self._opening:
            if self._bucket is None:
                storage = require("google.cloud.storage", extra=_EXTRA, package=_PACKAGE)
                adapters = require("requests.adapters", extra=_EXTRA, package=_PACKAGE)
                client = storage.Client(
                    project=self._project, credentials=self._credentials, client_options=self._client_options
                )
                # One pooled connection per thread (the library's default pool holds 10), and no urllib3 retries.
                adapter = adapters.HTTPAdapter(pool_connections=1, pool_maxsize=self.threads, max_retries=0)
                adapter.poolmanager.pool_classes_by_scheme = pool_classes()  # connections an abort can shut
                client._http.mount("https://", adapter)
                client._http.mount("http://", adapter)
                if hasattr(client, "_bucket_metadata_cache"):
                    # Off: it fetches each bucket once in a thread of its own, under the library's own retry, only
                    # to label tracing spans (it needs storage.buckets.get, which backends/gcp does not grant).
                    client._bucket_metadata_cache = None
                self._client, self._bucket = client, client.bucket(self.bucket_name)
            return self._bucket

    def _reloaded(self, name: str) -> Any:
        """The object's resource (raises the library's NotFound when there is none)."""
        blob = self._open().blob(name)
        blob.reload(timeout=self.timeout, retry=None)
        return blob

    def check_metadata(self, metadata: Mapping[str, str]) -> None:
        """Nothing beyond the shared checks: folded, the largest metadata and tags fit GCS's 8 KiB (see .metadata)."""

    # -- writes -----------------------------------------------------------------------------------------------

    async def put(
        self,
        name: str,
        data: Chunks,
        *,
        metadata: Mapping[str, str],
        tags: Mapping[str, str],
        storage_class: str,
        tier: StorageTier,
        if_absent: bool,
        calls: Calls,
    ) -> None:
        custom = fold(metadata, tags, tier)

        def upload() -> None:
            blob = self._open().blob(name, chunk_size=self.chunk_size)
            blob.metadata = custom
            blob.storage_class = storage_class
            multipart = len(data) <= self.multipart_threshold
            try:
                blob.upload_from_file(
                    data.reader(),
                    # With a size (at most 8 MiB) the library sends one multipart request; without, a resumable upload.
                    size=len(data) if multipart else None,
                    content_type=CONTENT_TYPE,
                    if_generation_match=0 if if_absent else None,
                    timeout=self.timeout,
                    retry=None,
                )
            except Exception as exc:
                _raise_if_bucket_missing(exc)
                raise

        await self._in_pool(upload)

    async def holds(self, name: str, data: Chunks) -> bool | None:
        stored: str | None = await self._in_pool(lambda: self._reloaded(name).md5_hash)
        if stored is None:
            return None  # composite objects carry no MD5: the backend compares the bytes
        digest = data.digest(hashlib.md5(usedforsecurity=False)).digest()  # GCS's own md5Hash
        return stored == base64.b64encode(digest).decode("ascii")

    async def set_class(
        self, name: str, storage_class: str, tier: StorageTier, tags: Mapping[str, str], calls: Calls
    ) -> None:
        await self._in_pool(lambda: self._retier(name, storage_class, tier, tags))

    def _retier(self, name: str, storage_class: str, tier: StorageTier, tags: Mapping[str, str]) -> None:
        from google.api_core.exceptions import PreconditionFailed

        for attempt in range(1, RACE_ATTEMPTS + 1):
            blob = self._reloaded(name)
            current = dict(blob.metadata or {})
            wanted = retiered(current, tier, tags)
            try:
                if blob.storage_class != storage_class:
                    # The rewrite sends the blob's resource: the new metadata lands in the same write.
                    blob.metadata = wanted
                    blob.update_storage_class(
                        storage_class, if_generation_match=blob.generation, timeout=self.timeout, retry=None
                    )
                elif wanted != current:
                    blob.metadata = wanted
                    blob.patch(if_metageneration_match=blob.metageneration, timeout=self.timeout, retry=None)
                return
            except PreconditionFailed:
                if attempt == RACE_ATTEMPTS:
                    raise

    async def restore(self, name: str, *, days: int, speed: RestoreSpeed) -> None:
        """Never asked for: GCS reads ARCHIVE objects directly, so no object is ever reported archived."""

    # -- reads ------------------------------------------------------------------------------------------------

    async def get(self, name: str, start: int, length: int | None) -> Buffer:
        # A whole object is asked for without a range, so that the library checks its CRC32C/MD5.
        first = None if start == 0 and length is None else start
        end = None if length is None else start + length - 1

        def download() -> bytes:
            blob = self._open().blob(name)
            data: bytes = blob.download_as_bytes(start=first, end=end, timeout=self.timeout, retry=None)
            return data

        return await self._in_pool(download)

    async def head(self, name: str) -> Head:
        blob = await self._in_pool(lambda: self._reloaded(name))
        stored = unfold(blob.metadata)
        return Head(
            size=int(blob.size or 0),
            metadata=stored.metadata,
            last_modified=blob.updated,
            storage_class=blob.storage_class,
            recorded_tier=stored.tier,
            version=None if blob.generation is None else str(blob.generation),
        )

    async def list_page(
        self, prefix: str, token: str | None, limit: int | None = None
    ) -> tuple[Sequence[Listed], str | None]:
        def fetch() -> tuple[list[Listed], str | None]:
            bucket = self._open()
            blobs = self._client.list_blobs(
                bucket,
                prefix=prefix,
                page_size=page_size(limit, LIST_PAGE_SIZE),
                page_token=token,
                fields="items(name,size,updated,generation,metageneration,storageClass),nextPageToken",
                timeout=self.timeout,
                retry=None,
            )
            try:
                page = next(blobs.pages, None)
            except Exception as exc:
                _raise_if_bucket_missing(exc)
                raise
            found = [] if page is None else [listed(b) for b in page]
            next_token: str | None = blobs.next_page_token
            return found, next_token

        return await self._in_pool(fetch)

    # -- deletes ----------------------------------------------------------------------------------------------

    async def delete(self, name: str) -> None:
        await self._in_pool(lambda: self._open().delete_blob(name, timeout=self.timeout, retry=None))

    async def delete_if(self, name: str, version: str) -> None:
        """Delete only while the object's generation is ``version`` (``ifGenerationMatch``: 412 otherwise)."""
        generation = int(version)
        await self._in_pool(
            lambda: self._open().delete_blob(name, if_generation_match=generation, timeout=self.timeout, retry=None)
        )

    async def delete_batch(self, names: Sequence[str]) -> list[tuple[str, Failure]] | None:
        return None  # batch_limit is 0: never called

    # -- the rest ---------------------------------------------------------------------------------------------

    def secrets(self) -> list[str]:
        found = [getattr(self._credentials, field, None) for field in _CREDENTIAL_FIELDS]
        return [value for value in found if isinstance(value, str) and value]

    def describe(self) -> str:
        options = self._client_options
        endpoint = (
            options.get("api_endpoint") if isinstance(options, Mapping) else getattr(options, "api_endpoint", None)
        )
        if endpoint:
            return f", endpoint={endpoint!r}"
        emulator = os.environ.get("STORAGE_EMULATOR_HOST")  # google-cloud-storage's own variable
        if emulator:
            parts = urlsplit(emulator if "://" in emulator else f"http://{emulator}")
            shown = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
            return f", endpoint={shown!r} from STORAGE_EMULATOR_HOST"
        return ""

    async def aclose(self) -> None:
        client, pool, running = self._client, self._pool, list(self._running)
        self._client = self._bucket = self._pool = None
        for job in running:
            job.abort()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if client is not None:
            # Not in the pool, whose threads may all be busy: it only closes the idle pooled connections.
            try:
                await asyncio.to_thread(client.close)
            except RuntimeError:  # at interpreter exit (a SyncBridge's finalizer) no executor takes new work
                client.close()


def _raise_if_bucket_missing(error: Exception) -> None:
    from google.api_core.exceptions import NotFound

    if isinstance(error, NotFound):
        raise BucketMissing(error) from error


def listed(blob: Any) -> Listed:
    """One listed blob. Its token is generation and metageneration: a rewrite (new bytes, or a new storage class)
    makes a new generation, a metadata patch (a tier change within one class) a new metageneration."""
    generation, metageneration = blob.generation, blob.metageneration
    token = None if generation is None or metageneration is None else f"{generation}.{metageneration}"
    return Listed(blob.name, int(blob.size or 0), blob.updated, token, blob.storage_class)
