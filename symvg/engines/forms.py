"""The proved local forms of the special activation kinds, as data: named steps, then φ and φ'.

One job: hold, in one place, how φ(z) and φ'(z) are *evaluated* for the kinds that
:func:`symvg.engines.kernels.local` recognises by proved identities (``logistic``, ``tanh``, ``identity``).
Every target prints these same SymPy expressions with a small printer of its own, as sympy.printing does:
the NumPy in-place kernel (:func:`symvg.engines.kernels.layer_kernel`), the C/CUDA source
(:func:`symvg.engines.csource.elementwise_source`, reused by :mod:`symvg.engines.cuda`) and the numba pair
(:func:`symvg.engines.fused_kernel.pair_source`). No target writes a formula of its own.

A :class:`Forms` is straight-line code: ``steps`` name intermediates in order (each may use z and the
steps before it), then φ and φ' use them. Vectorised helpers appear as SymPy functions each printer maps
to its own name (:class:`expneg`: ``vexpneg`` in numba, ``exp`` in C and NumPy; :class:`tanh_parts`, three
values from one exp, native in numba and written out by :meth:`Forms.written_out` elsewhere).
:meth:`Forms.expanded` substitutes the steps and replaces the helpers, which is what the tests prove equal to
the catalogue's φ and φ'. Two columns: :data:`ELEMENT`, for targets that compute one sample at a time, and
:data:`ARRAY`, for targets that make a pass over an array per operation, where fewer passes win.

>>> print(ELEMENT["logistic"])
e = expneg(-Abs(z)); s = 1/(e + 1); es = e*s; φ = Piecewise((s, z >= 0), (es, True)); φ' = es*s
>>> print(ELEMENT["tanh"])
(t, e, r) = tanh_parts(Abs(z)); φ = copysign(t, z); φ' = 4*e*r*r
>>> ARRAY["tanh"].expanded()
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


class copysign(sp.Function):
    """|x| with the sign of y (C's ``copysign``, NumPy's ``np.copysign``, ``math.copysign`` in numba): tanh z
    from tanh |z|, -0 and NaN kept."""

    nargs = 2

    def _ccode(self, printer: Any) -> str:
        return f"copysign({printer._print(self.args[0])}, {printer._print(self.args[1])})"


class tanh_parts(sp.Function):
    """(tanh a, e = e^{-2a}, r = 1/(1 + e)) for a ≥ 0, from one exp: numba's ``vmath.tanh_parts``. A target
    without it computes :meth:`parts`."""

    nargs = 1

    def parts(self, t: sp.Symbol, e: sp.Symbol, r: sp.Symbol) -> list[tuple[sp.Symbol, sp.Expr]]:
        """The three values as steps, into the symbols ``t``, ``e``, ``r``."""
        a = self.args[0]
        return [(t, sp.tanh(a)), (e, expneg(-2 * a)), (r, 1 / (1 + e))]


Step = tuple[Any, sp.Expr]
"""(symbol, expression), or (Tuple of symbols, a helper returning that many values, such as tanh_parts)."""


@dataclass(frozen=True)
class Forms:
    """φ and φ' as straight-line code: ``steps`` (:data:`Step`, in order), then ``phi`` and ``dphi``.

    ``proved``: a row of the tables below, whose steps stay finite for every finite z (except where
    ``overflows``) and whose constants are small integers, exact in every float dtype and meant in the dtype
    being evaluated. False for an activation's own formulas (:func:`symvg.engines.kernels.evaluation_forms`),
    which may overflow anywhere, so every target checks (or repairs) what they give.

    ``overflows``: some step overflows for a finite z (e^z); only a target that traps floating-point errors
    takes such forms, and redoes the entries they left non-finite.
    """

    steps: tuple[Step, ...]
    phi: sp.Expr
    dphi: sp.Expr
    overflows: bool = False
    proved: bool = True

    def written_out(self) -> tuple[tuple[sp.Symbol, sp.Expr], ...]:
        """The steps with each helper that returns several values replaced by its :meth:`tanh_parts.parts`:
        what a target without the helper computes."""
        out: list[tuple[sp.Symbol, sp.Expr]] = []
        for sym, expr in self.steps:
            out += expr.parts(*sym) if isinstance(sym, sp.Tuple) else [(sym, expr)]
        return tuple(out)

    def expanded(self) -> tuple[sp.Expr, sp.Expr]:
        """φ and φ' in z alone: steps substituted (last first), each helper replaced by the function it computes."""
        phi, dphi = self.phi, self.dphi
        for sym, expr in reversed(self.written_out()):
            phi, dphi = phi.subs(sym, expr), dphi.subs(sym, expr)
        plain = {expneg: sp.exp, copysign: lambda x, y: sp.Abs(x) * sp.sign(y)}
        for f, g in plain.items():
            phi, dphi = phi.replace(f, g), dphi.replace(f, g)
        return phi, dphi

    def __str__(self) -> str:
        return "; ".join([*(f"{s} = {e}" for s, e in self.steps), f"φ = {self.phi}", f"φ' = {self.dphi}"])


_e, _s, _es, _r, _h, _t = sp.symbols("e s es r h_ t", real=True)

ELEMENT: dict[str, Forms] = {
    # e = e^{-|z|} ∈ (0, 1], s = 1/(1+e): φ = s or e·s, φ' = e·s² -- one exp, no overflow for any finite z,
    # no cancellation (the textbook φ' = h(1 − h) loses digits as h → 1)
    "logistic": Forms(((_e, expneg(-sp.Abs(z))), (_s, 1 / (1 + _e)), (_es, _e * _s)),
                      sp.Piecewise((_s, z >= 0), (_es, True)), _es * _s),
    # φ' = sech²z = 4e·r², e = e^{-2|z|} ∈ (0, 1], r = 1/(1 + e): 1 − tanh²z keeps 3 digits at z = 15, this
    # keeps all; tanh |z|, e and r from one exp
    # (4e·r)·r, not 4e·r²: within 4 ulp of sech²z (tests/test_fused.py), r² first is not
    "tanh": Forms(((sp.Tuple(_t, _e, _r), tanh_parts(sp.Abs(z))),), copysign(_t, z),
                  sp.Mul(4, _e, _r, _r, evaluate=False)),
    "identity": Forms((), z, sp.Integer(1)),
}
"""The forms of targets that compute one sample at a time (numba, C/CUDA): one exp per sample, and no step
overflows for a finite z."""

ARRAY: dict[str, Forms] = {
    # e = e^z, r = 1/(1+e) = 1 − σ (accurately), φ = e·r, φ' = φ·r: four passes besides the exp (the element
    # form needs |z|, a negation and a select more). Overflows for z > 709, where e = inf gives NaN.
    "logistic": Forms(((_e, sp.exp(z)), (_r, 1 / (1 + _e)), (_h, _e * _r)), _h, _h * _r, overflows=True),
    # tanh z in one pass (no |z| and copysign around it), φ' = 4e/(1 + e)² with e = e^{-2|z|}: no r to form
    "tanh": Forms(((_e, expneg(-2 * sp.Abs(z))),), sp.tanh(z), 4 * _e / (1 + _e) ** 2),
    "identity": ELEMENT["identity"],
}
"""The forms of targets that compute a whole array per operation (NumPy, CuPy in place): each operation a
pass over the chunk, so fewer passes count more than a second transcendental; the logistic form overflows
and is redone where it did (NumPy traps floating-point errors, :func:`symvg.engines.kernels.fp_guard`)."""

__all__ = ["ARRAY", "ELEMENT", "Forms", "Step", "copysign", "expneg", "tanh_parts"]
