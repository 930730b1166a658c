"""Underflow depth: how many equal factors γ < 1 a product takes to leave the normal range, and to reach 0.

The exact depths come from Rational arithmetic against the dtype's limits (:func:`first_power_below`);
the depth at which the product, computed the way a framework computes it, really is 0 comes from
doing those multiplications in the dtype (:func:`simulate_zero_depth`). They can differ (:attr:`Underflow.note`).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import mpmath
from mpmath import libmp
import numpy as np
import sympy as sp

from symvg.display import Result
from symvg.exact import Number, to_rational
from symvg.errors import InvalidValueError
from symvg.theory.floats.rounding import (_fraction, _power_of_two_exponent, _rational, dtype_text, dtypes, exact_text,
                                          limits, round_to)


def first_power_below(f: Fraction, k: int, strict: bool = True) -> int:
    """Smallest N >= 1 with f^N < 2^-k (``strict``) or f^N <= 2^-k, for 0 < f < 1 -- exactly.

    f^N is never built (N can be 10^9): f^N < 2^-k  <=>  N > x = k / log2(1/f). Unless f is a power
    of two, x is irrational, so N = floor(x) + 1 and interval arithmetic at rising precision
    settles floor(x) rigorously. Powers of two are compared by their exponents.

    >>> first_power_below(Fraction(1, 2), 3), first_power_below(Fraction(1, 2), 3, strict=False)
    (4, 3)
    >>> first_power_below(Fraction(999999, 1000000), 1022)
    708396065
    """
    p, q = f.numerator, f.denominator
    if p == 1 and q & (q - 1) == 0:
        j = q.bit_length() - 1
        return k // j + 1 if strict else max(1, -(-k // j))
    iv = mpmath.iv
    saved = iv.prec
    try:
        prec = 64
        while True:
            iv.prec = prec
            a, b = (iv.mpf(k) * iv.log(2) / iv.log(iv.mpf(q) / iv.mpf(p)))._mpi_
            # The ends' floors read off their binary digits exactly: mpmath.floor rounded them to 53 bits, so
            # x past 2^53 (f = 1 - 1e-17, 1 - 1e-29) gave a wrong N. With f within 2^-prec of 1 the interval
            # of log(1/f) reaches 0 and x's reaches ±inf: refine.
            finite = all(e not in (libmp.finf, libmp.fninf, libmp.fnan) for e in (a, b))
            lo, hi = (libmp.to_int(a, libmp.round_floor), libmp.to_int(b, libmp.round_floor)) if finite else (0, 1)
            if lo == hi:
                return max(1, lo + 1)
            prec *= 2  # x is irrational, so a fine enough interval always separates it from integers
    finally:
        iv.prec = saved


def simulate_zero_depth(factor: np.floating, limit: int = 100_000) -> int | None:
    """Multiplications (1·f·f·…, in f's dtype) until the product is exactly 0; None if it never is.

    If dtype(f) > 1/2 the product can never reach 0: once it is the smallest subnormal s,
    s·f > s/2 rounds back up to s. Otherwise each step at least halves it, so it takes at most a
    few thousand steps; ``limit`` is only a safety net.

    >>> simulate_zero_depth(np.float16(0.5)), simulate_zero_depth(np.float16(0.6))
    (25, None)
    """
    if factor > 0.5:
        return None
    x = factor.dtype.type(1)
    for n in range(1, limit + 1):
        x = x * factor  # NumPy arithmetic in the dtype, rounded every step, as a framework does
        if x == 0:
            return n
    return None  # pragma: no cover - unreachable for factor <= 1/2 in these dtypes


@dataclass(frozen=True)
class Underflow(Result):
    """How deep a product of equal factors can go in a dtype before it underflows.

    ``below_normal_depth``: smallest N with factor^N < smallest normal (exact).
    ``exact_zero_depth``: smallest N with factor^N <= smallest subnormal / 2, i.e. the exact value
    would round to 0 (at exactly s/2 the tie rounds to even, which is 0).
    ``zero_depth``: smallest N at which the product computed in the dtype *is* 0 (None: never).
    """

    dtype: str
    factor: sp.Rational
    factor_in_dtype: str
    below_normal_depth: int
    exact_zero_depth: int
    zero_depth: int | None
    smallest_normal: sp.Rational
    smallest_subnormal: sp.Rational

    @property
    def note(self) -> str:
        """Why ``zero_depth`` differs from ``exact_zero_depth`` (empty when they agree)."""
        if self.zero_depth == self.exact_zero_depth:
            return ""
        if self.zero_depth is None:
            head = f"the computed product never reaches 0: {self.dtype}({self.factor}) = {self.factor_in_dtype}"
            if self._rounds_to_one:
                return f"{head}, so every multiplication gives 1 back and the product stays 1"
            # Where it stops depends on the path down (0.9 in float16 stops at 4 smallest subnormals):
            # only the rule is stated, not a stopping value that was not computed.
            return (f"{head} > 1/2, so a subnormal product k·s (s the smallest subnormal) rounds back to "
                    f"itself once k·(1 − {self.factor_in_dtype}) < 1/2: the product stops at a nonzero "
                    f"value, at s at the lowest")
        changed = "" if _fraction(self.factor) == Fraction(float(np.dtype(self.dtype).type(self.factor_in_dtype))) \
            else f"{self.dtype}({self.factor}) = {self.factor_in_dtype} is not exactly {self.factor}, and "
        return (f"{changed}each multiplication rounds; below the normal range a rounding error is a large "
                f"fraction of the value, so the computed product reaches 0 at N = {self.zero_depth}, "
                f"not {self.exact_zero_depth}")

    @property
    def _rounds_to_one(self) -> bool:
        return float(np.dtype(self.dtype).type(self.factor_in_dtype)) == 1.0

    def as_dict(self) -> dict:
        """JSON-ready: exact values as strings."""
        return {"dtype": self.dtype, "factor": str(self.factor), "below_normal_depth": self.below_normal_depth,
                "zero_depth": self.zero_depth, "exact_zero_depth": self.exact_zero_depth,
                "factor_in_dtype": self.factor_in_dtype, "smallest_normal": str(self.smallest_normal),
                "smallest_subnormal": str(self.smallest_subnormal), "note": self.note}

    def __str__(self) -> str:
        return self.explain()

    def explain(self) -> str:
        """A few plain lines."""
        f = exact_text(self.factor)
        zero = (f"N = {self.zero_depth}" if self.zero_depth is not None
                else f"never (the factor is 1 in {self.dtype}: the product stays 1)" if self._rounds_to_one
                else "never (the computed product stops at a nonzero subnormal)")
        lines = [f"{self.dtype}: product of N factors {f} ({self.dtype}: {self.factor_in_dtype})",
                 f"  leaves the normal range at N = {self.below_normal_depth}: ({f})^N < smallest normal "
                 f"{dtype_text(float(self.smallest_normal))} (from here on digits of precision are lost)",
                 f"  exact value rounds to 0 at N = {self.exact_zero_depth}: ({f})^N <= smallest subnormal / 2 "
                 f"= {dtype_text(float(self.smallest_subnormal))} / 2",
                 f"  computed product (1·f·f·… in {self.dtype}) is exactly 0 at: {zero}"]
        if self.note:
            lines.append(f"  note: {self.note}")
        return "\n".join(lines)


def underflow(factor: Number, dtype: str = "float64") -> Underflow:
    """Underflow depths of factor^N in ``dtype`` (one of float16, float32, float64).

    >>> u = underflow("0.25", "float32")
    >>> (u.below_normal_depth, u.exact_zero_depth, u.zero_depth)
    (64, 75, 75)
    >>> underflow("1.5")
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: factor 3/2 is >= 1: a product of such factors never underflows (it stays >= 1); underflow needs 0 < factor < 1
    """
    f = to_rational(factor, "factor")
    if f >= 1:
        raise InvalidValueError(f"factor {f} is >= 1: a product of such factors never underflows (it stays >= 1); "
                                "underflow needs 0 < factor < 1")
    if f <= 0:
        raise InvalidValueError(f"factor {f} is not allowed: underflow needs 0 < factor < 1 "
                                "(use |factor| for a signed product)")
    lim = limits(dtype)
    fr = _fraction(f)
    f_d = round_to(fr, dtype)
    return Underflow(
        dtype=dtype,
        factor=f,
        factor_in_dtype=dtype_text(f_d),
        below_normal_depth=first_power_below(fr, _power_of_two_exponent(lim["smallest_normal"])),
        exact_zero_depth=first_power_below(fr, _power_of_two_exponent(lim["smallest_subnormal"] / 2), strict=False),
        zero_depth=simulate_zero_depth(f_d),
        smallest_normal=_rational(lim["smallest_normal"]),
        smallest_subnormal=_rational(lim["smallest_subnormal"]),
    )


def underflow_table(factor: Number, dtype: str = "all") -> tuple[Underflow, ...]:
    """:func:`underflow` for each dtype ``dtype`` stands for (``"all"``: float16, float32, float64).

    >>> [u.below_normal_depth for u in underflow_table("0.25")]
    [8, 64, 512]
    """
    return tuple(underflow(factor, d) for d in dtypes(dtype))


__all__ = ["Underflow", "first_power_below", "simulate_zero_depth", "underflow", "underflow_table"]
