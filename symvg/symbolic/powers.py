"""Exact powers f^N and their logarithms at a stated precision: the arithmetic under the depth law.

One job: a bound (γ|w|)^N may be far outside float range (0.999^(10^12), 4^-100000), so it is kept
exact -- expanded while short, else an unevaluated power (:func:`symvg.magnitude.power` builds it) --
and compared with a tolerance through logarithms evaluated at a stated number of digits, never through
a float that would round to 0 or inf.

>>> compare_power(sp.Rational(999, 1000), 10**12, sp.Rational(1, 10**400))     # far below 1e-400
-1
>>> depth_to_cross(sp.Rational(1, 4), sp.Rational(1, 10**6))    # 4^-10 < 1e-6 < 4^-9
10
>>> round(log10_power(sp.Rational(1, 4), 10**300) / 10**300, 6)
-0.60206
"""

from __future__ import annotations

import math
from functools import lru_cache

import mpmath
import sympy as sp

from symvg.errors import InvalidValueError, ProofError
from symvg.magnitude import power

_DPS = 50
"""Digits of the log-domain comparisons (:func:`compare_power`); more are used when they do not decide."""


def _ln(v: sp.Expr, dps: int = _DPS) -> mpmath.mpf:
    """ln v at ``dps`` digits for an exact v > 0, also where float(v) would be 0 or inf (Rationals go
    through p and q, an unevaluated power through its exponent; near 1 through log1p of the exact v − 1,
    which ln p − ln q would cancel to 0).

    >>> float(_ln(1 + sp.Rational(1, 4 * 10**400)) * 10**400)     # ln(1 + ε) = ε − …
    0.25
    >>> float(_ln(sp.sqrt(1 + sp.Rational(1, 10**80))) * 10**80)  # irrational, 1e-80 from 1: ln = 5e-81, not 0
    0.5
    """
    with mpmath.workdps(dps):
        if v.is_Rational and abs(v.p - v.q) * 2 < v.q:
            return mpmath.log1p(mpmath.mpf(int(v.p - v.q)) / int(v.q))
        if v.is_Rational:
            return mpmath.log(int(v.p)) - mpmath.log(int(v.q))
        if isinstance(v, sp.Pow) and v.exp.is_Integer:
            return int(v.exp) * _ln(v.base, dps)
        gap = (v - 1).evalf(dps + 5)  # evalf keeps dps digits of the difference itself, not of v
        if gap.is_Float and gap != 0 and abs(gap) < sp.Rational(1, 2):
            return mpmath.log1p(mpmath.mpf(sp.Float(gap, dps + 5)._mpf_))
        return mpmath.log(mpmath.mpf(sp.Float(v.evalf(dps + 5), dps + 5)._mpf_))


def log_rate(f: sp.Expr) -> float:
    """ln f for an exact f ≥ 0 (or ∞): the change of f^N per layer on a log scale; −inf at 0, inf at ∞.

    Taken from the exact f, so a factor beyond float range (1e-999) still has one.

    >>> round(log_rate(sp.Rational(1, 10**999)) / math.log(10), 9), log_rate(sp.Integer(0))
    (-999.0, -inf)
    """
    if f == 0:
        return -math.inf
    if f is sp.oo:
        return math.inf
    return float(_ln(f))


def log10_power(f: sp.Expr, n: int) -> float:
    """log10 of f^n, finite at any depth (a float product would overflow for n near 1e308); −inf at f = 0,
    inf at f = ∞."""
    if f == 0 or f is sp.oo:
        return -math.inf if f == 0 else math.inf
    with mpmath.workdps(30):
        return float(n * _ln(f) / mpmath.log(10))


def compare_power(f: sp.Expr, n: int, t: sp.Expr) -> int:
    """Sign of f^n − t for exact f ≥ 0, t > 0 and an integer n ≥ 1, without building f^n when it is big.

    Exactly when f, t are rational and f^n has at most :data:`~symvg.magnitude.MAX_EXACT_BITS` bits; otherwise by
    n·ln f − ln t at 50, 200 then 1000 digits (plus the digits of n), decided only when the difference
    exceeds the evaluation's error bound. Powers that agree to 1000 digits raise ProofError.

    >>> compare_power(sp.Rational(1, 10), 6, sp.Rational(1, 10**6))
    0
    """
    if f == 0:
        return -1
    if f.is_Rational and t.is_Rational and not isinstance(power(f, n), sp.Pow):
        diff = f ** n - t
        return 0 if diff == 0 else (1 if diff > 0 else -1)
    for dps in (_DPS, 200, 1000):
        work = dps + len(str(n))
        with mpmath.workdps(work):
            lf, lt = _ln(f, work), _ln(t, work)
            d = n * lf - lt
            err = mpmath.mpf(10) ** (10 - dps) * (abs(n * lf) + abs(lt) + 1)
            if abs(d) > err:
                return 1 if d > 0 else -1
    raise ProofError(f"could not decide whether ({sp.N(f, 10)})^{n} is above or below {sp.N(t, 10)}: "
                     "they agree to 1000 digits (the most this comparison uses)")


NUMERIC_DIGITS = 28
"""Digits trusted in a numeric value (a γ from a root found to 30 digits, times |w|): closer to 1 than
this, which side of 1 it lies on is not known."""


@lru_cache(maxsize=4096)
def side(f: sp.Expr) -> int | None:
    """:func:`direction`, or None where f is numeric (holds a Float) and within :data:`NUMERIC_DIGITS`
    digits of 1: a 30-digit γ·|w| of 1 + 1e-32 may truly lie below 1, or exactly on it.

    >>> side(sp.Rational(1, 4)), side(sp.Float("1.0000000000000000000000000000000001", 40)), side(sp.Float("1.01", 30))
    (-1, None, 1)
    """
    if f is not sp.oo and f.has(sp.Float) and abs(sp.N(f - 1, 15)) <= sp.Float(10) ** -NUMERIC_DIGITS * abs(sp.N(f, 15)):
        return None
    return _direction(f)


def direction(f: sp.Expr) -> int:
    """Which way f^N moves as N grows, decided exactly: −1 (f < 1), 0 (f = 1), 1 (f > 1, or f = ∞).
    A numeric f too close to 1 to tell (:func:`side` is None) raises ProofError.

    >>> direction(sp.Rational(1, 4)), direction(2 / sp.sqrt(sp.pi) * sp.sqrt(sp.pi) / 2), direction(sp.oo)
    (-1, 0, 1)
    """
    if f is not sp.oo and side(f) is None:
        raise ProofError(f"could not tell whether {sp.N(f, 10)} is below, at or above 1: it is 1 to the "
                         f"{NUMERIC_DIGITS} digits its numeric value is known to")
    return _direction(f)


@lru_cache(maxsize=4096)
def _direction(f: sp.Expr) -> int:
    if f is sp.oo:
        return 1
    gap = (f - 1).evalf(30)
    if gap.is_Number and abs(gap) > sp.Float("1e-20"):  # 30 evaluated digits settle it; simplify (~0.1 s) is for ties
        return -1 if gap < 0 else 1
    if sp.Eq(f, 1) == sp.true or sp.simplify(f - 1) == 0:
        return 0
    return -1 if bool(f < 1) else 1


@lru_cache(maxsize=4096)  # a sweep asks it once per depth for the same factor and tol
def depth_to_cross(factor: sp.Expr, tol: sp.Expr) -> int | None:
    """Smallest N ≥ 1 with factor^N < tol (factor < 1) or factor^N > 1/tol (factor > 1); None if never
    (factor = 1, or ∞: no power to follow).

    Found with logarithms, then confirmed (and corrected) by :func:`compare_power`: exact where
    the powers are small, at a stated precision in logs where they are not (0.999999999 and 1e-999
    cross at N ≈ 2.3e12).

    >>> depth_to_cross(sp.Integer(2), sp.Rational(1, 1000))         # 2^10 = 1024 > 1000
    10
    >>> depth_to_cross(sp.Integer(1), sp.Rational(1, 1000)) is None
    True
    >>> n = depth_to_cross(1 + sp.Rational(1, 4 * 10**400), sp.Rational(1, 10**6))   # ≈ ln(1e6)·4e400, to the unit
    >>> str(n)[:10], len(str(n))
    ('5526204223', 402)
    """
    if not 0 < tol < 1:
        raise InvalidValueError(f"tol must be in (0, 1), got {tol}")
    way = direction(factor)
    if way == 0 or factor is sp.oo:
        return None
    if factor == 0:
        return 1
    f = factor if way < 0 else 1 / factor
    with mpmath.workdps(_DPS):
        n = max(1, int(mpmath.ceil(_ln(tol) / _ln(f))))
    digits = _DPS + len(str(n))  # the estimate to the unit: at N ~ 1e401, 50 digits would leave 1e351 steps
    with mpmath.workdps(digits):
        n = max(1, int(mpmath.ceil(_ln(tol, digits) / _ln(f, digits))))
    while compare_power(f, n, tol) >= 0:
        n += 1
    while n > 1 and compare_power(f, n - 1, tol) < 0:
        n -= 1
    return n


__all__ = ["NUMERIC_DIGITS", "compare_power", "depth_to_cross", "direction", "log10_power", "log_rate", "side"]
