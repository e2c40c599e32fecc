"""Environment variables set for a block of code run in this process (a command line run in process, settings read
from the environment), and put back as they were after it, also where pytest's ``monkeypatch`` cannot reach (a
Hypothesis example, a state machine's step)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set ``values`` in ``os.environ`` for the block; each name afterwards as it was, or absent again."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
