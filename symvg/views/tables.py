"""Plain text and Markdown tables: how every tabular result is laid out, in the CLI and in the views."""

from __future__ import annotations

import re
from typing import Any, Sequence

import sympy as sp

from symvg import magnitude

BRIEF_DIGITS = 10
"""Significant digits of a long number in a table cell (JSON keeps it exact)."""


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain aligned text table."""
    cells = [[str(h) for h in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    r"""A GitHub-flavoured Markdown table. A ``|`` inside a cell (``sup|φ'|``, SymPy's ``Eq(z, 0) | (z < 0)``)
    is escaped, else it would split the cell; one already escaped is kept.

    >>> print(markdown_table([["relu", "Eq(z, 0) | (z < 0)"]], ["name", "sup|φ'|"]))
    | name | sup\|φ'\| |
    |---|---|
    | relu | Eq(z, 0) \| (z < 0) |
    """
    def cell(c: Any) -> str:
        return re.sub(r"(?<!\\)\|", r"\\|", str(c))

    out = ["| " + " | ".join(map(cell, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def brief(v: sp.Basic) -> str:
    """``v`` for a table cell: a number too long to read (SELU's λα is a 62-digit rational) is rounded
    to BRIEF_DIGITS significant digits and the cell is marked ≈.

    >>> brief(sp.Rational(1, 4)), brief(sp.Rational(10**40 + 1, 10**40))
    ('1/4', '≈ 1 + 1e-40')
    >>> brief(sp.FiniteSet(sp.Float("2.39935728051546766783273969728", 30)))
    '≈ {2.399357281}'

    A number is evaluated whole, never from rounded parts: a base rounded to 10 digits and then raised
    to the 10^7th power would be wrong from the fifth digit ((1 + 1e-7)^(10^7) = 2.718281693, not 2.7183).

    >>> brief(sp.Pow(sp.Rational(10000001, 10**7), 10**7, evaluate=False))
    '≈ 2.718281693'
    """
    long = {a: sp.Float(a, BRIEF_DIGITS) for a in v.atoms(sp.Rational, sp.Float)
            if len(str(abs(a))) > BRIEF_DIGITS + 2}
    if not long:
        return str(v)
    if isinstance(v, sp.Expr) and v.is_number:   # of any magnitude: (1/4)^(10^20) has an exponent of 6e19
        return f"≈ {magnitude.not_one(v, magnitude.sci(v, BRIEF_DIGITS))}"
    return f"≈ {v.xreplace(long)}"


def short(v: sp.Basic) -> str:
    """:func:`brief`, cut to 60 characters."""
    s = brief(v)
    return s if len(s) <= 60 else s[:57] + "..."


def approx(v: sp.Expr, width: int = 40) -> str:
    """``exact ≈ 6 digits`` for text output, of any magnitude; the exact part only when it is short
    (``--format json`` keeps it whole), so 1e-3495 is never shown as ≈ 0 nor 1e999 as inf.

    >>> approx(sp.Rational(1, 1024)), approx(sp.Pow(sp.Rational(1, 2), 10**4, evaluate=False))
    ('1/1024 ≈ 0.000976562', '(1/2)**10000 ≈ 5.01237e-3011')
    >>> approx(sp.Integer(10) ** 999)
    '≈ 1.0e+999'
    >>> approx((1 - sp.Rational(1, 10**10)) ** 100)    # 1 - 9.9999995e-9: its rounded gap is not its exact value
    '≈ 1 - 1e-08'
    """
    value, exact = magnitude.sci(v), magnitude.short(v, width)
    if exact == str(v) and (exact != value or (v.is_Rational and _fits(v, width))):   # the short text is exact
        return exact if exact == value else f"{exact} ≈ {value}"
    # short's fallback is rounded too (1 - 1e-08 for (1 - 1e-10)^100): never printed after "=" as if exact
    return f"≈ {exact}" if exact != value else f"≈ {value}"


def _fits(v: sp.Rational, width: int) -> bool:
    return abs(v.p).bit_length() + v.q.bit_length() <= 4 * width and len(str(v)) <= width


__all__ = ["BRIEF_DIGITS", "approx", "brief", "markdown_table", "short", "table"]
