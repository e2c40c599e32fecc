"""``doctor``'s tier check makes a real change of class and back (or, where L4 is an archive, asks for a restore),
on every backend with tiers, GCS included; a store that accepts a tier change without making it fails the check."""

from __future__ import annotations

from typing import Any

from tests.conftest import Store
from tierstore.backends.base import StorageBackend
from tierstore.backends.memory import InMemoryBackend
from tierstore.enums import StorageTier
from tierstore.maintenance import doctor


def test_the_tier_check_changes_a_class_and_back(store: Store) -> None:
    import asyncio
    from pathlib import Path

    if store.rig == "filesystem":
        Path(store.spec["root"]).mkdir(parents=True, exist_ok=True)  # an empty store (doctor makes none)

    async def check() -> dict[str, Any]:
        backend = store.open()
        try:
            report = await doctor(backend)
        finally:
            await backend.aclose()
        return {c.name: (c.result, c.detail) for c in report.checks}

    checks = asyncio.run(check())
    assert checks["tier"][0] == "ok", checks["tier"]
    assert checks["tier"][1].startswith("move an object L3 -> L4 and ")
    assert all(result in ("ok", "skipped") for result, _detail in checks.values()), checks


class IgnoresTiers:
    """A store that accepts every tier change and makes none."""

    def __init__(self, inner: StorageBackend) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def set_tier(self, key: str, tier: StorageTier, **_: Any) -> None:
        return None


async def test_a_tier_change_the_store_does_not_make_fails_the_check() -> None:
    report = await doctor(IgnoresTiers(InMemoryBackend()))
    [tier] = [c for c in report.checks if c.name == "tier"]
    assert tier.result == "failed"
    assert "accepted the move to L4 but reports L3" in tier.detail
