"""A sentinel credential never appears in a log line, a repr, an exception text or a traceback.

Each cloud backend is given the sentinel as its secret and driven through successes and failures (a refused
credential where the emulator checks it, a missing bucket, a dead endpoint), with every logger at DEBUG.
"""

from __future__ import annotations

import base64
import logging
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote

import pytest

from tests.emulators import free_port
from tests.emulators_s3 import REGION
from tests.reliability.figures import record
from tests.rigs import azure as azure_rig
from tierstore import ArtifactsBridge, BackendUnavailableError, MemoryPage, Modality, StorageTier, TierstoreError
from tierstore.backends.base import StorageBackend
from tierstore.backends.cloud import CloudOptions, RetryPolicy
from tierstore.errors import AccessDeniedError, ConfigurationError

SENTINEL = "SeNtInEl" + "x7Q2" * 6
SENTINEL_B64 = base64.b64encode(SENTINEL.encode() * 2).decode()  # Azure account keys are base64
TOKEN_SENTINEL = "ToKeNsEnTiNeL" + "q8W3" * 6  # an AWS session token: sent as x-amz-security-token
DEAD = "http://127.0.0.1:9"
FAST = RetryPolicy(max_attempts=2, deadline=2.0)


def _s3(spec: dict[str, Any], endpoint: str | None = None, client: str = "sdk") -> StorageBackend:
    from tierstore.backends.s3 import S3Backend

    return S3Backend(
        spec["bucket"],
        endpoint_url=endpoint or spec["endpoint"],
        region=REGION,
        access_key_id="AKIDEXAMPLE",
        secret_access_key=SENTINEL,
        session_token=TOKEN_SENTINEL,
        options=CloudOptions(connect_timeout=0.5, read_timeout=2, retry=FAST, client=client),  # type: ignore[arg-type]
    )


def _s3_obstore(spec: dict[str, Any], endpoint: str | None = None) -> StorageBackend:
    return _s3(spec, endpoint, client="obstore")


def _gcs(spec: dict[str, Any], endpoint: str | None = None) -> StorageBackend:
    from google.oauth2.credentials import Credentials

    from tierstore.backends.gcs import GCSBackend

    return GCSBackend(
        spec["bucket"],
        project="test",
        credentials=Credentials(token=SENTINEL),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": endpoint or spec["url"]},
        options=CloudOptions(connect_timeout=0.5, read_timeout=2, retry=FAST),
    )


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


def _gcs_service_account(spec: dict[str, Any], endpoint: str | None = None) -> StorageBackend:
    from google.oauth2 import service_account

    from tierstore.backends.gcs import GCSBackend

    credentials = service_account.Credentials.from_service_account_info(SERVICE_ACCOUNT_KEY)  # type: ignore[no-untyped-call]
    return GCSBackend(
        spec["bucket"],
        project="test",
        credentials=credentials,
        client_options={"api_endpoint": endpoint or spec["url"]},
        options=CloudOptions(connect_timeout=0.5, read_timeout=2, retry=FAST),
    )


def _azure(spec: dict[str, Any], endpoint: str | None = None) -> StorageBackend:
    """On the spec's data path (the ``azure`` and ``azure_obstore`` rigs), with the sentinel as account key."""
    port = azure_rig.port_of(endpoint or azure_rig.upstream(spec))
    spec = {**spec, "connection_string": azure_rig.connection_string(port, key=SENTINEL_B64)}
    return azure_rig.open_backend(spec, AZURE_OPTIONS)


AZURE_OPTIONS = CloudOptions(connect_timeout=0.5, read_timeout=2.0, retry=FAST)


OPENERS: dict[str, Callable[..., StorageBackend]] = {
    "s3_moto": _s3,
    "s3_moto_obstore": _s3_obstore,
    "gcs": _gcs,
    "gcs_service_account": _gcs_service_account,
    "azure": _azure,
    "azure_obstore": _azure,
}
RIG_OF = {"gcs_service_account": "gcs"}
"""Openers that are a second credential on another opener's rig."""


def _secrets(cloud: str) -> list[str]:
    """The texts that must never show: the sentinels, or every line of the service account's private key."""
    if cloud == "gcs_service_account":
        pem_lines = SERVICE_ACCOUNT_KEY["private_key"].splitlines()
        return [SENTINEL, *(line for line in pem_lines if "PRIVATE KEY" not in line and len(line) >= 16)]
    return [SENTINEL, SENTINEL_B64, TOKEN_SENTINEL]


def _texts(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


@pytest.mark.parametrize("cloud", sorted(OPENERS))
async def test_sentinel_secret_never_leaks(
    cloud: str, rig_server: Callable[[str], Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    spec = rig_server(RIG_OF.get(cloud, cloud)).new_store()
    seen: list[str] = []
    page = MemoryPage(page_id="secret-test", modality=Modality.TEXT, content="x")
    for backend in (OPENERS[cloud](spec), OPENERS[cloud]({**spec, "bucket": "no-such-bucket", "container": "none"})):
        bridge = ArtifactsBridge(backend=backend)
        seen += [repr(backend), repr(bridge)]
        try:
            artifact = await bridge.store_page(page)
            assert await bridge.load_page(artifact) == page
            await bridge.list_pages()
        except TierstoreError as exc:
            seen.append(_texts(exc))
        await backend.aclose()
    dead = OPENERS[cloud](spec, DEAD)
    with pytest.raises(TierstoreError) as failure:
        await ArtifactsBridge(backend=dead).store_page(page)
    seen.append(_texts(failure.value))
    await dead.aclose()
    seen += [record.getMessage() for record in caplog.records] + [caplog.text]
    assert len(seen) > 5
    if cloud == "gcs_service_account":
        # Every request needed a token from the closed endpoint: the key was really used, and refused in time.
        assert isinstance(failure.value, BackendUnavailableError)
        assert any("token refresh" in text for text in seen)
    secrets = _secrets(cloud)
    leaks = [text for text in seen if any(secret in text for secret in secrets)]
    assert leaks == []
    record("texts checked for a sentinel secret", len(seen), cloud)


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
            return azure_rig.open_backend(
                target, AZURE_OPTIONS, connection_string=None, account_url=url, credential=secret
            )
        key_string = azure_rig.connection_string(azure_rig.port_of(url), key=secret)
        return azure_rig.open_backend(target, AZURE_OPTIONS, connection_string=key_string)

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
        seen += [_texts(failure.value), repr(failing)]
        await failing.aclose()
    seen += [record.getMessage() for record in caplog.records] + [caplog.text]
    assert [text for text in seen if any(secret in text for secret in secrets)] == []
    record("texts checked for a sentinel secret", len(seen), cloud)
