"""``tierstore show ID``: a stored page's metadata, and with ``--content`` or ``--raw`` its content.

Contract: ``--raw`` writes the content alone to stdout (bytes as they are, text as UTF-8, structured content as
JSON, nothing for no content); a missing artifact is ``ObjectNotFoundError`` (exit 5).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from tierstore.cli.context import AddCommand, Invocation, artifact_id
from tierstore.cli.escape import escaped
from tierstore.cli.render import print_fields, print_json, to_plain
from tierstore.errors import ObjectNotFoundError
from tierstore.models import MemoryPage


def register(add: AddCommand) -> None:
    """Add ``tierstore show ID`` (``--content``, ``--raw``) to the parser."""
    show = add("show", run, "show a stored page's metadata (and its content with --content)")
    show.add_argument("id", help="artifact id, e.g. mem_L3_1 (a checkpoint: tierstore checkpoints show ID)")
    show.add_argument("--content", action="store_true", help="load the page and show its content too")
    show.add_argument("--raw", action="store_true", help="write only the content to stdout (bytes as they are)")


def content_bytes(page: MemoryPage) -> bytes:
    """The content as it would be saved to a file."""
    content = page.content
    if content is None:
        return b""
    if isinstance(content, bytes):
        return content
    if isinstance(content, str):
        return content.encode("utf-8")
    return json.dumps(to_plain(content), indent=2, ensure_ascii=False).encode("utf-8")


async def run(inv: Invocation) -> int:
    """``tierstore show``: one page's metadata, and its content when asked."""
    key = artifact_id(inv.args.id, checkpoint_command="show")
    async with inv.bridge() as bridge:
        meta = await bridge.get_metadata(key)
        if meta is None:
            raise ObjectNotFoundError(key)
        page = await bridge.load_page(key) if inv.args.content or inv.args.raw else None
        if (inv.args.content or inv.args.raw) and page is None:
            raise ObjectNotFoundError(key)  # deleted between the two reads
    if inv.args.raw:
        assert page is not None
        sys.stdout.buffer.write(content_bytes(page))
        sys.stdout.buffer.flush()
        return 0
    if inv.json:
        shown: dict[str, Any] = {"metadata": meta}
        if page is not None:
            shown["page"] = page.model_dump(mode="python")
        print_json(shown)
        return 0
    # Every text field escaped (the page id above all): a terminal must show what is stored, not what it says.
    print_fields({k: escaped(v) if isinstance(v, str) else v for k, v in meta.model_dump().items() if v is not None})
    if page is not None:
        print("\ncontent:")
        print(_describe_content(page, key))
    return 0


def _describe_content(page: MemoryPage, key: str) -> str:
    if page.content is None:
        return "(none)"
    if isinstance(page.content, bytes):
        return f"({len(page.content)} bytes of binary content: `tierstore show {key} --raw > FILE` writes them)"
    return content_bytes(page).decode("utf-8")
