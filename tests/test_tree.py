"""The source tree stays readable: every public name says what it is for, no module grows past about 450 lines, no
two tierstore modules import each other at import time, README's Development tree names the packages there are, and
what sits above the checkpoint protocol (maintenance, the CLI, the chuk glue) uses its handle's own methods, never the
backend behind it.

Read with ``ast`` alone (nothing is imported or run), so the five checks cost a few hundred milliseconds.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from tests.conftest import ROOT

SOURCE = ROOT / "src"
PACKAGE = SOURCE / "tierstore"
MAX_LINES = 450

# Modules still above MAX_LINES, each with why it is not split yet. Empty is the goal; an entry is a debt, not a pass.
TOO_LARGE_FOR_NOW: dict[str, str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


@cache
def tree(name: str) -> ast.Module:
    path = modules()[name]
    return ast.parse(path.read_text(), filename=str(path))


def where(name: str, node: ast.AST | None = None) -> str:
    path = modules()[name].relative_to(ROOT)
    return f"{path}:{node.lineno}" if isinstance(node, ast.stmt) else str(path)


# (a) docstrings -------------------------------------------------------------------------------------------------


def is_public_module(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("."))


def is_overload(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(
        (isinstance(decorator, ast.Name) and decorator.id == "overload")
        or (isinstance(decorator, ast.Attribute) and decorator.attr == "overload")
        for decorator in node.decorator_list
    )


Definition = ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef


def public_definitions(body: list[ast.stmt], prefix: str = "") -> Iterator[tuple[str, Definition]]:
    """Classes, functions and methods a caller may use. Nested functions are a body's detail, not a name; a
    ``@property`` setter repeats its getter's name, and the getter carries the docstring."""
    for node in body:
        if not isinstance(node, Definition) or node.name.startswith("_"):
            continue
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
            is_overload(node) or any(isinstance(d, ast.Attribute) and d.attr == "setter" for d in node.decorator_list)
        ):
            continue
        yield prefix + node.name, node
        if isinstance(node, ast.ClassDef):
            yield from public_definitions(node.body, f"{prefix}{node.name}.")


def method_names(node: ast.ClassDef) -> set[str]:
    return {child.name for child in node.body if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)}


def base_names(node: ast.ClassDef) -> list[str]:
    return [base.id if isinstance(base, ast.Name) else getattr(base, "attr", "") for base in node.bases]


def inherited_docstrings() -> dict[tuple[str, str], set[str]]:
    """For each class (by module and name), the methods it may leave undocumented: those that implement a
    member of a tierstore ``Protocol`` whose declaration carries the docstring. A class implements a protocol when it
    has (itself or through its tierstore base classes) every method the protocol declares, as a type checker would
    match it. The protocol's docstring is that method's promise on every backend; repeating it on five adapters
    would be five copies to keep in step, and what an adapter does differently belongs in its class docstring."""
    classes: dict[str, ast.ClassDef] = {}
    owners: dict[int, str] = {}
    for name in modules():
        for node in ast.walk(tree(name)):
            if isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, node)
                owners[id(node)] = name
    protocols = {
        node.name: node for node in classes.values() if "Protocol" in base_names(node) and node.name in classes
    }

    def all_methods(node: ast.ClassDef, seen: frozenset[str] = frozenset()) -> set[str]:
        found = method_names(node)
        for base in base_names(node):
            if base in classes and base not in seen and base not in protocols:
                found |= all_methods(classes[base], seen | {node.name})
        return found

    exempt: dict[tuple[str, str], set[str]] = {}
    for name in modules():
        for node in ast.walk(tree(name)):
            if not isinstance(node, ast.ClassDef) or node.name in protocols:
                continue
            have = all_methods(node)
            for protocol in protocols.values():
                declared = {m for m in method_names(protocol) if not m.startswith("_")}
                if declared and declared <= have:
                    documented = {
                        child.name
                        for child in protocol.body
                        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) and ast.get_docstring(child)
                    }
                    exempt.setdefault((name, node.name), set()).update(documented)
    return exempt


def undocumented() -> list[str]:
    """Every public name without a docstring, but a method that implements a documented protocol member (see
    :func:`inherited_docstrings`)."""
    exempt = inherited_docstrings()
    missing = []
    for name in modules():
        if not is_public_module(name):
            continue
        module = tree(name)
        if ast.get_docstring(module) is None:
            missing.append(f"{where(name)}: module {name}")
        for qualified, node in public_definitions(module.body):
            owner, _, method = qualified.rpartition(".")
            if method in exempt.get((name, owner.rpartition(".")[2]), set()):
                continue
            if ast.get_docstring(node) is None:
                missing.append(f"{where(name, node)}: {name}.{qualified}")
    return missing


def test_every_public_name_has_a_docstring() -> None:
    missing = undocumented()
    assert not missing, f"{len(missing)} public names have no docstring:\n" + "\n".join(missing)


# (b) size -------------------------------------------------------------------------------------------------------


def line_count(name: str) -> int:
    return len(modules()[name].read_text().splitlines())


def test_no_module_is_above_450_lines() -> None:
    too_large = [
        f"{where(name)}: {line_count(name)} lines"
        for name in modules()
        if line_count(name) > MAX_LINES and name not in TOO_LARGE_FOR_NOW
    ]
    assert not too_large, f"modules above {MAX_LINES} lines (split them by concern):\n" + "\n".join(too_large)
    shrunk = [name for name in TOO_LARGE_FOR_NOW if name not in modules() or line_count(name) <= MAX_LINES]
    assert not shrunk, f"no longer too large (take them off TOO_LARGE_FOR_NOW): {shrunk}"


# (c) import cycles ----------------------------------------------------------------------------------------------


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_time_statements(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: at module level, in ``if``/``try`` blocks, but not under
    ``if TYPE_CHECKING:`` and not inside functions or classes' methods."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not is_type_checking(node.test):
                yield from import_time_statements(node.body)
            yield from import_time_statements(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(handler.body for handler in node.handlers)):
                yield from import_time_statements(block)
        elif isinstance(node, ast.ClassDef):
            yield from import_time_statements(node.body)


def imported_modules(name: str) -> set[str]:
    """The tierstore modules importing ``name`` runs first: each one named, and each package on the way to it
    that ``name`` is not itself inside (those are already being imported when ``name`` runs)."""
    known = modules()
    is_package = modules()[name].name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in import_time_statements(tree(name).body):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        if node.level:
            base = package.split(".")
            base = base[: len(base) - node.level + 1]
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        targets.add(origin)
        targets.update(f"{origin}.{alias.name}" for alias in node.names)
    found = set()
    for target in targets:
        parts = target.split(".")
        for end in range(1, len(parts) + 1):
            step = ".".join(parts[:end])
            already_running = name == step or name.startswith(step + ".")
            if step in known and not already_running:
                found.add(step)
    return found


def cycles() -> list[list[str]]:
    graph = {name: sorted(imported_modules(name)) for name in modules()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                components.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return components


def one_loop(component: list[str]) -> list[str]:
    """A shortest import loop through the component's first module: what to cut first."""
    members, start = set(component), component[0]
    paths = {start: [start]}
    queue = [start]
    for node in queue:
        for successor in sorted(imported_modules(node) & members):
            if successor == start:
                return [*paths[node], start]
            if successor not in paths:
                paths[successor] = [*paths[node], successor]
                queue.append(successor)
    return component


def test_no_import_cycle() -> None:
    found = cycles()
    assert not found, "modules that import each other at import time (a loop to cut, then every module in it):\n" + (
        "\n".join(f"{' -> '.join(one_loop(c))}  (all: {', '.join(c)})" for c in found)
    )


# (d) README's tree ----------------------------------------------------------------------------------------------

README = (ROOT / "README.md").read_text()
TREE_LINE = re.compile(r"^(?P<indent> *)(?P<names>\S+(?: \S+)*?)(?: {2,}(?P<what>.*))?$")


def readme_tree() -> str:
    development = README[README.index("\n## Development\n") :]
    return str(re.findall(r"```\n(src/tierstore/\n.*?)```", development, re.S)[0])


def readme_names() -> tuple[set[str], set[str]]:
    """The paths the tree's left column names (``codec/`` as ``codec``, under its parent by indentation), and the
    file names its descriptions mention (``frame.py``)."""
    named: set[str] = set()
    mentioned: set[str] = set()
    parents: list[tuple[int, str]] = []
    for line in readme_tree().splitlines()[1:]:
        match = TREE_LINE.match(line)
        if match is None:
            continue
        indent = len(match["indent"])
        words = match["names"].split()
        if indent > 20:  # a description's second line
            words, what = [], line
        else:
            what = match["what"] or ""
        parents = [(depth, path) for depth, path in parents if depth < indent]
        prefix = parents[-1][1] + "/" if parents else ""
        for word in words:
            steps = (prefix + word.rstrip("/")).split("/")
            named.update("/".join(steps[:end]) for end in range(1, len(steps) + 1))
            if word.endswith("/"):
                parents.append((indent, prefix + word.rstrip("/")))
        mentioned.update(re.findall(r"[\w/]+\.py", what))
    return named, mentioned


def test_the_readme_tree_matches_the_source_tree() -> None:
    named, mentioned = readme_names()
    files = {str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")}
    packages = {str(path.parent.relative_to(PACKAGE)) for path in PACKAGE.rglob("__init__.py")} - {"."}
    absent = sorted(name for name in named if name not in files and name not in packages)
    unnamed = sorted(package for package in packages if package not in named)
    unknown = sorted(mention for mention in mentioned if not any(file.endswith(mention) for file in files))
    assert not absent, f"README's Development tree names what src/tierstore does not have: {absent}"
    assert not unnamed, f"packages README's Development tree does not name: {unnamed}"
    assert not unknown, f"README's Development tree mentions modules src/tierstore does not have: {unknown}"


# (e) the protocol handle ----------------------------------------------------------------------------------------

ABOVE_THE_PROTOCOL = ("tierstore.maintenance", "tierstore.cli", "tierstore.chuk", "tierstore.integrations")
"""Packages that reach the store through ``ArtifactsBridge.references`` and must not go around it."""


def yields_handle(value: ast.expr | None) -> bool:
    """``something.references(...)``: the bridge handing out the protocol handle."""
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "references"


def reaches_through_handle(module: ast.Module) -> list[int]:
    """Lines reading ``.backend`` of the protocol handle: of a ``references(...)`` call itself, or of a name or a
    ``self`` attribute that holds one (bound from such a call or from another holder, or annotated ``References``).
    Names are tracked per module, not per scope: a name that ever holds the handle is taken to always hold it."""
    names: set[str] = set()
    attributes: set[str] = set()

    def holds(value: ast.expr | None) -> bool:
        return yields_handle(value) or (
            (isinstance(value, ast.Name) and value.id in names)
            or (isinstance(value, ast.Attribute) and is_self(value.value) and value.attr in attributes)
        )

    def bind(target: ast.expr) -> bool:
        if isinstance(target, ast.Name) and target.id not in names:
            names.add(target.id)
            return True
        if isinstance(target, ast.Attribute) and is_self(target.value) and target.attr not in attributes:
            attributes.add(target.attr)
            return True
        return False

    changed = True
    while changed:  # until every holder is known (``self._refs = refs`` after ``refs: References``)
        changed = False
        for node in ast.walk(module):
            if (
                isinstance(node, ast.arg)
                and node.annotation is not None
                and "References" in ast.unparse(node.annotation)
            ):
                changed |= bind(ast.Name(node.arg))
            elif isinstance(node, ast.Assign) and holds(node.value):
                for target in node.targets:
                    changed |= bind(target)
            elif isinstance(node, ast.AnnAssign) and (
                holds(node.value) or "References" in ast.unparse(node.annotation)
            ):
                changed |= bind(node.target)
    return sorted(
        node.lineno
        for node in ast.walk(module)
        if isinstance(node, ast.Attribute) and node.attr == "backend" and holds(node.value)
    )


def is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"


def test_nothing_above_the_protocol_reaches_through_its_handle() -> None:
    found = [
        f"{where(name)}:{line}"
        for name in modules()
        if name.startswith(ABOVE_THE_PROTOCOL)
        for line in reaches_through_handle(tree(name))
    ]
    assert not found, (
        "the protocol handle's backend used directly (add the call to protocol/references.py's References "
        "instead):\n" + "\n".join(found)
    )


def test_the_handle_check_sees_each_way_through() -> None:
    reaching = ast.parse(
        "refs = bridge.references('fsck')\n"
        "backend = refs.backend\n"
        "info = bridge.references('rm').backend.head(key)\n"
        "class Lease:\n"
        "    def __init__(self, handle: References) -> None:\n"
        "        self._refs = handle\n"
        "    async def end(self) -> None:\n"
        "        await self._refs.backend.delete(key)\n"
    )
    assert reaches_through_handle(reaching) == [2, 3, 8]
    clean = ast.parse("refs = bridge.references('gc')\nrequire_store(bridge.backend)\nself.backend.put(key)\n")
    assert reaches_through_handle(clean) == []
