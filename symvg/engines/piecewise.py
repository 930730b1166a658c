"""The NumPy/CuPy target for piecewise φ and φ' (ReLU, leaky ReLU, ELU, SELU, hard sigmoid, a user's ``Piecewise``).

One job: write ``Piecewise((e1, c1), (e2, c2), …, (en, True))`` into an output array without
``numpy.select``. lambdify prints ``select([c1, c2, True], [e1, e2, en])``, which stacks every condition and
choice into new arrays and broadcasts constant pieces (a ReLU's 0 and 1) to full arrays first: 50 ns an
element, a sigmoid's cost four times over. Here each piece is lambdified once and the output is written
with ``out[...] = en``, then ``copyto(out, e_j, where=c_j)`` for j = n-1 … 1, so the first condition that
holds wins, as ``Piecewise`` says; a constant piece is a scalar, never an array. A piece that calls a
function (ELU's expm1 and exp) is evaluated only on the elements where its condition holds
(``out[c] = e_j(z[c])``): those calls cost ten times the indexing, and an e^z where the other piece holds
no longer raises an overflow flag that sends the engines looking for a formula to repair.

Conditions are simplified once to one relation where SymPy can (``Eq(z, 0) | (z < 0)`` → ``z <= 0``), in
bounded time (:data:`SIMPLIFY_SECONDS`).

>>> import numpy as np, sympy as sp
>>> from symvg.symbolic.parse import z
>>> write = writer(sp.Piecewise((0, sp.Eq(z, 0) | (z < 0)), (1, True)), np)
>>> zs, out = np.array([-2.0, 0.0, 3.0]), np.empty(3)
>>> write(zs, out); out.tolist()
[0.0, 0.0, 1.0]
>>> hard = sp.Piecewise((0, z <= -3), (z / 6 + sp.Rational(1, 2), z < 3), (1, True))
>>> zs, out = np.array([-4.0, -3.0, 0.0, 2.9, 3.0]), np.empty(5)
>>> writer(hard, np)(zs, out); out.tolist() == sp.lambdify(z, hard)(zs).tolist()   # numpy.select's answer
True
"""

from __future__ import annotations

from typing import Any, Callable

import sympy as sp

from symvg.symbolic.parse import z
from symvg.symbolic.supremum import within

SIMPLIFY_SECONDS = 2.0
"""The most time SymPy gets to turn one piece's condition into a single relation (else it is kept as written)."""


def writer(expr: sp.Expr, xp: Any, modules: tuple = ("numpy",)) -> Callable[[Any, Any], None]:
    """``write(z, out)``: ``out[...] = expr(z)``, piece by piece where ``expr`` is a ``Piecewise`` whose last
    condition is True (else one lambdified call). ``modules`` as lambdify's (a dict first is allowed). Each
    call lambdifies: callers keep the writer (per activation)."""
    parts = _parts(expr, modules)
    if parts is None:
        f = sp.lambdify(z, expr, modules=list(modules))
        return lambda zs, out: out.__setitem__(Ellipsis, f(zs))
    (last, _, _), rest = parts[-1], parts[-2::-1]

    def write(zs: Any, out: Any) -> None:
        out[...] = last(zs)
        for value, cond, costly in rest:
            c = cond(zs)
            if costly:  # a function call (exp, expm1, erf …) only where its piece holds
                out[c] = value(zs[c])
            else:
                xp.copyto(out, value(zs), where=c)
    return write


def _parts(expr: sp.Expr, modules: tuple) -> tuple | None:
    if not isinstance(expr, sp.Piecewise) or expr.args[-1].cond != sp.true:
        return None
    return tuple((sp.lambdify(z, e, modules=list(modules)), sp.lambdify(z, _one_relation(c), modules=list(modules)),
                  bool(e.atoms(sp.Function))) for e, c in expr.args)


def _one_relation(cond: sp.Basic) -> sp.Basic:
    """``cond`` as one relation in z where SymPy finds one in time (``Eq(z, 0) | (z < 0)`` → ``z <= 0``)."""
    if cond.is_Relational or cond.free_symbols != {z}:
        return cond
    simpler = within(SIMPLIFY_SECONDS, lambda: cond.as_set().as_relational(z))
    return simpler if simpler is not None and simpler.is_Relational else cond


__all__ = ["SIMPLIFY_SECONDS", "writer"]
