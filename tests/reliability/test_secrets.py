"""Whichever way a credential arrives, no text shows it.

The class is attacked as a matrix: every way a credential reaches a cloud backend (constructor arguments, the
environment, a shared-credentials file, a URL, a connection string, a SAS, a session token, a service-account key)
x every text a user or a log collector can see (the ``repr`` of everything reachable from the bridge through public
attributes, walked recursively; ``str`` and ``repr`` of every error and of its whole ``__cause__``/``__context__``
chain; the default traceback; every log record at DEBUG of every logger, the SDKs' included) x every outcome
(success; a refusal, a garbled body, an answer that is no HTTP and a cut answer from the fault proxy; an
outage), on both data paths.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import traceback
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import pytest
from aiohttp import web

from tests.emulators import free_port
from tests.emulators_s3 import REGION
from tests.faults import Fault, FaultProxy, Refusal
from tests.reliability.figures import record
from tests.rigs import azure as azure_rig, load
from tierstore import ArtifactsBridge, BackendUnavailableError, MemoryPage, Modality, StorageTier, TierstoreError
from tierstore.backends.base import StorageBackend
from tierstore.backends.cloud import CloudOptions, RetryPolicy
from tierstore.errors import AccessDeniedError, ConfigurationError

SENTINEL = "SeNtInEl" + "x7Q2" * 6
SENTINEL_B64 = base64.b64encode(SENTINEL.encode() * 2).decode()  # Azure account keys are base64
TOKEN_SENTINEL = "ToKeNsEnTiNeL" + "q8W3" * 6  # an AWS session token: sent as x-amz-security-token
DEAD = "http://127.0.0.1:9"
FAST = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05, deadline=20.0)  # a loaded machine
OPTIONS = CloudOptions(connect_timeout=2.0, read_timeout=10.0, retry=FAST)
SDK_LOGGERS = ("botocore", "aiobotocore", "boto3", "urllib3", "requests", "google", "azure", "aiohttp", "obstore")


def _service_account_key() -> dict[str, str]:
    """A real service-account key (a fresh RSA key), its token endpoint a closed loopback port."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "test",
        "private_key_id": SENTINEL,
        "private_key": pem,
        "client_email": "tierstore-test@test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": f"{DEAD}/token",
    }


SERVICE_ACCOUNT_KEY = _service_account_key()
PEM_LINES = [
    line for line in SERVICE_ACCOUNT_KEY["private_key"].splitlines() if "PRIVATE KEY" not in line and len(line) >= 16
]


@dataclasses.dataclass(frozen=True)
class Arrival:
    """One way a credential reaches a backend: ``open(spec, endpoint, env, tmp)`` builds the backend (onto
    ``endpoint`` when given: a fault proxy or a closed port), ``secrets(spec)`` the texts that must never show."""

    rigs: tuple[str, ...]
    open: Callable[[dict[str, Any], str | None, pytest.MonkeyPatch, Path], StorageBackend]
    secrets: Callable[[dict[str, Any]], list[str]]
    works: bool = True
    """Whether the credential is accepted (a service-account key here refreshes at a closed token endpoint)."""


S3_RIGS = ("s3_moto", "s3_moto_obstore")
GCS_RIGS = ("gcs",)
AZURE_RIGS = ("azure", "azure_obstore")
S3_SDK, AZURE_SDK = ("s3_moto",), ("azure",)
"""Arrivals that reach obstore the same way as one already run on it (obstore signs with what the S3 SDK resolved;
on Azure it takes an account key or a SAS) run on the SDK path alone, to keep the suite's time."""


def _s3(spec: dict[str, Any], endpoint: str | None, **credentials: Any) -> StorageBackend:
    from tierstore.backends.s3 import S3Backend

    options = dataclasses.replace(OPTIONS, client=spec.get("client", "sdk"))
    return S3Backend(
        spec["bucket"], endpoint_url=endpoint or spec["endpoint"], region=REGION, options=options, **credentials
    )


def _s3_arguments(spec: dict[str, Any], endpoint: str | None, env: pytest.MonkeyPatch, tmp: Path) -> StorageBackend:
    return _s3(spec, endpoint, access_key_id="AKIDEXAMPLE", secret_access_key=SENTINEL, session_token=TOKEN_SENTINEL)


def _no_aws_environment(env: pytest.MonkeyPatch, tmp: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.delenv(name, raising=False)
    env.setenv("AWS_EC2_METADATA_DISABLED", "true")
    env.setenv("AWS_CONFIG_FILE", str(tmp / "no-config"))
    env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "no-credentials"))


def _s3_environment(spec: dict[str, Any], endpoint: str | None, env: pytest.MonkeyPatch, tmp: Path) -> StorageBackend:
    _no_aws_environment(env, tmp)
    env.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    env.setenv("AWS_SECRET_ACCESS_KEY", SENTINEL)
    env.setenv("AWS_SESSION_TOKEN", TOKEN_SENTINEL)
    return _s3(spec, endpoint)


def _s3_profile(spec: dict[str, Any], endpoint: str | None, env: pytest.MonkeyPatch, tmp: Path) -> StorageBackend:
    _no_aws_environment(env, tmp)
    credentials = tmp / "credentials"
    credentials.write_text(
        f"[agent]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = {SENTINEL}\n"
        f"aws_session_token = {TOKEN_SENTINEL}\n"
    )
    env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    return _s3(spec, endpoint, profile="agent")


def _gcs(spec: dict[str, Any], endpoint: str | None, credentials: Any) -> StorageBackend:
    from tierstore.backends.gcs import GCSBackend

    api = {"api_endpoint": endpoint or spec["url"]}
    return GCSBackend(spec["bucket"], project="test", credentials=credentials, client_options=api, options=OPTIONS)


def _gcs_token(spec: dict[str, Any], endpoint: str | None, env: pytest.MonkeyPatch, tmp: Path) -> StorageBackend:
    from google.oauth2.credentials import Credentials

    return _gcs(spec, endpoint, Credentials(token=SENTINEL))  # type: ignore[no-untyped-call]


def _gcs_key(spec: dict[str, Any], endpoint: str | None, env: pytest.MonkeyPatch, tmp: Path) -> StorageBackend:
    from google.oauth2 import service_account

    key = service_account.Credentials.from_service_account_info(SERVICE_ACCOUNT_KEY)  # type: ignore[no-untyped-call]
    return _gcs(spec, endpoint, key)


def _gcs_environment(spec: dict[str, Any], endpoint: str | None, env: pytest.MonkeyPatch, tmp: Path) -> StorageBackend:
    """Application Default Credentials from GOOGLE_APPLICATION_CREDENTIALS (no emulator variable: the library
    would then go anonymous), the metadata server a closed loopback port."""
    key_file = tmp / "service-account.json"
    key_file.write_text(json.dumps(SERVICE_ACCOUNT_KEY))
    env.delenv("STORAGE_EMULATOR_HOST", raising=False)
    env.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    env.setenv("NO_GCE_CHECK", "True")
    env.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    return _gcs(spec, endpoint, None)


def _azure_url(spec: dict[str, Any], endpoint: str | None) -> str:
    return f"{endpoint or azure_rig.upstream(spec)}/{azure_rig.ACCOUNT}"


def _azure(spec: dict[str, Any], **credentials: Any) -> StorageBackend:
    credentials.setdefault("connection_string", None)
    return azure_rig.open_backend(spec, OPTIONS, **credentials)


def _sas(spec: dict[str, Any]) -> str:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    permissions = ContainerSasPermissions(read=True, write=True, delete=True, list=True, tag=True)
    expiry = datetime.now(UTC) + timedelta(hours=1)
    sas = generate_container_sas(
        azure_rig.ACCOUNT, spec["container"], account_key=azure_rig.ACCOUNT_KEY, permission=permissions, expiry=expiry
    )
    return str(sas)


def _key_secrets(spec: dict[str, Any]) -> list[str]:
    return [azure_rig.ACCOUNT_KEY, quote(azure_rig.ACCOUNT_KEY, safe="")]


def _sas_secrets(spec: dict[str, Any]) -> list[str]:
    sas = spec["sas"]
    signature = parse_qs(sas)["sig"][0]
    return [sas, signature, quote(signature, safe="")]


def _connection_string_port(spec: dict[str, Any], endpoint: str | None) -> int:
    return azure_rig.port_of(endpoint or azure_rig.upstream(spec))


def _az_connection_string(spec: dict[str, Any], endpoint: str | None, env: Any, tmp: Path) -> StorageBackend:
    return _azure(spec, connection_string=azure_rig.connection_string(_connection_string_port(spec, endpoint)))


def _az_environment(spec: dict[str, Any], endpoint: str | None, env: pytest.MonkeyPatch, tmp: Path) -> StorageBackend:
    env.setenv("AZURE_STORAGE_CONNECTION_STRING", azure_rig.connection_string(_connection_string_port(spec, endpoint)))
    return _azure(spec)


def _az_key(spec: dict[str, Any], endpoint: str | None, env: Any, tmp: Path) -> StorageBackend:
    return _azure(spec, account_url=_azure_url(spec, endpoint), credential=azure_rig.ACCOUNT_KEY)


def _az_named_key(spec: dict[str, Any], endpoint: str | None, env: Any, tmp: Path) -> StorageBackend:
    from azure.core.credentials import AzureNamedKeyCredential

    credential = AzureNamedKeyCredential(azure_rig.ACCOUNT, azure_rig.ACCOUNT_KEY)
    return _azure(spec, account_url=_azure_url(spec, endpoint), credential=credential)


def _az_sas(spec: dict[str, Any], endpoint: str | None, env: Any, tmp: Path) -> StorageBackend:
    return _azure(spec, account_url=_azure_url(spec, endpoint), credential=spec["sas"])


def _az_sas_credential(spec: dict[str, Any], endpoint: str | None, env: Any, tmp: Path) -> StorageBackend:
    from azure.core.credentials import AzureSasCredential

    return _azure(spec, account_url=_azure_url(spec, endpoint), credential=AzureSasCredential(spec["sas"]))


def _az_sas_in_url(spec: dict[str, Any], endpoint: str | None, env: Any, tmp: Path) -> StorageBackend:
    return _azure(spec, account_url=f"{_azure_url(spec, endpoint)}?{spec['sas']}")


def _az_sas_connection_string(spec: dict[str, Any], endpoint: str | None, env: Any, tmp: Path) -> StorageBackend:
    url = _azure_url(spec, endpoint)
    return _azure(spec, connection_string=f"BlobEndpoint={url};SharedAccessSignature={spec['sas']}")


def _from_url(url: str, spec: dict[str, Any], env: pytest.MonkeyPatch, **settings: str) -> StorageBackend:
    """The backend ``backend_from_url`` builds from the ``TIERSTORE_*`` settings, as the command line does."""
    from tierstore.config import backend_from_url

    for name, value in {
        "client": spec.get("client", "sdk"),
        "connect_timeout": str(OPTIONS.connect_timeout),
        "read_timeout": str(OPTIONS.read_timeout),
        "retry_deadline": str(FAST.deadline),
        "retry_max_attempts": str(FAST.max_attempts),
        **settings,
    }.items():
        env.setenv(f"TIERSTORE_{name.upper()}", value)
    backend = backend_from_url(url)
    assert isinstance(backend, StorageBackend)
    return backend


def _s3_url(spec: dict[str, Any], endpoint: str | None, env: pytest.MonkeyPatch, tmp: Path) -> StorageBackend:
    _no_aws_environment(env, tmp)
    env.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    env.setenv("AWS_SECRET_ACCESS_KEY", SENTINEL)
    env.setenv("AWS_SESSION_TOKEN", TOKEN_SENTINEL)
    return _from_url(
        f"s3://{spec['bucket']}", spec, env, s3_endpoint_url=endpoint or spec["endpoint"], s3_region=REGION
    )


def _az_url_connection_string(spec: dict[str, Any], endpoint: str | None, env: Any, tmp: Path) -> StorageBackend:
    connection_string = azure_rig.connection_string(_connection_string_port(spec, endpoint))
    return _from_url(f"az://{spec['container']}", spec, env, azure_connection_string=connection_string)


def _az_url_sas(spec: dict[str, Any], endpoint: str | None, env: Any, tmp: Path) -> StorageBackend:
    account_url = f"{_azure_url(spec, endpoint)}?{spec['sas']}"
    return _from_url(f"az://{spec['container']}", spec, env, azure_account_url=account_url)


ARRIVALS: dict[str, Arrival] = {
    "s3 arguments with a session token": Arrival(S3_RIGS, _s3_arguments, lambda _: [SENTINEL, TOKEN_SENTINEL]),
    "s3 environment with a session token": Arrival(S3_RIGS, _s3_environment, lambda _: [SENTINEL, TOKEN_SENTINEL]),
    "s3 shared credentials file": Arrival(S3_SDK, _s3_profile, lambda _: [SENTINEL, TOKEN_SENTINEL]),
    "s3 url with a session token in the environment": Arrival(S3_SDK, _s3_url, lambda _: [SENTINEL, TOKEN_SENTINEL]),
    "gcs access token": Arrival(GCS_RIGS, _gcs_token, lambda _: [SENTINEL]),
    "gcs service-account key": Arrival(GCS_RIGS, _gcs_key, lambda _: [SENTINEL, *PEM_LINES], works=False),
    "gcs key file in the environment": Arrival(
        GCS_RIGS, _gcs_environment, lambda _: [SENTINEL, *PEM_LINES], works=False
    ),
    "azure connection string": Arrival(AZURE_RIGS, _az_connection_string, _key_secrets),
    "azure connection string in the environment": Arrival(AZURE_SDK, _az_environment, _key_secrets),
    "azure account key": Arrival(AZURE_SDK, _az_key, _key_secrets),
    "azure named key credential": Arrival(AZURE_RIGS, _az_named_key, _key_secrets),
    "azure sas": Arrival(AZURE_SDK, _az_sas, _sas_secrets),
    "azure sas credential": Arrival(AZURE_RIGS, _az_sas_credential, _sas_secrets),
    "azure sas in the account url": Arrival(AZURE_RIGS, _az_sas_in_url, _sas_secrets),
    "azure sas connection string": Arrival(AZURE_SDK, _az_sas_connection_string, _sas_secrets),
    "azure url with a connection string setting": Arrival(AZURE_SDK, _az_url_connection_string, _key_secrets),
    "azure url with a sas in the account url setting": Arrival(AZURE_RIGS, _az_url_sas, _sas_secrets),
}
CASES = [
    pytest.param(rig, name, id=f"{rig}-{name.replace(' ', '_')}") for name, a in ARRIVALS.items() for rig in a.rigs
]
OUTCOMES: dict[str, Fault | Refusal | None] = {
    "success": None,
    "refusal": "forbidden",
    "garbled": "flip",
    "gibberish": "garble",
    "cut": "truncate",
    "outage": None,
}


def _always(fault: Fault | Refusal) -> Callable[[web.Request], Fault | Refusal]:
    return lambda _: fault


def reachable_texts(root: object, limit: int = 5000) -> Iterator[str]:
    """``repr`` (and ``str``) of ``root`` and of everything reachable from it through public attributes (instance
    attributes and slots not starting with ``_``), container items and exception chains, recursively."""
    seen: set[int] = set()
    pending: list[object] = [root]
    while pending and len(seen) < limit:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        try:
            yield repr(current)
            yield str(current)
        except Exception:  # noqa: BLE001, S112 - an object that cannot say what it is shows nothing
            continue
        if isinstance(current, str | bytes | int | float | bool | type(None)) or callable(current):
            continue
        if isinstance(current, dict):
            pending += [*current.keys(), *current.values()]
            continue
        if isinstance(current, list | tuple | set | frozenset):
            pending += list(current)
            continue
        if isinstance(current, BaseException):
            pending += [current.__cause__, current.__context__, *current.args]
        names = list(getattr(current, "__dict__", {}))
        for cls in type(current).__mro__:
            slots = cls.__dict__.get("__slots__", ())
            names += [slots] if isinstance(slots, str) else list(slots)
        for name in names:
            if not name.startswith("_"):
                try:
                    pending.append(getattr(current, name))
                except AttributeError:
                    continue


def error_texts(error: BaseException) -> list[str]:
    return ["".join(traceback.format_exception(error)), *reachable_texts(error)]


async def _calls(bridge: ArtifactsBridge) -> tuple[int, list[str]]:
    """Every kind of call once; how many succeeded, and the texts of the errors of the others."""
    page = MemoryPage(page_id="secret-test", modality=Modality.TEXT, content="x")
    artifact = "mem_L3_1"
    succeeded, texts = 0, []

    async def attempt(call: Callable[[], Awaitable[object]]) -> object:
        nonlocal succeeded
        try:
            answer = await call()
        except TierstoreError as exc:
            texts.extend(error_texts(exc))
            return None
        succeeded += 1
        return answer

    stored = await attempt(lambda: bridge.store_page(page))
    artifact = stored if isinstance(stored, str) else artifact
    for call in (
        lambda: bridge.load_page(artifact),
        bridge.list_pages,
        lambda: bridge.set_tier(artifact, StorageTier.L4),
        lambda: bridge.restore_page(artifact),
        lambda: bridge.delete_page(artifact),
    ):
        await attempt(call)
    return succeeded, texts


@pytest.mark.parametrize(("cloud_rig", "arrival"), CASES)
async def test_whichever_way_a_credential_arrives_no_text_shows_it(
    cloud_rig: str,
    arrival: str,
    rig_server: Callable[[str], Any],
    fresh_store: Callable[[str], dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in SDK_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    way = ARRIVALS[arrival]
    spec = fresh_store(cloud_rig)
    if cloud_rig in AZURE_RIGS:
        spec["sas"] = _sas(spec)
    secrets = way.secrets(spec)
    seen: list[str] = []
    for outcome, fault in OUTCOMES.items():
        proxy = None
        endpoint: str | None = None
        if outcome == "outage":
            endpoint = f"http://127.0.0.1:{free_port()}"
        elif fault is not None:
            proxy = await FaultProxy(load(cloud_rig).upstream(spec), decide=_always(fault)).start()
            endpoint = proxy.url
        try:
            with monkeypatch.context() as env:
                backend = way.open(spec, endpoint, env, tmp_path)
                bridge = ArtifactsBridge(backend=backend)
                succeeded, texts = await _calls(bridge)
                seen += [*texts, *reachable_texts(bridge)]
                await backend.aclose()
        finally:
            if proxy is not None:
                await proxy.stop()
        if outcome == "success" and way.works:
            assert succeeded == 6, texts[:1]  # the credential was really used, and accepted
        elif outcome != "success":
            assert texts, f"{outcome}: some call must have failed"
        if not way.works:  # the key was really used: every call needed a token from the closed endpoint
            assert any("token refresh" in text for text in texts), texts[:1]
    logged = [record.getMessage() for record in caplog.records]
    seen += [*logged, caplog.text]
    if arrival.startswith("s3"):
        # The token was sent and logged (masked) at DEBUG: a leak would have shown here.
        assert any("x-amz-security-token" in text.lower() for text in logged) or cloud_rig.endswith("obstore")
    leaks = sorted({text[:300] for text in seen if any(secret in text for secret in secrets)})
    assert leaks == []
    record("texts checked for a credential", len(seen), cloud_rig)


@pytest.mark.parametrize("cloud", ["azure", "azure_obstore"])
@pytest.mark.parametrize("credential", ["account key", "SAS"])
async def test_azure_account_keys_and_sas_tokens_never_leak(
    cloud: str,
    credential: str,
    rig_server: Callable[[str], Any],
    fresh_store: Callable[[str], dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A working key or SAS through success (store, load, list, tier change, restore), a refused one, a missing
    container and a dead endpoint, with every logger at DEBUG: neither the key, nor the SAS, nor its signature
    shows anywhere."""
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    caplog.set_level(logging.DEBUG)
    server = rig_server(cloud)
    spec = fresh_store(cloud)
    endpoint = f"http://127.0.0.1:{server.port}/{azure_rig.ACCOUNT}"
    permissions = ContainerSasPermissions(read=True, write=True, delete=True, list=True, tag=True)

    def sas_for(container: str) -> str:
        expiry = datetime.now(UTC) + timedelta(hours=1)
        return str(
            generate_container_sas(
                azure_rig.ACCOUNT, container, account_key=azure_rig.ACCOUNT_KEY, permission=permissions, expiry=expiry
            )
        )

    sas, missing_sas = sas_for(spec["container"]), sas_for("no-such-container")
    refused_sas = "sv=2024-08-04&sr=c&sp=rwdlt&se=2099-01-01T00%3A00%3A00Z&sig=" + SENTINEL_B64.replace("=", "%3D")
    secrets = [azure_rig.ACCOUNT_KEY, SENTINEL, SENTINEL_B64, quote(SENTINEL_B64)]
    secrets += [text for token in (sas, missing_sas) for text in (token, parse_qs(token)["sig"][0])]

    def open_with(secret: str, container: str = spec["container"], url: str = endpoint) -> StorageBackend:
        target = {**spec, "container": container}
        if credential == "SAS":
            return azure_rig.open_backend(target, OPTIONS, connection_string=None, account_url=url, credential=secret)
        key_string = azure_rig.connection_string(azure_rig.port_of(url), key=secret)
        return azure_rig.open_backend(target, OPTIONS, connection_string=key_string)

    working = sas if credential == "SAS" else azure_rig.ACCOUNT_KEY
    refused = refused_sas if credential == "SAS" else SENTINEL_B64
    seen: list[str] = []
    page = MemoryPage(page_id="secret-test", modality=Modality.TEXT, content="x")
    backend = open_with(working)
    bridge = ArtifactsBridge(backend=backend)
    artifact = await bridge.store_page(page)
    assert await bridge.load_page(artifact) == page
    assert await bridge.list_pages() == [artifact]
    await bridge.set_tier(artifact, StorageTier.L4)
    assert (await bridge.restore_page(artifact)).state in ("pending", "restored")
    seen += [repr(backend), repr(bridge)]
    await backend.aclose()
    failures = [
        (open_with(refused), AccessDeniedError),
        (open_with(missing_sas if credential == "SAS" else working, container="no-such-container"), ConfigurationError),
        (open_with(working, url=f"http://127.0.0.1:{free_port()}/{azure_rig.ACCOUNT}"), BackendUnavailableError),
    ]
    for failing, expected in failures:
        with pytest.raises(expected) as failure:
            await ArtifactsBridge(backend=failing).store_page(page)
        seen += [*error_texts(failure.value), *reachable_texts(failing)]
        await failing.aclose()
    seen += [record.getMessage() for record in caplog.records] + [caplog.text]
    assert [text for text in seen if any(secret in text for secret in secrets)] == []
    record("texts checked for a sentinel secret", len(seen), cloud)
