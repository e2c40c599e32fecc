"""Identifiers: validation of what callers pass in, and the formats of the keys the bridge writes.

Keys in a store (every one inside :func:`tierstore.backends.base.check_key`'s alphabet):

* ``mem_{tier}_{sequence}`` - a stored page (the spec's artifact id);
* ``ckpt_{UTC time}_{random}`` - a checkpoint manifest (the checkpoint id; sorts by creation time);
* ``intent_{checkpoint id}`` - the lease of a checkpoint in progress, naming the artifacts it reuses;
* ``tomb_{UTC time}_{random}_{p|d}`` - artifacts being deleted (p) or deleted (d), kept for a grace period;
* ``alloc_{tier}_{block}`` - a block of artifact numbers claimed by one bridge (see :mod:`tierstore.allocator`);
* ``cat_{UTC time}_{random}`` - a catalog snapshot: cached ``head`` answers (see :mod:`tierstore.catalog`);
* ``v.{P}.{inverted number}`` - a version record of the page id whose digest is ``P`` (see :mod:`tierstore.versions`).

:func:`kind_of` is the one shape check of these keys in a scope: every part that lists a kind (erasure, fsck, gc,
the reading of leases and tombs) takes a key for that kind only when its whole name has the shape the writer
gives it, so a user's own file that merely starts like one (``tomb_stone.txt``, ``intent_letter.doc``) is foreign.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any, Final, Literal

from tierstore.backends.base import check_key
from tierstore.enums import StorageTier
from tierstore.errors import InvalidInputError
from tierstore.scopes import SEGMENT_LENGTH

KeyKind = Literal["page", "manifest", "lease", "tomb", "version record", "catalog snapshot"]

PAGE_PREFIX: Final = "mem_"
CHECKPOINT_PREFIX: Final = "ckpt_"
INTENT_PREFIX: Final = "intent_"
TOMB_PREFIX: Final = "tomb_"
ALLOC_PREFIX: Final = "alloc_"
CATALOG_PREFIX: Final = "cat_"
MAX_ID_BYTES: Final = 1024
MAX_ARTIFACT_DIGITS: Final = 18
"""The most digits an artifact id's number has (``mem_L3_`` and 1 to 18 digits, no leading zero)."""

VERSION_RECORD_PREFIX: Final = "v."
VERSION_DIGITS: Final = 10
"""The digits of a version record's inverted number (:mod:`tierstore.versions`)."""

_STAMP: Final = r"[0-9]{8}T[0-9]{12}_[0-9a-f]{8}"
"""What :func:`timestamped` puts after its prefix."""
_ARTIFACT = re.compile(rf"mem_(L[0-4])_([1-9][0-9]{{0,{MAX_ARTIFACT_DIGITS - 1}}})")
_CHECKPOINT = re.compile(rf"ckpt_{_STAMP}")
_LEASE = re.compile(rf"intent_ckpt_{_STAMP}")
_TOMB = re.compile(rf"tomb_{_STAMP}_[pdme]")
_VERSION_RECORD = re.compile(rf"v\.[a-z2-7]{{{SEGMENT_LENGTH}}}\.[0-9]{{{VERSION_DIGITS}}}")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
"""Unicode's control characters (category Cc)."""
_CATALOG = re.compile(rf"cat_{_STAMP}")
_ALLOC = re.compile(r"alloc_(L[0-4])_(0|[1-9][0-9]{0,14})")


def check_text_id(value: Any, what: str) -> str:
    """A caller's id or name: a non-empty str of at most 1 KiB of UTF-8, without control characters."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a str, not {type(value).__name__}")
    if not value:
        raise InvalidInputError(f"{what} must not be empty")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInputError(f"{what} contains a lone surrogate and cannot be encoded as UTF-8") from None
    if size > MAX_ID_BYTES:
        raise InvalidInputError(f"{what} is {size} bytes of UTF-8, over the limit of {MAX_ID_BYTES}")
    control = _CONTROL.search(value)
    if control:
        raise InvalidInputError(f"{what} contains the control character U+{ord(control[0]):04X}")
    return value


def check_stored_key(value: Any, what: str) -> str:
    """``value`` if it is a key every backend takes (:func:`~tierstore.backends.base.check_key`), else
    InvalidInputError."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a str, not {type(value).__name__}")
    return check_key(value)


def artifact_id(tier: StorageTier, sequence: int) -> str:
    """The artifact id of number ``sequence`` in ``tier``: ``mem_L3_42``."""
    return f"{PAGE_PREFIX}{tier.value}_{sequence}"


def parse_artifact_id(key: str) -> tuple[StorageTier, int] | None:
    """The tier and number an artifact id names; None when ``key`` is no artifact id."""
    match = _ARTIFACT.fullmatch(key)
    return (StorageTier(match[1]), int(match[2])) if match else None


def is_checkpoint_id(key: str) -> bool:
    """Whether ``key`` has the form of a checkpoint id."""
    return _CHECKPOINT.fullmatch(key) is not None


def alloc_key(tier: StorageTier, block: int) -> str:
    """The key of the record that claims block ``block`` of ``tier``'s artifact numbers."""
    return f"{ALLOC_PREFIX}{tier.value}_{block}"


def parse_alloc_key(key: str) -> tuple[StorageTier, int] | None:
    """The tier and block an allocation record's key names; None when ``key`` is not one."""
    match = _ALLOC.fullmatch(key)
    return (StorageTier(match[1]), int(match[2])) if match else None


def timestamped(prefix: str, now: datetime) -> str:
    """A new name: ``prefix``, ``now`` to the microsecond (so names sort by time), and random hex against ties."""
    return f"{prefix}{now:%Y%m%dT%H%M%S%f}_{secrets.token_hex(4)}"


def is_catalog_key(key: str) -> bool:
    """Whether ``key`` is a catalog snapshot's (``cat_{UTC time}_{random}``, :func:`timestamped`)."""
    return _CATALOG.fullmatch(key) is not None


def is_lease_key(key: str) -> bool:
    """Whether ``key`` is a lease's (``intent_`` and a checkpoint id, as :func:`tierstore.protocol.records.encode_lease`
    names it)."""
    return _LEASE.fullmatch(key) is not None


def is_tomb_key(key: str) -> bool:
    """Whether ``key`` is a tomb's (``tomb_{UTC time}_{random}_{state}``)."""
    return _TOMB.fullmatch(key) is not None


def is_version_record_key(key: str) -> bool:
    """Whether ``key`` is a version record's (``v.{P}.{inverted number}``)."""
    return _VERSION_RECORD.fullmatch(key) is not None


def kind_of(key: str) -> KeyKind | None:
    """Which kind of object tierstore writes in a scope ``key`` (relative to the scope) is, by its whole shape;
    None for any key tierstore never writes there (the module docstring)."""
    if parse_artifact_id(key) is not None:
        return "page"
    checks: tuple[tuple[KeyKind, Any], ...] = (
        ("manifest", is_checkpoint_id),
        ("lease", is_lease_key),
        ("tomb", is_tomb_key),
        ("version record", is_version_record_key),
        ("catalog snapshot", is_catalog_key),
    )
    return next((kind for kind, check in checks if check(key)), None)
