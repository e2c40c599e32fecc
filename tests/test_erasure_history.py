"""Erasure on a bucket that keeps history (issue 28): on a versioned bucket it leaves no version of the erased
scope's keys (noncurrent versions, delete markers, generations) nor of its registry records, touches no version of
any other scope or the root, says what the bucket kept (Object Lock) without ever bringing a page back, and an
erasure stopped at any call of the purge is finished by the next one.

Every version is read straight from the emulator with its own SDK (never through tierstore), before and after. Where
an emulator lacks what a test needs, the test is a strict xfail naming the gap: Azurite has no blob versioning, and
fake-gcs-server keeps a noncurrent generation it is asked to delete."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any, cast

import pytest
from aiohttp import web

from tests.emulators_s3 import ACCESS_KEY, REGION, SECRET_KEY
from tests.faults import Answer, FaultProxy, Refusal
from tests.reliability.figures import record
from tests.rigs import load
from tierstore import ArtifactsBridge, MemoryPage, Modality
from tierstore.backends.base import StorageBackend
from tierstore.backends.history import StoredVersion
from tierstore.backends.s3 import wire
from tierstore.catalog import FOLD_AT
from tierstore.cli.app import main
from tierstore.maintenance import DoctorReport, doctor
from tierstore.protocol.erasure import Erased, ErasureOptions, erase_session, erase_user, erasing
from tierstore.scope_records import session_key, user_key
from tierstore.scopes import scope_prefix, user_prefix

RigServer = Callable[[str], Any]
Version = tuple[str, str]
"""(object name, version id) as the emulator lists it."""

NO_VERSIONING_ON_AZURITE = (
    "Azurite 3.37 keeps no blob versions (List Blobs with include=versions answers no version id; versioning is a "
    "storage-account setting of the management plane, which Azurite lacks): erasure of Azure's versions is untested"
)
GCS_KEEPS_GENERATIONS = (
    "fake-gcs-server 1.54 answers 404 to objects.delete with the generation of a noncurrent generation and keeps it "
    "(GCS deletes it): the purge of GCS generations is untested"
)
_ONLY = os.environ.get("TIERSTORE_TEST_RIGS")


def clouds(xfails: dict[str, str], names: tuple[str, ...] = ("s3_moto", "s3_moto_obstore", "gcs", "azure")) -> Any:
    """The emulator rigs a test runs on (those TIERSTORE_TEST_RIGS names, when set), each gap a strict xfail."""
    return [
        pytest.param(
            name,
            id=name,
            marks=[
                *getattr(load(name), "MARKS", ()),
                *([pytest.mark.xfail(reason=xfails[name], strict=True)] if name in xfails else []),
            ],
        )
        for name in names
        if not _ONLY or name in _ONLY.split(",")
    ]


# -- the emulators, read through their own SDKs --------------------------------------------------------------------


def versioned_store(rig: str, server: Any, **s3_bucket: Any) -> dict[str, Any]:
    """A fresh store in a bucket with versioning on, where the emulator can turn it on."""
    if rig.startswith("s3"):
        bucket = f"versioned-{os.getpid()}-{next(_ids)}"
        spec: dict[str, Any] = {"endpoint": server.endpoint, "bucket": bucket, "client": server.data_path}
        server.client.create_bucket(Bucket=spec["bucket"], **s3_bucket)
        server.client.put_bucket_versioning(Bucket=spec["bucket"], VersioningConfiguration={"Status": "Enabled"})
        return spec
    spec = server.new_store()
    if rig == "gcs":
        bucket = server.client().get_bucket(spec["bucket"])
        bucket.versioning_enabled = True
        bucket.patch()
    return spec  # Azure: an account setting Azurite cannot take


def _counter() -> Iterator[int]:
    n = 0
    while True:
        n += 1
        yield n


_ids = _counter()


def every_version(rig: str, server: Any, spec: dict[str, Any]) -> dict[Version, bool]:
    """Every version the bucket keeps: (name, version id) -> whether it is the name's current entry."""
    found: dict[Version, bool] = {}
    if rig.startswith("s3"):
        for page in server.client.get_paginator("list_object_versions").paginate(Bucket=spec["bucket"]):
            for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
                found[(entry["Key"], entry["VersionId"])] = bool(entry["IsLatest"])
    elif rig == "gcs":
        # The library sends versions=True, which fake-gcs-server reads as false; GCS reads "true" as the library's.
        for blob in server.client().list_blobs(spec["bucket"], versions="true"):
            found[(blob.name, str(blob.generation))] = blob.time_deleted is None
    else:
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient.from_connection_string(spec["connection_string"])
        with service:
            for blob in service.get_container_client(spec["container"]).list_blobs(include=["versions"]):
                found[(blob.name, str(blob.version_id or ""))] = blob.version_id is None or bool(
                    blob.is_current_version
                )
    return found


def text(page_id: str, content: str) -> MemoryPage:
    return MemoryPage(page_id=page_id, modality=Modality.TEXT, content=content)


async def populate(backend: StorageBackend) -> None:
    """Two users (two sessions of alice, one of bob) and the root, each with a page id stored twice and a checkpoint
    (its lease deleted: history on a versioned bucket); alice also with a shared page."""
    for user, session in (("alice", "s1"), ("alice", "s2"), ("bob", "s1"), (None, None)):
        bridge = ArtifactsBridge(backend, user_id=user, session_id=session)
        await bridge.store_page(text("p", f"{user} {session} first"))
        await bridge.store_page(text("p", f"{user} {session} second"))
        if user == "alice" and session == "s1":
            await bridge.store_page(text("shared", "alice's"), scope="user")
        await bridge.checkpoint([text("c", f"{user} {session} checkpointed")], name="c")
        await bridge.aclose()


FOREIGN = (
    scope_prefix("alice", "s1") + "tomb_stone.txt",
    scope_prefix("alice", "s1") + "cat_pictures.zip",
    user_key("alice") + "-notes",
    user_key("alice") + ".backup",
    session_key("alice", "s1") + ".bak",
)
"""A user's own files beside alice's keys, each written twice: erasure leaves every version of them."""


def of_alice(name: str) -> bool:
    return name.startswith((user_prefix("alice"), user_key("alice"))) and name not in FOREIGN


async def erase_alice(backend: StorageBackend) -> Erased:
    return await asyncio.wait_for(erase_user(backend, "alice", ErasureOptions(settle=timedelta(0))), 120)


# -- the tests ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cloud", clouds({"azure": NO_VERSIONING_ON_AZURITE}, ("s3_moto", "gcs", "azure")))
def test_the_emulator_keeps_what_a_versioned_bucket_keeps(cloud: str, rig_server: RigServer) -> None:
    """What the other tests stand on: a versioned bucket keeps an overwritten and a deleted object's bytes."""
    server = rig_server(cloud)
    spec = versioned_store(cloud, server)

    async def scenario() -> None:
        backend = load(cloud).open_backend(spec)
        await backend.put("k", b"first")
        await backend.put("k", b"second")
        await backend.delete("k")
        await backend.aclose()

    asyncio.run(scenario())
    kept = [version for version, current in every_version(cloud, server, spec).items() if not current]
    assert len(kept) == 2, kept


@pytest.mark.parametrize(
    "cloud",
    clouds(
        {"gcs": GCS_KEEPS_GENERATIONS, "azure": NO_VERSIONING_ON_AZURITE},
        ("s3_moto", "s3_moto_obstore", "gcs", "azure"),
    ),
)
def test_erasure_leaves_no_version_of_the_scope_and_touches_no_other(cloud: str, rig_server: RigServer) -> None:
    server = rig_server(cloud)
    spec = versioned_store(cloud, server)
    backend = load(cloud).open_backend(spec)

    async def scenario(step: Callable[[StorageBackend], Any]) -> Any:
        try:
            return await step(backend)
        finally:
            await backend.aclose()

    async def populate_with_foreign(backend: StorageBackend) -> None:
        await populate(backend)
        for key in FOREIGN:
            await backend.put(key, b"first")
            await backend.put(key, b"second")

    asyncio.run(scenario(populate_with_foreign))
    before = every_version(cloud, server, spec)
    kept_of_alice = [v for v, current in before.items() if of_alice(v[0]) and not current]
    assert kept_of_alice, "the bucket keeps no history of alice's keys: nothing would prove the purge"
    erased: Erased = asyncio.run(scenario(erase_alice))
    after = every_version(cloud, server, spec)
    assert [v for v in after if of_alice(v[0])] == []
    others = {v: current for v, current in before.items() if not of_alice(v[0])}
    assert {v: after.get(v) for v in others} == others  # every version of bob's, the root's, the foreign, as it was
    assert sorted(erased.foreign) == sorted(FOREIGN)
    assert erased.history.purged >= len(kept_of_alice)
    assert erased.history.left == []


@pytest.mark.parametrize("cloud", clouds({}, ("s3_moto", "s3_localstack")))
def test_object_lock_keeps_its_versions_and_no_page_comes_back(cloud: str, rig_server: RigServer) -> None:
    """On a bucket with Object Lock (a default retention, governance mode), the locked versions stay: the erasure
    deletes what it may, reports each version kept with S3's words, and keeps the delete marker that hides each
    locked version, so no page of the erased user is listed or loaded again."""
    server = rig_server(cloud)
    spec = versioned_store(cloud, server, ObjectLockEnabledForBucket=True)
    lock = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}}
    server.client.put_object_lock_configuration(Bucket=spec["bucket"], ObjectLockConfiguration=lock)
    backend = load(cloud).open_backend(spec)

    async def scenario() -> tuple[Erased, list[str]]:
        await populate(backend)
        erased = await erase_alice(backend)
        listed = [entry.key async for entry in backend.list(user_prefix("alice"))]
        await backend.aclose()
        return erased, listed

    erased, listed = asyncio.run(scenario())
    assert listed == []
    after = every_version(cloud, server, spec)
    markers = _markers(server, spec)
    data_of_alice = [v for v in after if of_alice(v[0]) and v not in markers]
    assert data_of_alice, "Object Lock kept nothing: the test proves nothing"
    assert [v for v in data_of_alice if after[v]] == []  # each locked version stays hidden behind its marker
    assert len(erased.history.left) >= len(data_of_alice)
    assert all("lock" in line.lower() or "delete marker" in line for line in erased.history.left), erased.history.left
    assert any("Object Lock" in note for note in erased.history.notes), erased.history.notes


def _markers(server: Any, spec: dict[str, Any]) -> set[Version]:
    markers: set[Version] = set()
    for page in server.client.get_paginator("list_object_versions").paginate(Bucket=spec["bucket"]):
        markers.update((m["Key"], m["VersionId"]) for m in page.get("DeleteMarkers", []))
    return markers


class StopsAt:
    """A backend whose ``stop_at``-th history call (listing, deleting or reading the settings of versions) is
    cancelled, as a crash would leave it; every other call goes through."""

    def __init__(self, backend: StorageBackend, stop_at: int) -> None:
        self.backend = backend
        self.stop_at = stop_at
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def _count(self) -> None:
        self.calls += 1
        if self.calls == self.stop_at:
            raise asyncio.CancelledError

    async def history(self, prefix: str = "") -> AsyncIterator[StoredVersion]:
        self._count()
        async for version in self.backend.history(prefix):  # type: ignore[attr-defined]
            yield version

    async def delete_versions(self, versions: Sequence[StoredVersion]) -> Any:
        self._count()
        return await self.backend.delete_versions(versions)  # type: ignore[attr-defined]

    async def history_settings(self) -> Any:
        self._count()
        return await self.backend.history_settings()  # type: ignore[attr-defined]


@pytest.mark.parametrize("cloud", clouds({}, ("s3_moto",)))
def test_an_erasure_stopped_at_any_call_of_its_purge_is_finished_by_the_next(cloud: str, rig_server: RigServer) -> None:
    """Stopped at each history call in turn (one user of one bucket each time): while anything of the user is left
    (its registry record's versions too), its erasing tomb is there (the same call resumes it); no page of the user
    is current meanwhile (a marker deleted before the versions it hides would bring one back), the next erasure
    leaves no version of it, and no version of the users before it is touched."""
    server = rig_server(cloud)
    spec = versioned_store(cloud, server)
    stops = asyncio.run(_stop_at_each_history_call(cloud, server, spec))
    record("erasures stopped at a call of their history purge and finished by the next", stops, cloud)
    assert stops >= 4  # settings, listing, deleting the versions, the markers: each was a place to stop


async def _stop_at_each_history_call(cloud: str, server: Any, spec: dict[str, Any]) -> int:
    backend = load(cloud).open_backend(spec)
    try:
        for stop_at in itertools.count(1):
            user = f"user{stop_at}"
            keys = [scope_prefix(user, "s1") + "mem_L3_1", user_prefix(user) + "mem_L3_2"]
            for key in [*keys, user_key(user)]:
                await backend.put(key, b"first")
                await backend.put(key, b"second")
            before = every_version(cloud, server, spec)
            erasure = erase_user(
                cast(StorageBackend, StopsAt(backend, stop_at)), user, ErasureOptions(settle=timedelta(0))
            )
            try:
                await asyncio.wait_for(erasure, 60)
            except asyncio.CancelledError:
                pass
            else:
                return stop_at - 1
            markers = _markers(server, spec)
            after = every_version(cloud, server, spec)
            shown = [v for v, current in after.items() if current and v[0] in keys and v not in markers]
            assert shown == [], f"stopped at history call {stop_at}: {shown} current again"
            left = [v for v in after if v[0].startswith((user_prefix(user), user_key(user)))]
            assert not left or await erasing(backend, user_prefix(user)), (
                f"stopped at history call {stop_at}: the user is no longer erasing, yet {left} are left"
            )
            resumed = await erase_user(backend, user, ErasureOptions(settle=timedelta(0)))
            assert resumed.history.left == []
            after = every_version(cloud, server, spec)
            assert [v for v in after if v[0].startswith((user_prefix(user), user_key(user)))] == []
            others = {v: now for v, now in before.items() if not v[0].startswith((user_prefix(user), user_key(user)))}
            assert {v: after.get(v) for v in others} == others
    finally:
        await backend.aclose()
    raise AssertionError("unreachable")


# -- doctor ---------------------------------------------------------------------------------------------------------


def doctor_of(cloud: str, spec: dict[str, Any]) -> DoctorReport:
    async def probe() -> DoctorReport:
        backend = load(cloud).open_backend(spec)
        try:
            return await doctor(backend)
        finally:
            await backend.aclose()

    return asyncio.run(probe())


@pytest.mark.parametrize("cloud", clouds({}, ("s3_moto",)))
def test_doctor_warns_of_object_lock_and_leaves_no_version_behind(cloud: str, rig_server: RigServer) -> None:
    server = rig_server(cloud)
    versioned = versioned_store(cloud, server)
    report = doctor_of(cloud, versioned)
    assert report.ok, report
    assert report.warnings == []
    assert any("versioning is enabled" in note for note in report.notes), report.notes
    assert every_version(cloud, server, versioned) == {}  # its scratch keys' versions purged too

    locked = versioned_store(cloud, server, ObjectLockEnabledForBucket=True)
    lock = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}}
    server.client.put_object_lock_configuration(Bucket=locked["bucket"], ObjectLockConfiguration=lock)
    report = doctor_of(cloud, locked)
    # (its tier check fails there: moto wants a Content-MD5 on a CopyObject into a locked bucket; not this test's)
    assert any("Object Lock" in warning for warning in report.warnings), report.warnings
    assert any("cannot delete every version" in warning for warning in report.warnings), report.warnings


FAKE_GCS_HAS_NO_SOFT_DELETE = (
    "fake-gcs-server 1.54 neither keeps nor reports a bucket's softDeletePolicy (a patch setting it is answered "
    "without it): doctor's soft-delete warning on GCS is untested"
)


@pytest.mark.parametrize("cloud", clouds({"gcs": FAKE_GCS_HAS_NO_SOFT_DELETE}, ("gcs", "azure")))
def test_doctor_warns_of_soft_delete(cloud: str, rig_server: RigServer) -> None:
    """Soft delete keeps what erasure deletes restorable for its retention: doctor names the days."""
    server = rig_server(cloud)
    spec = server.new_store()
    if cloud == "gcs":
        bucket = server.client().get_bucket(spec["bucket"])
        bucket.soft_delete_policy.retention_duration_seconds = 7 * 86_400
        bucket.patch()
    else:
        from azure.storage.blob import BlobServiceClient, RetentionPolicy

        service = BlobServiceClient.from_connection_string(spec["connection_string"])
        with service:  # an account setting: set back at once, the account is shared
            service.set_service_properties(delete_retention_policy=RetentionPolicy(enabled=True, days=7))
            try:
                report = doctor_of(cloud, spec)
            finally:
                service.set_service_properties(delete_retention_policy=RetentionPolicy(enabled=False))
        assert report.ok, report
        assert any("soft-deletes for 7 days" in warning for warning in report.warnings), report.warnings
        return
    report = doctor_of(cloud, spec)
    assert any("soft-deletes for 7 days" in warning for warning in report.warnings), report.warnings


# -- the history calls themselves -------------------------------------------------------------------------------------


@pytest.mark.parametrize("cloud", clouds({}, ("s3_moto", "s3_moto_obstore", "gcs", "azure", "azure_obstore")))
def test_history_lists_every_version_the_bucket_keeps_under_the_prefix(cloud: str, rig_server: RigServer) -> None:
    """``history`` (on both data paths: obstore hands it to the SDK) lists exactly what the emulator keeps under the
    store's prefix and the one asked for, current entries flagged, names outside the store's alphabet skipped."""
    server = rig_server(cloud)
    spec = versioned_store(cloud, server)

    async def scenario() -> list[StoredVersion]:
        backend: Any = load(cloud).open_backend(spec, prefix="tenant")
        try:
            for key in ("a.1", "a.2", "b.1"):
                await backend.put(key, b"first")
                await backend.put(key, b"second")
            await backend.delete("a.2")
            return [version async for version in backend.history("a.")]
        finally:
            await backend.aclose()

    listed = asyncio.run(scenario())
    kept = {v: current for v, current in every_version(cloud, server, spec).items() if v[0].startswith("tenant/a.")}
    assert {("tenant/" + v.key, v.version_id): v.current for v in listed} == kept
    assert len(listed) == len(kept)  # each once
    if cloud.startswith("s3"):
        assert sorted((v.key, v.current, v.marker) for v in listed if v.current) == [
            ("a.1", True, False),
            ("a.2", True, True),
        ]


@pytest.mark.parametrize("cloud", clouds({}, ("s3_moto",)))
def test_an_erasure_whose_credentials_may_not_list_versions_ends_and_says_what_it_left(
    cloud: str, rig_server: RigServer
) -> None:
    """No ``s3:ListBucketVersions`` nor ``s3:GetBucketVersioning`` (the proxy answers 403 AccessDenied): the erasure
    deletes every current object as on any bucket, ends, and its report says the history was not purged."""
    server = rig_server(cloud)
    spec = versioned_store(cloud, server)

    def decide(request: web.Request) -> Refusal | None:
        query = request.query
        return "forbidden" if request.method == "GET" and ("versions" in query or "versioning" in query) else None

    async def scenario() -> tuple[Erased, list[str]]:
        async with FaultProxy(server.endpoint, decide=decide) as proxy:
            backend = load(cloud).open_backend({**spec, "endpoint": proxy.url})
            try:
                alice = ArtifactsBridge(backend, user_id="alice", session_id="s1")
                await alice.checkpoint([text("c", "alice's")], name="c")  # its lease deleted: a version kept
                erased = await erase_alice(backend)
                return erased, [entry.key async for entry in backend.list(user_prefix("alice"))]
            finally:
                await backend.aclose()

    erased, listed = asyncio.run(scenario())
    assert listed == []
    assert erased.history.purged == 0
    assert any("s3:GetBucketVersioning" in note for note in erased.history.notes), erased.history.notes
    assert any("could not be listed" in note for note in erased.history.notes), erased.history.notes
    assert [v for v, current in every_version(cloud, server, spec).items() if of_alice(v[0]) and not current]


@pytest.mark.parametrize("cloud", clouds({}, ("s3_moto",)))
def test_an_s3_compatible_store_without_versions_is_erased_and_says_so(cloud: str, rig_server: RigServer) -> None:
    """A store that answers 501 NotImplemented to every request about versions (as some S3-compatible stores do)
    is erased at once, with no retry of those requests, and the report says its history was not purged."""
    server = rig_server(cloud)
    spec = server.new_store()
    asked: list[str] = []

    def decide(request: web.Request) -> Answer | None:
        about_versions = {"versions", "versioning", "object-lock"} & set(request.query)
        if request.method == "GET" and about_versions:
            asked.extend(sorted(about_versions))
            return Answer(501, "NotImplemented", "A header you provided implies functionality that is not implemented")
        return None

    async def scenario() -> tuple[Erased, list[str], DoctorReport]:
        async with FaultProxy(server.endpoint, decide=decide) as proxy:
            backend = load(cloud).open_backend({**spec, "endpoint": proxy.url})
            try:
                alice = ArtifactsBridge(backend, user_id="alice", session_id="s1")
                await alice.store_page(text("p", "alice's"))
                erased = await erase_alice(backend)
                listed = [entry.key async for entry in backend.list(user_prefix("alice"))]
                return erased, listed, await doctor(backend)
            finally:
                await backend.aclose()

    erased, listed, report = asyncio.run(scenario())
    assert listed == []
    assert any("does not implement ListObjectVersions" in note for note in erased.history.notes), erased.history.notes
    assert any("does not implement GetBucketVersioning" in note for note in erased.history.notes)
    assert sorted(set(asked)) == ["object-lock", "versioning", "versions"]
    assert len(asked) == 1 + 1 + 3 + 1 + 1 + 1  # the erasure: settings, 3 listings; doctor: settings, 1 listing
    assert report.ok, report
    assert any("does not implement" in warning for warning in report.warnings), report.warnings


@pytest.mark.parametrize("cloud", clouds({}, ("s3_moto",)))
def test_users_rm_says_what_it_purged_from_the_history(
    cloud: str, rig_server: RigServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = rig_server(cloud)
    spec = versioned_store(cloud, server)
    for name, value in {
        "TIERSTORE_CLIENT": "sdk",
        "TIERSTORE_S3_ENDPOINT_URL": spec["endpoint"],
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)

    async def scene() -> None:
        backend = load(cloud).open_backend(spec)
        try:
            await ArtifactsBridge(backend, user_id="alice", session_id="s1").checkpoint([text("c", "x")], name="c")
        finally:
            await backend.aclose()

    asyncio.run(scene())
    assert main(["users", "rm", "alice", "--url", f"s3://{spec['bucket']}", "--settle", "0"]) == 0
    out = capsys.readouterr().out
    assert "noncurrent versions and delete markers purged from the bucket's history" in out, out
    assert [v for v in every_version(cloud, server, spec) if of_alice(v[0])] == []


@pytest.mark.parametrize("cloud", clouds({}, ("s3_moto",)))
def test_a_snapshot_landing_after_the_erasure_is_withdrawn_with_its_history(
    cloud: str, rig_server: RigServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catalog fold whose put lands after a whole erasure of its session (an eraser settling for less than the
    reader assumes) withdraws its snapshot by its fence: on a bucket that keeps versions, no version of it stays."""
    monkeypatch.setattr(wire, "LISTING_SETTLED", 0.0)  # listing tokens at once: the reader has rows to fold
    server = rig_server(cloud)
    spec = versioned_store(cloud, server)
    session = scope_prefix("alice", "s1")

    async def scenario() -> None:
        async with load(cloud).open_backend(spec) as backend:
            writer = ArtifactsBridge(backend, user_id="alice", session_id="s1")
            for n in range(FOLD_AT):
                await writer.store_page(text(f"secret{n}", f"card {n}"))
            put = backend.put

            async def late(key: str, data: Any, **options: Any) -> None:
                if "cat_" in key:
                    backend.put = put
                    await erase_session(backend, "alice", "s1", ErasureOptions(settle=timedelta(0)))
                await put(key, data, **options)

            backend.put = late
            reader = ArtifactsBridge(backend, user_id="alice", session_id="s1")
            assert await reader.find_pages(modality="image") == []
            assert backend.put is put, "the reader folded"

    asyncio.run(scenario())
    assert [v for v in every_version(cloud, server, spec) if v[0].startswith(session)] == []
