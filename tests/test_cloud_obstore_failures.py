"""obstore's failures mean the same on every cloud that uses obstore (S3, Azure): one classification in the shared
cloud layer (tierstore.backends.cloud.obstore_failures), each cloud reading only its own answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.emulators_s3 import sync_client
from tests.rigs import load
from tierstore.backends.azure import failures as azure_failures
from tierstore.backends.cloud.failure import Failure
from tierstore.backends.s3 import failures as s3_failures

obstore_exceptions = pytest.importorskip("obstore.exceptions")

CLASSIFIERS: dict[str, Callable[[BaseException], Failure]] = {
    "s3": s3_failures.classify_obstore,
    "azure": azure_failures.classify,
}
"""Every cloud whose data path can be obstore, with how it classifies what obstore raised."""

EXPECTED = {
    "AlreadyExistsError": "conflict",
    "PreconditionError": "conflict",
    "NotFoundError": "not-found",
    "PermissionDeniedError": "denied",
    "UnauthenticatedError": "denied",
    "UnknownConfigurationKeyError": "configuration",
    "NotSupportedError": "configuration",
    "InvalidPathError": "configuration",
    "GenericError": "unknown",
}


@pytest.mark.parametrize("cloud", sorted(CLASSIFIERS))
@pytest.mark.parametrize(("name", "kind"), sorted(EXPECTED.items()))
def test_each_obstore_error_class_means_one_thing_on_every_cloud(cloud: str, name: str, kind: str) -> None:
    error = getattr(obstore_exceptions, name)("obstore said no (no status in the text)")
    failure = CLASSIFIERS[cloud](error)
    assert failure.kind == kind
    assert failure.applied == ("maybe" if kind == "unknown" else "no")


@pytest.mark.parametrize("cloud", sorted(CLASSIFIERS))
@pytest.mark.parametrize(
    ("text", "kind", "applied"),
    [
        ("HttpError { kind: Connect, source: refused }", "network", "no"),
        ("HttpError { kind: Timeout, source: elapsed }", "timeout", "maybe"),
        ("HttpError { kind: Request, source: connection closed }", "network", "maybe"),
        ("Generic error: body error: unexpected end of file", "network", "maybe"),
        ("Client error with status code: 503 ... <Code>ServerBusy</Code>", "server", "maybe"),
    ],
)
def test_transport_failures_read_alike_on_every_cloud(cloud: str, text: str, kind: str, applied: str) -> None:
    failure = CLASSIFIERS[cloud](obstore_exceptions.GenericError(text))
    if cloud == "azure" and "ServerBusy" in text:
        kind, applied = "throttled", "no"  # Azure's own code refines the status; S3 has no such code
    assert (failure.kind, failure.applied) == (kind, applied)


def _write_a_name_obstore_cannot_hold(cloud: str, spec: dict[str, Any], name: str) -> None:
    if cloud.startswith("s3"):
        raw = sync_client(spec["endpoint"])
        raw.put_object(Bucket=spec["bucket"], Key=name, Body=b"foreign")
        raw.close()
        return
    from azure.storage.blob import BlobServiceClient

    with BlobServiceClient.from_connection_string(spec["connection_string"]) as service:
        service.get_container_client(spec["container"]).upload_blob(name, b"foreign")


@pytest.mark.emulator
@pytest.mark.parametrize("cloud", ["s3_moto_obstore", "azure_obstore"])
async def test_a_name_obstore_cannot_hold_is_no_error_on_a_listing(
    cloud: str, fresh_store: Callable[[str], dict[str, Any]]
) -> None:
    """A listing that meets ``a//b`` (legal on S3 and Azure, written by another tool) continues through the SDK on the
    obstore path and lists what the SDK path lists (every form at every position: tests/test_obstore_foreign_names.py);
    InvalidPathError keeps its reading above for any other call."""
    spec = fresh_store(cloud)
    rig = load(cloud)
    _write_a_name_obstore_cannot_hold(cloud, spec, f"{spec.get('prefix', '')}foreign/a//b".lstrip("/"))
    backend = rig.open_backend(spec)
    assert [entry async for entry in backend.list("")] == []  # no page among them: the foreign name is no error
    await backend.aclose()
    sdk = rig.open_backend({**spec, "client": "sdk"})
    assert [entry async for entry in sdk.list("")] == []
    await sdk.aclose()
