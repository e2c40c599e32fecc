"""The command line with ``ls -l``'s streamed listing asking a cloud for whole LIST pages from the first (1,000 keys on
S3), as it did until 2026-12-06, kept for ``bench_listing``'s comparison with the small first page it asks for now
(:data:`tierstore.backends.slices.FIRST_PAGE`).

Run: ``python -m bench._ls_whole_pages ls -l --url URL``.
"""

from __future__ import annotations

import sys

from tierstore.backends import slices
from tierstore.cli import app

if __name__ == "__main__":
    slices.FIRST_PAGE = 1_000
    sys.exit(app.main(sys.argv[1:]))
