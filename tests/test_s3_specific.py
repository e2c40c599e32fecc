"""S3's own behaviour beyond the contract suite, on moto's server (and LocalStack where marked), on both data
paths (aioboto3 and obstore) unless a test is about one of them.

What the shared layer does the same on every cloud (key checks, the metadata budget, retries, error table, range
guards, create-if-absent) is tested once in the contract and reliability suites. Here: storage classes and the
archive, set_tier's copy, tags and user metadata, multipart, batch deletes, SSE, conditional writes as S3 answers
them, credentials, and the IAM policy. Faults go through the wire-level proxy (``tests/faults.py``), and the
operations a backend sends are read off the same proxy, whichever client sent them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.emulators_s3 import ACCESS_KEY, REGION, SECRET_KEY, free_port, s3_operation
from tests.faults import Answer, Fault, FaultProxy
from tests.rigs import load, s3_localstack
from tierstore.backends import slices
from tierstore.backends.cloud import CloudOptions, RetryPolicy
from tierstore.backends.s3 import S3Backend
from tierstore.enums import StorageTier
from tierstore.errors import (
    AccessDeniedError,
    ArchivedPageError,
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    ObjectNotFoundError,
)

ROOT = Path(__file__).resolve().parent.parent
AWS_ASSETS = ROOT / "backends" / "aws"
MiB = 1024 * 1024
S3_RIGS = ["s3_moto", pytest.param("s3_localstack", marks=s3_localstack.MARKS)]
CLIENTS = ["sdk", "obstore"]
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, deadline=10.0)
SMALL_PARTS: dict[str, Any] = {"multipart_threshold": 1 * MiB, "multipart_chunk": 5 * MiB}

# Which IAM action authorises each S3 API operation the adapter sends.
IAM_ACTIONS: dict[str, set[str]] = {
    "PutObject": {"s3:PutObject"},
    "CreateMultipartUpload": {"s3:PutObject"},
    "UploadPart": {"s3:PutObject"},
    "CompleteMultipartUpload": {"s3:PutObject"},
    "AbortMultipartUpload": {"s3:AbortMultipartUpload"},
    "GetObject": {"s3:GetObject"},
    "HeadObject": {"s3:GetObject"},
    "ListObjectsV2": {"s3:ListBucket"},
    "DeleteObject": {"s3:DeleteObject"},
    "DeleteObjects": {"s3:DeleteObject"},
    "GetObjectTagging": {"s3:GetObjectTagging"},
    "PutObjectTagging": {"s3:PutObjectTagging"},
    "CopyObject": {"s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"},
    "RestoreObject": {"s3:RestoreObject"},
}


# -- fixtures and helpers ---------------------------------------------------------------------------------


@pytest.fixture
def moto(rig_server: Callable[[str], Any]) -> Any:
    return rig_server("s3_moto")


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> str:
    """The data path under test."""
    return str(request.param)


@pytest.fixture
def spec(moto: Any, client: str) -> dict[str, Any]:
    spec: dict[str, Any] = moto.new_store()
    return {**spec, "client": client}


@pytest.fixture
def s3(moto: Any) -> Any:
    """A synchronous boto3 client onto the same server, to look at what the adapter wrote."""
    return moto.client


def open_moto(spec: dict[str, Any], options: CloudOptions | None = None, /, **cloud_specific: Any) -> S3Backend:
    backend: S3Backend = load("s3_moto").open_backend(spec, options, **cloud_specific)
    return backend


@pytest.fixture
async def backend(spec: dict[str, Any]) -> AsyncIterator[S3Backend]:
    async with open_moto(spec) as opened:
        yield opened


def tags_of(s3: Any, bucket: str, name: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=name)["TagSet"]}


class Recorder:
    """A proxy in front of the emulator that names each S3 operation it forwards, and faults some on request."""

    def __init__(self, upstream: str) -> None:
        self.seen: Counter[str] = Counter()
        self.queries: list[tuple[str, dict[str, str]]] = []
        """Each request's operation and query string, in order."""
        self.rules: list[tuple[str, Callable[[int], Fault | Answer | None]]] = []
        self.proxy = FaultProxy(upstream, decide=self._decide)

    def fault(self, operation: str, rule: Callable[[int], Fault | Answer | None]) -> None:
        """``rule(n)`` decides the fault of the n-th request (from 1) of ``operation``."""
        self.rules.append((operation, rule))

    def _decide(self, request: web.Request) -> Fault | Answer | None:
        operation = s3_operation(request.method, request.path, request.query, request.headers)
        self.seen[operation] += 1
        self.queries.append((operation, dict(request.query)))
        for name, rule in self.rules:
            if name == operation:
                return rule(self.seen[operation])
        return None


@pytest.fixture
async def recorder(moto: Any) -> AsyncIterator[Recorder]:
    recording = Recorder(moto.endpoint)
    await recording.proxy.start()
    yield recording
    await recording.proxy.stop()


def first(times: int, fault: Fault | Answer) -> Callable[[int], Fault | Answer | None]:
    return lambda n: fault if n <= times else None


def through(spec: dict[str, Any], recorder: Recorder) -> dict[str, Any]:
    return {**spec, "endpoint": recorder.proxy.url}


# -- storage classes and tiers ----------------------------------------------------------------------------


async def test_default_storage_class_per_tier(backend: S3Backend, s3: Any) -> None:
    for tier in (StorageTier.L2, StorageTier.L3, StorageTier.L4):
        await backend.put(f"obj_{tier.value}", b"x", tier=tier)
    infos = {tier: await backend.head(f"obj_{tier.value}") for tier in (StorageTier.L2, StorageTier.L3, StorageTier.L4)}
    assert {t: (i.storage_class, i.tier) for t, i in infos.items() if i} == {
        StorageTier.L2: ("STANDARD", StorageTier.L2),
        StorageTier.L3: ("STANDARD", StorageTier.L3),
        StorageTier.L4: ("GLACIER", StorageTier.L4),
    }
    assert s3.head_object(Bucket=backend.container, Key="obj_L4")["StorageClass"] == "GLACIER"
    assert "archive" in backend.capabilities


async def test_storage_class_overrides(spec: dict[str, Any], s3: Any) -> None:
    classes = {StorageTier.L2: "STANDARD_IA", StorageTier.L3: "GLACIER_IR", StorageTier.L4: "DEEP_ARCHIVE"}
    async with open_moto(spec, storage_classes=classes) as backend:
        for tier in classes:
            await backend.put(f"obj_{tier.value}", tier.value.encode(), tier=tier)
        for tier, name in classes.items():
            info = await backend.head(f"obj_{tier.value}")
            assert info is not None
            assert (info.storage_class, info.tier) == (name, tier)
            assert s3.head_object(Bucket=spec["bucket"], Key=f"obj_{tier.value}")["StorageClass"] == name
        assert await backend.get("obj_L3") == b"L3", "GLACIER_IR reads at once"
        with pytest.raises(ArchivedPageError):
            await backend.get("obj_L4")


def test_unknown_storage_class_is_refused_before_any_request() -> None:
    with pytest.raises(ConfigurationError, match="GLACIERR"):
        S3Backend("bucket-name", storage_classes={StorageTier.L4: "GLACIERR"})
    lowercase = S3Backend("bucket-name", storage_classes={StorageTier.L4: "deep_archive"})
    assert lowercase.tiers.classes[StorageTier.L4] == "DEEP_ARCHIVE"


def test_without_archive_classes_the_capability_is_absent() -> None:
    backend = S3Backend("bucket-name", storage_classes={StorageTier.L4: "GLACIER_IR"})
    assert "archive" not in backend.capabilities
    assert {"tiers", "tags", "range_reads"} <= backend.capabilities


async def test_head_falls_back_to_the_class_when_changed_outside(backend: S3Backend, s3: Any) -> None:
    await backend.put("moved", b"x", tier=StorageTier.L3)
    s3.copy_object(
        Bucket=backend.container,
        Key="moved",
        CopySource={"Bucket": backend.container, "Key": "moved"},
        StorageClass="GLACIER",
        MetadataDirective="COPY",
    )
    info = await backend.head("moved")
    assert info is not None
    assert (info.tier, info.storage_class, info.archived) == (StorageTier.L4, "GLACIER", True)


async def test_set_tier_copies_onto_itself_merging_tags_and_keeping_metadata(spec: dict[str, Any], s3: Any) -> None:
    async with open_moto(spec, storage_classes={StorageTier.L2: "STANDARD_IA"}) as backend:
        await backend.put("p", b"body", metadata={"owner": "ab"}, tags={"tier": "L3", "modality": "text"})
        await backend.set_tier("p", StorageTier.L2, tags={"tier": "L2"})
        info = await backend.head("p")
        assert info is not None
        assert (info.storage_class, info.tier, dict(info.metadata)) == ("STANDARD_IA", StorageTier.L2, {"owner": "ab"})
        assert tags_of(s3, spec["bucket"], "p") == {"tier": "L2", "modality": "text"}
        await backend.set_tier("p", StorageTier.L3)
        assert tags_of(s3, spec["bucket"], "p") == {"tier": "L2", "modality": "text"}, "no tag of its own"
        assert s3.head_object(Bucket=spec["bucket"], Key="p")["Metadata"] == {"owner": "ab", "tierstore-tier": "L3"}
        assert await backend.get("p") == b"body"
        with pytest.raises(ObjectNotFoundError):
            await backend.set_tier("missing", StorageTier.L2)


async def test_set_tier_between_tiers_of_one_class_is_recorded(backend: S3Backend) -> None:
    await backend.put("p", b"body", tier=StorageTier.L3)
    await backend.set_tier("p", StorageTier.L2)
    info = await backend.head("p")
    assert info is not None
    assert (info.tier, info.storage_class) == (StorageTier.L2, "STANDARD")


async def test_set_tier_of_an_unrestored_archive_asks_for_a_restore(backend: S3Backend) -> None:
    await backend.put("cold", b"frozen", tier=StorageTier.L4)
    with pytest.raises(ArchivedPageError):
        await backend.set_tier("cold", StorageTier.L3)


@pytest.mark.parametrize("s3_rig", S3_RIGS)
async def test_an_unrestored_archive_takes_its_own_tier_again_and_refuses_another(
    s3_rig: str, client: str, rig_server: Callable[[str], Any]
) -> None:
    """LocalStack answers the tags of a GLACIER object as AWS does (moto refuses them), and refuses the copy
    with 403 ObjectNotInActiveTierError: the archive error either way, never AccessDeniedError."""
    spec = {**rig_server(s3_rig).new_store(), "client": client}
    async with load(s3_rig).open_backend(spec) as backend:
        await backend.put("cold", b"frozen", tags={"tier": "L4"}, tier=StorageTier.L4)
        await backend.set_tier("cold", StorageTier.L4, tags={"tier": "L4"})
        with pytest.raises(ArchivedPageError):
            await backend.set_tier("cold", StorageTier.L3, tags={"tier": "L3"})
        info = await backend.head("cold")
        assert info is not None
        assert (info.tier, info.storage_class, info.archived) == (StorageTier.L4, "GLACIER", True)


@pytest.mark.parametrize("step", ["HeadObject", "GetObjectTagging", "CopyObject"])
async def test_set_tier_of_an_object_deleted_after_it_was_read_creates_nothing(
    spec: dict[str, Any], s3: Any, recorder: Recorder, step: str
) -> None:
    """A delete landing before each request of the tier change wins, on moto too (one landing while S3 copies is
    refused by the copy's If-Match: tests/contract/test_set_tier_and_delete.py races that on LocalStack)."""

    landed: list[str] = []

    def delete_first(n: int) -> None:
        if not landed:  # the first such request of the tier change, whatever the put before it sent
            landed.append(step)
            s3.delete_object(Bucket=spec["bucket"], Key="p")

    async with open_moto(through(spec, recorder)) as backend:
        await backend.put("p", b"body", tags={"tier": "L3"})
        recorder.fault(step, delete_first)
        with pytest.raises(ObjectNotFoundError):
            await backend.set_tier("p", StorageTier.L4, tags={"tier": "L4"})
        assert await backend.head("p") is None
        assert landed == [step]


@pytest.mark.parametrize(
    "s3_rig",
    [
        pytest.param(
            "s3_moto",
            marks=pytest.mark.xfail(strict=True, reason="moto 5.2 ignores x-amz-copy-source-if-match on CopyObject"),
        ),
        pytest.param("s3_localstack", marks=pytest.mark.localstack),
    ],
)
async def test_set_tier_of_an_object_overwritten_after_it_was_read_copies_the_new_one(
    s3_rig: str, client: str, rig_server: Callable[[str], Any]
) -> None:
    """The copy is conditional on the ETag read: the metadata read from the old object never lands on the new."""
    server = rig_server(s3_rig)
    spec = {**server.new_store(), "client": client}
    recording = Recorder(server.endpoint)

    def overwrite_first(n: int) -> None:
        if n == 1:
            metadata = {"owner": "newer", "tierstore-tier": "L3"}
            server.client.put_object(Bucket=spec["bucket"], Key="p", Body=b"newer body", Metadata=metadata)

    await recording.proxy.start()
    try:
        async with load(s3_rig).open_backend({**spec, "endpoint": recording.proxy.url}) as backend:
            await backend.put("p", b"body", metadata={"owner": "older"}, tags={"tier": "L3"})
            recording.fault("CopyObject", overwrite_first)
            await backend.set_tier("p", StorageTier.L2, tags={"tier": "L2"})
            info = await backend.head("p")
            assert info is not None
            assert (dict(info.metadata), info.tier) == ({"owner": "newer"}, StorageTier.L2)
            assert await backend.get("p") == b"newer body"
            assert recording.seen["CopyObject"] == 2  # the first refused by its If-Match, then one on a fresh read
    finally:
        await recording.proxy.stop()


@pytest.mark.parametrize("s3_rig", S3_RIGS)
async def test_a_tier_change_copy_is_conditional_on_its_destination_too(
    s3_rig: str, client: str, rig_server: Callable[[str], Any]
) -> None:
    """The copy onto itself carries ``If-Match`` with the ETag read, so a delete that lands while S3 copies is not
    undone by the copy's write (AWS answers 412)."""
    server = rig_server(s3_rig)
    spec = {**server.new_store(), "client": client}
    conditions: list[tuple[str | None, str | None]] = []

    def decide(request: web.Request) -> None:
        if s3_operation(request.method, request.path, request.query, request.headers) == "CopyObject":
            conditions.append((request.headers.get("If-Match"), request.headers.get("x-amz-copy-source-if-match")))

    proxy = FaultProxy(server.endpoint, decide=decide)
    await proxy.start()
    try:
        async with load(s3_rig).open_backend({**spec, "endpoint": proxy.url}) as backend:
            await backend.put("p", b"body", tags={"tier": "L3"})
            etag = server.client.head_object(Bucket=spec["bucket"], Key="p")["ETag"]
            await backend.set_tier("p", StorageTier.L2, tags={"tier": "L2"})
    finally:
        await proxy.stop()
    assert conditions == [(etag, etag)]


@pytest.mark.parametrize(
    "s3_rig",
    [
        pytest.param(
            "s3_moto",
            marks=pytest.mark.xfail(strict=True, reason="moto 5.2 ignores If-Match on CopyObject's destination"),
        ),
        pytest.param("s3_localstack", marks=s3_localstack.MARKS),
    ],
)
def test_the_emulator_refuses_a_copy_whose_destination_does_not_match(
    s3_rig: str, rig_server: Callable[[str], Any]
) -> None:
    """What the header above relies on, asked of the emulator directly: a copy whose ``If-Match`` names another
    ETag than the destination's is refused with 412 (AWS's CopyObject ``IfMatch``)."""
    server = rig_server(s3_rig)
    bucket = server.new_store()["bucket"]
    server.client.put_object(Bucket=bucket, Key="p", Body=b"body")
    with pytest.raises(Exception) as raised:  # noqa: PT011 - botocore's ClientError, checked by its status below
        server.client.copy_object(
            Bucket=bucket,
            Key="p",
            CopySource={"Bucket": bucket, "Key": "p"},
            IfMatch='"0123456789abcdef0123456789abcdef"',
            StorageClass="STANDARD_IA",
            MetadataDirective="REPLACE",
        )
    assert getattr(raised.value, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode") == 412


@pytest.mark.parametrize("s3_rig", S3_RIGS)
async def test_set_tier_out_of_a_restored_archive(s3_rig: str, client: str, rig_server: Callable[[str], Any]) -> None:
    server = rig_server(s3_rig)
    spec = {**server.new_store(), "client": client}
    async with load(s3_rig).open_backend(spec) as backend:
        await backend.put("cold", b"frozen", tags={"tier": "L4"}, tier=StorageTier.L4)
        await backend.restore("cold")
        await backend.set_tier("cold", StorageTier.L3, tags={"tier": "L3"})
        info = await backend.head("cold")
        assert info is not None
        assert (info.tier, info.storage_class, info.archived) == (StorageTier.L3, "STANDARD", False)
        assert tags_of(server.client, spec["bucket"], "cold") == {"tier": "L3"}


# -- archive and restore ----------------------------------------------------------------------------------


@pytest.mark.parametrize("s3_rig", S3_RIGS)
async def test_archive_then_restore_flow(s3_rig: str, client: str, rig_server: Callable[[str], Any]) -> None:
    async with load(s3_rig).open_backend({**rig_server(s3_rig).new_store(), "client": client}) as backend:
        await backend.put("cold", b"frozen bytes", tier=StorageTier.L4)
        info = await backend.head("cold")
        assert info is not None
        assert (info.archived, info.restore.state if info.restore else None) == (True, "archived")
        with pytest.raises(ArchivedPageError) as raised:
            await backend.get("cold")
        assert (raised.value.key, raised.value.pending) == ("cold", False)
        with pytest.raises(ArchivedPageError):
            await backend.get_range("cold", 0, 3)

        status = await backend.restore("cold", days=2, speed="expedited")
        # Both emulators finish a restore at once; AWS would answer "pending" for minutes to hours.
        assert status.state == "restored"
        assert status.expires_at is not None
        info = await backend.head("cold")
        assert info is not None
        assert info.restore is not None
        assert (info.archived, info.restore.state) == (False, "restored")
        assert info.restore.expires_at is not None
        assert info.restore.expires_at.timestamp() > time.time() + 86400
        assert await backend.get("cold") == b"frozen bytes"
        assert await backend.restore("cold") == info.restore, "a second restore reports the copy it has"


async def test_restore_of_missing_and_not_archived_objects(backend: S3Backend) -> None:
    await backend.put("warm", b"x")
    assert (await backend.restore("warm")).state == "not-archived"
    with pytest.raises(ObjectNotFoundError):
        await backend.restore("missing")


async def test_restore_already_in_progress_reads_as_pending(spec: dict[str, Any], recorder: Recorder) -> None:
    async with open_moto(through(spec, recorder)) as backend:
        await backend.put("cold", b"x", tier=StorageTier.L4)
        recorder.fault("RestoreObject", first(1, Answer(409, "RestoreAlreadyInProgress")))
        assert (await backend.restore("cold")).state == "pending"
        assert recorder.seen["RestoreObject"] == 1


@pytest.mark.parametrize(
    ("header", "state"),
    [
        (None, "archived"),
        ('ongoing-request="true"', "pending"),
        ('ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"', "archived"),
        ('ongoing-request="false", expiry-date="Fri, 21 Dec 2040 00:00:00 GMT"', "restored"),
    ],
)
def test_restore_header_states(header: str | None, state: str) -> None:
    from tierstore.backends.s3.wire import parse_restore

    assert parse_restore(header).state == state


# -- tags and metadata ------------------------------------------------------------------------------------


async def test_tags_and_metadata_land_as_s3_tags_and_user_metadata(backend: S3Backend, s3: Any) -> None:
    tags = {f"k{i}": f"v {i}+-=._:/@" for i in range(10)}
    metadata = {"checksum": "sha256:" + "ab" * 32, "title": "a%20page%2Fwith%25escapes", "n": "17"}
    await backend.put("m", b"x", metadata=metadata, tags=tags)
    assert tags_of(s3, backend.container, "m") == tags
    assert s3.head_object(Bucket=backend.container, Key="m")["Metadata"] == {**metadata, "tierstore-tier": "L3"}
    info = await backend.head("m")
    assert info is not None
    assert dict(info.metadata) == metadata, "the tier record stays hidden"


async def test_metadata_up_to_the_budget_fits_s3s_two_kilobytes(backend: S3Backend) -> None:
    metadata = {"big": "x" * (1800 - 3)}
    await backend.put("m", b"x", metadata=metadata)
    info = await backend.head("m")
    assert info is not None
    assert dict(info.metadata) == metadata
    with pytest.raises(InvalidInputError):
        await backend.put("m2", b"x", metadata={"big": "x" * 1800})


# -- the two data paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("writer", "reader"), [("sdk", "obstore"), ("obstore", "sdk")])
async def test_an_object_written_on_one_path_reads_the_same_on_the_other(
    moto: Any, s3: Any, writer: str, reader: str
) -> None:
    spec = moto.new_store()
    classes = {StorageTier.L2: "STANDARD_IA"}
    data = os.urandom(3000)
    async with (
        open_moto({**spec, "client": writer}, storage_classes=classes) as written,
        open_moto({**spec, "client": reader}, storage_classes=classes) as read,
    ):
        await written.put("mem_L2_1", data, metadata={"page": "p1"}, tags={"tier": "L2"}, tier=StorageTier.L2)
        await written.put("mem_L3_2", b"second", if_absent=True)
        assert await read.get("mem_L2_1") == data
        assert await read.get_range("mem_L2_1", 100, 50) == data[100:150]
        assert await written.head("mem_L2_1") == await read.head("mem_L2_1")
        info = await read.head("mem_L2_1")
        assert info is not None
        assert (dict(info.metadata), info.tier, info.storage_class) == ({"page": "p1"}, StorageTier.L2, "STANDARD_IA")
        assert tags_of(s3, spec["bucket"], "mem_L2_1") == {"tier": "L2"}
        await read.put("mem_L3_2", b"second", if_absent=True)  # the same bytes: done, whoever wrote them
        with pytest.raises(ConflictError):
            await read.put("mem_L3_2", b"other", if_absent=True)
        assert sorted([e.key async for e in read.list("mem_")]) == ["mem_L2_1", "mem_L3_2"]
        assert await read.delete("mem_L2_1")
        assert await written.get("mem_L2_1") is None


def test_the_data_path_follows_the_client_option() -> None:
    assert "client='obstore'" in repr(S3Backend("bucket-name", options=CloudOptions(client="obstore")))
    assert "client='obstore'" in repr(S3Backend("bucket-name"))  # auto: obstore is installed here
    assert "obstore" not in repr(S3Backend("bucket-name", options=CloudOptions(client="sdk")))


def test_missing_obstore_names_the_fast_extra_and_auto_falls_back() -> None:
    program = (
        "import sys\n"
        "sys.modules['obstore'] = None\n"
        "from tierstore.backends.cloud import CloudOptions\n"
        "from tierstore.backends.s3 import S3Backend\n"
        "from tierstore.errors import MissingDependencyError\n"
        "print(repr(S3Backend('bucket-name')))\n"
        "try:\n"
        "    S3Backend('bucket-name', options=CloudOptions(client='obstore'))\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True, cwd=ROOT)
    first_line, second_line = result.stdout.splitlines()
    assert "obstore" not in first_line
    assert "pip install 'tierstore[fast]'" in second_line


async def test_one_attempt_is_one_request_on_either_path(spec: dict[str, Any], client: str, recorder: Recorder) -> None:
    """Neither botocore nor obstore retries on its own: every attempt is the shared loop's. (aiohttp, under
    aiobotocore, resends a request once by itself when a reused connection drops, as the contract expects.)"""
    recorder.fault("PutObject", lambda n: "slowdown")
    recorder.fault("GetObject", lambda n: "reset")
    options = CloudOptions(retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.01, deadline=10.0))
    async with open_moto(through(spec, recorder), options) as backend:
        with pytest.raises(BackendUnavailableError):
            await backend.put("k", b"x")
        with pytest.raises(BackendUnavailableError):
            await backend.get("k")
    assert recorder.seen["PutObject"] == 3
    if client == "obstore":
        assert recorder.seen["GetObject"] == 3
    else:
        assert 3 <= recorder.seen["GetObject"] <= 6


# -- conditional writes as S3 answers them ----------------------------------------------------------------


async def test_conditional_request_conflict_is_retried(spec: dict[str, Any], recorder: Recorder) -> None:
    recorder.fault("PutObject", first(2, Answer(409, "ConditionalRequestConflict")))
    async with open_moto(through(spec, recorder), CloudOptions(retry=FAST_RETRY)) as backend:
        await backend.put("raced", b"x", if_absent=True)
        assert await backend.get("raced") == b"x"
    assert recorder.seen["PutObject"] == 3


async def test_an_overwrite_is_retried_only_when_s3_refused_it(spec: dict[str, Any], recorder: Recorder) -> None:
    recorder.fault("PutObject", first(1, "slowdown"))
    async with open_moto(through(spec, recorder), CloudOptions(retry=FAST_RETRY)) as backend:
        await backend.put("refused-first", b"x")  # 503 SlowDown: not applied, so sent again
        assert recorder.seen["PutObject"] == 2
        recorder.rules.clear()
        recorder.fault("PutObject", lambda n: "lose-answer" if n >= 3 else None)
        with pytest.raises(BackendUnavailableError):
            await backend.put("maybe-applied", b"y")  # may have taken effect: the loop does not send it again
        assert recorder.seen["PutObject"] == 4, "sent once more at once on a dropped connection, as aiohttp does"


async def test_lost_read_response_is_retried(spec: dict[str, Any], recorder: Recorder) -> None:
    recorder.fault("GetObject", first(1, "truncate"))
    async with open_moto(through(spec, recorder), CloudOptions(retry=FAST_RETRY)) as backend:
        await backend.put("body", b"0123456789" * 100)
        assert await backend.get("body") == b"0123456789" * 100
    assert recorder.seen["GetObject"] == 2


# -- multipart --------------------------------------------------------------------------------------------


async def test_multipart_upload_above_the_threshold(spec: dict[str, Any], recorder: Recorder, s3: Any) -> None:
    data = os.urandom(11 * MiB)
    async with open_moto(through(spec, recorder), **SMALL_PARTS) as backend:
        await backend.put("big", data, metadata={"kind": "image"}, tags={"tier": "L3"}, if_absent=True)
        assert recorder.seen["PutObject"] == 0
        assert [recorder.seen[o] for o in ("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")] == [
            1,
            3,
            1,
        ]
        assert await backend.get("big") == data
        assert await backend.get_range("big", 5 * MiB - 2, 4) == data[5 * MiB - 2 : 5 * MiB + 2]
        info = await backend.head("big")
        assert info is not None
        assert (info.size, dict(info.metadata), info.tier) == (len(data), {"kind": "image"}, StorageTier.L3)
        assert tags_of(s3, spec["bucket"], "big") == {"tier": "L3"}
        assert s3.head_object(Bucket=spec["bucket"], Key="big")["ETag"].strip('"').endswith("-3")
        await backend.put("big", data, if_absent=True)  # its multipart ETag says these are our bytes


async def test_multipart_create_if_absent_conflicts_and_aborts(
    spec: dict[str, Any], recorder: Recorder, s3: Any
) -> None:
    async with open_moto(through(spec, recorder), **SMALL_PARTS) as backend:
        await backend.put("big", b"small one")
        with pytest.raises(ConflictError):
            await backend.put("big", os.urandom(6 * MiB), if_absent=True)
        assert recorder.seen["AbortMultipartUpload"] == 1
        assert s3.list_multipart_uploads(Bucket=spec["bucket"]).get("Uploads", []) == []
        assert await backend.get("big") == b"small one"


async def test_multipart_complete_retried_after_a_lost_answer(spec: dict[str, Any], recorder: Recorder) -> None:
    data = os.urandom(6 * MiB)
    recorder.fault("CompleteMultipartUpload", first(1, "lose-answer"))
    async with open_moto(through(spec, recorder), CloudOptions(retry=FAST_RETRY), **SMALL_PARTS) as backend:
        await backend.put("big", data, if_absent=True)
        assert await backend.get("big") == data
    assert recorder.seen["CompleteMultipartUpload"] == 2
    assert recorder.seen["CreateMultipartUpload"] == 1, "the retried complete finished the upload it had"


async def test_conflict_on_complete_restarts_the_whole_upload(spec: dict[str, Any], recorder: Recorder) -> None:
    data = os.urandom(6 * MiB)
    recorder.fault("CompleteMultipartUpload", first(1, Answer(409, "ConditionalRequestConflict")))
    async with open_moto(through(spec, recorder), CloudOptions(retry=FAST_RETRY), **SMALL_PARTS) as backend:
        await backend.put("big", data, if_absent=True)
        assert await backend.get("big") == data
    operations = ("CreateMultipartUpload", "AbortMultipartUpload", "UploadPart", "CompleteMultipartUpload")
    assert [recorder.seen[o] for o in operations] == [2, 1, 4, 2]


async def test_failed_part_aborts_the_upload(spec: dict[str, Any], recorder: Recorder, s3: Any) -> None:
    recorder.fault("UploadPart", lambda n: Answer(403, "AccessDenied") if n == 2 else None)
    async with open_moto(through(spec, recorder), CloudOptions(retry=FAST_RETRY), **SMALL_PARTS) as backend:
        with pytest.raises(AccessDeniedError):
            await backend.put("big", os.urandom(11 * MiB))
        assert recorder.seen["AbortMultipartUpload"] == 1
        assert s3.list_multipart_uploads(Bucket=spec["bucket"]).get("Uploads", []) == []
        assert await backend.head("big") is None


# -- deletes and listing ----------------------------------------------------------------------------------


async def test_delete_many_batches_by_a_thousand(moto: Any, recorder: Recorder, s3: Any) -> None:
    # On the obstore path alone: it deletes in batches through the SDK client (ObstoreClient.delete_batch).
    spec = {**moto.new_store(), "client": "obstore"}
    names = [f"k{i:05d}" for i in range(1_001)]
    for name in names:
        s3.put_object(Bucket=spec["bucket"], Key=name, Body=b"")
    async with open_moto(through(spec, recorder)) as backend:
        await backend.delete_many([*names, "never_there"])
        assert [entry async for entry in backend.list()] == []
    assert (recorder.seen["DeleteObjects"], recorder.seen["DeleteObject"]) == (2, 0)


async def test_listing_pages_past_a_thousand_with_the_prefix_applied(moto: Any, s3: Any, recorder: Recorder) -> None:
    # On the obstore path alone: it lists through the SDK client (ObstoreClient.list_page), so this covers both.
    spec = {**moto.new_store(), "client": "obstore"}
    for i in range(1_005):
        s3.put_object(Bucket=spec["bucket"], Key=f"team/mem_L3_{i}", Body=b"")
    for name in ("team/mem_", "team/mem_L3", "team/mem_L3_1/x", "team/mem~", "team/ckpt_1", "mem_L3_9", "team2/mem_1"):
        s3.put_object(Bucket=spec["bucket"], Key=name, Body=b"")

    def page_sizes() -> list[str | None]:
        asked = [query.get("max-keys") for operation, query in recorder.queries if operation == "ListObjectsV2"]
        recorder.queries.clear()
        return asked

    async with open_moto(through(spec, recorder), prefix="/team/") as backend:
        assert backend.prefix == "team/"
        keys = [entry.key async for entry in backend.list("mem_")]
        assert sorted(keys) == sorted(["mem_", "mem_L3", *(f"mem_L3_{i}" for i in range(1_005))])
        assert page_sizes() == ["1000", "1000"]
        # A streamed listing (`ls -l`) asks for a small page first, then whole ones: the same keys, in key order.
        assert [entry.key async for entry in slices.list_streamed(backend, "mem_")] == sorted(keys)
        assert page_sizes() == [str(slices.FIRST_PAGE), "1000"]
        assert sorted([e.key async for e in backend.list("mem_L3_100")]) == [
            "mem_L3_100",
            *(f"mem_L3_100{i}" for i in range(5)),
        ]
        assert len([e async for e in backend.list()]) == 1_008


async def test_missing_bucket_is_a_configuration_error(spec: dict[str, Any]) -> None:
    async with open_moto({**spec, "bucket": "no-such-bucket-here"}) as backend:
        with pytest.raises(ConfigurationError, match="bucket does not exist"):
            await backend.put("k", b"x")


# -- encryption -------------------------------------------------------------------------------------------


async def test_sse_s3_reaches_put_copy_and_multipart(spec: dict[str, Any], s3: Any) -> None:
    async with open_moto(spec, storage_classes={StorageTier.L2: "STANDARD_IA"}, sse="AES256", **SMALL_PARTS) as backend:
        await backend.put("small", b"x")
        await backend.put("large", os.urandom(6 * MiB))
        await backend.put("moved", b"y")
        await backend.set_tier("moved", StorageTier.L2)
        for key in ("small", "large", "moved"):
            assert s3.head_object(Bucket=spec["bucket"], Key=key)["ServerSideEncryption"] == "AES256", key


async def test_sse_kms_reaches_put_copy_and_multipart(spec: dict[str, Any], moto: Any, s3: Any) -> None:
    import boto3

    kms = boto3.client(
        "kms",
        endpoint_url=moto.endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    async with open_moto(spec, sse="aws:kms", kms_key_id=key_id, **SMALL_PARTS) as backend:
        await backend.put("small", b"x", tags={"tier": "L3"}, if_absent=True)
        await backend.put("large", os.urandom(6 * MiB))
        await backend.put("moved", b"y")
        await backend.set_tier("moved", StorageTier.L2)
        await backend.put("small", b"x", if_absent=True)  # our bytes, told by a digest or a read under SSE-KMS
        for name in ("small", "large", "moved"):
            head = s3.head_object(Bucket=spec["bucket"], Key=name)
            assert head["ServerSideEncryption"] == "aws:kms", name
            assert key_id in head["SSEKMSKeyId"], name


def test_kms_key_needs_kms_encryption() -> None:
    with pytest.raises(ConfigurationError):
        S3Backend("bucket-name", sse="AES256", kms_key_id="k")


# -- credentials, endpoints, construction -----------------------------------------------------------------


async def test_no_credentials_is_a_configuration_error_without_leaving_loopback(
    moto: Any, client: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nobody there
    for name in ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED", raising=False)
    options = CloudOptions(client=client, connect_timeout=1, read_timeout=1)  # type: ignore[arg-type]
    backend = S3Backend("bucket-name", endpoint_url=moto.endpoint, region=REGION, options=options)
    async with backend:
        started = time.monotonic()
        with pytest.raises(ConfigurationError, match="NoCredentialsError"):
            await backend.get("k")
        assert time.monotonic() - started < options.retry.deadline


def test_repr_names_the_endpoint_and_no_credential() -> None:
    backend = S3Backend(
        "bucket-name",
        endpoint_url="http://user:hunter2@127.0.0.1:1/path?x=1",
        access_key_id="AKIAEXAMPLE",
        secret_access_key="s3cr3t-value",  # noqa: S106 - a made-up secret that must not show
        session_token="tok-en-value",  # noqa: S106
    )
    text = repr(backend)
    assert "endpoint='http://127.0.0.1:1'" in text
    assert all(secret not in text for secret in ("AKIAEXAMPLE", "s3cr3t-value", "tok-en-value", "hunter2", "user"))
    assert (backend.container, backend.usage("")) == ("bucket-name", None)


@pytest.mark.parametrize("bad", ["", "UPPER", "a", "has_underscore"])
def test_bad_bucket_names_are_refused(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        S3Backend(bad)


# -- deployment assets ------------------------------------------------------------------------------------


def policy_actions() -> set[str]:
    policy = json.loads((AWS_ASSETS / "iam-policy.json").read_text())
    actions: set[str] = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        listed = statement["Action"]
        actions.update([listed] if isinstance(listed, str) else listed)
    return actions


async def test_iam_policy_covers_every_operation_sent(spec: dict[str, Any], recorder: Recorder) -> None:
    classes = {StorageTier.L2: "STANDARD_IA"}
    async with open_moto(through(spec, recorder), storage_classes=classes, **SMALL_PARTS) as backend:
        await backend.put("a", b"x", metadata={"n": "1"}, tags={"tier": "L3"}, if_absent=True)
        await backend.put("a", b"x", if_absent=True)
        await backend.put("big", os.urandom(6 * MiB))
        with pytest.raises(ConflictError):
            await backend.put("big", os.urandom(6 * MiB), if_absent=True)
        await backend.get("a")
        await backend.get_range("a", 0, 1)
        await backend.head("a")
        [e async for e in backend.list()]
        await backend.set_tier("a", StorageTier.L2, tags={"tier": "L2"})
        await backend.put("cold", b"x", tier=StorageTier.L4)
        await backend.restore("cold")
        await backend.delete("a")
        await backend.delete_many(["big", "cold"])
    seen = set(recorder.seen)
    assert seen <= set(IAM_ACTIONS), f"operations without an IAM mapping: {seen - set(IAM_ACTIONS)}"
    needed = set().union(*(IAM_ACTIONS[name] for name in seen))
    assert needed <= policy_actions(), f"missing from iam-policy.json: {needed - policy_actions()}"
    expected = {"PutObject", "UploadPart", "AbortMultipartUpload", "CopyObject", "RestoreObject", "DeleteObjects"}
    assert expected <= seen


def test_iam_policy_grants_nothing_the_adapter_does_not_use() -> None:
    kms_actions = {"kms:GenerateDataKey", "kms:Decrypt"}
    assert policy_actions() == set().union(*IAM_ACTIONS.values()) | kms_actions


def test_lifecycle_configuration_applies_and_reads_back(moto: Any) -> None:
    bucket = moto.new_store()["bucket"]
    lifecycle = json.loads((AWS_ASSETS / "lifecycle.json").read_text())
    moto.client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=lifecycle)
    rules = {rule["ID"]: rule for rule in moto.client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert rules["abort-incomplete-multipart-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    archive = rules["archive-pages-tagged-L4"]
    assert archive["Filter"] == {"Tag": {"Key": "tier", "Value": "L4"}}
    assert archive["Transitions"][0]["StorageClass"] == "GLACIER"


def test_a_process_that_used_obstore_exits_cleanly(moto: Any) -> None:
    """obstore's threads may still be handing back a result when the interpreter finalizes, which aborts the
    process after all its work succeeded (about one exit in ten without the adapter's grace at exit)."""
    spec = {**moto.new_store(), "client": "obstore"}
    program = (
        "import asyncio, json, sys\n"
        "from tests.rigs import load\n"
        "async def main():\n"
        "    async with load('s3_moto').open_backend(json.loads(sys.argv[1])) as backend:\n"
        "        await backend.put('k', b'x')\n"
        "        assert await backend.get('k') == b'x'\n"
        "asyncio.run(main())\n"
    )
    codes = [
        subprocess.run([sys.executable, "-c", program, json.dumps(spec)], cwd=ROOT, check=False).returncode
        for _ in range(12)
    ]
    assert codes == [0] * 12
