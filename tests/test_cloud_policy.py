"""The policy every cloud shares, tested on its own: the error table, the retry loop and its deadline, the tier
map, and the redaction of credentials from SDK logs and chained errors."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import pytest

from tierstore.backends.cloud import Failure, RetryPolicy, TierMap, from_status
from tierstore.backends.cloud.failure import RangeNotSatisfiable
from tierstore.backends.cloud.redact import ScrubbedError, register_secret, sanitized, scrub, scrub_error
from tierstore.backends.cloud.retry import AttemptLog, call_with_retries
from tierstore.enums import StorageTier
from tierstore.errors import (
    AccessDeniedError,
    ArchivedPageError,
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    ObjectNotFoundError,
)

FAST = RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0, deadline=30.0)


class SdkError(Exception):
    """Stands for whatever a cloud library raises; ``failure`` is what its adapter's classify would answer."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.describe())
        self.failure = failure


def classify(error: BaseException) -> Failure:
    return error.failure if isinstance(error, SdkError) else Failure("unknown")


def failing(*failures: Failure, then: str = "done") -> tuple[Callable[[], Awaitable[str]], list[int]]:
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(1)
        if len(calls) <= len(failures):
            raise SdkError(failures[len(calls) - 1])
        return then

    return attempt, calls


async def run(
    attempt: Callable[[], Awaitable[str]],
    *,
    policy: RetryPolicy = FAST,
    idempotent: bool = True,
    size: int = 0,
    log: AttemptLog | None = None,
) -> str:
    return await call_with_retries(
        attempt,
        policy=policy,
        classify=classify,
        what="put 'k'",
        key="k",
        idempotent=idempotent,
        size=size,
        log=log,
    )


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("not-found", ObjectNotFoundError),
        ("conflict", ConflictError),
        ("archived", ArchivedPageError),
        ("range", RangeNotSatisfiable),
        ("denied", AccessDeniedError),
        ("invalid", InvalidInputError),
        ("configuration", ConfigurationError),
        ("no-container", ConfigurationError),
        ("corrupt", IntegrityError),
        ("throttled", BackendUnavailableError),
        ("server", BackendUnavailableError),
        ("network", BackendUnavailableError),
        ("timeout", BackendUnavailableError),
        ("unknown", BackendUnavailableError),
    ],
)
def test_one_table_maps_every_kind_to_its_error(kind: str, error: type[Exception]) -> None:
    assert isinstance(Failure(kind).error("get 'k'", "k"), error)  # type: ignore[arg-type]


def test_statuses_map_to_kinds_and_outcomes() -> None:
    assert from_status(404) == Failure("not-found", "no", 404)
    assert from_status(412, "PreconditionFailed").kind == "conflict"
    assert from_status(403).kind == "denied"
    assert from_status(429).kind == "throttled"
    assert from_status(503, "SlowDown", refused=True) == Failure("server", "no", 503, "SlowDown")
    assert from_status(500).applied == "maybe"  # a server error may come after the write took effect
    assert from_status(416).kind == "range"


async def test_transient_failures_are_retried_until_success() -> None:
    attempt, calls = failing(Failure("throttled", "no"), Failure("network", "maybe"), Failure("server"))
    assert await run(attempt) == "done"
    assert len(calls) == 4


async def test_permanent_failures_are_not_retried() -> None:
    attempt, calls = failing(Failure("denied", "no", 403))
    with pytest.raises(AccessDeniedError) as caught:
        await run(attempt)
    assert len(calls) == 1
    # The SDK's error stays chained, as its type and text: its attributes could hold a credential.
    assert isinstance(caught.value.__cause__, ScrubbedError)
    assert f"{__name__}.SdkError: HTTP 403" in str(caught.value.__cause__)


async def test_max_attempts_is_honoured_and_ends_typed() -> None:
    attempt, calls = failing(*[Failure("server")] * 10)
    with pytest.raises(BackendUnavailableError, match="after 4 attempts"):
        await run(attempt)
    assert len(calls) == 4


async def test_a_request_that_is_not_idempotent_is_retried_only_when_it_certainly_did_not_apply() -> None:
    refused, calls = failing(Failure("throttled", "no", 503, "SlowDown"))
    assert await run(refused, idempotent=False) == "done"
    assert len(calls) == 2
    unknown, calls = failing(Failure("network", "maybe"))
    log = AttemptLog()
    with pytest.raises(BackendUnavailableError):
        await run(unknown, idempotent=False, log=log)
    assert (len(calls), log.maybe_applied) == (1, True)


async def test_the_deadline_ends_a_call_that_hangs() -> None:
    policy = RetryPolicy(max_attempts=100, base_delay=0.0, max_delay=0.0, deadline=0.5)

    async def hang() -> str:
        await asyncio.sleep(3600)
        return "never"

    started = time.monotonic()
    with pytest.raises(BackendUnavailableError):
        await run(hang, policy=policy)
    assert time.monotonic() - started < 30  # ended by the deadline, not by the hour-long attempt


async def test_moving_data_earns_more_time() -> None:
    policy = RetryPolicy(max_attempts=1, deadline=0.2)

    async def slow() -> str:
        await asyncio.sleep(0.5)
        return "done"

    with pytest.raises(BackendUnavailableError):
        await run(slow, policy=policy)
    assert await run(slow, policy=policy, size=8 << 20) == "done"  # 8 MiB: 8 more seconds


def test_tier_map_checks_classes_when_built_and_maps_back() -> None:
    defaults = dict.fromkeys(StorageTier, "STANDARD") | {StorageTier.L4: "GLACIER"}
    known, archives = {"STANDARD", "GLACIER", "DEEP_ARCHIVE"}, {"GLACIER", "DEEP_ARCHIVE"}
    with pytest.raises(ConfigurationError, match="unknown S3 storage class 'NOPE' for tier L4"):
        TierMap("S3", defaults, {StorageTier.L4: "NOPE"}, known=known, archives=archives)
    tiers = TierMap("S3", defaults, {StorageTier.L4: "deep_archive"}, known=known, archives=archives)
    assert tiers.class_of(StorageTier.L4) == "DEEP_ARCHIVE"
    assert tiers.has_archive
    assert tiers.tier_of("STANDARD", "L2") == StorageTier.L2  # the recorded tier, while it matches the class
    assert tiers.tier_of("STANDARD", None) == StorageTier.L3  # else the coldest tier of that class
    assert tiers.tier_of("DEEP_ARCHIVE", "L3") == StorageTier.L4  # moved by a lifecycle rule
    assert tiers.tier_of("GLACIER", None) is None


def test_credentials_are_scrubbed_from_sdk_logs_and_chained_errors(caplog: pytest.LogCaptureFixture) -> None:
    token = "FQoGZXIvYXdzEXAMPLESESSIONTOKEN"  # noqa: S105 - a sentinel
    register_secret(token)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("botocore.endpoint").debug("headers: %s", {"x-amz-security-token": token})
    logging.getLogger("azure.core.pipeline").debug("url: https://a.blob.core.windows.net/c?sv=1&sig=abc%2Fdef")
    logging.getLogger("google.auth").debug('{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIE\\n"}')
    text = caplog.text
    assert token not in text
    assert "abc%2Fdef" not in text
    assert "MIIE" not in text
    assert "***" in text
    error = scrub_error(RuntimeError(f"request failed with AccountKey=k3y;token={token}"))
    assert token not in str(error)
    assert "k3y" not in str(error)
    assert scrub("Authorization: AWS4-HMAC-SHA256 Credential=AKIA/x, Signature=ab") == "Authorization: ***"


def test_a_chained_sdk_error_is_text_without_credentials_whatever_its_attributes_hold() -> None:
    class UrlError(Exception):
        def __init__(self, url: str) -> None:
            super().__init__("bad answer")
            self.url = url

        def __str__(self) -> str:
            return f"bad answer from {self.url}"

    inner = ConnectionError("reset while reading https://a.blob.core.windows.net/c?sv=1&sig=s1gn%2F")
    outer = UrlError("https://a.blob.core.windows.net/c/k?sv=1&sig=s1gn%2F")
    outer.__cause__ = inner
    inner.__context__ = outer  # a cycle: each copied once
    copy = sanitized(outer)
    texts = []
    current: BaseException | None = copy
    for _ in range(4):
        assert current is not None
        texts += [str(current), repr(current), *map(repr, vars(current).values())]
        current = current.__cause__ or current.__context__
    assert not [text for text in texts if "s1gn" in text]
    assert (
        f"{UrlError.__module__}.{UrlError.__qualname__}: bad answer from https://a.blob.core.windows.net/c/k?sv=1&sig=***"
        == str(copy)
    )
    assert copy.__cause__ is not None
    assert copy.__cause__.__context__ is copy


BAD_PREFIXES = [
    "team//x",
    "team/./x",
    "team/../x",
    "..",
    "./team",
    "team/..",
    "team\\x",
    "team/\x00x",
    "team/\nx",
    "t" * 768,
]


def _cloud_backends() -> list[tuple[str, Callable[[str, str], object]]]:
    from tierstore.backends.azure import AzureBlobBackend
    from tierstore.backends.cloud import CloudOptions
    from tierstore.backends.gcs import GCSBackend
    from tierstore.backends.s3 import S3Backend

    dead = "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:9/a;"
    return [
        ("s3", lambda prefix, client: S3Backend("bucket-name", prefix=prefix, options=CloudOptions(client=client))),  # type: ignore[arg-type]
        ("gcs", lambda prefix, client: GCSBackend("bucket", prefix=prefix)),
        (
            "azure",
            lambda prefix, client: AzureBlobBackend(
                "container",
                prefix=prefix,
                connection_string=dead,
                options=CloudOptions(client=client),  # type: ignore[arg-type]
            ),
        ),
    ]


@pytest.mark.parametrize("prefix", BAD_PREFIXES)
@pytest.mark.parametrize("client", ["sdk", "obstore"])
def test_a_prefix_with_an_empty_dot_or_dotdot_segment_is_refused_when_the_backend_is_built(
    prefix: str, client: str
) -> None:
    for _cloud, build in _cloud_backends():
        with pytest.raises(ConfigurationError, match="prefix"):
            build(prefix, client)
    assert build("team/x.y/..z", client).prefix == "team/x.y/..z/"  # type: ignore[attr-defined]  # dots inside a name are fine


@pytest.mark.parametrize(
    "url",
    [
        "s3://bucket-name/team//x",
        "s3://bucket-name/team/%2E%2E/x",
        "s3://bucket-name/team/%2e/x",
        "gs://bucket/team/%2F/x",
        "gs://bucket/team/%2E%2E",
        "az://container/team/../x",
        "az://container/team%5Cx",
        "az://container/team/%00",
    ],
)
def test_a_bad_prefix_in_a_url_is_refused_when_the_backend_is_built(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tierstore.config import backend_from_url

    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:9/a;",
    )
    with pytest.raises(ConfigurationError):
        backend_from_url(url)


@pytest.mark.parametrize("url", ["s3://bucket-name", "gs://bucket", "az://container"])
def test_a_bad_prefix_setting_is_refused_when_the_backend_is_built(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tierstore.config import TierstoreSettings, backend_from_url

    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:9/a;",
    )
    for prefix in ("team/../x", "team//x", "./x"):
        with pytest.raises(ConfigurationError, match="prefix"):
            backend_from_url(url, TierstoreSettings(prefix=prefix))
