"""Cloud errors say what they tried to reach and what to do: the bucket or container by name and the endpoint, the
attempts in plain words, which side of a migrate failed, and for credentials the variables or command that fix
them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.emulators import free_port
from tests.emulators_s3 import ACCESS_KEY, REGION, SECRET_KEY
from tests.test_cli import Cli, cli  # noqa: F401 - the fixture
from tierstore.backends.azure import AzureBlobBackend
from tierstore.backends.base import StorageBackend
from tierstore.backends.cloud import CloudOptions, RetryPolicy
from tierstore.backends.cloud.failure import FIXES, Failure
from tierstore.backends.s3 import S3Backend
from tierstore.errors import AccessDeniedError, BackendUnavailableError, ConfigurationError

pytestmark = pytest.mark.emulator

NO_AWS = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_DEFAULT_REGION": REGION,
}


def unreachable(attempts: int) -> S3Backend:
    return S3Backend(
        "agent-memory",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region=REGION,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        options=CloudOptions(client="sdk", connect_timeout=1, retry=RetryPolicy(max_attempts=attempts, deadline=5)),
    )


@pytest.mark.parametrize(("attempts", "said"), [(1, "after 1 attempt:"), (2, "after 2 attempts:")])
async def test_an_unreachable_endpoint_is_named_with_the_bucket(attempts: int, said: str) -> None:
    backend = unreachable(attempts)
    with pytest.raises(BackendUnavailableError) as failed:
        [entry async for entry in backend.list("")]
    await backend.aclose()
    message = str(failed.value)
    assert "on bucket 'agent-memory' (endpoint='http://127.0.0.1:" in message
    assert said in message


@pytest.mark.parametrize("cloud", ["s3_moto", "azure"])
async def test_a_missing_bucket_or_container_is_named(cloud: str, fresh_store: Callable[[str], dict[str, Any]]) -> None:
    spec = fresh_store(cloud)
    name = "missing-" + cloud.replace("_", "-")
    backend: StorageBackend
    if cloud == "s3_moto":
        connection = {"endpoint_url": spec["endpoint"], "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}
        backend, word = S3Backend(name, region=REGION, **connection), "bucket"
    else:
        backend, word = AzureBlobBackend(name, connection_string=spec["connection_string"]), "container"
    with pytest.raises(ConfigurationError) as failed:
        await backend.put("mem_L3_1", b"x")
    await backend.aclose()
    assert f"does not exist: {word} {name!r}" in str(failed.value)


def test_the_side_of_a_migrate_that_failed_is_named(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    source = tmp_path / "source"
    cli("demo", "--keep", "--url", str(source))
    port = free_port()
    result = cli.run(
        "migrate",
        str(source),
        "s3://agent-memory/copy",
        TIERSTORE_S3_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        TIERSTORE_CLIENT="sdk",
        TIERSTORE_RETRY_MAX_ATTEMPTS="1",
        TIERSTORE_CONNECT_TIMEOUT="1s",
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        **NO_AWS,
    )
    assert result.returncode == 3, result.stderr
    assert "the destination, s3://agent-memory/copy: " in result.stderr
    assert f"endpoint='http://127.0.0.1:{port}'" in result.stderr


@pytest.mark.parametrize(
    ("env", "fix"),
    [
        ({}, FIXES["NoCredentialsError"]),
        ({"AWS_PROFILE": "no-such-profile"}, FIXES["ProfileNotFound"]),
    ],
    ids=["no credentials", "unknown profile"],
)
def test_aws_credential_errors_say_what_fixes_them(cli: Cli, env: dict[str, str], fix: str) -> None:  # noqa: F811
    port = free_port()
    result = cli.run(
        "ls",
        "--url",
        "s3://agent-memory",
        TIERSTORE_S3_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        TIERSTORE_CLIENT="sdk",
        **NO_AWS,
        **env,
    )
    assert result.returncode == 2, result.stderr
    assert fix in result.stderr
    assert "Traceback" not in result.stderr


def test_refused_credentials_are_not_called_missing_permissions() -> None:
    error = Failure("denied", "no", 403, "InvalidAccessKeyId").error("list objects", None, where="bucket 'b'")
    assert isinstance(error, AccessDeniedError)
    assert str(error).endswith(FIXES["InvalidAccessKeyId"])
    assert "do not allow" not in str(error)


async def test_a_malformed_azure_key_on_the_obstore_path_says_so_without_rust_debug_output() -> None:
    string = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=not*base64!;"
        f"BlobEndpoint=http://127.0.0.1:{free_port()}/devstoreaccount1"
    )
    backend = AzureBlobBackend("agent-memory", connection_string=string, options=CloudOptions(client="obstore"))
    with pytest.raises(ConfigurationError) as failed:
        await backend.put("mem_L3_1", b"x")
    await backend.aclose()
    assert "Debug source" not in str(failed.value)
    assert "Generic {" not in str(failed.value)
    assert "AccountKey=" in str(failed.value)


def test_google_without_credentials_says_what_fixes_it(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    port = free_port()  # where the metadata server would be: nothing answers, nothing leaves this machine
    result = cli.run(
        "ls",
        "--url",
        "gs://agent-memory",
        GCE_METADATA_HOST=f"127.0.0.1:{port}",
        GCE_METADATA_IP=f"127.0.0.1:{port}",
        CLOUDSDK_CONFIG=str(tmp_path / "no-gcloud"),
    )
    assert result.returncode == 2, result.stderr
    assert FIXES["DefaultCredentialsError"] in result.stderr
    assert "bucket 'agent-memory'" in result.stderr
