"""Settings from the environment and backends from URLs: parsing, defaults, errors before I/O, no leaked secrets."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from tierstore.backends.azure import AzureBlobBackend
from tierstore.backends.cloud import CloudOptions, RetryPolicy
from tierstore.backends.filesystem import FileSystemBackend
from tierstore.backends.gcs import GCSBackend
from tierstore.backends.memory import InMemoryBackend
from tierstore.backends.s3 import S3Backend
from tierstore.bridge import ArtifactsBridge, bridge_from_env
from tierstore.cli import durations as cli_durations
from tierstore.config import (
    MisspeltSettingWarning,
    TierstoreSettings,
    backend_from_url,
    default_data_dir,
    load_settings,
    parse_duration,
    parse_location,
    parse_storage_classes,
    redact_url,
)
from tierstore.enums import StorageTier
from tierstore.errors import ConfigurationError, InvalidInputError, MissingDependencyError

SECRET = "SENTINEL-SECRET-0123456789abcdef"  # noqa: S105 - a sentinel that must never show up


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TIERSTORE_* variable or .env file of the developer's leaks into these tests."""
    import os

    for name in list(os.environ):
        if name.startswith("TIERSTORE_") or name in {"XDG_DATA_HOME", "AZURE_STORAGE_CONNECTION_STRING"}:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


# -- settings ---------------------------------------------------------------------------------------------------


def test_defaults_are_documented_values() -> None:
    settings = load_settings()
    assert settings.url is None
    assert settings.compression == "none"
    assert settings.concurrency == 32
    assert settings.storage_classes == {}
    assert settings.retry_policy() == RetryPolicy(max_attempts=6, deadline=30.0)


def test_every_setting_is_documented_with_its_variable_and_default() -> None:
    for name, field in TierstoreSettings.model_fields.items():
        assert field.description, name
        assert f"TIERSTORE_{name.upper()}" in field.description, name
        assert "Default" in field.description, name


def test_documented_table_lists_every_setting() -> None:
    table = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    for name in TierstoreSettings.model_fields:
        assert f"`TIERSTORE_{name.upper()}`" in table, name


def test_reads_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERSTORE_URL", "s3://bucket/prefix")
    monkeypatch.setenv("TIERSTORE_COMPRESSION", "zstd")
    monkeypatch.setenv("TIERSTORE_CONCURRENCY", "7")
    monkeypatch.setenv("tierstore_retry_deadline", "2.5")
    monkeypatch.setenv("TIERSTORE_S3_ADDRESSING_STYLE", "path")
    settings = load_settings()
    assert (settings.url, settings.compression, settings.concurrency) == ("s3://bucket/prefix", "zstd", 7)
    assert settings.retry_deadline == 2.5
    assert settings.s3_addressing_style == "path"


def test_reads_a_dotenv_file_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TIERSTORE_PREFIX=from-dotenv\nAWS_REGION=eu-west-1\nTIERSTORE_CONCURRENCY=3\n")
    settings = load_settings()
    assert settings.prefix == "from-dotenv"
    assert settings.concurrency == 3


def test_environment_beats_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("TIERSTORE_CONCURRENCY=3\n")
    monkeypatch.setenv("TIERSTORE_CONCURRENCY", "5")
    assert load_settings().concurrency == 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("L3=STANDARD,L4=DEEP_ARCHIVE", {StorageTier.L3: "STANDARD", StorageTier.L4: "DEEP_ARCHIVE"}),
        (" l4 = GLACIER_IR , ", {StorageTier.L4: "GLACIER_IR"}),
        ("L2=Cool", {StorageTier.L2: "Cool"}),
        ("", {}),
    ],
)
def test_storage_class_mapping_parses(text: str, expected: dict[StorageTier, str]) -> None:
    assert parse_storage_classes(text) == expected


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("L1=STANDARD", "L2, L3 or L4"),
        ("L0=STANDARD", "L2, L3 or L4"),
        ("L9=STANDARD", "unknown tier"),
        ("L4=", "empty"),
        ("L4", "TIER=CLASS"),
    ],
)
def test_bad_storage_class_mapping_is_a_configuration_error(
    text: str, complaint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match=complaint):
        parse_storage_classes(text)
    monkeypatch.setenv("TIERSTORE_STORAGE_CLASSES", text)
    with pytest.raises(ConfigurationError, match="TIERSTORE_STORAGE_CLASSES"):
        load_settings()


def test_storage_classes_from_python_are_validated_too() -> None:
    as_text: dict[Any, str] = {"l4": "ARCHIVE"}  # tier names as a caller may write them
    assert TierstoreSettings(storage_classes=as_text).storage_classes == {StorageTier.L4: "ARCHIVE"}
    with pytest.raises(ConfigurationError):
        load_settings(storage_classes={StorageTier.L1: "STANDARD"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TIERSTORE_COMPRESSION", "gzip"),
        ("TIERSTORE_CONCURRENCY", "0"),
        ("TIERSTORE_RETRY_DEADLINE", "-1"),
        ("TIERSTORE_READ_TIMEOUT", "soon"),
    ],
)
def test_invalid_values_are_configuration_errors_naming_the_variable(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name) as caught:
        load_settings()
    assert isinstance(caught.value, InvalidInputError)


def test_errors_never_echo_the_value_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERSTORE_CONCURRENCY", SECRET)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is None


def test_repr_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERSTORE_AZURE_CONNECTION_STRING", f"AccountName=a;AccountKey={SECRET}")
    monkeypatch.setenv("TIERSTORE_AZURE_ACCOUNT_URL", f"https://a.blob.core.windows.net/?sv=1&sig={SECRET}")
    monkeypatch.setenv("TIERSTORE_URL", f"s3://user:{SECRET}@bucket/p?token={SECRET}")
    settings = load_settings()
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    assert "https://a.blob.core.windows.net/" in repr(settings)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"s3://key:{SECRET}@bucket/prefix", "s3://bucket/prefix"),
        (f"https://acct.blob.core.windows.net/c?sig={SECRET}", "https://acct.blob.core.windows.net/c"),
        ("/plain/path", "/plain/path"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# -- backends from URLs -----------------------------------------------------------------------------------------


def test_nothing_set_means_the_local_disk_store_in_the_data_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    backend = backend_from_url(None)
    assert isinstance(backend, FileSystemBackend)
    assert backend.root == Path("/home/someone/.local/share/tierstore")
    monkeypatch.setenv("XDG_DATA_HOME", "/xdg")
    assert default_data_dir() == Path("/xdg/tierstore")
    monkeypatch.setenv("TIERSTORE_DATA_DIR", "/explicit")
    assert default_data_dir() == Path("/explicit")
    backend = backend_from_url("")
    assert isinstance(backend, FileSystemBackend)
    assert backend.root == Path("/explicit")


def test_cli_keeps_exporting_default_data_dir() -> None:
    from tierstore.cli import default_data_dir as from_cli

    assert from_cli is default_data_dir


def test_url_setting_is_used_when_no_url_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERSTORE_URL", "memory://")
    assert isinstance(backend_from_url(None), InMemoryBackend)


@pytest.mark.parametrize("url", ["file:///srv/pages", "file://localhost/srv/pages", "/srv/pages"])
def test_file_urls_and_bare_paths(url: str) -> None:
    backend = backend_from_url(url)
    assert isinstance(backend, FileSystemBackend)
    assert backend.root == Path("/srv/pages")


@pytest.mark.parametrize("path", ["./store", "../here/store"])
def test_relative_paths_spelled_as_such(tmp_path: Path, path: str) -> None:
    backend = backend_from_url(path)
    assert isinstance(backend, FileSystemBackend)
    assert backend.root == (tmp_path / path).resolve() or backend.root == tmp_path / path


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("s3:/bucket/p", "malformed s3://"),
        ("s3//bucket", "malformed s3://"),
        ("s3:bucket", "malformed s3://"),
        ("S3:/bucket", "malformed s3://"),
        ("gs:bucket", "malformed gs://"),
        ("az//container", "malformed az://"),
        ("file:/tmp/x", "malformed file://"),
        ("memory:", "malformed memory://"),
        ("nonsense", "ambiguous storage location"),
        ("pages/store", "ambiguous storage location"),
        ("http:/x", "neither a URL of a known scheme"),
        (f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={SECRET};", "Azure connection string"),
        (f"AccountName=acct;AccountKey={SECRET}", "Azure connection string"),
        (f"BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=2020&sig={SECRET}", "connection"),
    ],
)
def test_what_is_not_clearly_a_url_or_a_path_is_refused(tmp_path: Path, value: str, complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint) as caught:
        backend_from_url(value)
    assert SECRET not in str(caught.value)
    assert not any(tmp_path.iterdir())  # no directory was made from it


def test_a_file_where_the_store_should_be_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    for url in (f"file://{tmp_path}/a-file", str(tmp_path / "a-file")):
        with pytest.raises(ConfigurationError, match="not a directory"):
            backend_from_url(url)


def test_memory_url() -> None:
    assert isinstance(backend_from_url("memory://"), InMemoryBackend)


def test_s3_url_with_settings() -> None:
    settings = TierstoreSettings(
        storage_classes="L4=DEEP_ARCHIVE",  # the environment's text form
        s3_endpoint_url="http://127.0.0.1:9",
        s3_region="eu-west-1",
        s3_sse="aws:kms",
        s3_kms_key_id="alias/pages",
        retry_max_attempts=2,
        connect_timeout=1.5,
    )
    backend = backend_from_url("s3://my-bucket/agents/one", settings)
    assert isinstance(backend, S3Backend)
    assert (backend.container, backend.prefix) == ("my-bucket", "agents/one/")
    assert backend.tiers.classes[StorageTier.L4] == "DEEP_ARCHIVE"
    assert backend.tiers.classes[StorageTier.L3] == "STANDARD"
    assert "archive" in backend.capabilities
    assert "127.0.0.1:9" in repr(backend)
    assert (backend.options.retry.max_attempts, backend.options.connect_timeout) == (2, 1.5)
    assert backend.options == settings.cloud_options()


def test_prefix_setting_applies_when_the_url_has_no_path() -> None:
    settings = TierstoreSettings(prefix="tenant-a")
    backend = backend_from_url("s3://my-bucket", settings)
    assert isinstance(backend, S3Backend)
    assert backend.prefix == "tenant-a/"
    backend = backend_from_url("s3://my-bucket/explicit", settings)
    assert isinstance(backend, S3Backend)
    assert backend.prefix == "explicit/"


@pytest.mark.parametrize("scheme", ["s3", "gs", "az"])
def test_a_prefix_of_more_path_segments_than_azure_takes_is_refused_on_every_cloud(
    scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An object name has at most 254 segments on Azure (its emulator does not check): the prefix's and the key's."""
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING", "AccountName=a;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:9/a;"
    )
    settings = TierstoreSettings()
    most = "/".join(["s"] * 253)
    assert backend_from_url(f"{scheme}://bucket/{most}", settings).prefix == most + "/"  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="254 path segments, at most 253"):
        backend_from_url(f"{scheme}://bucket/{most}/s", settings)


def test_gcs_url() -> None:
    settings = TierstoreSettings(read_timeout=7, retry_deadline=3, storage_classes={StorageTier.L4: "COLDLINE"})
    backend = backend_from_url("gs://pages_bucket/p", settings)
    assert isinstance(backend, GCSBackend)
    assert (backend.container, backend.prefix) == ("pages_bucket", "p/")
    assert backend.options == settings.cloud_options()
    assert (backend.options.read_timeout, backend.options.retry.deadline) == (7, 3)
    assert backend.tiers.classes[StorageTier.L4] == "COLDLINE"
    assert backend.tiers.classes[StorageTier.L3] == "STANDARD"


def test_azure_url_uses_the_sdk_variable_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    connection = f"DefaultEndpointsProtocol=http;AccountName=devacct;AccountKey={SECRET};BlobEndpoint=http://127.0.0.1:9/devacct;"
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection)
    backend = backend_from_url("az://pages/agent")
    assert isinstance(backend, AzureBlobBackend)
    assert (backend.container, backend.prefix) == ("pages", "agent/")
    assert backend.options == CloudOptions()
    assert backend.tiers.classes == {**{tier: "Hot" for tier in StorageTier}, StorageTier.L4: "Archive"}
    assert SECRET not in repr(backend)


def test_azure_url_with_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERSTORE_AZURE_CONNECTION_STRING", f"AccountName=devacct;AccountKey={SECRET}")
    settings = load_settings(
        storage_classes="L2=cool,L4=Cold",
        read_timeout=7,
        retry_deadline=3,
        pool_size=8,
        client="sdk",
        azure_batch_delete="single",
        prefix="tenant-a",
    )
    backend = backend_from_url("az://pages", settings)
    assert isinstance(backend, AzureBlobBackend)
    assert (backend.container, backend.prefix) == ("pages", "tenant-a/")
    assert backend.tiers.classes[StorageTier.L2] == "Cool"
    assert backend.tiers.classes[StorageTier.L4] == "Cold"
    assert "archive" not in backend.capabilities
    assert (backend.options.read_timeout, backend.options.retry.deadline, backend.options.pool_size) == (7, 3, 8)
    assert backend.options.client == "sdk"
    assert backend.client.batch_limit == 0  # single deletes
    assert "devacct" in repr(backend)
    assert SECRET not in repr(backend)


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("ftp://host/x", "unknown storage URL scheme"),
        ("s3://", "need a bucket"),
        ("s3:///prefix", "need a bucket"),
        ("gs://", "need a bucket"),
        ("az://", "need a container"),
        ("s3://Not_A_Bucket", "bucket name"),
        ("file://otherhost/x", "absolute local path"),
        ("s3://bucket:99/x", "no port"),
        ("s3://bucket:port/x", "malformed"),
        (f"s3://AKIA:{SECRET}@bucket/x", "must not carry credentials"),
        (f"gs://bucket/x?token={SECRET}", "no query"),
        (f"az://c/x#{SECRET}", "no query"),
    ],
)
def test_bad_urls_fail_before_any_io_without_echoing_secrets(url: str, complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint) as caught:
        backend_from_url(url)
    assert SECRET not in str(caught.value)


def test_bad_tier_mapping_for_the_cloud_is_refused_before_io() -> None:
    with pytest.raises(ConfigurationError, match="storage class"):
        backend_from_url("gs://bucket", TierstoreSettings(storage_classes={StorageTier.L4: "DEEP_ARCHIVE"}))
    with pytest.raises(ConfigurationError):
        backend_from_url("az://pages", TierstoreSettings(storage_classes={StorageTier.L3: "Archive"}))


def test_azure_without_credentials_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="AZURE_STORAGE_CONNECTION_STRING"):
        backend_from_url("az://pages")


@pytest.mark.parametrize(
    ("url", "module", "extra"),
    [("s3://bucket", "aioboto3", "s3"), ("gs://bucket", "google.cloud.storage", "gcs")],
)
def test_a_missing_extra_names_the_pip_command(
    url: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # what the import system records for a module it cannot import
    with pytest.raises(MissingDependencyError, match=rf"pip install 'tierstore\[{extra}\]'"):
        backend_from_url(url)


def test_bridge_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TIERSTORE_URL", f"file://{tmp_path}/store")
    monkeypatch.setenv("TIERSTORE_COMPRESSION", "zstd")
    bridge = bridge_from_env()
    assert isinstance(bridge.backend, FileSystemBackend)
    assert bridge.backend.root == tmp_path / "store"
    assert bridge.compression == "zstd"


async def test_bridge_from_env_stores_and_loads(tmp_path: Path) -> None:
    from tierstore.enums import Modality
    from tierstore.models import MemoryPage

    settings = TierstoreSettings(url=str(tmp_path / "store"), concurrency=2)
    async with bridge_from_env(settings) as bridge:
        artifact = await bridge.store_page(MemoryPage(page_id="p1", modality=Modality.TEXT, content="hello"))
    async with bridge_from_env(settings) as bridge:
        page = await bridge.load_page(artifact)
    assert page is not None
    assert page.content == "hello"


# -- misspelt settings, heard from Python ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda: ArtifactsBridge.from_env(), id="ArtifactsBridge.from_env"),
        pytest.param(lambda: bridge_from_env(), id="bridge_from_env"),
        pytest.param(lambda: load_settings(), id="load_settings"),
        pytest.param(lambda: TierstoreSettings(), id="TierstoreSettings"),
        pytest.param(lambda: backend_from_url(None), id="backend_from_url"),
    ],
)
def test_a_misspelt_setting_warns_wherever_settings_are_read(
    read: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TIERSTORE_ULR", "s3://meant-for-s3/prefix")
    monkeypatch.setenv("TIERSTORE_DATA_DIR", str(Path.cwd()))
    expected = "TIERSTORE_ULR is not a tierstore setting and is ignored; did you mean TIERSTORE_URL?"
    with caplog.at_level(logging.WARNING, logger="tierstore"), pytest.warns(MisspeltSettingWarning) as warned:
        read()
    assert [str(w.message) for w in warned] == [expected]
    assert warned[0].filename == __file__  # pointed at the caller, not at tierstore's insides
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("tierstore.config", "WARNING", expected)
    ]


def test_a_misspelt_setting_in_dotenv_warns_and_a_right_one_does_not(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TIERSTORE_CONCURENCY=4\nTIERSTORE_COMPRESSION=none\n")
    with pytest.warns(MisspeltSettingWarning, match="did you mean TIERSTORE_CONCURRENCY"):
        load_settings()
    (tmp_path / ".env").write_text("TIERSTORE_CONCURRENCY=4\nTIERSTORE_SOMETHING_ELSE_ENTIRELY=1\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_settings().concurrency == 4


# -- one rule per kind of value ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "given", "field", "value"),
    [
        ("TIERSTORE_CLIENT", "OBSTORE", "client", "obstore"),
        ("TIERSTORE_CLIENT", " Sdk ", "client", "sdk"),
        ("TIERSTORE_COMPRESSION", "ZSTD", "compression", "zstd"),
        ("TIERSTORE_S3_ADDRESSING_STYLE", "Path", "s3_addressing_style", "path"),
        ("TIERSTORE_AZURE_BATCH_DELETE", "SINGLE", "azure_batch_delete", "single"),
        ("TIERSTORE_S3_SSE", "aes256", "s3_sse", "AES256"),
        ("TIERSTORE_S3_SSE", "AWS:KMS", "s3_sse", "aws:kms"),
    ],
)
def test_choices_are_case_insensitive(
    monkeypatch: pytest.MonkeyPatch, variable: str, given: str, field: str, value: str
) -> None:
    monkeypatch.setenv(variable, given)
    assert getattr(load_settings(), field) == value


@pytest.mark.parametrize("variable", [f"TIERSTORE_{name.upper()}" for name in TierstoreSettings.model_fields])
def test_an_empty_variable_is_an_unset_one(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "")
    field = variable.removeprefix("TIERSTORE_").lower()
    default = TierstoreSettings.model_fields[field].get_default(call_default_factory=True)
    assert getattr(load_settings(), field) == default


@pytest.mark.parametrize(
    ("given", "seconds"),
    [("10", 10.0), ("2.5", 2.5), ("250ms", 0.25), ("10s", 10.0), ("5m", 300.0), ("1h", 3600.0), (" 1 M ", 60.0)],
)
@pytest.mark.parametrize(
    "variable", ["TIERSTORE_RETRY_DEADLINE", "TIERSTORE_CONNECT_TIMEOUT", "TIERSTORE_READ_TIMEOUT"]
)
def test_every_duration_takes_units(monkeypatch: pytest.MonkeyPatch, variable: str, given: str, seconds: float) -> None:
    monkeypatch.setenv(variable, given)
    assert getattr(load_settings(), variable.removeprefix("TIERSTORE_").lower()) == seconds


@pytest.mark.parametrize("given", ["10x", "ten", "-1s", "0s", "1h30m"])
def test_a_bad_duration_names_the_variable_without_echoing_it(monkeypatch: pytest.MonkeyPatch, given: str) -> None:
    monkeypatch.setenv("TIERSTORE_RETRY_DEADLINE", given)
    with pytest.raises(ConfigurationError, match="TIERSTORE_RETRY_DEADLINE") as caught:
        load_settings()
    assert repr(given) not in str(caught.value)


def test_the_command_line_and_the_settings_read_durations_alike() -> None:
    for text in ("90", "30s", "250ms", "15m", "1h", "2d", "1w", "36500d"):
        assert cli_durations.parse_duration(text) == parse_duration(text)


@pytest.mark.parametrize("text", ["36501d", "5300w", "9" * 30, "9" * 400, "1e300", "inf", "nan", "-1"])
def test_a_duration_past_a_hundred_years_or_no_number_is_refused(text: str) -> None:
    """Beyond the bound, a time minus the duration overflows (gc's cut-off, a wait's deadline): refused up front."""
    with pytest.raises(ConfigurationError):
        parse_duration(text)
    with pytest.raises(argparse.ArgumentTypeError, match="invalid duration"):
        cli_durations.parse_duration(text)


@pytest.mark.parametrize(
    ("variable", "bad"),
    [
        ("TIERSTORE_S3_SSE", "rot13"),
        ("TIERSTORE_S3_ADDRESSING_STYLE", "sideways"),
        ("TIERSTORE_AZURE_BATCH_DELETE", "sometimes"),
    ],
)
def test_a_bad_setting_of_one_cloud_fails_only_that_cloud(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, bad: str
) -> None:
    monkeypatch.setenv(variable, bad)
    settings = load_settings()
    assert isinstance(backend_from_url(f"file://{tmp_path}", settings), FileSystemBackend)
    assert isinstance(backend_from_url("memory://", settings), InMemoryBackend)
    scheme = {"S3": "s3://bucket", "AZURE": "az://container"}[variable.split("_")[1]]
    with pytest.raises(ConfigurationError, match=variable) as caught:
        backend_from_url(scheme, settings)
    assert bad not in str(caught.value)


def test_a_bad_shared_setting_still_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERSTORE_S3_SSE", "rot13")
    monkeypatch.setenv("TIERSTORE_CONCURRENCY", "0")
    with pytest.raises(ConfigurationError, match="TIERSTORE_CONCURRENCY") as caught:
        load_settings()
    assert "TIERSTORE_S3_SSE" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "mapping"),
    [
        ("s3://bucket", "L3=GLACIER"),
        ("s3://bucket", "L2=DEEP_ARCHIVE"),
        ("az://container", "L3=Archive"),
    ],
)
def test_a_working_tier_in_an_archive_class_is_refused(monkeypatch: pytest.MonkeyPatch, url: str, mapping: str) -> None:
    monkeypatch.setenv("TIERSTORE_STORAGE_CLASSES", mapping)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true")
    with pytest.raises(ConfigurationError, match="only L4 may be archived"):
        backend_from_url(url)


def test_an_archive_tier_on_l4_and_a_readable_class_anywhere_are_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERSTORE_STORAGE_CLASSES", "L3=GLACIER_IR,L4=DEEP_ARCHIVE")
    assert isinstance(backend_from_url("s3://bucket"), S3Backend)
    monkeypatch.setenv("TIERSTORE_STORAGE_CLASSES", "L3=ARCHIVE")  # GCS reads ARCHIVE at once: no restore
    assert isinstance(backend_from_url("gs://bucket"), GCSBackend)


@pytest.mark.parametrize("value", ["pages", "data/tierstore"])
def test_a_relative_data_dir_follows_the_rule_for_paths(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TIERSTORE_DATA_DIR", value)
    with pytest.raises(ConfigurationError, match="TIERSTORE_DATA_DIR must be an absolute path"):
        load_settings()
    with pytest.raises(ConfigurationError, match="TIERSTORE_DATA_DIR must be an absolute path"):
        default_data_dir()


def test_a_data_dir_spelled_relative_is_resolved_when_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TIERSTORE_DATA_DIR", "./pages")
    settings = load_settings()
    assert settings.local_data_dir() == tmp_path / "pages"
    assert default_data_dir() == tmp_path / "pages"
    monkeypatch.chdir(tmp_path.parent)
    assert settings.local_data_dir() == tmp_path / "pages"  # read once: a later chdir does not move the store


@pytest.mark.parametrize("url", ["s3://bucket//double", "s3://bucket/a//b", "gs://bucket/a//", "az://container//"])
def test_an_empty_path_segment_in_a_cloud_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="empty path segment"):
        parse_location(url)


@pytest.mark.parametrize(("url", "prefix"), [("s3://bucket/", ""), ("s3://bucket/a/b/", "a/b"), ("gs://b/p", "p")])
def test_a_single_trailing_slash_is_fine(url: str, prefix: str) -> None:
    assert parse_location(url).path == prefix
