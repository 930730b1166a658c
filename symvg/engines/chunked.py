"""The chunked engine: the structured chain rule in NumPy (or CuPy) on cache-sized chunks of samples.

    forward   z_k = w_k·h_{k-1} + b_k,  h_k = φ_k(z_k) (+ h_{k-1} if residual),  keep h_k and φ'_k
    backward  δ_N = ∂L/∂h_N;  a_k = δ_k·φ'_k;  g_k = a_k·h_{k-1};
              δ_{k-1} = a_k·w_k  (residual: δ_k + a_k·w_k)

The steps are :mod:`symvg.engines.chainrule`'s, run as in-place array calls
(:func:`symvg.engines.inplace.array_steps`); this module holds the loops: chunks, layers, buffers. Two threads take chunks in turn (NumPy releases the GIL), every operation writing into a buffer it owns
(``out=``); with CuPy one elementwise kernel per layer takes all samples at once. It takes every chain,
also in the log domain, and is the engine the fused one is tested against. What the floats cannot hold is
found here and reported (:func:`run`; the pieces that need no engine in :mod:`symvg.engines.reports`):
``OverflowReport``, ``DomainError`` and ``UnderflowReport``.
Internal to the engines package: two entries of :mod:`symvg.engines.registry` run it (``chunked`` on
NumPy, and on CuPy where the whole-chain kernel refuses a chain), reached through
:func:`symvg.engines.numeric.gradients`.

>>> from symvg.engines.plan import plan, prepare
>>> from symvg.symbolic.chain import Chain
>>> c = Chain(2, "relu")
>>> run(plan(c), np, prepare(c, 2.0, 0.0, [0.5, 3.0]), np.dtype("float64"), False, CHUNK_BYTES, 1).tolist()
[[36.0], [6.0]]
"""

from __future__ import annotations

import itertools
import math
import os
from functools import lru_cache
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from symvg.engines import chainrule as cr
from symvg.engines.inplace import array_steps, array_value
from symvg.engines.csource import elementwise_source, loss_source
from symvg.engines.kernels import Local, _flags, fp_guard, kink_at_zero, layer_kernel, local_forms
from symvg.engines.plan import Inputs, Plan
from symvg.engines.repair import exact_local
from symvg.engines.reports import (REPLAYED, UNDERFLOW_PROBES, cancelled_steps, exact_region, exact_zeros_probed,
                                   exponent_text, layers_text, report_lost)
from symvg.errors import DomainError, OverflowReport, UnderflowReport

CHUNK_BYTES = 128 * 1024
"""Bytes per chunk buffer (16K float64 or 32K float32 samples): big enough that the ~1 µs cost of a
NumPy call is amortised, small enough that a chunk's working set stays in cache (measured on 2 cores:
4K-sample chunks are 1.3-1.6× slower, 64K no faster; see benchmarks/README.md)."""
THREADS = min(2, os.cpu_count() or 1)


@lru_cache(maxsize=None)
def _numpy_kernel(loc: Local) -> Callable:
    """:func:`symvg.engines.kernels.layer_kernel` on NumPy, made once per activation: a chain of 10^5 layers made
    it 10^5 times (0.75 ms each, 3/4 of ``eval -n 100000 -m 3``). A kernel keeps no state between calls."""
    return layer_kernel(loc, np)


def _cupy_layer(loc: Local, residual: bool) -> Callable:
    import cupy

    src = elementwise_source(loc.activation, residual)
    return cupy.ElementwiseKernel(src.in_params, src.out_params, src.operation, src.name, preamble=src.preamble)


def _cupy_loss(p: Plan) -> Callable:
    import cupy

    src = loss_source(p.chain.activations[-1], p.chain.loss)
    return cupy.ElementwiseKernel(src.in_params, src.out_params, src.operation, src.name, preamble=src.preamble)


def _layer_wb(inp: Inputs, k: int, sl: slice) -> tuple[Any, Any]:
    """Layer k's w_k and b_k for the samples ``sl``: a scalar where shared, a row slice where per sample."""
    return (inp.W[k - 1] if inp.shared_w else inp.W[k - 1, sl]), (inp.B[k - 1] if inp.shared_b else inp.B[k - 1, sl])


def _start(p: Plan, xp: Any, inp: Inputs, sl: slice, H: Any, D: Any, d: Any, cuda: bool = False) -> None:
    """δ_N into ``d``. Where the loss is taken through the logit, ``d`` ← ∂L/∂z_N and φ'_N ← 1 instead, so
    the backward pass that follows is the same for every loss; z_N is recomputed from h_{N-1}, w_N, b_N
    as the forward pass computed it."""
    n = p.chain.depth
    if p.dz is None:
        d[...] = p.dloss(H[-1], inp.y[sl])
    else:
        w, b = _layer_wb(inp, n, sl)
        if cuda:
            _cupy_loss(p)(H[n - 1], w, b, inp.y[sl], d)
        else:
            d[...] = p.dz(_Z_VALUE(xp, {"hp": H[n - 1], "w": w, "b": b}), inp.y[sl])
        D[n - 1] = 1
    if not cuda and bool(((d == 0) & (H[-1] != 0) if p.dz is None else (d == 0)).any()):
        # a δ_N of 0 raises no flag where h_N − y cancelled (h_N = 0.5 + 1e-18 rounded to y = 0.5): looked at as the
        # fused kernel's loss step has it looked at (check_underflow), not returned as an exact 0 gradient. One at
        # h_N = 0 is exact (an h_N that underflowed to 0 is looked at as such)
        _flags.underflow = True


# ----------------------------------------------------------------------------- the engine


class _Buffers:
    """One thread's scratch: h_0..h_N and φ'_1..φ'_N for one chunk, plus four work vectors."""

    def __init__(self, n: int, size: int, dtype: np.dtype, xp: Any) -> None:
        self.H = xp.empty((n + 1, size), dtype=dtype)
        self.D = xp.empty((n, size), dtype=dtype)
        self.work = xp.empty((4, size), dtype=dtype)


def _forward(p: Plan, kernels: Sequence[Callable], xp: Any, inp: Inputs, sl: slice, buf: _Buffers, c: int,
             cuda: bool = False, fold: bool = False) -> None:
    # fold=True stores w_{k+1}·φ'_k instead of φ'_k (k < N) while w_{k+1} is in cache, so the
    # backward pass is two operations per layer and reads per-sample weights only once.
    H, D, t = buf.H[:, :c], buf.D[:, :c], buf.work[0, :c]
    H[0] = inp.x[sl]
    for k in range(1, p.chain.depth + 1):
        w, b = _layer_wb(inp, k, sl)
        act = p.chain.activations[k - 1]
        if cuda:  # one CUDA kernel per layer does z, φ, φ' (and the skip)
            kernels[k - 1](H[k - 1], w, b, H[k], D[k - 1])
            if not local_forms(act).proved:  # the activation's own formulas
                _repair_device(p, xp, k, H, D, w, b)
            if kink_at_zero(act):  # no floating-point flags here to say whether z underflowed
                _one_sided(act, xp, H[k - 1], w, b, H[k - 1] * w + b, D[k - 1])
            continue
        _flags.overflow = False
        before, _flags.underflow = _flags.underflow, False
        _Z(xp, {"hp": H[k - 1], "w": w, "b": b, "z": t})
        lost = _lost_z(act, xp, H[k - 1], w, b, t) if _flags.underflow and kink_at_zero(act) else None
        _flags.underflow = _flags.underflow or before
        # z = w·h + b overflowed (the inputs are finite, checked before): φ(±inf) would be a finite 1 or 0 and
        # hide it, so φ' is made NaN there and the chunk is reported (an overflow), never answered
        over = ~xp.isfinite(t) if _flags.overflow else None
        kernels[k - 1](t, H[k], D[k - 1])
        if lost is not None:
            D[k - 1][lost[0]] = lost[1]
        if over is not None and bool(over.any()):
            D[k - 1][over] = np.nan
            _flags.z_overflowed = True
        _H[p.chain.residual](xp, {"hp": H[k - 1], "h": H[k]})
        if fold and k > 1:
            _FOLD(xp, {"dphi": D[k - 2], "w": w})


def _lost_z(act: Any, xp: Any, hp: Any, w: Any, b: Any, z: Any) -> tuple[Any, Any] | None:
    """(the entries where z = w·h + b underflowed to 0, b = 0, at a kink of φ' at 0; φ' on the side the sign of
    w·h gives there), or None: φ'(0) is then the kink's convention (ReLU'(0) = 0, leaky ReLU'(0) = 0.01), not
    the slope at the z that was lost (1e-400 > 0: slope 1). φ(0) = 0 stays: that 0 is an underflow, which the
    zero checks find downstream."""
    left, right = kink_at_zero(act)
    idx = xp.flatnonzero((z == 0) & (b == 0) & (hp != 0) & (w != 0))
    if idx.size == 0:
        return None
    positive = xp.sign(hp[idx]) * xp.sign(w if xp.ndim(w) == 0 else w[idx]) > 0
    return idx, xp.where(positive, right, left)


def _one_sided(act: Any, xp: Any, hp: Any, w: Any, b: Any, z: Any, d: Any) -> None:
    """:func:`_lost_z`'s fix, in place on φ' (``d``)."""
    lost = _lost_z(act, xp, hp, w, b, z)
    if lost is not None:
        d[lost[0]] = lost[1]


def _z_overflowed(p: Plan, xp: Any, inp: Inputs, sl: slice, buf: _Buffers, c: int) -> bool:
    """Whether some z_k = w_k·h_{k-1} + b_k of the chunk is not finite, recomputed from the h kept: how the
    CuPy path, which has no floating-point flags, tells an overflowed pre-activation from a domain error."""
    H = buf.H[:, :c]
    for k in range(1, p.chain.depth + 1):
        w, b = _layer_wb(inp, k, sl)
        if not bool(xp.isfinite(H[k - 1] * w + b).all()):
            return True
    return False


def _repair_device(p: Plan, xp: Any, k: int, H: Any, D: Any, w: Any, b: Any) -> None:
    """Layer k's entries where the printed formula overflowed (φ or φ' not finite), redone exactly on the
    host: the device version of :func:`symvg.engines.kernels.layer_kernel`'s repair. One reduction per layer."""
    hp, hk, dk = H[k - 1], H[k], D[k - 1]
    phi = hk - hp if p.chain.residual else hk
    bad = ~(xp.isfinite(phi) & xp.isfinite(dk))
    if not bool(bad.any()):
        return
    idx = xp.flatnonzero(bad)
    zk = hp[idx] * (w if xp.ndim(w) == 0 else w[idx]) + (b if xp.ndim(b) == 0 else b[idx])
    finite = xp.isfinite(zk)  # a z that overflowed stays NaN (reported), never repaired into a finite φ'
    idx, zk = idx[finite], zk[finite]
    host = _host(zk)
    h_exact, d_exact = (xp.asarray(v) for v in exact_local(p.chain.activations[k - 1], host))
    hk[idx] = hp[idx] + h_exact if p.chain.residual else h_exact
    dk[idx] = d_exact


# The chain rule's steps (symvg.engines.chainrule) as in-place array calls, each symbol in the buffer named here.
# A value that feeds only the layer below (``carry``) is not computed at the first layer.
_Z = array_steps(cr.forward(False)[:1])
_Z_VALUE = array_value(cr.forward(False)[0].value)
_H = {r: array_steps(cr.forward(r)[1:], {cr.phi: "h"}) for r in (False, True)}  # φ was written into h
_FOLD = array_steps(cr.folded()[0], {cr.wd: "dphi"})  # w_{k+1}·φ'_k over φ'_k


def _passes(steps: tuple, where: dict) -> tuple[Callable, Callable]:
    """(a layer's steps, the first layer's: without those that only feed the layer below)."""
    return array_steps(steps, where), array_steps(tuple(s for s in steps if not s.carry), where)


_BACK = {False: _passes(cr.backward(False), {cr.a: "delta", cr.aw: "delta"}),
         True: _passes(cr.backward(True), {cr.aw: "a"})}
_FOLDED_START = array_steps(cr.backward(False)[:1], {cr.a: "delta"})  # a_N = δ_N·φ'_N
_FOLDED = _passes(cr.folded()[1], {cr.a: "delta"})
_START_LOG = array_steps(cr.start_log())
_BACK_LOG = {False: _passes(cr.backward_log(False), {}), True: _passes(cr.backward_log(True), {cr.f: "la"})}


def _backward(p: Plan, xp: Any, inp: Inputs, sl: slice, buf: _Buffers, c: int, G: Any, folded: bool) -> None:
    H, D, (d, a) = buf.H[:, :c], buf.D[:, :c], buf.work[:2, :c]
    _start(p, xp, inp, sl, H, D, d, cuda=xp is not np)
    n = p.chain.depth
    if folded:  # D was folded (see _forward): from a_N on, a_{k-1} = a_k·(w_k·φ'_{k-1})
        _FOLDED_START(xp, {"delta": d, "dphi": D[n - 1]})
    for k in range(n, 0, -1):  # chain rule: one local factor at a time
        w = inp.W[k - 1] if inp.shared_w else inp.W[k - 1, sl]
        if folded:
            _FOLDED[k == 1](xp, {"delta": d, "hp": H[k - 1], "wd": D[k - 2] if k > 1 else None, "g": G[k - 1, sl]})
        else:
            _BACK[p.chain.residual][k == 1](xp, {"delta": d, "a": a, "dphi": D[k - 1], "hp": H[k - 1], "w": w,
                                                 "g": G[k - 1, sl]})


def _backward_log(p: Plan, xp: Any, inp: Inputs, sl: slice, buf: _Buffers, c: int, G: Any, S: Any) -> None:
    # Same walk as _backward, in (log|·|, sign): products become sums, so nothing underflows.
    H, D, (d, s, t, u) = buf.H[:, :c], buf.D[:, :c], buf.work[:, :c]
    _start(p, xp, inp, sl, H, D, t, cuda=xp is not np)
    _START_LOG(xp, {"delta": t, "ld": d, "sd": s})
    for k in range(p.chain.depth, 0, -1):
        w = inp.W[k - 1] if inp.shared_w else inp.W[k - 1, sl]
        _BACK_LOG[p.chain.residual][k == 1](xp, {"ld": d, "sd": s, "la": t, "sa": u, "dphi": D[k - 1], "hp": H[k - 1],
                                                 "w": w, "lg": G[k - 1, sl], "sg": S[k - 1, sl]})


def run(p: Plan, xp: Any, inp: Inputs, dtype: np.dtype, log: bool, chunk: int, threads: int,
         out: Any = None, allow_underflow: bool = True) -> Any:
    n, m = p.chain.depth, inp.samples
    G = xp.empty((n, m), dtype=dtype) if out is None else out
    S = xp.empty((n, m), dtype=dtype) if log else None
    if xp is np:
        kernels = [_numpy_kernel(loc) for loc in p.locals]
    else:
        kernels = [_cupy_layer(loc, p.chain.residual) for loc in p.locals]
        chunk, threads = max(m, 1), 1  # the GPU takes all samples at once
    fold = not (log or p.chain.residual or xp is not np)
    starts = list(range(0, m, chunk))
    threads = max(1, min(threads, len(starts)))

    # Chunks are handed out on demand, not split in advance: a thread that the OS slows down (another
    # program on the core) then takes fewer chunks instead of holding everyone up.
    ticket = itertools.count()

    def chunks() -> Iterator[int]:
        for i in iter(ticket.__next__, None):  # next() on a count is atomic under the GIL
            if i >= len(starts):
                return
            yield starts[i]

    nonfinite: list[slice] = []  # chunks holding inf or NaN (and whether something overflowed in them) ...
    overflowed: list[bool] = []
    forward: list[bool] = []  # ... and whether a pre-activation z_k itself overflowed there
    low: list[slice] = []  # ... and chunks where something underflowed

    def work(_: int) -> None:
        buf = _Buffers(n, min(chunk, m), dtype, xp)
        with fp_guard():
            for s0 in chunks():
                sl = slice(s0, min(s0 + chunk, m))
                c = sl.stop - sl.start
                _flags.underflow = _flags.overflowed = _flags.z_overflowed = False
                _forward(p, kernels, xp, inp, sl, buf, c, cuda=xp is not np, fold=fold)
                if log:
                    _backward_log(p, xp, inp, sl, buf, c, G, S)
                else:
                    _backward(p, xp, inp, sl, buf, c, G, folded=fold)
                # zeros with no underflow flag: an overflow (tanh' = 4e/(1+e)², 2|z| = inf, e = 0 exactly), a residual
                # sum that cancelled (1 + tanh(-40)), and all of CuPy's (no flags there): looked at below
                if _flags.underflow or _flags.overflowed or xp is not np or p.chain.residual:
                    low.append(sl)
                if not _finite_enough(xp, G[:, sl], log):
                    nonfinite.append(sl)
                    z_over = bool(getattr(_flags, "z_overflowed", False)) or (
                        xp is not np and _z_overflowed(p, xp, inp, sl, buf, c))
                    overflowed.append(bool(getattr(_flags, "overflowed", False)) or z_over)
                    forward.append(z_over)

    if threads == 1:
        work(0)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, range(threads)))
    if nonfinite:
        _report_nonfinite(xp, G, nonfinite, log, dtype, any(overflowed), any(forward), (p, inp))
    if low and not allow_underflow:
        check_underflow(p, xp, inp, G, low, dtype, log)
    return (G, S) if log else G


def _finite_enough(xp: Any, g: Any, log: bool) -> bool:
    """No inf or NaN in g (in the log domain: no NaN or +inf; -inf is log 0). One read, no temporaries: a
    sum is finite only if every term is (a finite sum that overflows gets the elementwise check)."""
    with np.errstate(all="ignore"):
        total = float(g.sum())
        if log:
            return total == -np.inf or (np.isfinite(total) or not bool(xp.any(xp.isnan(g) | (g == np.inf))))
        return np.isfinite(total) or bool(xp.all(xp.isfinite(g)))


def _report_nonfinite(xp: Any, G: Any, where: list[slice], log: bool, dtype: np.dtype, overflowed: bool,
                      forward: bool = False, source: tuple[Plan, Inputs] | None = None) -> None:
    """OverflowReport where a gradient (or, in the log domain, log|g|) is infinite, or is NaN after an overflow
    (inf − inf, 0·inf), saying so where a pre-activation z_k itself overflowed (``forward``: then the gradient is
    not known to be large, only not computable in the dtype); else DomainError for NaN. A direct gradient that is
    not finite is looked up in the log domain (with ``source``, the plan and inputs): only those beyond the range
    are said to overflow, the others to have been lost to a product on the way (δ_k = 10^600 times h = 10^-300)."""
    cols = xp.concatenate([xp.arange(sl.start, sl.stop) for sl in sorted(where, key=lambda sl: sl.start)])
    g = G[:, cols]
    inf = (g == np.inf) if log else xp.isinf(g)
    nan = xp.isnan(g)
    if bool(inf.any()) or overflowed:
        inf = inf | nan
        rows = xp.flatnonzero(inf.any(axis=1))
        count = int(inf.sum())
        big = f"{np.finfo(dtype).max:.3g}"
        if forward:
            _report_z_overflow(xp, inf, nan, cols, log, dtype, source)
        within, log10 = (None, None) if log or source is None else _within_range(*source, xp, cols, inf, dtype)
        if within is not None and bool(within.any()):
            report_lost(xp, inf, within, log10, dtype)
        hint = ("" if log else "; log=True carries log|g| where only the backward products overflow, not the "
                "forward pass")
        raise OverflowReport(f"dL/dw_k overflows {dtype.name} (|g| beyond {big}) for {count} "
                             f"value(s) in layer(s) {layers_text(rows)}{hint}",
                             tuple(int(k) + 1 for k in rows), count)
    rows = xp.flatnonzero(nan.any(axis=1))
    count = int(nan.sum())
    raise DomainError(f"dL/dw_k is not a real number (NaN) for {count} value(s) in layer(s) {layers_text(rows)}: "
                      "an activation or the loss was evaluated outside its domain (log or sqrt of a negative "
                      "number, BCE of a prediction that is not in (0, 1))", tuple(int(k) + 1 for k in rows), count)


def _z_overflowed_samples(p: Plan, inp: Inputs, cols: Any, dtype: np.dtype) -> np.ndarray:
    """Which samples ``cols`` met a z_k = w_k·h_(k-1) + b_k that is not finite from a finite h_(k-1) (the inputs are
    finite, checked before): the forward pass replayed for them alone, on the host."""
    c = _host(cols)
    sub = Inputs(*(_host(a) for a in (inp.x[cols], inp.y[cols], inp.W if inp.shared_w else inp.W[:, cols],
                                      inp.B if inp.shared_b else inp.B[:, cols])), int(c.size))
    over = np.zeros(c.size, dtype=bool)
    with fp_guard():
        for v in _replay(p, sub, dtype):
            over |= ~np.isfinite(v[cr.z]) & np.isfinite(v[cr.hp])
    return over


def _report_z_overflow(xp: Any, bad: Any, nan: Any, cols: Any, log: bool, dtype: np.dtype,
                       source: tuple[Plan, Inputs] | None) -> None:
    """OverflowReport for the values ``bad`` (of the samples ``cols``; ``nan``: those that are NaN) where a
    pre-activation overflowed in some samples: counted apart from the values of the other samples, which are not
    finite for another reason (|g| beyond the range, a product on the way to it that overflowed, or a NaN), each
    kind as what it is."""
    big = f"{np.finfo(dtype).max:.3g}"
    by_z = bad if source is None else bad & xp.asarray(_z_overflowed_samples(*source, cols, dtype))[None, :]
    rest = bad & ~by_z

    def where(mask: Any) -> str:
        return f"{int(mask.sum())} value(s) in layer(s) {layers_text(xp.flatnonzero(mask.any(axis=1)))}"
    text = f"a pre-activation z_k = w_k·h_(k-1) + b_k overflowed (|z| beyond {big})"
    if bool(rest.any()):
        inf, undefined = rest & ~nan, rest & nan
        text = f"for {where(by_z)}, {text}; in the other samples"
        if bool(inf.any()):
            rc = inf.any(axis=0)
            within, _ = (None, None) if log else _within_range(source[0], source[1], xp, cols[rc], inf[:, rc], dtype)
            within = xp.zeros_like(inf[:, rc]) if within is None else within
            beyond = inf[:, rc] & ~within
            text += f", {where(beyond)} overflow (|g| beyond {big})" * bool(beyond.any())
            text += (f", {where(within)} are within {dtype.name}'s range but a product of the backward pass overflowed "
                     "on the way to them" * bool(within.any()))
        if bool(undefined.any()):
            text += f", {where(undefined)} are NaN (inf − inf or 0·inf after an overflow, or outside a domain)"
    rows = xp.flatnonzero(bad.any(axis=1))
    raise OverflowReport(f"dL/dw_k cannot be computed in {dtype.name} for {where(bad)}: {text}",
                         tuple(int(k) + 1 for k in rows), int(bad.sum()))


def _within_range(p: Plan, inp: Inputs, xp: Any, cols: Any, bad: Any, dtype: np.dtype) -> tuple[Any, Any]:
    """(the entries of ``bad`` whose |g| the log domain finds within the dtype's range, log10|g| of the samples
    ``cols``); (None, None) where the log domain cannot tell (it overflows too)."""
    sub = Inputs(inp.x[cols], inp.y[cols], inp.W if inp.shared_w else inp.W[:, cols],
                 inp.B if inp.shared_b else inp.B[:, cols], int(cols.size))
    try:
        lg, _ = run(p, xp, sub, dtype, True, CHUNK_BYTES // dtype.itemsize, 1)
    except (OverflowReport, DomainError):
        return None, None
    with np.errstate(invalid="ignore"):
        within = bad & xp.isfinite(lg) & (lg <= math.log(float(np.finfo(dtype).max)))
    return within, lg / math.log(10)


def _host(a: Any) -> np.ndarray:
    """A NumPy copy of a CuPy array (a NumPy one as it is)."""
    return a.get() if hasattr(a, "get") else np.asarray(a)


def _replay(p: Plan, inp: Inputs, dtype: np.dtype) -> Iterator[dict]:
    """The forward pass over all the samples of ``inp`` (NumPy arrays), as :func:`_forward` runs it, one layer at a
    time: the chain rule's symbols (:mod:`symvg.engines.chainrule`) to their values, φ_k before the skip. For the
    few samples a report looks at again (under :func:`fp_guard`)."""
    m, residual = inp.samples, p.chain.residual
    hp = np.asarray(inp.x, dtype=dtype)
    for k in range(1, p.chain.depth + 1):
        w, b = _layer_wb(inp, k, slice(None))
        z = np.asarray(_Z_VALUE(np, {"hp": hp, "w": w, "b": b}), dtype=dtype)
        phi, d = np.empty(m, dtype=dtype), np.empty(m, dtype=dtype)
        _numpy_kernel(p.locals[k - 1])(z.copy(), phi, d)  # the kernel takes its z as scratch
        h = hp + phi if residual else phi
        yield {cr.hp: hp, cr.w: w, cr.b: b, cr.z: z, cr.phi: phi, cr.dphi: d, cr.h: h}
        hp = h


def _suspects(p: Plan, inp: Inputs, dtype: np.dtype) -> np.ndarray:
    """The samples of ``inp`` (NumPy arrays) where a factor of the chain rule is a 0 that is not known to be exact:
    φ or φ' outside the regions where their forms hold an exact 0, a step's 0 that :func:`cancelled_steps` finds (a
    z_k = 0 from nonzero w_k and h_{k-1}, a residual h_k or 1 + w_k·φ'_k that cancelled to 0), or δ_N (∂L/∂z_N) = 0
    but at h_N = 0. Only these need mpmath: the others' zeros are exact (a ReLU that is off), and a block full of
    them left a sample whose z_1 underflowed unprobed. Computed with NumPy's forms, from CuPy too (a few samples,
    on the host)."""
    sus = np.zeros(inp.samples, dtype=bool)
    cancelled = cancelled_steps(p.chain.residual)
    with fp_guard():
        for k, v in enumerate(_replay(p, inp, dtype), 1):
            act, z = p.chain.activations[k - 1], v[cr.z]
            sus |= ((v[cr.phi] == 0) & ~exact_region(act, 0)(z)) | ((v[cr.dphi] == 0) & ~exact_region(act, 1)(z))
            sus |= cancelled([v[s] for s in REPLAYED])
        hn = v[cr.h]
        lost = (p.dloss(hn, inp.y) == 0) & (hn != 0) if p.dz is None else p.dz(z, inp.y) == 0
    return sus | lost


def check_underflow(p: Plan, xp: Any, inp: Inputs, G: Any, where: list[slice], dtype: np.dtype,
                     log: bool = False) -> None:
    """UnderflowReport if a gradient is 0 (log domain: log|g| = -inf) where it is not. Only the samples
    (columns) of ``where`` holding a 0 are looked at, so a ReLU chain's true zeros cost one comparison: a
    direct 0 the log domain finds finite is an underflow of the products; one it finds 0 too (a local factor,
    φ' or ∂L/∂z_N, underflowed itself) is checked with mpmath (:data:`UNDERFLOW_PROBES` samples)."""
    cols = xp.concatenate([xp.arange(sl.start, sl.stop) for sl in where])
    zero = G[:, cols] == (-np.inf if log else 0)
    keep = xp.any(zero, axis=0)
    cols, zero = cols[keep], zero[:, keep]
    if cols.size == 0:
        return
    sub = Inputs(inp.x[cols], inp.y[cols], inp.W if inp.shared_w else inp.W[:, cols],
                 inp.B if inp.shared_b else inp.B[:, cols], int(cols.size))
    lost, top = xp.zeros(zero.shape, dtype=bool), None
    if not log:
        lg, _ = run(p, xp, sub, dtype, True, CHUNK_BYTES // dtype.itemsize, 1)
        lost = zero & xp.isfinite(lg)
        top = float(lg[lost].max()) / math.log(10) if bool(lost.any()) else None
        zero = zero & (lg == -np.inf)
    local = top is None  # zero in the log domain too: a local factor underflowed itself
    unchecked = 0
    if local:  # mpmath on the host, for the few samples probed (from CuPy too), where a zero is not known exact
        host = Inputs(*(_host(a) for a in (sub.x, sub.y, sub.W, sub.B)), sub.samples)
        zero = xp.asarray(_host(zero) & _suspects(p, host, dtype)[None, :])  # on the host: NumPy's forms
        lost, top = exact_zeros_probed(p, host, _host(zero))
        lost = xp.asarray(lost)
        unchecked = max(0, int(zero.any(axis=0).sum()) - UNDERFLOW_PROBES)  # samples with zeros not probed
    if not bool(lost.any()):
        return
    rows = xp.flatnonzero(lost.any(axis=1))
    # only the probed samples are counted: where others hold zeros too, the count is a floor
    count = int(lost.sum())
    many = f"at least {count}" if unchecked else f"{count}"
    # a factor lost to cancellation (MSE's h_N − y once h_N rounds to y) is no underflow: say both
    hint = (f"a factor of the chain rule (φ', the loss's ∂L/∂z_N or ∂L/∂h_N, a layer's output h or its pre-activation "
            f"z = w·h) came out 0: {'it may be 0, or be ' if top is None else ''}below the dtype's range, or lost to "
            "cancellation (h_N − y where h_N rounded to y, a residual h + φ or 1 + w·φ'); the log domain loses it too" if local
            else "pass log=True for log|g|, or allow_underflow=True to accept the zeros")
    size = (f"the largest is 10^{exponent_text(top)}" if top is not None
            else "too small for mpmath to resolve, and not proved to be exactly 0")
    probed = f" ({UNDERFLOW_PROBES} of the samples holding a 0 were checked)" if unchecked else ""
    # without a size the value may be 0 after all: say what is known, not that it underflowed
    what = f"underflows {dtype.name} to 0" if top is not None else f"came out 0 in {dtype.name}"
    if top is not None and top > math.log10(float(np.finfo(dtype).smallest_subnormal)):
        # the gradient itself is within range: a factor on the way was lost (z = w·h = 1e-400 rounded to 0)
        what, size = f"came out 0 in {dtype.name}", f"{size}, within the dtype's range"
    raise UnderflowReport(f"dL/dw_k {what} for {many} value(s){probed} in layer(s) "
                          f"{layers_text(rows)} ({size}): {hint}",
                          tuple(int(k) + 1 for k in rows), count, top)


__all__ = ["CHUNK_BYTES", "THREADS", "UNDERFLOW_PROBES"]
