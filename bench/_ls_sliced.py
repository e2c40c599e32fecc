"""The command line with every cloud store listed in slices, kept for ``bench_listing``'s comparison: no built-in
backend says that slicing pays off (:mod:`tierstore.backends.slices`); this says it for the clouds, to measure it.

Run: ``python -m bench._ls_sliced ls --url URL``.
"""

from __future__ import annotations

import sys

from tierstore.backends.cloud.backend import CloudBackend
from tierstore.backends.slices import SLICED_LISTING
from tierstore.cli import app

if __name__ == "__main__":
    setattr(CloudBackend, SLICED_LISTING, True)
    sys.exit(app.main(sys.argv[1:]))
