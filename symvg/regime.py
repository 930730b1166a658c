"""Vanishing and exploding, both ways, as one result: the per-layer factor is squeezed between a floor and a ceiling.

One job: for a chain of one activation with weights of size |w|, say how the gradient's bound moves
with depth -- from above *and* from below -- and for which |w| it stays inside [tol, 1/tol].

    plain     h_k = φ(z_k):          |∂h_N/∂h_0| = ∏ |w|·|φ'(z_j)|   ∈ [(m|w|)^N, (γ|w|)^N]
    residual  h_k = h_{k-1} + φ(z_k): |∂h_N/∂h_0| = ∏ |1 + w·φ'(z_j)| ∈ [(1 − γ|w|)^N, (1 + γ|w|)^N]

with γ = sup|φ'| (proved in :mod:`symvg.activations`) and m = inf|φ'| (:func:`derivative_floor`;
0 for every squashing activation, ε for leaky ReLU, 1 for the identity). The residual floor is used
only while γ|w| < 1; beyond it 1 + wφ' can be 0 and the floor is 0.

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
from typing import Union

import mpmath
import sympy as sp

from .activations import Activation, Number, get, to_rational
from .bounds import Verdict, decide, depth_to_cross, stable_weight_range
from .errors import InvalidValueError

ActivationLike = Union[str, Activation]

_DPS = 50
"""Digits for the log-domain comparisons of factor^N with tol (exact comparison breaks ties)."""


def derivative_floor(activation: ActivationLike) -> sp.Expr:
    """m = inf|φ'(z)| over the reals, from the same proof table as γ; 0 where no tighter floor is proved.

    If any candidate of the supremum's proof (a limit at ±∞, a constant piece, a kink) has |φ'| = 0,
    the infimum is 0 exactly. If φ' is constant on every piece, it is the smallest constant. Otherwise
    0 is returned: always a valid floor, perhaps not the tightest (no catalogue entry needs more).

    >>> [derivative_floor(n) for n in ("sigmoid", "relu", "leaky_relu:0.2", "linear", "selu")]
    [0, 0, 1/5, 1, 0]
    """
    act = get(activation)
    cands = act.supremum.candidates
    values = [sp.Abs(c.value) for c in cands]
    if any(v == 0 for v in values):
        return sp.Integer(0)
    if all(c.reason in ("constant piece", "kink (convention)") for c in cands):
        return min(values, key=lambda v: float(v.evalf(30)))
    return sp.Integer(0)


def _where(where: sp.Basic) -> str:
    """A candidate's place as a reader writes it: 'z <= 0', 'z -> -oo', '-3 < z < 3'."""
    if isinstance(where, sp.Interval):
        lo, hi = where.start, where.end
        lt_lo, lt_hi = ("<" if where.left_open else "<="), ("<" if where.right_open else "<=")
        if lo == -sp.oo and hi == sp.oo:
            return "every z"
        if lo == -sp.oo:
            return f"z {lt_hi} {hi}"
        if hi == sp.oo:
            return f"z {'>' if where.left_open else '>='} {lo}"
        return f"{lo} {lt_lo} z {lt_hi} {hi}"
    return f"z -> {where}" if where in (sp.oo, -sp.oo) else f"z = {where}"


def floor_cause(activation: ActivationLike) -> str:
    """Why inf|φ'| is what it is, in words, from the proof's candidates that attain it (ASCII).

    >>> floor_cause("sigmoid"), floor_cause("relu")
    ("sigmoid' -> 0 as z -> -oo, z -> oo: saturation", "relu' = 0 for z <= 0: a unit there passes no gradient")
    >>> floor_cause("leaky_relu:0.2")
    "leaky_relu' = 1/5 for z <= 0"
    """
    act = get(activation)
    m = derivative_floor(act)
    name = act.name
    at = [c for c in act.supremum.candidates if sp.Abs(c.value) == m]
    if not at:
        return f"no floor above {m} is proved for {name}'"
    limits = [_where(c.where) for c in at if c.reason.startswith("limit")]
    pieces = [_where(c.where) for c in at if not c.reason.startswith("limit")]
    parts = []
    if limits:
        parts.append(f"{name}' -> {m} as " + ", ".join(limits) + (": saturation" if m == 0 else ""))
    if pieces:
        parts.append(f"{name}' = {m} for " + " and ".join(pieces)
                     + (": a unit there passes no gradient" if m == 0 else ""))
    return "; ".join(parts)


def _ln(v: sp.Expr) -> mpmath.mpf:
    """ln v at :data:`_DPS` digits for an exact v > 0 (no float underflow: Rationals go through p and q)."""
    with mpmath.workdps(_DPS):
        if v.is_Rational:
            return mpmath.log(v.p) - mpmath.log(v.q)
        return mpmath.log(mpmath.mpf(str(sp.N(v, _DPS))))


def _compare_power(f: sp.Expr, n: int, t: sp.Expr) -> int:
    """Sign of f^n − t (f ≥ 0, t > 0), by logs; exactly when the logs agree to 40 digits."""
    if f == 0:
        return -1
    with mpmath.workdps(_DPS):
        d = n * _ln(f) - _ln(t)
        if abs(d) > mpmath.mpf(10) ** -40:
            return 1 if d > 0 else -1
    diff = sp.nsimplify(f ** n - t) if not f.is_Rational else f ** n - t
    return 0 if diff == 0 else (1 if diff > 0 else -1)


@dataclass(frozen=True)
class Regime:
    """How the gradient's bounds move with depth, both ways, for one activation and weight size.

    ``floor``/``factor`` bound each layer's |∂h_j/∂h_{j-1}| below/above; the depth-N bounds are their
    N-th powers (:attr:`floor_bound`, :attr:`bound`), kept exact and reported as log10 so they never
    underflow. ``decision`` is :func:`symvg.bounds.decide` of the two -- the one verdict every command
    prints -- and ``verdict`` its kind (vanish / explode / neutral / undecided, as depth grows);
    ``depth_to_cross`` the depth at which the *ceiling* leaves [tol, 1/tol] (below tol: vanishing is
    proved there; above 1/tol: exploding is merely no longer excluded). ``status`` reads both bounds
    at depth N:

    * ``vanishes`` ceiling^N < tol;  ``explodes`` floor^N > 1/tol  (certain, whatever the z's)
    * ``held``     tol ≤ floor^N and ceiling^N ≤ 1/tol           (certain: the gradient stays in range)
    * ``may vanish`` / ``may explode`` / ``may vanish or explode``   (the bounds do not decide)

    ``stable_range`` is the |w| for which the *ceiling* stays in [tol, 1/tol] at depth N (for a plain
    chain, :func:`symvg.bounds.stable_weight_range`); ``held_range`` the |w| for which *both* do (None
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
        """ceiling^N, exact (may be a very long Rational: prefer :attr:`bound_text`)."""
        return self.factor ** self.layers

    @property
    def floor_bound(self) -> sp.Expr:
        """floor^N, exact."""
        return self.floor ** self.layers

    @property
    def bound_text(self) -> str:
        """``(γ|w|)**N`` as a short SymPy-syntax string (the power left unevaluated)."""
        return f"({self.factor})**{self.layers}"

    @property
    def log_rate(self) -> float:
        """ln(ceiling): the bound's change per layer on a log scale (negative: vanishing)."""
        return float(_ln(self.factor)) if self.factor != 0 else -math.inf

    @property
    def log10_bound(self) -> float:
        """log10 of ceiling^N: finite at any depth (−inf only when the factor is 0)."""
        return self.layers * self.log_rate / math.log(10)

    @property
    def log10_floor(self) -> float:
        """log10 of floor^N (−inf when the floor is 0)."""
        return self.layers * float(_ln(self.floor)) / math.log(10) if self.floor != 0 else -math.inf

    @property
    def stable(self) -> bool:
        """|w| inside :attr:`stable_range`."""
        return self.stable_range is not None and bool(self.stable_range[0] <= self.weight <= self.stable_range[1])

    def as_dict(self) -> dict:
        """JSON-ready: exact values as SymPy strings, floats beside them (logs where floats would underflow)."""
        def rng(r: tuple[sp.Expr, sp.Expr] | None) -> list[str] | None:
            return None if r is None else [str(r[0]), str(r[1])]

        def rng_value(r: tuple[sp.Expr, sp.Expr] | None) -> list[float] | None:
            return None if r is None else [float(r[0].evalf(30)), float(r[1].evalf(30))]

        def finite(v: float) -> float | None:
            return v if math.isfinite(v) else None

        return {"activation": self.activation, "residual": self.residual, "gamma": str(self.gamma),
                "gamma_value": float(self.gamma.evalf(30)), "weight": str(self.weight), "layers": self.layers,
                "tol": str(self.tol), "floor": str(self.floor), "floor_value": float(self.floor.evalf(30)),
                "factor": str(self.factor), "factor_value": float(self.factor.evalf(30)),
                "log_rate": finite(self.log_rate), "bound": self.bound_text, "log10_bound": finite(self.log10_bound),
                "log10_floor": finite(self.log10_floor), "verdict": self.verdict,
                "possible": [] if self.decision is None else list(self.decision.possible),
                "reason": "" if self.decision is None else self.decision.reason,
                "depth_to_cross": self.depth_to_cross, "held_to": self.held_to, "status": self.status,
                "stable_range": rng(self.stable_range), "stable_range_value": rng_value(self.stable_range),
                "held_range": rng(self.held_range), "held_range_value": rng_value(self.held_range),
                "stable": self.stable}


def _held_to(floor: sp.Expr, factor: sp.Expr, t: sp.Expr) -> int | None:
    """Deepest N with tol ≤ floor^N and factor^N ≤ 1/tol; None when that holds at every depth.

    ``depth_to_cross`` gives the first depth past tol strictly; a power landing exactly on tol is
    still inside, hence the one-step correction.
    """
    limits = []
    if floor < 1:
        d = depth_to_cross(floor, t)
        limits.append(d - 1 if _compare_power(floor, d, t) < 0 else d)
    if factor > 1:
        d = depth_to_cross(factor, t)
        limits.append(d - 1 if _compare_power(factor, d, 1 / t) > 0 else d)
    return min(limits) if limits else None


def _ranges(act: Activation, residual: bool, n: int, t: sp.Expr) -> tuple[tuple | None, tuple | None]:
    g = act.gamma
    if g == 0:
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


def regime(activation: ActivationLike, weight: Number = 1, layers: int = 10, tol: Number = "1e-6",
           residual: bool = False) -> Regime:
    """The :class:`Regime` of ``layers`` layers of ``activation`` with weights of size |``weight``|."""
    act = get(activation)
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
        raise InvalidValueError(f"layers must be an integer >= 1, got {layers!r}")
    w = sp.Abs(to_rational(weight, "weight"))
    t = to_rational(tol, "tol")
    if not 0 < t < 1:
        raise InvalidValueError(f"tol must be in (0, 1), got {tol!r}")
    g = act.gamma
    if residual:
        factor, floor = 1 + g * w, sp.Max(0, 1 - g * w)
        cause = ("1 + w*phi'(z) can cancel to 0 once gamma*|w| >= 1" if floor == 0
                 else f"1 + w*phi'(z) >= 1 - gamma*|w| = {floor}, reached where w*phi'(z) < 0")
    else:
        factor, floor = g * w, derivative_floor(act) * w
        cause = floor_cause(act)
    d = decide(floor, factor, layers, t, cause)
    stable, held = _ranges(act, residual, layers, t)
    return Regime(act.label, residual, g, w, layers, t, floor, factor, d.kind, depth_to_cross(factor, t),
                  _held_to(floor, factor, t), d.status, stable, held, d)  # type: ignore[arg-type]


__all__ = ["Regime", "derivative_floor", "floor_cause", "regime"]
