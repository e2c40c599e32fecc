"""A foreign object under a store's prefix never stops a listing on the obstore data path, and both data paths list
the same tierstore keys (tierstore.backends.cloud.obstore_calls.list_page): the names obstore's path type refuses
(an empty, ``.`` or ``..`` segment, control characters) or changes (a leading or trailing ``/``), written by another
tool at every position of every listing tierstore makes, across listing pages, through checkpoints, restores,
``fsck`` and ``gc``, which neither report nor delete any of them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from tests.emulators_s3 import sync_client
from tests.rigs import load
from tests.soak import scaled
from tierstore import ArtifactsBridge, MemoryPage, Modality
from tierstore.backends.base import StorageBackend
from tierstore.maintenance import fsck, gc

pytest.importorskip("obstore")

LISTINGS = ["", "mem_", "mem_L3_", "ckpt_", "intent_", "tomb_", "alloc_", "alloc_L3_"]
"""Every prefix tierstore lists by (artifacts, checkpoints, leases, tombs, id blocks), and the whole store."""
STEMS = ["0", "1", "~"]
"""Where a foreign name sorts under each listing: before tierstore's names, right after the first (``mem_L3_1/``
is what obstore turns into ``mem_L3_1``, and sorts among tierstore's names), after them; under ``intent_`` once the
checkpoint ended they are the only names."""
FORMS: dict[str, Callable[[str], str]] = {
    "empty segment": lambda s: f"{s}//x",
    "dot segment": lambda s: f"{s}/./x",
    "dotdot segment": lambda s: f"{s}/../x",
    "folder marker": lambda s: f"{s}/",
    "folder marker of a key": lambda s: f"{s[:-1]}1/",  # mem_L3_1/ beside mem_L3_1; ckpt_1/ alone
    "DEL": lambda s: f"{s}\x7f",
    "tab": lambda s: f"{s}\tx",
    "carriage return": lambda s: f"{s}\rx",
    "SOH": lambda s: f"{s}\x01",
    "percent-encoded dotdot": lambda s: f"{s}%2F..%2Fx",
    "very long": lambda s: f"{s}/" + "y" * 900,
}
EMPTY_BODIED = {"folder marker", "folder marker of a key"}
S3_ONLY = {"SOH"}
"""Azurite answers 500 to the upload of a name with U+0001, stores it, then answers 500 to every listing of the
container (the SDK's too): such a store cannot be listed on either path there."""
"""Written empty, as the tools that make folder markers do (see the README on a non-empty ``k/``)."""


def _names(prefix: str, forms: Collection[str]) -> Iterator[tuple[str, str]]:
    """Every form under every listing, each form at every position across the listings (in turn, not all at
    each: fewer objects, the same cover)."""
    for turn, listing in enumerate(LISTINGS[1:]):
        for shift, form in enumerate(forms):
            yield form, prefix + FORMS[form](listing + STEMS[(turn + shift) % len(STEMS)])
    yield "leading slash", "/" + prefix + "mem_L3_0"  # outside a prefix, but at a bucket's root under ""


def _plant(cloud: str, spec: dict[str, Any], prefix: str, forms: Collection[str]) -> dict[str, str]:
    """Write every foreign name the emulator takes; returns {name: form} of those it took."""
    if cloud.startswith("s3"):
        raw = sync_client(spec["endpoint"])

        def write(name: str, body: bytes) -> None:
            raw.put_object(Bucket=spec["bucket"], Key=name, Body=body)

        from botocore.exceptions import ClientError as refused

    else:
        from azure.storage.blob import ContainerClient

        container = ContainerClient.from_connection_string(spec["connection_string"], spec["container"])

        def write(name: str, body: bytes) -> None:
            container.upload_blob(name, body)

        from azure.core.exceptions import HttpResponseError as refused

    def attempt(item: tuple[str, str]) -> tuple[str, str] | None:
        form, name = item
        if form in S3_ONLY and not cloud.startswith("s3"):
            return None
        try:
            write(name, b"" if form in EMPTY_BODIED else b"foreign")
        except refused:  # the emulator refuses it (moto: a line feed; Azurite: dot segments): it cannot be there
            return None
        return name, form

    with ThreadPoolExecutor(8) as pool:
        planted = dict(found for found in pool.map(attempt, _names(prefix, forms)) if found is not None)
    return planted


def _raw_names(cloud: str, spec: dict[str, Any]) -> set[str]:
    if cloud.startswith("s3"):
        raw = sync_client(spec["endpoint"])
        pages = raw.get_paginator("list_objects_v2").paginate(Bucket=spec["bucket"])
        return {o["Key"] for page in pages for o in page.get("Contents", [])}
    from azure.storage.blob import ContainerClient

    container = ContainerClient.from_connection_string(spec["connection_string"], spec["container"])
    return {blob.name for blob in container.list_blobs()}


async def _keys(backend: StorageBackend) -> dict[str, list[tuple[str, int]]]:
    return {p: [(e.key, e.size) async for e in backend.list(p)] for p in LISTINGS}


CHANGED = ["folder marker", "folder marker of a key"]
"""The names obstore lists under another name (it refuses none of them)."""


@pytest.mark.emulator
@pytest.mark.parametrize(
    ("prefix", "forms"),
    [("", list(FORMS)), ("ts/", list(FORMS)), ("", CHANGED)],
    ids=["every form", "every form, under a prefix", "names obstore changes, alone"],
)
@pytest.mark.parametrize("cloud", ["s3_moto_obstore", "azure_obstore"])
async def test_foreign_names_stop_no_listing_and_both_paths_list_the_same_keys(
    cloud: str,
    prefix: str,
    forms: list[str],
    fresh_store: Callable[[str], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr("tierstore.backends.s3.client.LIST_PAGE", 8)  # many pages, boundaries everywhere
    spec = fresh_store(cloud)
    rig = load(cloud)
    extra: dict[str, Any] = {"prefix": prefix} | ({"list_page_size": 8} if cloud.startswith("azure") else {})
    planted = _plant(cloud, spec, prefix, forms)
    taken = set(planted.values())
    assert {*CHANGED, "leading slash"} <= taken, taken
    if forms != CHANGED:
        assert {"empty segment", "DEL", "tab", "carriage return", "very long"} <= taken, taken
        if cloud.startswith("s3"):
            assert {"dot segment", "dotdot segment", "SOH"} <= taken, taken

    caplog.set_level(logging.INFO, logger="tierstore.backends.cloud.obstore_calls")
    backend = rig.open_backend(spec, **extra)
    sdk_backend = rig.open_backend({**spec, "client": "sdk"}, **extra)
    pages = [MemoryPage(page_id=f"p{i}", modality=Modality.TEXT, content=f"page {i}") for i in range(scaled(6))]
    async with ArtifactsBridge(backend=backend) as bridge:
        stored = [await bridge.store_page(page) for page in pages[:2]]
        checkpoint = await bridge.checkpoint(pages=pages, name="beside foreign names")
        assert await bridge.restore_checkpoint(checkpoint) == pages
        assert await bridge.delete_page(stored[0])  # a tomb
        assert set(await bridge.list_pages()) >= set(stored[1:])

        on_obstore, on_sdk = await _keys(backend), await _keys(sdk_backend)
        assert on_obstore == on_sdk
        assert all(on_obstore[p] for p in ("ckpt_", "tomb_", "alloc_L3_", "mem_L3_"))
        assert not {key for entries in on_obstore.values() for key, _ in entries} & {
            name[len(prefix) :] for name in planted
        }

        report = await fsck(bridge)
        assert report.ok, report.problems
        named = {o.key for o in report.orphans} | {p.key for p in report.problems} | set(report.foreign)
        assert not named & {name[len(prefix) :] for name in planted}
        await bridge.delete_checkpoint(checkpoint)
        swept = await gc(bridge, grace=timedelta(0), tomb_retention=timedelta(0))
        assert not set(swept.orphans_deleted) & {name[len(prefix) :] for name in planted}
    await sdk_backend.aclose()

    assert set(planted) <= _raw_names(cloud, spec)  # gc took none of them
    if cloud.startswith("azure"):  # S3's obstore path lists through the SDK: only Azure's lists through obstore
        assert any(r.levelno == logging.INFO and "continues through the SDK" in r.getMessage() for r in caplog.records)
