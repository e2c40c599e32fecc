"""Records chuk-ai-session-manager writes load in tierstore's models and back; checkpoint times compare both ways."""

from __future__ import annotations

import copy
import pickle
import warnings
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.compat.libs import CHUK, TIERSTORE, Lib, both
from tierstore.models import CheckpointEntry, CheckpointManifest, StorageStats, UTCDateTime

WHEN = datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=UTC)


def utcnow() -> datetime:
    """``datetime.utcnow()``, as the spec calls it (deprecated since Python 3.12)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return datetime.utcnow()


def chuk_manifest_json(created_at: datetime = WHEN) -> str:
    entries = [CHUK.CheckpointEntry(page_id=f"msg_{i}", artifact_id=f"mem_L3_{i}", modality="text") for i in range(2)]
    manifest = CHUK.CheckpointManifest(name="chuk", created_at=created_at, page_count=2, pages=entries)
    return str(manifest.model_dump_json())


@both()
def test_storage_stats_defaults(lib: Lib) -> None:
    stats = lib.StorageStats(backend="in-memory")
    assert (stats.backend, stats.persistent, stats.session_id, stats.pages_stored) == ("in-memory", False, None, 0)


def test_storage_stats_load_what_chuk_writes_and_chuk_loads_ours() -> None:
    written = CHUK.StorageStats(backend="chuk-artifacts", persistent=True, session_id="s1", pages_stored=3)
    ours = StorageStats.model_validate_json(written.model_dump_json())
    assert (ours.backend, ours.persistent, ours.session_id, ours.pages_stored) == ("chuk-artifacts", True, "s1", 3)
    assert (ours.total_bytes, ours.checkpoints, ours.exact) == (0, None, True)
    back = CHUK.StorageStats.model_validate_json(StorageStats(backend="s3", pages_stored=2).model_dump_json())
    assert (back.backend, back.pages_stored) == ("s3", 2)


def test_checkpoint_entries_chuk_writes_are_in_l3() -> None:
    written = CHUK.CheckpointEntry(page_id="p", artifact_id="mem_L3_9", modality="image")
    entry = CheckpointEntry.model_validate_json(written.model_dump_json())
    assert (entry.page_id, entry.artifact_id, entry.modality, entry.tier) == ("p", "mem_L3_9", "image", "L3")
    assert (entry.checksum, entry.size_bytes) == (None, 0)


def test_a_manifest_written_by_chuk_loads() -> None:
    manifest = CheckpointManifest.model_validate_json(chuk_manifest_json())
    assert (manifest.name, manifest.page_count, manifest.checkpoint_id) == ("chuk", 2, "")
    assert [(e.page_id, e.tier) for e in manifest.pages] == [("msg_0", "L3"), ("msg_1", "L3")]
    assert manifest.created_at == WHEN
    assert manifest.created_at.tzinfo is not None
    assert CheckpointManifest(name="empty", created_at=WHEN, page_count=0).pages == []


def test_a_manifest_written_by_tierstore_loads_in_chuk() -> None:
    ours = CheckpointManifest(
        name="ours",
        created_at=WHEN,
        page_count=1,
        pages=[CheckpointEntry(page_id="p", artifact_id="mem_L2_1", modality="text", tier="L2", checksum="ab")],
        checkpoint_id="ckpt_x",
    )
    theirs = CHUK.CheckpointManifest.model_validate_json(ours.model_dump_json())
    assert (theirs.name, theirs.created_at, [e.artifact_id for e in theirs.pages]) == ("ours", WHEN, ["mem_L2_1"])


@pytest.mark.parametrize(
    "written",
    [
        pytest.param(chuk_manifest_json(), id="chuk-aware"),
        pytest.param(chuk_manifest_json(WHEN.astimezone(timezone(timedelta(hours=-7)))), id="chuk-other-offset"),
        pytest.param(chuk_manifest_json().replace("Z", "").replace("+00:00", ""), id="tierstore-0.1-naive"),
        pytest.param(
            CheckpointManifest(name="chuk", created_at=WHEN, page_count=2).model_dump_json(), id="tierstore-aware"
        ),
    ],
)
def test_created_at_is_the_same_utc_instant_whoever_wrote_it(written: str) -> None:
    created = CheckpointManifest.model_validate_json(written).created_at
    assert isinstance(created, UTCDateTime)
    assert created.utcoffset() == timedelta(0)
    assert created == WHEN
    assert created == WHEN.replace(tzinfo=None)
    assert created.timestamp() == WHEN.timestamp()


@pytest.mark.parametrize(
    "now", [pytest.param(utcnow, id="utcnow-naive"), pytest.param(lambda: datetime.now(UTC), id="now-utc-aware")]
)
def test_created_at_compares_with_naive_and_aware_now(now: object) -> None:
    assert callable(now)
    manifest = CheckpointManifest.model_validate_json(chuk_manifest_json())
    cutoff = now() - timedelta(days=7)
    # The spec's cleanup test, both ways round, and the arithmetic around it.
    assert manifest.created_at < cutoff
    assert cutoff > manifest.created_at
    assert not manifest.created_at >= cutoff
    assert not cutoff <= manifest.created_at
    assert manifest.created_at != cutoff
    age = now() - manifest.created_at
    assert age > timedelta(days=7)
    assert manifest.created_at - cutoff < timedelta(0)
    assert sorted([cutoff, manifest.created_at])[0] is manifest.created_at
    later = manifest.created_at + timedelta(days=1)
    assert isinstance(later, UTCDateTime)
    assert later > WHEN.replace(tzinfo=None)


def test_comparisons_read_a_naive_operand_as_utc_and_keep_the_aware_value() -> None:
    created = UTCDateTime(2026, 1, 1, 12, tzinfo=UTC)
    assert created == datetime(2026, 1, 1, 12)
    assert created == datetime(2026, 1, 1, 13, tzinfo=timezone(timedelta(hours=1)))
    assert created < datetime(2026, 1, 1, 12, 0, 1)
    assert datetime(2026, 1, 1, 11, 59) <= created
    assert created - datetime(2026, 1, 1) == timedelta(hours=12)
    assert datetime(2026, 1, 2) - created == timedelta(hours=12)
    assert created - timedelta(hours=12) == datetime(2026, 1, 1, tzinfo=UTC)
    assert created.isoformat() == "2026-01-01T12:00:00+00:00"
    assert created != "2026-01-01T12:00:00+00:00"
    with pytest.raises(TypeError):
        _ = created < "2026"


def test_created_at_stays_utc_through_assignment_copies_and_pickling() -> None:
    manifest = CheckpointManifest(name="n", created_at=datetime(2026, 1, 1), page_count=0)
    manifest.created_at = datetime(2026, 1, 1, 5, tzinfo=timezone(timedelta(hours=5)))
    assert isinstance(manifest.created_at, UTCDateTime)
    assert manifest.created_at == datetime(2026, 1, 1)
    pickled = pickle.loads(pickle.dumps(manifest))  # noqa: S301 - bytes this test just made
    for copied in (copy.deepcopy(manifest), pickled, manifest.model_copy()):
        assert isinstance(copied.created_at, UTCDateTime)
        assert copied.created_at < utcnow()


def test_both_libraries_have_the_same_record_fields() -> None:
    for name in ("StorageStats", "CheckpointEntry", "CheckpointManifest"):
        theirs, ours = getattr(CHUK, name), getattr(TIERSTORE, name)
        assert set(theirs.model_fields) <= set(ours.model_fields), name
        required = {f for f, info in ours.model_fields.items() if info.is_required()}
        assert required <= {f for f, info in theirs.model_fields.items() if info.is_required()}, name
