"""Ids in tables are escaped (:mod:`tierstore.cli.escape`): no character that reorders, hides or breaks a row
reaches the terminal, two ids never print alike (the escape is undone exactly), ordinary text of any script is left
alone; ``tierstore users`` / ``sessions`` print a hostile id escaped in the table and raw in ``--json``."""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.contract.conftest import text_page
from tests.soak import scaled
from tierstore import ArtifactsBridge, FileSystemBackend
from tierstore.cli.app import main
from tierstore.cli.escape import escaped
from tierstore.errors import InvalidInputError
from tierstore.scopes import check_scope_id

_UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}
_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})")


def _unescaped(text: str) -> str:
    return _ESCAPE.sub(lambda m: "\\" if m.group(1) == "\\" else chr(int(m.group(1)[1:], 16)), text)


@settings(max_examples=scaled(500), deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(text=st.text(alphabet=st.characters(codec=None), max_size=40))
def test_an_escaped_id_shows_nothing_that_moves_a_row_and_undoes_exactly(text: str) -> None:
    shown = escaped(text)
    assert not [c for c in shown if unicodedata.category(c) in _UNSAFE]
    assert not [c for c in shown if unicodedata.category(c) == "Zs" and c != " "]
    assert _unescaped(shown) == text  # so two different ids never print alike
    composed = unicodedata.normalize("NFC", text)
    if composed != text:  # nor do they as a terminal draws them, which composes what it can
        assert unicodedata.normalize("NFC", shown) != unicodedata.normalize("NFC", escaped(composed))


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("alice", "alice"),
        ("\u202eevil", "\\u202eevil"),
        ("a\u2066b\u2069", "a\\u2066b\\u2069"),
        ("tab\there", "tab\\x09here"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("no\u00a0break", "no\\xa0break"),
        ("back\\slash", "back\\\\slash"),
        ("Zo\u00eb \u6771\u4eac", "Zo\u00eb \u6771\u4eac"),
        ("\U0001f469\u200d\U0001f4bb", "\U0001f469\\u200d\U0001f4bb"),
        ("\U000e0001tag", "\\U000e0001tag"),
        ("caf\u00e9", "caf\u00e9"),
        ("cafe\u0301", "cafe\\u0301"),  # not composed: drawn as the id above unless escaped
        ("al\u034f", "al\\u034f"),  # drawn as "al"
        ("a\ufe0fb", "a\\ufe0fb"),
        ("a\u2800b \u3164", "a\\u2800b \\u3164"),  # drawn as blanks
        ("\u212b \u6771", "\\u212b \\u6771"),  # the Angstrom sign, not NFC
    ],
)
def test_what_is_escaped_and_what_is_not(text: str, shown: str) -> None:
    assert escaped(text) == shown


def test_users_and_sessions_print_hostile_ids_escaped_in_tables_raw_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIERSTORE_USER_ID", raising=False)
    user, session = "\u202eecila", "s\u20661"

    async def fill() -> None:
        async with ArtifactsBridge(FileSystemBackend(tmp_path), user_id=user, session_id=session) as bridge:
            await bridge.store_page(text_page("p", "a page"))

    asyncio.run(fill())
    url = ("--url", str(tmp_path))
    assert main(["users", *url]) == 0
    table = capsys.readouterr().out
    assert "\\u202eecila" in table
    assert "\u202e" not in table
    assert main(["users", "--json", *url]) == 0
    assert [u["user_id"] for u in json.loads(capsys.readouterr().out)["users"]] == [user]
    assert main(["sessions", "--user", user, *url]) == 0
    table = capsys.readouterr().out
    assert "s\\u20661" in table
    assert "\u2066" not in table
    assert main(["sessions", "--user", user, "--json", *url]) == 0
    assert [s["session_id"] for s in json.loads(capsys.readouterr().out)["sessions"]] == [session]


HOSTILE = {"U+202E": "\u202e", "U+200B": "\u200b", "newline": "\n", "ESC": "\x1b"}


@pytest.mark.parametrize("char", HOSTILE.values(), ids=HOSTILE.keys())
def test_every_command_that_prints_a_page_id_checkpoint_name_or_scope_id_prints_it_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, char: str
) -> None:
    """Round 6a: ``show``, ``checkpoints`` (list, show, verify, delete) and ``users rm`` / ``sessions rm`` printed
    hostile ids raw. Ids and names refuse control characters (a newline, ESC: InvalidInputError), so those take
    U+202E then, and the check stands that such a character never reaches the output."""
    for name in ("TIERSTORE_USER_ID", "TIERSTORE_SESSION_ID"):
        monkeypatch.delenv(name, raising=False)
    allowed = char if unicodedata.category(char) == "Cf" else "\u202e"
    page_id, checkpoint_name = f"evil{allowed}id", f"name{allowed}x"
    user, session = f"u{allowed}1", f"s{allowed}1"

    async def fill() -> tuple[str, str]:
        async with ArtifactsBridge(FileSystemBackend(tmp_path)) as bridge:
            if allowed != char:
                with pytest.raises(InvalidInputError):
                    await bridge.store_page(text_page(f"evil{char}id", "a page"))
                with pytest.raises(InvalidInputError):
                    await bridge.checkpoint([text_page("q", "a page")], name=f"name{char}x")
                with pytest.raises(InvalidInputError):
                    check_scope_id(f"u{char}", "user id")
            stored = await bridge.store_page(text_page(page_id, "a page"))
            checkpoint = await bridge.checkpoint([text_page(page_id, "a page")], name=checkpoint_name)
        async with ArtifactsBridge(FileSystemBackend(tmp_path), user_id=user, session_id=session) as bridge:
            await bridge.store_page(text_page("p", "a page"))
        return stored, checkpoint

    stored, checkpoint = asyncio.run(fill())
    url = ["--url", str(tmp_path)]
    commands: list[tuple[list[str], list[str]]] = [
        (["show", stored], [page_id]),
        (["show", stored, "--content"], [page_id]),
        (["checkpoints"], [checkpoint_name]),
        (["checkpoints", "show", checkpoint], [checkpoint_name, page_id]),
        (["checkpoints", "verify", checkpoint, "--pages"], [checkpoint_name, page_id]),
        (["checkpoints", "delete", checkpoint], [checkpoint_name]),
        (["sessions", "rm", session, "--user", user, "--settle", "0"], [session, user]),
        (["users", "rm", user, "--settle", "0"], [user]),
    ]
    for argv, printed in commands:
        assert main([*argv, *url]) == 0, argv
        out, err = capsys.readouterr()
        for text in printed:
            assert escaped(text) in out, (argv, text, out)
            assert text not in out + err, (argv, text)
        assert allowed not in out + err, argv
        if char != "\n":
            assert char not in out + err, argv
