"""Per-layer local pieces, derived from an Activation's SymPy expressions and turned into array code.

One job: for one activation φ, produce code that maps a buffer of pre-activations z to the two
numbers every layer of the backward pass needs, h = φ(z) and d = φ'(z), writing into buffers the
caller owns (``out=`` everywhere, so a cache-sized chunk is never re-allocated).

Which code is used is decided by identities that SymPy *proves* about the catalogue expressions,
never by the activation's name:

* ``logistic``: φ ≡ e^z/(1 + e^z) and φ' ≡ φ/(1 + e^z) -- one ``exp`` per sample and no cancellation
  (the textbook φ' = h(1 − h) loses digits when h → 1);
* ``tanh``: φ ≡ tanh z and φ' ≡ 1 − φ² (the output form, see :func:`output_form`);
* ``identity``: φ ≡ z, φ' ≡ 1;
* ``generic``: anything else -- ``lambdify([φ, φ'], cse=True)``, so the two share subexpressions.

How the first three are *evaluated* is data, in :mod:`symvg.engines.forms` (overflow-safe forms such as
e = e^{-|z|}); :func:`local_forms` gives any activation its forms, and each target prints them with a printer
of its own: :func:`layer_kernel` (NumPy/CuPy in place, :mod:`symvg.engines.inplace`),
:func:`symvg.engines.csource.elementwise_source` (C, for CUDA) and :func:`symvg.engines.fused_kernel.pair_source` (numba). ``kind`` only picks a row of the table.

>>> from symvg.symbolic.activations import get
>>> [local(get(n)).kind for n in ("sigmoid", "tanh", "linear", "relu", "gelu")]
['logistic', 'tanh', 'identity', 'generic', 'generic']
>>> output_form(get("sigmoid")), output_form(get("tanh")), output_form(get("gelu"))
(-h**2 + h, 1 - h**2, None)

The C side (CUDA kernels and their C twins) prints the same forms with SymPy's C printer:
:mod:`symvg.engines.csource`.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterator

import numpy as np
import sympy as sp
from sympy.codegen.rewriting import optimize, optims_c99

from symvg.engines import piecewise
from symvg.engines.forms import ARRAY, ELEMENT, Forms, expneg
from symvg.engines.inplace import inplace
from symvg.engines.repair import exact_local, overflowed
from symvg.symbolic.activations import Activation
from symvg.symbolic.parse import z
from symvg.symbolic.supremum import within

h = sp.Symbol("h", real=True)
"""The layer output φ(z), the variable of :func:`output_form`."""

KINDS = ("logistic", "tanh", "identity", "generic")


def _same(a: sp.Expr, b: sp.Expr) -> bool:
    """SymPy proof that a ≡ b (simplify to 0); a few rewrites because simplify is not complete."""
    diff = a - b
    for form in (diff, diff.rewrite(sp.exp)):
        if sp.simplify(form) == 0:
            return True
    return False


@lru_cache(maxsize=None)
def output_form(act: Activation) -> sp.Expr | None:
    """φ' written as a polynomial in h = φ(z), proved equal to φ'(z); None when there is none.

    Two derivations: replace φ(z) inside φ' by h (works when SymPy wrote φ' in terms of φ, e.g.
    tanh' = 1 − tanh²); else invert h = φ(z) for z and substitute. Either result is kept only if it is
    a polynomial in h *and* SymPy proves P(φ(z)) − φ'(z) = 0. Piecewise activations are skipped:
    their inverse is not a function (ReLU sends every z ≤ 0 to 0).

    >>> from symvg.symbolic.activations import get
    >>> output_form(get("linear")), output_form(get("softplus"))   # softplus' = 1 − e^{-h}: not a polynomial
    (1, None)
    """
    phi, dphi = act.expr, act.derivative
    if phi.has(sp.Piecewise) or dphi.has(sp.Piecewise):
        return None
    candidates = [dphi.subs(phi, h)]
    try:
        candidates += [sp.simplify(dphi.subs(z, inv)) for inv in sp.solve(sp.Eq(h, phi), z)]
    except (NotImplementedError, ValueError, TypeError):
        pass  # no inverse SymPy can write down: only the first derivation applies
    for p in candidates:
        p = sp.expand(p) if p.is_polynomial(h) else p
        if not p.has(z) and p.is_polynomial(h) and _same(p.subs(h, phi), dphi):
            return p
    return None


@dataclass(frozen=True)
class Local:
    """An activation and which kernel evaluates its φ, φ' (:func:`local`)."""

    activation: Activation
    kind: str


@lru_cache(maxsize=None)
def local(act: Activation) -> Local:
    """Classify ``act`` by proved identities (see the module docstring). The output form is derived only for
    φ ≡ tanh z, the one kind that needs it: deriving it for every activation cost ~1 s each."""
    phi, dphi = act.expr, act.derivative
    if phi.has(sp.Piecewise):
        kind = "generic"
    elif phi == z and dphi == 1:
        kind = "identity"
    elif _same(phi, sp.exp(z) / (1 + sp.exp(z))) and _same(dphi, phi / (1 + sp.exp(z))):
        kind = "logistic"
    elif phi == sp.tanh(z) and (out := output_form(act)) is not None and sp.expand(out - (1 - h ** 2)) == 0:
        kind = "tanh"
    else:
        kind = "generic"
    return Local(act, kind)


def _modules(backend: str = "numpy") -> list:
    """lambdify's modules for the forms on ``backend``: :class:`erfcneg` bound, and for NumPy erf (GELU) from
    scipy.special where it is installed (NumPy alone cannot print it)."""
    if backend != "numpy":
        return [{"erfcneg": _erfcneg_cupy if backend == "cupy" else _erfcneg_numpy}, backend]
    try:
        import scipy.special  # noqa: F401

        return [{"erfcneg": _erfcneg_numpy}, "scipy", "numpy"]
    except ImportError:  # pragma: no cover - scipy is usually present
        return [{"erfcneg": _erfcneg_numpy}, "numpy"]


@lru_cache(maxsize=None)
def evaluation_forms(act: Activation, steady: bool = True) -> tuple[sp.Expr, sp.Expr]:
    """φ and φ' as every generic kernel (NumPy, CuPy, numba) evaluates them (``steady=False``: without the two
    rewrites of φ' below, for :func:`loss_form`, whose ratios cancel symbolically in tanh, not in sech²).

    C99 rewrites of φ (log(1 + x) → log1p(x), exp(x) − 1 → expm1(x)) keep softplus and ELU accurate
    where the literal formula rounds to 0 (log(1 + e^z) for z < −37); φ' is kept as proved; in both,
    1 + erf(u) becomes erfc(−u) (:func:`_erfc_form`). A constant beyond the float range (``expr:1e400*z``)
    becomes a float (inf), so it overflows as a number, which the engines report, instead of failing in
    int-to-float conversion. c − c·tanh²(u) becomes c·sech²(u) (:func:`_sech2_form`), and log(1 + x) in φ'
    log1p(x) (mish' holds log(1 + e^z), which kept 4 digits at z = -30).
    """
    from sympy.codegen.cfunctions import log1p

    dphi = act.derivative
    if steady:
        one_plus = lambda a: isinstance(a, sp.log) and a.args[0].is_Add and sp.S.One in a.args[0].args  # noqa: E731
        dphi = _sech2_form(dphi.replace(one_plus, lambda a: log1p(a.args[0] - 1)))
    return tuple(_huge_as_float(_erfc_form(e)) for e in (optimize(act.expr, optims_c99), dphi))


def _sech2_form(e: sp.Expr) -> sp.Expr:
    """Each sum c + k·tanh²(u) + … with c, k of opposite signs as (c + k) − k·sech²(u) + …, sech²(u) written
    4e/(1 + e)² with e = e^{-2|u|} (as the tanh row of :data:`symvg.engines.forms.ELEMENT`): the derivative
    SymPy writes for a tanh, 1 − tanh²(u), rounds to 0 once |u| > 19 (tanh(z)² at z = 30 had φ' = 0, truly
    7e-26; mish lost 5 digits at z = -30), where sech² keeps every digit and never overflows.

    >>> _sech2_form(2 - 2 * sp.tanh(z) ** 2)
    8*exp(-2*Abs(z))/(1 + exp(-2*Abs(z)))**2
    """
    def stable(a: sp.Expr) -> sp.Expr:
        c = sum((t for t in a.args if t.is_number), sp.Integer(0))
        for t in a.args:
            k, rest = t.as_coeff_Mul()
            if rest.is_Pow and rest.exp == 2 and isinstance(rest.base, sp.tanh) and k * c < 0:
                e2 = sp.exp(-2 * sp.Abs(rest.base.args[0]))
                others = [v for v in a.args if v is not t and not v.is_number]
                return sp.Add(c + k, -k * 4 * e2 / (1 + e2) ** 2, *others)
        return a
    return e.replace(lambda a: a.is_Add, stable)


@lru_cache(maxsize=None)
def local_forms(act: Activation, array: bool = False) -> Forms:
    """The forms every target prints for ``act``: its kind's row of :data:`symvg.engines.forms.ELEMENT` (or of
    :data:`~symvg.engines.forms.ARRAY` where ``array``), else :func:`evaluation_forms` with no named steps.

    >>> from symvg.symbolic.activations import get
    >>> local_forms(get("sigmoid"), array=True).phi, local_forms(get("relu")).steps
    (h_, ())
    """
    kind = local(act).kind
    if kind == "generic":
        return Forms((), *evaluation_forms(act), proved=False)
    return (ARRAY if array else ELEMENT)[kind]


REGION_SECONDS = 2.0
"""The most time SymPy is given to write a region of exact zeros as a set of z (it is used as written beyond)."""
_SELECTS = (sp.Max, sp.Min, sp.Heaviside, sp.Abs, sp.sign)
"""Functions that are piecewise without being a Piecewise: an ``expr:`` formula's Max(0, z) and its φ' Heaviside(z)."""


def _zero_region(e: sp.Expr, exact_at_0: bool) -> sp.Boolean:
    """Where a 0 of the form ``e`` is exact: on a piece that is the constant 0 (Piecewise conditions hold in
    order), and at z = 0 where the activation's own value there is exactly 0. Max, Min, Heaviside, Abs and sign
    are rewritten as Piecewise first, so ``expr:Max(0, z)`` has the off half of ReLU (without it, every block
    with a negative z was flagged and redone by mpmath: 8-15× slower)."""
    region = sp.false
    if e.has(*_SELECTS):
        e = sp.piecewise_fold(e.rewrite(sp.Piecewise))
    if isinstance(e, sp.Piecewise):
        before = sp.false
        for piece, cond in e.args:
            if piece == 0:
                region = region | (cond & ~before)
            before = before | cond
    elif e == 0:
        region = sp.true
    region = region | sp.Eq(z, 0) if exact_at_0 else region
    # as a set of z and back: the conditions of rewritten pieces come out as clauses SymPy's logic cannot merge
    # (Min(Max(0, z), 6)' had 60 comparisons for z < 0 ∨ z > 6)
    def as_set() -> sp.Boolean | None:
        try:
            return region.as_set().as_relational(z)
        except (NotImplementedError, TypeError, ValueError, AttributeError):
            return None  # a condition SymPy cannot solve for z (a user's formula)
    simpler = region if isinstance(region, sp.logic.boolalg.BooleanAtom) else within(REGION_SECONDS, as_set)
    return simpler if isinstance(simpler, sp.Basic) else sp.simplify_logic(region)


@lru_cache(maxsize=None)
def exact_zeros(act: Activation) -> tuple[sp.Boolean, sp.Boolean]:
    """Where a 0 of φ and of φ' (as :func:`local_forms` computes them) is exact. Anywhere else a 0 is a value
    that underflowed (GELU(-40) ≈ -1.5e-348, e^{-800} in softplus' or SiLU), which every engine flags instead of
    passing it on as an exact zero gradient.

    >>> from symvg.symbolic.activations import get
    >>> exact_zeros(get("relu"))[1], exact_zeros(get("gelu")), exact_zeros(get("sigmoid"))
    (z <= 0, (Eq(z, 0), False), (False, False))
    >>> exact_zeros(get("expr:Max(0, z)")), exact_zeros(get("hard_sigmoid"))[1]   # φ' = Heaviside(z)
    ((z <= 0, z < 0), (3 <= z) | (z <= -3))
    """
    f = local_forms(act)
    return (_zero_region(f.phi, act.expr.subs(z, 0) == 0), _zero_region(f.dphi, act.derivative.subs(z, 0) == 0))


@lru_cache(maxsize=None)
def kink_at_zero(act: Activation) -> tuple[float, float] | None:
    """(φ'(0⁻), φ'(0⁺)) where they differ (ReLU, leaky ReLU, |z|), else None. At such a kink φ'(0) is a
    convention, so a z that underflowed to 0 from a nonzero w·h must take the side its sign gives.

    >>> from symvg.symbolic.activations import get
    >>> kink_at_zero(get("leaky_relu")), kink_at_zero(get("gelu"))
    ((0.01, 1.0), None)
    """
    eps = sp.Rational(1, 10**40)
    left, right = (float(act.derivative.subs(z, side * eps)) for side in (-1, 1))
    return (left, right) if left != right else None


def _huge_as_float(e: sp.Expr) -> sp.Expr:
    big = sp.Float(np.finfo(np.float64).max)
    return e.replace(lambda a: a.is_Rational and abs(a) > big, lambda a: sp.Float(a, 20))


y = sp.Symbol("y", real=True)
"""The target, the second variable of :func:`loss_form`."""


def _pieces(e: sp.Expr, f: Callable[[sp.Expr], sp.Expr]) -> sp.Expr:
    """``f`` applied to each piece of a Piecewise (after folding), or to ``e``."""
    e = sp.piecewise_fold(e)
    if isinstance(e, sp.Piecewise):
        return sp.Piecewise(*[(f(v), c) for v, c in e.args])
    return f(e)


def _cancel(e: sp.Expr) -> sp.Expr:
    try:
        return sp.cancel(e)
    except (sp.PolynomialError, NotImplementedError, ValueError, TypeError):  # pragma: no cover - kept as is
        return e


@lru_cache(maxsize=None)
def loss_form(act: Activation, loss: str, residual: bool = False) -> sp.Expr | None:
    """∂L/∂z_N, as a function of the last pre-activation z and the target y, in the form every engine
    evaluates; None where the engines start from ∂L/∂h_N (mse, residual chains).

    BCE on h_N = φ(z_N) is taken through the logit: ∂L/∂h_N = (h − y)/(h(1 − h)) needs 1 − h, which
    cancels as h → 1 (σ(36) rounds 1 − h to 2^-52 against 2.3e-16: 4.5 % off; at 60 to 0). So

    * ``logistic``: ∂L/∂z = (1 − y)·σ(z) − y·σ(−z), with e = e^{-|z|} ∈ (0, 1]: no exp overflows and
      no 1 − σ is formed (y = 1 gives −e/(1 + e) for z ≥ 0, every digit kept);
    * any other φ: (1 − y)·φ'/(1 − φ) − y·φ'/φ, each ratio cancelled symbolically per piece (hard
      sigmoid: 1/(3 − z)), each term dropped where its weight 1 − y or y is 0. Where a term is 0/0
      (the loss is infinite: h_N = 1 with y ≠ 1) the form gives NaN, which the engines report as a
      domain error.

    >>> from symvg.symbolic.activations import get
    >>> loss_form(get("sigmoid"), "mse") is None, loss_form(get("sigmoid"), "bce", residual=True) is None
    (True, True)
    >>> f = sp.lambdify((z, y), loss_form(get("sigmoid"), "bce"))
    >>> float(f(60.0, 1.0)), float(f(60.0, 0.0)), float(f(-800.0, 1.0))
    (-8.75651076269652e-27, 1.0, -1.0)
    >>> g = loss_lambdified(get("hard_sigmoid"), "bce")   # φ'/(1 − φ) = 1/(3 − z) below 3
    >>> with np.errstate(all="ignore"):
    ...     [float(g(np.float64(v), np.float64(t))) for v, t in ((2.0, 0.0), (3.5, 1.0), (3.5, 0.0))]
    [1.0, 0.0, nan]
    """
    if loss != "bce" or residual:
        return None
    if local(act).kind == "logistic":
        # the table's e = e^{-|z|} and s = 1/(1+e) (its helper written as exp, which every loss printer knows);
        # (1 − y)·s, not 1 − y − y·e: SymPy would flatten the latter into −y·e − y + 1, which rounds to 0
        (e, e_form), (s, s_form) = ELEMENT["logistic"].steps[:2]
        form = sp.Piecewise(((1 - y) * s - y * e * s, z >= 0), ((1 - y) * e * s - y * s, True))
        return form.subs(s, s_form).subs(e, e_form).replace(expneg, sp.exp)
    phi, dphi = evaluation_forms(act, steady=False)
    up, down = (_tanh_sum_form(_pieces(r, _cancel)) for r in (dphi / (1 - phi), dphi / phi))
    return (sp.Piecewise((0, sp.Eq(y, 1)), ((1 - y) * up, True))
            - sp.Piecewise((0, sp.Eq(y, 0)), (y * down, True)))


def _tanh_sum_form(e: sp.Expr) -> sp.Expr:
    """Each sum c ± c·tanh(u) + … as 2c/(1 + e^{∓2u}) + …: 1 − tanh(u) rounds to 0 once u > 19 and keeps few digits
    before (BCE on (1 + tanh z)/2 cancels to φ'/φ = 1 − tanh z: ∂L/∂z at z = 18, y = 1 came out 4 % off, at 15
    2e-4), where the quotient keeps every digit; e^{2u} = inf gives 0, which the engines look at.

    >>> _tanh_sum_form(3 - 3 * sp.tanh(2 * z)), _tanh_sum_form(1 + sp.tanh(z) + z)
    (6/(exp(4*z) + 1), z + 2/(1 + exp(-2*z)))
    """
    def stable(a: sp.Expr) -> sp.Expr:
        c = sum((t for t in a.args if t.is_number), sp.Integer(0))
        for t in a.args:
            k, rest = t.as_coeff_Mul()
            if c != 0 and isinstance(rest, sp.tanh) and abs(k) == abs(c):
                others = [v for v in a.args if v is not t and not v.is_number]
                return sp.Add(2 * c / (1 + sp.exp(-2 * sp.sign(k / c) * rest.args[0])), *others)
        return a
    return e.replace(lambda a: a.is_Add, stable)


@lru_cache(maxsize=None)
def loss_lambdified(act: Activation, loss: str, residual: bool = False) -> Callable[[Any, Any], Any] | None:
    """``(z, y) ↦ ∂L/∂z_N`` for NumPy (see :func:`loss_form`), or None."""
    form = loss_form(act, loss, residual)
    if form is None:
        return None
    return sp.lambdify((z, y), form, modules=_modules(), cse=True)


@lru_cache(maxsize=None)
def lambdified(act: Activation, modules: str = "numpy") -> Callable[[Any], tuple[Any, Any]]:
    """``z ↦ (φ(z), φ'(z))``, one ``lambdify(cse=True)`` so shared subexpressions are computed once."""
    return sp.lambdify(z, list(evaluation_forms(act)), modules=_modules(modules), cse=True)


@lru_cache(maxsize=None)
def piecewise_writers(act: Activation) -> tuple[Callable, Callable] | None:
    """φ and φ' written piece by piece into NumPy arrays (:mod:`symvg.engines.piecewise`), where either is a
    Piecewise; None otherwise (one ``lambdified`` call keeps their shared subexpressions)."""
    forms = evaluation_forms(act)
    if not any(isinstance(e, sp.Piecewise) for e in forms):
        return None
    return tuple(piecewise.writer(e, np, tuple(_modules())) for e in forms)


@lru_cache(maxsize=None)
def _safe_lambdified(act: Activation, modules: str = "numpy") -> Callable[[Any], tuple[Any, Any]]:
    """``z ↦ (φ(z), φ'(z))`` by the element forms (:func:`local_forms`, which never overflow), their steps as
    lambdify's common subexpressions: what redoes the entries an array form overflowed on."""
    import importlib

    xp = importlib.import_module(modules)
    f = local_forms(act)
    return sp.lambdify(z, [f.phi, f.dphi], modules=[{"expneg": xp.exp, "copysign": xp.copysign}, modules],
                       cse=lambda es: (list(f.written_out()), es))


class erfcneg(sp.Function):
    """erfc(−u), held unevaluated: SymPy rewrites ``erfc(-u)`` to ``2 - erfc(u)`` on sight, which is the
    very cancellation this form exists to avoid. Printed as ``erfc(-(u))`` in C, and given to lambdify
    as a function of its own."""

    nargs = 1

    def _ccode(self, printer: Any) -> str:
        return f"erfc(-({printer._print(self.args[0])}))"


def _erfc_form(e: sp.Expr) -> sp.Expr:
    """1 + erf(u) as erfc(−u) where that removes the constant (GELU: Φ(z) = erfc(−z/√2)/2).

    erf(u)/2 + 1/2 cancels for u ≪ 0 (GELU at z = −10 rounds to 0); erfc(−u)/2 keeps every digit.
    Kept only when the expression gets no longer, so erf(z) itself is never turned into erfc(−z) − 1.

    >>> from symvg.symbolic.activations import get
    >>> _erfc_form(get("gelu").expr)
    z*erfcneg(sqrt(2)*z/2)/2
    """
    new = e.replace(sp.erf, lambda u: erfcneg(u) - 1)
    return new if sp.count_ops(new) <= sp.count_ops(e) else e


def _erfcneg_numpy(u: Any) -> Any:
    try:
        from scipy.special import erfc
    except ImportError:  # pragma: no cover - scipy is usually present; math.erfc per element is exact but slow
        erfc = np.vectorize(math.erfc, otypes=[np.result_type(u)])
    return erfc(-u)


def _erfcneg_cupy(u: Any) -> Any:
    from cupyx.scipy.special import erfc

    return erfc(-u)


_flags = threading.local()


def _on_fp_error(kind: str, flag: int) -> None:
    if kind == "underflow":
        _flags.underflow = True
    else:
        _flags.overflow = True  # reset and read by the kernels that repair what overflowed
        if kind == "overflow":
            _flags.overflowed = True  # kept for the chunk: tells an inf − inf NaN from a domain error


@contextmanager
def fp_guard() -> Iterator[None]:
    """The floating-point state the NumPy kernels run in: under/overflow is the subject here, not an
    accident, so nothing warns; an overflow or invalid result (inf/inf) is *noted*, so the logistic
    kernel can fix the entries where e^z overflowed (cheaper than clamping z on every call:
    ``np.minimum`` costs as much as ``exp``) and the generic kernel can redo the few affected entries
    exactly. An underflow is noted apart (``_flags.underflow``), so the engine looks for gradients that
    became 0 only where one happened.
    """
    with np.errstate(over="call", under="call", divide="ignore", invalid="call", call=_on_fp_error):
        yield


def layer_kernel(loc: Local, xp: Any) -> Callable[[Any, Any, Any], None]:
    """``kernel(zbuf, hout, dout)``: hout ← φ(z), dout ← φ'(z); zbuf is scratch afterwards.

    The special kinds print their array forms (:func:`local_forms`, :data:`symvg.engines.forms.ARRAY`) as
    in-place array calls (:func:`symvg.engines.inplace.inplace`); where such a form overflows (logistic's
    e^z), the entries it left non-finite are redone with the element forms. Anything else is ``lambdify(cse=True)``
    of :func:`evaluation_forms`, repaired exactly (:func:`exact_local`) where it overflowed.
    """
    forms = local_forms(loc.activation, array=True)
    if forms.proved:
        if not forms.overflows:
            return inplace(forms, xp)
        run = inplace(forms, xp, keep_z=True)  # z kept for the redo
        safe = _safe_lambdified(loc.activation, "cupy" if xp.__name__ == "cupy" else "numpy")

        def trapped_then_safe(zb: Any, hout: Any, dout: Any) -> None:
            _flags.overflow = False
            run(zb, hout, dout)
            if _flags.overflow:  # rare (logistic: z > 709 makes e^z = inf): those entries by the element forms
                # but not where z itself is inf or NaN (w·h + b overflowed, or a NaN came in): that is
                # reported, never repaired into a finite φ'
                bad = xp.flatnonzero(~(xp.isfinite(hout) & xp.isfinite(dout)) & xp.isfinite(zb))
                hout[bad], dout[bad] = safe(zb[bad])
        return trapped_then_safe
    pieces = piecewise_writers(loc.activation) if xp is np else None
    f = lambdified(loc.activation, "cupy" if xp.__name__ == "cupy" else "numpy") if pieces is None else None

    def generic(zb: Any, hout: Any, dout: Any) -> None:
        _flags.overflow = False
        if pieces is not None:  # no numpy.select (symvg.engines.piecewise)
            pieces[0](zb, hout)
            pieces[1](zb, dout)
        else:
            phi, dphi = f(zb)
            hout[...] = phi  # broadcasts constants (e.g. φ' = 1/6 on a piece) to the buffer
            dout[...] = dphi
        if _flags.overflow:  # e.g. softplus' = e^z/(1+e^z) = inf/inf at z > 709: redo those entries exactly
            _repair(loc.activation, zb, hout, dout)
    return generic


def _repair(act: Activation, zb: Any, hout: Any, dout: Any) -> None:
    """Recompute φ, φ' with mpmath wherever the float formula gave inf/NaN, or overflowed on the way to a finite
    wrong value (SiLU' at z = -400 squares e^400; :func:`symvg.engines.repair.overflowed`): rare; exact, then
    rounded."""
    bad = ~(np.isfinite(hout) & np.isfinite(dout))
    for form in evaluation_forms(act):
        bad |= overflowed(form, zb, _modules())
    bad = np.flatnonzero(bad)
    hout[bad], dout[bad] = exact_local(act, zb[bad])


@lru_cache(maxsize=None)
def mpmath_forms(act: Activation) -> tuple[Callable, Callable]:
    """φ and φ' as mpmath functions (the catalogue expressions as written), for exact reference values."""
    return sp.lambdify(z, act.expr, "mpmath"), sp.lambdify(z, act.derivative, "mpmath")


__all__ = ["KINDS", "Local", "evaluation_forms", "exact_zeros", "kink_at_zero", "fp_guard", "h",
           "lambdified", "layer_kernel", "local", "local_forms", "loss_form", "loss_lambdified", "mpmath_forms", "output_form", "piecewise_writers", "y"]
