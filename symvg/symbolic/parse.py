"""Turn a user's activation text such as ``"z/(1+abs(z))"`` into a SymPy expression -- safely.

Nothing the user types ever reaches ``eval``, ``exec``, ``sympify`` or ``parse_expr``. The text is
parsed by Python's own :func:`ast.parse` (``mode="eval"``: one expression, no statements), and the
tree is then *rebuilt* node by node from a whitelist: a table of node builders, a table of
functions. Anything not in a table is refused with an :class:`~symvg.errors.ExpressionError` that
names what was found and what is allowed:

>>> parse_expression("z/(1+abs(z))")
z/(Abs(z) + 1)
>>> parse_expression("0.1*z + sigmoid(z)**2")
z/10 + (1 + exp(-z))**(-2)
>>> parse_expression("z.__class__")
Traceback (most recent call last):
symvg.errors.ExpressionError: expression 'z.__class__': dunder text ('__') is not allowed; allowed: numbers, z, pi, E, + - * / **, exp, log, tanh, sigmoid, erf, abs, sqrt, Max, Min

Work is bounded before it is done: the text length is checked before :func:`ast.parse`, the node
count and nesting depth before anything is built, and a power's exponent (and the size of a
constant power) before SymPy is asked to evaluate it -- so ``9**9**9`` is refused in microseconds:

>>> parse_expression("9**9**9")
Traceback (most recent call last):
symvg.errors.ExpressionError: expression '9**9**9': exponent 387420489 is too large; allowed: |exponent| <= 64

Numbers are exact: a literal becomes the Rational of its decimal text (``0.1`` is 1/10, not the
binary float 0.1000000000000000055...).

Expressions SymPy can show are never real (``(-8)**(1/3)``, ``1/0``) are refused here. A formula real
only on part of the line (``sqrt(z)``, ``log(z)``, ``1/z``) parses, and is refused as an *activation*
by :meth:`symvg.symbolic.activations.Activation.from_expression`, which asks where it leaves the reals.
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction
from typing import Callable

import sympy as sp

from symvg.errors import ExpressionError

z = sp.Symbol("z", real=True)
"""The pre-activation variable every activation is written in (the catalogue\'s and the user\'s)."""

MAX_CHARS = 500
"""Longest accepted text, checked before :func:`ast.parse` sees it."""

MAX_NODES = 200
"""Most AST nodes accepted (a 500-character expression has far fewer in practice)."""

MAX_DEPTH = 40
"""Deepest accepted nesting of operations and calls."""

MAX_EXPONENT = 64
"""Largest |exponent| of a numeric power; larger powers are where blow-ups hide."""

MAX_ROOT = 64
"""Largest denominator of a rational exponent (z**(1/3) is fine, z**(1/1000) is not)."""

MAX_BITS = 4096
"""Largest size, in bits, of an exact constant built by a power (numerator or denominator)."""

MAX_DECIMAL_EXPONENT = 400
"""Largest |e| in a literal such as ``1e-300``; ``1e999999`` would build a million-digit integer."""

CONSTANTS: dict[str, sp.Expr] = {"z": z, "pi": sp.pi, "E": sp.E}
"""The names a user may write as values."""


def _sigmoid(x: sp.Expr) -> sp.Expr:
    return 1 / (1 + sp.exp(-x))


FUNCTIONS: dict[str, tuple[Callable[..., sp.Expr], int, int | None]] = {
    # name: (builder, fewest arguments, most arguments or None for no limit)
    "exp": (sp.exp, 1, 1),
    "log": (sp.log, 1, 1),
    "tanh": (sp.tanh, 1, 1),
    "sigmoid": (_sigmoid, 1, 1),
    "erf": (sp.erf, 1, 1),
    "abs": (sp.Abs, 1, 1),
    "sqrt": (sp.sqrt, 1, 1),
    "Max": (sp.Max, 2, None),
    "Min": (sp.Min, 2, None),
}
"""The functions a user may call, with their arity."""

ALLOWED = "numbers, z, pi, E, + - * / **, " + ", ".join(FUNCTIONS)

_BINARY: dict[type, Callable[[sp.Expr, sp.Expr], sp.Expr]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    # ast.Pow is built by _power, which checks the exponent first
}

_OPERATOR_TEXT = {ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.BitXor: "^ (use ** for powers)",
                  ast.BitAnd: "&", ast.BitOr: "|", ast.LShift: "<<", ast.RShift: ">>",
                  ast.Not: "not", ast.Invert: "~"}

_REFUSED: dict[type, str] = {
    ast.Attribute: "attribute access", ast.Subscript: "subscript", ast.Lambda: "lambda",
    ast.Compare: "comparison", ast.IfExp: "conditional expression", ast.BoolOp: "boolean operator",
    ast.ListComp: "comprehension", ast.SetComp: "comprehension", ast.DictComp: "comprehension",
    ast.GeneratorExp: "generator expression", ast.JoinedStr: "f-string", ast.FormattedValue: "f-string",
    ast.Starred: "starred argument", ast.List: "list", ast.Tuple: "tuple", ast.Set: "set", ast.Dict: "dict",
    ast.NamedExpr: "assignment expression", ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
    ast.Slice: "slice",
}

_DECIMAL = re.compile(r"[0-9_]*\.?[0-9_]*(?:[eE]([+-]?[0-9_]+))?")


class _Refuse(Exception):
    """Internal: carries the reason; :func:`parse_expression` adds the text and raises ExpressionError."""


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _refuse(what: str, allowed: str = ALLOWED) -> _Refuse:
    return _Refuse(f"{what} is not allowed; allowed: {allowed}")


def parse_expression(text: str) -> sp.Expr:
    """Parse ``text`` into a SymPy expression in :data:`z`, from a whitelist only.

    >>> parse_expression("Max(0, z) + 1e-2*Min(0, z)")
    Max(0, z) + Min(0, z)/100
    >>> parse_expression("tanh(z)**2 - 2**z + pi*E")
    -2**z + tanh(z)**2 + E*pi
    >>> parse_expression("open('x')")
    Traceback (most recent call last):
    symvg.errors.ExpressionError: expression "open('x')": call to 'open' is not allowed; allowed: numbers, z, pi, E, + - * / **, exp, log, tanh, sigmoid, erf, abs, sqrt, Max, Min
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expression must be text, got {type(text).__name__}")
    shown = repr(_short(text, 60))
    try:
        return _parse(text)
    except _Refuse as e:
        raise ExpressionError(f"expression {shown}: {e}") from None


def _parse(text: str) -> sp.Expr:
    # Cheap textual checks first: nothing below runs on a 10 MB string or on dunder text.
    if len(text) > MAX_CHARS:
        raise _Refuse(f"{len(text)} characters is too long; allowed: at most {MAX_CHARS}")
    if not text.strip():
        raise _Refuse("empty text is not allowed; write an expression in z such as 'tanh(z)'")
    if "__" in text:
        raise _refuse("dunder text ('__')")
    try:
        tree = ast.parse(text.strip(), mode="eval")  # strip: leading blanks would be an "indent"
    except (SyntaxError, ValueError) as e:
        raise _Refuse(f"not a valid expression ({getattr(e, 'msg', e)})") from None
    except (RecursionError, MemoryError):
        raise _Refuse(f"nesting too deep; allowed: at most {MAX_DEPTH} levels") from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise _Refuse(f"{count} syntax nodes is too many; allowed: at most {MAX_NODES}")
    result = _build(tree.body, text.strip(), 0)
    return _check_real(result)


def _check_real(e: sp.Expr) -> sp.Expr:
    """Refuse results that are not real functions of z: i, zoo/nan (1/0, log(0)), other symbols."""
    if e.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise _Refuse(f"a result that is infinite or undefined ({e})")
    if e.has(sp.I) or e.is_real is False:
        raise _Refuse(f"a result that is not real ({e})")
    if e.free_symbols - {z}:
        raise _Refuse(f"symbols other than z ({', '.join(map(str, e.free_symbols - {z}))})")
    return e


def _build(node: ast.AST, text: str, depth: int) -> sp.Expr:
    """Rebuild ``node`` as SymPy, dispatching on the node's class; unknown classes are refused."""
    if depth > MAX_DEPTH:
        raise _Refuse(f"nesting too deep; allowed: at most {MAX_DEPTH} levels")
    builder = _BUILDERS.get(type(node))
    if builder is None:
        what = _REFUSED.get(type(node), f"{type(node).__name__} syntax")
        raise _refuse(f"{what} {_segment(node, text)!r}".rstrip())
    return builder(node, text, depth + 1)


def _segment(node: ast.AST, text: str) -> str:
    return _short(ast.get_source_segment(text, node) or "")


def _constant(node: ast.Constant, text: str, depth: int) -> sp.Expr:
    v = node.value
    if isinstance(v, bool) or v is None or v is Ellipsis:
        raise _refuse(f"the constant {v!r}")
    if isinstance(v, complex):
        raise _refuse(f"imaginary number {_segment(node, text)!r}")
    if isinstance(v, (str, bytes)):
        raise _refuse(f"string literal {_short(repr(v))}")
    if isinstance(v, int):
        return sp.Integer(v)
    if isinstance(v, float):
        return _decimal(_segment(node, text))
    raise _refuse(f"the constant {_short(repr(v))}")


def _decimal(literal: str) -> sp.Rational:
    """The exact Rational of a float literal's decimal text: ``0.1`` -> 1/10."""
    m = _DECIMAL.fullmatch(literal)
    if m is None:  # ast accepted it as a float, so this is unreachable in practice
        raise _refuse(f"the number {literal!r}")
    if m.group(1) is not None and abs(int(m.group(1).replace("_", ""))) > MAX_DECIMAL_EXPONENT:
        raise _Refuse(f"number {literal!r} has too large a decimal exponent; "
                      f"allowed: |exponent| <= {MAX_DECIMAL_EXPONENT}")
    fr = Fraction(literal.replace("_", ""))
    return sp.Rational(fr.numerator, fr.denominator)


def _name(node: ast.Name, text: str, depth: int) -> sp.Expr:
    if node.id in CONSTANTS:
        return CONSTANTS[node.id]
    if node.id in FUNCTIONS:
        raise _Refuse(f"function {node.id!r} used without arguments; write {node.id}(...)")
    raise _Refuse(f"name {node.id!r} is not allowed; allowed names: {', '.join(CONSTANTS)}; "
                  f"functions: {', '.join(FUNCTIONS)}")


def _unary(node: ast.UnaryOp, text: str, depth: int) -> sp.Expr:
    if isinstance(node.op, ast.USub):
        return -_build(node.operand, text, depth)
    if isinstance(node.op, ast.UAdd):
        return _build(node.operand, text, depth)
    raise _refuse(f"operator {_OPERATOR_TEXT.get(type(node.op), type(node.op).__name__)!r}")


def _binary(node: ast.BinOp, text: str, depth: int) -> sp.Expr:
    if isinstance(node.op, ast.Pow):
        return _power(node, text, depth)
    op = _BINARY.get(type(node.op))
    if op is None:
        raise _refuse(f"operator {_OPERATOR_TEXT.get(type(node.op), type(node.op).__name__)!r}")
    return op(_build(node.left, text, depth), _build(node.right, text, depth))


def _power(node: ast.BinOp, text: str, depth: int) -> sp.Expr:
    """base ** exponent, with the exponent checked *before* SymPy evaluates anything big."""
    exponent = _build(node.right, text, depth)
    base = _build(node.left, text, depth)
    if exponent.has(z):
        # a^z is real for a constant a > 0; z^z, (-2)^z are not real functions of z.
        if base.has(z) or base.is_positive is not True:
            raise _Refuse(f"power {_segment(node, text)!r} with an exponent in z is not allowed unless the base "
                          "is a positive constant (e.g. 2**z)")
        return sp.Pow(base, exponent)
    if not exponent.is_Rational:
        raise _Refuse(f"exponent {exponent} is not allowed; allowed: an integer or a rational p/q "
                      f"with |value| <= {MAX_EXPONENT}, q <= {MAX_ROOT}")
    if abs(exponent) > MAX_EXPONENT:
        raise _Refuse(f"exponent {_short(str(exponent))} is too large; allowed: |exponent| <= {MAX_EXPONENT}")
    if exponent.q > MAX_ROOT:
        raise _Refuse(f"exponent {exponent} has too large a denominator; allowed: q <= {MAX_ROOT}")
    if base.is_Rational:
        # e.g. (2**64)**64**...: each step is small, their composition is not. Size it before building.
        bits = max(int(base.p).bit_length(), int(base.q).bit_length()) * abs(exponent)
        if bits > MAX_BITS:
            raise _Refuse(f"power {_segment(node, text)!r} builds a constant of about {int(bits)} bits; "
                          f"allowed: at most {MAX_BITS}")
    result = sp.Pow(base, exponent)
    # SymPy folds (z**64)**64 into z**4096: hold the folded exponent to the same limit.
    if isinstance(result, sp.Pow) and result.exp.is_Rational and abs(result.exp) > MAX_EXPONENT:
        raise _Refuse(f"exponent {result.exp} (after combining powers) is too large; "
                      f"allowed: |exponent| <= {MAX_EXPONENT}")
    return result


def _call(node: ast.Call, text: str, depth: int) -> sp.Expr:
    if not isinstance(node.func, ast.Name):
        what = _REFUSED.get(type(node.func), "calling an expression")
        raise _refuse(f"{what} {_segment(node.func, text)!r}")
    name = node.func.id
    if name not in FUNCTIONS:
        raise _refuse(f"call to {name!r}")
    if node.keywords:
        kw = node.keywords[0].arg
        raise _Refuse(f"keyword argument {(kw + '=') if kw else '**'!r} in call to {name!r} is not allowed; "
                      "pass arguments by position")
    fn, lo, hi = FUNCTIONS[name]
    n = len(node.args)
    if any(isinstance(a, ast.Starred) for a in node.args):
        raise _Refuse(f"starred argument in call to {name!r} is not allowed")
    if n < lo or (hi is not None and n > hi):
        want = f"exactly {lo}" if lo == hi else f"at least {lo}"
        raise _Refuse(f"{name}() got {n} argument{'s' if n != 1 else ''}; allowed: {want}")
    return fn(*(_build(a, text, depth) for a in node.args))


_BUILDERS: dict[type, Callable[[ast.AST, str, int], sp.Expr]] = {
    ast.Constant: _constant,
    ast.Name: _name,
    ast.UnaryOp: _unary,
    ast.BinOp: _binary,
    ast.Call: _call,
}
"""The whitelist: the only node classes that are rebuilt; every other class is refused."""


__all__ = ["ALLOWED", "CONSTANTS", "FUNCTIONS", "MAX_BITS", "MAX_CHARS", "MAX_DECIMAL_EXPONENT", "MAX_DEPTH", "MAX_EXPONENT",
           "MAX_NODES", "MAX_ROOT", "parse_expression", "z"]
