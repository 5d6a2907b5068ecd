"""The layering of ``harness/``: imports run down the floors, never in a cycle, never hidden.

Pure ``ast``: no module under ``harness/`` is imported, so a module that fails to import cannot hide
a violation, and the whole check takes well under a second. Three rules, each with a test on the
real tree and a test proving it bites on a small synthetic tree written into ``tmp_path``:

1. **Layers.** A module's layer is its top-level name under ``harness/`` (``harness/load/master.py``
   is in ``load``, ``harness/__init__.py`` is ``__init__``). :data:`FLOORS` lists the floors bottom
   up (ARCHITECTURE.md, with the bottom floor spelled out). A layer may import its own layer and any
   layer on a lower floor. On a floor written with ``+`` the layers may import each other; on one
   written with ``|`` they are siblings that may not. Every import counts, at module level or in a
   function, and so does ``importlib.import_module("harness...")`` with a literal name. A layer
   missing from the table is a violation too, so a new top-level module is placed on purpose.
2. **No cycles** between modules in the module-level import graph. Imports under
   ``if TYPE_CHECKING:`` are in the graph (mypy and readers follow them all the same); imports
   inside functions are not (rule 3 governs those). A depth-first search reports one cycle per
   back edge, as its path with the file and line of every edge.
3. **No function-local imports of ``harness`` modules**, except a deliberate deferral: the import's
   first line, or the line just above it, carries a comment ``# deferred: <why>`` naming the heavy
   optional dependency being put off (Docker SDK, Locust/gevent, matplotlib). One marker covers one
   import statement.

Imports are resolved as Python would: relative imports against the importing module's package
(``__init__.py`` is its own package), ``from harness import scenario`` to the submodule
``harness.scenario`` when it exists (else to ``harness/__init__.py``), and
``from harness.x import y`` to ``harness.x.y`` when that is a module, else to ``harness.x``.
"""

from __future__ import annotations

import ast
import io
import itertools
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

HARNESS = Path(__file__).resolve().parents[2] / "harness"

# Bottom up: the one table to edit when the layering changes on purpose. "+" joins layers that may
# import each other; "|" joins siblings that share a floor but may not import each other.
FLOORS: tuple[str, ...] = (
    "errors + exit_codes + durations + fields + private_files + __init__",
    "record",
    "safety",
    "proxy",
    "stack",
    "faults",
    "scenario",
    "integrity",
    "load",
    "verdict",
    "history",
    "compare",
    "report",
    "run",
    "gameday | capacity",
    "testing + pytest_plugin",
    "cli + __main__",
)

DEFERRED_MARKER = re.compile(r"#\s*deferred:\s*\S")


def _parse_floors(floors: tuple[str, ...]) -> tuple[dict[str, int], set[frozenset[str]]]:
    """Layer → floor number (1 = bottom), and the pairs of siblings that may not meet."""
    floor_of: dict[str, int] = {}
    apart: set[frozenset[str]] = set()
    for number, floor in enumerate(floors, start=1):
        assert not ("+" in floor and "|" in floor), f"floor {floor!r} mixes '+' and '|'"
        layers = [name.strip() for name in re.split(r"[+|]", floor)]
        for layer in layers:
            assert layer not in floor_of, f"layer {layer!r} is on two floors"
            floor_of[layer] = number
        if "|" in floor:
            apart.update(frozenset((a, b)) for a in layers for b in layers if a != b)
    return floor_of, apart


# -- scanning ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    """One import of a module of the checked package, resolved to the module it loads."""

    path: Path
    line: int
    text: str
    source: str
    target: str
    local: bool
    type_checking: bool
    deferred: bool

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root.parent)}:{self.line}"


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool


@dataclass(frozen=True)
class Tree:
    modules: dict[str, Module]
    imports: list[Import]
    shadowed: list[Module]  # a module.py hidden by a package of the same name


def layer_of(name: str) -> str:
    """``harness.load.master`` → ``load``; ``harness`` (its ``__init__.py``) → ``__init__``."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


@cache  # the three rules read one scan; every synthetic tree has a root of its own
def scan(root: Path) -> Tree:
    """Every module under ``root`` (the package directory) and every import of the package."""
    package = root.name
    modules: dict[str, Module] = {}
    shadowed: list[Module] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        is_package = rel.name == "__init__"
        parts = [package, *rel.parts[:-1]] if is_package else [package, *rel.parts]
        module = Module(".".join(parts), path, is_package)
        known = modules.get(module.name)
        if known is not None:  # Python loads the package and never the module beside it
            shadowed.append(known if module.is_package else module)
            if not module.is_package:
                continue
        modules[module.name] = module
    imports = [imp for m in [*modules.values(), *shadowed] for imp in _imports_of(m, modules)]
    imports.sort(key=lambda imp: (imp.path, imp.line, imp.text))
    return Tree(modules, imports, shadowed)


def _comments(source: str) -> dict[int, str]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {t.start[0]: t.string for t in tokens if t.type == tokenize.COMMENT}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


_BLOCKS = (ast.stmt, ast.excepthandler, ast.match_case)


def _walk(tree: ast.AST, *, calls: bool) -> Iterator[tuple[ast.AST, bool, bool]]:
    """Every node with whether it sits in a function and whether under ``if TYPE_CHECKING:``.

    Without ``calls``, only statements: an import statement is never inside an expression, and
    skipping expressions makes the scan several times faster.
    """
    stack: list[tuple[ast.AST, bool, bool]] = [(tree, False, False)]
    while stack:
        node, local, checking = stack.pop()
        yield node, local, checking
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend((stmt, local, True) for stmt in node.body)
            stack.extend((stmt, local, checking) for stmt in node.orelse)
            continue
        inner = local or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        stack.extend(
            (child, inner, checking)
            for child in ast.iter_child_nodes(node)
            if calls or isinstance(child, _BLOCKS)
        )


def _resolve(name: str, modules: dict[str, Module]) -> str:
    """The module an import of ``name`` loads: the longest prefix that is a module in the tree."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return name


def _targets(node: ast.AST, module: Module, modules: dict[str, Module]) -> list[tuple[str, str]]:
    """(resolved target, text) for each module of the package the node imports."""
    package = module.name.split(".")[0]

    def ours(name: str) -> bool:
        return name == package or name.startswith(package + ".")

    if isinstance(node, ast.Import):
        return [(_resolve(a.name, modules), f"import {a.name}") for a in node.names if ours(a.name)]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.name.split(".")
            if not module.is_package:
                base = base[:-1]
            if node.level - 1 >= len(base):  # climbs out of the package: not ours to check
                return []
            base = base[: len(base) - (node.level - 1)]
            origin = ".".join([*base, *([node.module] if node.module else [])])
        else:
            origin = node.module or ""
        if not ours(origin):
            return []
        spelled = "." * node.level + (node.module or "")
        found: dict[str, list[str]] = {}
        for alias in node.names:
            sub = f"{origin}.{alias.name}"
            target = sub if sub in modules else _resolve(origin, modules)
            found.setdefault(target, []).append(alias.name)
        return [(t, f"from {spelled} import {', '.join(n)}") for t, n in found.items()]
    if isinstance(node, ast.Call) and node.args:
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        arg = node.args[0]
        literal = arg.value if isinstance(arg, ast.Constant) else None
        if called in {"import_module", "__import__"} and isinstance(literal, str) and ours(literal):
            return [(_resolve(literal, modules), f"{called}({literal!r})")]
    return []


def _imports_of(module: Module, modules: dict[str, Module]) -> Iterator[Import]:
    source = module.path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(module.path))
    comments: dict[int, str] | None = None  # tokenizing is slow: only for files that need it
    calls = "import_module" in source or "__import__" in source
    for node, local, checking in _walk(tree, calls=calls):
        if not isinstance(node, ast.Import | ast.ImportFrom | ast.Call):
            continue
        targets = _targets(node, module, modules)
        if not targets:
            continue
        line = getattr(node, "lineno", 0)
        deferred = False
        if local:
            comments = _comments(source) if comments is None else comments
            deferred = any(DEFERRED_MARKER.search(comments.get(n, "")) for n in (line, line - 1))
        for target, text in targets:
            yield Import(module.path, line, text, module.name, target, local, checking, deferred)


# -- the three rules --------------------------------------------------------------------------


def layer_violations(root: Path, floors: tuple[str, ...] = FLOORS) -> list[str]:
    """Imports that run up the floors or across siblings, and layers that are on no floor."""
    floor_of, apart = _parse_floors(floors)
    tree = scan(root)
    found: list[str] = []
    unplaced = sorted({layer_of(m) for m in tree.modules} - floor_of.keys())
    for layer in unplaced:
        where = next(m.path for m in tree.modules.values() if layer_of(m.name) == layer)
        found.append(f"{where.relative_to(root.parent)}: layer {layer!r} is on no floor")
    for module in tree.shadowed:
        found.append(
            f"{module.path.relative_to(root.parent)}: shadowed by the package {module.name}/ "
            "(Python never loads it)"
        )
    for imp in tree.imports:
        mine, theirs = layer_of(imp.source), layer_of(imp.target)
        if mine == theirs or mine not in floor_of:
            continue
        if theirs not in floor_of:
            rule = f"imports {theirs!r}, a layer on no floor"
        elif frozenset((mine, theirs)) in apart:
            rule = f"{mine} may not import its sibling {theirs} (same floor)"
        elif floor_of[theirs] > floor_of[mine]:
            rule = (
                f"{mine} (floor {floor_of[mine]}) may not import {theirs} "
                f"(floor {floor_of[theirs]}, above)"
            )
        else:
            continue
        found.append(f"{imp.where(root)}: {imp.text}  -- {rule}")
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per back edge of an (iterative) depth-first search, as a path that ends where it
    starts. A graph has a cycle exactly when a DFS finds a back edge, and each back edge is an
    import that could be cut."""
    done: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(graph):
        if start in done:
            continue
        path, work = [start], [iter(sorted(graph[start]))]
        while work:
            for succ in work[-1]:
                if succ in path:
                    cycles.append([*path[path.index(succ) :], succ])
                elif succ not in done:
                    path.append(succ)
                    work.append(iter(sorted(graph[succ])))
                    break
            else:
                done.add(path.pop())
                work.pop()
    return cycles


def cycle_violations(root: Path) -> list[str]:
    """Every cycle of the module-level import graph, as its path with each edge's file:line."""
    tree = scan(root)
    graph: dict[str, set[str]] = {name: set() for name in tree.modules}
    edge: dict[tuple[str, str], Import] = {}
    for imp in tree.imports:
        if imp.local or imp.source not in graph or imp.target not in graph:
            continue
        if tree.modules[imp.source].path != imp.path:  # a shadowed module is never loaded
            continue
        graph[imp.source].add(imp.target)
        edge.setdefault((imp.source, imp.target), imp)
    found: list[str] = []
    for path in _cycles(graph):
        lines = [f"cycle: {' -> '.join(path)}"]
        for source, target in itertools.pairwise(path):
            imp = edge[(source, target)]
            tag = "  (under TYPE_CHECKING)" if imp.type_checking else ""
            lines.append(f"    {imp.where(root)}: {imp.text}{tag}")
        found.append("\n".join(lines))
    return found


def local_import_violations(root: Path) -> list[str]:
    """Function-local imports of the package without a ``# deferred: <why>`` comment."""
    return [
        f"{imp.where(root)}: {imp.text}  -- function-local import without '# deferred: <why>'"
        for imp in scan(root).imports
        if imp.local and not imp.deferred
    ]


def _fail_on(violations: list[str], rule: str) -> None:
    if violations:
        # pytest.fail, not assert: an assertion message is cut after a few lines without -vv.
        pytest.fail(f"{len(violations)} {rule}:\n" + "\n".join(violations), pytrace=False)


# -- the real tree ----------------------------------------------------------------------------


def test_each_layer_imports_only_its_own_floor_and_below() -> None:
    _fail_on(layer_violations(HARNESS), "imports against the layering (FLOORS, bottom up)")


def test_the_module_import_graph_has_no_cycles() -> None:
    _fail_on(cycle_violations(HARNESS), "import cycles (TYPE_CHECKING imports included)")


def test_function_local_harness_imports_say_why_they_are_deferred() -> None:
    _fail_on(local_import_violations(HARNESS), "undeclared function-local imports")


# -- each rule bites ---------------------------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "harness"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for package in {p.parent for p in root.rglob("*.py")}:
        (package / "__init__.py").touch()
    return root


def test_layer_rule_reports_back_imports_however_they_are_spelled(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "errors.py": "",
            "record/store.py": "from harness.load.users import User\n",
            "record/buckets.py": "from ..load import users\n",
            "record/events.py": "from harness import load\n",
            "record/sink.py": "def f():\n    import importlib\n"
            "    return importlib.import_module('harness.verdict')\n",
            "load/users.py": "from harness.record import store\nfrom harness import errors\n",
            "verdict/__init__.py": "",
            "gameday/desk.py": "from harness.capacity import probe\n",
            "capacity/probe.py": "from harness.run import pipeline\n",
            "run/pipeline.py": "",
            "engine.py": "",
        },
    )
    found = "\n".join(layer_violations(root))
    assert "harness/record/store.py:1: from harness.load.users import User" in found
    assert "harness/record/buckets.py:1: from ..load import users" in found
    assert "harness/record/events.py:1: from harness import load" in found
    assert "harness/record/sink.py:3: import_module('harness.verdict')" in found
    assert "gameday may not import its sibling capacity" in found
    assert "layer 'engine' is on no floor" in found
    assert "load/users.py" not in found
    assert "capacity/probe.py" not in found
    assert len(layer_violations(root)) == 6


def test_layer_rule_follows_an_edited_table(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"safety.py": "from harness import record\n", "record/x.py": ""})
    assert layer_violations(root) == []
    moved = tuple(f for f in FLOORS if f not in ("record", "safety"))
    moved = (moved[0], "safety", "record", *moved[1:])
    assert layer_violations(root, moved) == [
        "harness/safety.py:1: from harness import record  -- "
        "safety (floor 2) may not import record (floor 3, above)"
    ]


def test_cycle_rule_reports_the_path_type_checking_included(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "proxy/link.py": "from harness.proxy.toxics import Toxic\n",
            "proxy/toxics.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from .link import Stage\n",
            "proxy/api.py": "from harness.proxy import link\n",
            # A function-local import is rule 3's business, not a cycle.
            "stack/a.py": "from harness.stack import b\n",
            "stack/b.py": "def f():\n    from harness.stack import a  # deferred: test\n",
        },
    )
    assert cycle_violations(root) == [
        "cycle: harness.proxy.link -> harness.proxy.toxics -> harness.proxy.link\n"
        "    harness/proxy/link.py:1: from harness.proxy.toxics import Toxic\n"
        "    harness/proxy/toxics.py:3: from .link import Stage  (under TYPE_CHECKING)"
    ]


def test_local_import_rule_wants_a_deferred_comment(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "stack/compose.py": "def up():\n"
            "    import uvloop\n"  # not ours: free to defer
            "    from harness.errors import StackError\n"
            "    # deferred: the Docker SDK is heavy and optional\n"
            "    from harness.stack import docker_sdk\n"
            "    from harness.stack import engine  # deferred: pulls in docker\n"
            "    # a comment that is not the marker\n"
            "    from harness.stack import other\n",
            "errors.py": "",
        },
    )
    assert local_import_violations(root) == [
        "harness/stack/compose.py:3: from harness.errors import StackError  -- "
        "function-local import without '# deferred: <why>'",
        "harness/stack/compose.py:8: from harness.stack import other  -- "
        "function-local import without '# deferred: <why>'",
    ]
