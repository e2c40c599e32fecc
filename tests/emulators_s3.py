"""Helpers shared by the S3 rigs (moto and LocalStack): test credentials, sync clients, backends onto a store."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from tests.emulators import free_port, stop_process_group, wait_until_ready
from tierstore.backends.cloud.options import CloudOptions
from tierstore.backends.s3 import S3Backend

__all__ = [
    "ACCESS_KEY",
    "REGION",
    "SECRET_KEY",
    "Server",
    "free_port",
    "new_bucket",
    "open_backend",
    "s3_operation",
    "stop_process_group",
    "sync_client",
    "through",
    "upstream",
    "wait_until_ready",
]

ACCESS_KEY = "testing"
SECRET_KEY = "testing"  # noqa: S105 - the emulators accept any credentials
REGION = "us-east-1"


def sync_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def new_bucket(client: Any, stem: str = "tierstore") -> str:
    bucket = f"{stem}-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    return bucket


class Server:
    """An S3 emulator at ``endpoint``; each store is a new bucket, reached through the data path ``client``."""

    def __init__(self, endpoint: str, client: str = "sdk") -> None:
        self.endpoint = endpoint
        self.data_path = client
        self.client = sync_client(endpoint)

    def new_store(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "bucket": new_bucket(self.client), "client": self.data_path}

    def on(self, client: str) -> Server:
        """The same emulator, its stores reached through another data path."""
        return Server(self.endpoint, client)


def open_backend(spec: dict[str, Any], options: CloudOptions | None = None, **cloud_specific: Any) -> S3Backend:
    """A backend onto the store; the data path is the spec's ``client`` (``sdk`` unless an obstore rig set it),
    whatever ``options`` say about the rest."""
    chosen = replace(options or CloudOptions(), client=spec.get("client", "sdk"))
    return S3Backend(
        spec["bucket"],
        endpoint_url=spec["endpoint"],
        region=REGION,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        options=chosen,
        **cloud_specific,
    )


def through(spec: dict[str, Any], url: str) -> dict[str, Any]:
    """The same store, reached through another endpoint (a fault-injecting proxy)."""
    return {**spec, "endpoint": url}


def upstream(spec: dict[str, Any]) -> str:
    return str(spec["endpoint"])


def s3_operation(method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]) -> str:
    """The S3 API operation an HTTP request is (path-style addressing: ``/bucket`` or ``/bucket/key``)."""
    on_object = path.strip("/").count("/") >= 1
    if method == "HEAD":
        return "HeadObject" if on_object else "HeadBucket"
    if method == "GET":
        if "tagging" in query:
            return "GetObjectTagging"
        if not on_object:
            return "ListObjectsV2" if query.get("list-type") == "2" else "ListObjects"
        return "GetObject"
    if method == "PUT":
        if "partNumber" in query:
            return "UploadPart"
        if "tagging" in query:
            return "PutObjectTagging"
        if not on_object:
            return "CreateBucket"
        return "CopyObject" if "x-amz-copy-source" in {h.lower() for h in headers} else "PutObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        if "delete" in query:
            return "DeleteObjects"
        if "restore" in query:
            return "RestoreObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    return f"{method} {path}"
