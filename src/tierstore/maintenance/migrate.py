"""``migrate``: copy every page and checkpoint between two backends, keeping keys: the root's and every scope's.

Artifact and checkpoint ids stay valid. Each frame is verified before it is written and the copy is compared
after. A copy already at the destination is read and verified against the source's frame before it is counted as
there, so an interrupted migration resumes and a re-run finds damage: a copy that does not verify (a flipped bit,
truncated, unreadable) is replaced by the source's verified one and reported as repaired; one that verifies but
holds another object is a conflict, reported and left alone. A manifest is copied only once all its artifacts are
there, so the destination never lists a half-copied checkpoint. A scope being erased at the source (an erasing
tomb in it or in its user's scope: ``delete_user`` / ``delete_session`` under way, or one that stopped and waits to
be resumed) is not copied at all, nor its registry record: an erasure asked for never comes back at the destination.
Nor does one asked for while the migration runs. At its end migrate lists the source's scoped keys, then its registry
records; every scope erasing there then (an erasing tomb listed), or erased since the start, is erased at the
destination (:func:`~tierstore.protocol.erasure.erase_scope`, no settle wait: nothing else writes there), what an
earlier, interrupted run copied of it too, and the copy's problems in it are dropped (its objects vanished as they
were erased). Erased since the start: its registry record, listed at the start, is gone or written anew (a bridge
writes it once; only an erasure deletes it, but for ``fsck --repair`` of an unreadable one), and none of the pages and
manifests listed in it at the start is left (an erasure deletes them all before the record; their ids are never used
again), in the last listing or, when some were there, in a listing of the scope after the records' (an erasure that
ended while the last listing was inside the scope). A scope without a registry record at the start (one written
before scopes were registered, or whose unreadable record a repair deleted) counts only by an erasing tomb listed. An
erasure that begins after these listings is ordered after the migration. The report names them all (``erasing``);
finish the erasure at the source. Deletions are not mirrored: what the source deletes otherwise, or erases between
runs, stays at the destination (erase a scope there with ``users rm`` / ``sessions rm --url DST``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from tierstore import ids
from tierstore.artifacts.scoped import PrefixedBackend
from tierstore.backends.base import ListEntry, StorageBackend
from tierstore.codec import PLAIN, Codec
from tierstore.concurrency import Progress, bounded_gather
from tierstore.enums import StorageTier
from tierstore.errors import ArchivedPageError, ConflictError, IntegrityError
from tierstore.maintenance.doctor import require_storage_backend, require_store
from tierstore.maintenance.fsck import listed
from tierstore.maintenance.reports import MigrateReport, Problem
from tierstore.protocol.erasure import ErasureOptions, erase_scope
from tierstore.protocol.records import DELETED_SUFFIX, is_erasing_tomb
from tierstore.scope_codec import ScopedCodec
from tierstore.scopes import RECORD_PREFIX, SCOPED_PREFIX, scope_of, scope_of_record

Outcome = Literal["copied", "skipped", "repaired"]
_AT_ONCE = ErasureOptions(settle=timedelta(0))
"""How migrate erases a scope at the destination: no settle wait, since no bridge writes there during a migration."""


_COPIED_AS: dict[ids.KeyKind, Literal["page", "record", "manifest"]] = {
    "page": "page",
    "manifest": "manifest",
    "tomb": "record",  # a deleted tomb: the destination must never issue its ids again
    "version record": "record",  # without it a copied version is found by no page id
}


_ROLES: tuple[Literal["page", "record", "manifest"], ...] = ("page", "record", "manifest")


@dataclass(frozen=True)
class _Place:
    """The root, or one scope: both sides seen from inside its prefix, its codec, and what the source holds there."""

    prefix: str
    source: StorageBackend
    destination: StorageBackend
    codec: Codec
    """Verifies pages, tombs and records (a scope's binds them to the whole key)."""
    pages: list[str]
    records: list[str]
    checkpoints: list[str]
    erasing: bool = False
    """An erasing tomb is in the scope (``tierstore.protocol.erasure``)."""


def _registry_of_any(key: str, prefixes: list[str]) -> bool:
    """Is ``key`` the registry record of the scope at one of ``prefixes`` or of a scope nested in one?"""
    named = scope_of_record(key)
    return named is not None and any(named.startswith(prefix) for prefix in prefixes)


async def migrate(
    source: StorageBackend,
    destination: StorageBackend,
    *,
    concurrency: int = 32,
    progress: Progress | None = None,
    codec: Codec = PLAIN,
) -> MigrateReport:
    """Copy every page, deletion tomb, block record, version record and complete checkpoint from ``source`` to
    ``destination``,
    verified; resumable (see the module docstring): the root's, every user's and session's scope's (found by one
    listing of the scoped keys, issue 28), and the registry of scopes. Problems are reported, never raised, naming
    whole keys. ``codec`` reads the frames to verify them (any codec reads every frame of the format). NotAStoreError
    when ``source`` is a local path that holds no store (the destination may be a new one); NotSupportedError for a
    custom (five-call) backend."""
    require_storage_backend(source, "migrate")
    require_storage_backend(destination, "migrate")
    require_store(source)
    report = MigrateReport()
    # Block records and deletion tombs go along, so the destination never issues an id the source used; the registry
    # of scopes too, so the destination's `tierstore users` lists them.
    scoped = await _scopes(source, destination, codec)  # before the registry: a scope copied has its record listed
    records = [e.key for e in await listed(source, ids.TOMB_PREFIX) if _role(e.key) == "record"]
    records += [e.key for e in await listed(source, ids.ALLOC_PREFIX) if ids.parse_alloc_key(e.key)]
    recorded = await _records(source)
    records += [entry.key for scope, entry in recorded.items() if scope is not None]
    root = _Place(
        "",
        source,
        destination,
        codec,
        [e.key for e in await listed(source, ids.PAGE_PREFIX) if _role(e.key) == "page"],
        records,
        [e.key for e in await listed(source, ids.CHECKPOINT_PREFIX) if _role(e.key) == "manifest"],
    )
    erasing = sorted(place.prefix for place in scoped if place.erasing)
    report.erasing = erasing
    places = [root, *(place for place in scoped if not any(place.prefix.startswith(e) for e in erasing))]
    root.records[:] = [key for key in root.records if not _registry_of_any(key, erasing)]
    total = sum(len(p.pages) + len(p.records) + len(p.checkpoints) for p in places)
    done = 0

    def tick(_done: int, _total: int) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    for place in places:
        await _migrate_place(place, report, concurrency, tick)
    report.erasing = _outermost([*erasing, *await _erased_meanwhile(source, scoped, recorded)])
    await _erase_at(destination, report.erasing)
    report.problems[:] = [p for p in report.problems if not any(p.key.startswith(e) for e in report.erasing)]
    return report


async def _erased_meanwhile(
    source: StorageBackend, scoped: list[_Place], recorded: dict[str | None, ListEntry]
) -> list[str]:
    """The scopes erasing at the source now, or erased since migrate listed them (module docstring): an erasing tomb
    listed; or its registry record, listed at the start, gone or written anew and none of the pages and
    manifests listed in it at the start left, in the listing before the records' or, if some were, in one after it.
    A bridge writes a scope's record once and an erasure deletes every key of the scope before the record; `rm` and
    gc never touch a record, and ``fsck --repair`` deletes only an unreadable one, leaving the pages."""
    now = await _scoped_keys(source, SCOPED_PREFIX)
    erased = [scope for scope, keys in now.items() if any(map(is_erasing_tomb, keys))]
    records = await _records(source)
    for place in scoped:
        before, after = recorded.get(place.prefix), records.get(place.prefix)
        if place.prefix in erased or before is None or _same_record(before, after):
            continue  # no record to watch, or it is as it was: neither erased nor used again (`rm`, gc never touch it)
        keys = {*place.pages, *place.checkpoints}  # ids no later write reuses (a version record's key repeats)
        left = now.get(place.prefix, [])
        if not keys.isdisjoint(left):  # the erasure may have ended while that listing was inside the scope
            left = (await _scoped_keys(source, place.prefix)).get(place.prefix, [])
        if keys.isdisjoint(left):
            erased.append(place.prefix)
    holding = {place.prefix for place in scoped}
    erased += [scope for scope in recorded if scope and scope not in holding and scope not in records]  # a record alone
    return erased


def _same_record(before: ListEntry | None, after: ListEntry | None) -> bool:
    """Whether a registry record listed at the start is still the one there: same size and last-modified time, and
    the same change token where both listings give one (S3 and the disk give none for an object a few seconds old)."""
    if before is None or after is None:
        return False
    tokens = before.version is not None and after.version is not None
    return (before.size, before.last_modified) == (after.size, after.last_modified) and (
        not tokens or before.version == after.version
    )


async def _scoped_keys(source: StorageBackend, prefix: str) -> dict[str, list[str]]:
    """The keys under ``prefix`` by the scope holding them, that scope's prefix stripped, in the listing's order
    (the order pages are copied in)."""
    found: dict[str, list[str]] = {}
    for entry in await listed(source, prefix):
        scope = scope_of(entry.key)
        if scope:
            found.setdefault(scope, []).append(entry.key[len(scope) :])
    return found


async def _records(source: StorageBackend) -> dict[str | None, ListEntry]:
    """Each registry record's listing entry, by the scope it names."""
    return {scope_of_record(entry.key): entry for entry in await listed(source, RECORD_PREFIX)}


def _outermost(prefixes: list[str]) -> list[str]:
    """``prefixes`` less those nested in another of them (a session's in its user's), sorted, each once."""
    unique = sorted(set(prefixes))
    return [p for p in unique if not any(p != q and p.startswith(q) for q in unique)]


async def _erase_at(destination: StorageBackend, prefixes: list[str]) -> None:
    """Erase each scope at ``prefixes`` at the destination, with its registry records (module docstring)."""
    records = [entry.key for entry in await listed(destination, RECORD_PREFIX)]
    for prefix in prefixes:
        registry = next((key for key in records if scope_of_record(key) == prefix), None)
        await erase_scope(destination, prefix, registry=registry, options=_AT_ONCE)


async def _scopes(source: StorageBackend, destination: StorageBackend, codec: Codec) -> list[_Place]:
    """Every scope the source holds keys in, from one listing of the scoped keys."""
    places: list[_Place] = []
    for prefix, tails in sorted((await _scoped_keys(source, SCOPED_PREFIX)).items()):
        roles = [(_role(tail), tail) for tail in tails]
        pages, records, manifests = ([tail for role, tail in roles if role == wanted] for wanted in _ROLES)
        places.append(
            _Place(
                prefix,
                PrefixedBackend(source, prefix),
                PrefixedBackend(destination, prefix),
                ScopedCodec(codec.compression, prefix),
                pages,
                records,
                manifests,
                erasing=any(map(is_erasing_tomb, tails)),
            )
        )
    return places


def _role(key: str) -> Literal["page", "record", "manifest"] | None:
    """What migrate copies ``key`` (in its place's view) as, by the whole shape of its name (:func:`ids.kind_of`);
    None for what it leaves: a lease, a pending, moving or erasing tomb (a process's work under way), a catalog
    snapshot (rebuilt where it is read), and a user's own file that merely starts like one (``mem_notes.txt``)."""
    kind = ids.kind_of(key)
    if kind == "tomb" and not key.endswith(DELETED_SUFFIX):
        return None
    return _COPIED_AS.get(kind) if kind else None


async def _migrate_place(place: _Place, report: MigrateReport, concurrency: int, tick: Progress) -> None:
    """Copy what the source holds in one place: pages and records, then each checkpoint all of whose pages are there
    (each verified by the place's codec: a scope's frames, manifests too, name their whole key)."""
    source, destination, prefix = place.source, place.destination, place.prefix
    present: set[str] = set()

    async def copy(key: str, codec: Codec) -> bool | None:
        """True when copied, False when already there, None when it could not be copied (reported)."""
        try:
            try:
                outcome = await _copy_object(source, destination, key, codec)
            except ConflictError:
                if not key.startswith(RECORD_PREFIX):
                    raise
                # A registry record the source wrote again (its scope erased and used again): the source's is the one.
                await destination.delete(key)
                outcome = await _copy_object(source, destination, key, codec)
        except ArchivedPageError:
            report.archived.append(prefix + key)
            return None
        except (IntegrityError, ConflictError) as exc:
            kind: Literal["corrupt", "conflict"] = "conflict" if isinstance(exc, ConflictError) else "corrupt"
            report.problems.append(Problem(prefix + key, kind, str(exc)))
            return None
        if outcome == "repaired":
            report.repaired.append(prefix + key)
        if outcome == "skipped":
            report.skipped += 1
        else:
            report.copied += 1
        present.add(key)
        return outcome != "skipped"

    await bounded_gather((copy(key, place.codec) for key in place.pages + place.records), concurrency, progress=tick)

    async def copy_checkpoint(key: str) -> None:
        try:
            # a backend may refuse to read a damaged object at all (the disk store: more bytes than written)
            data = await source.get(key)
            if data is None:
                return
            manifest = place.codec.decode_manifest(data, key)
        except IntegrityError as exc:
            report.problems.append(Problem(prefix + key, "corrupt", str(exc)))
            return
        if any(e.artifact_id not in present for e in manifest.pages):
            report.incomplete_checkpoints.append(prefix + key)
            return
        copied = await copy(key, place.codec)
        if copied:
            report.checkpoints_copied += 1
        elif copied is False:
            report.checkpoints_skipped += 1

    await bounded_gather((copy_checkpoint(key) for key in place.checkpoints), concurrency, progress=tick)


async def _copy_object(source: StorageBackend, destination: StorageBackend, key: str, codec: Codec) -> Outcome:
    """Copy one object, verified; ``skipped`` when the destination already holds a copy that verifies as the
    source's, ``repaired`` when it held one that does not verify (replaced)."""
    info = await source.head(key)
    data = None if info is None else await source.get(key)
    if info is None or data is None:
        raise IntegrityError(f"{key} vanished from the source during the migration", key=key)
    metadata = dict(info.metadata)
    checksum = codec.verified_checksum(data, key)  # chuk's plain JSON pages too, README: they are read
    if metadata.get("checksum", checksum) != checksum:
        raise IntegrityError(f"{key}: the stored checksum differs from the object metadata", key=key)
    held = await _held(destination, key, checksum, codec)
    if held == "same":
        return "skipped"
    if held == "other":
        raise ConflictError(key)
    if held == "damaged":
        await destination.delete(key)
    tier = info.tier or StorageTier(metadata.get("tier", StorageTier.L3.value))
    tags: dict[str, str] = {name: metadata[name] for name in ("tier", "modality", "pagetype") if name in metadata}
    try:
        await destination.put(key, data, metadata=metadata, tags=tags, tier=tier, if_absent=True)
    except ConflictError:
        return await _copy_object(source, destination, key, codec)
    copied = await destination.head(key)
    if copied is None or copied.size != len(data):
        raise IntegrityError(f"{key}: the copy at the destination is not {len(data)} bytes", key=key)
    return "repaired" if held == "damaged" else "copied"


async def _held(
    destination: StorageBackend, key: str, checksum: str, codec: Codec
) -> Literal["none", "same", "other", "damaged"]:
    """What the destination holds under ``key``, read whole and verified: nothing, the frame whose checksum is
    ``checksum`` (with metadata that says so), another verified frame, or something that does not verify."""
    try:
        info = await destination.head(key)
        if info is None:
            return "none"
        data = await destination.get(key)
        if data is None:
            return "none"
        held = codec.verified_checksum(data, key)
    except IntegrityError:
        return "damaged"
    if held != checksum:
        return "other"
    if info.size != len(data) or info.metadata.get("checksum", checksum) != checksum:
        return "damaged"
    return "same"
