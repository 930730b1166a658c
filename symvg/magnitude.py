"""Exact values of any size, shown and serialised without overflow, underflow or unbounded work.

One job: the numeric side of an exact result whose magnitude may lie far outside float64 (the
bound (1/4)^100000, a weight of 1e999, a dead-path probability of 1e-3495).

* :func:`power` keeps b^n exact: expanded while that is cheap, else left as the unevaluated power
  ``(b)**n`` (exact all the same; expanding (9/10)^(10^9) would take minutes and gigabytes).
* :func:`mp` evaluates at :data:`DPS` digits with mpmath, whose exponents are unbounded, so neither
  10^-45757491 nor 10^99700000 becomes 0 or inf. It evaluates the expression *as written*: an
  expression that cancels (½ − erf(20√2)/2) must be written in a form that does not (erfc(20√2)/2).
* :func:`sci`, :func:`log10` and :func:`json_float` read that value: a short text, a log10 that is
  finite for every v > 0, and a float64 for JSON that is ``None`` (with :func:`range_note`) where
  float64 cannot hold it.

>>> b = power(sp.Rational(9, 10), 10**9)
>>> b
(9/10)**1000000000
>>> sci(b), round(log10(b), 3), json_float(b)
('2.74995e-45757491', -45757490.561, 0.0)
>>> power(sp.Rational(1, 4), 10)
1/1048576
>>> sci(sp.Integer(10) ** 999), sci(sp.Rational(1, 3)), sci(0)
('1.0e+999', '0.333333', '0')
"""

from __future__ import annotations

import math
from typing import Iterable, Union

import mpmath
import sympy as sp

from symvg.exact import as_exact
from symvg.errors import InvalidValueError

DPS = 30
"""Digits of every mpmath evaluation here."""

MAX_EXACT_BITS = 12_000
"""Largest b^n (numerator plus denominator bits) expanded into one Rational: about 3,600 digits, cheap
to build and under Python's 4300-digit limit on printing an integer; beyond it the power stays unevaluated."""

Exact = Union[sp.Expr, int]


def power(base: sp.Expr, n: int) -> sp.Expr:
    """base**n, exact: a Rational while it has at most :data:`MAX_EXACT_BITS` bits, else ``(base)**n`` unevaluated.

    >>> power(sp.Integer(2), 10), power(sp.Rational(1, 2), 10**6)
    (1024, (1/2)**1000000)
    """
    base = as_exact(base)
    if base in (0, 1) or n in (0, 1):
        return base ** n
    if base.is_Rational:
        return base ** n if n * _bits(base) <= MAX_EXACT_BITS else sp.Pow(base, n, evaluate=False)
    return sp.Pow(base, n, evaluate=n <= 64)


def product(factors: Iterable[sp.Expr]) -> sp.Expr:
    """∏ factors, exact: multiplied out while the Rational stays within :data:`MAX_EXACT_BITS`, else left as an
    unevaluated product (0 if any factor is 0).

    >>> product([sp.Rational(1, 8), sp.Integer(4)]), product([power(sp.Integer(2), 10**5), sp.Rational(1, 3)])
    (1/2, (1/3)*2**100000)
    """
    done, rest = sp.Integer(1), []
    for f in map(sp.sympify, factors):
        if f == 0:
            return sp.Integer(0)
        if f.is_Rational and _bits(done * f) <= MAX_EXACT_BITS:
            done *= f
        else:
            rest.append(f)
    if not rest:
        return done
    parts = ([done] if done != 1 else []) + rest
    return parts[0] if len(parts) == 1 else sp.Mul(*parts, evaluate=False)


def _bits(r: sp.Rational) -> int:
    return abs(r.p).bit_length() + r.q.bit_length()


def _erfc(x: mpmath.mpf) -> mpmath.mpf:
    """erfc(x) for any x: mpmath's own below |x| = 10^4 (it overflows a float near 10^154), else the
    asymptotic series e^(−x²)/(x√π)·(1 − 1/(2x²) + 3/(4x⁴) − 15/(8x⁶)), whose next term is < 10^-31.

    >>> mpmath.nstr(_erfc(mpmath.mpf(10) ** 5), 6), mpmath.nstr(_erfc(mpmath.mpf(-10) ** 999), 6)
    ('5.23488e-4342944825', '2.0')
    """
    if abs(x) < 10 ** 4:
        return mpmath.erfc(x)
    if x < 0:
        return 2 - _erfc(-x)
    u = 1 / (2 * x * x)
    return mpmath.exp(-x * x) / (x * mpmath.sqrt(mpmath.pi)) * (1 - u + 3 * u ** 2 - 15 * u ** 3)


def _mp(v: sp.Expr) -> mpmath.mpf:
    if v.is_Rational:
        return mpmath.mpf(v.p) / v.q
    if v.is_Pow and v.exp.is_Integer:
        return _mp(v.base) ** int(v.exp)
    if v.is_Mul:
        return mpmath.fprod(_mp(a) for a in v.args)
    if v.is_Add:
        return mpmath.fsum(_mp(a) for a in v.args)
    if isinstance(v, sp.erfc):
        return _erfc(_mp(v.args[0]))
    return sp.lambdify((), v, modules="mpmath")()


def mp(v: Exact) -> mpmath.mpf:
    """v as an mpmath number at :data:`DPS` digits (unbounded exponent); powers by repeated squaring.

    >>> mpmath.nstr(mp(sp.Pow(sp.Rational(1, 2), 10**30, evaluate=False)), 6)
    '3.21346e-301029995663981195213738894725'
    """
    with mpmath.workdps(DPS + 10):
        return +_mp(as_exact(v))


def log10(v: Exact) -> float | None:
    """log10|v| as a float (finite for every v ≠ 0 of this package); None at v = 0.

    >>> log10(sp.Pow(sp.Integer(10), 10**6, evaluate=False)), log10(0)
    (1000000.0, None)
    """
    x = mp(v)
    if x == 0:
        return None
    with mpmath.workdps(DPS):
        return float(mpmath.log10(abs(x)))


def sci(v: Exact, digits: int = 6) -> str:
    """``digits`` significant digits of v: Python's ``g`` format in float64's normal range, else mpmath's.

    >>> sci(sp.Rational(1, 4) ** 50), sci(sp.Pow(sp.Rational(1, 4), 100000, evaluate=False))
    ('7.88861e-31', '1.002e-60206')
    >>> sci(sp.Pow(sp.Rational(1, 2), 10**30, evaluate=False))
    '10**(-3.0103e+29)'
    """
    x = mp(v)
    if x == 0:
        return "0"
    if mpmath.mpf("1e-300") < abs(x) < mpmath.mpf("1e300"):
        return f"{float(x):.{digits}g}"
    if abs(mpmath.mag(x)) > 10 ** 15:    # an exponent too long to read: give the log10 itself
        with mpmath.workdps(DPS):
            return f"{'-' if x < 0 else ''}10**({float(mpmath.log10(abs(x))):.{digits}g})"
    return mpmath.nstr(x, digits)


def short(v: Exact, width: int = 24) -> str:
    """The exact text when it is at most ``width`` characters, else :func:`sci` (never a 4300-digit error).

    >>> short(sp.Rational(1, 3)), short(sp.Integer(10) ** 999), short(sp.Pow(sp.Rational(1, 4), 10**6, evaluate=False))
    ('1/3', '1.0e+999', '(1/4)**1000000')
    """
    v = as_exact(v)
    if v.is_Rational and _bits(v) > 4 * width:
        return not_one(v, sci(v))
    text = str(v)
    return text if len(text) <= width else not_one(v, sci(v))


def _gap(v: sp.Expr) -> mpmath.mpf:
    """v − 1 without cancellation: exact for a Rational, expm1(n·log1p(b − 1)) for b^n, else at DPS digits."""
    with mpmath.workdps(DPS + 10):
        if v.is_Rational:
            return _mp(v - 1)
        if v.is_Pow and v.exp.is_Integer and v.base.is_Rational:
            return mpmath.expm1(int(v.exp) * mpmath.log1p(_mp(v.base - 1)))
        gap = (v - 1).evalf(DPS + 10)  # evalf keeps DPS digits of the difference itself: (1 - √2/2)·w − 1 = 5.6e-52
        return _mp(gap) if gap.is_Float else _mp(v) - 1


def not_one(v: Exact, text: str) -> str:
    """``text`` (a rounded form of v), unless it reads as 1 for a v that is not 1: then ``1 + gap`` or
    ``1 - gap``. A verdict turns on which side of 1 a factor lies, so a rounded 1 would misstate it.

    >>> not_one(sp.Rational(10000001, 10**7), "1"), not_one(sp.Integer(1), "1"), not_one(sp.Rational(1, 4), "0.25")
    ('1 + 1e-07', '1', '0.25')
    >>> not_one(sp.Pow(1 - sp.Rational(1, 10**300), 10**9, evaluate=False), "1")
    '1 - 1e-291'
    >>> not_one(sp.sqrt(1 + sp.Rational(1, 10**80)), "1")        # irrational: the gap's own digits, not 1 ± <1e-30
    '1 + 5e-81'
    """
    v = as_exact(v)
    if text.strip().lstrip("≈ ") not in ("1", "1.0", "1.00000") or v == 1:
        return text
    gap = _gap(v)
    if gap == 0:   # beyond the digits of the evaluation: say how close, not that it is 1
        return f"1 ± <1e-{DPS}"
    return f"1 + {sci(_exact_gap(gap))}" if gap > 0 else f"1 - {sci(_exact_gap(-gap))}"


def _exact_gap(g: mpmath.mpf) -> sp.Expr:
    return sp.Float(g, DPS)


def json_float(v: Exact) -> float | None:
    """The float64 nearest v, or None where v is outside float64's range (JSON has no inf); 0.0 only for 0
    and for values that underflow (pair with :func:`range_note`, which says so).

    >>> json_float(sp.Rational(1, 4)), json_float(sp.Integer(10) ** 999), json_float(sp.Rational(1, 10**400))
    (0.25, None, 0.0)
    """
    x = mp(v)
    f = float(x) if abs(x) < mpmath.mpf(2) ** 1024 else math.inf
    return f if math.isfinite(f) else None


def range_note(name: str, v: Exact, value: float | None, exact_key: str | None = None,
               log_key: str | None = None) -> str:
    """A sentence when ``value`` (from :func:`json_float`) is null or 0.0 although v is not 0; else ''.
    It points to the JSON keys holding the exact value (``name``) and its log10 (``log10_name``; with
    ``log_key=""`` the result has no such key, and the log10 is given in the sentence alone).

    >>> range_note("bound", sp.Rational(1, 10**400), 0.0)
    "bound underflows float64 (shown as 0.0): the exact value is in 'bound', its log10 in 'log10_bound' = -400"
    >>> range_note("factor", sp.Integer(10) ** 999, None, log_key="")
    "factor overflows float64 (shown as null): the exact value is in 'factor', its log10 = 999"
    >>> range_note("value", -sp.Rational(1, 10**400), -0.0, log_key="")  # the sign survives: say so
    "value underflows float64 (shown as -0.0): the exact value is in 'value', its log10 = -400"
    """
    if value is not None and (value != 0 or v == 0):
        return ""
    what = "overflows float64 (shown as null)" if value is None else f"underflows float64 (shown as {value!r})"
    where = "" if log_key == "" else f" in '{log_key or 'log10_' + name}'"
    lg = log10(v)
    if lg is not None and not math.isfinite(lg):  # log10 itself beyond float64 (e^(-1e400)): its digits, not -inf
        with mpmath.workdps(DPS):
            lg_text = mpmath.nstr(mpmath.log10(abs(mp(v))), 6)
    else:
        lg_text = f"{lg:.6g}"
    return f"{name} {what}: the exact value is in '{exact_key or name}', its log10{where} = {lg_text}"


def bounded(v: sp.Expr, what: str) -> sp.Expr:
    """v itself when it is a finite number; an unbounded or undefined one (γ = sup|φ'| = ∞ for exp(z))
    raises InvalidValueError naming ``what``: no finite bound is built on it, and none is printed as inf.

    >>> bounded(sp.Rational(1, 4), "γ")
    1/4
    >>> bounded(sp.oo, "γ of exp(z)")
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: γ of exp(z) is unbounded (oo): no finite bound follows from it
    """
    if v.is_finite is False or v is sp.nan:
        raise InvalidValueError(f"{what} is unbounded ({v}): no finite bound follows from it")
    return v


def fields(name: str, v: Exact) -> dict:
    """JSON fields for an exact value of any size: ``name`` (exact), ``name_value`` (float64 or null),
    ``log10_name`` (null at 0), and ``name_note`` when the float64 is 0.0 or null although v is not 0.

    >>> fields("p", sp.Rational(1, 4))
    {'p': '1/4', 'p_value': 0.25, 'log10_p': -0.6020599913279624}
    >>> fields("p", power(sp.Rational(1, 2), 10**4))["p_note"][:31]
    'p underflows float64 (shown as '
    """
    value = json_float(v)
    d = {name: str(v), f"{name}_value": value, f"log10_{name}": log10(v)}
    note = range_note(name, v, value)
    if note:
        d[f"{name}_note"] = note
    return d


__all__ = ["DPS", "MAX_EXACT_BITS", "bounded", "fields", "json_float", "log10", "mp", "power", "product", "not_one", "range_note",
           "sci", "short"]
