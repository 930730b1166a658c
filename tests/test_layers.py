"""The package's layers, held against its imports: no cycle, no import that runs up a layer.

Every import counts, lazy ones inside functions included: a deferred import is still a dependency.
The layers, from the ground up, are those docs/architecture.md draws.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "symvg"

# module-name prefix -> layer rank; a module may import its own rank or lower, never higher
LAYERS = {
    "symvg.errors": 0, "symvg.exact": 0, "symvg.atomic": 0, "symvg.display": 0, "symvg.magnitude": 0,
    "symvg.symbolic": 1,
    "symvg.engines": 2,
    "symvg.theory": 3,
    "symvg.logs": 4, "symvg.diagnose": 4,
    "symvg.views": 5,
    "symvg.cli": 6,
    "symvg.__main__": 7,
}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def _rank(module: str) -> int | None:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len, default=None)
    return None if best is None else LAYERS[best]


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """The package modules ``name`` imports (anywhere in the file), resolved to the longest known name."""
    base = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                anchor = base.split(".")[: len(base.split(".")) - node.level + 1]
                mod = ".".join(anchor + ([mod] if mod else []))
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in mods:
                t = t.rpartition(".")[0]
            if t and t != name and t.startswith("symvg") and t != "symvg" and mods[t].name != "__init__.py":
                found.add(t)
    return found


MODS = _modules()


class _Graph(dict):
    """module -> the package modules it imports, parsed on first use (not while pytest collects)."""

    def __missing__(self, name: str) -> set[str]:
        self[name] = found = _imports(name, MODS[name], MODS)
        return found

    def get(self, name: str, default=None):
        return self[name] if name in MODS else default

    def __iter__(self):
        return iter(MODS)


GRAPH = _Graph()


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in GRAPH if m != "symvg" and _rank(m) is None)
    assert not unplaced, f"modules outside every layer (add them to LAYERS and docs/architecture.md): {unplaced}"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m != "symvg"))
def test_imports_only_downward(module):
    up = sorted(t for t in GRAPH[module] if (_rank(t) or 0) > (_rank(module) or 0))
    assert not up, f"{module} (layer {_rank(module)}) imports a higher layer: {up}"


def test_no_import_cycle():
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        colour[m] = 1
        stack.append(m)
        for t in sorted(GRAPH.get(m, ())):
            if colour.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in colour and (cycle := visit(t)):
                return cycle
        stack.pop()
        colour[m] = 2
        return None

    for m in sorted(GRAPH):
        if m not in colour and (cycle := visit(m)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


MAX_FUNCTION_LINES = 60
LONG_FUNCTIONS: dict[str, str] = {}  # "module.qualname" -> why it may stay longer; nothing else may


def _function_lengths() -> dict[str, int]:
    """Each function's body lines (docstring included: the first body line to the last), by qualified name."""
    out = {}

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out[prefix + child.name] = child.end_lineno - child.body[0].lineno + 1
                walk(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                walk(child, prefix + child.name + ".")
            else:
                walk(child, prefix)

    for name, path in MODS.items():
        walk(ast.parse(path.read_text(encoding="utf-8")), name + ".")
    return out


def test_no_function_over_60_lines():
    lengths = _function_lengths()
    long = {f: n for f, n in lengths.items() if n > MAX_FUNCTION_LINES and f not in LONG_FUNCTIONS}
    assert not long, f"functions over {MAX_FUNCTION_LINES} body lines (split them, or list one with a reason): {long}"
    stale = [f for f in LONG_FUNCTIONS if lengths.get(f, 0) <= MAX_FUNCTION_LINES]
    assert not stale, f"listed as long but no longer over {MAX_FUNCTION_LINES} lines (drop them): {stale}"
