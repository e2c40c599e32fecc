"""Checkpoint manifests and bookkeeping records (leases, tombs, id blocks) in frames: JSON bodies, never compressed.

Contract: a manifest decodes only under the checkpoint id it was written for, a record only under its key; anything
else (another kind of frame, a body that is not the JSON object written) is :class:`IntegrityError`.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from tierstore.codec.frame import Buffer, Encoded, clip, decode_frame, document_header, frame, of_kind
from tierstore.errors import IntegrityError
from tierstore.models import CheckpointManifest


def encode_manifest(manifest: CheckpointManifest, bound: str | None = None) -> Encoded:
    """The frame of ``manifest``, bound to its checkpoint id (``bound``: to that key instead, the whole key in the
    store of a scope's manifest)."""
    body = manifest.model_dump_json().encode()
    return frame("manifest", document_header("manifest", bound or manifest.checkpoint_id, body), b"", body, 0)


def decode_manifest(data: Buffer, key: str | None, bound: str | None = None) -> CheckpointManifest:
    """The manifest stored under ``key`` (None: wherever it is), verified (``bound``: its frame names that key, the
    whole key of a scope's manifest, and its checkpoint id is ``key``)."""
    decoded = of_kind(decode_frame(data, bound or key), "manifest")
    try:
        manifest = CheckpointManifest.model_validate_json(bytes(decoded.body))
    except ValidationError as exc:
        raise IntegrityError(f"checkpoint manifest is malformed: {exc}") from exc
    if key is not None and manifest.checkpoint_id != key:
        raise IntegrityError(f"object {key} holds the manifest of {clip(manifest.checkpoint_id)}")
    return manifest


def encode_record(key: str, record: dict[str, Any]) -> Encoded:
    """The frame of a bookkeeping record under ``key``."""
    body = json.dumps(record, separators=(",", ":")).encode()
    return frame("record", document_header("record", key, body), b"", body, 0)


def decode_record(data: Buffer, key: str) -> dict[str, Any]:
    """The record stored under ``key``, verified."""
    decoded = of_kind(decode_frame(data, key), "record")
    try:
        record = json.loads(bytes(decoded.body))
    except ValueError as exc:
        raise IntegrityError("bookkeeping record is not JSON") from exc
    if not isinstance(record, dict):
        raise IntegrityError("bookkeeping record is not a JSON object")
    return record
