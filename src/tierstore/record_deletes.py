"""Deleting a version record only as it was judged (issue 28: the latest version is the last one stored).

Why: numbers a deletion frees at the top are given again (:mod:`tierstore.versions`), so the key of a record that
``gc``, ``fsck --repair``, ``delete_page`` or ``delete_page_id`` judged deletable may, by the time the delete lands,
hold the record of a later store of that page id: another gc run, or a ``delete_page``, deleted the judged record and
the store claimed the freed number. A delete by key would then remove the newest version's record; the page id would
load its older version as the latest, and list without the newest.

Contract: :func:`delete_as_judged` deletes the object at a key only while the object there is one its caller's
``judge`` accepts, and every deletion of a version record by gc, repair, ``delete_page`` and ``delete_page_id`` goes
through it. It reads the object (``head``, then ``get`` unless the judge looks at the time alone), asks
``judge``, and deletes on a condition that the object is still the one read:

* the local disk (``delete_if_judged``): read, judged and unlinked in one step under an exclusive lock on the store's
  ``objects`` directory, which every such delete takes. A create-if-absent cannot land on a name that exists, and no
  other such delete can remove the object in between, so what is unlinked is what was judged. (Only a delete that
  judges nothing could remove it in that instant, an erasure of the scope: the store is then being erased anyway.)
* memory and the clouds (``delete_if_version``: S3 ``If-Match``, GCS ``ifGenerationMatch``, Azure ``If-Match``): the
  ``head`` comes before the ``get``, and the delete is conditional on the version token the ``head`` gave. It succeeds
  only while the key holds that very write (a record's bytes are unique to its write, so even an S3 ETag tells it),
  which was there from the ``head`` through the ``delete``, so the bytes judged are its bytes. fake-gcs-server ignores
  the condition on a delete (real GCS honours it): on that emulator the race stays, a strict xfail in the tests.
* a backend with neither: judged, then deleted by key; the race stays open for the length of one request.

The judges: ``gc`` and repair delete a stale record only while the record there was written before their cutoff,
the store's time read before they listed the records (a record written and deleted again) less the grace period.
Whatever is at the key when the delete lands and was written before the cutoff was there before the listing and
is still there: it is the record listed and judged. A record a store wrote at that key since (the judged one deleted
meanwhile by another gc run or a ``delete_page``) is younger: kept. ``delete_page`` deletes the record only while it
names the artifact it deleted, ``delete_page_id`` only while it names one of the artifacts it deleted (or cannot be
read, as judged), and ``fsck --repair`` a record it wrote for a page gone meanwhile only while it names that
page: a later store's record names its own artifact (ids are never issued twice: :mod:`tierstore.allocator`).

Why it holds against everything else that touches records: a store only creates (create-if-absent), so its record
goes only through a deleter whose judge accepts it; gc and repair accept only records older than their cutoff, and
``delete_page`` and ``delete_page_id`` only records naming what they deleted. Two deleters judging one record both
delete on their condition: one deletes it, the other finds it gone or another record there, and deletes nothing.
What deletes records without judging them is an erasure (the whole scope) and, on the local disk, a put that
overwrites (``fsck --repair`` replacing a damaged record in place) landing inside the locked step: the conditional
delete of the clouds catches that one, the disk's lock does not (it would need every write to take it).

Stale records and in-flight stores (:func:`stale_grace`): a record naming no page is also the mark of a store in
flight, between its record and its page. Whatever the grace period asked for (``gc --grace 0s``), a stale record is
deleted only once it is older than the settle period of the store (:func:`tierstore.protocol.erasure.settle_period`:
the longest a ``store_page`` may take there, 10 s on the local disk and memory, the request deadline times its
attempts on a cloud; ``gc(settle=...)`` and ``repair(settle=...)`` set it, as an erasure's). A store whose process
is stopped for longer than that between its record and its page may still lose its record, as an erasure may miss it
(:mod:`tierstore.protocol.erasure`); its page then lands unnamed and ``fsck --repair`` gives it back its record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from tierstore.backends.base import StorageBackend
from tierstore.codec import Buffer, Codec
from tierstore.concurrency import bounded_gather
from tierstore.errors import IntegrityError, NotSupportedError
from tierstore.version_records import VersionRecord

logger = logging.getLogger(__name__)

Judge = Callable[[Buffer | None, datetime | None], bool]
"""Whether to delete the object read: its bytes (None: there, but it cannot be read) and its last-modified time."""


async def delete_as_judged(backend: StorageBackend, key: str, judge: Judge, *, by_bytes: bool = True) -> bool:
    """Delete the object at ``key`` only while ``judge`` accepts the object there (module contract); whether it
    was deleted. ``by_bytes=False``: ``judge`` looks at the time alone, so a store with a conditional delete is not
    asked for the bytes (the delete's condition on the ``head``'s token stands for them)."""
    on_disk = getattr(backend, "delete_if_judged", None)
    if on_disk is not None:
        try:
            done: bool = await on_disk(key, judge)
        except IntegrityError as exc:  # the backend refuses (on disk, a directory with files in it)
            logger.info("kept %s: %s", key, exc)
            return False
        return done
    try:
        info = await backend.head(key)
    except IntegrityError:
        info, token, written = None, None, None
    else:
        if info is None:
            return False
        token, written = info.version, info.last_modified
    data: Buffer | None = None
    if by_bytes:
        try:
            data = await backend.get(key)
        except IntegrityError:
            pass  # judged as unreadable
        else:
            if data is None:
                return False
    if not judge(data, written):
        return False
    conditional = getattr(backend, "delete_if_version", None)
    if conditional is not None and token is not None:
        try:
            gone: bool = await conditional(key, token)
        except NotSupportedError:
            pass
        else:
            return gone
    try:
        return await backend.delete(key)
    except IntegrityError as exc:  # the backend refuses (on disk, a directory with files in it)
        logger.info("kept %s: %s", key, exc)
        return False


def naming(codec: Codec, page_id: str, key: str, artifact: str | None) -> Judge:
    """The judge of a record deleted with its page: it names ``artifact`` (None: it cannot be read, as judged)."""

    def judge(data: Buffer | None, _written: datetime | None) -> bool:
        try:
            if data is None:
                raise IntegrityError(f"version record {key} cannot be read", key=key)
            named: str | None = VersionRecord.parse(key, codec.decode_record(data, key), page_id).artifact_id
        except IntegrityError:
            named = None
        return named == artifact

    return judge


async def delete_named(
    backend: StorageBackend, codec: Codec, page_id: str, records: Sequence[tuple[str, str | None]], concurrency: int
) -> None:
    """Delete each version record of ``page_id`` at its key only while it names its artifact (None: while it cannot
    be read), as :func:`naming` judges."""
    judged = (delete_as_judged(backend, key, naming(codec, page_id, key, artifact)) for key, artifact in records)
    await bounded_gather(judged, concurrency)


def written_by(cutoff: datetime) -> Judge:
    """The judge of a stale record: written before ``cutoff`` (module contract)."""

    def judge(_data: Buffer | None, written: datetime | None) -> bool:
        if written is None:
            return False
        # Strictly before: a store's time and a record's may share a tick (a second, on S3).
        return (written if written.tzinfo else written.replace(tzinfo=UTC)) < cutoff

    return judge


async def delete_stale(backend: StorageBackend, keys: Sequence[str], cutoff: datetime, concurrency: int) -> list[str]:
    """Delete the stale version records at ``keys`` while the record there was written before ``cutoff``; those
    deleted."""
    judge = written_by(cutoff)
    done = await bounded_gather((delete_as_judged(backend, key, judge, by_bytes=False) for key in keys), concurrency)
    deleted = [key for key, gone in zip(keys, done, strict=True) if gone]
    for key in deleted:
        logger.info("deleted version record without its page %s", key)
    return deleted


def stale_grace(backend: StorageBackend, grace: timedelta, settle: timedelta | None = None) -> timedelta:
    """The age a stale version record must reach to be deleted: ``grace``, and at least ``settle``, the longest a
    ``store_page`` may take on ``backend`` (default: its settle period), whatever ``grace`` is (module contract)."""
    from tierstore.protocol.erasure import settle_period  # erasure imports the scopes' layers; keep them out

    return max(grace, settle_period(backend) if settle is None else settle)
