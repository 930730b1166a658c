"""Mean-field theory of wide random networks: the variance map, its fixed point q*, χ1, depth scales.

A fully connected net of width n → ∞ with weights ~ N(0, σw²/n) and biases ~ N(0, σb²) is
described by (u ~ N(0, 1)):

* variance map   q ↦ σw²·E[φ(√q u)²] + σb², whose fixed point reached from the input's
  variance q0 is q*;
* χ1 = σw²·E[φ'(√q* u)²], the factor each layer multiplies a squared gradient by;
* correlation map c ↦ (σw²·E[φ(u1)φ(u2)] + σb²)/q*, whose slope at c = 1 is χ1;
* depth scales ξ_q = −1/ln(slope of the variance map at q*), ξ_c = −1/ln χ_c.

>>> mean_field("relu", 2, 0).note
'every q is a fixed point (the variance map is q ↦ q): q* = q0 = 1, the input variance, is kept'
>>> mean_field("tanh", 1, 0).q_star      # σb² = 0, φ(0) = 0, χ1 ≤ 1: the proved fixed point 0
0
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass
from typing import Any, Callable, NamedTuple

import sympy as sp

from symvg.display import Result
from symvg.symbolic.activations import Activation, get
from symvg.symbolic.parse import z
from symvg.exact import Number, nonnegative, positive
from symvg.magnitude import log10, sci, short
from symvg.errors import OverflowReport, SymvgRuntimeError, UnderflowReport
from symvg.theory.meanfield.quadrature import Moments, Q, correlation_kernels, kinks, moments

__all__ = ["CRITICAL_TOL", "MeanField", "mean_field", "chi1", "verdict", "correlation_map", "origin_slope"]

CRITICAL_TOL = 1e-8
"""|χ1 − 1| below this is called critical when χ1 is a float (exact χ1 must equal 1)."""

_BIG = 1e15  # q beyond _BIG·max(1, σw², σb², q0) is reported as divergent (q* = oo)
_SNAP = 1e-6  # a float q* below _SNAP·q0 where 0 is a proved attracting fixed point is that 0

# ----------------------------------------------------------------------------- fixed points


def _bisect(g: Callable[[float], float], lo: float, hi: float, rel: float = 1e-15, atol: float = 0.0) -> float:
    """A root of g with g(lo) ≥ 0 > g(hi), to relative precision ``rel`` (or absolute ``atol``).

    Illinois regula falsi (superlinear) that keeps the sign-change bracket, with a bisection
    step whenever an update fails to halve it, so it is never slower than bisection for long.
    """
    glo, ghi = g(lo), g(hi)
    side = 0
    for _ in range(300):
        width = hi - lo
        x = hi - ghi * (hi - lo) / (ghi - glo) if ghi != glo else (lo + hi) / 2
        if not lo < x < hi:
            x = (lo + hi) / 2
        gx = g(x)
        if gx >= 0:
            lo, glo = x, gx
            if side == 1:
                ghi /= 2
            side = 1
        else:
            hi, ghi = x, gx
            if side == -1:
                glo /= 2
            side = -1
        if hi - lo <= max(rel * abs(hi), atol, 5e-324) or gx == 0:
            break
        if hi - lo > width / 2:  # slow progress: bisect once
            mid = (lo + hi) / 2
            gm = g(mid)
            lo, glo, hi, ghi = (mid, gm, hi, ghi) if gm >= 0 else (lo, glo, mid, gm)
            side = 0
    return x if gx == 0 else (lo + hi) / 2


def _q_star_float(m: Moments, sw: float, sb: float, q0: float = 1.0) -> float:
    """The fixed point the variance map reaches from q0 (the input's second moment); inf if it diverges.

    A few iterations show which way the map moves; the bracket is then grown in that direction
    until the sign of g(q) = map(q) − q changes, so the root found is the attracting one.
    """
    def g(q: float) -> float:
        return sw * m.v(q) + sb - q

    # Relative to the inputs: a bounded φ keeps q <= σw²·sup φ² + σb², so a fixed cap would call
    # tanh's q* = 1e20 at σw² = 1e20 divergent; a q this far beyond every input grows without bound.
    big = min(_BIG * max(1.0, sw, sb, q0), sys.float_info.max)  # at σw² = 1e300 the product is inf
    q = q0
    for _ in range(6):
        q = sw * m.v(q) + sb
        if q > big:
            return math.inf
    gq = g(q)
    if gq == 0:
        return q
    if gq > 0:
        lo, hi = q, 2 * q
        while g(hi) >= 0:
            lo, hi = hi, 2 * hi
            if hi > big:
                return math.inf
        return _bisect(g, lo, hi)
    hi, lo = q, q / 2
    zero_checked = False
    while g(lo) < 0:
        hi, lo = lo, lo / 16
        if lo < 1e-30 * q0 and not zero_checked:
            if g(0.0) <= 0:  # q = 0 is the attracting fixed point (σb² = 0, φ(0) = 0)
                return 0.0
            zero_checked = True  # g(0) = σb² + σw²φ(0)² > 0: a root lies above 0, however tiny (σb² = 1e-300)
        if lo == 0.0:
            break
    return _bisect(g, lo, hi)


class _Fixed(NamedTuple):
    """The fixed point reached from q0 and what it implies: q*, χ1, the variance map's slope there."""

    q: Any
    chi1: Any
    slope: Any
    exact: bool
    note: str


def _fixed_exact(m: Moments, sw: sp.Rational, sb: sp.Rational, q0: sp.Rational) -> _Fixed:
    """V = k·q (piecewise-linear φ through 0): the map is q ↦ σw²k·q + σb², solved exactly.

    Slope σw²k < 1: q* = σb²/(1 − σw²k). Slope 1: every q is fixed (σb² = 0) or q grows by σb²
    per layer. Slope > 1: q grows geometrically; there is no fixed point, so ξ_q and c* are
    undefined, though χ1 = σw²·E[φ'²] is exact because it does not depend on q.
    """
    k = m.V.coeff(Q)
    slope, chi1 = sw * k, sw * m.D
    if slope < 1:
        return _Fixed(sb / (1 - slope), chi1, slope, True, "")
    if slope == 1 and sb == 0:
        return _Fixed(q0, chi1, slope, True, f"every q is a fixed point (the variance map is q ↦ q): q* = q0 = {short(q0)}, "
                                             "the input variance, is kept")
    if slope == 1:
        note = f"no fixed point: q grows by σb² = {short(sb)} per layer (q^l = q0 + l·σb²)"
    else:
        note = (f"no fixed point: the variance map diverges, q grows by a factor σw²·{short(k)} = {short(slope)} per layer; "
                "ξ_q, c* and ξ_c are undefined, χ1 does not depend on q")
    return _Fixed(sp.oo, chi1, slope, True, note)


def origin_slope(act: Activation) -> sp.Expr | None:
    """lim V(q)/q = D(0) as q → 0, when q = 0 is a fixed point of the map at σb² = 0 (φ(0) = 0), else None.

    That is (φ'(0−)² + φ'(0+)²)/2 (φ'(0)² where φ is smooth): the variance map's slope at 0
    and χ1 at q* = 0 are both σw² times it, exactly.

    >>> origin_slope(get("tanh")), origin_slope(get("gelu")), origin_slope(get("elu:0.5"))
    (1, 1/4, 5/8)
    """
    if act.expr.subs(z, 0) != 0:
        return None
    if 0.0 not in kinks(act.expr) + kinks(act.derivative):
        d0 = sp.simplify(act.derivative.subs(z, 0) ** 2)
    else:
        t = sp.Symbol("t", positive=True)  # z = ±t picks each side's piece before the limit
        sides = [sp.limit(act.derivative.subs(z, sign * t), t, 0) for sign in (-1, 1)]
        d0 = sp.simplify((sides[0] ** 2 + sides[1] ** 2) / 2)
    return d0 if d0.is_real and d0.is_finite else None


def _slope_float(m: Moments, sw: float, q: float) -> float:
    """σw²·V'(q), the variance map's slope, as (σw²/q)·(q·V'(q)) (:meth:`Moments.q_dv`): V' itself, not a
    difference of V's, and not V' alone, which underflows where the slope does not (sigmoid, σw² = 1e300)."""
    return sw / q * m.q_dv(q) if q > 0 else sw * m.dv(0.0)


def _fixed_float(act: Activation, m: Moments, sw: sp.Rational, sb: sp.Rational, q0: sp.Rational) -> _Fixed:
    """q* by root-finding from q0; snapped to the proved fixed point 0 when σb² = 0 and σw²φ'(0)² ≤ 1.

    At σb² = 0 with φ(0) = 0, q = 0 is a fixed point and σw²φ'(0)² ≤ 1 makes it attract, so a
    float root below _SNAP·q0 is that 0 seen through rounding (tanh: 2e-17); χ1 there is exact.
    """
    inputs = (("σw²", sw), ("σb²", sb), ("q0", q0))
    for name, v in inputs:
        _check_float_range(act, name, v, tiny=False)  # 1e309 as inf would read as a divergent map
    q = _q_star_float(m, float(sw), float(sb), float(q0))
    if math.isinf(q):
        raise SymvgRuntimeError(f"the variance map of {act.label} diverges from q0 = {short(q0)} at σw² = {short(sw)}, "
                                f"σb² = {short(sb)}: "
                                "no finite fixed point q*, so χ1 is not defined")
    d0 = origin_slope(act) if sb == 0 else None
    if d0 is not None and sw * d0 <= 1 and q < _SNAP * float(q0):
        return _Fixed(sp.Integer(0), sw * d0, sw * d0, True, "")
    for name, v in inputs:
        _check_float_range(act, name, v, tiny=True)
    chi1, slope = float(sw) * m.d(q), _slope_float(m, float(sw), q)
    for name, v in (("χ1", chi1), ("the variance map's slope", slope)):
        if sw > 0 and abs(v) < sys.float_info.min:
            raise UnderflowReport(f"{name} ≈ {v:.3g} at σw² = {short(sw)} for {act.label} is below float64's normal "
                                  f"range ({sys.float_info.min:.3g}): its digits are lost, so it is not given")
    return _Fixed(q, chi1, slope, False, "")


def _check_float_range(act: Activation, name: str, v: sp.Rational, tiny: bool) -> None:
    """Refuse an input the float computation (quadrature, root finding) cannot hold: beyond float64, or
    (``tiny``) below its normal range, where digits are lost (1e-320) or it is 0 (1e-400)."""
    if v > sys.float_info.max:
        raise OverflowReport(f"{name} = {short(v)} is beyond float64 (at most {sys.float_info.max:.3g}), where "
                             f"{act.label}'s mean field is computed: no answer is given for it")
    if tiny and 0 < v < sys.float_info.min:
        raise UnderflowReport(f"{name} = {short(v)} is below float64's normal range ({sys.float_info.min:.3g}), "
                              f"where {act.label}'s mean field is computed: no answer is given for it")

# ----------------------------------------------------------------------------- correlation map


def correlation_map(activation: "str | Activation", sigma_w2: float, sigma_b2: float, q_star: float,
                    c: float) -> float:
    """c ↦ (σw²·E[φ(u1)φ(u2)] + σb²)/q*, (u1, u2) of variance q* and correlation c."""
    return (sigma_w2 * correlation_kernels(activation, q_star, c)[0] + sigma_b2) / q_star


def _c_star(act: Activation, sw: float, sb: float, q: float) -> float:
    """The stable correlation fixed point below 1 in the chaotic phase (bisection keeps map(c) − c ≥ 0 at lo)."""
    def h(c: float) -> float:
        return correlation_map(act, sw, sb, q, c) - c

    lo, glo = 0.0, h(0.0)
    if abs(glo) < 1e-14:  # c = 0 is fixed (odd φ, σb² = 0); h is convex on [0, 1] with h(1) = 0, so it is c*
        return 0.0
    if glo < 0:
        lo, glo = -1.0, h(-1.0)
    # In the chaotic phase map(c) < c on (c*, 1); right next to 1 the difference can drown in the
    # quadrature's error (tanh at σw² = 1e4), so the bracket's top is moved down until it shows.
    for gap in (1e-9, 1e-7, 1e-5, 1e-3, 1e-2, 1e-1):
        hi = 1 - gap
        if hi > lo and h(hi) < 0:
            return _bisect(h, lo, hi, rel=1e-13, atol=1e-13)
    return math.nan  # no crossing resolved: c* is not known (c = 1 is the unstable one here, never the answer)


# ----------------------------------------------------------------------------- results


def _float(x: Any) -> float:
    return float(x) if not (isinstance(x, sp.Basic) and x.is_infinite) else math.inf


def _json_number(x: Any) -> float | None:
    """Finite numbers as floats; ±inf and NaN as None (JSON has neither)."""
    v = _float(x)
    return v if math.isfinite(v) else None


def _depth_scale(slope: Any) -> float:
    """−1/ln(slope): 0 when slope = 0, inf at slope = 1, NaN (undefined) when slope > 1.

    An exact slope is taken through its log10, so one beyond the floats still has its scale:

    >>> round(_depth_scale(sp.Rational(1, 2 * 10**400)), 9), _depth_scale(0.0)   # 1/(401 ln 10 − ln 5)
    (0.00108492, 0.0)
    """
    if isinstance(slope, sp.Rational) and 0 < slope < 1:
        return -1 / (log10(slope) * math.log(10))
    slope = _float(slope)
    if slope <= 0:
        return 0.0
    if slope >= 1:
        return math.inf if abs(slope - 1) < CRITICAL_TOL else math.nan
    return -1 / math.log(slope)


def verdict(chi1: Any, tol: float = CRITICAL_TOL) -> str:
    """"ordered" (χ1 < 1: gradients vanish), "chaotic" (χ1 > 1: they explode) or "critical".

    Exact χ1 is critical only when it equals 1; a float within ``tol`` of 1 is critical.

    >>> verdict(sp.Rational(3, 4)), verdict(1.0 + 1e-12), verdict(sp.Integer(3))
    ('ordered', 'critical', 'chaotic')
    """
    if isinstance(chi1, sp.Rational):
        return "critical" if chi1 == 1 else ("ordered" if chi1 < 1 else "chaotic")
    x = float(chi1)
    return "critical" if abs(x - 1) < tol else ("ordered" if x < 1 else "chaotic")


@dataclass(frozen=True)
class MeanField(Result):
    """The mean-field picture of one (activation, σw², σb²), from inputs of variance ``q0``.

    ``q_star`` and ``chi1`` are exact SymPy numbers when ``exact`` (φ piecewise linear through 0,
    or the proved fixed point q* = 0), else floats. ``q_star`` is ``oo`` when the variance map
    grows without bound (ReLU with σw² ≥ 2 and σb² > 0, or σw² > 2); ``note`` then says how.
    ``xi_q``/``xi_c`` are ``inf`` at criticality and NaN where undefined; ``c_star`` is 1 in the
    ordered and critical phases, the stable fixed point below 1 in the chaotic phase, NaN when
    q* is 0 or oo there.
    """

    activation: str
    sigma_w2: sp.Rational
    sigma_b2: sp.Rational
    q_star: Any
    chi1: Any
    xi_q: float
    xi_c: float
    c_star: float
    chi_c: float
    slope_q: Any
    verdict: str
    exact: bool
    method: str
    q0: sp.Rational = sp.Integer(1)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: numbers as floats, infinities and NaN as null, exact values also as strings."""
        d = {k: (_json_number(v) if isinstance(v, (float, sp.Basic)) else v) for k, v in asdict(self).items()}
        d["chi1_exact"] = str(self.chi1) if self.exact else None
        d["q_star_exact"] = str(self.q_star) if self.exact else None
        return d

    def __str__(self) -> str:
        return self.text()

    def text(self) -> str:
        """A few lines for the terminal."""
        def fmt(x: Any) -> str:
            if isinstance(x, sp.Basic) and len(str(x)) <= 24:  # SELU's exact constants run to 100+ digits
                return f"{x}" + ("" if x.is_Integer or x.is_infinite else f" ≈ {sci(x, 10)}")
            if isinstance(x, sp.Rational):  # ReLU's χ1 at σw² = 1e400: beyond the floats, not inf
                return sci(x, 10)
            return f"{_float(x):.10g}"

        def scale(x: float) -> str:
            return "undefined" if math.isnan(x) else f"{x:.6g}"
        gradients = {"ordered": "gradients vanish", "chaotic": "gradients explode",
                     "critical": "gradients neither vanish nor explode"}[self.verdict]
        return "\n".join([
            f"{self.activation}: σw² = {short(self.sigma_w2)}, σb² = {short(self.sigma_b2)}, input variance q0 = {short(self.q0)}"
            f"  ({self.method})",
            f"  q*  = {fmt(self.q_star)}",
            f"  χ1  = {fmt(self.chi1)}   (squared gradients scale like χ1^depth)",
            f"  ξ_q = {scale(self.xi_q)}   ξ_c = {scale(self.xi_c)}   c* = {scale(self.c_star)}",
            f"  verdict: {self.verdict} ({gradients})",
        ] + ([f"  note: {self.note}"] if self.note else []))


def _correlations(act: Activation, sw: float, sb: float, q: float, chi1: float, v: str) -> tuple[float, float]:
    """(c*, χ_c): 1 and χ1 unless chaotic; then the stable c* < 1, NaN when q* is 0 or oo."""
    if v != "chaotic":
        return 1.0, chi1
    if not 0 < q < math.inf:
        return math.nan, math.nan
    c_star = _c_star(act, sw, sb, q)
    return c_star, sw * correlation_kernels(act, q, c_star)[1]


def chi1(activation: "str | Activation", sigma_w2: Number, sigma_b2: Number = 0, *, q0: Number = 1) -> Any:
    """χ1 alone, at the fixed point :func:`mean_field` finds (exact where it is, else a float): without the
    correlation map, whose c* costs seconds in the chaotic phase -- a diagnosis asks χ1 of every layer.

    >>> chi1("relu", "3/2", 0), round(chi1("tanh", 1, "0.05"), 6)
    (3/4, 0.759032)
    """
    act = get(activation)
    sw, sb = nonnegative(sigma_w2, "sigma_w2 (σw²)"), nonnegative(sigma_b2, "sigma_b2 (σb²)")
    q_in = positive(q0, "q0 (input variance)")
    m = moments(act)
    return (_fixed_exact(m, sw, sb, q_in) if m.homogeneous else _fixed_float(act, m, sw, sb, q_in)).chi1


def mean_field(activation: "str | Activation", sigma_w2: Number, sigma_b2: Number = 0, *, q0: Number = 1,
               tol: float = CRITICAL_TOL) -> MeanField:
    """q*, χ1, depth scales, c* and the verdict for a wide random network fed inputs of variance ``q0``.

    >>> mf = mean_field("relu", "3/2", 0); mf.chi1, mf.q_star, mf.verdict
    (3/4, 0, 'ordered')
    >>> mf = mean_field("tanh", 1, "0.05"); round(mf.chi1, 6), mf.verdict
    (0.759032, 'ordered')
    >>> mf = mean_field("relu", 3, 0); mf.q_star, mf.verdict, mf.note[:49]
    (oo, 'chaotic', 'no fixed point: the variance map diverges, q grow')
    """
    act = get(activation)
    sw, sb = nonnegative(sigma_w2, "sigma_w2 (σw²)"), nonnegative(sigma_b2, "sigma_b2 (σb²)")
    q_in = positive(q0, "q0 (input variance)")
    m = moments(act)
    fp = _fixed_exact(m, sw, sb, q_in) if m.homogeneous else _fixed_float(act, m, sw, sb, q_in)
    v = verdict(fp.chi1, tol)
    qf, chi = _float(fp.q), _float(fp.chi1)
    c_star, chi_c = _correlations(act, float(sw), float(sb), qf, chi, v)
    xi_q = _depth_scale(fp.slope) if math.isfinite(qf) or fp.slope == 1 else math.nan
    xi_c = math.inf if v == "critical" else _depth_scale(fp.chi1 if v == "ordered" else chi_c)
    return MeanField(act.label, sw, sb, fp.q, fp.chi1, xi_q, xi_c, c_star, chi_c, fp.slope, v, fp.exact,
                     m.method, q_in, fp.note)
