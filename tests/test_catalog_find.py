"""``find_pages`` against what is not a page of its place, and against arguments of the wrong type (issue 28).

An object in a scope whose metadata names another key (a page copied from another scope, with or without its
metadata) or another size (damaged) is not a page of that scope: ``find_pages`` leaves it out and finds the others,
whatever the filter; ``tierstore ls --meta`` prints the others, names it on stderr and exits 4 (its contract for a
damaged page), as ``ls -l`` does. Every argument of the wrong type is InvalidInputError before any request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.conftest import Store
from tests.test_ls_catalog import ls
from tests.wrappers import Counted
from tierstore import ArtifactsBridge, MemoryPage, Modality
from tierstore.backends.base import StorageBackend
from tierstore.backends.memory import InMemoryBackend
from tierstore.cli import exit_codes
from tierstore.cli.escape import escaped
from tierstore.errors import InvalidInputError
from tierstore.scopes import scope_prefix

pytestmark = pytest.mark.bridge_only

BOB = scope_prefix("bob", "s1")
ALICE = scope_prefix("alice", "s1")


async def _bytes_only(backend: StorageBackend, source: str, target: str) -> None:
    data = await backend.get(source)
    assert data is not None
    await backend.put(target, bytes(data))


async def _with_metadata(backend: StorageBackend, source: str, target: str) -> None:
    data, info = await backend.get(source), await backend.head(source)
    assert data is not None
    assert info is not None
    await backend.put(target, bytes(data), metadata=dict(info.metadata))


async def _truncated(backend: StorageBackend, source: str, target: str) -> None:
    data, info = await backend.get(source), await backend.head(target)
    assert data is not None
    assert info is not None
    await backend.put(target, bytes(data)[:-1], metadata=dict(info.metadata))


PLANTS: dict[str, Callable[[StorageBackend, str, str], Awaitable[None]]] = {
    "copied bytes": _bytes_only,
    "copied with its metadata": _with_metadata,
    "truncated in place": _truncated,
}


async def _planted(backend: StorageBackend, plant: str) -> list[str]:
    """Bob's pages, one of them replaced or joined by ``plant``; the ids still bob's, after checking find_pages."""
    alice = ArtifactsBridge(backend, user_id="alice", session_id="s1")
    bob = ArtifactsBridge(backend, user_id="bob", session_id="s1")
    source = await alice.store_page(MemoryPage(page_id="a", modality=Modality.TEXT, content="a", metadata={"k": "v"}))
    kept = [
        await bob.store_page(MemoryPage(page_id=f"b{n}", modality=Modality.TEXT, content="b", metadata={"k": "v"}))
        for n in range(3)
    ]
    target = kept[0] if plant == "truncated in place" else "mem_L3_999999"
    await PLANTS[plant](backend, ALICE + source, BOB + target)
    good = sorted(set(kept) - {target})
    queries: list[dict[str, Any]] = [{}, {"modality": "text"}, {"metadata": {"k": "v"}}]
    for query in queries:
        found = await bob.find_pages(**query)
        assert sorted(m.artifact_id or "" for m in found) == good, f"{plant}, {query}"
    return good


@pytest.mark.parametrize("plant", PLANTS)
def test_an_object_not_of_this_scope_is_left_out(
    store: Store, plant: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = asyncio.run(_planted(store.open(), plant))
    capsys.readouterr()
    code, out, _ = ls(store, monkeypatch, "--json", "--user", "bob", "--session", "s1", "--meta", "k=v")
    assert code == exit_codes.INTEGRITY
    assert out.count('"artifact_id"') == len(good)
    said = capsys.readouterr().err.splitlines()
    assert len(said) == 1, said  # named once, by ls: not also by find_pages' warning
    assert said[0].startswith("tierstore: damaged, not listed: ")


BAD: list[dict[str, Any]] = [
    {"metadata": [("k", "v")]},
    {"metadata": "k=v"},
    {"metadata": b"k=v"},
    {"metadata": {"k": 1}},
    {"metadata": {1: "v"}},
    {"metadata": {"k": None}},
    {"tier": ["L3"]},
    {"tier": "L1"},  # lives in the process: no page is stored there
    {"tier": "L9"},
    {"modality": 3},
    {"modality": {"text": 1}},
    {"page_type": object()},
    {"limit": -1},
    {"limit": 1.5},
    {"limit": True},
    {"limit": "3"},
]


@pytest.mark.parametrize("arguments", BAD, ids=[",".join(a) + str(n) for n, a in enumerate(BAD)])
async def test_every_argument_of_a_wrong_type_is_invalid_input_before_any_request(arguments: dict[str, Any]) -> None:
    counted = Counted(InMemoryBackend())
    bridge = ArtifactsBridge(counted, user_id="u", session_id="s")
    with pytest.raises(InvalidInputError):
        await bridge.find_pages(**arguments)
    assert counted.total() == 0


HOSTILE = ["\u202etxt.exe", "zero\u200bwidth", "isolate\u2066d", "bom\ufeff"]
"""Page ids that would reorder, hide or forge what a terminal shows."""


@pytest.mark.parametrize("form", [["-l"], ["--meta", "k=v"], ["--modality", "text"], ["--page-type", "transcript"]])
def test_ls_tables_escape_page_ids_and_json_keeps_them(
    store: Store, form: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def stored() -> None:
        bridge = ArtifactsBridge(store.open())
        for page_id in HOSTILE:
            await bridge.store_page(
                MemoryPage(page_id=page_id, modality=Modality.TEXT, content="c", metadata={"k": "v"})
            )

    asyncio.run(stored())
    code, table, _ = ls(store, monkeypatch, *form)
    assert code == 0
    for page_id in HOSTILE:
        assert escaped(page_id) in table
        assert not any(char in table for char in "\u202e\u200b\u2066\ufeff")
    code, raw, _ = ls(store, monkeypatch, *form, "--json")
    assert sorted(row["page_id"] for row in json.loads(raw)) == sorted(HOSTILE)
