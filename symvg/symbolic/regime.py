"""Vanishing and exploding, both ways, as one result: the per-layer factor is squeezed between a floor and a ceiling.

One job: for a chain of one activation with weights of size |w|, say how the gradient's bound moves
with depth -- from above *and* from below -- and for which |w| it stays inside [tol, 1/tol].

    plain     h_k = φ(z_k):          |∂h_N/∂h_0| = ∏ |w|·|φ'(z_j)|   ∈ [(m|w|)^N, (γ|w|)^N]
    residual  h_k = h_{k-1} + φ(z_k): |∂h_N/∂h_0| = ∏ |1 + w·φ'(z_j)| ∈ [(1 − γ|w|)^N, (1 + γ|w|)^N]

with γ = sup|φ'| (proved in :mod:`symvg.symbolic.supremum`) and m = inf|φ'| (:func:`derivative_floor`;
0 for every squashing activation, ε for leaky ReLU, 1 for the identity). The residual floor is used
only while γ|w| < 1; beyond it 1 + wφ' can be 0 and the floor is 0 -- unless φ' takes only a few values
(ReLU, leaky ReLU, hard sigmoid, identity): then the floor is min |1 − |w|·|φ'|| over them, 0 only where
some |w|·|φ'| = 1.

>>> regime("relu", weight=4, layers=3, residual=True).floor   # |1 + wφ'| ∈ {1, 3, 5}: never 0
1

>>> r = regime("sigmoid", weight=1, layers=10, tol="1e-6")
>>> r.floor, r.factor, r.verdict, r.depth_to_cross, r.status
(0, 1/4, 'vanish', 10, 'vanishes')
>>> r.stable_range                         # |w| for which (|w|/4)^10 stays in [1e-6, 1e6]
(2*10**(2/5)/5, 4*10**(3/5))
>>> s = regime("sigmoid", weight=1, layers=10, tol="1e-6", residual=True)
>>> s.floor, s.factor, s.status, s.held_to  # (3/4)^48 ≥ 1e-6 > (3/4)^49: no vanishing up to depth 48
(3/4, 5/4, 'held', 48)
>>> regime("leaky_relu:0.01", weight=1, layers=3, tol="1e-6").floor   # the leaky floor ε|w|
1/100
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy as sp

from symvg.display import Result
from symvg.exact import Number, count, to_rational, unit_interval
from symvg.magnitude import json_float, power
from symvg.symbolic.activations import Activation, ActivationLike, get
from symvg.symbolic.bounds import (UNBOUNDED, Verdict, decide, depth_bound, derivative_floor, floor_cause, size_text,
                                   stable_weight_range)
from symvg.symbolic.powers import NUMERIC_DIGITS, compare_power, depth_to_cross, log10_power, log_rate, side


@dataclass(frozen=True)
class Regime(Result):
    """How the gradient's bounds move with depth, both ways, for one activation and weight size.

    ``floor``/``factor`` bound each layer's |∂h_j/∂h_{j-1}| below/above; the depth-N bounds are their
    N-th powers (:attr:`floor_bound`, :attr:`bound`), kept exact and reported as log10 so they never
    underflow. ``decision`` is :func:`symvg.symbolic.bounds.decide` of the two -- the one verdict every command
    prints -- and ``verdict`` its kind (vanish / explode / neutral / undecided, as depth grows);
    ``depth_to_cross`` the depth at which the *ceiling* leaves [tol, 1/tol] (below tol: vanishing is
    proved there; above 1/tol: exploding is merely no longer excluded). ``status`` reads both bounds
    at depth N:

    * ``vanishes`` ceiling^N < tol;  ``explodes`` floor^N > 1/tol  (certain, whatever the z's)
    * ``held``     tol ≤ floor^N and ceiling^N ≤ 1/tol           (certain: the gradient stays in range)
    * ``may vanish`` / ``may explode`` / ``may vanish or explode``   (the bounds do not decide)

    ``stable_range`` is the |w| for which the *ceiling* stays in [tol, 1/tol] at depth N (for a plain
    chain, :func:`symvg.symbolic.bounds.stable_weight_range`); ``held_range`` the |w| for which *both* do (None
    if no |w| qualifies); ``held_to`` the deepest N at which both still do (None: at every depth).
    """

    activation: str
    residual: bool
    gamma: sp.Expr
    weight: sp.Expr
    layers: int
    tol: sp.Expr
    floor: sp.Expr
    factor: sp.Expr
    verdict: str
    depth_to_cross: int | None
    held_to: int | None
    status: str
    stable_range: tuple[sp.Expr, sp.Expr] | None
    held_range: tuple[sp.Expr, sp.Expr] | None
    decision: Verdict | None = None

    @property
    def bound(self) -> sp.Expr:
        """ceiling^N, exact (an unevaluated power when long: prefer :attr:`bound_text`)."""
        return sp.oo if self.factor is sp.oo else power(self.factor, self.layers)

    @property
    def floor_bound(self) -> sp.Expr:
        """floor^N, exact (an unevaluated power when long)."""
        return power(self.floor, self.layers)

    @property
    def bound_text(self) -> str:
        """``(γ|w|)**N`` as a short SymPy-syntax string (the power left unevaluated)."""
        return "oo" if self.factor is sp.oo else f"({self.factor})**{self.layers}"

    @property
    def log_rate(self) -> float:
        """ln(ceiling): the bound's change per layer on a log scale (negative: vanishing); see :func:`log_rate`."""
        return log_rate(self.factor)

    @property
    def log10_bound(self) -> float:
        """log10 of ceiling^N: finite at any depth (−inf when the factor is 0, +inf with no ceiling)."""
        return log10_power(self.factor, self.layers)

    @property
    def log10_floor(self) -> float:
        """log10 of floor^N (−inf when the floor is 0)."""
        return log10_power(self.floor, self.layers)

    @property
    def stable(self) -> bool:
        """|w| inside :attr:`stable_range`."""
        return self.stable_range is not None and bool(self.stable_range[0] <= self.weight <= self.stable_range[1])

    def as_dict(self) -> dict:
        """JSON-ready: exact values as SymPy strings, floats beside them (logs where floats would underflow)."""
        def rng(r: tuple[sp.Expr, sp.Expr] | None) -> list[str] | None:
            return None if r is None else [str(r[0]), str(r[1])]

        def rng_value(r: tuple[sp.Expr, sp.Expr] | None) -> list[float] | None:
            return None if r is None else [json_float(r[0]), json_float(r[1])]

        def finite(v: float) -> float | None:  # JSON has no inf: null, with the exact string beside it
            return v if math.isfinite(v) else None

        return {"activation": self.activation, "residual": self.residual, "gamma": str(self.gamma),
                "gamma_value": json_float(self.gamma), "weight": str(self.weight), "layers": self.layers,
                "tol": str(self.tol), "floor": str(self.floor), "floor_value": json_float(self.floor),
                "factor": str(self.factor), "factor_value": json_float(self.factor),
                "log_rate": finite(self.log_rate), "bound": self.bound_text, "log10_bound": finite(self.log10_bound),
                "log10_floor": finite(self.log10_floor), "verdict": self.verdict,
                "possible": [] if self.decision is None else list(self.decision.possible),
                "reason": "" if self.decision is None else self.decision.reason,
                "depth_to_cross": self.depth_to_cross, "held_to": self.held_to, "status": self.status,
                "stable_range": rng(self.stable_range), "stable_range_value": rng_value(self.stable_range),
                "held_range": rng(self.held_range), "held_range_value": rng_value(self.held_range),
                "stable": self.stable}


NO_CEILING = "no ceiling"
"""The status when sup|φ'| = ∞: nothing bounds the gradient from above."""


def _held_to(floor: sp.Expr, factor: sp.Expr, t: sp.Expr) -> int | None:
    """Deepest N with tol ≤ floor^N and factor^N ≤ 1/tol; None when that holds at every depth.

    ``depth_to_cross`` gives the first depth past tol strictly; a power landing exactly on tol is
    still inside, hence the one-step correction.
    """
    limits = []
    if floor < 1:
        d = depth_to_cross(floor, t)
        limits.append(d - 1 if compare_power(floor, d, t) < 0 else d)
    if factor > 1:
        d = depth_to_cross(factor, t)
        limits.append(d - 1 if compare_power(factor, d, 1 / t) > 0 else d)
    return min(limits) if limits else None


def _ranges(act: Activation, residual: bool, n: int, t: sp.Expr) -> tuple[tuple | None, tuple | None]:
    g = act.gamma
    if g == 0 or g is sp.oo:
        return None, None
    root = t ** sp.Rational(1, n)                                       # tol^(1/N) < 1
    if residual:
        # ceiling (1+γ|w|)^N ≤ 1/tol  ⇔ |w| ≤ (tol^(-1/N) − 1)/γ; it never drops below 1.
        # floor (1−γ|w|)^N ≥ tol     ⇔ |w| ≤ (1 − tol^(1/N))/γ, the smaller of the two.
        return (sp.Integer(0), (1 / root - 1) / g), (sp.Integer(0), (1 - root) / g)
    stable = stable_weight_range(act, n, t)
    m = derivative_floor(act)
    if m == 0:
        return stable, None
    lo = root / m                                                      # (m|w|)^N ≥ tol
    return stable, ((lo, stable[1]) if bool(lo <= stable[1]) else None)


def _derivative_values(act: Activation) -> list[sp.Expr] | None:
    """Every value |φ'| takes when φ' is piecewise constant (ReLU, leaky ReLU, hard sigmoid, linear), else None."""
    cands = act.supremum.candidates
    if not cands or any(c.reason not in ("constant piece", "kink (convention)") or not c.attained for c in cands):
        return None
    return [sp.Abs(c.value) for c in cands]


def _unbounded_floor_cause(act: Activation, residual: bool, w: sp.Expr) -> str:
    """Why the floor is 0 where γ = ∞: not the missing ceiling (the reason said "sup|phi'| is unbounded")."""
    if residual:
        return "1 + w*phi'(z) can cancel to 0: sup|phi'| is unbounded"
    return floor_cause(act) if w != 0 else "|w| = 0"


def regime(activation: ActivationLike, weight: Number = 1, layers: int = 10, tol: Number = "1e-6",
           residual: bool = False) -> Regime:
    """The :class:`Regime` of ``layers`` layers of ``activation`` with weights of size |``weight``|."""
    act = get(activation)
    layers = count(layers, "layers")
    w = sp.Abs(to_rational(weight, "weight"))
    t = unit_interval(tol, "tol")
    g = act.gamma
    if g is sp.oo:  # no ceiling: no depth law, no range, and held at no depth (held_to 0, not None: "always")
        m = sp.Integer(0) if residual else derivative_floor(act) * w
        d = decide(m, sp.oo, layers, t, cause=_unbounded_floor_cause(act, residual, w))
        if d.kind == "explode":  # a proved floor above 1 needs no ceiling (exp(z) + 2z at |w| = 1: m = 2)
            return Regime(act.label, residual, g, w, layers, t, m, sp.oo, d.kind, None, 0, d.status, None, None, d)
        return Regime(act.label, residual, g, w, layers, t, m, sp.oo, UNBOUNDED, None, 0,
                      NO_CEILING, None, None, decide(m, sp.oo, cause=_unbounded_floor_cause(act, residual, w)))
    if residual:
        # γ|w| within the digits a numeric γ is known to of 1 (side None): which side it lies on is not known,
        # so the floor is the one that always holds, |1 + w·φ'| ≥ 0
        known = side(g * w)
        factor, floor = 1 + g * w, (sp.Max(0, 1 - g * w) if known is not None else sp.Integer(0))
        cause = (f"1 + w*phi'(z) may cancel to 0: gamma*|w| is 1 to the {NUMERIC_DIGITS} digits it is known to"
                 if known is None else "1 + w*phi'(z) can cancel to 0 once gamma*|w| >= 1" if floor == 0
                 else f"1 + w*phi'(z) >= 1 - gamma*|w| = {size_text(floor)}, reached where w*phi'(z) < 0")
        steps = _derivative_values(act)
        if steps is not None and known is not None and floor == 0:
            # φ' takes only these values: 1 + wφ' cancels only where |w|·|φ'| = 1 (relu at |w| = 4: |1 + wφ'| ∈ {1, 3, 5})
            floor = min(abs(1 - w * v) for v in steps)
            shown = ", ".join(sorted(dict.fromkeys(size_text(v) for v in steps)))
            cause = ("1 + w*phi'(z) cancels to 0 where w*phi'(z) = -1" if floor == 0 else
                     f"|1 + w*phi'(z)| >= {size_text(floor)}: phi' takes only the values {shown}")
        d = decide(floor, factor, layers, t, cause)
    else:  # a plain chain is the depth law itself
        law = depth_bound(act, w, layers, t)
        factor, floor, d = law.factor, law.floor, law.decision
    stable, held = _ranges(act, residual, layers, t)
    return Regime(act.label, residual, g, w, layers, t, floor, factor, d.kind, depth_to_cross(factor, t),
                  _held_to(floor, factor, t), d.status, stable, held, d)  # type: ignore[arg-type]


__all__ = ["NO_CEILING", "Regime", "regime"]
