"""The safe expression parser: what it builds, exactly, and what it refuses, quickly."""

from __future__ import annotations

import builtins
import time

import pytest
import sympy as sp
import sympy.parsing.sympy_parser

import symvg.symbolic.activations as acts
from symvg.errors import ExpressionError, SymvgInputError
from symvg.symbolic.parse import MAX_CHARS, parse_expression, z


VALID = [
    ("z", z),
    ("  z  ", z),
    ("-z", -z),
    ("+z", z),
    ("2*z + 1", 2 * z + 1),
    ("z - 3", z - 3),
    ("z/(1+abs(z))", z / (1 + sp.Abs(z))),
    ("0.1*z", sp.Rational(1, 10) * z),  # decimal text, not the binary float
    ("1e-3*z", z / 1000),
    ("2.5e2", sp.Integer(250)),
    ("1_000*z", 1000 * z),
    ("0.25", sp.Rational(1, 4)),
    ("z**2", z**2),
    ("z**-1", 1 / z),
    ("z**0.5", sp.sqrt(z)),
    ("z**(1/3)", z ** sp.Rational(1, 3)),
    ("2**z", 2**z),
    ("E**z", sp.exp(z)),
    ("exp(z)", sp.exp(z)),
    ("log(1+exp(z))", sp.log(1 + sp.exp(z))),
    ("tanh(z)", sp.tanh(z)),
    ("sigmoid(z)", 1 / (1 + sp.exp(-z))),
    ("z*sigmoid(z)", z / (1 + sp.exp(-z))),
    ("z/2*(1+erf(z/sqrt(2)))", z / 2 * (1 + sp.erf(z / sp.sqrt(2)))),
    ("sqrt(1+z**2)", sp.sqrt(1 + z**2)),
    ("Max(0, z)", sp.Max(0, z)),
    ("Max(0.01*z, z)", sp.Max(z / 100, z)),
    ("Min(1, Max(-1, z))", sp.Min(1, sp.Max(-1, z))),
    ("Max(z, 0, -z)", sp.Max(z, 0, -z)),
    ("pi*z", sp.pi * z),
    ("3", sp.Integer(3)),  # constants are allowed (a constant activation is a valid, if dull, function)
    ("(2**64)**2", sp.Integer(2) ** 128),
    ("9**9", sp.Integer(387420489)),
    ("(" * 150 + "z" + ")" * 150, z),  # parentheses alone add no depth
]


@pytest.mark.parametrize("text, expected", VALID)
def test_valid_expressions_are_built_exactly(text, expected):
    got = parse_expression(text)
    assert got == expected
    assert got.free_symbols <= {z}


def test_numbers_are_exact_rationals_not_floats():
    e = parse_expression("0.1 + 0.2")
    assert e == sp.Rational(3, 10)
    assert not e.atoms(sp.Float)


def test_z_is_the_catalogue_symbol():
    assert parse_expression("z").is_real is True
    assert parse_expression("z") is z
    assert acts.get("tanh").expr.free_symbols == {z}  # the catalogue is written in the same symbol


HOSTILE = [
    "__import__('os').system('ls')",
    "().__class__",
    "z.__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "lambda: 1",
    "open('x')",
    "9**9**9",
    "z**(10**10)",
    "2**(2**64)",
    "((2**64)**64)**64",
    "(z**64)**64",
    "(" * 10000 + "z" + ")" * 10000,
    "exp(" * 60 + "z" + ")" * 60,  # under the length limit, over the depth limit
    "(" * 210 + "z" + ")" * 210,  # over Python's own parenthesis limit
    "-" * 400 + "z",
    "+".join(["z"] * 240),  # many nodes
    "z" * (10 * 1024 * 1024),  # 10 MB
    "[z for z in ()]",
    "{z for z in ()}",
    "(z for z in ())",
    "f'{z}'",
    "'abc'",
    "b'abc'",
    "z if z else z",
    "z < 1",
    "z and 1",
    "not z",
    "~z",
    "exp(z, base=2)",
    "exp(**{})",
    "exp(*[z])",
    "x",
    "e",
    "sympy.exp(z)",
    "Piecewise((z, z>0))",
    "1j*z",
    "z @ z",
    "z // 2",
    "z % 2",
    "z ^ 2",
    "z << 1",
    "exp()",
    "exp(z, z)",
    "Max(z)",
    "",
    "   ",
    "z[0]",
    "[z]",
    "(z, z)",
    "{'a': z}",
    "(y := z)",
    "z(1)",
    "exp",
    "exp + z",
    "True",
    "None",
    "...",
    "getattr(z, 'x')",
    "1/0",
    "log(0)",
    "(-8)**(1/3)",
    "z**pi",
    "z**z",
    "(-2)**z",
    "z**(1/1000)",
    "1e999999",
    "z = 1",
    "import os",
    "z;z",
    "z\x00",
    "eval('1')",
    "exec('1')",
    "sympify('z')",
    "compile('1','','eval')",
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t[:30]) + (f"..({len(t)})" if len(t) > 30 else ""))
def test_hostile_text_is_refused_fast_with_one_line(text):
    start = time.perf_counter()
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"took {elapsed:.3f}s"
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 400
    assert msg.startswith("expression ")
    assert isinstance(info.value, SymvgInputError)


def test_there_are_at_least_25_hostile_cases():
    assert len(HOSTILE) >= 25


@pytest.mark.parametrize("text, words", [
    ("z.__class__", "dunder"),
    ("sympy.exp(z)", "attribute access 'sympy.exp'"),
    ("open('x')", "call to 'open'"),
    ("x", "name 'x'"),
    ("exp(z, base=2)", "keyword argument 'base='"),
    ("z // 2", "'//'"),
    ("z ^ 2", "use ** for powers"),
    ("lambda: 1", "lambda"),
    ("z < 1", "comparison"),
    ("'abc'", "string literal"),
    ("1j*z", "imaginary number '1j'"),
    ("Max(z)", "Max() got 1 argument; allowed: at least 2"),
    ("exp()", "exp() got 0 arguments; allowed: exactly 1"),
    ("z**(10**10)", "exponent 10000000000 is too large"),
    ("z" * 600, f"600 characters is too long; allowed: at most {MAX_CHARS}"),
    ("[z for z in ()]", "comprehension"),
    ("f'{z}'", "f-string"),
    ("z if z else z", "conditional expression"),
    ("1/0", "infinite or undefined"),
    ("(-8)**(1/3)", "not real"),
])
def test_messages_name_what_was_found_and_what_is_allowed(text, words):
    with pytest.raises(ExpressionError, match=None) as info:
        parse_expression(text)
    assert words in str(info.value)


def test_message_lists_the_allowed_functions():
    with pytest.raises(ExpressionError) as info:
        parse_expression("cos(z)")
    for name in ("exp", "log", "tanh", "sigmoid", "erf", "abs", "sqrt", "Max", "Min"):
        assert name in str(info.value)


def test_non_text_is_refused():
    with pytest.raises(ExpressionError, match="must be text"):
        parse_expression(b"z")  # type: ignore[arg-type]


def test_huge_text_is_refused_before_ast_parse(monkeypatch):
    import ast

    def boom(*a, **k):
        raise AssertionError("ast.parse reached")

    monkeypatch.setattr(ast, "parse", boom)
    with pytest.raises(ExpressionError, match="too long"):
        parse_expression("z+" * 300 + "z")


def test_no_eval_exec_sympify_or_parse_expr_is_reached(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("forbidden evaluator reached")

    monkeypatch.setattr(builtins, "eval", boom)
    monkeypatch.setattr(builtins, "exec", boom)
    monkeypatch.setattr(sp, "sympify", boom)
    monkeypatch.setattr(sympy.parsing.sympy_parser, "parse_expr", boom)
    for text, expected in VALID:
        assert parse_expression(text) == expected
    for text in HOSTILE:
        with pytest.raises(ExpressionError):
            parse_expression(text)


def test_activation_from_expression_proves_supremum_one_at_zero():
    act = acts.get("expr:z/(1+abs(z))")
    assert act.expr == z / (1 + sp.Abs(z))
    sup = act.supremum
    assert sup.value == 1
    assert sup.argmax == sp.FiniteSet(0)
    assert sup.attained


def test_activation_from_expression_refuses_hostile_text():
    with pytest.raises(ExpressionError):
        acts.get("expr:__import__('os')")


def test_parsed_sigmoid_matches_the_catalogue():
    assert sp.simplify(acts.get("expr:sigmoid(z)").derivative - acts.get("sigmoid").derivative) == 0
