"""Checking, cleaning and copying a whole store: ``fsck``, ``gc`` and ``migrate``, as library functions that
return report objects (the command line renders them)."""

from tierstore.maintenance.fsck import fsck
from tierstore.maintenance.gc import gc
from tierstore.maintenance.migrate import migrate
from tierstore.maintenance.reports import FsckReport, GcReport, MigrateReport, Orphan, Problem

__all__ = ["FsckReport", "GcReport", "MigrateReport", "Orphan", "Problem", "fsck", "gc", "migrate"]
