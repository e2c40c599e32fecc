"""The parser and the entry point: parse, load the settings, run one command, turn errors into exit codes.

Contract: ``main(argv)`` returns an exit code from :mod:`tierstore.cli.exit_codes` and prints a tierstore error as
``tierstore: <ErrorClass>: <message>`` on stderr (and as ``{"error", "message", "exit_code"}`` on stdout with
``--json``), in the command line's own words: an archived page names ``tierstore restore ID``.

A run imports the module of its command only (``tierstore ls`` loads neither the maintenance commands nor a cloud
module it does not name; tests/test_ls_startup.py): the command is the first word of the command line that the
root options leave, and when it names no command (``tierstore --help``, a typo) every command's module is loaded,
so the parser, its help and its errors are the same as with all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import shlex
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import NoReturn

from tierstore import ids
from tierstore.backends import registry
from tierstore.cli import exit_codes
from tierstore.cli.context import Invocation, Run, common_options
from tierstore.cli.render import print_json, shown
from tierstore.config import MisspeltSettingWarning, load_settings, redact_url
from tierstore.errors import ArchivedPageError, ObjectNotFoundError, TierstoreError

COMMANDS = ("demo", "ls", "show", "checkpoints", "tier", "restore", "rm", "migrate", "fsck", "gc", "doctor", "scopes")
"""The modules of :mod:`tierstore.cli` that register commands, in the order of the help."""
NAMES = {"users": "scopes", "sessions": "scopes"}
"""The commands a module registers under a name that is not the module's."""

_EPILOG = f"""\
exit codes:
{exit_codes.summary()}

The store is --url, else $TIERSTORE_URL, else the local-disk store in $TIERSTORE_DATA_DIR (default
$XDG_DATA_HOME/tierstore or ~/.local/share/tierstore).
URLs: {registry.url_forms()}.
Every setting and command: docs/configuration.md.
"""


def version() -> str:
    """tierstore's installed version, or says it is not installed (run from a source tree)."""
    import importlib.metadata

    try:
        return importlib.metadata.version("tierstore")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


class _Parser(argparse.ArgumentParser):
    """Usage errors as ``{"error": "UsageError", ...}`` on stdout too when ``--json`` was asked for (exit 2)."""

    wants_json = False

    def error(self, message: str) -> NoReturn:
        if _Parser.wants_json:
            text = f"{self.prog}: {message}"
            print_json({"error": "UsageError", "message": text, "exit_code": exit_codes.USAGE})
        super().error(message)


class _UsageError(Exception):
    pass


class _Router(argparse.ArgumentParser):
    """The root's options alone, parsed quietly: finding the command must print nothing."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


class _Version(argparse.Action):
    """``--version``, the installed version looked up only when asked (importlib.metadata is slow to import)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> NoReturn:
        print(f"tierstore {version()}")
        parser.exit()


def parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``tierstore`` argument parser, each command with ``--url`` and ``--json``: every command, or when
    ``argv`` names one, that command (the module's contract)."""
    common, json_only = common_options(_Parser), common_options(_Parser, url=False)
    root = _Parser(
        prog="tierstore",
        description="Durable, tiered storage for an AI agent's memory pages: look at, check, copy and clean a store.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    root.add_argument("--version", action=_Version)
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, run: Run, help: str, *, aliases: Sequence[str] = (), url: bool = True
    ) -> argparse.ArgumentParser:
        parents: list[_Parser] = [common if url else json_only]
        sub = commands.add_parser(name, aliases=aliases, help=help, description=help, parents=parents)
        sub.set_defaults(run=run)
        return sub

    for module in _modules_for(argv):
        importlib.import_module(f"tierstore.cli.{module}").register(add)
    return root


def _modules_for(argv: Sequence[str] | None) -> tuple[str, ...]:
    """The command modules ``argv`` needs: its command's, or all (the module's contract)."""
    if argv is None:
        return COMMANDS
    router = common_options(_Router)  # the root's options, so that their values are never taken for the command
    with contextlib.suppress(_UsageError):  # the full parser will say it
        _, rest = router.parse_known_args(list(argv))
        word = next((arg for arg in rest if not arg.startswith("-")), None)
        if word is not None and "-h" not in rest[: rest.index(word)] and "--help" not in rest[: rest.index(word)]:
            module = NAMES.get(word, word)
            if module in COMMANDS:
                return (module,)
    return COMMANDS


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (else ``sys.argv``); its exit code (``exit_codes``)."""
    _Parser.wants_json = "--json" in (sys.argv[1:] if argv is None else argv)
    args = parser(sys.argv[1:] if argv is None else argv).parse_args(argv)
    with _warnings_as_lines():
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    try:
        invocation = Invocation(args, load_settings())
        _ = invocation.user_id, invocation.session_id  # every command refuses a bad --user/--session before any I/O
        code: int = asyncio.run(args.run(invocation))
    except TierstoreError as exc:
        return _fail(args, exc)
    except KeyboardInterrupt:
        print("tierstore: interrupted", file=sys.stderr)
        return exit_codes.INTERRUPTED
    except BrokenPipeError:
        # The reader went away; point stdout at /dev/null so the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return exit_codes.BROKEN_PIPE
    return code


def message(exc: TierstoreError, args: argparse.Namespace | None = None) -> str:
    """The error in the command line's words; a command it suggests names the store as this one did (``--url``)."""
    if isinstance(exc, ArchivedPageError):
        url = getattr(args, "url", None)
        where = f" --url {shlex.quote(redact_url(url))}" if url else ""
        for flag in ("user", "session"):  # a scope's artifact is restored in that scope
            if isinstance(getattr(args, flag, None), str):
                where += f" --{flag} {shlex.quote(getattr(args, flag))}"
        if exc.pending:
            then = f"a restore is in progress: `tierstore restore {exc.key}{where}` shows how far it is"
        else:
            then = f"`tierstore restore {exc.key}{where}` starts a restore"
        checkpoint = getattr(args, "id", None) if getattr(args, "command", None) == "checkpoints" else None
        if checkpoint:
            then += f"; `tierstore checkpoints restore {checkpoint}{where}` restores every page of the checkpoint"
        return f"artifact {shown(exc.key)} is archived and cannot be read until it is restored; {then}"
    if isinstance(exc, ObjectNotFoundError):
        kinds = {ids.CHECKPOINT_PREFIX: "checkpoint", ids.PAGE_PREFIX: "artifact"}
        what = next((kind for prefix, kind in kinds.items() if exc.key.startswith(prefix)), "object")
        return f"no {what} {shown(exc.key)}"
    sides = "".join(f"{note}: " for note in getattr(exc, "__notes__", []))  # e.g. which store of a migrate
    return sides + str(exc)


def _fail(args: argparse.Namespace, exc: TierstoreError) -> int:
    code, kind, text = exit_codes.of_error(exc), type(exc).__name__, message(exc, args)
    print(f"tierstore: {kind}: {text}", file=sys.stderr)
    if getattr(args, "json", False):
        print_json({"error": kind, "message": text, "exit_code": code})
    return code


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """tierstore's log warnings (a misspelt setting, ...) as ``tierstore: warning: ...`` lines on stderr; the Python
    warnings that repeat them are dropped, so each is said once."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("tierstore: warning: %(message)s"))
    logger = logging.getLogger("tierstore")
    logger.addHandler(handler)
    # The SDKs' warnings (an expired SSO session, a credential refresh that failed) as one line each, without the
    # traceback some attach: the typed error that follows says what happened and what to do.
    others = logging.StreamHandler(sys.stderr)
    others.setLevel(logging.WARNING)
    others.setFormatter(_OneLine())
    others.addFilter(lambda record: not record.name.startswith("tierstore"))
    root = logging.getLogger()
    root.addHandler(others)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MisspeltSettingWarning)
            yield
    finally:
        logger.removeHandler(handler)
        root.removeHandler(others)


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        first = record.getMessage().strip().splitlines()[:1]
        return f"tierstore: warning: {record.name}: {first[0] if first else ''}"
