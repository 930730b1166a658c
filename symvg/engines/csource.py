"""The C printer of the engines: an activation's forms and the chain rule's steps as CUDA C.

One job: print C. A layer's body for CuPy's ``ElementwiseKernel`` (:func:`elementwise_source`: z_k, then the
proved, overflow-safe forms of :func:`symvg.engines.kernels.local_forms`), the loss step through the logit
(:func:`loss_source`), and the chain rule's steps (:func:`c_steps`, :mod:`symvg.engines.chainrule`) that the
whole-chain kernel (:mod:`symvg.engines.cuda`) prints between its loops. Everything is SymPy's C printer, so the
GPU computes the very forms and steps the CPU engines do; the C twins in the tests compile the same text with gcc.

>>> from symvg.symbolic.activations import get
>>> print(elementwise_source(get("gelu")).operation)
const T z = b + hp*w;
h = (1.0/2.0)*z*erfc(-((1.0/2.0)*M_SQRT2*z));
d = (1.0/2.0)*M_SQRT2*z*exp(-1.0/2.0*pow(z, 2))/sqrt(M_PI) + (1.0/2.0)*erfc(-((1.0/2.0)*M_SQRT2*z));
d += ((pow(z, 2)) - (pow(z, 2))) + ...
if (!isfinite(z)) d = z - z;

(the ``d +=`` line is the guard of :func:`symvg.engines.repair.guard`: NaN where a value on the way overflowed)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp
from sympy.printing.c import C99CodePrinter

from symvg.engines import chainrule as cr
from symvg.engines.chainrule import Step
from symvg.engines.kernels import exact_zeros, local_forms, loss_form
from symvg.engines.repair import guard
from symvg.symbolic.activations import Activation


@dataclass(frozen=True)
class KernelSource:
    """What ``cupy.ElementwiseKernel(in_params, out_params, operation, name, preamble=…)`` needs."""

    in_params: str
    out_params: str
    operation: str
    name: str
    preamble: str = ""


@lru_cache(maxsize=None)
def math_macros_preamble() -> str:
    """``#define`` for each constant SymPy's C printer writes as a macro (M_PI, M_SQRT2, …), guarded.

    NVRTC, which CuPy compiles kernels with, does not include the host's math.h, so these are undefined
    there ("identifier M_PI is undefined"). Values to 21 digits, printed by SymPy.

    >>> print(math_macros_preamble().splitlines()[:3])
    ['#ifndef M_E', '#define M_E 2.71828182845904523536', '#endif']
    """
    from sympy.printing.c import get_math_macros

    seen: dict[str, sp.Expr] = {}
    for value, macro in get_math_macros().items():
        seen.setdefault(macro, value)
    return "\n".join(f"#ifndef {m}\n#define {m} {sp.N(v, 21)}\n#endif" for m, v in seen.items())


class _C(C99CodePrinter):
    """SymPy's C printer with sign as ``SYMVG_SIGN`` (defined by the kernel): C99's prints an int, 0 for NaN."""

    def _print_sign(self, e: sp.Expr) -> str:
        return f"SYMVG_SIGN({self._print(e.args[0])})"


def c_steps(steps: tuple[Step, ...], names: dict[sp.Symbol, str] | None = None, carry_from: str = "",
            watch: bool = True) -> list[str]:
    """The C lines of a pass's steps (:mod:`symvg.engines.chainrule`): a target named in ``names`` (by the C text
    that holds it) is assigned, any other is a new ``const T``; a watched step flags ``SYMVG_UNDERFLOW`` in ``fl`` where its 0
    is not exact (:meth:`symvg.engines.chainrule.Step.underflow`: nonzero factors or cancelled terms; and, for a step that only feeds the layer below, where
    ``carry_from`` holds: nothing below the first layer uses it); ``watch=False`` prints no flags (a body with no
    ``fl``, as CuPy's per-layer kernels, whose path looks for zeros afterwards).

    >>> from symvg.engines import chainrule as cr
    >>> for line in c_steps(cr.backward(residual=True), {cr.delta: "dl", cr.w: "ws[j]"}):
    ...     print(line)
    const T a = dl*dphi;
    if (a == 0 && dl != 0 && dphi != 0) fl |= SYMVG_UNDERFLOW;
    const T g = a*hp;
    if (g == 0 && a != 0 && hp != 0) fl |= SYMVG_UNDERFLOW;
    const T aw = a*ws[j];
    dl = aw + dl;
    if (dl == 0 && aw != 0) fl |= SYMVG_UNDERFLOW;
    """
    names = names or {}
    rename = {s: sp.Symbol(t) for s, t in names.items()}

    def c(e: sp.Expr) -> str:
        return _C().doprint(e.xreplace(rename))
    lines = []
    for s in steps:
        lines.append(f"{'' if s.target in names else 'const T '}{c(s.target)} = {c(s.value)};")
        if s.underflow() and watch:
            cond = " && ".join([watch_condition(s, names), *([carry_from] if s.carry and carry_from else [])])
            lines.append(f"if ({cond}) fl |= SYMVG_UNDERFLOW;")
    return lines


def zeros_condition(act: Activation, phi: str = "h") -> str:
    """The C condition under which the layer's φ (held in ``phi``) or φ' (``d``) is a 0 that is not exact
    (:func:`symvg.engines.kernels.exact_zeros`): one that underflowed, which a kernel flags.

    >>> from symvg.symbolic.activations import get
    >>> zeros_condition(get("gelu"))
    '(h == 0 && !(z == 0)) || (d == 0 && !(0))'
    """
    def c(region: sp.Boolean) -> str:
        return "1" if region == sp.true else "0" if region == sp.false else _C().doprint(region)
    rh, rd = exact_zeros(act)
    return f"({phi} == 0 && !({c(rh)})) || (d == 0 && !({c(rd)}))"


def watch_condition(step: Step, names: dict[sp.Symbol, str] | None = None) -> str:
    """The C condition under which ``step``'s 0 is not exact (:meth:`symvg.engines.chainrule.Step.underflow`), each
    symbol by its C text in ``names`` where named there.

    >>> watch_condition(cr.forward(True)[1])
    'h == 0 && hp != 0 && phi != 0'
    """
    rename = {s: sp.Symbol(t) for s, t in (names or {}).items()}
    return " && ".join(_C().doprint(u.xreplace(rename)) for u in step.underflow())


def lost_z_condition() -> str:
    """The C condition under which z_k = w_k·h_{k-1} + b_k underflowed to 0 (:func:`symvg.engines.chainrule.forward`).

    >>> lost_z_condition()
    'z == 0 && w != 0 && hp != 0 && b == 0'
    """
    return watch_condition(cr.forward(False)[0])


def elementwise_source(act: Activation, residual: bool = False) -> KernelSource:
    """One fused CUDA elementwise kernel per layer: z = w·hp + b, h = φ(z) (+hp), d = φ'(z).

    The body is SymPy's C printer on :func:`local_forms`: each named step a local ``T``, then h and d, so
    the GPU computes the very forms the CPU engines do (for ``logistic`` and ``tanh`` the overflow-safe
    ones: a GPU has no floating-point trap to catch e^z = inf). Piecewise prints as nested ``?:``.

    >>> from symvg.symbolic.activations import get
    >>> src = elementwise_source(get("relu"), residual=True)
    >>> src.in_params, src.out_params
    ('T hp, T w, T b', 'T h, T d')
    >>> src.operation.splitlines()[:2], "h = hp + phi;" in src.operation
    (['const T z = b + hp*w;', 'T phi = ((z < 0) ? ('], True)
    """
    from sympy.printing.c import ccode

    f = local_forms(act)
    zline, hline = c_steps(cr.forward(residual), {cr.h: "h"}, watch=False)
    if residual:  # φ by itself first: h = hp + φ, not the sum of φ's terms and hp in some other order
        hline = f"T phi = {ccode(f.phi)};\n{hline}"
    else:
        hline = f"h = {ccode(f.phi)};"
    # a z that overflowed (w·h + b beyond the dtype) gives φ' = NaN, as on the CPU: φ'(±inf) would be a finite
    # 0 (the overflow-safe forms) and hide it; a GPU has no flag to say it happened
    # an activation's own formulas may overflow on the way to a finite, wrong φ' (SiLU' at z = -400): a guard, NaN
    # there (:func:`symvg.engines.repair.guard`), sends the sample to the host's exact repair as an overflow does
    check = [] if f.proved or (g := guard(f.phi, f.dphi)) == 0 else [f"d += {ccode(g)};"]
    op = "\n".join([zline, *(f"T {s} = {ccode(e)};" for s, e in f.written_out()), hline, f"d = {ccode(f.dphi)};",
                    *check, "if (!isfinite(z)) d = z - z;"])
    name = "symvg_" + "".join(c if c.isalnum() else "_" for c in act.name)[:40] + ("_res" if residual else "")
    return KernelSource("T hp, T w, T b", "T h, T d", op, name, math_macros_preamble())


def loss_source(act: Activation, loss: str) -> KernelSource | None:
    """The CUDA elementwise kernel for the loss step taken through the logit (:func:`loss_form`):
    ``a = ∂L/∂z_N`` from h_{N-1}, w_N, b_N and y; None where the engines start from ∂L/∂h_N.

    >>> from symvg.symbolic.activations import get
    >>> src = loss_source(get("sigmoid"), "bce")
    >>> src.in_params, src.out_params, src.operation.splitlines()[0]
    ('T hp, T w, T b, T y', 'T a', 'const T z = b + hp*w;')
    >>> "1 - y" in src.operation and "exp(-fabs(z))" in src.operation
    True
    """
    from sympy.printing.c import ccode

    form = loss_form(act, loss)
    if form is None:
        return None
    name = "symvg_loss_" + "".join(c if c.isalnum() else "_" for c in act.name)[:40] + "_" + loss
    return KernelSource("T hp, T w, T b, T y", "T a", "\n".join([*c_steps(cr.forward(False)[:1], watch=False), f"a = {ccode(form)};"]), name,
                        math_macros_preamble() + "\n#ifndef NAN\n#define NAN (0.0/0.0)\n#endif")


__all__ = ["KernelSource", "c_steps", "elementwise_source", "loss_source", "lost_z_condition", "math_macros_preamble", "watch_condition",
           "zeros_condition"]
