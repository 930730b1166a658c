"""Wide random networks: mean-field signal propagation, the order/chaos line, and init rules derived.

A fully connected net of width n → ∞ with weights ~ N(0, σw²/n) and biases ~ N(0, σb²)
(Poole et al. 2016; Schoenholz et al. 2017, "Deep Information Propagation"; Pennington et al.
2017) is described by a few Gaussian expectations, u ~ N(0, 1):

* variance map   q ↦ σw²·E[φ(√q u)²] + σb², whose stable fixed point is q*;
* χ1 = σw²·E[φ'(√q* u)²], the factor each layer multiplies a squared gradient by;
* correlation map c ↦ (σw²·E[φ(u1)φ(u2)] + σb²)/q*, (u1, u2) with variance q*, correlation c;
  its slope at c = 1 is χ1, so χ1 < 1 is order (gradients vanish), χ1 > 1 chaos (they explode);
* depth scales ξ_q = −1/ln(slope of the variance map at q*), ξ_c = −1/ln χ_c.

Where the expectations have closed forms they are *derived* with ``sympy.integrate`` (any
activation whose pieces are polynomials: ReLU, leaky ReLU, linear, hard sigmoid) or by Price's
theorem (erf), and the results stay exact:

>>> mf = mean_field("relu", 2, 0)
>>> mf.chi1, mf.verdict
(1, 'critical')
>>> mean_field("leaky_relu:0.2", 1, "0.1").q_star   # σb²/(1 − σw²(1+a²)/2)
5/24
>>> critical_sigma_w2("relu", "0.3").sigma_w2          # He: 2, for any σb²
2

Everything else (tanh, sigmoid, GELU, SiLU, softplus, ELU, ...) is integrated by composite
Gauss–Legendre quadrature split at kinks, accurate to ~1e-12 (the tests compare it with mpmath):

>>> round(critical_sigma_w2("tanh", "0.05").sigma_w2, 6)   # Schoenholz et al. 2017: σw² ≈ 1.76
1.760955
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Callable, Sequence

import numpy as np
import sympy as sp

from .activations import Activation, Number, get, to_rational, z
from .errors import BackendUnavailableError, InvalidValueError, SymvgRuntimeError

Q = sp.Symbol("q", positive=True)
"""The pre-activation variance the closed-form expectations are written in."""

_u = sp.Symbol("u", real=True)
_RHO = sp.exp(-_u**2 / 2) / sp.sqrt(2 * sp.pi)  # standard normal density

CRITICAL_TOL = 1e-8
"""|χ1 − 1| below this is called critical when χ1 is a float (exact χ1 must equal 1)."""

_BIG = 1e15  # q beyond this is reported as divergent (q* = oo)


# ----------------------------------------------------------------------------- activations


def erf_activation() -> Activation:
    """φ(z) = erf(z), the activation whose mean-field kernel is in closed form (Williams 1997)."""
    return Activation("erf", sp.erf(z), sp.diff(sp.erf(z), z))


def selu_activation() -> Activation:
    """SELU (Klambauer et al. 2017): λ·z for z > 0, λα(e^z − 1) otherwise; built so q* = 1 at σw² = 1."""
    lam = sp.Float("1.0507009873554804934193349852946", 30)
    alpha = sp.Float("1.6732632423543772848170429916717", 30)
    return Activation("selu", sp.Piecewise((lam * alpha * (sp.exp(z) - 1), z <= 0), (lam * z, True)),
                      sp.Piecewise((lam * alpha * sp.exp(z), z < 0), (lam * alpha, sp.Eq(z, 0)), (lam, True)),
                      convention="φ'(0) = λα (pytorch)")


EXTRA: dict[str, Callable[[], Activation]] = {"erf": erf_activation, "selu": selu_activation}
"""Activations this module adds to :func:`symvg.activations.get` (candidates for the catalogue)."""


def resolve(activation: "str | Activation") -> Activation:
    """An :class:`Activation` from a name (the catalogue, plus ``erf`` and ``selu``) or itself.

    >>> resolve("erf").expr, resolve("leaky_relu:0.2").label
    (erf(z), 'leaky_relu(negative_slope=1/5)')
    """
    if isinstance(activation, str) and activation.strip().lower() in EXTRA:
        return EXTRA[activation.strip().lower()]()
    return get(activation)


# ----------------------------------------------------------------------------- quadrature

_GL_X, _GL_W = np.polynomial.legendre.leggauss(20)
_U_MAX = 10.0  # P(|u| > 10) ≈ 1.5e-23: beyond every tolerance used here
_U_GRID = np.linspace(-_U_MAX, _U_MAX, 41)  # panels of width 0.5 in u: resolves the Gaussian
_Z_GRID = np.linspace(-20.0, 20.0, 81)  # panels of width 0.5 in z = √q u: resolves φ itself at large q


def _panel_rule(breaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of 20-point Gauss–Legendre on every panel between sorted ``breaks``."""
    a, b = breaks[:-1, None], breaks[1:, None]
    x = (a + b) / 2 + (b - a) / 2 * _GL_X
    w = (b - a) / 2 * _GL_W
    return x.ravel(), w.ravel()


def gauss_expect(f: Callable[[np.ndarray], np.ndarray], q: float, kinks: Sequence[float] = ()) -> float:
    """E_{u~N(0,1)}[f(√q·u)] by composite Gauss–Legendre on |u| ≤ 10, split at every kink.

    Panels are laid on a grid in u (the Gaussian's scale) and on a grid in z = √q·u (φ's own
    scale, which matters when q is large and φ looks like a step), so both regimes are resolved.

    >>> round(gauss_expect(lambda z: z**2, 2.5), 12)
    2.5
    >>> round(gauss_expect(lambda z: (z > 0) * 1.0, 4.0, kinks=[0.0]), 12)
    0.5
    """
    if q < 0 or not math.isfinite(q):
        raise InvalidValueError(f"variance q must be finite and >= 0, got {q!r}")
    # q = 0 means the limit q → 0+: a kink at 0 then averages its two sides, as the limit does
    s = math.sqrt(q) if q > 0 else 1e-150
    extra = np.concatenate([_Z_GRID / s, np.asarray(kinks, dtype=float) / s])
    breaks = np.unique(np.concatenate([_U_GRID, extra[np.abs(extra) < _U_MAX]]))
    u, w = _panel_rule(breaks)
    with np.errstate(over="ignore", under="ignore"):
        vals = np.asarray(f(s * u), dtype=float) * np.broadcast_to(1.0, u.shape)
    total = float(np.dot(w, vals * np.exp(-u * u / 2))) / math.sqrt(2 * math.pi)
    if not math.isfinite(total):
        raise SymvgRuntimeError(f"Gaussian expectation overflowed at q = {q:g}; the activation grows too fast there")
    return total


def _numpy_function(expr: sp.Expr) -> Callable[[np.ndarray], np.ndarray]:
    """φ as a NumPy function (SciPy's erf when present, else a vectorised math.erf)."""
    try:
        import scipy.special  # noqa: F401  (lambdify picks erf from it)

        modules: list[Any] = ["scipy", "numpy"]
    except ImportError:  # scipy is optional: erf from the standard library
        modules = [{"erf": np.vectorize(math.erf, otypes=[float])}, "numpy"]
    return sp.lambdify(z, expr, modules=modules)


def kinks(expr: sp.Expr) -> tuple[float, ...]:
    """The points where a piecewise φ (or φ') switches formula, from its Piecewise conditions.

    >>> kinks(get("hard_sigmoid").expr), kinks(get("tanh").expr)
    ((-3.0, 3.0), ())
    """
    pw = sp.piecewise_fold(expr.rewrite(sp.Piecewise))
    points = set()
    for rel in pw.atoms(sp.Rel):
        for side, other in ((rel.lhs, rel.rhs), (rel.rhs, rel.lhs)):
            if side == z and other.is_number:
                points.add(float(other))
    return tuple(sorted(points))


# ----------------------------------------------------------------------------- the moments


def _piecewise_pieces(expr: sp.Expr) -> list[sp.Expr]:
    pw = sp.piecewise_fold(expr.rewrite(sp.Piecewise))
    return [e for e, _ in pw.args] if isinstance(pw, sp.Piecewise) else [pw]


def _gauss_integral(expr: sp.Expr) -> sp.Expr:
    """E_{u~N(0,1)}[expr(√q u)] with ``sympy.integrate``: the derivation, not a typed-in formula."""
    pw = sp.piecewise_fold(expr.rewrite(sp.Piecewise))
    pairs = pw.as_expr_set_pairs(sp.S.Reals) if isinstance(pw, sp.Piecewise) else [(pw, sp.S.Reals)]
    total = sp.Integer(0)
    for piece, where in pairs:  # one Gaussian integral per piece: far faster than integrating a Piecewise
        for iv in (where.args if isinstance(where, sp.Union) else (where,)):
            if isinstance(iv, sp.Interval) and iv.measure != 0:
                a, b = iv.inf / sp.sqrt(Q), iv.sup / sp.sqrt(Q)  # z = √q·u
                total += sp.integrate(piece.subs(z, sp.sqrt(Q) * _u) * _RHO, (_u, a, b))
    return sp.simplify(total)


@dataclass(frozen=True)
class Moments:
    """The Gaussian expectations of one activation, V(q) = E[φ(√q u)²] and D(q) = E[φ'(√q u)²].

    ``V``/``D`` are SymPy expressions in :data:`Q` when a closed form was derived, else None and
    the numbers come from :func:`gauss_expect`. ``homogeneous`` means V = k·q and D = const
    (piecewise-linear through 0), where q* and χ1 are exact rationals.
    """

    activation: Activation
    V: sp.Expr | None
    D: sp.Expr | None
    method: str
    kinks: tuple[float, ...]

    @property
    def homogeneous(self) -> bool:
        return (self.V is not None and self.D is not None and sp.diff(self.V, Q, 2) == 0
                and self.V.subs(Q, 0) == 0 and not self.D.has(Q))

    def v(self, q: float) -> float:
        """E[φ(√q u)²] as a float."""
        if self.V is not None:
            return float(_as_float_fn(self.V)(q)) if q > 0 else float(self.V.limit(Q, 0) if q == 0 else 0)
        return gauss_expect(_square(self.activation.expr), q, self.kinks)

    def d(self, q: float) -> float:
        """E[φ'(√q u)²] as a float."""
        if self.D is not None:
            return float(_as_float_fn(self.D)(q)) if q > 0 else float(sp.limit(self.D, Q, 0))
        return gauss_expect(_square(self.activation.derivative), q, self.kinks)


@lru_cache(maxsize=None)
def _as_float_fn(expr: sp.Expr) -> Callable[[float], float]:
    return sp.lambdify(Q, expr, modules="mpmath")


@lru_cache(maxsize=None)
def _square(expr: sp.Expr) -> Callable[[np.ndarray], np.ndarray]:
    f = _numpy_function(expr)
    return lambda x: np.asarray(f(x), dtype=float) ** 2


@lru_cache(maxsize=None)
def moments(activation: "str | Activation") -> Moments:
    """Derive V(q), D(q) for ``activation``: SymPy when the pieces are polynomials or φ = erf.

    >>> m = moments("relu"); m.V, m.D, m.homogeneous
    (q/2, 1/2, True)
    >>> moments("erf").V
    2*asin(2*q/(2*q + 1))/pi
    >>> moments("tanh").method
    'quadrature'
    """
    act = resolve(activation)
    ks = tuple(sorted(set(kinks(act.expr)) | set(kinks(act.derivative))))
    if act.expr == sp.erf(z):
        V, D = _erf_moments()
        return Moments(act, V, D, "closed form (Price's theorem + SymPy)", ks)
    pieces = _piecewise_pieces(act.expr) + _piecewise_pieces(act.derivative)
    if all(p.is_polynomial(z) and not p.has(sp.Float) for p in pieces):
        return Moments(act, _gauss_integral(act.expr**2), _gauss_integral(act.derivative**2),
                       "closed form (sympy.integrate)", ks)
    return Moments(act, None, None, "quadrature", ks)


@lru_cache(maxsize=1)
def _erf_moments() -> tuple[sp.Expr, sp.Expr]:
    """Derive E[erf(√q u)²] and E[erf'(√q u)²] with SymPy.

    D(q) is a plain Gaussian integral. For V, Price's theorem: with Cov(x1, x2) = s and
    Var = q, ∂E[erf(x1)erf(x2)]/∂s = E[erf'(x1)erf'(x2)] = (4/π)/√((1+2q)² − 4s²) (a Gaussian
    integral of exp(−x1² − x2²)); at s = 0 the odd erf gives 0, so V(q) = ∫_0^q ds (…), which
    SymPy does after s = (1+2q)t/2.
    """
    D = _gauss_integral(sp.diff(sp.erf(z), z) ** 2)
    t, x = sp.symbols("t x", positive=True)
    antideriv = sp.integrate(1 / sp.sqrt(1 - t**2), (t, 0, x))  # asin(x)
    V = sp.simplify(sp.Rational(4) / sp.pi * sp.Rational(1, 2) * antideriv.subs(x, 2 * Q / (1 + 2 * Q)))
    return V, D


# ----------------------------------------------------------------------------- fixed points


def _bisect(g: Callable[[float], float], lo: float, hi: float, rel: float = 1e-15) -> float:
    """A root of g with g(lo) ≥ 0 > g(hi), to relative precision ``rel``.

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
        if hi - lo <= rel * max(abs(hi), 1e-300) or gx == 0:
            break
        if hi - lo > width / 2:  # slow progress: bisect once
            mid = (lo + hi) / 2
            gm = g(mid)
            lo, glo, hi, ghi = (mid, gm, hi, ghi) if gm >= 0 else (lo, glo, mid, gm)
            side = 0
    return x if gx == 0 else (lo + hi) / 2


def _q_star_float(m: Moments, sw: float, sb: float, q0: float = 1.0) -> float:
    """The fixed point the variance map reaches from q0 (the input's second moment).

    A few iterations show which way the map moves; the bracket is then grown in that direction
    until the sign of g(q) = map(q) − q changes, so the root found is the attracting one.
    """
    def g(q: float) -> float:
        return sw * m.v(q) + sb - q

    q = q0
    for _ in range(6):
        q = sw * m.v(q) + sb
        if q > _BIG:
            return math.inf
    gq = g(q)
    if gq == 0:
        return q
    if gq > 0:
        lo, hi = q, 2 * q
        while g(hi) >= 0:
            lo, hi = hi, 2 * hi
            if hi > _BIG:
                return math.inf
        return _bisect(g, lo, hi)
    hi, lo = q, q / 2
    while g(lo) < 0:
        hi, lo = lo, lo / 4
        if lo < 1e-30:
            if g(0.0) <= 0:  # q = 0 is the attracting fixed point (σb² = 0, φ(0) = 0)
                return 0.0
            lo = 0.0
            break
    return _bisect(g, lo, hi)


def _q_star_exact(m: Moments, sw: sp.Rational, sb: sp.Rational, q0: sp.Expr = sp.Integer(1)) -> sp.Expr:
    """q* when V = k·q: σb²/(1 − σw²k), or 0, q0 (every q fixed) or oo (the map grows without bound)."""
    slope = sw * m.V.coeff(Q)
    if slope < 1:
        return sb / (1 - slope)
    if sb == 0 and (slope == 1 or q0 == 0):
        return q0
    return sp.oo


# ----------------------------------------------------------------------------- correlation map


def _arccos_kernels(r: sp.Expr, l: sp.Expr, c: float) -> tuple[float, float]:
    """E[φ(u1)φ(u2)]/q and E[φ'(u1)φ'(u2)] for φ = r·z (z>0), l·z (z<0) (Cho & Saul 2009).

    With θ = arccos c and J(c) = (√(1−c²) + (π−θ)c)/(2π) (the ReLU kernel, φ = r·relu(z) −
    l·relu(−z) expanded): E[φφ]/q = (r²+l²)J(c) − 2rl·J(−c), E[φ'φ'] = ((r²+l²)(π−θ) + 2rlθ)/(2π).
    """
    def J(x: float) -> float:
        return (math.sqrt(max(0.0, 1 - x * x)) + (math.pi - math.acos(x)) * x) / (2 * math.pi)

    r, l = float(r), float(l)
    theta = math.acos(max(-1.0, min(1.0, c)))
    return ((r * r + l * l) * J(c) - 2 * r * l * J(-c),
            ((r * r + l * l) * (math.pi - theta) + 2 * r * l * theta) / (2 * math.pi))


_GL2_X, _GL2_W = _panel_rule(np.linspace(-9.0, 9.0, 19))  # 2-D product rule: 360 nodes per axis


def bivariate_expect(f: Callable, g: Callable, q: float, c: float) -> float:
    """E[f(u1)g(u2)], (u1, u2) centred normal with variances q and correlation c (product Gauss–Legendre).

    >>> round(bivariate_expect(lambda x: x, lambda y: y, 2.0, 0.3), 12)
    0.6
    """
    s = math.sqrt(q)
    z1, z2 = _GL2_X[:, None], _GL2_X[None, :]
    w = (_GL2_W[:, None] * _GL2_W[None, :]) * np.exp(-(z1**2 + z2**2) / 2) / (2 * math.pi)
    u1 = s * z1 * np.ones_like(z2)
    u2 = s * (c * z1 + math.sqrt(max(0.0, 1 - c * c)) * z2)
    with np.errstate(over="ignore", under="ignore"):
        return float(np.sum(w * np.asarray(f(u1), dtype=float) * np.asarray(g(u2), dtype=float)))


def _two_slopes(act: Activation) -> tuple[sp.Expr, sp.Expr] | None:
    """(right slope, left slope) when φ is piecewise linear through 0 with one kink at 0, else None."""
    if act.expr == z:
        return sp.Integer(1), sp.Integer(1)
    pw = sp.piecewise_fold(act.expr.rewrite(sp.Piecewise))
    if kinks(act.expr) != (0.0,) or not isinstance(pw, sp.Piecewise):
        return None
    r, l = sp.diff(act.expr, z).subs(z, 1), sp.diff(act.expr, z).subs(z, -1)
    if sp.simplify(act.expr.subs(z, 2) - 2 * r) != 0 or sp.simplify(act.expr.subs(z, -2) + 2 * l) != 0:
        return None
    return r, l


def correlation_kernels(activation: "str | Activation", q: float, c: float) -> tuple[float, float]:
    """(E[φ(u1)φ(u2)], E[φ'(u1)φ'(u2)]) at variance q and correlation c; closed forms where known.

    >>> k, kp = correlation_kernels("relu", 1.0, 0.0); round(k, 12), kp   # 1/(2π), 1/4
    (0.159154943092, 0.25)
    """
    act = resolve(activation)
    slopes = _two_slopes(act)
    if slopes is not None:
        kk, kp = _arccos_kernels(*slopes, c)
        return q * kk, kp
    if act.expr == sp.erf(z):  # Williams 1997, and Price's theorem for the derivative kernel
        return (2 / math.pi * math.asin(2 * q * c / (1 + 2 * q)),
                4 / math.pi / math.sqrt((1 + 2 * q) ** 2 - 4 * q * q * c * c))
    f, fp = _numpy_function(act.expr), _numpy_function(act.derivative)
    return bivariate_expect(f, f, q, c), bivariate_expect(fp, fp, q, c)


def correlation_map(activation: "str | Activation", sigma_w2: float, sigma_b2: float, q_star: float,
                    c: float) -> float:
    """c ↦ (σw²·E[φ(u1)φ(u2)] + σb²)/q*, (u1, u2) of variance q* and correlation c."""
    return (sigma_w2 * correlation_kernels(activation, q_star, c)[0] + sigma_b2) / q_star


def _c_star(act: Activation, sw: float, sb: float, q: float) -> float:
    """The stable correlation fixed point below 1 in the chaotic phase (bisection keeps map(c) − c ≥ 0 at lo)."""
    def h(c: float) -> float:
        return correlation_map(act, sw, sb, q, c) - c

    hi, ghi = 1 - 1e-9, h(1 - 1e-9)
    lo, glo = 0.0, h(0.0)
    if glo < 0:
        lo, glo = -1.0, h(-1.0)
    if ghi >= 0:  # no crossing resolvable below 1
        return 1.0
    return _bisect(h, lo, hi, rel=1e-13)


# ----------------------------------------------------------------------------- results


def _float(x: Any) -> float:
    return float(x) if not (isinstance(x, sp.Basic) and x.is_infinite) else math.inf


def _json_number(x: Any) -> float | None:
    """Finite numbers as floats; ±inf and NaN as None (JSON has neither)."""
    v = _float(x)
    return v if math.isfinite(v) else None


def _depth_scale(slope: float) -> float:
    """−1/ln(slope): 0 when slope = 0, inf at slope = 1, NaN (undefined) when slope > 1."""
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
class MeanField:
    """The mean-field picture of one (activation, σw², σb²).

    ``q_star`` and ``chi1`` are exact SymPy numbers when the activation is piecewise linear
    through 0 and the inputs are rational; otherwise floats. ``q_star`` is ``oo`` when the
    variance map grows without bound (ReLU with σw² ≥ 2 and σb² > 0). ``xi_q``/``xi_c`` are
    ``inf`` at criticality and NaN where undefined; ``c_star`` is 1 in the ordered and critical
    phases, the stable fixed point below 1 in the chaotic phase, NaN when q* is 0 or oo there.
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

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: numbers as floats, infinities and NaN as null, exact values also as strings."""
        d = {k: (_json_number(v) if isinstance(v, (float, sp.Basic)) else v) for k, v in asdict(self).items()}
        d["chi1_exact"] = str(self.chi1) if self.exact else None
        d["q_star_exact"] = str(self.q_star) if self.exact else None
        return d

    def text(self) -> str:
        """A few lines for the terminal."""
        def fmt(x: Any) -> str:
            if self.exact and isinstance(x, sp.Basic):
                return f"{x}" + ("" if x.is_Integer or x.is_infinite else f" ≈ {float(x):.10g}")
            return f"{_float(x):.10g}"
        gradients = {"ordered": "gradients vanish", "chaotic": "gradients explode",
                     "critical": "gradients neither vanish nor explode"}[self.verdict]
        return "\n".join([
            f"{self.activation}: σw² = {self.sigma_w2}, σb² = {self.sigma_b2}  ({self.method})",
            f"  q*  = {fmt(self.q_star)}",
            f"  χ1  = {fmt(self.chi1)}   (squared gradients scale like χ1^depth)",
            f"  ξ_q = {_float(self.xi_q):.6g}   ξ_c = {_float(self.xi_c):.6g}   c* = {_float(self.c_star):.6g}",
            f"  verdict: {self.verdict} ({gradients})",
        ])


def _parse_sigma(value: Number, what: str) -> sp.Rational:
    v = to_rational(value, what)
    if v < 0:
        raise InvalidValueError(f"{what} must be >= 0, got {value!r}")
    return v


def mean_field(activation: "str | Activation", sigma_w2: Number, sigma_b2: Number = 0, *,
               tol: float = CRITICAL_TOL) -> MeanField:
    """q*, χ1, depth scales, c* and the verdict for a wide random network.

    >>> mf = mean_field("relu", "3/2", 0); mf.chi1, mf.q_star, mf.verdict
    (3/4, 0, 'ordered')
    >>> mf = mean_field("tanh", 1, "0.05"); round(mf.chi1, 6), mf.verdict
    (0.759032, 'ordered')
    """
    act = resolve(activation)
    sw, sb = _parse_sigma(sigma_w2, "sigma_w2 (σw²)"), _parse_sigma(sigma_b2, "sigma_b2 (σb²)")
    m = moments(act)
    if m.homogeneous:
        q = _q_star_exact(m, sw, sb)
        chi1 = sw * m.D
        slope = sw * m.V.coeff(Q)
        exact = True
    else:
        q = _q_star_float(m, float(sw), float(sb))
        if math.isinf(q):
            raise SymvgRuntimeError(f"variance map of {act.label} diverges at σw² = {sw}, σb² = {sb}")
        chi1 = float(sw) * m.d(q)
        h = 1e-4 * max(q, 1e-6)  # Richardson-extrapolated central differences: O(h⁴)
        d1 = (m.v(q + h) - m.v(max(q - h, 0.0))) / (2 * h) if q > h else (m.v(q + h) - m.v(q)) / h
        d2 = (m.v(q + h / 2) - m.v(q - h / 2)) / h if q > h else d1
        slope = float(sw) * ((4 * d2 - d1) / 3 if q > h else d1)
        exact = False
    v = verdict(chi1, tol)
    qf = _float(q)
    c_star, chi_c = 1.0, _float(chi1)
    if v == "chaotic":
        if 0 < qf < math.inf:
            c_star = _c_star(act, float(sw), float(sb), qf)
            chi_c = float(sw) * correlation_kernels(act, qf, c_star)[1]
        else:
            c_star = chi_c = math.nan
    return MeanField(act.label, sw, sb, q, chi1, _depth_scale(_float(slope)), _depth_scale(chi_c) if
                     v != "critical" else math.inf, c_star, chi_c, slope, v, exact, m.method)


# ----------------------------------------------------------------------------- critical line


@dataclass(frozen=True)
class CriticalPoint:
    """The σw² at which χ1 = 1 for a given σb², and q* there (``oo`` for ReLU-like φ with σb² > 0)."""

    activation: str
    sigma_b2: sp.Rational
    sigma_w2: Any
    q_star: Any
    exact: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (infinite q* as null, exact values also as strings)."""
        return {"activation": self.activation, "sigma_b2": float(self.sigma_b2),
                "sigma_w2": _json_number(self.sigma_w2), "q_star": _json_number(self.q_star),
                "sigma_w2_exact": str(self.sigma_w2) if self.exact else None,
                "q_star_exact": str(self.q_star) if self.exact else None, "exact": self.exact}

    def text(self) -> str:
        """One line for the terminal."""
        sw = f"{self.sigma_w2}" if self.exact else f"{float(self.sigma_w2):.10g}"
        q = str(self.q_star) if self.exact else f"{_float(self.q_star):.10g}"
        return f"{self.activation}: critical σw² = {sw} at σb² = {self.sigma_b2} (q* = {q})"


def _chi1_float(m: Moments, sw: float, sb: float) -> float:
    q = _q_star_float(m, sw, sb)
    return math.inf if math.isinf(q) else sw * m.d(q)


def _origin_critical(act: Activation, sb: sp.Rational) -> sp.Expr | None:
    """σw² = 1/φ'(0)² when σb² = 0, φ(0) = 0 and φ is smooth at 0 with the chaotic side beyond.

    Then q = 0 is a fixed point with slope σw²φ'(0)² = χ1: it attracts, and χ1 = σw²φ'(0)² < 1,
    until σw² = 1/φ'(0)², where order ends (tanh: σw² = 1 exactly). Root-finding χ1 = 1 there is
    ill-conditioned (χ1 − 1 is second order on the chaotic side), so the exact value is used
    once the chaotic side is confirmed numerically.
    """
    if sb != 0 or act.expr.subs(z, 0) != 0 or 0.0 in kinks(act.expr) + kinks(act.derivative):
        return None
    slope0 = sp.simplify(act.derivative.subs(z, 0))
    if slope0 == 0 or not slope0.is_real:
        return None
    sw = 1 / slope0**2
    if _chi1_float(moments(act), 1.05 * float(sw), 0.0) <= 1:
        return None
    return sw


def critical_sigma_w2(activation: "str | Activation", sigma_b2: Number = 0, *,
                      bracket: tuple[float, float] = (1e-3, 1e4)) -> CriticalPoint:
    """Solve χ1(σw², σb²) = 1 for σw² (q* moves with σw², so the whole fixed point is re-solved).

    Exact for piecewise-linear φ: σw² = 1/E[φ'²] = 2/(1+a²) for leaky ReLU (He), 1 for linear.
    At that σw² with σb² > 0 the variance map has slope 1 and no fixed point: q* = oo (and with
    σb² = 0 every q is fixed; q* = 1 is reported, the input's scale).

    >>> critical_sigma_w2("leaky_relu:0.2").sigma_w2, critical_sigma_w2("linear", 1).q_star
    (25/13, oo)
    """
    act = resolve(activation)
    sb = _parse_sigma(sigma_b2, "sigma_b2 (σb²)")
    m = moments(act)
    if m.homogeneous:
        if m.D == 0:
            raise InvalidValueError(f"{act.label} has E[φ'²] = 0: no σw² makes χ1 = 1")
        sw = 1 / m.D
        return CriticalPoint(act.label, sb, sw, _q_star_exact(m, sw, sb), True)

    origin = _origin_critical(act, sb)
    if origin is not None:
        return CriticalPoint(act.label, sb, origin, sp.Integer(0), True)

    def deficit(log_sw: float) -> float:  # 1 − χ1: ≥ 0 on the ordered side
        return 1 - _chi1_float(m, math.exp(log_sw), float(sb))

    lo, hi = math.log(bracket[0]), math.log(bracket[1])
    if deficit(lo) <= 0 or deficit(hi) > 0:
        raise SymvgRuntimeError(f"no critical σw² for {act.label} at σb² = {sb} in {bracket}")
    sw = math.exp(_bisect(deficit, lo, hi, rel=1e-14))
    return CriticalPoint(act.label, sb, sw, _q_star_float(m, sw, float(sb)), False)


@dataclass(frozen=True)
class PhaseDiagram:
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
    act = resolve(activation)
    m = moments(act)
    sws, sbs = np.linspace(w0, w1, n), np.linspace(b0, b1, n)
    if m.homogeneous:
        chi = np.tile(sws * float(m.D), (n, 1))
    else:
        chi = np.array([[_chi1_float(m, float(w), float(b)) if w > 0 else 0.0 for w in sws] for b in sbs])
    line = np.full(n, math.nan)
    for i, b in enumerate(sbs):
        try:
            line[i] = _float(critical_sigma_w2(act, repr(float(b)), bracket=(max(w0, 1e-3), w1)).sigma_w2)
        except SymvgRuntimeError:
            pass  # no crossing inside the σw² range: NaN, honestly
    return PhaseDiagram(act.label, sws, sbs, chi, line)


# ----------------------------------------------------------------------------- init rules


@dataclass(frozen=True)
class InitRule:
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


def _gain_rule(name: str, act: str, pytorch_gain: sp.Expr | None, why: str) -> InitRule:
    crit = critical_sigma_w2(act, 0).sigma_w2
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
    tanh_crit = float(critical_sigma_w2("tanh", 0).sigma_w2)
    sig_crit = float(critical_sigma_w2("sigmoid", 0).sigma_w2)
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


# ----------------------------------------------------------------------------- simulation


def _xp(backend: str) -> Any:
    """The array module: NumPy, or CuPy imported only when asked for."""
    if backend == "numpy":
        return np
    if backend == "cupy":
        try:
            import cupy
        except ImportError as e:
            raise BackendUnavailableError(f"backend 'cupy' requested but CuPy is not importable ({e})") from None
        return cupy
    raise InvalidValueError(f"backend must be 'numpy' or 'cupy', got {backend!r}")


def _xp_function(expr: sp.Expr, backend: str) -> Callable:
    if backend == "numpy":
        return _numpy_function(expr)
    return sp.lambdify(z, expr, modules=["cupy"])


@dataclass(frozen=True)
class Simulation:
    """A Monte-Carlo check of mean field on finite random networks (``seeds`` independent nets).

    ``q_layers`` is the per-layer mean squared pre-activation (mean over seeds),
    ``grad_sq`` the per-layer mean squared gradient w.r.t. pre-activations, normalised to 1 at
    the top layer (expected ≈ χ1^(L−l)), ``chi1_fit`` ± ``chi1_stderr`` the per-layer ratio
    fitted by least squares on log ``grad_sq``, averaged over seeds. ``jac_mean``/``jac_var``:
    mean and variance of the squared singular values of ∂h^l/∂h^0 (mean expected ≈ χ1^l).
    """

    activation: str
    sigma_w2: float
    sigma_b2: float
    width: int
    depth: int
    batch: int
    seeds: int
    q_star: float
    chi1: float
    q_layers: tuple[float, ...]
    q_mean: float
    q_stderr: float
    grad_sq: tuple[float, ...]
    chi1_fit: float
    chi1_stderr: float
    jac_mean: tuple[float, ...]
    jac_var: tuple[float, ...]
    jac_mean_stderr: tuple[float, ...]

    @property
    def z_score(self) -> float:
        """(fitted ratio − χ1)/stderr: |z| ≲ 3 is agreement within the statistical error."""
        return (self.chi1_fit - self.chi1) / self.chi1_stderr if self.chi1_stderr > 0 else math.inf

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        d = asdict(self)
        d["z_score"] = self.z_score
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    def text(self) -> str:
        """The agreement, in a few lines."""
        L = self.depth
        return "\n".join([
            f"{self.activation}: σw² = {self.sigma_w2:g}, σb² = {self.sigma_b2:g}; width {self.width}, "
            f"depth {L}, batch {self.batch}, {self.seeds} seeds",
            f"  q^l (layers 1..{L}, mean)  = {self.q_mean:.6g} ± {self.q_stderr:.2g}   mean field q* = {self.q_star:.6g}",
            f"  gradient ratio per layer   = {self.chi1_fit:.6g} ± {self.chi1_stderr:.2g}   mean field χ1 = "
            f"{self.chi1:.6g}   (z = {self.z_score:+.2f})",
            f"  |∂z^l/∂z^L|² at l = 1      = {self.grad_sq[0]:.6g}   χ1^{L - 1} = {self.chi1 ** (L - 1):.6g}",
        ] + ([f"  Jacobian s² mean at depth {L} = {self.jac_mean[-1]:.6g} ± {self.jac_mean_stderr[-1]:.2g}   "
               f"χ1^{L} = {self.chi1 ** L:.6g}   (s² variance {self.jac_var[-1]:.6g})"] if self.jac_mean else []))


def _run_net(xp: Any, phi: Callable, dphi: Callable, rng: Any, sw: float, sb: float, n: int, L: int,
             batch: int, q_in: float, n_jac: int) -> tuple[Any, Any, Any, Any]:
    """One random net: forward q^l, backward |δ^l|², and Jacobian s² moments for ``n_jac`` inputs."""
    z0 = rng.standard_normal((batch, n)) * math.sqrt(q_in)  # inputs already at the fixed point
    h = phi(z0)
    Ws, zs, qs = [], [], []
    for _ in range(L):
        W = rng.standard_normal((n, n)) * math.sqrt(sw / n)
        b = rng.standard_normal(n) * math.sqrt(sb)
        zl = h @ W + b
        Ws.append(W)
        zs.append(zl)
        qs.append(xp.mean(zl * zl))
        h = phi(zl)
    # backward: δ^{l-1} = (δ^l Wᵀ) ⊙ φ'(z^{l-1}), starting from a random top gradient
    delta = rng.standard_normal((batch, n))
    grads = [xp.mean(xp.sum(delta * delta, axis=1))]
    for l in range(L - 1, 0, -1):
        delta = (delta @ Ws[l].T) * dphi(zs[l - 1])
        grads.append(xp.mean(xp.sum(delta * delta, axis=1)))
    # Jacobian ∂h^l/∂h^0 = D_l W_lᵀ … D_1 W_1ᵀ: mean s² = tr(JJᵀ)/n, mean s⁴ = ‖JᵀJ‖²_F/n
    jm, jv = xp.zeros(L), xp.zeros(L)
    for i in range(n_jac):
        J = xp.eye(n)
        for l in range(L):
            J = dphi(zs[l][i])[:, None] * (Ws[l].T @ J)
            m1 = xp.sum(J * J) / n
            JtJ = J.T @ J
            jm[l] += m1 / n_jac
            jv[l] += (xp.sum(JtJ * JtJ) / n - m1 * m1) / n_jac
    return xp.stack(qs), xp.stack(grads[::-1]), jm, jv


def simulate(activation: "str | Activation", sigma_w2: Number, sigma_b2: Number = 0, *, width: int = 256,
             depth: int = 20, batch: int = 32, seeds: int = 8, seed: int = 0, jacobian_inputs: int = 1,
             backend: str = "numpy") -> Simulation:
    """Push inputs through ``seeds`` random width-n nets and a gradient back; compare with mean field.

    >>> s = simulate("relu", 2, 0, width=64, depth=4, batch=8, seeds=2)
    >>> s.chi1, len(s.grad_sq), s.grad_sq[-1]
    (1.0, 4, 1.0)
    """
    for what, v, lo in (("width", width, 2), ("depth", depth, 2), ("batch", batch, 1), ("seeds", seeds, 2),
                        ("jacobian_inputs", jacobian_inputs, 0)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise InvalidValueError(f"{what} must be an integer >= {lo}, got {v!r}")
    if jacobian_inputs > batch:
        raise InvalidValueError(f"jacobian_inputs must be <= batch ({batch}), got {jacobian_inputs}")
    xp = _xp(backend)
    mf = mean_field(activation, sigma_w2, sigma_b2)
    act = resolve(activation)
    sw, sb = float(mf.sigma_w2), float(mf.sigma_b2)
    q = _float(mf.q_star)
    q_in = q if 0 < q < math.inf else 1.0  # q* = 0 or oo (ReLU-like): χ1 does not depend on q
    phi, dphi = _xp_function(act.expr, backend), _xp_function(act.derivative, backend)
    qs, gs, fits, jms, jvs = [], [], [], [], []
    for s in range(seeds):
        rng = xp.random.default_rng(seed + s)
        ql, gl, jm, jv = _run_net(xp, phi, dphi, rng, sw, sb, width, depth, batch, q_in, jacobian_inputs)
        ql, gl = np.asarray(_host(ql), dtype=float), np.asarray(_host(gl), dtype=float)
        qs.append(ql)
        gs.append(gl / gl[-1])
        # squared gradient ∝ χ1^(L−l): the slope of log|δ^l|² against l is −ln χ1
        fits.append(math.exp(-np.polyfit(np.arange(depth), np.log(gl), 1)[0]))
        jms.append(np.asarray(_host(jm), dtype=float))
        jvs.append(np.asarray(_host(jv), dtype=float))
    per_seed_q = np.array([x.mean() for x in qs])
    fits_a = np.array(fits)
    return Simulation(act.label, sw, sb, width, depth, batch, seeds, q, _float(mf.chi1),
                      tuple(np.mean(qs, axis=0).tolist()), float(per_seed_q.mean()),
                      float(per_seed_q.std(ddof=1) / math.sqrt(seeds)), tuple(np.mean(gs, axis=0).tolist()),
                      float(fits_a.mean()), float(fits_a.std(ddof=1) / math.sqrt(seeds)),
                      tuple(np.mean(jms, axis=0).tolist()) if jacobian_inputs else (),
                      tuple(np.mean(jvs, axis=0).tolist()) if jacobian_inputs else (),
                      tuple((np.std(jms, axis=0, ddof=1) / math.sqrt(seeds)).tolist()) if jacobian_inputs else ())


def _host(a: Any) -> Any:
    """A NumPy view of a NumPy or CuPy array."""
    return a.get() if hasattr(a, "get") else a
