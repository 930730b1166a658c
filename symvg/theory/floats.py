"""Where the exact story meets the float: underflowing products and lost SGD updates.

Two dtype facts decide whether a vanishing gradient does any harm in practice, and both are
read from :func:`numpy.finfo` (never from a table typed in by hand):

* **underflow** -- a product of N factors γ < 1 drops below the smallest *normal* number (from
  there on precision is lost digit by digit) and, later, to exactly 0. :func:`underflow` gives the
  exact depths (Rational arithmetic against the dtype's limits) *and* the depth at which the
  product, computed the way a framework computes it, really is 0 -- they can differ:

  >>> u = underflow("0.25", "float16")
  >>> u.below_normal_depth, u.exact_zero_depth, u.zero_depth
  (8, 13, 13)
  >>> underflow("0.75", "float16").zero_depth is None   # 0.75 * (smallest subnormal) rounds back up
  True

* **lost updates** -- an SGD step w - α·g changes nothing when |α·g| is below half the spacing of
  the dtype's numbers next to w. The seeds' deep product (six factors, g = 0.004125):

  >>> f = ["25", "0.25", "0.22", "0.20", "0.15", "0.10"]
  >>> [update("0.25", "0.01", factors=f, dtype=d).lost for d in ("float64", "float32", "float16")]
  [False, False, True]
  >>> update("0.25", "0.01", factors=f).new_weight_exact
  199967/800000

Inputs are exact Rationals (``"0.1"`` is 1/10); a value is converted to a dtype by correct rounding
(nearest, ties to even) and every later operation is NumPy's own arithmetic in that dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import reduce
from typing import Iterable, Sequence

import mpmath
import numpy as np
import sympy as sp

from symvg.exact import Number, to_rational
from symvg.errors import InvalidValueError

DTYPES = ("float16", "float32", "float64")
"""The dtypes whose limits are reported; ``"all"`` means every one of them."""

STEP_CAP = 10**7
"""Most SGD steps simulated in a dtype before :func:`update` says "not within the cap"."""

_CHUNK = 1 << 16  # steps simulated per vectorised block


# ----------------------------------------------------------------------------- dtype facts


def dtypes(spec: str) -> tuple[str, ...]:
    """The dtype names ``spec`` stands for.

    >>> dtypes("all"), dtypes("float32")
    (('float16', 'float32', 'float64'), ('float32',))
    """
    if spec == "all":
        return DTYPES
    if spec not in DTYPES:
        raise InvalidValueError(f"dtype must be one of {', '.join(DTYPES)}, all; got {spec!r}")
    return (spec,)


def _dtype(name: str) -> np.dtype:
    if name not in DTYPES:
        raise InvalidValueError(f"dtype must be one of {', '.join(DTYPES)} here; got {name!r}")
    return np.dtype(name)


def _power_of_two_exponent(x: Fraction) -> int:
    """k with x = 2^-k (the dtype limits are powers of two; say so loudly if that ever changes)."""
    if x.numerator != 1 or x.denominator & (x.denominator - 1):
        raise AssertionError(f"expected a power of two, got {x}")
    return x.denominator.bit_length() - 1


def limits(name: str) -> dict[str, Fraction]:
    """The dtype's smallest normal and smallest subnormal numbers, as exact Fractions.

    >>> limits("float16")["smallest_normal"], limits("float16")["smallest_subnormal"]
    (Fraction(1, 16384), Fraction(1, 16777216))
    """
    fi = np.finfo(_dtype(name))
    return {"smallest_normal": Fraction(float(fi.smallest_normal)),
            "smallest_subnormal": Fraction(float(fi.smallest_subnormal)),
            "max": Fraction(float(fi.max))}


def round_to(value: Fraction, name: str) -> np.floating:
    """``value`` rounded correctly (nearest, ties to even) to the dtype.

    Casting through float64 first could round twice; the neighbours are compared exactly instead.

    >>> round_to(Fraction(1, 10), "float16")
    np.float16(0.1)
    >>> float(round_to(Fraction(2049), "float16"))   # a tie: 2048 (even) wins over 2050
    2048.0
    """
    dt = _dtype(name)
    top = limits(name)["max"]
    if abs(value) > top:
        raise InvalidValueError(f"{_dec(value)} overflows {name}; allowed: |value| <= {float(top):g}")
    c = dt.type(float(value))
    best = None
    with np.errstate(over="ignore"):  # the neighbour of the largest finite value is inf: skipped below
        around = (np.nextafter(c, dt.type(-np.inf)), c, np.nextafter(c, dt.type(np.inf)))
    for cand in around:
        if not np.isfinite(cand):
            continue
        odd = int(np.array(cand, dt).view(f"u{dt.itemsize}")) & 1
        key = (abs(Fraction(float(cand)) - value), odd)
        if best is None or key < best[0]:
            best = (key, cand)
    return best[1]


def _dec(x: "Fraction | sp.Rational", digits: int = 4) -> str:
    """A short decimal for text output (never used for comparisons); fine below float64's range too."""
    return mpmath.nstr(mpmath.mpf(int(x.numerator)) / int(x.denominator), digits)


def exact_text(r: "sp.Rational | Fraction", max_digits: int = 40) -> str:
    """An exact value as a terminating decimal when it is one (and short), else as p/q.

    >>> exact_text(sp.Rational(199967, 800000)), exact_text(sp.Rational(1, 3)), exact_text(sp.Integer(-5))
    ('0.24995875', '1/3', '-5')
    """
    p, q = int(r.numerator), int(r.denominator)
    twos = (q & -q).bit_length() - 1
    fives, rest = 0, q >> twos
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    places = max(twos, fives)
    if rest != 1 or places > max_digits:
        return f"{p}/{q}"
    if places == 0:
        return str(p)
    digits = str(abs(p) * 10**places // q).rjust(places + 1, "0")
    return ("-" if p < 0 else "") + digits[:-places] + "." + digits[-places:]


def _rational(x: Fraction) -> sp.Rational:
    return sp.Rational(x.numerator, x.denominator)


def _fraction(x: sp.Rational) -> Fraction:
    return Fraction(int(x.p), int(x.q))


# ----------------------------------------------------------------------------- underflow


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
            x = iv.mpf(k) * iv.log(2) / iv.log(iv.mpf(q) / iv.mpf(p))
            lo, hi = int(mpmath.floor(x.a)), int(mpmath.floor(x.b))
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
class Underflow:
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
            return (f"the computed product never reaches 0: {self.dtype}({self.factor}) = {self.factor_in_dtype} > 1/2, "
                    f"so the smallest subnormal times it rounds back up to the smallest subnormal")
        changed = "" if _fraction(self.factor) == Fraction(float(np.dtype(self.dtype).type(self.factor_in_dtype))) \
            else f"{self.dtype}({self.factor}) = {self.factor_in_dtype} is not exactly {self.factor}, and "
        return (f"{changed}each multiplication rounds; below the normal range a rounding error is a large "
                f"fraction of the value, so the computed product reaches 0 at N = {self.zero_depth}, "
                f"not {self.exact_zero_depth}")

    def as_dict(self) -> dict:
        """JSON-ready: exact values as strings."""
        return {"dtype": self.dtype, "factor": str(self.factor), "below_normal_depth": self.below_normal_depth,
                "zero_depth": self.zero_depth, "exact_zero_depth": self.exact_zero_depth,
                "factor_in_dtype": self.factor_in_dtype, "smallest_normal": str(self.smallest_normal),
                "smallest_subnormal": str(self.smallest_subnormal), "note": self.note}

    def explain(self) -> str:
        """A few plain lines."""
        f = exact_text(self.factor)
        zero = ("never (computed product sticks at the smallest subnormal)" if self.zero_depth is None
                else f"N = {self.zero_depth}")
        lines = [f"{self.dtype}: product of N factors {f} ({self.dtype}: {self.factor_in_dtype})",
                 f"  leaves the normal range at N = {self.below_normal_depth}: ({f})^N < smallest normal "
                 f"{_dec(self.smallest_normal)} (from here on digits of precision are lost)",
                 f"  exact value rounds to 0 at N = {self.exact_zero_depth}: ({f})^N <= smallest subnormal / 2 "
                 f"= {_dec(self.smallest_subnormal / 2)}",
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
        factor_in_dtype=str(f_d),
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


# ----------------------------------------------------------------------------- SGD update


@dataclass(frozen=True)
class Update:
    """One SGD step w - lr·g, exactly and as ``dtype`` computes it.

    ``lost``: the dtype's new weight equals dtype(w) although the exact change is not 0.
    ``steps_exact`` = ceil(|w|/100 / |lr·g|); ``steps_dtype``: the same, by simulating the steps in
    the dtype (constant gradient), with ``steps_status`` one of "reached", "never" (the weight stops
    changing), "beyond cap" (not reached within :data:`STEP_CAP` steps), "undefined" (w = 0),
    "overflow".
    """

    dtype: str
    weight: sp.Rational
    lr: sp.Rational
    gradient: sp.Rational
    new_weight_exact: sp.Rational
    weight_in_dtype: str
    gradient_in_dtype: str
    step_in_dtype: str
    new_weight: str
    new_weight_error: sp.Rational | None  # dtype's new weight minus the exact one (None if not finite)
    lost: bool
    spacing: sp.Rational  # distance from dtype(w) to its neighbour in the direction of the step
    relative_change: sp.Rational | None
    steps_exact: int | None
    steps_dtype: int | None
    steps_status: str

    @property
    def step(self) -> sp.Rational:
        """The exact change lr·g (subtracted from w)."""
        return self.lr * self.gradient

    def as_dict(self) -> dict:
        """JSON-ready: exact values as Rational strings, dtype values as round-tripping strings."""
        return {"dtype": self.dtype, "weight": str(self.weight), "lr": str(self.lr), "gradient": str(self.gradient),
                "new_weight_exact": str(self.new_weight_exact), "new_weight": self.new_weight, "lost": self.lost,
                "new_weight_error": None if self.new_weight_error is None else str(self.new_weight_error),
                "steps_to_move_1pct": {"exact": self.steps_exact, "dtype": self.steps_dtype,
                                       "status": self.steps_status},
                "weight_in_dtype": self.weight_in_dtype, "gradient_in_dtype": self.gradient_in_dtype,
                "step_in_dtype": self.step_in_dtype, "spacing": str(self.spacing),
                "relative_change": None if self.relative_change is None else str(self.relative_change)}

    def explain(self) -> str:
        """Plain words: what the step does in this dtype."""
        step = abs(self.step)
        head = f"{self.dtype}: new weight {self.new_weight} (exact {exact_text(self.new_weight_exact)})"
        if self.step == 0:
            verdict = "no change: lr·g = 0"
        else:
            # The verdict comes from the dtype's own arithmetic; the words compare the step it used.
            step_f = float(np.dtype(self.dtype).type(self.step_in_dtype))
            if not (np.isfinite(step_f) and np.isfinite(float(np.dtype(self.dtype).type(self.new_weight)))):
                # lr·g or w - lr·g overflowed: the dtype's number is not the answer; say so, not "kept"/"lost"
                what = "lr·g" if not np.isfinite(step_f) else "w - lr·g"
                shown = self.step_in_dtype if not np.isfinite(step_f) else self.new_weight
                verdict = (f"OVERFLOW — {what} is beyond the largest {self.dtype} "
                           f"({_dec(limits(self.dtype)['max'])}): {self.dtype} computes {what} = {shown} and a new "
                           f"weight of {self.new_weight}, which is not the answer (exact "
                           f"{exact_text(self.new_weight_exact)}); use a wider dtype or a smaller lr")
                return "\n".join([head, f"  {verdict}", "  steps to move w by 1% (constant gradient): exact "
                                   f"{'never' if self.steps_exact is None else self.steps_exact}; "
                                   f"undefined ({self.dtype} overflowed)"])
            step_d = abs(Fraction(step_f))
            half = _fraction(self.spacing) / 2
            size = f"|lr·g| = {_dec(step)} ({self.dtype}: {_dec(step_d)})"
            side = "below" if self.step > 0 else "above"  # w - lr·g moves down when lr·g > 0
            where = (f"{_dec(half)}, half the {_dec(_fraction(self.spacing))} gap from {self.weight_in_dtype} "
                     f"to the next {self.dtype} {side} it")
            if self.lost:
                how = "is below" if step_d < half else "is not enough against"
                verdict = f"update LOST — {size} {how} {where}; w stays {self.new_weight}"
            else:
                verdict = f"update kept — {size} is at least {where}"
        steps = {"reached": f"{self.steps_dtype} steps in {self.dtype}",
                 "never": f"never in {self.dtype} (the weight stops changing)",
                 "beyond cap": f"not within {STEP_CAP} simulated steps in {self.dtype}",
                 "undefined": "undefined (w = 0)",
                 "overflow": f"undefined ({self.dtype} overflowed)"}[self.steps_status]
        exact = "never" if self.steps_exact is None else str(self.steps_exact)
        return "\n".join([head, f"  {verdict}",
                          f"  steps to move w by 1% (constant gradient): exact {exact}; {steps}"])


def _product_in_dtype(factors: Sequence[Fraction], name: str) -> np.floating:
    """Left to right, rounding after every multiplication -- how a backward pass forms the product."""
    return reduce(lambda acc, f: acc * round_to(f, name), factors[1:], round_to(factors[0], name))


def _float64_bound(t: Fraction, down: bool) -> float:
    """The largest float64 <= t (``down``) or the smallest >= t: compare dtype values to t exactly."""
    c = float(t)
    if down and Fraction(c) > t:
        c = float(np.nextafter(c, -np.inf))
    if not down and Fraction(c) < t:
        c = float(np.nextafter(c, np.inf))
    return c


def simulate_steps(w: np.floating, step: np.floating, target: Fraction, cap: int = STEP_CAP) -> tuple[int | None, str]:
    """Steps of w <- w - step (in w's dtype) until w has moved by at least ``target``; vectorised.

    Each block of steps is one ``np.subtract.accumulate`` -- the same rounding after every step as
    a scalar loop, at C speed. A step that leaves w unchanged will leave it unchanged forever (same
    w, same step), so that is reported as "never".

    >>> simulate_steps(np.float16(0.25), np.float16(0.0125), Fraction(1, 400))
    (1, 'reached')
    >>> simulate_steps(np.float16(0.25), np.float16(4.125e-5), Fraction(1, 400))
    (None, 'never')
    """
    if step == 0:
        return None, "never"
    if not (np.isfinite(step) and np.isfinite(w - step)):
        return None, "overflow"
    start = Fraction(float(w))
    down = step > 0
    bound = _float64_bound(start - target if down else start + target, down)
    x, done = w, 0
    while done < cap:
        n = min(_CHUNK, cap - done)
        seq = np.full(n + 1, step, dtype=w.dtype)
        seq[0] = x
        path = np.subtract.accumulate(seq)  # path[i] = w after done + i steps
        wide = path.astype(np.float64)  # exact for float16/32/64
        hit = np.flatnonzero(wide[1:] <= bound if down else wide[1:] >= bound)
        stuck = np.flatnonzero(path[1:] == path[:-1])
        if hit.size and (not stuck.size or hit[0] < stuck[0]):
            return done + int(hit[0]) + 1, "reached"
        if stuck.size:
            return None, "never"
        x, done = path[-1], done + n
    return None, "beyond cap"


def update(weight: Number, lr: Number, grad: Number | None = None, factors: Iterable[Number] | None = None,
           dtype: str = "float64") -> Update:
    """One SGD step w - lr·g with g = ``grad`` or the product of ``factors``, exactly and in ``dtype``.

    >>> u = update("0.25", "0.01", factors=["25", "0.25", "0.20"])
    >>> u.gradient, u.new_weight_exact, u.new_weight, u.lost
    (5/4, 19/80, '0.2375', False)
    >>> update("0.25", "0.01", grad="0.004125", dtype="float16").lost
    True
    """
    if (grad is None) == (factors is None):
        raise InvalidValueError("give exactly one of grad or factors")
    name = _dtype(dtype).name
    w = to_rational(weight, "weight")
    a = to_rational(lr, "lr")
    if factors is not None:
        fs = [_fraction(to_rational(f, "factor")) for f in factors]
        if not fs:
            raise InvalidValueError("factors must hold at least one number")
        g = _rational(reduce(lambda x, y: x * y, fs))
    else:
        g = to_rational(grad, "grad")
        fs = [_fraction(g)]
    new_exact = w - a * g

    w_d = round_to(_fraction(w), name)
    a_d = round_to(_fraction(a), name)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        g_d = _product_in_dtype(fs, name)
        step_d = a_d * g_d
        new_d = w_d - step_d
    change = a * g
    lost = bool(change != 0 and new_d == w_d)
    direction = -np.inf if change > 0 else np.inf
    spacing = abs(Fraction(float(np.nextafter(w_d, w_d.dtype.type(direction)))) - Fraction(float(w_d)))

    if w == 0:
        steps_exact, (steps_d, status) = None, (None, "undefined")
    else:
        steps_exact = None if change == 0 else math.ceil(_fraction(abs(w) / 100 / abs(change)))
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            steps_d, status = simulate_steps(w_d, step_d, abs(Fraction(float(w_d))) / 100)
    return Update(
        dtype=name, weight=w, lr=a, gradient=g, new_weight_exact=new_exact,
        weight_in_dtype=str(w_d), gradient_in_dtype=str(g_d), step_in_dtype=str(step_d), new_weight=str(new_d),
        new_weight_error=_rational(Fraction(float(new_d))) - new_exact if np.isfinite(new_d) else None,
        lost=lost, spacing=_rational(spacing),
        relative_change=None if w == 0 else -change / w,
        steps_exact=steps_exact, steps_dtype=steps_d, steps_status=status,
    )


def update_table(weight: Number, lr: Number, grad: Number | None = None,
                 factors: Iterable[Number] | None = None, dtype: str = "all") -> tuple[Update, ...]:
    """:func:`update` for each dtype ``dtype`` stands for.

    >>> [u.lost for u in update_table("0.25", "0.01", grad="0.004125")]
    [True, False, False]
    """
    fs = None if factors is None else list(factors)
    return tuple(update(weight, lr, grad, fs, d) for d in dtypes(dtype))


__all__ = ["DTYPES", "STEP_CAP", "exact_text", "Underflow", "Update", "dtypes", "limits", "round_to", "first_power_below",
           "simulate_zero_depth", "simulate_steps", "underflow", "underflow_table", "update", "update_table"]
