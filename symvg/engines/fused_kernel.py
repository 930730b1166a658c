"""The fused engine's kernel as Python source, compiled by numba and cached on disk (:mod:`symvg.engines.fused`).

One job: turn (activation, loss, dtype) into the kernel :mod:`symvg.engines.fused` runs on each thread. The kernel is
*printed*, not built from closures: the activation's φ, φ' and the loss step are printed by ``sympy.lambdify``'s
printer (the forms of :mod:`symvg.engines.kernels`), the chain rule's steps (:mod:`symvg.engines.chainrule`) are printed
into :data:`LOOPS` (the layer loops) by :func:`steps_source`, and all of it is dropped beside :data:`TEMPLATE` (the block loop). The
printed module is then either

* **written to the cache folder and imported**, its kernel jitted with ``cache=True``, so numba stores the compiled
  machine code beside it (``__pycache__``) and the next process loads it instead of compiling (7-12 s of CPU);
  or
* **imported from a private temporary folder** where the cache folder cannot be written: the same code,
  compiled in every process (nothing is run through ``exec``).

Both routes compile the same text, so they give bitwise the same numbers (tested).

The cache folder is ``$SYMVG_CACHE_DIR``, else ``$XDG_CACHE_HOME/symvg``, else ``~/.cache/symvg``. A file is named by
a hash of everything that decides its text and machine code (:func:`key_of`): what it is printed from (the
activation's φ, φ' and parameters, the loss form, the dtype), the text of the code that prints it and that it
calls (this module, :mod:`symvg.engines.kernels`, :mod:`symvg.engines.vmath`, :mod:`symvg.engines.verf`: numba's
own cache watches only the printed file), and the symvg, SymPy, numba, NumPy and Python versions; numba's cache adds the CPU it was compiled
for. A changed form, dtype, code or version gives a new name, never a stale kernel. Files are created whole (a
temporary file, then a hard link that fails if the name exists), so processes racing on one key (pytest-xdist
workers) all read one complete file that is never rewritten; numba writes its own cache files atomically.
Nothing is deleted: an old key's files stay until the folder is cleared by hand (a few hundred kB per kernel).

>>> import sympy as sp
>>> print(printed(sp.Symbol("z") ** 2 / 2, "z", "half_square"))
def half_square(z):
    return (1/2)*z**2
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import numpy as np
import sympy as sp
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pycode import PythonCodePrinter

from symvg.engines import chainrule as cr
from symvg.engines.forms import expneg
from symvg.engines.kernels import exact_zeros, kink_at_zero, local_forms
from symvg.engines.repair import guard
from symvg.symbolic.activations import Activation
from symvg.symbolic.chain import y
from symvg.symbolic.parse import z

H_N = sp.Symbol("h_N", real=True)
"""h_N in a depth-free symbol: the loss step's argument, so chains of any depth share one kernel."""

CACHE_ENV = "SYMVG_CACHE_DIR"
"""The environment variable naming the kernel cache folder."""


def _floats(e: sp.Expr) -> sp.Expr:
    # numba types literals as machine integers: 87904967042368842997010876040615967103/50000… (SELU) or
    # 10**30 would overflow int64. Integers that floats hold exactly (and exponents) stay integers.
    return e.replace(lambda a: a.is_Rational and (not a.is_Integer or abs(a) > 2 ** 53), lambda a: sp.Float(a, 20))


_pick = sp.Function("pick")


def branchless(e: sp.Expr) -> sp.Expr:
    """``e`` with each Piecewise as nested ``pick(cond, a, b)``.

    Piecewise prints as `a if c else b`: a branch per element, which LLVM may keep (an inlined exp is too big to
    speculate), and which mixed signs then mispredict. pick(c, a, b) evaluates both pieces as arguments and
    selects: ELU 1.3× faster (measured, N = 20, M = 10^6).

    >>> x = sp.Symbol("x", real=True)
    >>> branchless(sp.Piecewise((x, x > 0), (0, True)))
    pick(x > 0, x, 0)
    """
    def nest(pieces: tuple) -> sp.Expr:
        (expr, cond), rest = pieces[0], pieces[1:]
        if cond == sp.true:
            return expr
        return _pick(cond, expr, nest(rest) if rest else sp.nan)
    return e.replace(lambda a: isinstance(a, sp.Piecewise), lambda a: nest(a.args))


# The names printed formulas call, bound in the kernel's header to vmath's and verf's vectorised functions (erf and
# erfc are printed by their bare names, which the header binds over math's); everything else (log, sqrt, pi,
# copysign) comes from ``math``.
_BOUND = {"exp": "vexp", "expm1": "vexpm1", "log1p": "vlog1p", "tanh": "vtanh", "erfcneg": "erfcneg", "pick": "pick",
          "vexpneg": "vexpneg", "tanh_parts": "tanh_parts", "nanif": "nanif"}
_NATIVE = {expneg: sp.Function("vexpneg")}
"""The forms table's helpers (:mod:`symvg.engines.forms`) by the vmath names that compute them (tanh_parts is
its own name)."""
_NAMED = {0: "zero", 1: "one", 4: "four"}
"""Constants the kernel's header defines in its dtype (FT)."""


class _Printer(PythonCodePrinter):
    """lambdify's printer for ``math``, but 1/x as ``one/x``: a bare 1 is an int64 to numba, and int64 / float32 is
    float64 (a float32 kernel would leave float32 there); ``one`` is the header's 1 in the kernel's dtype."""

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        if expr.exp == -1:
            return "one/" + self.parenthesize(expr.base, PRECEDENCE["Pow"])
        return super()._print_Pow(expr, rational=rational)


_SETTINGS = {"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True,
             "user_functions": {k: k for k in _BOUND}}


def printed(expr: Any, args: Any, name: str, steps: tuple = ()) -> str:
    """The source of ``def name(args): return expr`` as lambdify prints it (the :data:`_BOUND` names and ``math``'s
    called by their bare names, which the kernel's header binds): ``steps`` ((symbol or tuple of symbols,
    expression), in order) as its assignments where given, else common subexpressions found by ``cse``."""
    cse = (lambda es: (list(steps), es)) if steps else True
    f = sp.lambdify(args, expr, modules=[dict.fromkeys(_BOUND, None), "math"], cse=cse, printer=_Printer(_SETTINGS))
    return inspect.getsource(f).replace("_lambdifygenerated", name, 1)


# The vectorised functions printed formulas call. A float64 kernel computes in float64 throughout, so it binds
# vmath's float64 functions themselves; a float32 one may meet float64 values too (a printed constant is a
# Python float), so each call chooses by its argument's width (vmath.by_width, at a typing pass per call site:
# ~1-4 s more of compile for a formula with several).
_VMATH = {
    64: """\
from symvg.engines.vmath import parts64 as tanh_parts, vexpneg64 as vexpneg  # noqa: F401
from symvg.engines.vmath import vexp64 as exp, vexpm164 as expm1, vlog1p64 as log1p, vtanh64 as tanh  # noqa: F401
""",
    32: """\
from symvg.engines.vmath import tanh_parts, vexpneg  # noqa: F401
from symvg.engines.vmath import vexp as exp, vexpm1 as expm1, vlog1p as log1p, vtanh as tanh  # noqa: F401
""",
}

def _typed(e: sp.Expr) -> sp.Expr:
    """The forms table's integer constants in the kernel's dtype: by the header's names (``one``), else ``FT(n)``
    (exponents and a sign excepted). numba types a bare 1 as int64, and int64 with float32 as float64, so
    ``1/(e + 1)`` would leave float32; a named constant compiles faster than a call of FT (measured). A quotient
    with no numerator gets ``one``: the printer writes a bare ``1/``."""
    if e.is_Integer:
        return sp.Symbol(_NAMED[int(e)]) if int(e) in _NAMED else sp.Function("FT")(e)
    if e.is_Float:  # a generic formula's constants (:func:`_floats`), in the kernel's dtype too
        return sp.Function("FT")(e)
    if e.is_Pow:
        p = sp.Pow(_typed(e.base), e.exp, evaluate=False)
        return sp.Mul(sp.Symbol("one"), p, evaluate=False) if e.exp.is_negative else p
    if e.is_Mul:
        if all(a.is_Pow and a.exp.is_negative for a in e.args):
            return _typed(sp.Mul(sp.Integer(1), *e.args, evaluate=False))
        return sp.Mul(*(a if a == -1 else sp.Pow(_typed(a.base), a.exp, evaluate=False) if a.is_Pow else _typed(a)
                        for a in e.args), evaluate=False)
    if not e.args:
        return e
    return e.func(*(_typed(a) for a in e.args), evaluate=False)


def numba_form(e: sp.Expr) -> sp.Expr:
    """A form as the kernel computes it: constants typed, Piecewise branch-free, the table's helpers by vmath's names."""
    e = branchless(_floats(e)).replace(lambda a: a.func in _NATIVE, lambda a: _NATIVE[a.func](*a.args))
    # π, √2 …: a Float, so that it is typed with the other constants (a float32 kernel then stays float32)
    return _typed(e.xreplace({c: sp.Float(c, 20) for c in e.atoms(sp.NumberSymbol)}))


def zeros_source(act: Activation) -> str:
    """The source of ``zeros(z, h, d)``: whether φ(z) = h or φ'(z) = d is a 0 that is not exact
    (:func:`symvg.engines.kernels.exact_zeros`), i.e. one that underflowed.

    >>> from symvg.symbolic.activations import get
    >>> print(zeros_source(get("gelu")))
    def zeros(z, h, d):
        return ((h == zero) & (pick((z == zero), one, zero) == zero)) | ((d == zero) & (zero == zero))
    <BLANKLINE>
    """
    def exact(region: sp.Boolean) -> str:
        return _python(numba_form(sp.Piecewise((1, region), (0, True))), {})
    rh, rd = exact_zeros(act)
    return (f"def zeros(z, h, d):\n    return ((h == zero) & ({exact(rh)} == zero)) | "
            f"((d == zero) & ({exact(rd)} == zero))\n")


def pair_source(act: Activation) -> str:
    """The source of ``pair(zv) -> (φ(zv), φ'(zv))`` for ``act``: :func:`symvg.engines.kernels.local_forms` printed
    for numba (see :mod:`symvg.engines.fused`); the table's forms with their constants typed (:func:`_typed`).

    >>> from symvg.symbolic.activations import get
    >>> print(pair_source(get("sigmoid")))
    def pair(z):
        e = vexpneg(-abs(z))
        s = one/(e + one)
        es = e*s
        return (pick((z >= zero), s, es), es*s,)
    <BLANKLINE>
    >>> print(pair_source(get("tanh")))
    def pair(z):
        (t, e, r) = tanh_parts(abs(z))
        return (copysign(t, z), e*four*r*r,)
    <BLANKLINE>
    """
    f = local_forms(act)
    table = f.proved
    steps = tuple((s, numba_form(e)) for s, e in f.steps)
    # an activation's own formulas may overflow on the way to a finite, wrong value (SiLU' at z = -400): their φ'
    # carries a guard that is NaN there, so the block is flagged and redone by the NumPy engine, which repairs it
    dphi = f.dphi if table else f.dphi + guard(f.phi, f.dphi)
    return printed((numba_form(f.phi), numba_form(dphi)), z, "pair", steps)


def dloss_source(form: sp.Expr, logit: bool) -> str:
    """The source of ``dloss(z or h_N, y)``: ∂L/∂z_N where ``logit``, else ∂L/∂h_N."""
    return printed(branchless(_floats(form)), (z if logit else H_N, y), "dloss")


HEADER = """\
# generated by symvg.engines.fused_kernel: {what}
import math
from math import *  # noqa: F401,F403 -- the functions printed formulas call by name
import numba
import numpy as np
from symvg.engines.vmath import at, fence, nanif, pick, stream  # noqa: F401
from symvg.engines.verf import erfcneg, verf as erf, verfc as erfc  # noqa: F401
{vmath}
FT = np.{dtype}
zero, one, four = FT(0), FT(1), FT(4)
CHECK_LOCAL = {check}  # the logistic and tanh forms stay finite for every finite z
# error_model: no ZeroDivisionError branch, so loops vectorise; contract: a·b + c as one FMA (1 rounding).
# nogil: the engine runs one kernel call per thread (symvg.engines.fused), each on its own run of blocks.
# The kernel is cached where this text is a file (numba needs one to cache); its helpers are compiled into it.
# pair and dloss are inlined into the loops by numba (as vmath's functions are): left to LLVM's inliner, the
# ELU loop kept a call to expm1 and did not vectorise (5× slower).
local_jit = numba.njit(nogil=True, error_model="numpy", fastmath={{"contract"}})
inline_jit = numba.njit(inline="always", error_model="numpy", fastmath={{"contract"}})
kernel_jit = numba.njit(nogil=True, error_model="numpy", fastmath={{"contract"}}, cache="__file__" in globals())
"""

# The layer loops. Few compiled functions, nested one deep: numba compiles each function apart and then
# optimises and assembles everything it calls again, so every level of calls repeats the work below it
# (the kernel cost 13-21 s of CPU to compile when its steps were eight functions four deep; 7-9 s now).
# Shared w_k and b_k go in as scalars (a row of copies cost 13 % at N = 20): two specialisations of forward,
# backward and the logit loss step, (float, float) and (array, array).
LOOPS = """\
@local_jit
def forward(w, b, hp, hn, d, c, residual):
    bad, under = False, False
    for j in range(c):
{z}
        hj, dj = pair(zj)
        # v - v is NaN exactly when v is inf or NaN. z is not finite when w or b is not (or z overflowed,
        # which the chunked engine then redoes); φ and φ' need checking only where a formula can overflow.
        bad |= (zj - zj != zero) | (CHECK_LOCAL & ((hj - hj != zero) | (dj - dj != zero)))
        under |= zeros(zj, hj, dj)  # a φ or φ' that underflowed to 0 (GELU(-40)): no exact zero to pass on
{h}
        d[j] = dj
    return bad, under


@local_jit
def backward(delta, d, hp, w, g, c, residual):
    bad, under = False, False
    for j in range(c):
        dj, dphij, hj, wj = delta[j], d[j], hp[j], at(w, j)
{back}
        g[j] = gj
        delta[j] = dj
        bad |= gj - gj != zero  # not finite: it overflowed, or met a NaN
    return bad, under
"""
_FORWARD_NAMES = {cr.z: "zj", cr.w: "at(w, j)", cr.b: "at(b, j)", cr.hp: "hp[j]", cr.phi: "hj", cr.h: "hn[j]"}
_BACKWARD_NAMES = {cr.delta: "dj", cr.dphi: "dphij", cr.hp: "hj", cr.w: "wj", cr.g: "gj"}


def _python(e: sp.Expr, names: dict) -> str:
    return _Printer(_SETTINGS).doprint(e.xreplace({s: sp.Symbol(t) for s, t in names.items()}))


def steps_source(plain: tuple[cr.Step, ...], residual: tuple[cr.Step, ...], names: dict, indent: int = 8,
                 flag: str = "under") -> str:
    """The lines of a pass's steps (:mod:`symvg.engines.chainrule`) for the kernel, whose ``residual`` is an
    argument: the two variants side by side, a step that differs as ``r if residual else p``, each product watched
    for underflow (in ``flag``: ``under``, to be checked; ``bad``, to be redone) right after it, under that
    condition where only one variant watches it. ``names``: the kernel's text for a symbol.

    >>> from symvg.engines import chainrule as cr
    >>> print(steps_source(cr.backward(False), cr.backward(True), {cr.delta: "dj"}, indent=0))
    a = dj*dphi
    under |= (a == zero) & (dj != zero) & (dphi != zero)
    g = a*hp
    under |= (g == zero) & (a != zero) & (hp != zero)
    aw = a*w
    under |= (aw == zero) & (a != zero) & (w != zero) & (not residual)
    dj = aw + dj if residual else aw
    under |= (dj == zero) & (aw != zero) & (residual)
    """
    lines = []
    for p, r in zip(plain, residual, strict=True):
        assert p.target == r.target, (p, r)  # the variants differ in values only
        t = _python(p.target, names)
        v = _python(p.value, names) if p.value == r.value else (
            f"{_python(r.value, names)} if residual else {_python(p.value, names)}")
        lines.append(f"{t} = {v}")
        watched = p.underflow() or r.underflow()
        if watched:
            when = [] if p.underflow() == r.underflow() else ["(not residual)" if p.underflow() else "(residual)"]
            zero = {sp.Integer(0): sp.Symbol("zero")}
            lines.append(f"{flag} |= " + " & ".join([*(_python(u.xreplace(zero), names) for u in watched), *when]))
    return "\n".join(" " * indent + line for line in lines)


def loops_source(kink: bool = False) -> str:
    """:data:`LOOPS` with the chain rule's steps printed in: forward's z_k and h_k, backward's a_k, g_k, δ_{k-1}.
    ``kink``: φ' has a kink at 0 (:func:`symvg.engines.kernels.kink_at_zero`), so a z that underflowed to 0 is
    flagged for the chunked engine to redo (``bad``), which takes φ' on its side, not only to be checked."""
    z = steps_source(*(v[:1] for v in (cr.forward(False), cr.forward(True))), _FORWARD_NAMES,
                     flag="bad" if kink else "under")
    h = steps_source(*(v[1:] for v in (cr.forward(False), cr.forward(True))), _FORWARD_NAMES)
    return LOOPS.format(z=z, h=h, back=steps_source(cr.backward(False), cr.backward(True), _BACKWARD_NAMES))


# The loss step, δ_N, one of two (printed for the loss at hand, with the call in the kernel that runs it). It
# flags NaN/inf, and a 0 (an underflow of the form, e^{-800}, h_N − y cancelled, or a true 0) to be looked at; not
# ∂L/∂h_N = 0 at h_N = 0, which is exact (y = 0; forward flags an h_N that underflowed to 0): ReLU chains with y = 0
# flagged every block holding a dead output (10^6 samples, N = 20: 2.7 s against 0.24 s).
LOSS = ("""\
@local_jit
def loss(hN, yv, delta, c):
    bad, under = False, False
    for j in range(c):
        dj = dloss(hN[j], yv[j])
        delta[j] = dj
        bad |= dj - dj != zero
        under |= (dj == zero) & (hN[j] != zero)
    return bad, under
""", "loss(H[n], ys, delta, c)")

LOSS_LOGIT = ("""\
@local_jit
def loss(w, b, hp, dN, yv, delta, c):
    # ∂L/∂z_N, z_N recomputed as forward computed it; φ'_N ← 1 so that backward needs no second form
    bad, under = False, False
    for j in range(c):
        dj = dloss({z}, yv[j])
        delta[j] = dj
        dN[j] = one
        bad |= dj - dj != zero
        under |= dj == zero
    return bad, under
""", "loss(W[n - 1, 0], B[n - 1, 0], H[n - 1], D[n - 1], ys, delta, c) if shared else "
     "loss(wr, br, H[n - 1], D[n - 1], ys, delta, c)")

TEMPLATE = """\
@kernel_jit
def kernel(x, yv, W, B, residual, G, bad, under, S, first, stop):
    # Blocks first .. stop - 1 of S.shape[1] samples, each carried through the whole chain and back in the
    # scratch S: rows 0..N h_k, N+1..2N φ'_k, then δ, a shared w_k or b_k spread over a row, and a row of the
    # result (in cache until streamed out)
    n, m = G.shape
    size = S.shape[1]
    H, D = S[:n + 1], S[n + 1:2 * n + 1]
    delta, row, g = S[2 * n + 1], S[2 * n + 2], S[2 * n + 3]
    shared = W.shape[1] == 1 and B.shape[1] == 1
    for blk in range(first, stop):
        s0 = blk * size
        c = min(size, m - s0)
        xs, ys = x[s0:s0 + c], yv[s0:s0 + c]
        flag, low = False, False
        for j in range(c):
            H[0, j] = xs[j]
            flag |= (xs[j] * zero != zero) | (ys[j] * zero != zero)
        wr, br = row, row  # layer k's w_k and b_k rows where either is per sample
        for k in range(n):
            if shared:
                fk, uk = forward(W[k, 0], B[k, 0], H[k], H[k + 1], D[k], c, residual)
            else:
                wr = row if W.shape[1] == 1 else W[k, s0:s0 + c]
                br = row if B.shape[1] == 1 else B[k, s0:s0 + c]
                for j in range(c if W.shape[1] == 1 or B.shape[1] == 1 else 0):
                    row[j] = W[k, 0] if W.shape[1] == 1 else B[k, 0]
                fk, uk = forward(wr, br, H[k], H[k + 1], D[k], c, residual)
            flag |= fk
            low |= uk
        fk, uk = {loss_call}
        flag |= fk
        low |= uk
        for k in range(n - 1, -1, -1):
            if W.shape[1] == 1:
                fk, uk = backward(delta, D[k], H[k], W[k, 0], g, c, residual)
            else:
                fk, uk = backward(delta, D[k], H[k], W[k, s0:s0 + c], g, c, residual)
            flag |= fk
            low |= uk
            stream(g, G[k, s0:s0 + c], c)
        bad[blk], under[blk] = flag, low
    fence()
"""


def module_source(act: Activation, loss: tuple[sp.Expr, bool], dtype: str) -> str:
    """The whole kernel module for one (activation, loss, dtype): header, pair, dloss, loops, loss step, kernel."""
    form, logit = loss
    head = HEADER.format(what=f"{act.name}, {'logit ' if logit else ''}loss {form}, {dtype}", dtype=np.dtype(dtype).name,
                         vmath=_VMATH[np.dtype(dtype).itemsize * 8], check=not local_forms(act).proved)
    step, call = LOSS_LOGIT if logit else LOSS
    if logit:  # z_N recomputed as forward computes it
        step = step.replace("{z}", _python(cr.forward(False)[0].value, _FORWARD_NAMES))
    pieces = [head, "\n@inline_jit\n" + pair_source(act), "\n@inline_jit\n" + zeros_source(act),
              "\n@inline_jit\n" + dloss_source(form, logit), "",
              loops_source(kink_at_zero(act) is not None), "", step, "", TEMPLATE.format(loss_call=call)]
    return "\n".join(pieces)


def cache_dir() -> Path:
    """The kernel cache folder (see the module docstring); it may not exist yet."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "symvg"


@lru_cache(maxsize=1)
def _code_and_versions() -> str:
    import numba

    from symvg import __version__
    here = Path(__file__).parent
    texts = [(here / f).read_text(encoding="utf-8")  # repair.py: the guard a generic formula is printed with
             for f in ("fused_kernel.py", "vmath.py", "verf.py", "kernels.py", "forms.py", "repair.py", "chainrule.py")]
    return "\0".join([*texts, __version__, sp.__version__, numba.__version__, np.__version__, sys.version])


@lru_cache(maxsize=256)  # asked on every engine="auto" call that might take the kernel from disk
def key_of(act: Activation, loss: tuple[sp.Expr, bool], dtype: str) -> str:
    """The hash naming a kernel's file: what its text is printed from (the activation's φ and φ' and
    parameters, the loss form, the dtype), the code that prints it and that it calls (this module,
    :mod:`symvg.engines.kernels`, :mod:`symvg.engines.forms`, :mod:`symvg.engines.repair`,
    :mod:`symvg.engines.vmath`, :mod:`symvg.engines.verf`: numba's own cache watches only the printed file),
    and every version that changes the text or the machine code. Computed without printing, which takes
    SymPy seconds for some activations, so a cached kernel loads at once.

    >>> from symvg.symbolic.activations import get
    >>> k = key_of(get("tanh"), (sp.Symbol("h_N") - sp.Symbol("y"), False), "float64")
    >>> len(k), k == key_of(get("tanh"), (sp.Symbol("h_N") - sp.Symbol("y"), False), "float32")
    (32, False)
    """
    what = sp.srepr((act.name, act.expr, act.derivative, act.params, act.convention, loss[0], loss[1]))
    parts = [what, np.dtype(dtype).name, _code_and_versions()]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def cached(act: Activation, loss: tuple[sp.Expr, bool], dtype: str, directory: Path | None = None) -> bool:
    """Whether an earlier process left this kernel compiled in the cache folder: its file and numba's index of
    the machine code beside it (``__pycache__/kernel_<key>.kernel-<line>.py<ver>.nbi``). Loading it then costs
    a fraction of a second, not a compile. Asks nothing of SymPy beyond :func:`key_of`."""
    key = key_of(act, loss, dtype)
    folder = directory or cache_dir()
    try:
        return (folder / f"kernel_{key}.py").is_file() and any((folder / "__pycache__").glob(f"kernel_{key}.kernel-*.nbi"))
    except OSError:
        return False


def _write_once(path: Path, text: str) -> None:
    """Create ``path`` with ``text`` unless it exists: racing writers leave one whole file, never rewritten
    (rewriting would change its time stamp and void numba's cache of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".py")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        try:
            os.link(tmp, path)  # atomic, and fails if another process made it first: theirs is the same text
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)


@lru_cache(maxsize=1)
def _private_dir() -> Path:
    """A folder of this process's own (removed at exit), for when the cache folder cannot be written."""
    import atexit
    import shutil

    path = Path(tempfile.mkdtemp(prefix="symvg-kernels-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def load(key: str, source: Callable[[], str], directory: Path | None = None) -> ModuleType:
    """The kernel module named ``key``: imported from the cache folder (``directory`` or :func:`cache_dir`),
    after writing ``source()`` there if it is not yet; from a private temporary folder where the cache folder
    cannot be written. Printed code is always imported from a file: nothing here runs text through exec."""
    name = f"symvg_kernel_{key}"
    if name in sys.modules:
        return sys.modules[name]
    path = (directory or cache_dir()) / f"kernel_{key}.py"
    text = None  # printed only when needed (seconds of SymPy for some activations), and once
    try:
        if not path.exists():
            text = source()
            _write_once(path, text)
    except OSError:  # a read-only or missing home, a full disk: this process's own folder instead
        if directory == _private_dir():
            raise
        return load(key, source if text is None else (lambda: text), _private_dir())
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules[name] = mod
    return mod


@lru_cache(maxsize=None)
def kernel(act: Activation, loss: tuple[sp.Expr, bool], dtype: str) -> Callable:
    """The parallel kernel for one (activation, loss, dtype); compiled (or loaded from the cache) on its
    first call."""
    return load(key_of(act, loss, dtype), lambda: module_source(act, loss, dtype)).kernel


@lru_cache(maxsize=None)
def pair(act: Activation, dtype: str) -> Callable:
    """A numba function z ↦ (φ(z), φ'(z)) for one activation and dtype, as the kernel computes it (tests)."""
    head = HEADER.format(what=act.name, dtype=np.dtype(dtype).name, vmath=_VMATH[np.dtype(dtype).itemsize * 8], check=False)
    text = head + "\n@inline_jit\n" + pair_source(act)
    return load("pair_" + hashlib.sha256(text.encode()).hexdigest()[:32], lambda: text).pair


__all__ = ["CACHE_ENV", "H_N", "HEADER", "LOOPS", "LOSS", "LOSS_LOGIT", "TEMPLATE", "branchless", "cache_dir", "cached", "dloss_source", "kernel", "key_of",
           "load", "loops_source", "module_source", "numba_form", "pair", "pair_source", "printed", "steps_source",
           "zeros_source"]
