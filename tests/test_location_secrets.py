"""A credential pasted where the storage location belongs is never shown back.

Every kind of secret a user may paste by mistake (a cloud key, a token, a SAS, a private-key line, a connection
string), alone or inside something URL-like, goes through every way a location is given: ``backend_from_url``,
``TIERSTORE_URL`` and ``--url`` on the command line (plain and ``--json``). Each is refused, and no piece of the
secret appears in the error, stdout or stderr.
"""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from tests.environment import environment
from tests.soak import scaled
from tierstore.cli import main
from tierstore.config import backend_from_url
from tierstore.errors import ConfigurationError

_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_HEX = "0123456789abcdef"
_ALPHABET = "".join(dict.fromkeys(_BASE64 + _URL_SAFE))
_NOT_A_PATH = _ALPHABET.replace("/", "")
_OTHER = {c: _NOT_A_PATH[(_NOT_A_PATH.index(c) + 1) % len(_NOT_A_PATH)] for c in _NOT_A_PATH} | {"/": "_"}
"""Each character of a secret and another for it, never ``/``: the changed secret must stay no path when the secret
was none ('+' followed by '/' made '+000' a path, '/111')."""


def _core(alphabet: str, size: int) -> st.SearchStrategy[str]:
    # A secret's random part; never a path's start (a value that is a path is a path, and is shown as one).
    return st.text(alphabet, min_size=size, max_size=size + 24).filter(lambda s: s[0] not in "/~.")


@st.composite
def pasted(draw: st.DrawFn) -> tuple[str, str]:
    """A secret-looking value as pasted (the location) and its random part (what must never be shown)."""
    kind = draw(st.sampled_from(["aws", "azure key", "bearer", "jwt", "pem", "sas", "github", "hex", "connection"]))
    core = draw(_core(_HEX if kind == "hex" else _URL_SAFE if kind in {"bearer", "jwt", "github"} else _BASE64, 20))
    secret = {
        "aws": core,
        "azure key": core + "==",
        "bearer": f"ya29.{core}",
        "jwt": f"eyJhbGciOiJIUzI1NiJ9.{core}.{core[::-1]}",
        "pem": f"-----BEGIN PRIVATE KEY-----{core}",
        "sas": f"sv=2022-11-02&ss=b&sp=rwdlac&se=2026-12-06T00:00:00Z&sig={core}",
        "github": f"ghp_{core}",
        "hex": core,
        "connection": f"AccountName=acct;AccountKey={core}",
    }[kind]
    scheme = draw(st.sampled_from(["s3", "gs", "az", "file", "memory"]))
    location = draw(
        st.sampled_from(
            [
                secret,
                f"?{secret}",
                f"{secret}:rest",
                f"{core}:{secret}",
                f"Bearer {secret}",
                f"{scheme}:{secret}",
                f"{scheme}//{secret}",
                f"{scheme}://bucket/p?{secret}",
                f"{scheme}://bucket/p#{secret}",
                f"{scheme}://AKIAEXAMPLE:{secret}@bucket/p",
                f"{scheme}://bucket:{secret}/p",
                f"https://acct.blob.core.windows.net/c?{secret}",
                f"{core}://bucket/p",
            ]
        )
    )
    return location, core


def _pieces(core: str) -> list[str]:
    """Every 10 characters in a row of the secret: any of them shown would identify it."""
    return [core[i : i + 10] for i in range(len(core) - 9)]


def _cli(*argv: str, **env: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
    return code, out.getvalue() + err.getvalue()


@settings(max_examples=scaled(60), deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(pasted())
@example(("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"))
@example(("?sv=2022-11-02&ss=b&sig=AbCdEfGhIjKlMnOpQrStUvWxYz0123", "AbCdEfGhIjKlMnOpQrStUvWxYz0123"))
@example(("secretpart123456:rest", "secretpart123456"))
@example(("0000000000ationError", "0000000000ationError"))  # shares words with the message, shows none of itself
@example(("-----BEGIN PRIVATE KEY-----MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"))
def test_a_secret_given_as_the_location_is_never_shown(given_value: tuple[str, str]) -> None:
    location, core = given_value
    # The same location with every character of the secret changed: a piece of the secret that its output shows
    # too is the messages' own wording (a secret may happen to contain "ationError"), not the secret.
    other = "".join(_OTHER[c] for c in core)
    reference = dict(_shown(location.replace(core, other)))
    for how, text in _shown(location):
        leaked = [piece for piece in _pieces(core) if piece in text and piece not in reference[how]]
        assert not leaked, f"{how} showed {leaked[0]!r}: {text}"


def _shown(location: str) -> list[tuple[str, str]]:
    """What each way of giving ``location`` shows: the error of ``backend_from_url``, the command line's output."""
    shown: list[tuple[str, str]] = []
    try:
        backend_from_url(location)
    except ConfigurationError as exc:
        shown.append(("backend_from_url", str(exc)))
    else:
        raise AssertionError("a pasted secret was taken for a storage location")
    for how, (code, text) in {
        "TIERSTORE_URL": _cli("ls", TIERSTORE_URL=location),
        "TIERSTORE_URL --json": _cli("--json", "ls", TIERSTORE_URL=location),
        "--url": _cli("ls", f"--url={location}"),
        "--url --json": _cli("ls", "--json", f"--url={location}"),
    }.items():
        assert code == 2, (how, text)
        shown.append((how, text))
    return shown


@pytest.mark.parametrize(
    ("value", "named"), [("ftp://host/x", "'ftp'"), ("https://a.b/c?sig=x", "'https'"), ("Sup3rS3cr3tV4lue://b", None)]
)
def test_a_short_scheme_is_named_and_a_long_one_is_not(value: str, named: str | None) -> None:
    with pytest.raises(ConfigurationError, match="unknown storage URL scheme") as caught:
        backend_from_url(value)
    if named is None:
        assert "'" not in str(caught.value)
    else:
        assert named in str(caught.value)
