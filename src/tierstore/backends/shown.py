"""Settings shown without credentials: the one rule for what a dump, ``repr`` or ``str`` of any tierstore settings
model (the common ones and each provider's) may show.

Contract: a URL setting (``url``, ``*_url``) shows no user info, query or fragment (a SAS, a token), and nothing
when it is neither a URL nor a path; a plain string setting named as a credential (``*_token``, ``*_secret``,
``*_password``, ``*_key``, ``*_sas``, ``*_credential``, ``*_connection_string``) is hidden whole; a ``SecretStr``
is hidden by pydantic. The value itself, as an attribute, is untouched: the backend needs it. A provider declares
its credentials as ``SecretStr``; the names catch one that did not. Light: imports pydantic and
:mod:`tierstore.backends.locations` only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer

from tierstore.backends.locations import redact_url

HIDDEN: Final = "**********"
"""What a credential setting shows in a dump or repr, as pydantic's ``SecretStr`` does."""

_CREDENTIAL_NAME = re.compile(r"(^|_)(token|secret|password|key|sas|credentials?|connection_string)$")


def shown_setting(name: str, value: Any) -> Any:
    """A setting's value as a dump, repr or message may show it (see the module's contract)."""
    if not isinstance(value, str) or not value:
        return value
    if name == "url" or name.endswith("_url"):
        if "://" in value or value.startswith(("/", "~", "./", "../")):
            return redact_url(value)
        return HIDDEN  # neither a URL nor a path: a key pasted in its place, perhaps
    return HIDDEN if _CREDENTIAL_NAME.search(name) else value


class CredentialsHidden(BaseModel):
    """A settings model whose ``repr``, ``str``, ``model_dump`` and ``model_dump_json`` show no credential."""

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, (shown_setting(name, value) if name is not None else value)

    @model_serializer(mode="wrap")
    def _without_credentials(self, handler: SerializerFunctionWrapHandler) -> Any:
        dumped = handler(self)
        if isinstance(dumped, dict):
            return {name: shown_setting(name, value) for name, value in dumped.items()}
        return dumped
