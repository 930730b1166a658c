"""The critical line at tiny σb², where q* → 0: the moments as series in s = √q, solved in mpmath.

For φ(0) = 0 (tanh, erf, ELU, SELU) the critical σw² tends to 1/φ'(0)² as σb² → 0, and q* with it to 0. There
the float route cannot say where χ1 = 1: q − σw²·V(q) is a difference of nearly equal numbers (tanh: q − V(q)/D(q)
= (4/3)q³ + …), so at σb² = 1e-300 it printed σw² = 1.000000022 for the true 1 + 1.8e-100. Here, instead,

    V(q) = E[φ(s u)²] = Σ v_k s^k,   D(q) = E[φ'(s u)²] = Σ d_k s^k

term by term from each side's Taylor series (u's half-line moments E[u^k; u > 0] = 2^(k/2)·Γ((k+1)/2)/(2√π)), and
the critical point solves, exactly in its coefficients (SymPy), then in mpmath,

    σw² = 1/D(q),   F(s) = q − V(q)/D(q) = σb²,

with the leading q of F cancelled symbolically, so no digits are lost at any σb². The series is asymptotic;
:func:`small_bias_critical` answers only where its last kept orders are below 1e-12 of what it prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import mpmath
import sympy as sp

from symvg.symbolic.activations import Activation
from symvg.symbolic.parse import z
from symvg.theory.meanfield.quadrature import kinks
from symvg.theory.meanfield.theory import origin_slope

__all__ = ["ORDER", "Q_MAX", "small_bias_critical"]

ORDER = 16
"""Terms in s = √q kept in V and D (F and σw² then hold those up to s^(ORDER - 2))."""

Q_MAX = 1e-3
"""The series route answers only for q* below this (there its omitted terms are far below 1e-13)."""

_DPS = 40  # the series has no cancellation left: 40 digits carry every printed one at any magnitude


@dataclass(frozen=True)
class SmallQ:
    """The critical point from the series: σw² = ``base`` + ``offset`` (base = 1/φ'(0)², exact), q* = s²,
    ``slope_gap`` = 1 − σw²·V'(q*) (> 0: a stable fixed point), ``error``: the omitted order relative to the
    offset. mpf values: they hold magnitudes such as 1e-333 that a float cannot."""

    base: sp.Expr
    offset: mpmath.mpf
    q_star: mpmath.mpf
    slope_gap: mpmath.mpf
    error: mpmath.mpf
    gap_below: tuple[mpmath.mpf, ...]  # σw²·V(q) + σb² − q on a grid of (q*, Q_MAX]: < 0 where q falls to q*
    gap_above: tuple[mpmath.mpf, ...] = ()  # the same on a grid of [q0, q*) for q0 < q*: > 0 where q rises to q*


@dataclass(frozen=True)
class _Series:
    base: sp.Expr
    F: tuple[mpmath.mpf, ...]  # coefficients of s^0 … of F(s) = q − V/D
    W: tuple[mpmath.mpf, ...]  # of σw² − base = 1/D − base
    S: tuple[mpmath.mpf, ...]  # of 1 − V'(q)/D(q), the critical map's slope gap
    R: tuple[mpmath.mpf, ...]  # of V − d0·s²
    d0: mpmath.mpf


def _sides(expr: sp.Expr) -> tuple[sp.Expr, sp.Expr] | None:
    """(φ on z < 0, φ on z > 0): each side's formula, or None where φ switches formula away from 0."""
    pw = sp.piecewise_fold(expr.rewrite(sp.Piecewise))
    if not isinstance(pw, sp.Piecewise):
        return pw, pw
    if any(k != 0.0 for k in kinks(expr)):
        return None
    pick = [next((e for e, c in pw.args if c.subs(z, p) == sp.true), None) for p in (-sp.Rational(1, 7), sp.Rational(1, 7))]
    return None if None in pick else (pick[0], pick[1])


def _taylor(act: Activation) -> tuple[tuple[sp.Expr, ...], ...] | None:
    """Each side's Taylor coefficients of φ at 0 (exact, SymPy), z^0 … z^(ORDER + 1); None where a side has none."""
    sides = _sides(act.expr)
    if sides is None:
        return None
    out = []
    for piece in sides:
        taylor = sp.series(piece, z, 0, ORDER + 2).removeO()
        if taylor.has(sp.Order) or not taylor.is_polynomial(z):
            return None
        out.append(tuple(taylor.coeff(z, k) for k in range(ORDER + 2)))
    return tuple(out)


def _mul(a: list, b: list, n: int) -> list:
    """The product of two truncated power series, to s^n. mpmath's 0 times anything is an exact 0, so the orders
    an odd φ leaves out stay exactly 0."""
    return [mpmath.fsum(a[i] * b[k - i] for i in range(k + 1)) for k in range(n + 1)]


def _numeric(taylor: tuple[tuple[sp.Expr, ...], ...], d0: sp.Expr, dps: int) -> tuple[list, ...]:
    """The coefficient lists of F, σw² − base, the slope gap and V − d0·s², at ``dps`` digits."""
    n, top = ORDER, ORDER - 2
    with mpmath.workdps(dps):
        V, D = [mpmath.mpf(0)] * (n + 1), [mpmath.mpf(0)] * (n + 1)
        for sign, coeffs in zip((-1, 1), taylor):
            a = [mpmath.mpf(sp.N(c, dps + 10)) if c != 0 else mpmath.mpf(0) for c in coeffs]
            da = [(k + 1) * a[k + 1] for k in range(n + 1)]
            for k, (p2, d2) in enumerate(zip(_mul(a, a, n), _mul(da, da, n))):
                half = 2 ** (mpmath.mpf(k) / 2) * mpmath.gamma(mpmath.mpf(k + 1) / 2) / (2 * mpmath.sqrt(mpmath.pi))
                V[k] += sign**k * p2 * half  # E[u^k; u < 0] = (-1)^k·E[u^k; u > 0]
                D[k] += sign**k * d2 * half
        inv = [1 / D[0]]
        for k in range(1, top + 1):
            inv.append(-mpmath.fsum(D[j] * inv[k - j] for j in range(1, k + 1)) / D[0])
        F = [-c for c in _mul(V, inv, top)]
        F[2] += 1
        S = [-c for c in _mul([(m + 2) * V[m + 2] / 2 for m in range(top + 1)], inv, top)]
        S[0] += 1
        base = mpmath.mpf(sp.N(1 / d0, dps + 10))
        W = [inv[0] - base] + inv[1:]
        R = V[: top + 1]
        R[2] -= mpmath.mpf(sp.N(d0, dps + 10))
        return F, W, S, R


def _snapped(coarse: list, fine: list) -> tuple[mpmath.mpf, ...] | None:
    """``fine``'s coefficients, with the ones that are 0 (their value shrinks with the precision: the leading q of
    F cancels, and so does F's q² for every odd analytic φ) set to an exact 0; None if the two precisions disagree."""
    out = []
    for c, f in zip(coarse, fine):
        if abs(f) < mpmath.mpf(10) ** -_ZERO and abs(c) < mpmath.mpf(10) ** -(_COARSE - 15):
            out.append(mpmath.mpf(0))
        elif abs(c - f) <= mpmath.mpf(10) ** -(_COARSE - 15) * max(1, abs(f)):
            out.append(+f)
        else:
            return None
    return tuple(out)


_COARSE, _FINE, _ZERO = 60, 120, 90  # digits of the two evaluations, and where the fine one counts as 0


@lru_cache(maxsize=32)
def _series(act: Activation) -> _Series | None:
    """The series of F, σw² and the slope gap, or None where φ(0) ≠ 0, φ'(0) = 0 or a side is not analytic at 0."""
    d0 = origin_slope(act)
    taylor = _taylor(act) if d0 is not None and d0 != 0 else None
    if taylor is None:
        return None
    lists = [_snapped(c, f) for c, f in zip(_numeric(taylor, d0, _COARSE), _numeric(taylor, d0, _FINE))]
    if any(x is None for x in lists) or any(lists[0][:3]):  # F = O(q^(3/2)): q − V/D cancels its q exactly
        return None
    with mpmath.workdps(_DPS):
        return _Series(1 / d0, *(tuple(+c for c in x) for x in lists), mpmath.mpf(sp.N(d0, _DPS + 5)))


def _poly(cs: tuple[mpmath.mpf, ...], s: mpmath.mpf) -> mpmath.mpf:
    return mpmath.fsum(c * s**k for k, c in enumerate(cs) if c)


def _last(cs: tuple[mpmath.mpf, ...], s: mpmath.mpf) -> mpmath.mpf:
    """The size of the last two kept orders: an estimate of what the omitted ones add."""
    return abs(cs[-1] * s ** (len(cs) - 1)) + abs(cs[-2] * s ** (len(cs) - 2))


def small_bias_critical(act: Activation, sigma_b2: sp.Rational, q0: sp.Rational | None = None) -> SmallQ | None:
    """The critical point at σb² > 0 from the series, or None outside its reach (q* ≥ :data:`Q_MAX`, an activation
    without a series at 0, or its last kept orders above 1e-12 of the offset): then the float route answers.

    >>> from symvg.symbolic.activations import get
    >>> r = small_bias_critical(get("tanh"), sp.Rational(1, 10**300))
    >>> r.base, mpmath.nstr(r.offset, 10), mpmath.nstr(r.q_star, 10)      # q* ≈ (3σb²/4)^(1/3), σw² ≈ 1 + 2q*
    (1, '1.817120593e-100', '9.085602964e-101')
    >>> small_bias_critical(get("tanh"), sp.Rational(1, 10)) is None     # q* ≈ 0.38: the float route's
    True
    """
    ser = _series(act) if sigma_b2 > 0 else None
    if ser is None:
        return None
    with mpmath.workdps(_DPS):
        sb = mpmath.mpf(sigma_b2.p) / sigma_b2.q
        s_max = mpmath.sqrt(Q_MAX)
        lead = next((k for k, c in enumerate(ser.F) if c != 0), None)
        if lead is None or ser.F[lead] < 0 or _poly(ser.F, s_max) <= sb:
            return None
        s = _root(ser.F, sb, lead, s_max)
        if s is None:
            return None
        offset = _poly(ser.W, s)
        error = max(_last(ser.W, s) / abs(offset), _last(ser.F, s) / sb) if offset else mpmath.inf
        if not error < mpmath.mpf("1e-12"):
            return None
        grid = [s * (s_max / s) ** (mpmath.mpf(i) / 24) for i in range(1, 25)]
        sw = ser.base + offset
        def gap(t: mpmath.mpf) -> mpmath.mpf:  # σw²·V(t²) + σb² − t², with no cancellation of the t² terms
            return offset * ser.d0 * t**2 + sw * _poly(ser.R, t) + sb

        up: tuple[mpmath.mpf, ...] = ()
        if q0 is not None and q0 < s**2:  # iterates rise from q0: the map must stay above q ↦ q up to q*
            s0 = mpmath.sqrt(mpmath.mpf(q0.p) / q0.q)
            up = tuple(gap(s0 * (s / s0) ** (mpmath.mpf(i) / 24)) for i in range(24))
        return SmallQ(ser.base, +offset, s**2, _poly(ser.S, s), error, tuple(gap(t) for t in grid), up)


def _root(F: tuple[mpmath.mpf, ...], sb: mpmath.mpf, lead: int, s_max: mpmath.mpf) -> mpmath.mpf | None:
    """The s in (0, s_max] with F(s) = σb², by bisection on log s (F is checked to bracket it)."""
    lo = (sb / F[lead]) ** (mpmath.mpf(1) / lead) / 4  # a quarter of the leading-order guess
    hi = s_max
    if not (_poly(F, lo) < sb < _poly(F, hi)):
        return None
    for _ in range(200):  # 200 halvings of log(hi/lo) leave a relative width far below 1e-40
        mid = mpmath.sqrt(lo * hi)
        if _poly(F, mid) < sb:
            lo = mid
        else:
            hi = mid
        if hi / lo - 1 < mpmath.mpf(10) ** (-_DPS + 5):
            break
    return mpmath.sqrt(lo * hi)
