"""Adding a provider is its package plus one line of the registry (README, Development): a fifth provider, written
here as a package of its own and added by that one line, gets its TIERSTORE_* settings (an invalid one failing only
its own URLs), its URL, its re-exported backend, its URL in the command line's help and its SDK loggers scrubbed,
with no other file touched; one given to ``registry.register`` at run time gets its settings and its loggers
scrubbed too. And every built-in provider is listed wherever providers are listed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import ROOT
from tierstore.backends import registry
from tierstore.backends.cloud import redact
from tierstore.cli import app
from tierstore.config import TierstoreSettings

PROVIDER = """
from pydantic import BaseModel, Field

from tierstore.backends.registry import Scheme


class FakeSettings(BaseModel):
    fk_region: str | None = Field(default=None, description="Region (TIERSTORE_FK_REGION). Default: none.")
    fk_level: int = Field(default=1, ge=1, description="Level (TIERSTORE_FK_LEVEL). Default: 1.")


def from_url(location, settings):
    from fakeprov.backend import FakeBackend

    own = settings.section(FakeSettings)
    return FakeBackend(location.container, location.path or settings.prefix, own.fk_region)


SCHEME = Scheme(
    "fk",
    from_url,
    container="bucket",
    example="fk://bucket/prefix",
    settings=FakeSettings,
    loggers=("fakesdk",),
    exports={"FakeBackend": "fakeprov.backend"},
)
"""
BACKEND = """
from tierstore.backends.memory import InMemoryBackend


class FakeBackend(InMemoryBackend):
    def __init__(self, bucket, prefix, region):
        super().__init__()
        self.bucket, self.prefix, self.region = bucket, prefix, region
"""
PROGRAM = """
import json
from tierstore.backends import registry

registry.BUILT_IN = {**registry.BUILT_IN, "fk": "fakeprov.provider"}  # the one line a provider adds

import tierstore
from tierstore.backends.cloud import redact
from tierstore.cli import app
from tierstore.config import TierstoreSettings, backend_from_url
from tierstore.errors import ConfigurationError

found = {"fields": [name for name in TierstoreSettings.model_fields if name.startswith("fk_")]}
try:
    backend = backend_from_url("fk://pages/agent")
    found["backend"] = [type(backend).__name__, backend.bucket, backend.prefix, backend.region]
except ConfigurationError as exc:
    found["refused"] = str(exc)
found["memory"] = type(backend_from_url("memory://")).__name__
found["export"] = tierstore.FakeBackend.__name__
found["in_all"] = "FakeBackend" in tierstore.__all__
found["help"] = "fk://bucket/prefix" in app.parser().format_help()
found["scrubbed"] = "fakesdk" in redact.scrubbed_loggers()
print(json.dumps(found))
"""


def run_with_a_fifth_provider(tmp_path: Path, program: str = PROGRAM, **environment: str) -> dict[str, object]:
    package = tmp_path / "fakeprov"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "provider.py").write_text(textwrap.dedent(PROVIDER))
    (package / "backend.py").write_text(textwrap.dedent(BACKEND))
    kept = {k: v for k, v in os.environ.items() if not k.startswith("TIERSTORE_")}
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=tmp_path,
        env={**kept, **environment, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{tmp_path}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, object] = json.loads(result.stdout)
    return found


def test_a_fifth_provider_is_its_package_and_one_registry_line(tmp_path: Path) -> None:
    found = run_with_a_fifth_provider(tmp_path, TIERSTORE_FK_REGION="north")
    assert found["fields"] == ["fk_region", "fk_level"]
    assert found["backend"] == ["FakeBackend", "pages", "agent", "north"]
    assert found["export"] == "FakeBackend"
    assert found["in_all"] is True
    assert found["help"] is True
    assert found["scrubbed"] is True


def test_an_invalid_setting_of_the_fifth_provider_fails_only_its_urls(tmp_path: Path) -> None:
    found = run_with_a_fifth_provider(tmp_path, TIERSTORE_FK_LEVEL="0")
    assert "TIERSTORE_FK_LEVEL" in str(found["refused"])
    assert found["memory"] == "InMemoryBackend"


def test_every_built_in_provider_is_listed_wherever_providers_are() -> None:
    import tierstore

    usage = app.parser().format_help()
    scrubbed = redact.scrubbed_loggers()
    for scheme in registry.every_scheme():
        assert scheme.form() in usage, scheme.name
        assert scheme.form() in (TierstoreSettings.model_fields["url"].description or ""), scheme.name
        assert set(scheme.loggers) <= set(scrubbed), scheme.name
        for name in scheme.exports:
            assert name in tierstore.__all__, name
        if scheme.settings is not None:
            assert set(scheme.settings.model_fields) <= set(TierstoreSettings.model_fields), scheme.name


AT_RUN_TIME = """
import io, json, logging, warnings
from tierstore.backends import registry
from tierstore.backends.cloud import redact
from tierstore.config import backend_from_url
from tierstore.errors import ConfigurationError

warnings.simplefilter("error")  # a 'did you mean' warning about the provider's own variable fails the run
redact.install()  # as the first cloud backend does, before the provider is registered
from fakeprov.provider import SCHEME

registry.register(SCHEME)
found = {}
try:
    backend = backend_from_url("fk://pages/agent")
    found["backend"] = [type(backend).__name__, backend.bucket, backend.prefix, backend.region]
except ConfigurationError as exc:
    found["refused"] = str(exc)
found["memory"] = type(backend_from_url("memory://")).__name__
lines = io.StringIO()
logging.getLogger().addHandler(logging.StreamHandler(lines))
logging.getLogger().setLevel(logging.DEBUG)
redact.register_secret("S3NT1N3L-fake-token")
logging.getLogger("fakesdk").debug("connecting with token %s", "S3NT1N3L-fake-token")
found["log"] = lines.getvalue()
print(json.dumps(found))
"""


def test_a_provider_registered_at_run_time_gets_its_settings_and_its_loggers_scrubbed(tmp_path: Path) -> None:
    found = run_with_a_fifth_provider(tmp_path, program=AT_RUN_TIME, TIERSTORE_FK_REGION="north")
    assert found["backend"] == ["FakeBackend", "pages", "agent", "north"]
    assert "connecting with token" in str(found["log"])
    assert "S3NT1N3L" not in str(found["log"])
    refused = run_with_a_fifth_provider(tmp_path, program=AT_RUN_TIME, TIERSTORE_FK_LEVEL="0")
    assert "TIERSTORE_FK_LEVEL" in str(refused["refused"])
    assert refused["memory"] == "InMemoryBackend"
