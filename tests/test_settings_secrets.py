"""No settings field shows a credential: whatever value each ``TIERSTORE_*`` variable is given, a URL with user info
and a SAS, or a key, no ``repr``, ``str``, ``model_dump``, ``model_dump_json`` or error of the settings (the
common ones or any provider's own, as read through ``section``) shows the secret in it. Every field is tried; one
that cannot carry a credential is named in NOT_CREDENTIALS, so a new field is checked until someone says so.
"""

from __future__ import annotations

import pytest

from tierstore.backends import registry
from tierstore.config import TierstoreSettings, load_settings
from tierstore.errors import ConfigurationError

SENTINEL = "S3NT1N3Lsecret0123"
VALUES = {
    "a URL with user info and a SAS": f"https://AKIA:{SENTINEL}@acct.blob.core.windows.net/c?sv=2022&sig={SENTINEL}#x",
    "a key": f"{SENTINEL}+/ABCDEFGH==",
    "a connection string": f"AccountName=a;AccountKey={SENTINEL};EndpointSuffix=core.windows.net",
}
NOT_CREDENTIALS = {
    "prefix": "an object-name prefix, shown in every listing",
    "s3_region": "a region name",
    "s3_profile": "the name of a profile in the AWS files, not its keys",
    "s3_kms_key_id": "the id or ARN of a KMS key, which AWS shows in every object's metadata",
    "gcs_project": "a project id",
    "user_id": "a user's id, which `tierstore users` lists and a bridge's repr shows",
    "session_id": "a session's id, which `tierstore sessions` lists and a bridge's repr shows",
}


def _texts(settings: TierstoreSettings) -> dict[str, str]:
    texts = {
        "repr": repr(settings),
        "str": str(settings),
        "model_dump": str(settings.model_dump()),
        "model_dump_json": settings.model_dump_json(),
    }
    for scheme, model in registry.settings_models().items():
        section = settings.section(model)
        texts |= {
            f"{scheme} section repr": repr(section),
            f"{scheme} section dump": str(section.model_dump()),
            f"{scheme} section json": section.model_dump_json(),
        }
    return texts


@pytest.mark.parametrize("kind", VALUES)
@pytest.mark.parametrize("field", sorted(set(TierstoreSettings.model_fields) - set(NOT_CREDENTIALS)))
def test_no_settings_field_shows_a_credential(monkeypatch: pytest.MonkeyPatch, field: str, kind: str) -> None:
    monkeypatch.setenv(f"TIERSTORE_{field.upper()}", VALUES[kind])
    refusal = ""
    try:
        settings = load_settings()
        for scheme in registry.names():
            settings.check_for(scheme)
    except ConfigurationError as exc:  # refused: the message names the variable, never the value
        refusal = str(exc)
    if refusal:
        assert SENTINEL not in refusal
        return
    for how, text in _texts(settings).items():
        assert SENTINEL not in text, f"{how} of TIERSTORE_{field.upper()} shows the credential: {text}"


def test_the_backend_still_gets_the_credential() -> None:
    url = f"https://acct.blob.core.windows.net/?sv=2022&sig={SENTINEL}"
    settings = TierstoreSettings(azure_account_url=url)
    assert settings.azure_account_url == url
    assert settings.section(registry.settings_models()["az"]).azure_account_url == url
    assert "https://acct.blob.core.windows.net/" in settings.model_dump_json()


def test_every_field_not_checked_says_why() -> None:
    assert set(NOT_CREDENTIALS) <= set(TierstoreSettings.model_fields)
