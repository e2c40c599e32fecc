"""Which S3 endpoint requests go to, and where that was set, so an error can name both.

Contract: :func:`configured_endpoint` answers from the backend's own ``endpoint_url`` (an argument or
``TIERSTORE_S3_ENDPOINT_URL``), else from what botocore reads, in botocore's order: ``AWS_ENDPOINT_URL_S3``,
``AWS_ENDPOINT_URL``, then the profile's ``endpoint_url`` in the AWS config file (its ``services`` section for s3
first), none of them when ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` is true. It reads the environment and the config
file, imports no SDK and never fails: a config file it cannot read names no endpoint. :func:`shown` drops user info,
path and query, so no credential in an endpoint URL is ever shown.
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from urllib.parse import urlsplit


def configured_endpoint(endpoint_url: str | None, profile: str | None) -> tuple[str, str] | None:
    """``(endpoint, where it was set)``, or None for AWS's own endpoint."""
    if endpoint_url:
        return endpoint_url, ""
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").strip().lower() == "true":
        return None
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if os.environ.get(name):
            return os.environ[name], name
    return _from_config_file(profile or os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE"))


def _from_config_file(profile: str | None) -> tuple[str, str] | None:
    path = Path(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config").expanduser()
    parser = configparser.RawConfigParser()
    try:
        parser.read(path)
    except (OSError, configparser.Error, UnicodeDecodeError):
        return None
    name = profile or "default"
    section = name if name == "default" else f"profile {name}"
    if not parser.has_section(section):
        return None
    where = f"the AWS config file's profile {name!r}"
    services = parser.get(section, "services", fallback=None)
    if services and parser.has_section(f"services {services}"):
        nested = configparser.RawConfigParser()
        nested.read_string("[s3]\n" + parser.get(f"services {services}", "s3", fallback=""))
        if nested.get("s3", "endpoint_url", fallback=None):
            return nested.get("s3", "endpoint_url"), where
    found = parser.get(section, "endpoint_url", fallback=None)
    return (found, where) if found else None


def shown(endpoint: str) -> str:
    """The endpoint without user info, path or query."""
    parts = urlsplit(endpoint)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"
