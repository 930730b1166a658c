"""Fast numeric evaluation of every dL/dw_k, for millions of samples at once.

One job: turn a :class:`~symvg.symbolic.chain.Chain` (or one :class:`~symvg.symbolic.derive.Derivation` of it) into
array code. The symbolic work happens once per activation (:mod:`symvg.engines.kernels` derives and proves
the local pieces φ, φ' and picks a kernel); the numbers then flow through the structured chain
rule that :mod:`symvg.symbolic.derive` writes down, never through the nested closed form:

    forward   z_k = w_k·h_{k-1} + b_k,  h_k = φ_k(z_k) (+ h_{k-1} if residual),  keep h_k and φ'_k
    backward  δ_N = ∂L/∂h_N;  a_k = δ_k·φ'_k;  g_k = a_k·h_{k-1};  δ_{k-1} = a_k·w_k  (residual: δ_k + a_k·w_k)

so all N gradients cost one forward and one backward pass. Two CPU engines run it:

* ``fused`` (:mod:`symvg.engines.fused`, needs numba: ``pip install symvg[fast]``): one compiled kernel, blocks of
  samples carried through every layer in cache, a vectorised ``exp``, all cores. 2.5-4× faster than
  ``chunked`` for the sigmoid (benchmarks/README.md); chains with one activation throughout, not the log
  domain.
* ``chunked``: NumPy on cache-sized chunks, two threads taking chunks in turn (NumPy releases the GIL),
  every operation writing into a buffer it owns (``out=``); sigmoid needs one ``exp`` per layer and sample.
  Takes everything, and is the reference the fused engine is tested against.

``engine="auto"`` (the default) picks ``fused`` when numba is installed, the chain qualifies, and its kernel
is compiled already (:func:`compile` does that) or the work is large enough to repay compiling it
(:data:`FUSED_MIN_WORK`); else ``chunked``. Activations whose formulas call a function the kernel cannot
vectorise (erf for GELU, log) stay on ``chunked``, which is as fast or faster for them
(:func:`symvg.engines.fused.scalar_calls`). ``backend="cupy"`` runs one fused CUDA kernel per layer.

>>> import numpy as np
>>> from symvg.symbolic.chain import Chain
>>> g = gradients(Chain(2, "relu"), x=2.0, y=0.0, weights=[0.5, 3.0], biases=[0.0, 0.0])
>>> g.tolist()                    # derive(Chain(2, "relu"), 1).evaluate(...) gives 36 exactly
[[36.0], [6.0]]

Which mode to use:

* ``float64`` (default): relative error ~1e-15 per layer; right while |g| > 1e-308. A sigmoid chain
  shrinks by at most 1/4 per layer, so from depth ~500 the gradient *underflows to exactly 0*.
* ``float32``: twice as fast, ~1e-7 per layer, underflows from depth ~60 for sigmoid. Good for
  magnitudes and statistics, not for comparing with exact values.
* ``log=True``: returns ``(log|g|, sign)`` by adding log|φ'| + log|w| instead of multiplying, so any
  depth keeps its magnitude (log|g| ≈ −896 at depth 600, w = 1, where float64 says 0). Costs a ``log`` per
  factor (~3× slower). Only the product is taken in logs: a φ' that itself underflows (sigmoid at
  z < −745) is still 0.
* :func:`reference`: mpmath at 50 digits, one sample at a time -- for tests, not for speed.

BCE is taken through the logit: every engine starts the backward pass from ∂L/∂z_N
(:func:`symvg.engines.kernels.loss_form`: σ(z_N) − y for a sigmoid output, written so that no 1 − h_N is formed),
not from ∂L/∂h_N = (h − y)/(h(1 − h)), which loses every digit once h_N rounds to 1 (z_N ≳ 37).

Numbers the floats cannot hold are reported, not returned: ``OverflowReport``, ``DomainError`` (NaN) and
``UnderflowReport`` (a nonzero gradient that became 0) from :mod:`symvg.errors`; see :func:`gradients`.
"""

from __future__ import annotations

import itertools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import sympy as sp

from symvg.engines import fused
from symvg.symbolic.chain import Chain, y as y_sym
from symvg.symbolic.derive import Derivation
from symvg.errors import (BackendUnavailableError, DomainError, InvalidChainError, InvalidValueError, OverflowReport,
                     UnderflowReport)
from symvg.engines.kernels import (Local, _flags, elementwise_source, exact_local, fp_guard, layer_kernel, local,
                      loss_lambdified, loss_source, mpmath_forms)

BACKENDS = ("numpy", "cupy")
DTYPES = ("float64", "float32")
ENGINES = ("auto", "fused", "chunked")
FUSED_MIN_WORK = 1 << 30
"""N·M from which ``engine="auto"`` compiles the fused kernel on the spot. Compiling costs 4-5 s once per
activation, loss and dtype; the fused engine saves ~2 ns per number over the chunked one (N = 20,
sigmoid, benchmarks/README.md), so one call repays it only from ~10⁹ numbers. Below that, ``auto`` uses
the fused engine once it is compiled: by :func:`compile`, an earlier call, or ``engine="fused"``."""
CHUNK_BYTES = 128 * 1024
"""Bytes per chunk buffer (16K float64 or 32K float32 samples): big enough that the ~1 µs cost of a
NumPy call is amortised, small enough that a chunk's working set stays in cache (measured on 2 cores:
4K-sample chunks are 1.3-1.6× slower, 64K no faster; see benchmarks/README.md)."""
THREADS = min(2, os.cpu_count() or 1)


# ----------------------------------------------------------------------------- backends and inputs


def array_module(backend: str) -> Any:
    """``numpy``, or ``cupy`` imported lazily with a usable GPU; else BackendUnavailableError.

    >>> array_module("numpy").__name__
    'numpy'
    >>> array_module("jax")
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: backend must be one of numpy, cupy, got 'jax'
    """
    if backend not in BACKENDS:
        raise InvalidValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "numpy":
        return np
    try:
        import cupy
    except ImportError:
        raise BackendUnavailableError("backend 'cupy' needs CuPy: pip install symvg[gpu]") from None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise BackendUnavailableError("backend 'cupy': CuPy is installed but no CUDA device was found")
    except cupy.cuda.runtime.CUDARuntimeError as e:
        raise BackendUnavailableError(f"backend 'cupy': no usable CUDA device ({e})") from None
    return cupy


def check_dtype(dtype: Any) -> np.dtype:
    """float64 or float32 as a NumPy dtype.

    >>> check_dtype("float32")
    dtype('float32')
    >>> check_dtype("float16")
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: dtype must be one of float64, float32, got 'float16'
    """
    name = np.dtype(dtype).name if isinstance(dtype, (type, np.dtype)) else dtype
    if name not in DTYPES:
        raise InvalidValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return np.dtype(name)


@dataclass(frozen=True)
class Inputs:
    """x, y as (M,) arrays; W, B as (N,) when shared by every sample or (N, M) when per sample."""

    x: np.ndarray
    y: np.ndarray
    W: np.ndarray
    B: np.ndarray
    samples: int

    @property
    def shared_w(self) -> bool:
        return self.W.ndim == 1

    @property
    def shared_b(self) -> bool:
        return self.B.ndim == 1


def _layered(v: Any, n: int, what: str, xp: Any, dtype: np.dtype) -> Any:
    with np.errstate(over="ignore"):  # 1e200 in float32 becomes inf: the finite check names it
        a = xp.asarray(v, dtype=dtype)
    if a.ndim == 0:
        a = xp.full((n,), a, dtype=dtype)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim not in (1, 2) or a.shape[0] != n:
        raise InvalidValueError(f"{what} must have shape ({n},) or ({n}, M), got {tuple(a.shape)}")
    return a


def prepare(chain: Chain, x: Any, y: Any, weights: Any, biases: Any = None,
            xp: Any = np, dtype: Any = "float64", check_finite: bool = True) -> Inputs:
    """Validate and broadcast the inputs (see :class:`Inputs`); M is the broadcast sample count.

    ``check_finite=False`` leaves the NaN/inf check (a full read of W and B) to the caller: the fused
    kernel does it on the fly, in the pass it makes anyway.
    """
    dt = check_dtype(dtype)
    n = chain.depth
    W = _layered(weights, n, "weights", xp, dt)
    if biases is None:
        B = xp.zeros((n,), dtype=dt)
    else:
        B = _layered(biases, n, "biases", xp, dt)
        if not chain.bias and bool(xp.any(B != 0)):
            raise InvalidValueError("this chain has bias=False, but nonzero biases were given")
    with np.errstate(over="ignore"):
        xs, ys = xp.asarray(x, dtype=dt), xp.asarray(y, dtype=dt)
    sizes = [a.shape[-1] for a in (W, B) if a.ndim == 2] + [a.size for a in (xs, ys) if a.ndim]
    if xs.ndim > 1 or ys.ndim > 1:
        raise InvalidValueError(f"x and y must be scalars or 1-D arrays of samples, got shapes {xs.shape}, {ys.shape}")
    m = max(sizes, default=1)
    if any(s not in (1, m) for s in sizes):
        raise InvalidValueError(f"sample counts do not broadcast: {sorted(set(sizes))}")
    # broadcast only what needs it: a broadcast view is read-only, and the fused kernel is compiled
    # for writable arrays (a read-only one would cost a second compilation)
    xs, ys = (a if a.shape == (m,) else xp.broadcast_to(a, (m,)) for a in (xs, ys))
    if W.ndim == 2 and W.shape[1] != m:
        W = xp.broadcast_to(W, (n, m))
    if B.ndim == 2 and B.shape[1] != m:
        B = xp.broadcast_to(B, (n, m))
    inp = Inputs(xs, ys, W, B, m)
    if check_finite:
        check_finite_inputs(inp, xp)
    return inp


def check_finite_inputs(inp: Inputs, xp: Any = np) -> None:
    """InvalidValueError naming the first of x, y, weights, biases that holds a NaN or an inf."""
    for what, a in (("x", inp.x), ("y", inp.y), ("weights", inp.W), ("biases", inp.B)):
        # A sum is finite only if every term is (inf, NaN propagate): one read pass, no temporaries.
        # A finite array whose sum overflows gets the exact elementwise check.
        with np.errstate(all="ignore"):
            ok = bool(xp.isfinite(a.sum())) or bool(xp.all(xp.isfinite(a)))
        if not ok:
            raise InvalidValueError(f"{what} must be finite numbers (found NaN or inf)")


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Plan:
    """A chain's compiled pieces: one :class:`~symvg.engines.kernels.Local` per layer, ∂L/∂h_N(h, y), and
    ∂L/∂z_N(z, y) where the loss is taken through the logit (:func:`symvg.engines.kernels.loss_form`: BCE)."""

    chain: Chain
    locals: tuple[Local, ...]
    dloss: Callable[[Any, Any], Any]
    dz: Callable[[Any, Any], Any] | None = None


@lru_cache(maxsize=64)
def plan(chain: Chain) -> Plan:
    """Derive the local pieces once per distinct activation (cached), lambdify ∂L/∂h_N."""
    if not isinstance(chain, Chain):
        raise InvalidChainError(f"need a Chain, got {type(chain).__name__}")
    locs = tuple(local(a) for a in chain.activations)
    hN = chain.h(chain.depth)
    dl = sp.lambdify((hN, y_sym), chain.dloss(), modules="numpy")
    return Plan(chain, locs, dl, loss_lambdified(chain.activations[-1], chain.loss, chain.residual))


def _cupy_layer(loc: Local, residual: bool) -> Callable:
    import cupy

    src = elementwise_source(loc.activation, residual)
    return cupy.ElementwiseKernel(src.in_params, src.out_params, src.operation, src.name, preamble=src.preamble)


def _cupy_loss(p: Plan) -> Callable:
    import cupy

    src = loss_source(p.chain.activations[-1], p.chain.loss)
    return cupy.ElementwiseKernel(src.in_params, src.out_params, src.operation, src.name, preamble=src.preamble)


def _start(p: Plan, xp: Any, inp: Inputs, sl: slice, H: Any, D: Any, d: Any, cuda: bool = False) -> None:
    """δ_N into ``d``. Where the loss is taken through the logit, ``d`` ← ∂L/∂z_N and φ'_N ← 1 instead, so
    the backward pass that follows is the same for every loss; z_N is recomputed from h_{N-1}, w_N, b_N
    as the forward pass computed it."""
    n = p.chain.depth
    if p.dz is None:
        d[...] = p.dloss(H[-1], inp.y[sl])
        return
    w = inp.W[n - 1] if inp.shared_w else inp.W[n - 1, sl]
    b = inp.B[n - 1] if inp.shared_b else inp.B[n - 1, sl]
    if cuda:
        _cupy_loss(p)(H[n - 1], w, b, inp.y[sl], d)
    else:
        d[...] = p.dz(H[n - 1] * w + b, inp.y[sl])
    D[n - 1] = 1


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
        w = inp.W[k - 1] if inp.shared_w else inp.W[k - 1, sl]
        b = inp.B[k - 1] if inp.shared_b else inp.B[k - 1, sl]
        if cuda:  # one CUDA kernel per layer does z, φ, φ' (and the skip)
            kernels[k - 1](H[k - 1], w, b, H[k], D[k - 1])
            if p.locals[k - 1].kind == "generic":
                _repair_device(p, xp, k, H, D, w, b)
            continue
        xp.multiply(H[k - 1], w, out=t)
        xp.add(t, b, out=t)
        kernels[k - 1](t, H[k], D[k - 1])
        if p.chain.residual:
            xp.add(H[k], H[k - 1], out=H[k])
        if fold and k > 1:
            xp.multiply(D[k - 2], w, out=D[k - 2])


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
    host = zk.get() if hasattr(zk, "get") else np.asarray(zk)
    h_exact, d_exact = (xp.asarray(v) for v in exact_local(p.chain.activations[k - 1], host))
    hk[idx] = hp[idx] + h_exact if p.chain.residual else h_exact
    dk[idx] = d_exact


def _backward(p: Plan, xp: Any, inp: Inputs, sl: slice, buf: _Buffers, c: int, G: Any, folded: bool) -> None:
    H, D, (d, a) = buf.H[:, :c], buf.D[:, :c], buf.work[:2, :c]
    _start(p, xp, inp, sl, H, D, d, cuda=xp is not np)
    for k in range(p.chain.depth, 0, -1):  # chain rule: one local factor at a time
        w = inp.W[k - 1] if inp.shared_w else inp.W[k - 1, sl]
        if p.chain.residual:
            xp.multiply(d, D[k - 1], out=a)          # a_k = δ_k·φ'_k
            xp.multiply(a, H[k - 1], out=G[k - 1, sl])
            xp.multiply(a, w, out=a)
            xp.add(d, a, out=d)                      # δ_{k-1} = δ_k·(1 + w_k·φ'_k)
        elif not folded:
            xp.multiply(d, D[k - 1], out=d)
            xp.multiply(d, H[k - 1], out=G[k - 1, sl])
            xp.multiply(d, w, out=d)
        else:  # D was folded (see _forward): d holds a_k = δ_k·φ'_k from the second layer down
            if k == p.chain.depth:
                xp.multiply(d, D[k - 1], out=d)
            xp.multiply(d, H[k - 1], out=G[k - 1, sl])
            if k > 1:
                xp.multiply(d, D[k - 2], out=d)      # a_{k-1} = a_k·w_k·φ'_{k-1}


def _log_abs_sign(xp: Any, v: Any, out: Any, sign: Any) -> None:
    xp.sign(v, out=sign)
    xp.abs(v, out=out)
    xp.log(out, out=out)


def _backward_log(p: Plan, xp: Any, inp: Inputs, sl: slice, buf: _Buffers, c: int, G: Any, S: Any) -> None:
    # Same walk as _backward, in (log|·|, sign): products become sums, so nothing underflows.
    H, D, (d, s, t, u) = buf.H[:, :c], buf.D[:, :c], buf.work[:, :c]
    _start(p, xp, inp, sl, H, D, t, cuda=xp is not np)
    _log_abs_sign(xp, t, d, s)
    for k in range(p.chain.depth, 0, -1):
        w = inp.W[k - 1] if inp.shared_w else inp.W[k - 1, sl]
        _log_abs_sign(xp, D[k - 1], t, u)
        xp.add(d, t, out=t)                          # log|a_k| = log|δ_k| + log|φ'_k|
        xp.multiply(s, u, out=u)
        _log_abs_sign(xp, H[k - 1], G[k - 1, sl], S[k - 1, sl])
        xp.add(G[k - 1, sl], t, out=G[k - 1, sl])
        xp.multiply(S[k - 1, sl], u, out=S[k - 1, sl])
        if p.chain.residual:                         # δ_{k-1} = δ_k·(1 + w_k·φ'_k)
            f = 1 + w * D[k - 1]
            xp.add(d, xp.log(xp.abs(f)), out=d)
            xp.multiply(s, xp.sign(f), out=s)
        else:                                        # δ_{k-1} = a_k·w_k
            xp.add(t, xp.log(xp.abs(w)), out=d)
            xp.multiply(u, xp.sign(w), out=s)


def _run(p: Plan, xp: Any, inp: Inputs, dtype: np.dtype, log: bool, chunk: int, threads: int,
         out: Any = None, allow_underflow: bool = True) -> Any:
    n, m = p.chain.depth, inp.samples
    G = xp.empty((n, m), dtype=dtype) if out is None else out
    S = xp.empty((n, m), dtype=dtype) if log else None
    if xp is np:
        kernels = [layer_kernel(loc, np) for loc in p.locals]
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
    low: list[slice] = []  # ... and chunks where something underflowed

    def work(_: int) -> None:
        buf = _Buffers(n, min(chunk, m), dtype, xp)
        with fp_guard():
            for s0 in chunks():
                sl = slice(s0, min(s0 + chunk, m))
                c = sl.stop - sl.start
                _flags.underflow = _flags.overflowed = False
                _forward(p, kernels, xp, inp, sl, buf, c, cuda=xp is not np, fold=fold)
                if log:
                    _backward_log(p, xp, inp, sl, buf, c, G, S)
                else:
                    _backward(p, xp, inp, sl, buf, c, G, folded=fold)
                if _flags.underflow or xp is not np:  # CuPy raises no flags: its zeros are looked at below
                    low.append(sl)
                if not _finite_enough(xp, G[:, sl], log):
                    nonfinite.append(sl)
                    overflowed.append(bool(getattr(_flags, "overflowed", False)))

    if threads == 1:
        work(0)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, range(threads)))
    if nonfinite:
        _report_nonfinite(xp, G, sorted(nonfinite, key=lambda sl: sl.start), log, dtype, any(overflowed))
    if low and not allow_underflow:
        _check_underflow(p, xp, inp, G, low, dtype, log)
    return (G, S) if log else G


def _finite_enough(xp: Any, g: Any, log: bool) -> bool:
    """No inf or NaN in g (in the log domain: no NaN or +inf; -inf is log 0). One read, no temporaries: a
    sum is finite only if every term is (a finite sum that overflows gets the elementwise check)."""
    with np.errstate(all="ignore"):
        total = float(g.sum())
        if log:
            return total == -np.inf or (np.isfinite(total) or not bool(xp.any(xp.isnan(g) | (g == np.inf))))
        return np.isfinite(total) or bool(xp.all(xp.isfinite(g)))


def _layers_text(rows: Any) -> str:
    ks = [int(k) + 1 for k in rows]
    return ", ".join(map(str, ks[:8])) + (", …" if len(ks) > 8 else "")


def _report_nonfinite(xp: Any, G: Any, where: list[slice], log: bool, dtype: np.dtype, overflowed: bool) -> None:
    """OverflowReport where a gradient (or, in the log domain, log|g|) is infinite, or is NaN after an overflow
    (inf − inf, 0·inf); else DomainError for NaN."""
    cols = xp.concatenate([xp.arange(sl.start, sl.stop) for sl in where])
    g = G[:, cols]
    inf = (g == np.inf) if log else xp.isinf(g)
    nan = xp.isnan(g)
    if bool(inf.any()) or overflowed:
        inf = inf | nan
        rows = xp.flatnonzero(inf.any(axis=1))
        count = int(inf.sum())
        hint = ("" if log else "; log=True carries log|g| where only the backward products overflow, not the "
                "forward pass")
        raise OverflowReport(f"dL/dw_k overflows {dtype.name} (|g| beyond {np.finfo(dtype).max:.3g}) for {count} "
                             f"value(s) in layer(s) {_layers_text(rows)}{hint}",
                             tuple(int(k) + 1 for k in rows), count)
    rows = xp.flatnonzero(nan.any(axis=1))
    count = int(nan.sum())
    raise DomainError(f"dL/dw_k is not a real number (NaN) for {count} value(s) in layer(s) {_layers_text(rows)}: "
                      "an activation or the loss was evaluated outside its domain (log or sqrt of a negative "
                      "number, BCE of a prediction that is not in (0, 1))", tuple(int(k) + 1 for k in rows), count)


UNDERFLOW_PROBES = 32
"""Samples checked with mpmath when an underflow left zeros the log domain sees as zeros too (a local factor,
φ' or ∂L/∂z_N, underflowed itself: BCE at z_N = -800)."""


def _exact_zeros(p: Plan, sub: Inputs, zero: np.ndarray) -> tuple[np.ndarray, float | None]:
    """(the entries of the ``zero`` mask whose exact value is not 0, largest log10|g| of those), for up to
    :data:`UNDERFLOW_PROBES` samples, by :func:`reference` at 30 digits."""
    import mpmath

    lost = np.zeros(zero.shape, dtype=bool)
    cols = np.flatnonzero(zero.any(axis=0))[:UNDERFLOW_PROBES]
    if cols.size == 0:
        return lost, None
    r = reference(p.chain, sub.x[cols], sub.y[cols], sub.W if sub.shared_w else sub.W[:, cols],
                  sub.B if sub.shared_b else sub.B[:, cols], dps=30)
    nonzero = np.vectorize(lambda v: bool(v != 0 and mpmath.isfinite(v)), otypes=[bool])(r)
    lost[:, cols] = zero[:, cols] & nonzero
    if not lost.any():
        return lost, None
    return lost, float(max(mpmath.log10(abs(v)) for v in r[lost[:, cols]]))


def _check_underflow(p: Plan, xp: Any, inp: Inputs, G: Any, where: list[slice], dtype: np.dtype,
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
        lg, _ = _run(p, xp, sub, dtype, True, CHUNK_BYTES // dtype.itemsize, 1)
        lost = zero & xp.isfinite(lg)
        top = float(lg[lost].max()) / math.log(10) if bool(lost.any()) else None
        zero = zero & (lg == -np.inf)
    if top is None and xp is np:
        lost, top = _exact_zeros(p, sub, zero)
    if top is None:
        return
    rows = xp.flatnonzero(lost.any(axis=1))
    count = int(lost.sum())
    hint = ("a local factor (φ' or the loss's ∂L/∂z_N) is below the dtype's range, so the log domain loses it too"
            if log else "pass log=True for log|g|, or allow_underflow=True to accept the zeros")
    raise UnderflowReport(f"dL/dw_k underflows {dtype.name} to 0 for {count} value(s) in layer(s) "
                          f"{_layers_text(rows)} (the largest is 10^{top:.1f}): {hint}",
                          tuple(int(k) + 1 for k in rows), count, top)


def choose_engine(chain: Chain, samples: int, *, backend: str = "numpy", log: bool = False,
                  engine: str = "auto", dtype: Any = "float64") -> str:
    """Which engine :func:`gradients` runs: ``fused``, ``chunked`` or (backend ``cupy``) ``cuda``.

    ``engine="fused"`` is refused with the reason when it cannot run; ``"auto"`` falls back quietly.

    >>> choose_engine(Chain(3, ["relu", "tanh", "relu"]), 10**9)   # mixed activations: NumPy's
    'chunked'
    >>> choose_engine(Chain(3, "relu"), 10**9, backend="cupy")
    'cuda'
    >>> choose_engine(Chain(2, "relu"), 1, engine="fused", log=True)
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: engine 'fused' is the CPU kernel for direct gradients: not with backend 'cupy' or log=True (use engine='chunked' or 'auto')
    """
    if engine not in ENGINES:
        raise InvalidValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "fused":
        if backend != "numpy" or log:
            raise InvalidValueError("engine 'fused' is the CPU kernel for direct gradients: not with backend "
                                    "'cupy' or log=True (use engine='chunked' or 'auto')")
        if not fused.available():
            raise BackendUnavailableError("engine 'fused' needs numba: pip install symvg[fast]")
        if not fused.supports(chain):
            raise InvalidValueError("engine 'fused' takes chains with one activation in every layer; "
                                    f"this one has {len(set(chain.activations))} (use engine='chunked' or 'auto')")
        return "fused"
    if backend != "numpy":
        return "cuda"
    if engine == "auto" and not log and fused.supports(chain) and not fused.refused(chain, dtype) and (
            chain.depth * samples >= FUSED_MIN_WORK or fused.is_compiled(chain, dtype)) and (
            not fused.scalar_calls(chain.activations[0])):
        return "fused"
    return "chunked"


def _run_fused(p: Plan, inp: Inputs, dtype: np.dtype, chunk: int, threads: int | None,
               out: np.ndarray | None = None, allow_underflow: bool = True) -> np.ndarray:
    # The kernel is compiled for C-contiguous writable arrays, W and B always (N, ·): anything else
    # (a broadcast scalar, a read-only array) is copied rather than compiled for again.
    def as2d(a: np.ndarray) -> np.ndarray:  # shared (N,) → (N, 1): one kernel shape for both
        return np.require(a[:, None] if a.ndim == 1 else a, requirements="CW")

    x, y = np.require(inp.x, requirements="CW"), np.require(inp.y, requirements="CW")
    W, B = as2d(inp.W), as2d(inp.B)
    G, bad, low = fused.gradients_and_bad(p.chain, x, y, W, B, threads=threads, out=out)
    subs = [Inputs(x[sl], y[sl], inp.W if inp.shared_w else inp.W[:, sl], inp.B if inp.shared_b else inp.B[:, sl],
                   sl.stop - sl.start) for sl in bad]
    for sub in subs:  # something was not finite in these blocks: an input (refused here) ...
        check_finite_inputs(sub)
    # ... or a local formula that overflowed: the chunked engine repairs it exactly, or reports what the
    # floats cannot hold (overflow, NaN, underflow)
    for sl, sub in zip(bad, subs):
        G[:, sl] = _run(p, np, sub, dtype, False, chunk, 1, allow_underflow=allow_underflow)
    if low and not allow_underflow:
        with fp_guard():
            _check_underflow(p, np, inp, G, low, dtype)
    return G


# ----------------------------------------------------------------------------- public API


def _check_out(out: Any, inp: Inputs, shape: tuple[int, int], dtype: np.dtype, xp: Any, log: bool) -> None:
    if log:
        raise InvalidValueError("out= takes the direct gradients; log=True returns two arrays (log|g|, sign)")
    if not isinstance(out, xp.ndarray):
        raise InvalidValueError(f"out must be a {xp.__name__} array, got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype:
        raise InvalidValueError(f"out must have shape {shape} and dtype {dtype.name}, got {out.shape} {out.dtype.name}")
    flags = out.flags  # CuPy's flags have no writeable or aligned: its arrays always are
    if not (flags.c_contiguous and getattr(flags, "writeable", True) and getattr(flags, "aligned", True)):
        raise InvalidValueError("out must be C-contiguous, aligned and writable")
    if any(xp.may_share_memory(out, a) for a in (inp.x, inp.y, inp.W, inp.B)):
        raise InvalidValueError("out must not overlap x, y, weights or biases: they are read while it is written")


def gradients(chain: Chain, x: Any, y: Any, weights: Any, biases: Any = None, *, backend: str = "numpy",
              dtype: Any = "float64", log: bool = False, engine: str = "auto", chunk: int | None = None,
              threads: int | None = None, out: Any = None, allow_underflow: bool = False) -> Any:
    """dL/dw_k for every layer k and sample: an (N, M) array (row k-1 is layer k).

    ``weights``/``biases`` have shape (N,) (shared by all samples) or (N, M) (one network per sample);
    ``x``, ``y`` are scalars or (M,). With ``log=True`` returns ``(log|g|, sign)``. ``engine`` picks the
    CPU engine (see the module docstring); ``chunk`` sizes the chunked engine's chunks. ``threads``: the
    fused engine uses every core and the chunked one :data:`THREADS` unless told otherwise. ``out``: an
    (N, M) C-contiguous array of ``dtype`` to write the result into, and return. For repeated calls: a
    fresh result costs the operating system's zeroing of its pages, ~10 ms per 160 MB on one core here
    (benchmarks/README.md). When the call raises (a NaN in the inputs, say), what ``out`` holds is
    unspecified: the fused engine finds bad inputs in the pass that writes it.

    What the floats cannot hold is reported, never returned as the answer (:mod:`symvg.errors`):
    ``OverflowReport`` where |g| (or, with ``log=True``, a forward value) is beyond the dtype's range,
    ``DomainError`` where a value is not a real number (NaN: ``expr:log(z)`` at z < 0, BCE of a prediction
    outside (0, 1)), and ``UnderflowReport`` where a nonzero gradient became exactly 0 (found where the
    floating-point underflow flag was raised, confirmed in the log domain). ``log=True`` carries the
    magnitudes of deep products as log|g|; ``allow_underflow=True`` accepts underflowed zeros instead (as
    :mod:`symvg.engines.sampling` does, which counts them). A 0 that is exact (a ReLU that is off) is no underflow.

    >>> from symvg.symbolic.chain import Chain
    >>> g = gradients(Chain(3, "sigmoid"), x=[0.5, -1.0], y=1.0, weights=[1.0, 2.0, -1.0])
    >>> g.shape, bool((g[2] < 0).all())   # h3 < y = 1 and h2 > 0: raising w3 lowers L
    ((3, 2), True)
    >>> lg, sign = gradients(Chain(600, "sigmoid"), 1.0, 0.0, [1.0] * 600, log=True)
    >>> round(float(lg[0, 0]), 2), float(sign[0, 0])
    (-895.67, 1.0)
    >>> gradients(Chain(600, "sigmoid"), 1.0, 0.0, [1.0] * 600)
    Traceback (most recent call last):
    symvg.errors.UnderflowReport: dL/dw_k underflows float64 to 0 for 101 value(s) in layer(s) 1, 2, 3, 4, 5, 6, 7, 8, … (the largest is 10^-324.3): pass log=True for log|g|, or allow_underflow=True to accept the zeros
    >>> gradients(Chain(600, "sigmoid"), 1.0, 0.0, [1.0] * 600, allow_underflow=True)[0, 0]
    np.float64(0.0)
    >>> gradients(Chain(3, "linear"), [1e308], 0.0, [10.0] * 3)
    Traceback (most recent call last):
    symvg.errors.OverflowReport: dL/dw_k overflows float64 (|g| beyond 1.8e+308) for 3 value(s) in layer(s) 1, 2, 3; log=True carries log|g| where only the backward products overflow, not the forward pass
    """
    xp = array_module(backend)
    dt = check_dtype(dtype)
    chunk = CHUNK_BYTES // dt.itemsize if chunk is None else chunk
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise InvalidValueError(f"threads must be an integer >= 1, got {threads!r}")
    if not isinstance(chunk, int) or chunk < 1:
        raise InvalidValueError(f"chunk must be an integer >= 1, got {chunk!r}")
    p = plan(chain)
    inp = prepare(chain, x, y, weights, biases, xp, dt, check_finite=False)
    if out is not None:
        _check_out(out, inp, (chain.depth, inp.samples), dt, xp, bool(log))
    if choose_engine(chain, inp.samples, backend=backend, log=bool(log), engine=engine, dtype=dt) == "fused":
        try:  # checks for NaN and inf as it goes
            return _run_fused(p, inp, dt, chunk, threads, out, allow_underflow=bool(allow_underflow))
        except fused.UnsupportedError:
            if engine == "fused":
                raise
            fused.refuse(chain, dt)  # auto: remember, and let NumPy evaluate it from now on
    check_finite_inputs(inp, xp)
    return _run(p, xp, inp, dt, bool(log), chunk, THREADS if threads is None else threads, out,
                allow_underflow=bool(allow_underflow))


@dataclass(frozen=True)
class Compiled:
    """A chain (all layers) or one derivation (layer ``wrt``) compiled for a backend and dtype."""

    chain: Chain
    wrt: int | None
    backend: str
    dtype: str
    log: bool = False
    engine: str = "auto"

    def __call__(self, x: Any, y: Any, weights: Any, biases: Any = None, *, out: Any = None) -> Any:
        """The gradients; ``out``, as in :func:`gradients`, is the whole (N, M) result (also with ``wrt``)."""
        g = gradients(self.chain, x, y, weights, biases, backend=self.backend, dtype=self.dtype, log=self.log,
                      engine=self.engine, out=out)
        if self.wrt is None:
            return g
        k = self.wrt - 1
        return (g[0][k], g[1][k]) if self.log else g[k]


def compile(target: Chain | Derivation, backend: str = "numpy", dtype: Any = "float64", log: bool = False,
            engine: str = "auto") -> Compiled:
    """A callable ``f(x, y, weights, biases)``: (N, M) gradients for a Chain, dL/dw_k (M,) for a Derivation.

    The symbolic work (proving the local forms, lambdify with cse) happens here, once, and so does the
    fused engine's numba compilation when it applies (numba installed, one activation, not ``log``,
    ``engine`` not ``chunked``).

    >>> from symvg.symbolic.chain import Chain
    >>> from symvg.symbolic.derive import derive
    >>> f = compile(derive(Chain(2, "relu"), wrt=1))
    >>> f(2.0, 0.0, [0.5, 3.0], [0.0, 0.0]).tolist()
    [36.0]
    """
    if isinstance(target, Derivation):
        chain, wrt = target.chain, target.wrt
    elif isinstance(target, Chain):
        chain, wrt = target, None
    else:
        raise InvalidChainError(f"compile needs a Chain or a Derivation, got {type(target).__name__}")
    array_module(backend)  # fail now, not at the first call
    dt = check_dtype(dtype)
    choose_engine(chain, 0, backend=backend, log=bool(log), engine=engine, dtype=dt)
    plan(chain)
    if engine != "chunked" and backend == "numpy" and not log and fused.supports(chain) and (
            engine == "fused" or not fused.scalar_calls(chain.activations[0])):
        try:
            fused.warm(chain, dt)  # the one-off numba compilation happens here, not in the first call
        except fused.UnsupportedError:
            if engine == "fused":
                raise
            fused.refuse(chain, dt)
    return Compiled(chain, wrt, backend, dt.name, bool(log), engine)


def estimate_bytes(depth: int, samples: int, dtype: Any = "float64", per_sample: bool = False,
                   log: bool = False, chunk: int | None = None, threads: int = THREADS) -> int:
    """Bytes :func:`gradients` allocates: the (N, M) result (twice for log), W and B when per sample,
    x and y, and each thread's chunk buffers.

    >>> estimate_bytes(20, 10**6) // 10**6      # MB: the 160 MB float64 result dominates
    187
    """
    item = check_dtype(dtype).itemsize
    chunk = CHUNK_BYTES // item if chunk is None else chunk
    full = depth * samples * item
    out = full * (2 if log else 1) + (2 * full if per_sample else 0) + 2 * samples * item
    return out + threads * (2 * depth + 5) * min(chunk, max(samples, 1)) * item


# ----------------------------------------------------------------------------- the reference


def reference(chain: Chain, x: Any, y: Any, weights: Any, biases: Any = None, dps: int = 50) -> np.ndarray:
    """All dL/dw_k with mpmath at ``dps`` digits, sample by sample: an (N, M) object array of mpf.

    The inputs are taken as the exact binary values of the given floats. The chain rule is the textbook
    one, ∂L/∂h_N·φ'_N·…, with no rewriting: it is the oracle the engines' forms are tested against. For
    BCE, whose ∂L/∂h_N = (h − y)/(h(1 − h)) needs 1 − h_N to more digits than ``dps`` once h_N saturates
    (1 − σ(800) ≈ 1e-348), each sample is recomputed with more digits until two precisions agree to
    ``dps`` − 5 digits (up to 20000 extra digits; NaN where they never do). For tests; slow.

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
    acts = [mpmath_forms(a) for a in chain.activations]
    dl = sp.lambdify((chain.h(chain.depth), y_sym), chain.dloss(), "mpmath")
    n, m = chain.depth, inp.samples
    out = np.empty((n, m), dtype=object)
    for i in range(m):
        W = [mpmath.mpf(float(v)) for v in (inp.W if inp.shared_w else inp.W[:, i])]
        B = [mpmath.mpf(float(v)) for v in (inp.B if inp.shared_b else inp.B[:, i])]
        xi, yi = mpmath.mpf(float(inp.x[i])), mpmath.mpf(float(inp.y[i]))
        with mpmath.workdps(dps):
            col = _reference_column(chain, acts, dl, xi, yi, W, B)
        if chain.loss == "bce":
            col = _more_digits(chain, acts, dl, xi, yi, W, B, col, dps)
        out[:, i] = col
    return out


def _reference_column(chain: Chain, acts: list, dl: Callable, x: Any, y: Any, W: list, B: list) -> list:
    import mpmath

    n = chain.depth
    hs, ds = [x], []
    for k in range(n):
        zk = W[k] * hs[-1] + B[k]
        phi, dphi = acts[k]
        hk = mpmath.mpf(phi(zk))
        hs.append(hs[-1] + hk if chain.residual else hk)
        ds.append(mpmath.mpf(dphi(zk)))
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


def _agree(a: list, b: list, digits: int) -> bool:
    import mpmath

    def same(u: Any, v: Any) -> bool:
        if mpmath.isnan(u) or mpmath.isnan(v):
            return bool(mpmath.isnan(u) and mpmath.isnan(v))  # undefined at every precision
        if mpmath.isinf(u) or mpmath.isinf(v):
            return False  # 1 − h_N rounded to 0: more digits needed
        return u == v or abs(u - v) <= abs(v) * mpmath.mpf(10) ** (-digits)
    return all(same(u, v) for u, v in zip(a, b))


def _more_digits(chain: Chain, acts: list, dl: Callable, x: Any, y: Any, W: list, B: list, col: list,
                 dps: int) -> list:
    import mpmath

    for extra in (20, 60, 200, 600, 2000, 6000, 20000):
        with mpmath.workdps(dps + extra):
            finer = _reference_column(chain, acts, dl, x, y, W, B)
        if _agree(col, finer, dps - 5):
            return finer
        col = finer
    return [mpmath.nan] * len(col)  # no two precisions agree: no value to claim


__all__ = ["BACKENDS", "CHUNK_BYTES", "Compiled", "DTYPES", "ENGINES", "FUSED_MIN_WORK", "Inputs", "check_finite_inputs", "choose_engine", "Plan", "array_module", "check_dtype", "compile",
           "estimate_bytes", "gradients", "plan", "prepare", "reference"]
