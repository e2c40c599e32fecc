"""S3's listing token is settled in the store's time, never the client's (issue 28, ``backends/s3/wire.py``).

A token (ETag and LastModified, to the second) is given only once the listing response's own ``Date`` is at least
:data:`~tierstore.backends.s3.wire.LISTING_SETTLED` past the object's last change: a client whose clock runs ahead
of S3's must not trust a token two changes within one second share. Here the client's clock is skewed an hour back,
10 s and an hour ahead, on moto: an object just written gives no token whatever the client's clock says.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from typing import Any

import pytest

from tests.conftest import Store
from tierstore.backends.s3 import wire


def _skewed_datetime(skew: float) -> type[datetime]:
    class Any_(type):
        def __instancecheck__(cls, value: object) -> bool:
            return isinstance(value, datetime)

    class Skewed(datetime, metaclass=Any_):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Skewed:
            real = datetime.now(tz) + timedelta(seconds=skew)
            return cls.fromtimestamp(real.timestamp(), tz)

    return Skewed


@pytest.mark.parametrize("skew", [-3600.0, 10.0, 3600.0])
async def test_a_fresh_object_gives_no_token_whatever_the_clients_clock(
    fresh_store: Callable[[str], dict[str, Any]], skew: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wire, "datetime", _skewed_datetime(skew))
    backend = Store("s3_moto", fresh_store("s3_moto")).open()
    try:
        await backend.put("obj", b"x")
        listed = [entry async for entry in backend.list("obj")]
        assert [entry.key for entry in listed] == ["obj"]
        assert listed[0].version is None, f"a token given at once to a client {skew:+} s off"
    finally:
        await backend.aclose()
