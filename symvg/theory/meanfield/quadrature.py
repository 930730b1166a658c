"""Gaussian expectations for mean field: closed forms derived with SymPy, composite quadrature otherwise.

Everything here is an expectation over u ~ N(0, 1) (or a correlated pair): the moments
V(q) = E[φ(√q u)²] and D(q) = E[φ'(√q u)²] and the two-point kernels of the correlation map.
Closed forms are *derived* (``sympy.integrate`` on polynomial pieces, Price's theorem for erf,
the arc-cosine kernel for piecewise-linear φ); the rest is Gauss–Legendre split at kinks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Sequence

import mpmath
import numpy as np
import sympy as sp

from symvg.display import Result
from symvg.symbolic.activations import Activation, get
from symvg.symbolic.parse import z
from symvg.errors import InvalidValueError, SymvgRuntimeError

__all__ = ["Q", "Moments", "moments", "gauss_expect", "bivariate_expect", "kinks", "correlation_kernels"]

Q = sp.Symbol("q", positive=True)
"""The pre-activation variance the closed-form expectations are written in."""

_u = sp.Symbol("u", real=True)
_RHO = sp.exp(-_u**2 / 2) / sp.sqrt(2 * sp.pi)  # standard normal density


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
        raise SymvgRuntimeError(f"Gaussian expectation is not finite at q = {q:g}: the formula of φ (or φ') gave inf or "
                                "NaN there (it grows too fast, or its written form overflows)")
    return total


_LOG1PEXP = sp.Function("log1pexp")
_expm1 = sp.Function("expm1")
_a = sp.Wild("a")


def _overflow_free(expr: sp.Expr) -> sp.Expr:
    """log(1 + e^a) and e^a/(1 + e^a) in forms that do not overflow to inf or inf/inf at large a.

    Softplus is evaluated at z up to 10√q, so e^z overflows once q passes ~5000 (its variance
    map reaches that near σw² = 2); log1pexp is NumPy's logaddexp(0, a), the logistic 1/(1 + e^−a)
    (whose e^−a → inf for a → −∞ gives the right 0: callers silence that overflow).
    """
    expr = expr.replace(sp.log(1 + sp.exp(_a)), _LOG1PEXP(_a))
    expr = expr.replace(lambda e: e.is_Add, _with_expm1)
    # the logistic's derivative e^a/(1 + e^a)² as 1/(e^a + 2 + e^−a): inf/inf (NaN) becomes 1/inf = 0
    expr = expr.replace(sp.exp(_a) / (sp.exp(_a) + 1) ** 2, 1 / (sp.exp(_a) + 2 + sp.exp(-_a)))
    return expr.replace(sp.exp(_a) / (sp.exp(_a) + 1), 1 / (1 + sp.exp(-_a)))


def _with_expm1(add: sp.Expr) -> sp.Expr:
    """c·e^a − c as c·expm1(a): ELU's α(e^z − 1) at the z ~ 1e-150 of a tiny q rounds to 0 the other way."""
    for term in add.args:
        c, rest = term.as_coeff_Mul()
        if isinstance(rest, sp.exp) and -c in add.args:
            return add - term + c + c * _expm1(rest.args[0])
    return add


def _numpy_function(expr: sp.Expr) -> Callable[[np.ndarray], np.ndarray]:
    """φ as a NumPy function (SciPy's erf when present, else a vectorised math.erf), overflow-free.

    >>> f = _numpy_function(get("softplus").derivative)
    >>> with np.errstate(over="ignore"): float(f(np.array(800.0))), float(f(np.array(-800.0)))
    (1.0, 0.0)
    >>> f = _numpy_function(get("sigmoid").derivative)
    >>> with np.errstate(over="ignore"): float(f(np.array(0.0))), float(f(np.array(-800.0))), float(f(np.array(800.0)))
    (0.25, 0.0, 0.0)
    """
    own: dict[str, Any] = {"log1pexp": lambda x: np.logaddexp(0, x), "expm1": np.expm1}
    try:
        import scipy.special  # noqa: F401  (lambdify picks erf from it)

        modules: list[Any] = [own, "scipy", "numpy"]
    except ImportError:  # scipy is optional: erf from the standard library
        modules = [{**own, "erf": np.vectorize(math.erf, otypes=[float])}, "numpy"]
    return sp.lambdify(z, _overflow_free(expr), modules=modules)


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
class Moments(Result):
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
            return _closed_float(self.V, q)
        return gauss_expect(_square(self.activation.expr), q, self.kinks)

    def d(self, q: float) -> float:
        """E[φ'(√q u)²] as a float."""
        if self.D is not None:
            return _closed_float(self.D, q)
        return gauss_expect(_square(self.activation.derivative), q, self.kinks)

    def dv(self, q: float) -> float:
        """V'(q) = dE[φ(√q u)²]/dq as a float: :meth:`q_dv` / q, and the one-sided limit at q = 0."""
        if q > 0:
            return self.q_dv(q) / q
        if self.V is not None:
            return _closed_float(_diff_q(self.V), 0.0)
        return self.q_dv(_DV_SMALL) / _DV_SMALL

    def q_dv(self, q: float) -> float:
        """q·V'(q) for q > 0, never by differencing V where V' is below V's rounding.

        The factor q keeps it in float range where V' is not (sigmoid at q = 5e299: V' ≈ 1e-450,
        q·V' ≈ 1e-150). Closed form: SymPy's derivative of V, at a precision that grows with
        |log10 q| (erf at q = 1e300: V' sits in 1 − (2q/(2q+1))², which 15 digits round to 0).
        Quadrature: q·V'(q) = E[z·φ(z)φ'(z)], z ~ N(0, q) (differentiate under the integral,
        z = √q u), whose relative accuracy holds at any large q, while V(q ± h) differ by less than
        V's ulp there. Below _DV_SMALL that product's odd part cancels instead (terms of size
        √q·φφ'(0) summing to q·V': relative error ~1e-16/√q), so V' is taken at _DV_SMALL there:
        V' changes over [0, q] by O(q) for smooth φ and O(√q) at a kink, so both errors are ~1e-8.
        """
        if self.V is not None:
            return _closed_float(Q * _diff_q(self.V), q, check=True)
        at = max(q, _DV_SMALL)
        value = gauss_expect(_z_phi_dphi(self.activation.expr, self.activation.derivative), at, self.kinks)
        return value if at == q else q * (value / at)


_DV_SMALL = 1e-16
"""q below which :meth:`Moments.q_dv` takes V' at this q: E[z·φφ'] of size q·V' is summed from terms √q·φφ'(0)."""


@lru_cache(maxsize=None)
def _as_float_fn(expr: sp.Expr) -> Callable[[Any], Any]:
    return sp.lambdify(Q, expr, modules="mpmath")


@lru_cache(maxsize=None)
def _diff_q(expr: sp.Expr) -> sp.Expr:
    return sp.diff(expr, Q)


@lru_cache(maxsize=4096)
def _closed_float(expr: sp.Expr, q: float, check: bool = False) -> float:
    """A closed form in :data:`Q` at q, evaluated by mpmath with 30 + 2·|log10 q| digits: q's huge or tiny
    scale cancels inside such forms (1 − (2q/(2q+1))² at q = 1e300 needs 300 digits), and Python floats
    would overflow in them (4q + 1 at q = 1e308). ``check``: also at 20 more digits, and a disagreement
    is reported, not returned.

    >>> f"{_closed_float(4 / (sp.pi * sp.sqrt(4 * Q + 1)), 1e308):.12g}"   # 2/(π·1e154); floats give 0
    '6.36619772368e-155'
    """
    if q < 0 or not math.isfinite(q):
        raise InvalidValueError(f"variance q must be finite and >= 0, got {q!r}")
    if q == 0:
        return float(sp.limit(expr, Q, 0, "+"))
    f = _as_float_fn(expr)
    digits = 30 + 2 * int(abs(math.log10(q)))
    with mpmath.workdps(digits):
        value = f(mpmath.mpf(q))
    if check:
        with mpmath.workdps(digits + 20):
            again = f(mpmath.mpf(q))
        if not mpmath.almosteq(value, again, rel_eps=mpmath.mpf(10) ** -12, abs_eps=0):
            raise SymvgRuntimeError(f"{expr} at q = {q:g} cannot be resolved: {digits} and {digits + 20} digits "
                                    f"give {mpmath.nstr(value, 8)} and {mpmath.nstr(again, 8)}")
    return float(value)


@lru_cache(maxsize=None)
def _square(expr: sp.Expr) -> Callable[[np.ndarray], np.ndarray]:
    f = _numpy_function(expr)
    return lambda x: np.asarray(f(x), dtype=float) ** 2


@lru_cache(maxsize=None)
def _z_phi_dphi(expr: sp.Expr, derivative: sp.Expr) -> Callable[[np.ndarray], np.ndarray]:
    f, fp = _numpy_function(expr), _numpy_function(derivative)
    return lambda x: x * np.asarray(f(x), dtype=float) * np.asarray(fp(x), dtype=float)


def moments(activation: "str | Activation") -> Moments:
    """Derive V(q), D(q) for ``activation``: SymPy when the pieces are polynomials or φ = erf.

    >>> m = moments("relu"); m.V, m.D, m.homogeneous
    (q/2, 1/2, True)
    >>> moments("erf").V
    2*asin(2*q/(2*q + 1))/pi
    >>> moments("tanh").method
    'quadrature'
    """
    return _moments(get(activation))  # one cache entry per activation, by name or by object


@lru_cache(maxsize=None)
def _moments(act: Activation) -> Moments:
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


_FINE_S = 10.0  # √q above which the fixed 2-D grid no longer resolves φ's own scale 1/√q
_GL6_X, _GL6_W = np.polynomial.legendre.leggauss(6)  # per 0.5-wide panel: the integrands are smooth there


def bivariate_expect(f: Callable, g: Callable, q: float, c: float) -> float:
    """E[f(u1)g(u2)], (u1, u2) centred normal with variances q and correlation c (product Gauss–Legendre;
    at large q panels on φ's own scale, :func:`_bivariate_fine`).

    >>> round(bivariate_expect(lambda x: x, lambda y: y, 2.0, 0.3), 12)
    0.6
    """
    s = math.sqrt(q)
    if s > _FINE_S:
        return _bivariate_fine(f, g, s, c)
    z1, z2 = _GL2_X[:, None], _GL2_X[None, :]
    w = (_GL2_W[:, None] * _GL2_W[None, :]) * np.exp(-(z1**2 + z2**2) / 2) / (2 * math.pi)
    u1 = s * z1 * np.ones_like(z2)
    u2 = s * (c * z1 + math.sqrt(max(0.0, 1 - c * c)) * z2)
    with np.errstate(over="ignore", under="ignore"):
        return float(np.sum(w * np.asarray(f(u1), dtype=float) * np.asarray(g(u2), dtype=float)))


def _bivariate_fine(f: Callable, g: Callable, s: float, c: float) -> float:
    """:func:`bivariate_expect` at large s = √q: u1 = s·z1, u2 = s·(c·z1 + r·z2), r = √(1 − c²).

    The fixed grid's nodes are 1/20 apart in z, so φ' of width 1/s falls between them once s is
    large (tanh at σw² = 1e8: E[φ'φ'] came out ~0 and ξ_c = 0, truly 2.21). Here the outer panels
    in z1 follow the Gaussian and f(s·z1); the inner ones in z2, per z1, the Gaussian and the
    line where g switches, z2 = (z/s − c·z1)/r.

    >>> round(_bivariate_fine(np.tanh, np.tanh, 100.0, 0.0), 12), round(_bivariate_fine(np.abs, np.abs, 100.0, 0.0) / 1e4, 12)
    (0.0, 0.636619772368)
    """
    r = math.sqrt(max(0.0, 1.0 - c * c))
    b1 = np.unique(np.concatenate([_U_GRID, _Z_GRID / s]))
    b1 = b1[np.abs(b1) <= _U_MAX]
    a, b = b1[:-1, None], b1[1:, None]
    z1 = ((a + b) / 2 + (b - a) / 2 * _GL6_X).ravel()
    w1 = ((b - a) / 2 * _GL6_W).ravel() * np.exp(-z1 * z1 / 2) / math.sqrt(2 * math.pi)
    with np.errstate(over="ignore", under="ignore"):
        fv = np.asarray(f(s * z1), dtype=float) * np.ones_like(z1)
        if r == 0.0:
            return float(np.sum(w1 * fv * np.asarray(g(s * c * z1), dtype=float)))
        edges = np.clip((_Z_GRID[None, :] / s - c * z1[:, None]) / r, -_U_MAX, _U_MAX)
        b2 = np.sort(np.concatenate([np.broadcast_to(_U_GRID, (z1.size, _U_GRID.size)), edges], axis=1), axis=1)
        lo, hi = b2[:, :-1, None], b2[:, 1:, None]  # empty panels (clipped edges) weigh 0
        z2 = (lo + hi) / 2 + (hi - lo) / 2 * _GL6_X
        w2 = (hi - lo) / 2 * _GL6_W * np.exp(-z2 * z2 / 2) / math.sqrt(2 * math.pi)
        gv = np.asarray(g(s * (c * z1[:, None, None] + r * z2)), dtype=float)
        inner = np.sum(w2 * gv, axis=(1, 2))
    return float(np.sum(w1 * fv * inner))


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
    act = get(activation)
    slopes = _two_slopes(act)
    if slopes is not None:
        kk, kp = _arccos_kernels(*slopes, c)
        return q * kk, kp
    if act.expr == sp.erf(z):  # Williams 1997, and Price's theorem for the derivative kernel
        # (1+2q)² − 4q²c² = (1 + 2q(1−c))(1 + 2q(1+c)), each root taken as √q·√(1/q + 2(1∓c)): no
        # cancellation as c → 1 and no overflow of (1+2q)² (q = 1e200 made it an OverflowError)
        s = math.sqrt(q)
        kernel = 4 / math.pi / (s * math.sqrt(1 / q + 2 * (1 - c))) / (s * math.sqrt(1 / q + 2 * (1 + c)))
        return 2 / math.pi * math.asin(c / (1 + 0.5 / q)), kernel
    f, fp = _numpy_function(act.expr), _numpy_function(act.derivative)
    return bivariate_expect(f, f, q, c), bivariate_expect(fp, fp, q, c)

