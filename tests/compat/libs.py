"""The two libraries side by side: each compat test runs one body against chuk-ai-session-manager's classes and
tierstore's, so passing on both shows they behave alike.

A test on which chuk differs on purpose (a difference the README's "Compatibility with chuk-ai-session-manager"
section gives the reason for) marks chuk's run as a strict xfail with that reason, so it fails if they converge.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from chuk_ai_session_manager import memory as chuk_memory
from chuk_ai_session_manager.memory import models as chuk_models

from tierstore import enums, models
from tierstore.chuk import page_table, working_set


@dataclass(frozen=True)
class Lib:
    name: str
    MemoryPage: Any
    PageTable: Any
    PageTableEntry: Any
    WorkingSetManager: Any
    WorkingSetConfig: Any
    TokenBudget: Any
    PinnedSet: Any
    AntiThrashPolicy: Any
    StorageStats: Any
    CheckpointEntry: Any
    CheckpointManifest: Any
    StorageTier: Any
    Modality: Any
    PageType: Any
    CompressionLevel: Any

    def __repr__(self) -> str:
        return self.name


def _lib(name: str, *modules: ModuleType) -> Lib:
    def find(attr: str) -> Any:
        return next(getattr(m, attr) for m in modules if hasattr(m, attr))

    fields = {f: find(f) for f in Lib.__dataclass_fields__ if f != "name"}
    return Lib(name=name, **fields)


CHUK = _lib("chuk", chuk_memory, chuk_models)
TIERSTORE = _lib("tierstore", models, page_table, working_set, enums)


def both(*, chuk_differs: str | None = None) -> pytest.MarkDecorator:
    """Parametrize ``lib`` over chuk and tierstore; ``chuk_differs`` marks chuk's run a strict xfail."""
    marks = [pytest.mark.xfail(strict=True, reason=chuk_differs)] if chuk_differs else []
    return pytest.mark.parametrize(
        "lib", [pytest.param(CHUK, id="chuk", marks=marks), pytest.param(TIERSTORE, id="tierstore")]
    )


def each_page_class() -> pytest.MarkDecorator:
    """Parametrize ``page_lib`` too: which library's MemoryPage (and enums) a test feeds in."""
    return pytest.mark.parametrize(
        "page_lib", [pytest.param(CHUK, id="chuk-page"), pytest.param(TIERSTORE, id="tierstore-page")]
    )
