"""The oracle: every dL/dw_k with mpmath, sample by sample, by the textbook chain rule.

Independent of the engines it checks: it reads the inputs through :func:`symvg.engines.plan.prepare`
and each activation's φ, φ' as mpmath functions (:func:`symvg.engines.kernels.mpmath_forms`), never the
engines' kernels, their overflow-safe rewrites or their loss-through-the-logit start. For tests and
for confirming an underflow; slow.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

import numpy as np
import sympy as sp

from symvg.engines.kernels import mpmath_forms
from symvg.engines.plan import prepare
from symvg.symbolic.activations import z as z_sym
from symvg.symbolic.chain import Chain, y as y_sym
from symvg.symbolic.supremum import within


def reference(chain: Chain, x: Any, y: Any, weights: Any, biases: Any = None, dps: int = 50) -> np.ndarray:
    """All dL/dw_k with mpmath at ``dps`` digits, sample by sample: an (N, M) object array of mpf.

    The inputs are taken as the exact binary values of the given floats. The chain rule is the textbook
    one, ∂L/∂h_N·φ'_N·…, with no rewriting: it is the oracle the engines' forms are tested against. For
    formula can lose digits to cancellation anywhere: GELU' = Φ(z) + zφ(z) loses 0.22z² of them, GELU itself
    z·(1 + erf(z/√2))/2 as many, BCE's ∂L/∂h_N = (h − y)/(h(1 − h)) needs 1 − h_N to more digits than ``dps``
    once h_N saturates (1 − σ(800) ≈ 1e-348). So each sample is computed again with more digits until two
    precisions agree to ``dps`` − 5 digits (up to 20000 extra digits; NaN where they never do), and a φ or φ'
    that comes out 0 is resolved apart (:func:`_resolved`). For tests; slow.

    >>> from symvg.symbolic.chain import Chain
    >>> r = reference(Chain(1, "sigmoid"), 0.0, 0.0, [1.0], [0.0])
    >>> str(r[0, 0])       # 2·σ(0)·σ'(0)·x = 0 at x = 0
    '0.0'
    >>> r = reference(Chain(1, "sigmoid", loss="bce"), 1.0, 0.0, [800.0], [0.0])
    >>> str(r[0, 0])       # (σ(800) − y)·x, with σ(800) = 1 − 1e-348
    '1.0'
    """
    import mpmath

    inp = prepare(chain, x, y, weights, biases)
    acts = [(*mpmath_forms(a), a) for a in chain.activations]
    dl = sp.lambdify((chain.h(chain.depth), y_sym), chain.dloss(), "mpmath")
    n, m = chain.depth, inp.samples
    out = np.empty((n, m), dtype=object)
    for i in range(m):
        W = [mpmath.mpf(float(v)) for v in (inp.W if inp.shared_w else inp.W[:, i])]
        B = [mpmath.mpf(float(v)) for v in (inp.B if inp.shared_b else inp.B[:, i])]
        xi, yi = mpmath.mpf(float(inp.x[i])), mpmath.mpf(float(inp.y[i]))
        with mpmath.workdps(dps):
            col = _reference_column(chain, acts, dl, xi, yi, W, B)
        out[:, i] = _more_digits(chain, acts, dl, xi, yi, W, B, col, dps)
    return out


def _reference_column(chain: Chain, acts: list, dl: Callable, x: Any, y: Any, W: list, B: list) -> list:
    import mpmath

    n = chain.depth
    hs, ds = [x], []
    for k in range(n):
        zk = W[k] * hs[-1] + B[k]
        phi, dphi, act = acts[k]
        hk = _resolved(phi, act.expr, zk)
        hs.append(hs[-1] + hk if chain.residual else hk)
        ds.append(_resolved(dphi, act.derivative, zk))
    try:
        d = dl(hs[-1], y)
    except ZeroDivisionError:  # bce with h_N = 1 (or 0) at this precision: inf, which asks for more digits
        d = mpmath.inf
    col = [mpmath.mpf(0)] * n
    for k in range(n, 0, -1):
        a = d * ds[k - 1]
        col[k - 1] = a * hs[k - 1]
        d = d + a * W[k - 1] if chain.residual else a * W[k - 1]
    return col


def _resolved(f: Callable, expr: sp.Expr, z: Any) -> Any:
    """``f`` (φ or φ', the mpmath function of ``expr``) at z, at the working precision, where it is not 0. A
    formula can cancel to 0 where its value is not: tanh' = 1 - tanh(z)² at 30 digits once |z| > 35 (it is
    4e^{-2|z|}, and loses 0.87|z| digits), GELU' = Φ(z) + zφ(z) and GELU once z < -12 (0.22z² digits). So a 0
    is evaluated again with 64, 256 and :data:`MORE_DIGITS` more digits; a nonzero found so is kept only
    where the next precision agrees with it (the two precisions of :func:`reference` judge the rest). Beyond
    that, ``expr`` is put over one denominator in exponentials (:func:`_one_fraction`: tanh' =
    4e^{2z}/(e^{4z} + 2e^{2z} + 1), which mpmath's unbounded exponents hold at any z). An exact 0 (a ReLU that
    is off) stays 0; a 0 that is neither exact nor resolved is NaN: no value to claim (the engines then
    report the zero rather than confirm it)."""
    import mpmath

    d = mpmath.mpf(f(z))
    if d != 0 or not mpmath.isfinite(z):
        return d
    off = _zero_piece(expr)
    if off is not None and off(z) == 1:  # the piece that holds at z is the constant 0: exact, at once
        return d
    dps = mpmath.mp.dps
    for extra in (64, 256, MORE_DIGITS):
        with mpmath.workdps(dps + extra):
            d = mpmath.mpf(f(z))
        if d != 0:
            with mpmath.workdps(2 * dps + extra + 10):  # its own digits may all have gone into the cancellation
                finer = mpmath.mpf(f(z))
            if _agree([d], [finer], dps - 5):
                return finer
    form, fraction = _one_fraction(expr)
    d = mpmath.mpf(fraction(z)) if fraction is not None else mpmath.mpf(0)
    if d != 0:
        return d
    sign, man, exp, _ = z._mpf_  # z's exact binary value
    exact = (-1) ** sign * sp.Integer(man) * sp.Integer(2) ** exp
    # as written, and over one denominator (which is 0 itself where the expression is 0 by an identity
    # SymPy's printing does not show: tanh(2z) - 2tanh(z)/(1 + tanh(z)²) ≡ 0)
    for e in (expr, form):
        if e is not None and within(SYMPY_SECONDS, lambda: e.subs(z_sym, exact) == 0):
            return mpmath.mpf(0)
    return mpmath.nan


@lru_cache(maxsize=None)
def _zero_piece(expr: sp.Expr) -> Callable | None:
    """z ↦ 1 where the piece of a piecewise ``expr`` that holds at z is the constant 0 (ReLU' at z ≤ 0), else 0,
    as an mpmath function; None where ``expr`` is not piecewise. The conditions are evaluated at the exact z."""
    if not isinstance(expr, sp.Piecewise):
        return None
    return sp.lambdify(z_sym, sp.Piecewise(*[(sp.Integer(int(e == 0)), c) for e, c in expr.args]), "mpmath")


@lru_cache(maxsize=None)
def _one_fraction(expr: sp.Expr) -> tuple[sp.Expr | None, Callable | None]:
    """``expr`` rewritten in exponentials over one denominator, and as an mpmath function: no difference of
    near-equal terms left where it is a ratio of exponentials (tanh', sigmoid', SiLU'). SymPy's identity, not
    the engines' forms, so the oracle stays independent of them. (None, None) where SymPy takes longer than
    :data:`SYMPY_SECONDS` (a user's expression)."""
    form = within(SYMPY_SECONDS, lambda: sp.cancel(sp.together(expr.rewrite(sp.exp))))
    return (None, None) if form is None else (form, sp.lambdify(z_sym, form, "mpmath"))


SYMPY_SECONDS = 5.0
"""The most time the oracle gives SymPy to rewrite or evaluate φ' exactly: it answers in bounded time."""


MORE_DIGITS = 1024
"""The most extra digits :func:`_resolved` spends on a φ or φ' that came out 0: tanh' resolves up to |z| ≈ 1100
by digits (beyond by :func:`_one_fraction`), GELU' down to z ≈ -68, within a fraction of a second each."""


def _agree(a: list, b: list, digits: int) -> bool:
    import mpmath

    def same(u: Any, v: Any) -> bool:
        if mpmath.isnan(u) or mpmath.isnan(v):
            return bool(mpmath.isnan(u) and mpmath.isnan(v))  # undefined at every precision
        if mpmath.isinf(u) or mpmath.isinf(v):
            return False  # 1 − h_N rounded to 0: more digits needed
        return u == v or abs(u - v) <= abs(v) * mpmath.mpf(10) ** (-digits)
    return all(same(u, v) for u, v in zip(a, b))


def _span(chain: Chain, acts: list, x: Any, W: list, B: list) -> int:
    """The digits that hold e^{-|z|} beside 1 at the column's largest |z_k| (0.4343·|z|): a term that small is lost
    whole at any precision below it, at two alike, so they agree on a wrong value where the rest of the formula
    is not 0 (mish' = tanh(log(1 + e^z)) + …: 0.5 % off at z = -200, 50 and 70 digits agreeing). Found at 15
    digits: only its size matters."""
    import mpmath

    top, h = 0, x
    with mpmath.workdps(15):
        try:
            for k in range(chain.depth):
                zk = W[k] * h + B[k]
                top = max(top, abs(zk)) if mpmath.isfinite(zk) else top
                hk = acts[k][0](zk)
                h = h + hk if chain.residual else hk
        except (ValueError, ZeroDivisionError, OverflowError, TypeError):
            pass  # the z's so far decide; the column's own evaluation says what is wrong
    return int(0.4343 * float(min(top, 10 * MORE_DIGITS))) + 10  # a z beyond floats (1e309) asks for the cap


def _more_digits(chain: Chain, acts: list, dl: Callable, x: Any, y: Any, W: list, B: list, col: list,
                 dps: int) -> list:
    import mpmath

    span = min(_span(chain, acts, x, W, B), MORE_DIGITS)
    for extra in (20, 60, 200, 600, 2000, 6000, 20000):
        with mpmath.workdps(dps + extra):
            finer = _reference_column(chain, acts, dl, x, y, W, B)
        if _agree(col, finer, dps - 5):
            if span <= dps + extra:
                return finer
            with mpmath.workdps(dps + extra + span):  # both may have lost a term e^{-|z|} whole: one more
                deeper = _reference_column(chain, acts, dl, x, y, W, B)
            if _agree(finer, deeper, dps - 5):
                return deeper
            finer = deeper
        col = finer
    return [mpmath.nan] * len(col)  # no two precisions agree: no value to claim


__all__ = ["reference"]
