"""One CUDA kernel for the whole chain: a thread carries its sample through all N layers and back.

The per-layer CuPy path (:mod:`symvg.engines.chunked`, ``backend="cupy"``) launches a kernel per layer and
direction and is host-bound. Here one kernel does the structured chain rule of :mod:`symvg.engines.numeric`

    forward   z_k = w_k·h_{k-1} + b_k,  h_k = φ_k(z_k) (+ h_{k-1} if residual),  keep h_{k-1}, φ'_k, w_k
    backward  δ_N = ∂L/∂h_N (or a_N = ∂L/∂z_N, BCE through the logit);  a_k = δ_k·φ'_k;
              g_k = a_k·h_{k-1};  δ_{k-1} = a_k·w_k  (residual: δ_k + a_k·w_k)

for its sample i, writing g_k to ``G[k, i]``: row k is contiguous over samples, so a warp's stores are
coalesced, and so are its reads of per-sample weights ``W[k, i]``; shared weights ``W[k]`` are one address
per warp (a broadcast).

The chain rule itself is not written here either: the steps forward (z_k, h_k) and back (a_k, g_k, δ_{k-1},
direct or log domain, with the products watched for underflow) are :mod:`symvg.engines.chainrule`'s, printed
by :func:`symvg.engines.csource.c_steps`; this module prints the loops around them. Nor is anything about an
activation: each layer's body is
:func:`symvg.engines.csource.elementwise_source` (SymPy's C printer on the proved, overflow-safe forms) wrapped in
a device function, and BCE's ∂L/∂z_N is ``csource.loss_source`` where that exists; any other loss start is
the chain's own ∂L/∂h_N printed by SymPy. So this module prints the *loops*; the steps and the forms stay in
one place each.

Storage: h_{k-1}, φ'_k and w_k are kept for a segment of :data:`SEG` layers in per-thread arrays whose
loops are fully unrolled, so for N ≤ SEG every index is a compile-time constant and they can live in
registers (nvcc 13 for sm_90 spills none of them: benchmarks/README.md). Deeper chains are
**recomputed**, not staged in global memory: a first forward pass keeps only h at the start of each
segment (at most :data:`CHECKPOINTS` of them), then each segment, last first, is run forward again from
its checkpoint and back. That costs one extra forward pass (and a second read of per-sample weights) for
N > SEG, and nothing for N ≤ SEG; depths beyond SEG·CHECKPOINTS are refused (:func:`refusal`).

What floats cannot do is flagged per sample in ``flags`` on the device, never repaired there silently:
:data:`FLAG_NONFINITE` (a NaN/inf input, or a NaN/inf gradient: an overflowing formula or product, or a
pre-activation z_k that overflowed, whose φ' the layer body makes NaN),
:data:`FLAG_UNDERFLOW` (a product of two nonzero numbers in the chain rule rounded to 0, a φ or φ' that is 0
where its forms hold no exact 0, or a z_k = w_k·h_{k-1} that underflowed to 0) and :data:`FLAG_REDO` (such a z_k
at a kink of φ', whose φ'(0) is a convention: redone even where underflow is allowed). A flagged sample
also sets its bit in a one-word ``status`` (``atomicOr``, only on the rare flagged path), so the host
reads four bytes to learn whether anything needs a second look (:func:`finish`), and only then redoes
the flagged samples with the per-layer path, which repairs overflowing formulas exactly and reports
what floats cannot hold.

A **drawn** kernel (``kernel_key(..., drawn=True)``, its arguments from :class:`Draw`) reads no x, y, W or B:
sample i's inputs and weights come from the counter-based generator of :mod:`symvg.engines.philox` at
(seed, i, layer), so a Monte-Carlo run never holds its N×M weights (:func:`launch_drawn`, which
:func:`symvg.engines.sampling.sample` runs with CuPy). Its flagged samples are drawn again by
:func:`draw_source`, from the same text, and redone. Both C twins are checked against the plain kernel on
the draws of the NumPy reference (tests/test_philox.py); neither has run on a GPU.

>>> from symvg.symbolic.chain import Chain
>>> key, layers = kernel_key(Chain(3, ["relu", "tanh", "relu"]), "float32")
>>> [a.name for a in key.activations], layers
(['relu', 'tanh'], (0, 1, 0))
>>> src = chain_source(key)
>>> "#define T float" in src.code and src.code.count("static __device__ __forceinline__ void") == 3
True
>>> refusal(Chain(SEG * CHECKPOINTS + 1, "sigmoid")) is not None, refusal(Chain(100, "sigmoid"))
(True, None)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np
import sympy as sp

from symvg.engines import chainrule as cr
from symvg.engines import philox
from symvg.engines.chunked import CHUNK_BYTES, run
from symvg.engines.csource import (c_steps, elementwise_source, loss_source, lost_z_condition, math_macros_preamble,
                                   watch_condition, zeros_condition)
from symvg.engines.kernels import kink_at_zero
from symvg.engines.plan import Inputs, array_module, check_dtype, check_finite_inputs, check_out, plan, prepare
from symvg.errors import InvalidValueError
from symvg.symbolic.activations import Activation
from symvg.symbolic.chain import Chain, y as y_sym

SEG = 32
"""Layers per segment kept in per-thread arrays (registers when N ≤ SEG, see the module docstring)."""
CHECKPOINTS = 64
"""Segment starts kept for deeper chains: depths up to SEG·CHECKPOINTS = 2048 run in one kernel."""
FLAG_NONFINITE = 1
"""A NaN or inf input (x, y, w, b) or gradient in this sample."""
FLAG_UNDERFLOW = 2
"""A chain-rule product of nonzero factors, or a φ or φ' of its own, rounded to 0 in this sample."""
FLAG_REDO = 4
"""A value the per-layer path computes differently: a pre-activation that underflowed to 0 at a kink of φ'
(ReLU, leaky ReLU), whose φ'(0) is a convention, not the slope on the side the lost z was on. Always redone."""
THREADS_PER_BLOCK = 256
CTYPES = {"float64": "double", "float32": "float"}


@dataclass(frozen=True)
class Key:
    """What a compiled kernel depends on: the distinct activations (first-appearance order), the loss,
    residual, dtype, log domain, and whether x, y, w_k, b_k are drawn in the kernel (:class:`Draw`) instead of
    read. Which layer uses which activation is an argument, not part of the key."""

    activations: tuple[Activation, ...]
    last: Activation
    loss: str
    residual: bool
    dtype: str
    log: bool = False
    drawn: bool = False


@dataclass(frozen=True)
class ChainSource:
    """The kernel ``name`` and its CUDA C text: ``preamble`` (math macros, flag values; idempotent, so
    several kernels can share one C file) and ``code`` (the kernel itself, with T defined and undefined)."""

    name: str
    preamble: str
    code: str

    @property
    def cuda(self) -> str:
        """What NVRTC compiles (``cupy.RawKernel(src.cuda, src.name)``)."""
        return self.preamble + "\n" + self.code


def kernel_key(chain: Chain, dtype: Any = "float64", log: bool = False,
               drawn: bool = False) -> tuple[Key, tuple[int, ...]]:
    """The kernel's :class:`Key` for ``chain`` and the activation index of each layer. Cached: every launch
    asks, and finding the distinct activations hashes and compares SymPy expressions (~50 µs at N = 20)."""
    return _kernel_key(chain, dtype if isinstance(dtype, str) else np.dtype(dtype), bool(log), bool(drawn))


@lru_cache(maxsize=256)
def _kernel_key(chain: Chain, dtype: Any, log: bool, drawn: bool) -> tuple[Key, tuple[int, ...]]:
    distinct = tuple(dict.fromkeys(chain.activations))
    layers = tuple(distinct.index(a) for a in chain.activations)
    key = Key(distinct, chain.activations[-1], chain.loss, bool(chain.residual), np.dtype(dtype).name, bool(log),
              bool(drawn))
    return key, layers


def refusal(chain: Chain) -> str | None:
    """Why the whole-chain kernel cannot take ``chain`` (the per-layer path then does), or None."""
    if chain.depth > SEG * CHECKPOINTS:
        return (f"depth {chain.depth} is beyond the whole-chain kernel's {SEG * CHECKPOINTS} layers "
                f"({CHECKPOINTS} checkpoints of {SEG})")
    return None


# ----------------------------------------------------------------------------- printing


def _name(key: Key) -> str:
    # the forms, not just the names: leaky_relu(3) and a kink convention (at_zero) change them
    text = repr(([(a.name, str(a.expr), str(a.derivative)) for a in key.activations], key.last.name,
                 key.loss, key.residual, key.dtype, key.log, SEG, CHECKPOINTS) + (("drawn",) if key.drawn else ()))
    return "symvg_chain_" + hashlib.sha1(text.encode()).hexdigest()[:12]


def _layer_function(fname: str, act: Activation, residual: bool) -> str:
    # a φ or φ' that underflowed to 0 itself (GELU(-40)) is flagged: only where the forms hold a 0 exactly is it
    # one; so is a z that underflowed to 0, to be redone where φ' has a kink there (its φ'(0) is a convention)
    body = elementwise_source(act, residual).operation.replace("\n", "\n    ")
    lost = "SYMVG_REDO" if kink_at_zero(act) else "SYMVG_UNDERFLOW"
    # a residual h_k = h_{k-1} + φ that cancelled to 0 is looked at too (1 + tanh(-40): truly 3.6e-35)
    cancelled = f"    if ({watch_condition(cr.forward(True)[1])}) *fl_ |= SYMVG_UNDERFLOW;\n" if residual else ""
    return (f"static __device__ __forceinline__ void {fname}(T hp, T w, T b, T *h_, T *d_, unsigned int *fl_)\n{{\n"
            f"    T h, d;\n    {body}\n    if ({zeros_condition(act, 'phi' if residual else 'h')}) "
            f"*fl_ |= SYMVG_UNDERFLOW;\n    if ({lost_z_condition()}) *fl_ |= {lost};\n{cancelled}"
            f"    *h_ = h; *d_ = d;\n}}\n")


def _step_function(name: str, n_acts: int) -> str:
    if n_acts == 1:
        call = f"(void)a; {name}_layer0(hp, w, b, h, d, fl);"
    else:
        cases = " ".join(f"case {j}: {name}_layer{j}(hp, w, b, h, d, fl); break;" for j in range(n_acts - 1))
        call = f"switch (a) {{ {cases} default: {name}_layer{n_acts - 1}(hp, w, b, h, d, fl); }}"
    return (f"static __device__ __forceinline__ void {name}_step(int a, T hp, T w, T b, T *h, T *d, unsigned int *fl)\n{{\n"
            f"    {call}\n}}\n")


def _logit_loss(key: Key) -> Any:
    """``csource.loss_source`` (BCE through the logit, from the engines' forms) where the chain takes it;
    nothing here writes a loss form of its own."""
    if key.residual:  # residual chains start from ∂L/∂h_N (loss_form is None there)
        return None
    return loss_source(key.last, key.loss)


def _loss_function(name: str, key: Key) -> tuple[str, str, bool]:
    """(device function, extra preamble (the math macros are the kernel's already), whether it is ∂L/∂z_N of
    (h_{N-1}, w_N, b_N, y))."""
    from sympy.printing.c import ccode

    src = _logit_loss(key)
    if src is not None:
        body = src.operation.replace("\n", "\n    ")
        return (f"static __device__ __forceinline__ T {name}_dz(T hp, T w, T b, T y)\n{{\n"
                f"    T a;\n    {body}\n    return a;\n}}\n", src.preamble.removeprefix(math_macros_preamble()), True)
    probe = Chain(1, key.last, loss=key.loss)  # ∂L/∂h_N depends on the loss only
    dh = probe.dloss().xreplace({probe.h(1): sp.Symbol("h", real=True), y_sym: sp.Symbol("y", real=True)})
    return (f"static __device__ __forceinline__ T {name}_dh(T h, T y)\n{{\n    return {ccode(dh)};\n}}\n", "", False)


_PREAMBLE = """\
#ifndef SYMVG_GLOBAL
#define SYMVG_GLOBAL extern "C" __global__
#endif
#ifndef SYMVG_NONFINITE
#define SYMVG_NONFINITE {nonfinite}u
#define SYMVG_UNDERFLOW {underflow}u
#define SYMVG_REDO {redo}u
#define SYMVG_SIGN(v) ((v) > 0 ? (T)1 : (v) < 0 ? (T)-1 : (v))
#define SYMVG_NOT_BELOW_INF(v) (isnan(v) || (isinf(v) && (v) > 0))
#endif
"""

_UNROLL = "#ifdef __CUDACC__\n#pragma unroll\n#endif"

_KERNEL = """\
#define T {ctype}
{functions}
#define SYMVG_WB(k, w, b) {read_wb}
SYMVG_GLOBAL void {name}(const long long m, const int n,
{inputs}
        const unsigned char *__restrict__ act, T *__restrict__ G, T *__restrict__ S,
        unsigned char *__restrict__ flag, unsigned int *__restrict__ status)
{{
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < m; i += stride) {{
        T hs[{seg}], ds[{seg}], ws[{seg}], cp[{cps}];
        unsigned int fl = 0;
        const int nseg = (n + {seg} - 1) / {seg};
{read_xy}
        {delta_decl}
        if (!isfinite(h) || !isfinite(yi)) fl |= SYMVG_NONFINITE;
        /* N > SEG: forward through all but the last segment, keeping only each segment's first h */
        for (int k = 0; k < (nseg - 1) * {seg}; ++k) {{
            T hk, dk, w, b;
            if (k % {seg} == 0) cp[k / {seg}] = h;
            SYMVG_WB(k, w, b);
            {name}_step({act_k}, h, w, b, &hk, &dk, &fl);
            h = hk;
        }}
        cp[nseg - 1] = h;
        for (int s = nseg - 1; s >= 0; --s) {{
            const int k0 = s * {seg};
            const int len = n - k0 < {seg} ? n - k0 : {seg};
            T hp = cp[s];
{unroll}
            for (int j = 0; j < {seg}; ++j) {{
                if (j < len) {{
                    const int k = k0 + j;
                    T w, b, hk, dk;
                    SYMVG_WB(k, w, b);
                    if (!isfinite(w) || !isfinite(b)) fl |= SYMVG_NONFINITE;
                    hs[j] = hp; ws[j] = w;
{forward_step}
                    ds[j] = dk; hp = hk;
                }}
            }}
            if (s == nseg - 1) {{
{start}
            }}
{unroll}
            for (int j = {seg} - 1; j >= 0; --j) {{
                if (j < len) {{
                    const long long row = (long long)(k0 + j) * m;
{backward_step}
                }}
            }}
        }}
        flag[i] = (unsigned char)fl;
        if (fl) atomicOr(status, fl);
    }}
}}
#undef SYMVG_WB
#undef T
"""

_READ_INPUTS = """\
        const T *__restrict__ x, const long long xs, const T *__restrict__ y, const long long ys,
        const T *__restrict__ W, const long long wk, const long long wi,
        const T *__restrict__ B, const long long bk, const long long bi,"""
_READ_XY = """\
        const T yi = y[i * ys];
        T h = x[i * xs];"""
_READ_WB = "do { w = W[(k) * wk + i * wi]; b = B[(k) * bk + i * bi]; } while (0)"
# drawn kernels (Draw): sample first + i gets x, y from the pair at (layer 0, STREAM_INPUTS) and w_k, b_k from the pair at
# (layer k, STREAM_WEIGHT_BIAS), scaled in double and then rounded to T, as sampling's NumPy draws are
_DRAWN_INPUTS = """\
        const unsigned int key0, const unsigned int key1, const long long first,
        const double w_mean, const double w_std, const double b_mean, const double b_std, const int y_sign,"""
_DRAWN_XY = """\
        double nx, ny;
        symvg_philox_normal2(key0, key1, (unsigned long long)({sample}), 0u, {stream}u, &nx, &ny);
        const T yi = (T)(y_sign ? (ny > 0 ? 1.0 : 0.0) : ny);
        T h = (T)nx;"""
_DRAWN_WB = ("do { double n0_, n1_; symvg_philox_normal2(key0, key1, (unsigned long long)({sample}), "
             "(unsigned int)(k), {stream}u, &n0_, &n1_); w = (T)(w_mean + w_std * n0_); "
             "b = (T)(b_mean + b_std * n1_); } while (0)")


def _drawn_reads(sample: str) -> tuple[str, str]:
    """(the lines that draw x, y; the body of ``SYMVG_WB(k, w, b)``) for the sample index ``sample`` (C):
    one text for the chain kernel and :func:`draw_source`, so both draw the same bits for a sample."""
    return (_DRAWN_XY.format(sample=sample, stream=philox.STREAM_INPUTS),
            _DRAWN_WB.replace("{sample}", sample).replace("{stream}", str(philox.STREAM_WEIGHT_BIAS)))

# the kernel's names for the chain rule's symbols (:mod:`symvg.engines.chainrule`); the other steps are locals
_DIRECT_NAMES = {cr.delta: "dl", cr.dphi: "ds[j]", cr.hp: "hs[j]", cr.w: "ws[j]"}
_LOG_NAMES = {cr.ld: "ld", cr.sd: "sd", cr.dphi: "ds[j]", cr.hp: "hs[j]", cr.w: "ws[j]"}
_STORE = "if (!isfinite(g)) fl |= SYMVG_NONFINITE;\nG[row + i] = g;"
_STORE_LOG = "if (SYMVG_NOT_BELOW_INF(lg)) fl |= SYMVG_NONFINITE;\nG[row + i] = lg; S[row + i] = sg;"


def _backward_lines(key: Key) -> str:
    """One layer back, :func:`symvg.engines.chainrule.backward` (or ``backward_log``) printed in C, then the
    store of g_k (log|g_k| and its sign) with its check. δ_0 is never used: no underflow is flagged there."""
    steps, names, store = ((cr.backward_log(key.residual), _LOG_NAMES, _STORE_LOG) if key.log else
                           (cr.backward(key.residual), _DIRECT_NAMES, _STORE))
    lines = [*c_steps(steps, names, carry_from="k0 + j > 0"), *store.splitlines()]
    return "\n".join(" " * 20 + line for line in lines)


def _start_lines(name: str, act_k: str, logit: bool, log: bool) -> tuple[str, str]:
    """(the last layer's forward line, the lines that set δ_N), as ``_start`` in the engines: through the
    logit, δ ← ∂L/∂z_N and φ'_N ← 1, so the backward walk is the same for every loss."""
    ind = " " * 20
    step = f"{ind}{name}_step({act_k}, hp, w, b, &hk, &dk, &fl);"
    # a δ_N of 0 is looked at (as the other engines do): e^{-800} underflowed in ∂L/∂z_N, or h_N − y cancelled
    # (h_N = 1 − 1e-18 rounded to y = 1, g truly ~1e-37); ∂L/∂h_N = 0 at h_N = 0 is exact
    if logit:
        forward = (f"{ind}if (k == n - 1) {{ dk = 1; hk = hp; d0 = {name}_dz(hp, w, b, yi); "
                   f"if (d0 == 0) fl |= SYMVG_UNDERFLOW; }}\n"
                   f"{ind}else {{\n    {step}\n{ind}}}")
        start = ""
    else:
        forward, start = step, f"{ind[4:]}d0 = {name}_dh(hp, yi);\n{ind[4:]}if (d0 == 0 && hp != 0) fl |= SYMVG_UNDERFLOW;"
    if log:
        start += "".join(f"\n{ind[4:]}{line}" for line in c_steps(cr.start_log(), {cr.delta: "d0", cr.ld: "ld", cr.sd: "sd"}))
    else:
        start += f"\n{ind[4:]}dl = d0;"
    return forward, start


@lru_cache(maxsize=None)
def chain_source(key: Key) -> ChainSource:
    """The CUDA C source of the whole-chain kernel for ``key`` (see the module docstring).

    >>> from symvg.symbolic.chain import Chain
    >>> src = chain_source(kernel_key(Chain(4, "sigmoid"), "float64")[0])
    >>> src.name.startswith("symvg_chain_"), "exp(-fabs(z))" in src.code, "G[row + i] = g;" in src.code
    (True, True, True)
    """
    name = _name(key)
    funcs = [_layer_function(f"{name}_layer{j}", a, key.residual) for j, a in enumerate(key.activations)]
    funcs.append(_step_function(name, len(key.activations)))
    loss_fn, loss_pre, logit = _loss_function(name, key)
    funcs.append(loss_fn)
    act_k = "act[k]" if len(key.activations) > 1 else "0"
    forward, start = _start_lines(name, act_k, logit, key.log)
    backward = _backward_lines(key)
    decl = "T d0 = 0, ld = 0, sd = 0;" if key.log else "T d0 = 0, dl = 0;"
    if key.drawn:
        inputs, read_xy, read_wb = _DRAWN_INPUTS, *_drawn_reads("first + i")
    else:
        inputs, read_xy, read_wb = _READ_INPUTS, _READ_XY, _READ_WB
    code = _KERNEL.format(ctype=CTYPES[key.dtype], functions="\n".join(funcs), name=name, seg=SEG,
                          cps=CHECKPOINTS, delta_decl=decl, act_k=act_k, unroll=_UNROLL,
                          forward_step=forward, start=start, backward_step=backward,
                          inputs=inputs, read_xy=read_xy, read_wb=read_wb)
    preamble = "\n".join(p for p in (math_macros_preamble(), loss_pre, philox.SOURCE if key.drawn else "",
                                     _PREAMBLE.format(nonfinite=FLAG_NONFINITE, underflow=FLAG_UNDERFLOW, redo=FLAG_REDO)) if p)
    return ChainSource(name, preamble, code)


_DRAW = """\
#define T {ctype}
#define SYMVG_WB(k, w, b) {read_wb}
SYMVG_GLOBAL void {name}(const long long m, const int n, const long long *__restrict__ at,
{inputs}
        T *__restrict__ x, T *__restrict__ y, T *__restrict__ W, T *__restrict__ B)
{{
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < m; i += stride) {{
{read_xy}
        x[i] = h; y[i] = yi;
        for (int k = 0; k < n; ++k) {{
            T w, b;
            SYMVG_WB(k, w, b);
            W[(long long)k * m + i] = w; B[(long long)k * m + i] = b;
        }}
    }}
}}
#undef SYMVG_WB
#undef T
"""


@lru_cache(maxsize=None)
def draw_source(dtype: Any = "float64") -> ChainSource:
    """The kernel that writes, for the samples ``first + at[i]`` of a :class:`Draw`, the x, y (m,) and W, B
    (n, m) that the drawn chain kernel draws for them, bit for bit (the same text, :func:`_drawn_reads`):
    what :func:`finish` redoes a drawn kernel's flagged samples on. Arguments: :meth:`Draw.at_args`.

    >>> src = draw_source("float32")
    >>> src.name, "#define T float" in src.code, "first + at[i]" in src.code
    ('symvg_draw_float32', True, True)
    """
    name = f"symvg_draw_{np.dtype(dtype).name}"
    read_xy, read_wb = _drawn_reads("first + at[i]")
    code = _DRAW.format(ctype=CTYPES[np.dtype(dtype).name], name=name, inputs=_DRAWN_INPUTS, read_xy=read_xy,
                        read_wb=read_wb)
    preamble = "\n".join((math_macros_preamble(), philox.SOURCE,
                          _PREAMBLE.format(nonfinite=FLAG_NONFINITE, underflow=FLAG_UNDERFLOW, redo=FLAG_REDO)))
    return ChainSource(name, preamble, code)


# ----------------------------------------------------------------------------- the host side


def launch_args(n: int, inp: Any, layers: Any, G: Any, S: Any, flags: Any, status: Any) -> tuple:
    """The kernel's arguments, in order: strides in elements, so broadcast inputs (stride 0) and shared
    weights (``W[k]``: ``wi = 0``) need no copy. ``S`` is ``G`` when not in the log domain (unused)."""
    def el(a: Any, axis: int) -> np.int64:
        return np.int64(a.strides[axis] // a.itemsize)

    wk, wi = (el(inp.W, 0), np.int64(0)) if inp.W.ndim == 1 else (el(inp.W, 0), el(inp.W, 1))
    bk, bi = (el(inp.B, 0), np.int64(0)) if inp.B.ndim == 1 else (el(inp.B, 0), el(inp.B, 1))
    return (np.int64(inp.samples), np.int32(n), inp.x, el(inp.x, 0), inp.y, el(inp.y, 0), inp.W, wk, wi,
            inp.B, bk, bi, layers, G, G if S is None else S, flags, status)


@dataclass(frozen=True)
class Draw:
    """What a :data:`Key.drawn <Key>` kernel draws for sample ``first + i``: x and y standard normal (y
    replaced by [y > 0] when ``y_sign``, as BCE's targets), w_k = w_mean + w_std·n, b_k = b_mean + b_std·n'
    (b_std = b_mean = 0: no bias), from the :mod:`symvg.engines.philox` pairs under ``key``
    (:func:`symvg.engines.philox.key_from_seed`). Untested on a GPU: only the kernel's C twin runs in CI."""

    key: tuple[int, int]
    first: int = 0
    w_mean: float = 0.0
    w_std: float = 1.0
    b_mean: float = 0.0
    b_std: float = 0.0
    y_sign: bool = False

    @classmethod
    def from_seed(cls, seed: Any, **scales: Any) -> Draw:
        """The draw of a user's seed (:func:`symvg.engines.philox.key_from_seed`).

        >>> d = Draw.from_seed(0, w_std=2.0)
        >>> d == Draw.from_seed(0, w_std=2.0), d.key != Draw.from_seed(1).key
        (True, True)
        """
        k0, k1 = (int(v) for v in philox.key_from_seed(seed))
        return cls((k0, k1), **scales)

    def inputs(self, n: int, m: int, dtype: Any = "float64", at: Any = None) -> tuple[np.ndarray, ...]:
        """x, y (m,) and W, B (n, m) as the kernel draws them for samples ``first + at`` (default
        ``at = 0 … m-1``), computed in NumPy (the reference: to a few ulps, libm's log and cos not CUDA's)."""
        at = np.arange(m) if at is None else np.asarray(at)
        idx = (self.first + at.astype(np.int64)).astype(np.uint64)
        x, y = philox.normals(self.key, idx, 0, philox.STREAM_INPUTS)
        if self.y_sign:
            y = (y > 0).astype(np.float64)
        wb = np.stack([philox.normals(self.key, idx, k, philox.STREAM_WEIGHT_BIAS) for k in range(n)], axis=1)
        W, B = self.w_mean + self.w_std * wb[0], self.b_mean + self.b_std * wb[1]
        return tuple(a.astype(dtype) for a in (x, y, W, B))

    def args(self, n: int, m: int, layers: Any, G: Any, S: Any, flags: Any, status: Any) -> tuple:
        """A drawn kernel's arguments, in order (``S`` is ``G`` when not in the log domain)."""
        return (np.int64(m), np.int32(n), *self._scalars(), layers, G, G if S is None else S, flags, status)

    def at_args(self, n: int, at: Any, x: Any, y: Any, W: Any, B: Any) -> tuple:
        """:func:`draw_source`'s arguments: samples ``first + at`` (int64, (m,)) into x, y (m,), W, B (n, m)."""
        return (np.int64(at.size), np.int32(n), at, *self._scalars(), x, y, W, B)

    def _scalars(self) -> tuple:
        k0, k1 = (np.uint32(v) for v in self.key)
        return (k0, k1, np.int64(self.first), np.float64(self.w_mean), np.float64(self.w_std),
                np.float64(self.b_mean), np.float64(self.b_std), np.int32(bool(self.y_sign)))

    def largest(self) -> float:
        """The largest |w| or |b| this draw can give: a normal is at most :data:`symvg.engines.philox.MAX_NORMAL`."""
        return max(abs(self.w_mean) + self.w_std * philox.MAX_NORMAL, abs(self.b_mean) + self.b_std * philox.MAX_NORMAL)


@lru_cache(maxsize=None)
def _compiled(key: Key) -> Any:
    return _raw(chain_source(key))


@lru_cache(maxsize=None)
def _raw(src: ChainSource) -> Any:
    import cupy

    return cupy.RawKernel(src.cuda, src.name)


@lru_cache(maxsize=64)
def _device_layers(layers: tuple[int, ...], device: int) -> Any:
    import cupy

    return cupy.asarray(np.array(layers, dtype=np.uint8))


def _redo(chain: Chain, sub: Any, xp: Any, dtype: np.dtype, log: bool, allow_underflow: bool) -> Any:
    """The per-layer path on the flagged samples, called directly so that it can never route back into
    this kernel: it refuses NaN/inf inputs, repairs overflowing formulas exactly, and reports overflow, NaN
    and (unless ``allow_underflow``) underflow."""
    check_finite_inputs(sub, xp)
    return run(plan(chain), xp, sub, dtype, log, CHUNK_BYTES // dtype.itemsize, 1, allow_underflow=allow_underflow)


def finish(chain: Chain, inp: Inputs | Callable[[Any], Inputs], G: Any, S: Any, flags: Any, status: Any, *,
           backend: str = "cupy", dtype: Any = None, allow_underflow: bool = False) -> Any:
    """Read the one status word (the call's only synchronisation) and, where samples were flagged, redo
    those samples alone with the per-layer path on ``backend`` (:func:`_redo`). ``inp`` is the kernel's
    inputs, or (drawn kernels) a function giving the inputs of the samples at the indices it is passed.
    ``dtype``: the kernel's, G's by default (a float32 result redone in float64 lost values below float32's range
    in the store, unreported). Returns G, or (G, S) in the log domain."""
    log = S is not None
    dtype = G.dtype if dtype is None else dtype
    mask = FLAG_NONFINITE | FLAG_REDO | (0 if allow_underflow else FLAG_UNDERFLOW)
    if int(status[0]) & mask:
        xp = array_module(backend)
        idx = xp.flatnonzero(flags & mask)
        sub = inp(idx) if callable(inp) else Inputs(inp.x[idx], inp.y[idx], inp.W if inp.shared_w else inp.W[:, idx],
                                                    inp.B if inp.shared_b else inp.B[:, idx], int(idx.size))
        r = _redo(chain, sub, xp, check_dtype(dtype), log, allow_underflow)
        if log:
            G[:, idx], S[:, idx] = r
        else:
            G[:, idx] = r
    return (G, S) if log else G


def gradients_cuda(chain: Chain, x: Any, y: Any, weights: Any, biases: Any = None, *, dtype: Any = "float64",
                   log: bool = False, out: Any = None, allow_underflow: bool = False) -> Any:
    """:func:`symvg.engines.numeric.gradients` with ``backend="cupy"``, in one kernel launch (plus the status read).

    Inputs and ``out`` as there. Chains the kernel refuses (:func:`refusal`) go to the per-layer path.
    ``numeric.gradients(..., backend="cupy")`` routes here too (:mod:`symvg.engines.registry`): this is
    the direct entry, for benchmarks and tests of the kernel itself.
    """
    cp = array_module("cupy")
    dt = check_dtype(dtype)
    inp = prepare(chain, x, y, weights, biases, cp, dt, check_finite=False)
    if out is not None:
        check_out(out, inp, (chain.depth, inp.samples), dt, cp, bool(log))
    if refusal(chain) is not None:
        check_finite_inputs(inp, cp)
        return run(plan(chain), cp, inp, dt, bool(log), CHUNK_BYTES // dt.itemsize, 1, out,
                   allow_underflow=allow_underflow)
    return launch(chain, inp, dt, log=bool(log), out=out, allow_underflow=allow_underflow)


def launch(chain: Chain, inp: Inputs, dtype: np.dtype, *, log: bool = False, out: Any = None,
           allow_underflow: bool = False) -> Any:
    """The whole-chain kernel on inputs already validated (:func:`symvg.engines.plan.prepare` with CuPy,
    ``out`` by :func:`symvg.engines.plan.check_out`) for a chain :func:`refusal` accepts: one launch, the
    status read, flagged samples redone (:func:`finish`)."""
    G, S, flags, status = _launched(chain, inp.samples, dtype, log, False, out,
                                    lambda *rest: launch_args(chain.depth, inp, *rest))
    return finish(chain, inp, G, S, flags, status, dtype=dtype, allow_underflow=allow_underflow)


def _grid(m: int) -> tuple[tuple[int], tuple[int]]:
    """(blocks, threads per block) for m samples, one thread each."""
    return ((m + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK,), (THREADS_PER_BLOCK,)


def _launched(chain: Chain, m: int, dtype: np.dtype, log: bool, drawn: bool, out: Any,
              args: Callable[..., tuple]) -> tuple:
    """The whole-chain kernel launched on m samples: (G, S, flags, status), S None unless ``log``.
    ``args(layers, G, S, flags, status)`` gives the kernel's arguments (:func:`launch_args`, :meth:`Draw.args`)."""
    import cupy as cp

    n = chain.depth
    G = cp.empty((n, m), dtype=dtype) if out is None else out
    S = cp.empty((n, m), dtype=dtype) if log else None
    flags, status = cp.empty(m, dtype=cp.uint8), cp.zeros(1, dtype=cp.uint32)
    key, layers = kernel_key(chain, dtype, bool(log), drawn)
    if m:
        _compiled(key)(*_grid(m), args(_device_layers(layers, cp.cuda.Device().id), G, S, flags, status))
    return G, S, flags, status


def launch_drawn(chain: Chain, draw: Draw, m: int, dtype: np.dtype, *, log: bool = False,
                 allow_underflow: bool = False) -> Any:
    """The drawn whole-chain kernel for samples ``draw.first … draw.first + m - 1`` of a chain :func:`refusal`
    accepts: one launch and the status read; flagged samples are drawn again on the device
    (:func:`draw_source`, the same bits) and redone (:func:`finish`). Returns G (n, m), or (G, S) with ``log``.
    A draw whose weights could pass ``dtype``'s range (:meth:`Draw.largest`) is refused before anything runs."""
    n = chain.depth
    if not draw.largest() <= float(np.finfo(dtype).max):
        raise InvalidValueError(f"these weights or biases (up to |mean| + {philox.MAX_NORMAL}·std = {draw.largest():.4g}) "
                                f"can pass {np.dtype(dtype).name}'s range; use a smaller mean and std")
    import cupy as cp

    G, S, flags, status = _launched(chain, m, dtype, log, True, None, lambda *rest: draw.args(n, m, *rest))

    def drawn_again(idx: Any) -> Inputs:
        k = int(idx.size)
        x, y = cp.empty(k, dtype=dtype), cp.empty(k, dtype=dtype)
        W, B = cp.empty((n, k), dtype=dtype), cp.empty((n, k), dtype=dtype)
        _raw(draw_source(dtype))(*_grid(k), draw.at_args(n, idx.astype(cp.int64), x, y, W, B))
        return Inputs(x, y, W, B, k)
    return finish(chain, drawn_again, G, S, flags, status, dtype=dtype, allow_underflow=allow_underflow)


__all__ = ["CHECKPOINTS", "ChainSource", "Draw", "FLAG_NONFINITE", "FLAG_REDO", "FLAG_UNDERFLOW", "SEG", "chain_source", "draw_source",
           "gradients_cuda", "launch_drawn", "refusal"]
