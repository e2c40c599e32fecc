"""The ``tierstore`` command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tierstore.backends.filesystem import FileSystemBackend
from tierstore.bridge import ArtifactsBridge
from tierstore.demo import run_demo
from tierstore.errors import TierstoreError


def default_data_dir() -> Path:
    """``$TIERSTORE_DATA_DIR``, else ``$XDG_DATA_HOME/tierstore``, else ``~/.local/share/tierstore``."""
    if explicit := os.environ.get("TIERSTORE_DATA_DIR"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "tierstore"


async def _demo(args: argparse.Namespace) -> int:
    root = Path(args.root) if args.root else default_data_dir()
    print(f"tierstore demo: the spec's complete example on the local-disk store at {root}\n")
    async with ArtifactsBridge(backend=FileSystemBackend(root)) as bridge:
        await run_demo(bridge)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tierstore", description="Durable, tiered storage for agent memory pages.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the spec's complete example on the local-disk store")
    demo.add_argument("--root", help="store directory (default: the tierstore data directory)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = asyncio.run(args.run(args))
    except TierstoreError as exc:
        print(f"tierstore: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
