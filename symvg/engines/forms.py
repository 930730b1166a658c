"""The proved local forms of the special activation kinds, as data: named steps, then φ and φ'.

One job: hold, in one place, how φ(z) and φ'(z) are *evaluated* for the kinds that
:func:`symvg.engines.kernels.local` recognises by proved identities (``logistic``, ``tanh``, ``identity``).
Every target prints these same SymPy expressions with a small printer of its own, as sympy.printing does:
the NumPy in-place kernel (:func:`symvg.engines.kernels.layer_kernel`), the C/CUDA source
(:func:`symvg.engines.kernels.elementwise_source`, reused by :mod:`symvg.engines.cuda`) and the numba pair
(:func:`symvg.engines.fused_kernel.pair_source`). No target writes a formula of its own.

A :class:`Forms` is straight-line code: ``steps`` name intermediates in order (each may use z and the
steps before it), then φ and φ' use them. Vectorised helpers appear as SymPy functions each printer maps
to its own name (:class:`expneg`: ``vexpneg`` in numba, ``exp`` in C and NumPy). :meth:`Forms.expanded`
substitutes the steps and rewrites the helpers, which is what the tests prove equal to the catalogue's
φ and φ'.

>>> print(SAFE["logistic"])
e = expneg(-Abs(z)); s = 1/(e + 1); es = e*s; φ = Piecewise((s, z >= 0), (es, True)); φ' = es*s
>>> SAFE["tanh"].expanded()
(tanh(z), 4*exp(-2*Abs(z))/(1 + exp(-2*Abs(z)))**2)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy as sp

from symvg.symbolic.parse import z


class expneg(sp.Function):
    """e^x where x ≤ 0 is known (the logistic's and tanh's e^{-|z|}): an exp that never overflows, so a
    target may use a cheaper one (numba: ``vmath.vexpneg``, one clamp instead of two). Printed as ``exp``
    in C; :meth:`Forms.expanded` replaces it by :class:`sympy.exp`."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return self

    def _ccode(self, printer: Any) -> str:
        return f"exp({printer._print(self.args[0])})"


@dataclass(frozen=True)
class Forms:
    """φ and φ' as straight-line code: ``steps`` ((symbol, expression), in order), then ``phi`` and ``dphi``.

    ``typed``: the constants are small integers, exact in every float dtype, and meant in the dtype being
    evaluated (numba prints them as ``FT(n)``, so a float32 kernel stays float32).
    """

    steps: tuple[tuple[sp.Symbol, sp.Expr], ...]
    phi: sp.Expr
    dphi: sp.Expr
    typed: bool = False

    def expanded(self) -> tuple[sp.Expr, sp.Expr]:
        """φ and φ' in z alone: steps substituted (last first), each helper replaced by the function it computes."""
        phi, dphi = self.phi, self.dphi
        for sym, expr in reversed(self.steps):
            phi, dphi = phi.subs(sym, expr), dphi.subs(sym, expr)
        return phi.replace(expneg, sp.exp), dphi.replace(expneg, sp.exp)

    def __str__(self) -> str:
        return "; ".join([*(f"{s} = {e}" for s, e in self.steps), f"φ = {self.phi}", f"φ' = {self.dphi}"])


_e, _s, _es, _r, _h = sp.symbols("e s es r h_", real=True)

SAFE: dict[str, Forms] = {
    # e = e^{-|z|} ∈ (0, 1], s = 1/(1+e): φ = s or e·s, φ' = e·s² -- one exp, no overflow for any finite z,
    # no cancellation (the textbook φ' = h(1 − h) loses digits as h → 1)
    "logistic": Forms(((_e, expneg(-sp.Abs(z))), (_s, 1 / (1 + _e)), (_es, _e * _s)),
                      sp.Piecewise((_s, z >= 0), (_es, True)), _es * _s, typed=True),
    # φ' = sech²z = 4e/(1 + e)², e = e^{-2|z|} ∈ (0, 1]: 1 − tanh²z keeps 3 digits at z = 15, this keeps all
    "tanh": Forms(((_e, expneg(-2 * sp.Abs(z))),), sp.tanh(z), 4 * _e / (1 + _e) ** 2, typed=True),
    "identity": Forms((), z, sp.Integer(1), typed=True),
}
"""The forms every target can evaluate as written: no step overflows for a finite z."""

TRAPPED: dict[str, Forms] = {
    # e = e^z, r = 1/(1+e) = 1 − σ (accurately), φ = e·r, φ' = φ·r: four operations besides the exp (the
    # safe form needs |z|, a negation and a select more). Overflows for z > 709, where e = inf gives NaN.
    "logistic": Forms(((_e, sp.exp(z)), (_r, 1 / (1 + _e)), (_h, _e * _r)), _h, _h * _r, typed=True),
}
"""Cheaper forms, exact where nothing overflows, for a target that traps floating-point errors (NumPy under
:func:`symvg.engines.kernels.fp_guard`): it evaluates these, then redoes the entries an overflow left
non-finite with :data:`SAFE`'s forms."""

__all__ = ["Forms", "SAFE", "TRAPPED", "expneg"]
