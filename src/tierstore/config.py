"""Configuration from the environment, and backends addressed by one URL.

* :class:`TierstoreSettings` reads ``TIERSTORE_*`` environment variables (and a ``.env`` file in the working
  directory, when there is one). Every setting is optional; with none set, tierstore uses the local-disk store
  under :func:`default_data_dir`.
* The settings common to every store are fields here; each provider's own (``TIERSTORE_S3_*``, …) are declared
  by its package and merged in from :mod:`tierstore.backends.registry`, so this module names no provider.
* :func:`backend_from_url` builds a backend from a URL of a registered scheme (``file:///path`` or an unambiguous
  path: absolute, ``~/``, ``./`` or ``../``; ``memory://``; ``s3://bucket/prefix``, …): it parses the URL strictly
  (:func:`~tierstore.backends.locations.parse_location`) and asks the scheme's provider to build the backend.
  ``ArtifactsBridge.from_env`` builds a bridge from the settings.
* Each cloud SDK keeps its own conventions (``AWS_*``, ``AWS_ENDPOINT_URL``, ``STORAGE_EMULATOR_HOST``, Application
  Default Credentials, ``AZURE_STORAGE_CONNECTION_STRING``, ``DefaultAzureCredential``): this module never reads
  them; the adapters and SDKs do.
* Mistakes raise :class:`~tierstore.errors.ConfigurationError` before any I/O, and a missing extra raises
  :class:`~tierstore.errors.MissingDependencyError` naming the ``pip install``. No message, repr or log line built
  here contains a credential: URLs are shown without user info, query or fragment, and settings errors never
  echo the value that was given.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field, PrivateAttr, ValidationError, ValidationInfo, create_model, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from tierstore.backends import registry
from tierstore.backends.locations import parse_location as parse_location, redact_url as redact_url
from tierstore.backends.registry import Location, scheme_of
from tierstore.backends.shown import CredentialsHidden
from tierstore.enums import StorageTier
from tierstore.errors import ConfigurationError, InvalidInputError
from tierstore.scopes import check_scope_id
from tierstore.setting_values import (
    checked_storage_classes,
    default_data_dir as default_data_dir,
    local_directory as local_directory,
    parse_duration as parse_duration,
    parse_storage_classes as parse_storage_classes,
)

if TYPE_CHECKING:
    from tierstore.backends.base import StorageBackend
    from tierstore.backends.cloud.options import CloudOptions
    from tierstore.backends.cloud.retry import RetryPolicy

M = TypeVar("M", bound=BaseModel)

_log = logging.getLogger(__name__)


class MisspeltSettingWarning(UserWarning):
    """A ``TIERSTORE_*`` variable that is no setting but close to one (``TIERSTORE_ULR``), or another case of a
    setting set beside it (``tierstore_url`` beside ``TIERSTORE_URL``): it is ignored."""


_quiet: ContextVar[bool] = ContextVar("tierstore_settings_quiet", default=False)


class CommonSettings(BaseSettings, CredentialsHidden):
    """The settings common to every store; :class:`TierstoreSettings` adds each provider's own."""

    model_config = SettingsConfigDict(
        env_prefix="TIERSTORE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,
        validate_default=True,
        env_ignore_empty=True,
    )
    _deferred: dict[str, str] = PrivateAttr(default_factory=dict)
    """Problems with one scheme's own settings, raised when a backend of that scheme is built."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """pydantic-settings' sources, with the environment read so that of names that differ only in case the
        upper-case one wins (its default lets the last in the environment's order win)."""
        return init_settings, _CanonicalEnvSource(settings_cls), dotenv_settings, file_secret_settings

    url: str | None = Field(
        default=None,
        description=f"Where pages are stored (TIERSTORE_URL): a path or one of {registry.url_forms()}. Default: the "
        "local-disk store in data_dir.",
    )
    data_dir: Path | None = Field(
        default=None,
        description="Directory of the local-disk store when no URL is set (TIERSTORE_DATA_DIR). Default: "
        "$XDG_DATA_HOME/tierstore, else ~/.local/share/tierstore.",
    )
    prefix: str = Field(
        default="",
        description="Object-name prefix inside the bucket or container (TIERSTORE_PREFIX), used when the URL has "
        "no path of its own. Default: none.",
    )
    storage_classes: Annotated[dict[StorageTier, str], NoDecode] = Field(
        default_factory=dict,
        description="Tier to storage class / access tier overrides, merged over the backend's defaults "
        "(TIERSTORE_STORAGE_CLASSES), e.g. L3=STANDARD,L4=DEEP_ARCHIVE. Tiers L2-L4 only. Default: none.",
    )
    compression: Literal["none", "zstd"] = Field(
        default="none",
        description="Compression of stored pages (TIERSTORE_COMPRESSION); zstd needs tierstore[zstd]. Default: none.",
    )
    user_id: str | None = Field(
        default=None,
        description="The user a bridge built from the settings is bound to (TIERSTORE_USER_ID): it sees that user's "
        "shared pages and, with a session, that session's; checked as every user id is. Default: none (the root, "
        "or a session of no user).",
    )
    session_id: str | None = Field(
        default=None,
        description="The session a bridge built from the settings is bound to (TIERSTORE_SESSION_ID); checked as "
        "every session id is. Default: none.",
    )
    concurrency: int = Field(
        default=32,
        ge=1,
        description="Most concurrent page transfers of one bridge or command (TIERSTORE_CONCURRENCY). Default: 32.",
    )
    retry_max_attempts: int = Field(
        default=6,
        ge=1,
        description="Attempts of one cloud request before BackendUnavailableError (TIERSTORE_RETRY_MAX_ATTEMPTS). "
        "Default: 6.",
    )
    retry_deadline: float = Field(
        default=30.0,
        gt=0,
        description="Seconds one cloud request may take with all its attempts, plus one per MiB it moves "
        "(TIERSTORE_RETRY_DEADLINE). Default: 30.",
    )
    connect_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds to open a connection to a cloud service (TIERSTORE_CONNECT_TIMEOUT). Default: 5.",
    )
    read_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a cloud service may stay silent in the middle of an answer (TIERSTORE_READ_TIMEOUT). "
        "Default: 30.",
    )
    pool_size: int = Field(
        default=64,
        ge=1,
        description="Connections one cloud backend keeps open (threads, for the GCS SDK) (TIERSTORE_POOL_SIZE). "
        "Default: 64.",
    )
    client: Literal["auto", "sdk", "obstore"] = Field(
        default="auto",
        description="What moves a cloud backend's data (TIERSTORE_CLIENT): obstore (the fast extra), the cloud's "
        "SDK, or auto (obstore where it is installed and supports the cloud). Default: auto.",
    )

    @field_validator("compression", "client", mode="before")
    @classmethod
    def _lower_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("user_id", "session_id", mode="after")
    @classmethod
    def _scope_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        try:
            return check_scope_id(value, "user id" if info.field_name == "user_id" else "session id")
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None  # names the rule broken

    @field_validator("retry_deadline", "connect_timeout", "read_timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value).total_seconds() if isinstance(value, str) else value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir(cls, value: Any) -> Any:
        return local_directory(value, "TIERSTORE_DATA_DIR") if isinstance(value, str | os.PathLike) else value

    @field_validator("storage_classes", mode="before")
    @classmethod
    def _parse_storage_classes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_storage_classes(value)
        if isinstance(value, Mapping):
            return checked_storage_classes(value)
        return value

    def model_post_init(self, context: Any, /) -> None:
        """Warn about ``TIERSTORE_*`` names that are no setting but close to one, whenever settings are read."""
        if not _quiet.get():
            warn_about_misspelt_settings()

    def check_for(self, scheme: str) -> None:
        """ConfigurationError when a setting of ``scheme``'s own (``TIERSTORE_S3_*`` for ``s3``) was invalid."""
        own = registry.settings_models().get(scheme)
        fields = set(own.model_fields) if own is not None else set()
        problems = [problem for name, problem in self._deferred.items() if name in fields]
        if problems:
            raise ConfigurationError(f"invalid settings: {'; '.join(problems)}")

    def section(self, model: type[M]) -> M:
        """A provider's own settings (``S3Settings``), as read here: how a provider reads its settings, typed.

        The settings of a provider registered after :class:`TierstoreSettings` was composed (at import) are no
        fields of it: they are read from the environment (and ``.env``) now, by the same rules, and an invalid one
        raises ConfigurationError naming its variable, never its value."""
        read_here = set(type(self).model_fields)
        values = {name: getattr(self, name) for name in model.model_fields if name in read_here}
        if not set(model.model_fields) <= read_here:
            values |= _read_later(model, exclude=read_here)
        return model.model_validate(values)

    def retry_policy(self) -> RetryPolicy:
        """The retry policy of every cloud request, from ``retry_max_attempts`` and ``retry_deadline``."""
        from tierstore.backends.cloud.retry import RetryPolicy

        return RetryPolicy(max_attempts=self.retry_max_attempts, deadline=self.retry_deadline)

    def cloud_options(self) -> CloudOptions:
        """The options every cloud backend takes: timeouts, retries, pool size and data path."""
        from tierstore.backends.cloud.options import CloudOptions

        return CloudOptions(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retry=self.retry_policy(),
            pool_size=self.pool_size,
            client=self.client,
        )

    def local_data_dir(self) -> Path:
        """The directory of the local-disk store when no URL is set: ``data_dir``, else :func:`default_data_dir`."""
        return self.data_dir.expanduser() if self.data_dir else default_data_dir()


def _with_every_provider() -> type[CommonSettings]:
    """The common settings with each registered provider's own fields (and their validators) merged in."""
    models = tuple(registry.settings_models().values())
    # Fields are gathered from the last base first: the common ones, then each provider's in the registry's order.
    composed: type[CommonSettings] = create_model(
        "TierstoreSettings", __base__=(*reversed(models), CommonSettings), __module__=__name__
    )
    composed.__doc__ = (
        "tierstore's settings: each field is read from ``TIERSTORE_<FIELD>`` (case-insensitive) or ``.env``. The "
        "common ones are :class:`CommonSettings`'; each provider's own come from its package (``S3Settings``, …)."
    )
    return composed


if TYPE_CHECKING:

    class TierstoreSettings(CommonSettings):
        """tierstore's settings: the common ones, and each provider's own (read as attributes, or typed through
        :meth:`CommonSettings.section`)."""

        def __init__(self, **values: Any) -> None: ...

        def __getattr__(self, name: str) -> Any: ...

else:
    TierstoreSettings = _with_every_provider()


def _read_later(model: type[BaseModel], exclude: set[str]) -> dict[str, Any]:
    """The fields of ``model`` not in ``exclude``, read from the environment as :class:`CommonSettings` reads."""
    reader: type[CommonSettings] = create_model(
        f"{model.__name__}FromEnvironment",
        __base__=(model, CommonSettings),  # type: ignore[arg-type]
        __module__=__name__,
    )
    token = _quiet.set(True)  # misspelt names were warned about when the settings were read
    try:
        read = reader()
    except ValidationError as exc:
        problems = [
            f"TIERSTORE_{'_'.join(str(p) for p in error['loc']).upper()}: {_plain(error['msg'])}"
            for error in exc.errors(include_input=False, include_url=False)
        ]
        raise ConfigurationError(f"invalid settings: {'; '.join(problems)}") from None
    finally:
        _quiet.reset(token)
    return {name: getattr(read, name) for name in model.model_fields if name not in exclude}


def load_settings(**overrides: Any) -> TierstoreSettings:
    """The settings from the environment (and ``.env``), with ``overrides`` on top; ConfigurationError if invalid.

    An invalid setting of one scheme's own (``TIERSTORE_S3_SSE``) fails only the backends of that scheme
    (:meth:`TierstoreSettings.check_for`, which :func:`backend_from_url` calls), so it never blocks a command on
    another store."""
    try:
        return TierstoreSettings(**overrides)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
    problems = {
        str(error["loc"][0]) if error["loc"] else "": (
            f"TIERSTORE_{'_'.join(str(p) for p in error['loc']).upper()}: {_plain(error['msg'])}"
        )
        for error in errors
    }
    provider_fields = {name for model in registry.settings_models().values() for name in model.model_fields}
    scheme_own = {name for name in problems if name in provider_fields}
    if scheme_own != set(problems):
        raise ConfigurationError(f"invalid settings: {'; '.join(problems.values())}") from None
    defaults = {
        name: TierstoreSettings.model_fields[name].get_default(call_default_factory=True) for name in scheme_own
    }
    token = _quiet.set(True)  # the first attempt warned already
    try:
        settings = TierstoreSettings(**{**overrides, **defaults})
    finally:
        _quiet.reset(token)
    settings._deferred = {name: problems[name] for name in scheme_own}
    return settings


def _plain(message: str) -> str:
    """A pydantic message without the 'Value error, ' preamble of errors raised by our validators."""
    return message.removeprefix("Value error, ")


def backend_from_url(url: str | os.PathLike[str] | None, settings: TierstoreSettings | None = None) -> StorageBackend:
    """The backend a URL names, configured by ``settings`` (default: from the environment). No I/O.

    ``None`` or ``""`` means ``settings.url``, else the local-disk store in ``settings.data_dir`` or
    :func:`default_data_dir`.
    """
    settings = settings if settings is not None else load_settings()
    text = (os.fspath(url) if url is not None else None) or settings.url
    location = parse_location(text) if text else Location("file", "", str(settings.local_data_dir()))
    settings.check_for(location.scheme)
    return scheme_of(location.scheme).build(location, settings)


def misspelt_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """``TIERSTORE_*`` names in ``environ`` that are no setting but close to one: ``{given: closest setting}``.

    Settings ignore unknown variables; this lets a caller warn about a likely typo (``TIERSTORE_ULR``). Names that
    resemble no setting (another tool's ``TIERSTORE_*`` variable) are left alone.
    """
    import difflib

    known = [name.upper() for name in _every_setting()]
    found: dict[str, str] = {}
    for name in environ:
        rest = name.upper().removeprefix("TIERSTORE_")
        if not name.upper().startswith("TIERSTORE_") or rest in known:
            continue
        closest = difflib.get_close_matches(rest, known, n=1, cutoff=0.6)
        if closest:
            found[name] = f"TIERSTORE_{closest[0]}"
    return found


def _every_setting() -> set[str]:
    """Every setting's field name: the common ones and every provider's, registered at run time included."""
    return {
        *TierstoreSettings.model_fields,
        *(name for m in registry.settings_models().values() for name in m.model_fields),
    }


def _canonical_names(environ: Mapping[str, str]) -> dict[str, str]:
    """Each variable name of ``environ``, with the name read for it where several differ only in case: the
    upper-case one where it is set, else the first in sorted order (so the choice never depends on the order)."""
    chosen: dict[str, str] = {}
    for name in sorted(environ):
        held = chosen.get(name.lower())
        if held is None or (name == name.upper() and held != held.upper()):
            chosen[name.lower()] = name
    return {name: chosen[name.lower()] for name in environ}


class _CanonicalEnvSource(EnvSettingsSource):
    """The environment, where of names that differ only in case the canonical one wins (see _canonical_names)."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = dict(os.environ)
        read = {name: environ[name] for name in set(_canonical_names(environ).values())}
        return parse_env_vars(read, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


def case_variant_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """Names in ``environ`` of a setting that another name, differing only in case, sets too and wins over:
    ``{ignored: the name read}`` (``tierstore_url`` beside ``TIERSTORE_URL``)."""
    known = {f"TIERSTORE_{name.upper()}" for name in _every_setting()}
    return {name: read for name, read in _canonical_names(environ).items() if name != read and name.upper() in known}


def warn_about_misspelt_settings() -> dict[str, str]:
    """Warn (``MisspeltSettingWarning`` and a log line on ``tierstore.config``) about each ``TIERSTORE_*`` name in
    the environment or ``.env`` that is no setting but close to one; the names found, with the setting each
    resembles. Runs whenever settings are read, so Python programs hear of a typo as the command line does."""
    names = dict(os.environ)
    dotenv = Path(TierstoreSettings.model_config.get("env_file") or ".env")  # type: ignore[arg-type]
    if dotenv.is_file():
        from dotenv import dotenv_values

        names |= {k: v or "" for k, v in dotenv_values(dotenv).items()}
    found = misspelt_settings(names)
    texts = [f"{name} is not a tierstore setting and is ignored; did you mean {hint}?" for name, hint in found.items()]
    variants = case_variant_settings(dict(os.environ))
    texts += [f"{name} is ignored: {read}, which differs only in case, is set too" for name, read in variants.items()]
    for text in texts:
        _log.warning(text)
        warnings.warn(text, MisspeltSettingWarning, stacklevel=_caller_outside_tierstore())
    return found | variants


def _caller_outside_tierstore() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside tierstore (and pydantic)."""
    import sys

    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] in {
        "tierstore",
        "pydantic",
        "pydantic_settings",
    }:
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level
