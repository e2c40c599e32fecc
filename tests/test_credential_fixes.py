"""Each way credentials go wrong is a typed error that says what to do (``FIXES``), on both S3 data paths and GCS.

Failures the service decides are produced by a moto server of this module's own with authentication on (moto's
``INITIAL_NO_AUTH_ACTION_COUNT``: after the requests that create an IAM user, its policy and its access key, every
request is checked, signatures included). Answers moto cannot give (a request signed for another region than the
bucket's, an expired session token) come from a proxy in front of it that answers as S3 does. Credentials that
cannot be had at all fail inside the SDKs, before any request: each is set up as a user would have it (variables,
a config file with an SSO profile and its expired token cache, a credential_process, a key file).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from tests.emulators import free_port, stop_process_group, wait_until_ready
from tests.emulators_s3 import REGION
from tests.faults import Answer, FaultProxy
from tests.rigs.s3_moto import moto_command
from tests.test_cli import Cli, cli  # noqa: F401 - the fixture
from tierstore.backends.cloud import ClientChoice, CloudOptions, RetryPolicy
from tierstore.backends.cloud.failure import FIXES
from tierstore.backends.gcs import GCSBackend
from tierstore.backends.s3 import S3Backend
from tierstore.errors import AccessDeniedError, ConfigurationError, TierstoreError

pytestmark = pytest.mark.emulator

BUCKET = "agent-memory"
RETRY = RetryPolicy(max_attempts=2, deadline=20)
SSO_START_URL = "https://tierstore-test.awsapps.com/start"


@dataclass(frozen=True)
class AuthMoto:
    endpoint: str
    key_id: str
    secret: str


@pytest.fixture(scope="module")
def auth_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthMoto]:
    import boto3

    port = free_port()
    log = (tmp_path_factory.mktemp("moto-auth") / "moto.log").open("wb")
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    process = subprocess.Popen(
        moto_command(port), stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{endpoint}/moto-api/", process)
        unchecked = {"endpoint_url": endpoint, "region_name": REGION}
        iam = boto3.client("iam", aws_access_key_id="setup", aws_secret_access_key="setup", **unchecked)  # noqa: S106 - unchecked yet
        iam.create_user(UserName="agent")
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="agent", PolicyName="all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="agent")["AccessKey"]  # the third request: checked from here on
        s3 = boto3.client(
            "s3", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], **unchecked
        )
        s3.create_bucket(Bucket=BUCKET)
        yield AuthMoto(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        stop_process_group(process)
        log.close()


@pytest.fixture
def aws_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No AWS setting but the test's: an empty home, config files of its own, no metadata service."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name.startswith("TIERSTORE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / ".aws" / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / ".aws" / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    (tmp_path / ".aws").mkdir()
    return tmp_path


async def list_with(endpoint: str, client: ClientChoice, region: str | None = REGION) -> TierstoreError:
    backend = S3Backend(BUCKET, endpoint_url=endpoint, region=region, options=CloudOptions(client=client, retry=RETRY))
    try:
        with pytest.raises(TierstoreError) as failed:
            [entry async for entry in backend.list("")]
    finally:
        await backend.aclose()
    return failed.value


def says(error: TierstoreError, kind: type[TierstoreError], code: str) -> None:
    assert type(error) is kind, error
    assert str(error).endswith(f"; {FIXES[code]}"), error
    assert f"bucket {BUCKET!r}" in str(error)


CLIENTS: list[ClientChoice] = ["sdk", "obstore"]


@pytest.mark.parametrize("client", CLIENTS)
async def test_the_right_credentials_work(
    client: ClientChoice, auth_moto: AuthMoto, aws_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", auth_moto.key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", auth_moto.secret)
    backend = S3Backend(BUCKET, endpoint_url=auth_moto.endpoint, region=REGION, options=CloudOptions(client=client))
    assert [entry async for entry in backend.list("")] == []  # what the failures below differ from
    await backend.aclose()


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_wrong_secret_key(
    client: ClientChoice, auth_moto: AuthMoto, aws_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", auth_moto.key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", auth_moto.secret[::-1])
    says(await list_with(auth_moto.endpoint, client), AccessDeniedError, "SignatureDoesNotMatch")


@pytest.mark.parametrize("client", CLIENTS)
async def test_an_unknown_access_key(
    client: ClientChoice, auth_moto: AuthMoto, aws_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNUNKNOWN00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", auth_moto.secret)
    says(await list_with(auth_moto.endpoint, client), AccessDeniedError, "InvalidAccessKeyId")


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_key_id_without_its_secret(
    client: ClientChoice, auth_moto: AuthMoto, aws_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", auth_moto.key_id)
    says(await list_with(auth_moto.endpoint, client), ConfigurationError, "PartialCredentialsError")


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        # S3's answer to a request signed for us-east-1 (no region set) when the bucket is elsewhere.
        (
            Answer(400, "AuthorizationHeaderMalformed", "the region 'us-east-1' is wrong; expecting 'eu-west-1'"),
            ConfigurationError,
        ),
        (Answer(400, "ExpiredToken", "The provided token has expired."), AccessDeniedError),
    ],
    ids=["no region, bucket in another", "expired session token"],
)
async def test_what_only_aws_answers(
    client: ClientChoice,
    answer: Answer,
    kind: type[TierstoreError],
    auth_moto: AuthMoto,
    aws_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", auth_moto.key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", auth_moto.secret)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "a-session-token")

    def decide(request: web.Request) -> Answer:
        return answer

    async with FaultProxy(auth_moto.endpoint, decide=decide) as proxy:
        says(await list_with(proxy.url, client, region=None), kind, answer.code)


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_bucket_in_another_region_redirected(
    client: ClientChoice, aws_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3's answer to a request sent to another region's endpoint than the bucket's: 301 PermanentRedirect naming
    the bucket's region (botocore follows it once, to the same endpoint here, which answers the same)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    redirected: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        redirected.append(request.method)
        body = (
            "<?xml version='1.0' encoding='UTF-8'?><Error><Code>PermanentRedirect</Code><Message>The bucket you are "
            "attempting to access must be addressed using the specified endpoint.</Message>"
            f"<Endpoint>{BUCKET}.s3.eu-west-1.amazonaws.com</Endpoint><Bucket>{BUCKET}</Bucket></Error>"
        )
        headers = {"x-amz-bucket-region": "eu-west-1", "Content-Type": "application/xml"}
        return web.Response(status=301, body=body, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        error = await list_with(f"http://127.0.0.1:{runner.addresses[0][1]}", client, region=None)
    finally:
        await runner.cleanup()
    says(error, ConfigurationError, "PermanentRedirect")
    assert redirected


@pytest.mark.parametrize("client", CLIENTS)
def test_an_expired_sso_session(client: ClientChoice, auth_moto: AuthMoto, cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    # From the command line: botocore fixes the SSO token cache's place (~/.aws/sso/cache) when it is imported.
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "config").write_text(
        "[profile agent]\n"
        f"sso_start_url = {SSO_START_URL}\nsso_region = {REGION}\nsso_account_id = 123456789012\n"
        f"sso_role_name = Agent\nregion = {REGION}\n"
    )
    cache = home / ".aws" / "sso" / "cache"
    cache.mkdir(parents=True)
    token = {"startUrl": SSO_START_URL, "region": REGION, "accessToken": "x", "expiresAt": "2020-01-01T00:00:00Z"}
    (cache / f"{hashlib.sha1(SSO_START_URL.encode()).hexdigest()}.json").write_text(json.dumps(token))  # noqa: S324
    env = {
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
        "AWS_PROFILE": "agent",
        "AWS_EC2_METADATA_DISABLED": "true",
        "TIERSTORE_S3_ENDPOINT_URL": auth_moto.endpoint,
        "TIERSTORE_CLIENT": client,
        "TIERSTORE_RETRY_MAX_ATTEMPTS": "2",
    }
    expired = cli.run("ls", "--url", f"s3://{BUCKET}", **env)
    for entry in cache.iterdir():
        entry.unlink()  # signed out: no token at all
    signed_out = cli.run("ls", "--url", f"s3://{BUCKET}", **env)
    for result, code in ((expired, "UnauthorizedSSOTokenError"), (signed_out, "SSOTokenLoadError")):
        assert result.returncode == 2, result.stderr
        assert f"tierstore: ConfigurationError: list objects on bucket {BUCKET!r}" in result.stderr
        assert result.stderr.rstrip().endswith(FIXES[code]), result.stderr
        assert "Traceback" not in result.stderr  # the SDK's warning, if any, as one line


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_credential_process_giving_expired_credentials(
    client: ClientChoice, auth_moto: AuthMoto, aws_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expired = {"Version": 1, "AccessKeyId": auth_moto.key_id, "SecretAccessKey": auth_moto.secret}
    expired |= {"SessionToken": "t", "Expiration": "2020-01-01T00:00:00Z"}
    process = aws_home / "credentials.py"
    process.write_text(f"print({json.dumps(json.dumps(expired))})\n")
    (aws_home / ".aws" / "config").write_text(
        f"[profile agent]\ncredential_process = {sys.executable} {process}\nregion = {REGION}\n"
    )
    monkeypatch.setenv("AWS_PROFILE", "agent")
    says(await list_with(auth_moto.endpoint, client), ConfigurationError, "ExpiredCredentials")


# -- Google Cloud: a credentials file that cannot be used ---------------------------------------------------------

_KEY_FILES = {
    "not JSON": "{not json",
    "missing fields": json.dumps({"type": "service_account", "client_email": "agent@p.iam.gserviceaccount.com"}),
    "a broken private key": json.dumps(
        {
            "type": "service_account",
            "client_email": "agent@p.iam.gserviceaccount.com",
            "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "token_uri": "http://127.0.0.1:9/token",
        }
    ),
    "an unknown type": json.dumps({"type": "api_key"}),
    "no such file": "",
}


@pytest.mark.parametrize("content", list(_KEY_FILES))
async def test_a_google_credentials_file_that_cannot_be_used(
    content: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "key.json"
    if _KEY_FILES[content]:
        key_file.write_text(_KEY_FILES[content])
    port = free_port()  # where the metadata server would be: nothing answers, nothing leaves this machine
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    monkeypatch.setenv("GCE_METADATA_HOST", f"127.0.0.1:{port}")
    monkeypatch.setenv("GCE_METADATA_IP", f"127.0.0.1:{port}")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    backend = GCSBackend(BUCKET, options=CloudOptions(retry=RETRY))
    with pytest.raises(ConfigurationError) as failed:
        [entry async for entry in backend.list("")]
    await backend.aclose()
    says(failed.value, ConfigurationError, "credentials file")
    assert "no Google Cloud credentials were found" not in str(failed.value)
