"""Lost updates: whether one SGD step w - α·g changes a weight stored in a dtype, and how many steps move it.

An update is lost when |α·g| is below half the spacing of the dtype's numbers next to w; the steps
are simulated in the dtype itself (NumPy's arithmetic, rounded every step), vectorised by blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import reduce
from typing import Iterable, Sequence

import numpy as np
import sympy as sp

from symvg.display import Result
from symvg.exact import Number, to_rational
from symvg.errors import InvalidValueError
from symvg.theory.floats.rounding import (_dec, _dtype, _fraction, _rational, dtype_text, dtypes, exact_text, limits,
                                          power_text, round_to)

STEP_CAP = 10**7
"""Most SGD steps simulated in a dtype before :func:`update` says "not within the cap"."""

_CHUNK = 1 << 16  # steps simulated per vectorised block


@dataclass(frozen=True)
class Update(Result):
    """One SGD step w - lr·g, exactly and as ``dtype`` computes it.

    ``lost``: the dtype's new weight equals dtype(w) although the exact change is not 0.
    ``steps_exact`` = ceil(|w|/100 / |lr·g|); ``steps_dtype``: the same, by simulating the steps in
    the dtype (constant gradient), with ``steps_status`` one of "reached", "never" (the weight stops
    changing), "beyond cap" (not reached within :data:`STEP_CAP` steps), "undefined" (w = 0),
    "overflow". ``unrepresentable`` says which input the dtype cannot hold (then nothing is computed in it).
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
    spacing: sp.Rational | None  # distance from dtype(w) to its neighbour in the direction of the step
    relative_change: sp.Rational | None
    steps_exact: int | None
    steps_dtype: int | None
    steps_status: str
    unrepresentable: str = ""

    @property
    def step(self) -> sp.Rational:
        """The exact change lr·g (subtracted from w)."""
        return self.lr * self.gradient

    def as_dict(self) -> dict:
        """JSON-ready: exact values as Rational strings, dtype values as :func:`~symvg.theory.floats.rounding.dtype_text`
        writes them (exact where short: float16's 65504 is "65504.0", not NumPy's "6.55e+04")."""
        return {"dtype": self.dtype, "weight": str(self.weight), "lr": str(self.lr), "gradient": str(self.gradient),
                "new_weight_exact": str(self.new_weight_exact), "new_weight": self.new_weight, "lost": self.lost,
                "new_weight_error": None if self.new_weight_error is None else str(self.new_weight_error),
                "steps_to_move_1pct": {"exact": self.steps_exact, "dtype": self.steps_dtype,
                                       "status": self.steps_status},
                "weight_in_dtype": self.weight_in_dtype, "gradient_in_dtype": self.gradient_in_dtype,
                "step_in_dtype": self.step_in_dtype, "spacing": None if self.spacing is None else str(self.spacing),
                "relative_change": None if self.relative_change is None else str(self.relative_change),
                **({"not_computed": self.unrepresentable} if self.unrepresentable else {})}

    def __str__(self) -> str:
        return self.explain()

    def explain(self) -> str:
        """Plain words: what the step does in this dtype."""
        step = abs(self.step)
        if self.unrepresentable:
            exact = ("undefined (w = 0)" if self.weight == 0 else "never" if self.steps_exact is None
                     else exact_text(self.steps_exact))
            return (f"{self.dtype}: not computed — {self.unrepresentable}\n"
                    f"  steps to move w by 1% (constant gradient): exact {exact}; undefined ({self.dtype} overflowed)")
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
                           f"({dtype_text(float(limits(self.dtype)['max']))}): {self.dtype} computes {what} = {shown} and a new "
                           f"weight of {self.new_weight}, which is not the answer (exact "
                           f"{exact_text(self.new_weight_exact)}); use a wider dtype or a smaller lr")
                return "\n".join([head, f"  {verdict}", "  steps to move w by 1% (constant gradient): exact "
                                   f"{'never' if self.steps_exact is None else exact_text(self.steps_exact)}; "
                                   f"undefined ({self.dtype} overflowed)"])
            step_d = abs(Fraction(step_f))
            half = _fraction(self.spacing) / 2
            size = f"|lr·g| = {_dec(step)} ({self.dtype}: {dtype_text(abs(step_f))})"
            side = "below" if self.step > 0 else "above"  # w - lr·g moves down when lr·g > 0
            where = (f"{power_text(half)}, half the {power_text(_fraction(self.spacing))} gap from {self.weight_in_dtype} "
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
        exact = (steps if self.steps_status == "undefined" else "never" if self.steps_exact is None
                 else exact_text(self.steps_exact))
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


def _beyond(name: str, named: list[tuple[str, sp.Rational]]) -> str:
    """Which input the dtype cannot hold, in words ('' when it holds them all)."""
    top = limits(name)
    big = next(((what, v) for what, v in named if abs(_fraction(v)) >= top["overflow"]), None)
    return "" if big is None else (f"{big[0]} = {_dec(_fraction(big[1]))} overflows {name}; allowed: |value| <= "
                                   f"{dtype_text(float(top['max']))}")


def update(weight: Number, lr: Number, grad: Number | None = None, factors: Iterable[Number] | None = None,
           dtype: str = "float64", *, strict: bool = True) -> Update:
    """One SGD step w - lr·g with g = ``grad`` or the product of ``factors``, exactly and in ``dtype``.

    An input beyond the dtype's range is an error (``strict``), or, for one row of several dtypes, a result
    that says so and computes nothing in that dtype.

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
    change = a * g
    steps_exact = None if change == 0 or w == 0 else math.ceil(_fraction(abs(w) / 100 / abs(change)))
    why = _beyond(name, [("weight", w), ("lr", a)] + [("grad" if grad is not None else f"factor {i + 1}", _rational(f))
                                                      for i, f in enumerate(fs)])
    if why and strict:
        raise InvalidValueError(why)
    if why:
        return Update(name, w, a, g, new_exact, "", "", "", "", None, False, None,
                      None if w == 0 else -change / w, steps_exact, None, "overflow", why)

    w_d = round_to(_fraction(w), name)
    a_d = round_to(_fraction(a), name)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        g_d = _product_in_dtype(fs, name)
        step_d = a_d * g_d
        new_d = w_d - step_d
    lost = bool(change != 0 and new_d == w_d)
    spacing = _gap(w_d, -np.inf if change > 0 else np.inf)

    if w == 0:
        steps_exact, (steps_d, status) = None, (None, "undefined")
    else:
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            steps_d, status = simulate_steps(w_d, step_d, abs(Fraction(float(w_d))) / 100)
    return Update(
        dtype=name, weight=w, lr=a, gradient=g, new_weight_exact=new_exact,
        weight_in_dtype=dtype_text(w_d), gradient_in_dtype=dtype_text(g_d), step_in_dtype=dtype_text(step_d),
        new_weight=dtype_text(new_d),
        new_weight_error=_rational(Fraction(float(new_d))) - new_exact if np.isfinite(new_d) else None,
        lost=lost, spacing=_rational(spacing),
        relative_change=None if w == 0 else -change / w,
        steps_exact=steps_exact, steps_dtype=steps_d, steps_status=status,
    )


def _gap(w_d: np.floating, direction: float) -> Fraction:
    """The gap from w_d to the next float toward ``direction``; past the largest float, w_d's own gap
    (w_d ± half of it is where rounding gives ±inf; nextafter gave inf, an OverflowError)."""
    with np.errstate(over="ignore"):
        toward = np.nextafter(w_d, w_d.dtype.type(direction))
    if not np.isfinite(toward):
        toward = np.nextafter(w_d, w_d.dtype.type(-direction))
    return abs(Fraction(float(toward)) - Fraction(float(w_d)))


def update_table(weight: Number, lr: Number, grad: Number | None = None,
                 factors: Iterable[Number] | None = None, dtype: str = "all") -> tuple[Update, ...]:
    """:func:`update` for each dtype ``dtype`` stands for.

    >>> [u.lost for u in update_table("0.25", "0.01", grad="0.004125")]
    [True, False, False]
    """
    fs = None if factors is None else list(factors)
    # one row of "all" may say it cannot hold an input; float64, the widest, cannot hold it is bad input
    return tuple(update(weight, lr, grad, fs, d, strict=dtype != "all" or d == "float64") for d in dtypes(dtype))



__all__ = ["STEP_CAP", "Update", "simulate_steps", "update", "update_table"]
