"""Checking, cleaning, copying and probing a whole store: ``fsck``, ``gc``, ``migrate`` and ``doctor``, as library
functions that return report objects (the command line renders them)."""

from tierstore.maintenance.doctor import doctor
from tierstore.maintenance.fsck import fsck
from tierstore.maintenance.gc import gc
from tierstore.maintenance.migrate import migrate
from tierstore.maintenance.reports import (
    ArchivedCheckpoint,
    DoctorCheck,
    DoctorReport,
    FsckReport,
    GcReport,
    MigrateReport,
    Orphan,
    Problem,
)

__all__ = [
    "ArchivedCheckpoint",
    "DoctorCheck",
    "DoctorReport",
    "FsckReport",
    "GcReport",
    "MigrateReport",
    "Orphan",
    "Problem",
    "doctor",
    "fsck",
    "gc",
    "migrate",
]
