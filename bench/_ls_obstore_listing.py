"""The command line with S3's obstore data path listing through obstore, as it did until 2026-12-06, kept for
``bench_listing``'s comparison: that listing gives no change token (no storage class, no response time), so no
catalog row is proven and ``ls -l`` asks for every page; the path now lists through the SDK.

Run: ``python -m bench._ls_obstore_listing ls -l --url URL``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tierstore.backends.cloud import obstore_calls
from tierstore.backends.cloud.client import Listed, page_size
from tierstore.backends.s3.obstore_client import ObstoreClient
from tierstore.cli import app


async def _through_obstore(
    self: ObstoreClient, prefix: str, token: str | None, limit: int | None = None
) -> tuple[Sequence[Listed], str | None]:
    size = page_size(limit, 1_000)
    return await obstore_calls.list_page(self._obstore, await self.store(), prefix, token, size, sdk=self.sdk)


if __name__ == "__main__":
    ObstoreClient.list_page = _through_obstore  # type: ignore[method-assign]
    sys.exit(app.main(sys.argv[1:]))
