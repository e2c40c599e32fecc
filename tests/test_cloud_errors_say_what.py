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
from tierstore.errors import AccessDeniedError, BackendUnavailableError, ConfigurationError, TierstoreError

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


# -- an endpoint set outside tierstore: named with where it was set ------------------------------------------------

SOURCES = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "config file"]


def endpoint_from(source: str, url: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Set the S3 endpoint as a user would through ``source``; what the error must say it came from."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
        monkeypatch.delenv(name, raising=False)
    config = home / "aws-config"
    config.write_text("[default]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    if source == "config file":
        config.write_text(f"[profile agent]\nregion = us-east-1\nendpoint_url = {url}\n")
        monkeypatch.setenv("AWS_PROFILE", "agent")
        return "from the AWS config file's profile 'agent'"
    monkeypatch.setenv(source, url)
    return f"from {source}"


@pytest.fixture
async def wrong_service() -> Any:
    """An HTTP server that is no S3: every request gets a 404 web page."""
    from aiohttp import web

    async def page(request: web.Request) -> web.Response:
        return web.Response(status=404, text="<html>Not Found</html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.mark.parametrize("client", ["sdk", "obstore"])
@pytest.mark.parametrize("answer", ["unreachable", "no S3"])
@pytest.mark.parametrize("source", SOURCES)
async def test_an_endpoint_set_outside_tierstore_is_named_with_its_source(
    source: str, answer: str, client: str, wrong_service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = f"http://127.0.0.1:{free_port()}" if answer == "unreachable" else wrong_service
    host = base.removeprefix("http://")
    said = endpoint_from(source, f"http://agent:{SECRET_KEY}-in-url@{host}/some/path?x=1", tmp_path, monkeypatch)
    backend = S3Backend(
        "agent-memory",
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        options=CloudOptions(client=client, connect_timeout=1, retry=RetryPolicy(max_attempts=1, deadline=5)),  # type: ignore[arg-type]
    )
    with pytest.raises(TierstoreError) as failed:
        [entry async for entry in backend.list("")]
    await backend.aclose()
    message = str(failed.value)
    assert f"on bucket 'agent-memory' (endpoint='{base}' {said}" in message
    assert "-in-url" not in message
    assert "some/path" not in message


def test_an_endpoint_from_aws_endpoint_url_is_named_by_the_command_line(cli: Cli) -> None:  # noqa: F811
    port = free_port()
    result = cli.run(
        "ls",
        "--url",
        "s3://agent-memory",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        TIERSTORE_RETRY_MAX_ATTEMPTS="1",
        TIERSTORE_CONNECT_TIMEOUT="1s",
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        **NO_AWS,
    )
    assert result.returncode == 3, result.stderr
    assert f"on bucket 'agent-memory' (endpoint='http://127.0.0.1:{port}' from AWS_ENDPOINT_URL" in result.stderr


def test_ignored_configured_endpoints_are_not_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint_from("AWS_ENDPOINT_URL", "http://127.0.0.1:9", tmp_path, monkeypatch)
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert "endpoint" not in repr(S3Backend("agent-memory", region=REGION))


@pytest.mark.parametrize(
    ("cloud", "client"), [("gcs", "sdk"), ("azure", "sdk"), ("azure", "obstore")], ids=["gcs", "azure", "azure-obstore"]
)
async def test_every_cloud_names_an_endpoint_set_by_its_variable(
    cloud: str, client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    options = CloudOptions(client=client, connect_timeout=1, retry=RetryPolicy(max_attempts=1, deadline=5))  # type: ignore[arg-type]
    backend: StorageBackend
    if cloud == "gcs":
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        from tierstore.backends.gcs import GCSBackend

        backend = GCSBackend("agent-memory", project="test", options=options)
        said = f"(endpoint='http://127.0.0.1:{port}' from STORAGE_EMULATOR_HOST)"
    else:
        connection = (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
            f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        )
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection)
        backend = AzureBlobBackend("agent-memory", options=options)
        said = (
            f"(account='devstoreaccount1', endpoint='http://127.0.0.1:{port}/devstoreaccount1' "
            "from AZURE_STORAGE_CONNECTION_STRING"
        )
    with pytest.raises(BackendUnavailableError) as failed:
        [entry async for entry in backend.list("")]
    await backend.aclose()
    assert said in str(failed.value)
    assert "a2V5" not in str(failed.value)
