"""No user text is ever evaluated.

1. A static scan (``ast``) of every .py under symvg/ for the ways Python can run text: ``eval``, ``exec``,
   ``__import__``, builtin ``compile``, ``sympify``/``parse_expr``/``S(...)`` (SymPy's string parsers are
   ``eval`` underneath), and ``lambdify`` of a string. ``symvg.engines.numeric.compile`` is a legitimate name, so a
   bare ``compile(...)`` counts only where the module does not define or import its own ``compile``.
2. Hostile expressions through the real CLI (``symvg bound --activation "expr:..."``): each is refused with
   one line and exit 2, in bounded time, and none of them has a side effect.
"""

from __future__ import annotations

import ast
import builtins
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import symvg
from symvg.cli import cli

PACKAGE = Path(symvg.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))

BUILTIN_RUNNERS = {"eval", "exec", "__import__", "compile"}
# nsimplify sympifies a str argument (plot -w ran "__import__('os')..." through it until a hunt found it)
SYMPY_PARSERS = {"sympify", "parse_expr", "S", "parse_latex", "parse_mathematica", "_sympify", "nsimplify"}


def _own_names(tree: ast.Module) -> set[str]:
    """Names the module binds itself at top level (def, class, import, assignment): they shadow builtins."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _is_text(node: ast.AST) -> bool:
    """A call argument that is (or may be) text: a str literal, an f-string, or anything not a literal number."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (str, bytes))
    return not isinstance(node, (ast.List, ast.Tuple, ast.Dict, ast.Set))


def offences(source: str, filename: str = "<src>") -> list[str]:
    """Every call in ``source`` that can evaluate text, as 'file:line: what'.

    >>> offences("x = eval(s)")
    ['<src>:1: eval']
    >>> offences("from .numeric import compile\\nc = compile(chain)")
    []
    >>> offences("c = compile(src, 'f', 'exec')")
    ['<src>:1: compile']
    >>> offences("import sympy as sp\\nsp.sympify(text)")
    ['<src>:2: sp.sympify']
    >>> offences("sp.S(1)/2")
    []
    >>> offences("getattr(builtins, 'ev' + 'al')(t)")
    ['<src>:1: getattr(builtins, ...)']
    """
    tree = ast.parse(source, filename)
    own = _own_names(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        what = None
        if isinstance(f, ast.Name):
            if f.id in BUILTIN_RUNNERS and f.id not in own:
                what = f.id
            elif f.id in SYMPY_PARSERS - {"S"} or (f.id == "S" and node.args and _is_text(node.args[0])
                                                   and not isinstance(node.args[0], ast.Constant)):
                what = f.id
            elif f.id == "S" and node.args and isinstance(node.args[0], ast.Constant) and isinstance(
                    node.args[0].value, str):
                what = "S('...')"
            elif f.id == "getattr" and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in (
                    "builtins", "__builtins__"):
                what = "getattr(builtins, ...)"
        elif isinstance(f, ast.Attribute):
            base = f.value.id if isinstance(f.value, ast.Name) else ""
            if f.attr in SYMPY_PARSERS - {"S"}:
                what = f"{base}.{f.attr}" if base else f.attr
            elif f.attr == "S" and node.args and isinstance(node.args[0], ast.Constant) and isinstance(
                    node.args[0].value, str):
                what = f"{base}.S('...')"
            elif base in ("builtins", "__builtins__") and f.attr in BUILTIN_RUNNERS:
                what = f"{base}.{f.attr}"
            elif f.attr == "lambdify" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and \
                    isinstance(node.args[1].value, str):
                what = "lambdify of a string"
        if what:
            found.append(f"{filename}:{node.lineno}: {what}")
    return found


def test_sources_found() -> None:
    assert len(SOURCES) >= 15 and PACKAGE / "symbolic" / "parse.py" in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(PACKAGE)) for p in SOURCES])
def test_no_text_evaluation_in_package(path: Path) -> None:
    assert offences(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE))) == []


def test_scanner_catches_each_form() -> None:
    bad = ["eval(t)", "exec(t)", "__import__(t)", "compile(t, 'f', 'eval')", "sympify(t)", "sp.sympify(t)",
           "parse_expr(t)", "sympy.parsing.sympy_parser.parse_expr(t)", "S('x+1')", "sp.S('x')", "S(t)",
           "builtins.eval(t)", "sp.lambdify(z, 'x+1')", "getattr(__builtins__, 'exec')(t)", "sp.nsimplify(w)"]
    for src in bad:
        assert offences(src), src
    assert builtins.compile  # the thing the bare-name rule is about
    fine = ["from .numeric import compile\ncompile(c)", "def compile(x): pass\ncompile(1)", "sp.S(1)",
            "sp.S.Half", "sp.lambdify(z, expr, 'mpmath')", "re.compile(r'x')", "ast.parse(text, mode='eval')"]
    for src in fine:
        assert offences(src) == [], src


# ----------------------------------------------------------------------------- hostile expressions via the CLI

HOSTILE = [
    "__import__('os').system('touch pwned')",
    "9**9**9",
    "10**10**10",
    "(2**64)**(2**64)",
    "z**(10**100)",
    "(z**64)**64",
    "z**(1/1000)",
    "1e999999",
    "9" * 400 + "**9",
    "abs(" * 100 + "z" + ")" * 100,
    "(" * 5000 + "z" + ")" * 5000,
    "-" * 300 + "z",
    "+".join(["z"] * 300),
    "exp(" * 60 + "z" + ")" * 60,
    "z" * 10_000_000,  # 10 MB
    "open('/etc/passwd').read()",
    "z.__class__.__mro__",
    "().__class__.__bases__[0].__subclasses__()",
    "lambda: 0",
    "[z for z in range(10**9)]",
    "globals()",
    "getattr(z, 'evalf')()",
    "exp(z)(1)",
    "f'{z}'",
    "z if z else 1",
    "z; import os",
    "import os",
    "'a' * 10**9",
    "sqrt(-1)",
    "1/0",
    "log(0)",
    "z**z",
    "y + z",
    "Max(z)",
    "exp(z, base=2)",
    "z @ z",
    "z // 2",
    "\x00",
    "   ",
]

TIME_LIMIT = 5.0  # seconds per expression, generous for a loaded CI machine; each takes milliseconds


@pytest.mark.parametrize("text", HOSTILE, ids=[repr(t[:30]) + (f"..{len(t)}" if len(t) > 30 else "")
                                                for t in HOSTILE])
def test_hostile_expression_refused_in_bounded_time(text: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    r = CliRunner().invoke(cli, ["bound", "--activation", f"expr:{text}"])
    elapsed = time.perf_counter() - start
    assert elapsed < TIME_LIMIT, f"took {elapsed:.1f} s"
    assert r.exit_code == 2, (r.exit_code, r.stderr[:300])
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("symvg: error: expression"), lines[:2]
    assert len(lines[0]) < 2000, "the error line echoes a bounded excerpt of the text, not all of it"
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert list(tmp_path.iterdir()) == [], "no side effects"


def test_hostile_count() -> None:
    assert len(HOSTILE) >= 20 and max(map(len, HOSTILE)) >= 10_000_000


@pytest.mark.parametrize("command", [["derive"], ["eval", "--layers", "2", "--samples", "2"],
                                     ["sweep", "--layers", "1..2", "--activations"], ["meanfield", "--sigma-w2", "1",
                                                                                     "-a"]])
def test_hostile_expression_refused_by_every_command_taking_an_activation(command: list[str]) -> None:
    args = command + (["expr:__import__('os')"] if command[-1] in ("--activations", "-a")
                      else ["--activation", "expr:__import__('os')"])
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2 and r.stderr.startswith("symvg: error: ") and "__import__" in r.stderr


def test_valid_expression_still_works() -> None:
    r = CliRunner().invoke(cli, ["bound", "--activation", "expr:z/(1+abs(z))", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    assert '"sup_derivative": "1"' in r.stdout
