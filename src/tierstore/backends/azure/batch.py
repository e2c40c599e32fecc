"""Blob Batch deletes: up to :data:`BATCH_LIMIT` Delete Blob sub-requests in one request, each answered on its own.

Contract: a missing blob is no failure; every other refused sub-request is reported with its status and code. A
service that does not understand batches answers 400 to the whole request or to every sub-request; with
``fall_back`` that answer is reported as None (the backend then deletes one by one from then on), otherwise as
failures like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from tierstore.backends.azure.failures import answered
from tierstore.backends.cloud.failure import Failure

BATCH_LIMIT: Final = 256
"""Sub-requests per Blob Batch request (the service's limit)."""
_DONE: Final = frozenset({200, 202, 404})


async def delete_batch(container: Any, names: Sequence[str], *, fall_back: bool) -> list[tuple[str, Failure]] | None:
    """Delete ``names`` in one Blob Batch request: the names that failed, and why (a missing blob is done);
    None when the service takes no batch and ``fall_back`` says to delete one by one instead."""
    from azure.core.exceptions import HttpResponseError

    try:
        parts = await container.delete_blobs(*names, delete_snapshots="include", raise_on_any_failure=False)
        answers = [(int(part.status_code), str(part.headers.get("x-ms-error-code", ""))) async for part in parts]
    except HttpResponseError as refused:
        if fall_back and refused.status_code == 400:
            return None
        raise
    if fall_back and answers and all(status == 400 for status, _ in answers):
        return None
    return [
        (name, answered(status, code))
        for name, (status, code) in zip(names, answers, strict=True)
        if status not in _DONE
    ]
