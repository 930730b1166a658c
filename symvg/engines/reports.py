"""What the floats could not hold, told apart for the chunked engine's reports (:mod:`symvg.engines.chunked`, which
the other engines redo their flagged samples with): the texts of its ``OverflowReport`` (:func:`report_lost`), and
for ``UnderflowReport`` the zeros that are not exact: by the chain rule's steps (:func:`cancelled_steps`), by the
regions where φ, φ' hold an exact 0 (:func:`exact_region`) and, for a few samples, by mpmath
(:func:`exact_zeros_probed`). Pure functions of arrays; run only where something was flagged.
"""

from __future__ import annotations

import functools
import operator
from functools import lru_cache
from typing import Any, Callable

import numpy as np
import sympy as sp

from symvg.engines import chainrule as cr
from symvg.engines.kernels import exact_zeros
from symvg.engines.plan import Inputs, Plan
from symvg.engines.reference import reference
from symvg.errors import OverflowReport
from symvg.symbolic.activations import Activation


def exponent_text(e: float) -> str:
    """A base-10 exponent as a reader takes it in: -83729.6, or -8.37e+307 where |g| ~ 10^(-10^307)."""
    return f"{e:.1f}" if abs(e) < 1e7 else f"{e:.3g}"


def layers_text(rows: Any) -> str:
    """Layers k (1-based) from 0-based row indices, the first eight.

    >>> layers_text(range(10))
    '1, 2, 3, 4, 5, 6, 7, 8, …'
    """
    ks = [int(k) + 1 for k in rows]
    return ", ".join(map(str, ks[:8])) + (", …" if len(ks) > 8 else "")


def largest_text(xp: Any, log10: Any, mask: Any) -> str:
    """", up to 10^e" for the largest finite log10|g| under ``mask``, or nothing."""
    v = log10[mask & xp.isfinite(log10)]
    return f", up to 10^{exponent_text(float(v.max()))}" if v.size else ""


def report_lost(xp: Any, bad: Any, within: Any, log10: Any, dtype: np.dtype) -> None:
    """OverflowReport for gradients that are not finite although some (``within``) are in the dtype's range: a
    product on the way (δ_k·φ'_k before h_(k-1) brings it down) overflowed. Says how many are truly beyond it."""
    beyond = bad & ~within
    n_in, n_out = int(within.sum()), int(beyond.sum())
    rows = xp.flatnonzero(bad.any(axis=1))
    lost = (f"{n_in} value(s) in layer(s) {layers_text(xp.flatnonzero(within.any(axis=1)))} are within "
            f"{dtype.name}'s range (|g|{largest_text(xp, log10, within)[1:]}) but a product of the backward pass "
            "overflowed on the way to them")
    head = (f"dL/dw_k overflows {dtype.name} (|g| beyond {np.finfo(dtype).max:.3g}{largest_text(xp, log10, beyond)}) for "
            f"{n_out} value(s) in layer(s) {layers_text(xp.flatnonzero(beyond.any(axis=1)))}, and {lost}" if n_out
            else f"dL/dw_k cannot be computed directly in {dtype.name}: {lost}")
    top = log10[bad & xp.isfinite(log10)]
    raise OverflowReport(f"{head}; log=True carries log|g|", tuple(int(k) + 1 for k in rows), int(bad.sum()),
                         float(top.max()) if top.size else None)


UNDERFLOW_PROBES = 32
"""Samples checked with mpmath when an underflow left zeros the log domain sees as zeros too (a local factor,
φ' or ∂L/∂z_N, underflowed itself: BCE at z_N = -800)."""


CANCEL_DIGITS = 700
"""Digits at which a residual chain's zeros are probed again: h_1 + tanh(-h_1) at h_1 = 2e-30 is -2.7e-90, and
δ·(1 + w·tanh'(z)) at w = -1, z = 2e-30 is δ·4e-60, both 0 at 30 and 50 digits, where the oracle's two
precisions agree, so a nonzero gradient (-8e-90) was confirmed as an exact 0 and returned without a report. A
sum whose terms are below float64's largest number keeps, at 700 digits, every part of it above 10^-370."""


def exact_zeros_probed(p: Plan, sub: Inputs, zero: np.ndarray) -> tuple[np.ndarray, float | None]:
    """(the entries of the ``zero`` mask that are not exactly 0, largest log10|g| of those), for up to
    :data:`UNDERFLOW_PROBES` samples, by :func:`symvg.engines.reference.reference` at 30 digits. An entry the
    oracle cannot resolve (NaN: a φ' too small for it) is not confirmed as 0 either; its size is unknown."""
    import mpmath

    lost = np.zeros(zero.shape, dtype=bool)
    cols = np.flatnonzero(zero.any(axis=0))[:UNDERFLOW_PROBES]
    if cols.size == 0:
        return lost, None
    def probe(at: np.ndarray, dps: int) -> np.ndarray:
        return reference(p.chain, sub.x[at], sub.y[at], sub.W if sub.shared_w else sub.W[:, at],
                         sub.B if sub.shared_b else sub.B[:, at], dps=dps)
    r = probe(cols, 30)
    if p.chain.residual:  # the oracle's own residual sums may cancel to 0 at 30 digits and at the next it tries
        again = np.flatnonzero((zero[:, cols] & np.vectorize(lambda v: v == 0, otypes=[bool])(r)).any(axis=0))
        if again.size:
            r[:, again] = probe(cols[again], CANCEL_DIGITS)
    nonzero = np.vectorize(lambda v: bool(v != 0 and not mpmath.isinf(v)), otypes=[bool])(r)
    lost[:, cols] = zero[:, cols] & nonzero
    sizes = [mpmath.log10(abs(v)) for v in r[lost[:, cols]] if mpmath.isfinite(v)]
    return lost, float(max(sizes)) if sizes else None


@lru_cache(maxsize=None)
def exact_region(act: Activation, which: int) -> Callable[[np.ndarray], np.ndarray]:
    """z ↦ where a 0 of φ (``which`` 0) or φ' (1) is exact (:func:`symvg.engines.kernels.exact_zeros`), over arrays."""
    region = exact_zeros(act)[which]
    f = sp.lambdify(cr.z, region, modules="numpy")
    return (lambda zv: f(zv) | (zv != zv)) if region.free_symbols else (lambda zv: zv == zv if region else zv != zv)


@lru_cache(maxsize=None)
def cancelled_steps(residual: bool) -> Callable[..., Any]:
    """The samples where a step of the chain rule's forward pass (and, residual, 1 + w_k·φ'_k of its log-domain walk)
    left a 0 that :meth:`symvg.engines.chainrule.Step.underflow` does not know to be exact, over :func:`_replay`'s
    values. ``exact=False``: a z_k of 0 from nonzero w_k, h_{k-1} counts where b_k ≠ 0 too (w·h = -b may round)."""
    steps = (*cr.forward(residual), *(s for s in cr.backward_log(residual) if s.target not in REPLAYED))
    conds = [[sp.lambdify([REPLAYED], c if s.target in REPLAYED else c.xreplace({s.target: s.value}), "numpy")
              for c in s.underflow(False)] for s in steps if s.underflow()]

    def cancelled(values: list) -> Any:  # & and | broadcast a shared (scalar) w_k, b_k; NumPy's reduce would not
        return functools.reduce(operator.or_, (functools.reduce(operator.and_, (c(values) for c in cs)) for cs in conds))
    return cancelled


REPLAYED = (cr.hp, cr.w, cr.b, cr.z, cr.phi, cr.dphi, cr.h)


__all__ = ["CANCEL_DIGITS", "REPLAYED", "UNDERFLOW_PROBES", "cancelled_steps", "exact_region", "exact_zeros_probed", "exponent_text",
           "largest_text", "layers_text", "report_lost"]
