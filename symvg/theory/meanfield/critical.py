"""The order/chaos boundary: the critical σw² where χ1 = 1, the phase diagram, and init rules derived.

A printed critical point is checked after it is solved: χ1 = 1 at a finite, stable fixed
point q* that the variance map reaches from the input variance q0. Where no σw² gives that, the
result says so and what happens instead (GELU at σb² = 0.05: χ1 stays below 1 until q diverges).

>>> critical_sigma_w2("relu", "0.3").sigma_w2          # He: 2, for any σb²
2
>>> round(critical_sigma_w2("tanh", "0.05").sigma_w2, 6)   # Schoenholz et al. 2017: σw² ≈ 1.76
1.760955
>>> cp = critical_sigma_w2("gelu", "0.05"); cp.exists, round(cp.diverges_from, 4)
(False, 2.2341)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import sympy as sp

from symvg.display import Result
from symvg.symbolic.activations import Activation, get
from symvg.exact import Number, nonnegative, positive, to_rational
from symvg.errors import InvalidValueError, SymvgRuntimeError
from symvg.magnitude import not_one, sci, short
from symvg.theory.meanfield.quadrature import Moments, moments
from symvg.theory.meanfield.smallq import Q_MAX, small_bias_critical
from symvg.theory.meanfield.theory import (_bisect, _fixed_exact, _float, _json_number, _q_star_float, _slope_float,
                                           origin_slope)

__all__ = ["CriticalPoint", "critical_sigma_w2", "PhaseDiagram", "phase_diagram", "InitRule", "init_rules"]

_GRID_RATIO = 2.0  # σw² scan step: the first sign change of 1 − χ1 is then bisected
_BIG_Q = 1e14  # the divergence search looks at q up to q0·_BIG_Q


# ----------------------------------------------------------------------------- critical line


@dataclass(frozen=True)
class CriticalPoint(Result):
    """The σw² at which χ1 = 1 for a given σb² and input variance q0, and q* there.

    ``sigma_w2``/``q_star`` are None when no σw² in the searched range gives χ1 = 1 at a finite,
    stable q* reached from q0 (``exists`` is False); ``diverges_from`` is then the σw² from which
    the variance map diverges (None if it never does in the range). ``note`` says how the point
    was checked, or why there is none. ``q_star`` is ``oo`` for ReLU-like φ with σb² > 0, where
    χ1 does not depend on q.
    """

    activation: str
    sigma_b2: sp.Rational
    sigma_w2: Any
    q_star: Any
    exact: bool
    q0: sp.Rational = sp.Integer(1)
    diverges_from: float | None = None
    note: str = ""
    offset: Any = None  # σw² − base at tiny σb², where a float of σw² would drop it (or hold only 8 true digits)
    base: Any = None  # 1/φ'(0)², the limit of σw² as σb² → 0, where ``offset`` is given

    @property
    def exists(self) -> bool:
        """Whether a critical σw² was found (and checked)."""
        return self.sigma_w2 is not None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (infinite q* and a missing point as null, exact values also as strings)."""
        return {"activation": self.activation, "sigma_b2": float(self.sigma_b2), "q0": float(self.q0),
                "exists": self.exists,
                "sigma_w2": None if not self.exists else _json_number(self.sigma_w2),
                "q_star": None if not self.exists else _json_number(self.q_star),
                "sigma_w2_exact": str(self.sigma_w2) if self.exact else None,
                "q_star_exact": str(self.q_star) if self.exact else None, "exact": self.exact,
                "diverges_from": self.diverges_from, "note": self.note,
                **({} if self.offset is None else {"sigma_w2_base": str(self.base), "sigma_w2_offset": str(self.offset),
                                                   "q_star_text": sci(self.q_star, 12)})}

    def __str__(self) -> str:
        return self.text()

    def text(self) -> str:
        """One line for the terminal, and the note when there is one."""
        if not self.exists:
            return f"{self.activation}: no critical σw² at σb² = {short(self.sigma_b2)} (q0 = {short(self.q0)}): {self.note}"
        sw = _show(self.sigma_w2) if self.exact else f"{float(self.sigma_w2):.10g}" if self.offset is None else _near(self)
        q = (sci(self.q_star, 10) if isinstance(self.q_star, sp.Float) else _show(self.q_star)
             if isinstance(self.q_star, sp.Basic) else f"{_float(self.q_star):.10g}")
        sw = sw if sw.startswith("≈") else f"= {sw}"
        line = f"{self.activation}: critical σw² {sw} at σb² = {short(self.sigma_b2)} (q* = {q}, from q0 = {short(self.q0)})"
        return line + (f"\n  note: {self.note}" if self.note else "")


def _show(x: sp.Expr) -> str:
    """An exact value as written when short, else its float with ≈ (SELU's constants run to 100+ digits)."""
    return str(x) if len(str(x)) <= 24 else f"≈ {float(x):.10g}"


def _near(cp: CriticalPoint) -> str:
    """σw² as 1/φ'(0)² ± offset (10 digits of the offset), the base exact where short."""
    base = _show(cp.base)
    base = base if not base.startswith("≈") else f"1/φ'(0)² (≈ {float(cp.base):.10g})"
    return f"{base} {'+' if cp.offset > 0 else '-'} {sci(abs(cp.offset), 10)}"


def _tiny_critical(act: Activation, m: Moments, sb: sp.Rational, q0: sp.Rational) -> CriticalPoint | None:
    """At σb² so small that q* < Q_MAX: the series route (:mod:`.smallq`), with the float route's checks (a stable q*
    reached from q0). None where it does not apply, or a check fails: then the float route answers, or says why not."""
    r = small_bias_critical(act, sb, q0)
    if r is None:
        return None
    sw = float(r.base + sp.Float(r.offset, 20))
    below = all(g < 0 for g in r.gap_below)  # σw²·V(q) + σb² < q on (q*, Q_MAX]: from there iterates fall to q*
    above = float(q0) <= Q_MAX or _reached(m, sw, float(sb), float(q0), Q_MAX)  # from q0 down to Q_MAX
    rises = all(g > 0 for g in r.gap_above)  # q0 < q*: the map above q ↦ q on [q0, q*), iterates rise to q*
    if not (r.slope_gap > 0 and below and above and rises):
        return None
    offset, q = sp.Float(r.offset, 12), sp.Float(r.q_star, 12)
    return CriticalPoint(act.label, sb, sw, q, False, q0, None,
                         f"solved from the series of V and D in √q (q* < {Q_MAX:g}: the float route cannot resolve "
                         f"q − σw²·V(q) there), its last kept orders {sci(sp.Float(r.error, 3), 1)} of the answer; "
                         f"checked: a stable fixed point (map slope 1 - {sci(sp.Float(r.slope_gap, 5), 3)} < 1), "
                         f"reached from q0 = {short(q0)} (the map lies on q0's side of q ↦ q between q0 and q*, "
                         "on a grid)",
                         offset, r.base)


def _chi1_float(m: Moments, sw: float, sb: float, q0: float = 1.0) -> float:
    """χ1 at the q* reached from q0; inf when the variance map diverges."""
    q = _q_star_float(m, sw, sb, q0)
    return math.inf if math.isinf(q) else sw * m.d(q)


def _below_identity(m: Moments, sw: float, q0: float) -> bool:
    """Whether σw²·V(q) < q on a log grid of (0, q0] (σb² = 0): then iterates from q0 fall to 0."""
    return all(sw * m.v(q) < q for q in q0 * np.logspace(-8, 0, 33))


def _origin_critical(act: Activation, m: Moments, sb: sp.Rational, q0: sp.Rational) -> CriticalPoint | None:
    """σw² = 1/φ'(0)² at σb² = 0 when q* = 0 is reached from q0 there and beyond it is chaos.

    q = 0 is a fixed point with slope σw²φ'(0)² = χ1, so order ends at σw² = 1/φ'(0)² (tanh:
    1 exactly). Root-finding χ1 = 1 is ill-conditioned there (χ1 − 1 is second order on the
    chaotic side), so the exact value is used once the chaotic side is confirmed numerically
    and the map is checked to carry q0 down to 0 (GELU fails this: σw² = 4 sends q0 = 1 to ∞).
    """
    d0 = origin_slope(act) if sb == 0 else None
    if d0 is None or d0 == 0:
        return None
    sw = 1 / d0
    if not _below_identity(m, float(sw), float(q0)) or _chi1_float(m, 1.05 * float(sw), 0.0, float(q0)) <= 1:
        return None
    return CriticalPoint(act.label, sb, sw, sp.Integer(0), True, q0, None,
                         f"χ1 = σw²·φ'(0)² = 1 exactly at q* = 0 (at a kink, φ'(0)² is the mean of both sides' "
                         f"squares), which the variance map reaches from q0 = {short(q0)} (it lies below q ↦ q on (0, q0], "
                         "checked on a grid)")


def _homogeneous_critical(act: Activation, m: Moments, sb: sp.Rational, q0: sp.Rational) -> CriticalPoint:
    """σw² = 1/E[φ'²] exactly: χ1 does not depend on q for piecewise-linear φ through 0."""
    if m.D == 0:
        raise InvalidValueError(f"{act.label} has E[φ'²] = 0: no σw² makes χ1 = 1")
    sw = 1 / m.D
    fp = _fixed_exact(m, sw, sb, q0)
    note = fp.note + ("; χ1 = σw²·E[φ'²] = 1 at every q, so gradients are critical all the same"
                      if fp.q == sp.oo else "")
    return CriticalPoint(act.label, sb, sw, fp.q, True, q0, None, note)


def _scan(m: Moments, sb: float, q0: float, lo: float, hi: float) -> tuple[str, float | None, float | None, float]:
    """Walk σw² up from lo by _GRID_RATIO: ("crosses"|"diverges"|"ordered", last σw² before, first after, max χ1).

    "crosses": χ1 reached 1 at a finite q*; "diverges": the variance map diverged first.
    """
    n = max(2, math.ceil(math.log(hi / lo) / math.log(_GRID_RATIO)) + 1)
    prev, best = None, 0.0
    for sw in np.geomspace(lo, hi, n):
        chi = _chi1_float(m, float(sw), sb, q0)
        if math.isinf(chi):
            return "diverges", prev, float(sw), best
        if chi >= 1:
            return "crosses", prev, float(sw), best
        prev, best = float(sw), max(best, chi)
    return "ordered", prev, None, best


def _divergence_threshold(m: Moments, sb: float, q0: float) -> tuple[float, float]:
    """(σw²_div, q there): the sup over q ≥ q0 of h(q) = (q − σb²)/V(q), and where it is attained.

    σw² ≤ h(q) means the map is at or below q ↦ q at q. Iterates from q0 (an increasing map)
    stop at the first q ≥ q0 where that holds, so they diverge exactly when σw² > sup h; at the
    sup the stable and unstable fixed points merge at the argmax (a saddle-node).
    """
    def h(q: float) -> float:
        v = m.v(q)
        return (q - sb) / v if v > 0 else math.inf

    logs = np.linspace(0.0, math.log(_BIG_Q), 61) + math.log(q0)
    values = [h(math.exp(x)) for x in logs]
    i = int(np.argmax(values))
    a, b = logs[max(i - 1, 0)], logs[min(i + 1, len(logs) - 1)]
    golden = (math.sqrt(5) - 1) / 2
    for _ in range(45):  # golden section on log q: the bracket shrinks to ~1e-10
        c, d = b - golden * (b - a), a + golden * (b - a)
        a, b = (a, d) if h(math.exp(c)) >= h(math.exp(d)) else (c, b)
    q = math.exp((a + b) / 2)
    return max(h(q), values[i]), q


def _reached(m: Moments, sw: float, sb: float, q0: float, q: float) -> bool:
    """Whether iterates from q0 move monotonically to q: the map is increasing between them and
    stays on q's side of the identity (checked on 32 points), so they neither stall nor overshoot."""
    if abs(q - q0) <= 1e-12 * max(q, q0):
        return True
    xs = np.geomspace(q0, q, 34)[1:-1] if q > 0 else q0 * np.logspace(0, -12, 34)[1:-1]
    images = np.array([sw * m.v(float(x)) + sb for x in xs])
    toward = np.sign(q - q0)
    # non-decreasing is enough (iterates then cannot pass q*), and a saturated V (tanh at q = 1e300: every image
    # the same float) is flat, not decreasing
    return bool(np.all(np.sign(images - xs) == toward) and np.all(np.diff(images) * np.sign(np.diff(xs)) >= 0))


def _checked(act: Activation, m: Moments, sw: float, sb: sp.Rational, q0: sp.Rational) -> CriticalPoint:
    """The solved σw², kept only if χ1 = 1 at a finite, stable q* reached from q0."""
    q = _q_star_float(m, sw, float(sb), float(q0))
    if math.isinf(q):
        raise SymvgRuntimeError(f"critical σw² = {sw:.10g} for {act.label} at σb² = {short(sb)} fails its check: q diverges")
    chi, slope = sw * m.d(q), _slope_float(m, sw, q)
    reached = _reached(m, sw, float(sb), float(q0), q)
    failures = [why for bad, why in ((abs(chi - 1) > 1e-9, f"χ1 = {chi:.10g}, not 1"),
                                     (not slope < 1, f"q* = {q:.6g} is not stable (map slope {_near_one(slope)})"),
                                     (not reached, f"q* is not reached from q0 = {short(q0)}")) if bad]
    if failures:
        raise SymvgRuntimeError(f"critical σw² = {sw:.10g} for {act.label} at σb² = {short(sb)} fails its check: "
                                + "; ".join(failures))
    return CriticalPoint(act.label, sb, sw, q, False, q0, None,
                         f"checked: |χ1 − 1| = {abs(chi - 1):.1e} at q* = {q:.6g}, a stable fixed point "
                         f"(map slope {_near_one(slope)} < 1) reached from q0 = {short(q0)}")


def _near_one(x: float) -> str:
    """A float to 4 digits, or as 1 ± gap where 4 digits would read 1 (a slope of 1 − 2e-8 is stable, 1 is not).

    >>> _near_one(0.5), _near_one(1 - 2e-8)
    ('0.5', '1 - 2e-08')
    """
    return not_one(sp.Rational(x), f"{x:.4g}")


def _none(act: Activation, sb: sp.Rational, q0: sp.Rational, div: float | None, best: float,
          hi: float) -> CriticalPoint:
    """No critical point: say what happens instead."""
    if div is None:
        why = f"χ1 < 1 for every σw² up to {hi:g} (at most {best:.4g}): ordered there; σw² above {hi:g} was not searched"
    else:
        why = (f"no σw² gives χ1 = 1 at a finite, stable q* reached from q0 = {short(q0)}, so the order/chaos boundary "
               f"does not exist here: χ1 stays below 1 (at most {best:.10g}) and q diverges from σw² ≈ {div:.10g}")
    return CriticalPoint(act.label, sb, None, None, False, q0, div, why)


def critical_sigma_w2(activation: "str | Activation", sigma_b2: Number = 0, *, q0: Number = 1,
                      bracket: tuple[float, float] = (1e-3, 1e4)) -> CriticalPoint:
    """Solve χ1(σw², σb²) = 1 for σw², re-solving q* from q0 at each σw², and check the answer.

    Exact for piecewise-linear φ: σw² = 1/E[φ'²] = 2/(1+a²) for leaky ReLU (He), 1 for linear.
    Otherwise σw² is scanned upward from ``bracket[0]`` until χ1 reaches 1 (then bisected and
    checked by :func:`_checked`) or q diverges first (then no critical point exists).

    >>> critical_sigma_w2("leaky_relu:0.2").sigma_w2, critical_sigma_w2("linear", 1).q_star
    (25/13, oo)
    >>> critical_sigma_w2("gelu", 0).exists     # σw² = 4 would need q* = 0, which q0 = 1 never reaches
    False
    """
    act = get(activation)
    sb = nonnegative(sigma_b2, "sigma_b2 (σb²)")
    q_in = positive(q0, "q0 (input variance)")
    lo, hi = bracket
    if not 0 < lo < hi < math.inf:
        raise InvalidValueError(f"bracket must be 0 < lo < hi < inf, got {bracket!r}")
    m = moments(act)
    if m.homogeneous:
        return _homogeneous_critical(act, m, sb, q_in)
    origin = _origin_critical(act, m, sb, q_in)
    if origin is not None:
        return origin
    tiny = _tiny_critical(act, m, sb, q_in)
    if tiny is not None:
        return tiny
    kind, a, b, best = _scan(m, float(sb), float(q_in), lo, hi)
    if a is None:
        raise SymvgRuntimeError(f"no critical σw² for {act.label} at σb² = {short(sb)} in {bracket}: χ1 ≥ 1 or q diverges "
                                f"already at σw² = {lo:g}")
    div = None
    if kind == "diverges":
        div, q_sn = _divergence_threshold(m, float(sb), float(q_in))
        if q_sn > float(q_in) * (1 + 1e-6):  # the stable branch ends at a saddle-node, at q_sn
            b, chi = min(b, div), div * m.d(q_sn)
        else:  # q0 itself is the last fixed point: below div the iterates fall to a lower one
            b = div * (1 - 1e-9)
            chi = _chi1_float(m, b, float(sb), float(q_in))
        best = max(best, chi)
        kind = "crosses" if chi >= 1 else kind
    if kind != "crosses":
        return _none(act, sb, q_in, div, best, hi)

    def deficit(log_sw: float) -> float:  # 1 − χ1: ≥ 0 on the ordered side
        return 1 - _chi1_float(m, math.exp(log_sw), float(sb), float(q_in))

    return _checked(act, m, math.exp(_bisect(deficit, math.log(a), math.log(b), rel=1e-14)), sb, q_in)


@dataclass(frozen=True)
class PhaseDiagram(Result):
    """χ1 on a (σb², σw²) grid (rows σb², columns σw²) and the critical line σw²(σb²) (NaN where none)."""

    activation: str
    sigma_w2: np.ndarray
    sigma_b2: np.ndarray
    chi1: np.ndarray
    critical_sigma_w2: np.ndarray


def phase_diagram(activation: "str | Activation", sigma_w2_range: tuple[float, float] = (0.5, 4.0),
                  sigma_b2_range: tuple[float, float] = (0.0, 0.5), n: int = 21) -> PhaseDiagram:
    """Grids for the order/chaos diagram of Poole et al. 2016 / Schoenholz et al. 2017 (Fig. 1).

    >>> pd = phase_diagram("relu", (1, 3), (0, 1), 3)
    >>> pd.chi1.tolist(), pd.critical_sigma_w2.tolist()
    ([[0.5, 1.0, 1.5], [0.5, 1.0, 1.5], [0.5, 1.0, 1.5]], [2.0, 2.0, 2.0])
    """
    if not isinstance(n, int) or n < 2:
        raise InvalidValueError(f"n must be an integer >= 2, got {n!r}")
    (w0, w1), (b0, b1) = sigma_w2_range, sigma_b2_range
    if not (0 <= w0 < w1 and 0 <= b0 <= b1):
        raise InvalidValueError(f"ranges must be increasing and >= 0, got σw² {sigma_w2_range}, σb² {sigma_b2_range}")
    act = get(activation)
    m = moments(act)
    sws, sbs = np.linspace(w0, w1, n), np.linspace(b0, b1, n)
    if m.homogeneous:
        chi = np.tile(sws * float(m.D), (n, 1))
    else:
        chi = np.array([[_chi1_float(m, float(w), float(b)) if w > 0 else 0.0 for w in sws] for b in sbs])
    line = np.full(n, math.nan)
    for i, b in enumerate(sbs):
        try:
            cp = critical_sigma_w2(act, repr(float(b)), bracket=(max(w0, 1e-3), w1))
        except SymvgRuntimeError:
            continue  # no crossing inside the σw² range: NaN, honestly
        line[i] = _float(cp.sigma_w2) if cp.exists else math.nan
    return PhaseDiagram(act.label, sws, sbs, chi, line)


# ----------------------------------------------------------------------------- init rules


@dataclass(frozen=True)
class InitRule(Result):
    """One row of the init table: PyTorch's ``calculate_gain`` value and what mean field says.

    ``derived`` is True when the gain follows from the variance map (gain² = critical σw² at
    σb² = 0, i.e. Var w = gain²/fan_in keeps q and gradients constant); False when it is a
    convention that symvg only reproduces, with ``chi1_at_gain`` showing what it implies.
    """

    name: str
    gain: Any
    gain_squared: Any
    critical_sigma_w2: Any
    chi1_at_gain: Any
    derived: bool
    explanation: str


@lru_cache(maxsize=64)
def _critical_at_zero_bias(act: str) -> Any:
    return critical_sigma_w2(act, 0).sigma_w2


def _gain_rule(name: str, act: str, pytorch_gain: sp.Expr | None, why: str) -> InitRule:
    crit = _critical_at_zero_bias(act)
    if pytorch_gain is None:  # derived: gain = √(critical σw²)
        gain = sp.sqrt(crit)
        return InitRule(name, gain, crit, crit, sp.Integer(1), True, why)
    g2 = pytorch_gain**2
    return InitRule(name, pytorch_gain, g2, crit, _chi1_float(moments(act), float(g2), 0.0), False, why)


def init_rules(negative_slope: Number = "0.01") -> tuple[InitRule, ...]:
    """PyTorch's ``torch.nn.init.calculate_gain`` table, each row derived or explained by mean field.

    >>> [(r.name, r.gain, r.derived) for r in init_rules()[:3]]
    [('linear', 1, True), ('relu', sqrt(2), True), ('leaky_relu', 100*sqrt(20002)/10001, True)]
    """
    a = to_rational(negative_slope, "negative_slope")
    tanh_crit = float(_critical_at_zero_bias("tanh"))
    sig_crit = float(_critical_at_zero_bias("sigmoid"))
    return (
        _gain_rule("linear", "linear", None,
                   "χ1 = σw² for φ = z, so σw² = 1: Var w = 1/fan_in (LeCun); the backward pass asks "
                   "1/fan_out, and Xavier/Glorot's 2/(fan_in+fan_out) is the compromise"),
        _gain_rule("relu", "relu", None,
                   "E[relu(√q u)²] = q/2 and E[H(u)²] = 1/2, so χ1 = σw²/2 = 1 at σw² = 2: He et al. 2015"),
        _gain_rule("leaky_relu", f"leaky_relu:{a}", None,
                   f"E[φ'²] = (1+a²)/2, so the critical σw² is 2/(1+a²) (a = {a}, PyTorch's default 0.01)"),
        _gain_rule("tanh", "tanh", sp.Rational(5, 3),
                   f"5/3 is PyTorch's empirical choice; gain² = 25/9 ≈ 2.78 lies in the chaotic phase "
                   f"(mean-field critical σw² at σb² = 0 is {tanh_crit:.6g}, from tanh'(0) = 1)"),
        _gain_rule("sigmoid", "sigmoid", sp.Integer(1),
                   f"1 is a convention; since σ' ≤ 1/4, χ1 ≤ σw²/16, and the critical σw² at σb² = 0 "
                   f"is {sig_crit:.6g}: gain 1 is deep in the ordered (vanishing) phase"),
        _gain_rule("selu", "selu", sp.Rational(3, 4),
                   "3/4 is PyTorch's choice for gradient flow; self-normalisation needs σw² = 1 "
                   "(nonlinearity='linear'), where SELU's q* = 1 by construction"),
    )


