"""Where an activation's own float formulas fail, and their exact redo: the entries that met an overflow on the way
(:func:`overflowed`; :func:`guard` for the compiled targets), and φ, φ' with mpmath (:func:`exact_local`).

An activation's own formulas may overflow inside and still end finite and wrong. SiLU' as SymPy writes it,
z·e^{-z}/(1 + e^{-z})² + 1/(1 + e^{-z}), squares e^{-z} = e^{400} to inf at z = -400, so its first term becomes -0 and the sum 1.9e-174, where the
true value is -7.6e-172: wrong sign, wrong size, and finite, so a check of the result alone misses it. The
floating-point overflow flag says only that *some* entry overflowed; :func:`overflowed` says which, by
evaluating the formula node by node and marking the entries where a node is not finite though its arguments
are. Only the pieces of a Piecewise that hold count: ELU's e^z at z = 800 lies in a piece that is not taken.
Run only where the flag was raised, so its cost (one array pass per node) is paid rarely.

>>> import numpy as np
>>> import sympy as sp
>>> from symvg.symbolic.parse import z
>>> with np.errstate(all="ignore"):
...     overflowed(z * sp.exp(-z) / (1 + sp.exp(-z)) ** 2, np.array([-400.0, -1.0, 400.0])).tolist()
[True, False, False]
>>> with np.errstate(all="ignore"):
...     overflowed(sp.Piecewise((sp.exp(z), z < 0), (1, True)), np.array([800.0, -800.0])).tolist()
[False, False]
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

import numpy as np
import sympy as sp

from symvg.exact import as_exact
from symvg.symbolic.activations import Activation
from symvg.symbolic.parse import z


@lru_cache(maxsize=None)
def _node(func: Any, nargs: int, modules: tuple) -> Callable:
    """One node ``func(a_1, …, a_n)`` as a NumPy function of its argument values."""
    args = sp.symbols(f"a0:{nargs}")
    return sp.lambdify(args, func(*args), modules=_unpacked(modules))


@lru_cache(maxsize=None)
def _condition(cond: Any, modules: tuple) -> Callable:
    return sp.lambdify(z, cond, modules=_unpacked(modules))


def _packed(modules: Any) -> tuple:
    """lambdify's modules as a hashable key (a dict as its items)."""
    return tuple(tuple(sorted(m.items())) if isinstance(m, dict) else m for m in modules)


def _unpacked(modules: tuple) -> list:
    return [dict(m) if isinstance(m, tuple) else m for m in modules]


def overflowed(expr: sp.Expr, zs: np.ndarray, modules: Any = ("numpy",)) -> np.ndarray:
    """A mask over ``zs``: where some node of ``expr``, in a piece that holds, is inf or NaN though its
    arguments are finite (an overflow on the way, or a value outside a function's domain). ``modules`` as
    lambdify takes them (a dict binding a function of the expression counts as one entry); call it under
    ``np.errstate``, as the kernels do."""
    mask = np.zeros(zs.shape, dtype=bool)
    _walk(as_exact(expr), zs, np.ones(zs.shape, dtype=bool), mask, _packed(modules))
    return mask


def _walk(e: sp.Expr, zs: np.ndarray, active: np.ndarray, mask: np.ndarray, modules: tuple) -> Any:
    if e == z:
        return zs
    if not e.free_symbols:
        return np.full(zs.shape, float(e), dtype=zs.dtype)
    if isinstance(e, sp.Piecewise):
        out, taken = np.zeros_like(zs), np.zeros(zs.shape, dtype=bool)
        for value, cond in e.args:
            holds = np.broadcast_to(np.asarray(_condition(cond, modules)(zs), dtype=bool), zs.shape)
            here = holds & ~taken
            v = _walk(value, zs, active & here, mask, modules)
            out = np.where(here, v, out)
            taken = taken | holds
        return out
    if e.is_Pow and e.exp.is_number and e.exp.is_negative:
        # b^(-n) as printed, 1/b^n: b^n may overflow where b^(-n) underflows quietly (SiLU's (1 + e^{-z})^-2)
        return 1 / _walk(e.base ** -e.exp, zs, active, mask, modules)
    args = [_walk(a, zs, active, mask, modules) for a in e.args]
    value = np.broadcast_to(np.asarray(_node(e.func, len(args), modules)(*args)), zs.shape)
    finite_in = np.logical_and.reduce([np.isfinite(a) for a in args]) if args else np.ones(zs.shape, dtype=bool)
    mask |= active & finite_in & ~np.isfinite(value)
    return value


class nanif(sp.Function):
    """0 where its argument is finite, NaN where not: ``vmath.nanif`` in the fused kernel, ``(x - x)`` in C."""

    nargs = 1

    def _ccode(self, printer: Any) -> str:
        x = printer._print(self.args[0])
        return f"(({x}) - ({x}))"


def guard(*exprs: sp.Expr) -> sp.Expr:
    """The sum of ``nanif(v)`` over the values v computed on the way to ``exprs`` (b^n for b^(-n), which is printed
    as 1/b^n), each Piecewise's only where its piece holds: 0 where :func:`overflowed` is False, else NaN. What
    the fused kernel adds to a formula of an activation's own, whose result alone does not show an overflow.

    >>> guard(z / (1 + sp.exp(-z)) ** 2)
    nanif((1 + exp(-z))**2) + nanif(exp(-z))
    >>> guard(sp.Piecewise((sp.exp(z), z < 0), (z, True)))
    Piecewise((nanif(exp(z)), z < 0), (0, True))
    """
    return sp.Add(*dict.fromkeys(g for e in exprs for g in _guards(as_exact(e), top=True)))  # each value once


BOUNDED = (sp.erf, sp.erfc, sp.tanh, sp.sin, sp.cos, sp.atan, sp.Abs, sp.sign, sp.Heaviside, sp.Min, sp.Max, sp.log)
"""Functions whose value is finite wherever their finite argument is in their domain (log: -inf only at 0, which
is a division by zero, not an overflow): no guard of their own."""


def _guards(e: sp.Expr, top: bool = False) -> list:
    if e.is_Atom or not e.free_symbols:
        return []
    if isinstance(e, sp.Piecewise):
        pieces = [(sp.Add(*_guards(v)), c) for v, c in e.args]
        return [sp.Piecewise(*pieces)] if any(g != 0 for g, _ in pieces) else []
    if e.is_Pow and e.exp.is_number and e.exp.is_negative:
        shown = e.base ** -e.exp
        return ([] if shown == e.base else [nanif(shown)]) + _guards(e.base)
    # what can overflow from finite values: a power, a product of two computed values (z·e^{-z}), exp and the
    # like; a sum, a constant multiple or a bounded function only where a value under it already did
    can = (e.is_Pow or (e.is_Mul and sum(not a.is_number for a in e.args) > 1)
           or (isinstance(e, sp.Function) and not isinstance(e, BOUNDED) and type(e).__name__ != "erfcneg"))
    return ([nanif(e)] if can and not top else []) + [g for a in e.args for g in _guards(a)]


def exact_local(act: Activation, zs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """φ(z), φ'(z) by mpmath, to the digits :func:`_settled` finds they need, rounded to ``zs``' dtype; NaN where
    not a real number (or where no precision settles it).

    What the kernels fall back on where a float formula overflows (softplus' = e^z/(1+e^z) at z = 800).

    >>> from symvg.symbolic.activations import get
    >>> exact_local(get("softplus"), np.array([800.0, 1.9e6]))
    (array([8.0e+02, 1.9e+06]), array([1., 1.]))
    """
    phi, dphi = _capped_forms(act)
    h, d = np.full(len(zs), np.nan, dtype=zs.dtype), np.full(len(zs), np.nan, dtype=zs.dtype)
    for i, zv in enumerate(zs):
        for out, f in ((h, phi), (d, dphi)):
            try:
                out[i] = float(_settled(f, float(zv)))
            except (TypeError, ValueError, OverflowError, ZeroDivisionError):
                pass  # not a real number there (a user expression outside its domain): keep NaN
    return h, d


EXACT_DIGITS = (30, 60, 240, 960, 3840)
"""The precisions :func:`exact_local` evaluates a formula at, in turn, until two in a row agree to 20 digits. A
formula as written may cancel: z·σ(z)' as SymPy writes it, z·e^z/(1 + e^z) − z·e^{2z}/(1 + e^z)² + e^z/(1 + e^z),
loses log10|z| digits, and at 30 digits gave φ'(1e155) = -1.06e124 where it is 1."""


def _settled(f: Callable, zv: float) -> Any:
    import mpmath

    last = None
    for dps in EXACT_DIGITS:
        with mpmath.workdps(dps):
            v = f(mpmath.mpf(zv))
            if last is not None and (v == last or abs(v - last) <= abs(v) * mpmath.mpf(10) ** -20):
                return v
        last = v
    return mpmath.nan


EXP_CAP = float(np.finfo(np.float64).max)
"""|x| beyond which the repair's e^x is taken as inf or 0. mpmath's e^x for any x a float can hold is exact and
quick (its exponents are unbounded), and it must be: e^z beyond every float still gives finite
log(1 + e^z) and e^z/(1 + e^z) (softplus at z = 10^6). Only an argument that is itself beyond floats, e^(e^(e^z))
in ``expr:exp(exp(exp(z)))``, would take mpmath memory and minutes; its result is beyond floats too."""


def _capped_exp(x: Any) -> Any:
    import mpmath

    if x > EXP_CAP:
        return mpmath.inf
    if x < -EXP_CAP:
        return mpmath.mpf(0)
    return mpmath.exp(x)


@lru_cache(maxsize=None)
def _capped_forms(act: Activation) -> tuple[Callable, Callable]:
    """:func:`mpmath_forms` with e^x capped at :data:`EXP_CAP`, for repairs that end as floats anyway."""
    mods = [{"exp": _capped_exp}, "mpmath"]
    return sp.lambdify(z, act.expr, mods), sp.lambdify(z, act.derivative, mods)


__all__ = ["BOUNDED", "EXACT_DIGITS", "EXP_CAP", "exact_local", "guard", "nanif", "overflowed"]
