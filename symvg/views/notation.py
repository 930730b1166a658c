r"""How each target writes a derivation's pieces: names, partials, φ', values, argmaxes -- as data.

Following the design of :mod:`sympy.printing`, the forms are tables and each target is a small
printer (:mod:`symvg.views.derivation`). :data:`NAMES` writes every catalogue activation in each
target; a name it lacks (a user expression) is φ.

>>> TEXT.partial("h3", "z3"), UNICODE.partial("h3", "z3")
('dh3/dz3', '∂h₃/∂z₃')
>>> LATEX.act("erf", "z"), UNICODE.act("selu", "z")
("\\operatorname{erf}'\\left(z\\right)", "SELU'(z)")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from symvg.symbolic.activations import Activation

# How each catalogue activation is written in Unicode. Its text name is the catalogue's own, and LaTeX sets
# the Unicode name upright unless TeX has a symbol for it (_TEX). tests/test_render.py holds NAMES against
# the catalogue, so a new activation cannot print as φ by omission.
_UNICODE = {"sigmoid": "σ", "tanh": "tanh", "relu": "ReLU", "leaky_relu": "LeakyReLU", "elu": "ELU",
            "softplus": "softplus", "gelu": "GELU", "silu": "SiLU", "hard_sigmoid": "hardsigmoid", "linear": "id",
            "erf": "erf", "selu": "SELU"}
_TEX = {"sigmoid": r"\sigma", "tanh": r"\tanh"}
NAMES: dict[str, tuple[str, str, str]] = {
    name: (name, u, _TEX.get(name, rf"\operatorname{{{u}}}")) for name, u in _UNICODE.items()}
"""The name of each catalogue activation per target: (text, unicode, LaTeX)."""

TARGETS = ("text", "unicode", "latex")

DIGITS = 10
"""Significant digits of the decimal shown for a value that is not a plain rational."""

LONG = 40
"""An exact value longer than this (as SymPy text) is shown by its decimal alone."""

_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_MUL = PRECEDENCE["Mul"]


def sub(name: object) -> str:
    """Digits as Unicode subscripts: ``h3`` → ``h₃``.

    >>> sub("dh12")
    'dh₁₂'
    """
    return str(name).translate(_SUBSCRIPTS)


def tex_text(s: str) -> str:
    r"""Text safe inside ``\text{}``.

    >>> tex_text("leaky_relu(negative_slope=1/100)")
    'leaky\\_relu(negative\\_slope=1/100)'
    """
    table = {"\\": r"\textbackslash{}", "_": r"\_", "^": r"\^{}", "#": r"\#", "$": r"\$", "%": r"\%",
             "&": r"\&", "~": r"\~{}", "{": r"\{", "}": r"\}"}
    return "".join(table.get(c, c) for c in s)


def block(rows: Sequence[str], name: str) -> str:
    r"""LaTeX rows in one ``\begin{name}…\end{name}`` block."""
    return f"\\begin{{{name}}}\n" + " \\\\\n".join(rows) + f"\n\\end{{{name}}}"


def value_parts(v: sp.Expr) -> list[tuple[str, sp.Expr]]:
    """A value as (relation, expression) pairs: exact, its decimal, or both; relation ``=`` or ``≈``.

    >>> value_parts(sp.Rational(1, 4)), value_parts(sp.exp(-1))
    ([('=', 1/4)], [('=', exp(-1)), ('≈', 0.3678794412)])
    """
    if v.is_Rational:
        return [("=", v)]
    a = v.evalf(DIGITS)
    return [("≈", a)] if len(sp.sstr(v)) > LONG else [("=", v), ("≈", a)]


@dataclass(frozen=True)
class Notation:
    """One target's forms. ``target`` indexes :data:`NAMES`; the strings are %-templates."""

    target: str
    symbol: Callable[[Any], str]
    expr: Callable[[Any], str]
    factor: Callable[[sp.Expr], str]
    partial_form: str
    act_form: str
    phi: str
    times: str
    gap: str
    approx: str
    unbounded: str
    not_attained: str
    at: str
    within: str

    def partial(self, num: object, den: object) -> str:
        return self.partial_form % (self.symbol(num), self.symbol(den))

    def name(self, activation: str) -> str:
        got = NAMES.get(activation)
        return self.phi if got is None else got[TARGETS.index(self.target)]

    def act(self, activation: str, arg: object) -> str:
        """φ'(arg) with φ written as this target writes the activation."""
        return self.act_form % (self.name(activation), arg)

    def relation(self, rel: str) -> str:
        return self.approx if rel == "≈" else rel

    def value(self, v: sp.Expr) -> str:
        return " ".join(f"{self.relation(r)} {self.expr(e)}" for r, e in value_parts(v))

    def argmax(self, a: Activation) -> str:
        """Where sup|φ'| is attained (a point or a set), or why there is no such point."""
        sup = a.supremum
        if not sup.bounded:
            return self.unbounded
        if not sup.attained:
            return self.not_attained
        p = sup.argmax_point
        return self.at % self.expr(p) if p is not None else self.within % self.expr(sup.argmax)


def _pretty(e: Any) -> str:
    return sp.pretty(e, use_unicode=True)


_WORDS = dict(unbounded="unbounded: no ceiling", not_attained="approached, not attained", at="at z = %s")
TEXT = Notation("text", symbol=str, expr=sp.sstr, factor=lambda e: StrPrinter().parenthesize(e, _MUL, strict=True),
                partial_form="d%s/d%s", act_form="%s'(%s)", phi="phi", times=" * ", gap="...", approx="~=",
                within="for z in %s", **_WORDS)
UNICODE = Notation("unicode", symbol=sub, expr=_pretty, factor=_pretty, partial_form="∂%s/∂%s", act_form="%s'(%s)",
                   phi="φ", times=" ⋅ ", gap="⋯", approx="≈", within="for z ∈ %s", **_WORDS)
LATEX = Notation("latex", symbol=sp.latex, expr=sp.latex,
                 factor=lambda e: LatexPrinter().parenthesize(e, _MUL, strict=True),
                 partial_form=r"\frac{\partial %s}{\partial %s}", act_form=r"%s'\left(%s\right)", phi=r"\varphi",
                 times=r" \cdot ", gap=r"\cdots", approx=r"\approx", unbounded=r"\text{(unbounded: no ceiling)}",
                 not_attained=r"\text{(approached, not attained)}", at=r"\text{at } z = %s",
                 within=r"\text{for } z \in %s")

__all__ = ["LATEX", "NAMES", "Notation", "TARGETS", "TEXT", "UNICODE", "block", "sub", "tex_text", "value_parts"]
