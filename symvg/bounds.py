"""What the factors imply: each is bounded, so the gradient is, and depth makes the bound shrink or grow.

Every activation factor obeys |φ'(z_j)| ≤ γ_j = sup|φ'| (proved in :mod:`symvg.activations`), so

    |∂L/∂w_k| ≤ |∂L/∂h_N| · ∏_{j>k} γ_j|w_j| · γ_k · |h_{k-1}|

and a chain of N layers with one activation and |w| everywhere has ``|∂h_N/∂h_0| ≤ (γ|w|)^N``:
it vanishes when γ|w| < 1 and may explode when γ|w| > 1. Exact where the inputs are:

>>> b = depth_bound("sigmoid", weight=1, layers=10, tol="1e-6")
>>> b.factor, b.bound, b.verdict, b.depth_to_vanish
(1/4, 1/1048576, 'vanish', 10)
>>> depth_bound("relu", weight=2).verdict
'explode'
>>> neutral_weights("sigmoid")
4
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import sympy as sp

from .activations import Activation, Number, get, to_rational
from .chain import Chain
from .derive import Derivation, Factor
from .errors import InvalidValueError

ActivationLike = Union[str, Activation]


@dataclass(frozen=True)
class GradientBound:
    """|∂L/∂w_k| ≤ ``expr``, factor by factor (``factors`` pairs each Factor with its bound)."""

    derivation: Derivation
    factors: tuple[tuple[Factor, sp.Expr], ...]
    expr: sp.Expr

    @property
    def gamma(self) -> tuple[sp.Expr, ...]:
        """γ_j = sup|φ_j'| per layer."""
        return tuple(a.gamma for a in self.derivation.chain.activations)

    def value(self, values: dict) -> sp.Expr:
        """The bound at numbers, with the forward pass evaluated exactly as in ``Derivation.evaluate``."""
        return self.expr.xreplace(dict(self.derivation.evaluate(values).values))


def factor_bound(f: Factor, chain: Chain) -> sp.Expr:
    """The tightest bound a factor has on its own: γ for φ', 1 + γ|w| for a residual step, |f| otherwise.

    Loss, weight and input factors are not squashed by anything, so their bound is their own size.
    """
    if f.kind == "activation":
        return chain.activations[f.layer - 1].gamma
    if f.kind == "residual":
        return 1 + chain.activations[f.layer - 1].gamma * sp.Abs(chain.w(f.layer))
    return sp.Abs(f.expr)


def gradient_bound(derivation: Derivation) -> GradientBound:
    """The bound on |∂L/∂w_k| that the proved suprema give.

    >>> from symvg import Chain, derive
    >>> gradient_bound(derive(Chain(2, "sigmoid"), 1)).expr
    Abs(w2)*Abs(x)*Abs(h2 - y)/8
    """
    pairs = tuple((f, factor_bound(f, derivation.chain)) for f in derivation.factors)
    return GradientBound(derivation, pairs, sp.Mul(*(b for _, b in pairs)))


# ----------------------------------------------------------------------------- depth laws


@dataclass(frozen=True)
class DepthBound:
    """(γ|w|)^N for a chain of one activation with weights of size |w|: the vanishing/exploding law."""

    activation: str
    gamma: sp.Expr
    weight: sp.Expr
    factor: sp.Expr
    layers: int | None
    bound: sp.Expr | None
    verdict: str
    tol: sp.Expr | None
    depth_to_vanish: int | None
    depth_to_explode: int | None

    @property
    def log_rate(self) -> float:
        """ln(γ|w|): the bound's change per layer on a log scale (negative: vanishing).

        Taken from the exact factor, so a factor beyond float range (|w| = 1e-999) still has one.
        """
        if self.factor == 0:
            return -math.inf
        return _ln(self.factor)

    @property
    def log10_bound(self) -> float | None:
        """log10 of (γ|w|)^N, from :attr:`log_rate`: finite at any depth (None without layers or at γ|w| = 0)."""
        if self.layers is None or self.factor == 0:
            return None
        return self.log_rate * self.layers / math.log(10)

    def as_dict(self) -> dict:
        """JSON-ready. A float that over/underflows is never passed off as the answer: it is null (inf)
        or 0.0 next to a ``note``, with ``log10_bound`` and the exact strings alongside."""
        d = {"activation": self.activation, "gamma": str(self.gamma), "gamma_value": float(self.gamma),
             "weight": str(self.weight), "factor": str(self.factor), "factor_value": _json_float(self.factor),
             "log_rate": self.log_rate, "verdict": self.verdict}
        notes = [_range_note("factor", self.factor, d["factor_value"])]
        if self.layers is not None:
            d.update(layers=self.layers, bound=str(self.bound), bound_value=_json_float(self.bound),
                     log10_bound=self.log10_bound)
            notes.append(_range_note("bound", self.bound, d["bound_value"], self.log10_bound))
        if self.tol is not None:
            d.update(tol=str(self.tol), depth_to_vanish=self.depth_to_vanish, depth_to_explode=self.depth_to_explode)
        notes = [n for n in notes if n]
        if notes:
            d["note"] = "; ".join(notes)
        return d


def _float(v: sp.Expr) -> float:
    f = float(v.evalf(30))
    return f


def _ln(v: sp.Expr) -> float:
    """ln v for an exact v > 0, also where float(v) would be 0 or inf (math.log takes big integers)."""
    if v.is_Rational:
        return math.log(v.p) - math.log(v.q)
    return float(sp.log(v).evalf(30))


def _json_float(v: sp.Expr) -> float | None:
    """The float64 of an exact value; None where it overflows (JSON has no inf)."""
    f = _float(v)
    return f if math.isfinite(f) else None


def _range_note(name: str, exact: sp.Expr, value: float | None, log10: float | None = None) -> str:
    """Say so when the float64 field is 0 or null although the exact value is neither."""
    if exact == 0 or (value is not None and value != 0):
        return ""
    what = "overflows float64 (shown as null)" if value is None else "underflows float64 (shown as 0.0)"
    where = f", its log10 in 'log10_{name}' = {log10:.6g}" if log10 is not None else ""
    return f"{name} {what}: the exact value is in '{name}'{where}"


def verdict(factor: sp.Expr) -> str:
    """"vanish" when γ|w| < 1, "explode" when > 1, "neutral" at exactly 1 (decided exactly)."""
    if sp.Eq(factor, 1) == sp.true or sp.simplify(factor - 1) == 0:
        return "neutral"
    return "vanish" if bool(factor < 1) else "explode"


def depth_to_cross(factor: sp.Expr, tol: sp.Expr) -> int | None:
    """Smallest N ≥ 1 with factor^N < tol (factor < 1) or factor^N > 1/tol (factor > 1); None if never.

    Found with logarithms, then confirmed (and corrected) by exact comparison.

    >>> depth_to_cross(sp.Rational(1, 4), sp.Rational(1, 10**6))   # 4^-10 < 1e-6 < 4^-9
    10
    >>> depth_to_cross(sp.Integer(2), sp.Rational(1, 1000))         # 2^10 = 1024 > 1000
    10
    >>> depth_to_cross(sp.Integer(1), sp.Rational(1, 1000)) is None
    True
    """
    if not 0 < tol < 1:
        raise InvalidValueError(f"tol must be in (0, 1), got {tol}")
    v = verdict(factor)
    if v == "neutral":
        return None
    if factor == 0:
        return 1
    f, t = (factor, tol) if v == "vanish" else (1 / factor, tol)
    n = max(1, math.ceil(_ln(t) / _ln(f)))
    while not bool(f ** n < t):
        n += 1
    while n > 1 and bool(f ** (n - 1) < t):
        n -= 1
    return n


def depth_bound(activation: ActivationLike, weight: Number = 1, layers: int | None = None,
                tol: Number | None = None) -> DepthBound:
    """The law (γ|w|)^N for ``activation`` and weights of size ``weight``; see the module docstring."""
    act = get(activation)
    w = sp.Abs(to_rational(weight, "weight"))
    if layers is not None and (isinstance(layers, bool) or not isinstance(layers, int) or layers < 1):
        raise InvalidValueError(f"layers must be an integer >= 1, got {layers!r}")
    t = None if tol is None else to_rational(tol, "tol")
    if t is not None and not 0 < t < 1:
        raise InvalidValueError(f"tol must be in (0, 1), got {tol!r}")
    f = act.gamma * w
    v = verdict(f)
    bound = None if layers is None else f ** layers
    dv = de = None
    if t is not None:
        crossing = depth_to_cross(f, t)
        dv, de = (crossing, None) if v == "vanish" else (None, crossing)
    return DepthBound(act.label, act.gamma, w, f, layers, bound, v, t, dv, de)


def neutral_weights(activation: ActivationLike) -> sp.Expr:
    """|w| = 1/γ: the weight size at which the bound neither shrinks nor grows."""
    g = get(activation).gamma
    if g == 0:
        raise InvalidValueError(f"{get(activation).label} has γ = 0: every gradient through it is zero")
    return 1 / g


def stable_weight_range(activation: ActivationLike, layers: int, tol: Number) -> tuple[sp.Expr, sp.Expr]:
    """Weights |w| for which the depth-``layers`` bound stays within [tol, 1/tol]: [tol^(1/N)/γ, tol^(-1/N)/γ].

    >>> stable_weight_range("sigmoid", 2, "0.01")
    (2/5, 40)
    """
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
        raise InvalidValueError(f"layers must be an integer >= 1, got {layers!r}")
    t = to_rational(tol, "tol")
    if not 0 < t < 1:
        raise InvalidValueError(f"tol must be in (0, 1), got {tol!r}")
    n = neutral_weights(activation)
    root = t ** sp.Rational(1, layers)
    return n * root, n / root
