"""Tiers as storage classes: one map per backend, from the cloud's defaults and the user's overrides.

Several tiers may share a class (L0-L3 are all STANDARD by default), so a backend also records the tier it was
asked for next to the object; :meth:`TierMap.tier_of` prefers that record while it still matches the class, and
otherwise (a lifecycle rule moved the object) answers the coldest tier configured with the object's class.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from tierstore.enums import StorageTier
from tierstore.errors import ConfigurationError

_COLDEST_FIRST = sorted(StorageTier, key=lambda tier: tier.value, reverse=True)


class TierMap:
    """Which storage class each tier lives in on one cloud, checked once when the backend is built."""

    def __init__(
        self,
        cloud: str,
        defaults: Mapping[StorageTier, str],
        overrides: Mapping[StorageTier, str] | None,
        *,
        known: Collection[str],
        archives: Collection[str],
        spell: Callable[[str], str] = str.upper,
    ) -> None:
        """``known``: the cloud's class names, as ``spell`` writes them; ``archives``: those that must be restored
        before a read. An unknown class is refused here, before any request, and so is an archive class for any tier
        but L4 (a page of a working tier would need a restore before each read)."""
        classes = {spelled: spelled for spelled in known}
        self.classes: dict[StorageTier, str] = {}
        for tier, name in {**defaults, **(overrides or {})}.items():
            spelled = spell(name) if isinstance(name, str) else ""
            if spelled not in classes:
                raise ConfigurationError(
                    f"unknown {cloud} storage class {name!r} for tier {StorageTier(tier).value}: "
                    f"use one of {', '.join(sorted(classes))}"
                )
            self.classes[StorageTier(tier)] = spelled
        self.archives = frozenset(archives)
        for tier, spelled in self.classes.items():
            if spelled in self.archives and tier is not StorageTier.L4:
                raise ConfigurationError(
                    f"tier {tier.value} cannot live in the {cloud} archive class {spelled}: its pages must be readable "
                    "at once; only L4 may be archived"
                )

    @property
    def has_archive(self) -> bool:
        """Whether some tier lives in an archive class (so reads may need a restore first)."""
        return any(name in self.archives for name in self.classes.values())

    def class_of(self, tier: StorageTier) -> str:
        """The storage class of ``tier`` (a StorageTier, or its value)."""
        found = self.classes.get(tier)  # a StorageTier is a str: its value finds it too, without an Enum call
        return found if found is not None else self.classes[StorageTier(tier)]

    def is_archive(self, storage_class: str | None) -> bool:
        """Whether ``storage_class`` must be restored before a read."""
        return storage_class in self.archives

    def tier_of(self, storage_class: str | None, recorded: str | None) -> StorageTier | None:
        """The tier an object is in: the ``recorded`` one when it maps to the object's class (tiers may share a
        class), else the coldest tier of that class; None for a class no tier uses."""
        tier = next((t for t in StorageTier if t.value == recorded), None)
        if tier is not None and self.classes.get(tier) == storage_class:
            return tier
        return next((t for t in _COLDEST_FIRST if self.classes.get(t) == storage_class), None)
