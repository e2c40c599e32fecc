"""Who the Azure backend is and how it proves it: one place that reads a connection string, an account URL and a
credential, for both data paths.

Contract:

* :class:`AzureAuth` takes a connection string (else ``$AZURE_STORAGE_CONNECTION_STRING``), or ``account_url`` with a
  credential (an account key, a SAS token, an ``AzureNamedKeyCredential``/``AzureSasCredential``, an async
  ``TokenCredential``, or a zero-argument callable that makes one, such as a credential class), or ``account_url``
  alone: then ``azure.identity.aio.DefaultAzureCredential`` is used. Nothing here does I/O.
* A token credential made here (the default one, or by the callable given) is made once per event loop, on first
  use there, and closed when that loop ends or by :meth:`AzureAuth.aclose` in it (azure-identity's credentials
  hold aiohttp connections bound to the loop that opened them, as :mod:`tierstore.loops` says of clients). A
  credential *object* of azure-identity's that was given is bound so too: used from a second event loop it is
  ConfigurationError naming the fix (give the callable instead); any other given object is used as it is.
* :meth:`AzureAuth.secrets` lists every key, SAS and connection string it holds; :meth:`AzureAuth.describe` names
  the account or the URL without its query (a connection string's own blob endpoint too, and the variable it came
  from when it was read from the environment), never a credential.
* A token credential whose ``get_token`` raises something of its own (neither azure-core's errors, which say why no
  token came, nor a network error) is ConfigurationError naming that error, on both data paths: a retry would not
  change it, and the fault is the credential's, not the service's.
* :meth:`AzureAuth.obstore_config` says how obstore would connect (endpoint, account, key or SAS or token), or why
  it cannot (a credential type obstore has no equivalent for).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from tierstore.backends._optional import require
from tierstore.errors import ConfigurationError
from tierstore.loops import LoopClients

ENVIRONMENT_VARIABLE: Final = "AZURE_STORAGE_CONNECTION_STRING"
TOKEN_SCOPE: Final = "https://storage.azure.com/.default"  # noqa: S105 - an OAuth scope, not a secret
# The development account every Azure emulator serves (public values, documented by Microsoft).
_DEV_ACCOUNT: Final = "devstoreaccount1"
_DEV_KEY: Final = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_DEV_ENDPOINT: Final = "http://127.0.0.1:10000/devstoreaccount1"


@dataclass(frozen=True, slots=True)
class ObstoreAccess:
    """What obstore's ``AzureStore`` needs: ``config`` keys, and a token provider for a TokenCredential."""

    config: dict[str, str] = field(repr=False)  # holds the account key or SAS
    token_provider: Callable[[], Awaitable[dict[str, Any]]] | None = None
    secure: bool = True


def parse_connection_string(connection_string: str) -> dict[str, str]:
    """``Name=value;`` pairs, names upper-cased (as the SDK reads them); ConfigurationError when malformed."""
    settings: dict[str, str] = {}
    for part in connection_string.strip().rstrip(";").split(";"):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ConfigurationError("the Azure connection string is malformed: expected Name=value pairs")
        settings[name.strip().upper()] = value.strip()
    return settings


def is_factory(credential: Any) -> bool:
    """Is ``credential`` a callable that makes a credential (a class, a function), rather than a credential?"""
    return inspect.isclass(credential) or (callable(credential) and not hasattr(credential, "get_token"))


def _bound_to_its_loop(credential: Any) -> bool:
    """azure-identity's async credentials open aiohttp sessions in the loop of their first token request."""
    return type(credential).__module__.startswith("azure.identity.aio")


async def _close_credential(credential: Any) -> None:
    close = getattr(credential, "close", None)
    if close is not None:
        await close()


def is_sas(text: str) -> bool:
    """Does ``text`` read as a SAS query string (as opposed to an account key)?"""
    return "sig" in parse_qs(text.lstrip("?"))  # every SAS is signed; an account key is bare base64


async def _token(credential: Any, *scopes: str, **kwargs: Any) -> Any:
    """``credential.get_token(*scopes)``; what it raised of its own as ConfigurationError (see the contract)."""
    try:
        return await credential.get_token(*scopes, **kwargs)
    except OSError:
        raise  # the network, a timeout: classified and retried as any request's
    except Exception as exc:
        if type(exc).__module__.startswith("azure."):
            raise  # azure-core and azure-identity's errors say why no token came: classified as such
        said = str(exc)[:200]
        raise ConfigurationError(
            f"the Azure token credential {type(credential).__name__} failed to give a token: its get_token raised "
            f"{type(exc).__name__}{f': {said}' if said else ''} (fix the credential, or give another)"
        ) from exc


class _ReportingCredential:
    """The SDK's view of a token credential: the same tokens, with :func:`_token`'s errors."""

    __slots__ = ("_credential",)

    def __init__(self, credential: Any) -> None:
        self._credential = credential

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        return await _token(self._credential, *scopes, **kwargs)


class AzureAuth:
    """Holds the credentials in private attributes only: no ``repr`` and no walk of public attributes shows them."""

    __slots__ = ("_account_url", "_connection_string", "_credential", "_first_loop", "_made", "_source")

    def __init__(
        self, connection_string: str | None, account_url: str | None, credential: Any, source: str = ""
    ) -> None:
        self._connection_string = connection_string
        self._source = source
        """Where the connection string came from when not given (the environment variable), for errors."""
        self._account_url = account_url  # may carry a SAS in its query
        self._credential = credential
        self._made: LoopClients[Any] = LoopClients(self._make_credential, _close_credential, "Azure credential")
        """The token credential made here for each event loop, closed with it."""
        self._first_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        """The loop a given loop-bound credential object was first used in."""

    def __repr__(self) -> str:
        return f"AzureAuth({self.describe().removeprefix(', ')})"

    @classmethod
    def resolve(cls, connection_string: str | None, account_url: str | None, credential: Any) -> AzureAuth:
        """The credentials a connection string or an account URL names (the connection string may come from
        the environment); ConfigurationError, before any request, when they are missing, doubled or malformed."""
        if connection_string and account_url:
            raise ConfigurationError("give either connection_string or account_url, not both")
        if account_url:
            if not urlsplit(account_url).scheme or not urlsplit(account_url).netloc:
                raise ConfigurationError("account_url must be a URL such as https://ACCOUNT.blob.core.windows.net")
            return cls(None, account_url, credential)
        source = "" if connection_string else ENVIRONMENT_VARIABLE
        connection_string = connection_string or os.environ.get(ENVIRONMENT_VARIABLE)
        if not connection_string:
            raise ConfigurationError(
                f"no Azure credentials: pass connection_string, set {ENVIRONMENT_VARIABLE}, "
                "or pass account_url (with a credential, or none to use DefaultAzureCredential)"
            )
        parse_connection_string(connection_string)
        return cls(connection_string, None, credential, source)

    # -- what it holds ------------------------------------------------------------------------------------------

    def _settings(self) -> dict[str, str]:
        return parse_connection_string(self._connection_string) if self._connection_string else {}

    def account_name(self) -> str | None:
        """The storage account's name, from the connection string or the endpoint's host or path; else None."""
        settings = self._settings()
        if settings.get("USEDEVELOPMENTSTORAGE", "").lower() == "true":
            return _DEV_ACCOUNT
        if settings.get("ACCOUNTNAME"):
            return settings["ACCOUNTNAME"]
        parts = urlsplit(self.endpoint())
        host = parts.hostname or ""
        if ".blob." in host:
            return host.split(".", 1)[0]
        segments = [segment for segment in parts.path.split("/") if segment]
        return segments[0] if segments else None  # path-style, as the emulators serve it

    def endpoint(self) -> str:
        """The blob service URL, without a query (so without a SAS)."""
        settings = self._settings()
        if settings.get("USEDEVELOPMENTSTORAGE", "").lower() == "true":
            return _DEV_ENDPOINT
        if not self._connection_string:
            parts = urlsplit(str(self._account_url))
            return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")
        if "BLOBENDPOINT" in settings:
            return settings["BLOBENDPOINT"].rstrip("/")
        protocol = settings.get("DEFAULTENDPOINTSPROTOCOL", "https")
        suffix = settings.get("ENDPOINTSUFFIX", "core.windows.net")
        return f"{protocol}://{settings.get('ACCOUNTNAME', '')}.blob.{suffix}"

    def _key_and_sas(self) -> tuple[str | None, str | None]:
        settings = self._settings()
        if settings.get("USEDEVELOPMENTSTORAGE", "").lower() == "true":
            return _DEV_KEY, None
        if is_factory(self._credential):
            return None, None
        key, sas = settings.get("ACCOUNTKEY"), settings.get("SHAREDACCESSSIGNATURE")
        if self._account_url:
            query = urlsplit(self._account_url).query
            sas = query if is_sas(query) else None
        credential = self._credential
        if isinstance(credential, str):
            key, sas = (None, credential.lstrip("?")) if is_sas(credential) else (credential, sas)
        elif isinstance(credential, dict):  # the SDK's {"account_name": ..., "account_key": ...}
            key = credential.get("account_key")
        elif hasattr(credential, "named_key"):
            key = credential.named_key.key
        elif hasattr(credential, "signature"):
            sas = str(credential.signature).lstrip("?")
        return key, sas

    def secrets(self) -> list[str]:
        """Every credential text held (connection string, account key, SAS), for redaction to hide."""
        key, sas = self._key_and_sas()
        found = [self._connection_string, key, sas]
        if isinstance(self._credential, str):
            found.append(self._credential)
        return [secret for secret in found if secret]

    def describe(self) -> str:
        """The account or endpoint, for a backend's ``repr``: never a key or SAS."""
        account = self.account_name()
        if self._connection_string is None:
            return f", account_url={self.endpoint()!r}"
        settings = self._settings()
        named = "BLOBENDPOINT" in settings or settings.get("USEDEVELOPMENTSTORAGE", "").lower() == "true"
        parts = urlsplit(self.endpoint())
        shown = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
        endpoint = f", endpoint={shown!r}" if named else ""  # one the account's name does not say; no user info
        return f", account={account!r}{endpoint}" + (f" from {self._source}" if self._source else "")

    # -- the credential each client uses ------------------------------------------------------------------------

    def connection_string(self) -> str | None:
        """The connection string given or read from the environment; None when an account URL was given."""
        return self._connection_string

    def account_url(self) -> str | None:
        """The account URL given (a SAS may be in its query); None when a connection string was."""
        return self._account_url

    def owned(self) -> Any:
        """The token credential made here for the running event loop, if one was (closed by :meth:`aclose`)."""
        return self._made.current()

    def uses_token(self) -> bool:
        """Whether requests sign with a token credential (no account key and no SAS anywhere)."""
        key, sas = self._key_and_sas()
        return self._connection_string is None and key is None and sas is None

    async def token_credential(self) -> Any:
        """The async TokenCredential of the running event loop: the object given, or the one made here for it."""
        given = self._credential
        if given is None or is_factory(given):
            return await self._made.get()
        if _bound_to_its_loop(given):
            loop = asyncio.get_running_loop()
            if self._first_loop is None:
                self._first_loop = weakref.ref(loop)
            elif self._first_loop() is not loop:
                kind = type(given).__name__
                raise ConfigurationError(
                    f"the {kind} credential object was first used in another event loop, and azure-identity's "
                    f"credentials stay bound to it: pass credential={kind} (the class, or any callable that makes "
                    "one) so that each event loop makes its own, or use the bridge from one loop (SyncBridge)"
                )
        return given

    async def _make_credential(self) -> Any:
        if self._credential is None:
            identity = require("azure.identity.aio", extra="azure", package="azure-identity")
            return identity.DefaultAzureCredential()
        made = self._credential()
        if not callable(getattr(made, "get_token", None)):
            await _close_credential(made)
            raise ConfigurationError(
                f"the credential callable made a {type(made).__name__}, not an async TokenCredential (get_token)"
            )
        return made

    async def sdk_credential(self) -> Any:
        """The ``credential`` argument of the SDK's clients in the running loop (None when the URL carries a SAS)."""
        if self.uses_token():
            return _ReportingCredential(await self.token_credential())
        return None if is_factory(self._credential) else self._credential

    def obstore_access(self) -> ObstoreAccess | str:
        """How obstore connects with these credentials, or why it cannot."""
        account = self.account_name()
        if not account:
            return "the account name cannot be read from the account URL"
        endpoint = self.endpoint()
        config = {"account_name": account, "endpoint": endpoint}
        secure = endpoint.startswith("https:")
        key, sas = self._key_and_sas()
        if key is not None:
            return ObstoreAccess({**config, "account_key": key}, secure=secure)
        if sas is not None:
            return ObstoreAccess({**config, "sas_key": sas}, secure=secure)
        given = self._credential
        if given is not None and not is_factory(given) and not callable(getattr(given, "get_token", None)):
            return f"obstore has no equivalent of a {type(self._credential).__name__} credential"
        return ObstoreAccess(config, self._token_provider, secure=secure)

    async def _token_provider(self) -> dict[str, Any]:
        token = await _token(await self.token_credential(), TOKEN_SCOPE)
        return {"token": token.token, "expires_at": datetime.fromtimestamp(token.expires_on, UTC)}

    async def aclose(self) -> None:
        """Close the credential made for the running loop (other loops' close with their loops)."""
        await self._made.aclose()
