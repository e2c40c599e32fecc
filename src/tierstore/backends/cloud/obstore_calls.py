"""The calls the obstore data paths (S3, Azure) make alike: a put that resends a dropped overwrite once, a ranged
get, and one page of a listing by prefix.

Contract: each takes the ``obstore`` module and a store already built by its cloud's client, makes one attempt
(the shared retry loop in :mod:`tierstore.backends.cloud.retry` decides on more), and returns what the
:class:`~tierstore.backends.cloud.client.ObjectClient` protocol asks. Nothing here knows a cloud.

Whether a backend uses obstore at all is decided here too: :func:`installed` (the one test of obstore's presence)
and :func:`chosen` (the rule of ``options.client``).

obstore's runtime threads exist only in the process that started them: in a child forked after that, every obstore
call waits forever. :func:`note_started` records that process (and, once, a pause of :data:`EXIT_GRACE` at exit:
obstore's threads may still be handing back the result of the last call, and one caught by the interpreter's
finalization aborts the process, SIGABRT after all work succeeded in about one exit in ten here), and :func:`usable`
says whether this one may call obstore (a child forked later uses the SDK path, which stores the same objects).

Names other tools wrote under a store's prefix: both data paths list the same names, so tierstore's listings
(:meth:`~tierstore.backends.cloud.backend.CloudBackend.list`, which keeps only names of tierstore's form) skip the
same foreign ones on both. obstore's path type refuses some names S3 and Azure allow (an empty, ``.`` or ``..``
segment, a control character) and changes others (it drops a leading and a trailing ``/``, so ``mem_L3_1/`` would
list as ``mem_L3_1``): a listing page that meets such a name continues through the cloud's SDK client from the last
name obstore gave (:class:`ListsAfter`), to the listing's end, with one INFO line per client and prefix. A changed
name is seen as a name out of order or repeated, or as an empty object (tierstore writes none; the folder markers
other tools make are empty); the one it cannot see is a non-empty object named ``k/`` with no ``k`` beside it,
which the obstore path lists as ``k`` (``TIERSTORE_CLIENT=sdk`` lists it as itself, and tierstore skips it).
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, Protocol
from weakref import WeakKeyDictionary

from tierstore.backends.base import Buffer
from tierstore.backends.cloud.client import Listed
from tierstore.backends.cloud.failure import Failure
from tierstore.backends.cloud.obstore_failures import dropped_before_an_answer
from tierstore.backends.cloud.options import ClientChoice
from tierstore.errors import ConfigurationError, MissingDependencyError

EXIT_GRACE: Final = 0.1
"""Seconds a process that used obstore waits at exit for obstore's threads to settle (10 ms sufficed here, idle)."""
LARGEST_PUT: Final = 8 << 20
"""Bodies above this go up through the SDK, which streams them from the page: obstore takes one buffer, which
would be a second copy of a big page (small bodies, where obstore's lower cost per request counts, stay on obstore)."""

logger = logging.getLogger(__name__)
_started_in: int | None = None
_exit_grace = False


def note_started() -> None:
    """Called before a store is built: obstore's runtime starts in this process, if it has not yet; the process
    will pause :data:`EXIT_GRACE` at exit."""
    global _started_in, _exit_grace
    if not _exit_grace:
        atexit.register(time.sleep, EXIT_GRACE)
        _exit_grace = True
    if _started_in is None:
        _started_in = os.getpid()


def usable() -> bool:
    """May this process call obstore (it is not a child forked after obstore's runtime started)?"""
    return _started_in is None or _started_in == os.getpid()


def installed() -> bool:
    """Is obstore importable? A module set to None in ``sys.modules`` (an import that failed, or one blocked on
    purpose, as tests do) counts as missing."""
    if "obstore" in sys.modules:
        return sys.modules["obstore"] is not None
    return importlib.util.find_spec("obstore") is not None


def chosen(choice: ClientChoice, refusal: str | None = None) -> bool:
    """Does a backend move its data through obstore? ``"sdk"``: no; ``"obstore"``: yes, or MissingDependencyError
    when it is not installed and ConfigurationError naming ``refusal`` (why this backend's setup cannot use it);
    ``"auto"``: when it is installed and nothing refuses it."""
    if choice == "sdk":
        return False
    if choice == "obstore":
        if not installed():
            raise MissingDependencyError("fast", "obstore")
        if refusal is not None:
            raise ConfigurationError(f"client='obstore' cannot be used: {refusal}")
        return True
    return refusal is None and installed()


def put(
    obstore: Any,
    store: Any,
    name: str,
    body: bytes,
    *,
    attributes: Mapping[str, str],
    tags: Mapping[str, str] | None,
    if_absent: bool,
    classify: Callable[[BaseException], Failure],
) -> Awaitable[Any]:
    """One put; an overwrite whose connection dropped before an answer (as ``classify`` reads the error) is sent
    once more.

    aiohttp, the SDK paths' transport, resends a PUT by itself when a reused connection drops; obstore does not.
    The one resend keeps an overwrite as robust on both paths (the shared loop resends none whose outcome is
    unknown). A create-if-absent is never resent here: the shared loop recognises its own write instead, so its
    request is handed back as obstore makes it, without a coroutine around it (one per page stored)."""
    sent = {
        "attributes": attributes if type(attributes) is dict else dict(attributes),
        "tags": (tags if type(tags) is dict else dict(tags)) if tags else None,
    }
    if if_absent:
        return obstore.put_async(store, name, body, mode="create", use_multipart=False, **sent)  # type: ignore[no-any-return]
    return _overwrite(obstore, store, name, body, sent, classify)


async def _overwrite(
    obstore: Any, store: Any, name: str, body: bytes, sent: dict[str, Any], classify: Callable[[BaseException], Failure]
) -> None:
    try:
        await obstore.put_async(store, name, body, mode="overwrite", use_multipart=False, **sent)
    except Exception as exc:
        if not dropped_before_an_answer(classify(exc)):
            raise
        logger.debug("put %r: the connection dropped before an answer; the overwrite is sent once more", name)
        await obstore.put_async(store, name, body, mode="overwrite", use_multipart=False, **sent)


async def get(obstore: Any, store: Any, name: str, start: int, length: int | None) -> Buffer:
    """The object's bytes from ``start``, ``length`` of them or to the end."""
    options: dict[str, Any] = {}
    if length is not None:
        options["range"] = (start, start + length)
    elif start:
        options["range"] = {"offset": start}
    result = await obstore.get_async(store, name, options=options)
    return memoryview(await result.bytes_async())


class ListsAfter(Protocol):
    """The SDK half of a listing: what a cloud's SDK client offers so an obstore listing can continue on it."""

    async def list_after(
        self, prefix: str, after: str | None, token: str | None
    ) -> tuple[Sequence[Listed], str | None]:
        """One page of the names starting with ``prefix`` and sorting after ``after`` (None: from the first), from
        the SDK's continuation ``token`` (None: the first page), and the next page's token (None: no more)."""
        ...


_ON_OBSTORE: Final = "o"
_ON_SDK: Final = "s"
_reported: WeakKeyDictionary[ListsAfter, set[str]] = WeakKeyDictionary()
"""The prefixes each SDK client has been told about (so a store with a foreign name logs INFO once per listing)."""


async def list_page(
    obstore: Any, store: Any, prefix: str, token: str | None, page_size: int, *, sdk: ListsAfter
) -> tuple[Sequence[Listed], str | None]:
    """One page of the names starting with ``prefix``, and the token of the next page (None: no more).

    obstore lists by path segments ("mem_" would mean "mem_/...") and resumes after a name rather than from a
    continuation token. So: list the folder holding ``prefix`` from just before the first name that can carry it
    (the prefix without its last character sorts before every such name), keep the names that carry it, stop past
    them; the token is the last name seen.

    Where obstore cannot list a page faithfully, the listing continues through ``sdk`` from the last name obstore
    gave, to its end: a name its path type refuses (``InvalidPathError``: an empty, ``.`` or ``..`` segment, a
    control character), or a page that shows a name it may have changed (it drops a leading and a trailing ``/``:
    ``k/`` comes back as ``k``; seen as a name out of order or repeated, or an empty object, which tierstore never
    writes: the folder markers other tools make). The token says which path the listing is on."""
    if token is not None and token.startswith(_ON_SDK):
        after, sdk_token = json.loads(token[1:])
        return await _on_sdk(sdk, prefix, after, sdk_token)
    after = token[1:] if token is not None else None
    folder, _, leaf = prefix.rpartition("/")
    offset = after or ((prefix[:-1] or None) if leaf else None)
    stream = obstore.list(store, prefix=folder or None, offset=offset, chunk_size=page_size)
    try:
        chunk = await stream.__anext__()
    except StopAsyncIteration:
        return [], None
    except Exception as exc:
        if type(exc).__name__ != "InvalidPathError":
            raise
        _report(sdk, prefix, "a name obstore cannot hold")
        return await _on_sdk(sdk, prefix, after, None)
    listed: list[Listed] = []
    previous = offset or ""
    for entry in chunk:
        name = str(entry["path"])
        carries = name.startswith(prefix)
        if name <= previous or (carries and not entry["size"]):
            _report(sdk, prefix, "a name obstore may have changed")
            return await _on_sdk(sdk, prefix, after, None)
        previous = name
        if carries:
            listed.append(Listed(name, int(entry["size"]), entry.get("last_modified")))
        elif name > prefix:
            return listed, None  # names come in order: none after this one carries the prefix
    return listed, (_ON_OBSTORE + previous if len(chunk) >= page_size else None)


async def _on_sdk(
    sdk: ListsAfter, prefix: str, after: str | None, token: str | None
) -> tuple[Sequence[Listed], str | None]:
    listed, following = await sdk.list_after(prefix, after, token)
    return listed, (_ON_SDK + json.dumps([after, following]) if following else None)


def _report(sdk: ListsAfter, prefix: str, why: str) -> None:
    """Say once per client and listed prefix (INFO) that its listing moved to the SDK; again at DEBUG."""
    told = _reported.setdefault(sdk, set())
    level = logging.DEBUG if prefix in told else logging.INFO
    told.add(prefix)
    logger.log(level, "listing %r: %s under it; this listing continues through the SDK", prefix, why)
