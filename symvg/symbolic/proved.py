"""The catalogue's proofs of γ = sup|φ'|, kept as exact data so that a run need not prove them again.

:func:`~symvg.symbolic.supremum.prove_supremum` takes SymPy 0.1-2 s for a smooth activation, and every
``symvg derive``/``bound`` needs the proof (γ, and the floor inf|φ'| read from the same table). ``proved.json``
beside this file holds each catalogue entry's whole :class:`~symvg.symbolic.supremum.Supremum` -- value,
argmax, every candidate -- keyed by the exact derivative (its ``srepr``). Values are written as text that
symvg's own safe parser reads back (:func:`~symvg.symbolic.parse.parse_expression`: never ``eval``), with
small tags for what it does not read (``oo``, sets, equations, 30-digit Floats). :func:`lookup` answers only for
a derivative identical to one in the table; anything else (``expr:`` activations, ``leaky_relu:0.2``) is
proved as before. The tests prove every entry again and compare exactly, so a table out of date with the
prover or the catalogue fails, and ``SYMVG_REGOLD=1 pytest tests/test_activations.py -k proved_table``
writes it afresh from :func:`table` (read the diff).

>>> from symvg.symbolic.activations import get
>>> lookup(get("sigmoid").derivative).value
1/4
>>> lookup(get("leaky_relu:0.2").derivative) is None      # not in the table: proved on demand
True
>>> encode(sp.Interval.open(0, sp.oo)), decode({"interval": ["0", "oo"], "open": [True, True]})
({'interval': ['0', 'oo'], 'open': [True, True]}, Interval.open(0, oo))
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import sympy as sp

from symvg.symbolic.parse import parse_expression, z
from symvg.symbolic.supremum import Candidate, Supremum, prove_supremum

TABLE = Path(__file__).with_name("proved.json")
"""The table: ``{"entries": {name: {"derivative": srepr, "supremum": ...}}}``."""

_INFINITIES = {"oo": sp.oo, "-oo": -sp.oo}
_SETS = {"Reals": sp.S.Reals, "EmptySet": sp.S.EmptySet}


def encode(v: Any) -> Any:
    """JSON data for one value of a proof: an expression, ±oo, a Float, a set or an equation.

    Refuses (ValueError) anything :func:`decode` would not give back identically.
    """
    if isinstance(v, sp.Float):
        out: Any = {"float": str(sp.Float(v, 40)), "prec": v._prec}  # 40 digits pin 103 bits; 30 would not
    elif v in (sp.oo, -sp.oo):
        out = str(v)
    elif isinstance(v, sp.Interval):
        out = {"interval": [encode(v.start), encode(v.end)], "open": [bool(v.left_open), bool(v.right_open)]}
    elif isinstance(v, sp.FiniteSet):
        out = {"finite": [encode(a) for a in v.args]}
    elif isinstance(v, sp.Union):
        out = {"union": [encode(a) for a in v.args]}
    elif v is sp.S.Reals or v is sp.S.EmptySet:
        out = {"set": str(v)}
    elif isinstance(v, sp.Eq):
        out = {"eq": [encode(v.lhs), encode(v.rhs)]}
    elif isinstance(v, sp.Expr):
        out = str(v)
    else:
        raise ValueError(f"cannot keep {type(v).__name__} {v} in the table")
    if decode(out) != v:
        raise ValueError(f"{v} would not read back identically from {out!r}")
    return out


def decode(data: Any) -> Any:
    """The value :func:`encode` wrote, rebuilt: text by :func:`~symvg.symbolic.parse.parse_expression`, tags by
    hand."""
    if isinstance(data, str):
        return _INFINITIES[data] if data in _INFINITIES else parse_expression(data)
    if "float" in data:
        return sp.Float(data["float"], precision=data["prec"])
    if "interval" in data:
        return sp.Interval(*map(decode, data["interval"]), *data["open"])
    if "finite" in data:
        return sp.FiniteSet(*map(decode, data["finite"]))
    if "union" in data:
        return sp.Union(*map(decode, data["union"]))
    if "set" in data:
        return _SETS[data["set"]]
    if "eq" in data:
        return sp.Eq(*map(decode, data["eq"]))
    raise ValueError(f"no value is written as {data!r}")


def to_data(s: Supremum) -> dict:
    """A proof as JSON data (see :func:`encode`)."""
    return {"value": encode(s.value), "argmax": encode(s.argmax), "attained": s.attained, "exact": s.exact,
            "equation": None if s.equation is None else encode(s.equation),
            "candidates": [{"where": encode(c.where), "value": encode(c.value), "attained": c.attained,
                            "reason": c.reason} for c in s.candidates]}


def from_data(d: dict) -> Supremum:
    """The proof :func:`to_data` wrote."""
    return Supremum(decode(d["value"]), decode(d["argmax"]), d["attained"], d["exact"],
                    None if d["equation"] is None else decode(d["equation"]),
                    tuple(Candidate(decode(c["where"]), decode(c["value"]), c["attained"], c["reason"])
                          for c in d["candidates"]))


def table(derivatives: dict[str, sp.Expr]) -> dict:
    """The table for ``{name: derivative}``, every entry proved now (no time budget).

    >>> table({"gauss": sp.exp(-z**2)})["entries"]["gauss"]["supremum"]["value"]
    '1'
    """
    return {"entries": {name: {"derivative": sp.srepr(d), "supremum": to_data(prove_supremum(d, None))}
                        for name, d in derivatives.items()}}


@lru_cache(maxsize=1)
def _index() -> dict[str, dict]:
    entries = json.loads(TABLE.read_text(encoding="utf-8"))["entries"] if TABLE.exists() else {}
    return {e["derivative"]: e["supremum"] for e in entries.values()}


@lru_cache(maxsize=None)
def _decoded(key: str) -> Supremum:
    return from_data(_index()[key])


def lookup(derivative: sp.Expr) -> Supremum | None:
    """The table's proof for exactly this derivative, or None (then it is proved as usual)."""
    key = sp.srepr(derivative)
    return _decoded(key) if key in _index() else None


def dumps(table: dict) -> str:
    """The table as JSON text, one entry's head and one candidate a line, so a reader can check it by eye.

    >>> json.loads(dumps(table({"one": sp.Integer(1)}))) == table({"one": sp.Integer(1)})
    True
    """
    one = lambda v: json.dumps(v, ensure_ascii=False)  # noqa: E731
    lines = []
    for name, e in table["entries"].items():
        s = e["supremum"]
        head = {k: v for k, v in s.items() if k != "candidates"}
        rows = ",\n".join(f"    {one(c)}" for c in s["candidates"])
        lines.append(f'  {one(name)}: {{"derivative": {one(e["derivative"])},\n   "supremum": {one(head)[:-1]}, '
                     f'"candidates": [\n{rows}]}}}}')
    return '{"entries": {\n' + ",\n".join(lines) + "\n}}\n"


__all__ = ["TABLE", "decode", "dumps", "encode", "from_data", "lookup", "table", "to_data"]
