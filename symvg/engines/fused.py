"""The fused CPU engine: the whole forward and backward pass in one numba kernel (optional extra ``fast``).

One job: the same structured chain rule as :mod:`symvg.engines.numeric`, compiled so that each block of samples
is read once, carried through every layer in cache, and written once, on every core:

    for each block of samples (a run of blocks per thread, one set of scratch each):
        forward   z_k = w_k·h_{k-1} + b_k,  (h_k, φ'_k) = pair(z_k)        one vectorised loop per layer
        backward  δ_N = ∂L/∂h_N, or ∂L/∂z_N with φ'_N = 1 where the loss is taken through the logit (BCE)
                  a_k = δ_k·φ'_k;  g_k = a_k·h_{k-1};  δ_{k-1} = a_k·w_k (+ δ_k if residual)
                  row g_k streamed to the result with non-temporal stores

The steps inside the layer loops are :mod:`symvg.engines.chainrule`'s, printed into the kernel's source by
:mod:`symvg.engines.fused_kernel` (:func:`~symvg.engines.fused_kernel.steps_source`).

What makes it fast, measured at N = 20, M = 10^6 (benchmarks/README.md): the layer loops vectorise
(``error_model="numpy"``: no ZeroDivisionError branch); multiply-adds contract to FMA instructions
(``fastmath={"contract"}``, and nothing else of fastmath: no reassociation, NaN and inf kept), which
made ``vexp`` 1.5× faster; shared w_k, b_k enter as scalars; and the result, the only large write,
bypasses the cache instead of being read into it first and evicting the block's h and φ'.

Why numba alone was not enough (measured in ``benchmarks/README.md``): its ``exp`` is a scalar libm call, so a
fused loop lost to NumPy's SIMD ``exp``. ``vexp`` (:mod:`symvg.engines.vmath`) is an ``exp`` that LLVM can
vectorise: Cody-Waite reduction e^x = 2^n·e^r with |r| ≤ ln2/2, a degree-11 Chebyshev (float64) or degree-7
Taylor (float32) polynomial, and 2^n assembled from its exponent bits. It is within 1.5 ulp of the correctly rounded value (tested),
overflows to inf and underflows through the subnormals like libm.

Each layer's ``pair(z) -> (φ, φ')`` is made from the activation's SymPy expressions by
:mod:`symvg.engines.kernels` (the same proved forms the NumPy engine uses), printed into the kernel's source by
:mod:`symvg.engines.fused_kernel`:

* ``logistic``: e = e^{-|z|}, s = 1/(1+e); φ = s or e·s, φ' = e·s² -- one exp, no overflow, no cancellation;
* ``tanh``: φ = tanh z, φ' = 4e/(1+e)² with e = e^{-2|z|};
* ``generic``: ``lambdify`` of the C99-rewritten φ and φ', Piecewise made branch-free (``pick``), with
  ``exp``, ``expm1``, ``log1p``, ``tanh``, ``erf`` and ``erfc`` bound to vectorised versions (within 2 ulp,
  tested; :data:`VMATH`; erf's in :mod:`symvg.engines.verf`) and every other function to ``math``, whose
  calls (log, say) are made one element at a time: see :func:`scalar_calls`.

What it does not take (the NumPy engine does): chains whose layers use different activations, the log
domain, and CuPy. The kernel flags every block that meets a NaN or inf: in x, y or z (a non-finite w or
b makes z so), or in φ, φ' of a generic formula (softplus' = e^z/(1+e^z) at z > 709), or on the way to them
(SiLU' squares e^{-z} to inf at z = -400 and still ends finite: :func:`symvg.engines.repair.guard`). So the inputs need
no separate pass to be checked: a flagged block's inputs are checked (and refused if not finite), and
otherwise it is redone by the NumPy engine, which repairs overflowing formulas exactly and reports what
the floats cannot hold. A block where a product of nonzero numbers (or the loss step) gave 0 is listed apart,
for the registry's fused entry (:mod:`symvg.engines.registry`) to tell an underflow from a true 0.

One kernel is compiled per (activation, loss, dtype), whatever the depth, on first use (:func:`warm`;
``symvg.engines.numeric.compile`` calls it): 7-12 s of CPU on the 2-core machine, once, after which it is
loaded from an on-disk cache in a tenth of a second by any process (:mod:`symvg.engines.fused_kernel`:
``$SYMVG_CACHE_DIR``, else ``$XDG_CACHE_HOME/symvg``, else ``~/.cache/symvg``). It runs on every core unless
told otherwise: the kernel is compiled ``nogil``, and a call splits its blocks into one run per thread
(:func:`runs`), the calling thread taking the first and a pool of worker threads the others, each with its own
scratch. So calls from several Python threads at once need no lock, and a call of one block wakes no other thread. Whether it
compiled in this process, or why not, is the registry's fused entry's to remember (its ``KernelCache``);
this module keeps no routing state.

>>> import numpy as np
>>> from symvg.symbolic.chain import Chain
>>> if available():
...     g = gradients(Chain(2, "relu"), np.array([2.0]), np.array([0.0]),
...                   np.array([[0.5], [3.0]]), np.array([[0.0], [0.0]]))
...     assert g.tolist() == [[36.0], [6.0]]
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from functools import lru_cache
from typing import Any

import numpy as np
import sympy as sp

from symvg.symbolic.activations import Activation
from symvg.symbolic.chain import Chain
from symvg.errors import BackendUnavailableError, InvalidValueError
from symvg.engines.fused_kernel import H_N as _hN
from symvg.engines.fused_kernel import branchless as _branchless
from symvg.engines.fused_kernel import cached as _fused_kernel_cached
from symvg.engines.fused_kernel import kernel as _kernel
from symvg.engines.fused_kernel import pair  # noqa: F401 -- the tests run one activation's pair
from symvg.engines.kernels import local_forms, loss_form

BLOCK_BYTES = 1 << 20
"""Target size of one block's h_0..h_N and φ'_1..φ'_N. Measured at N = 20 (benchmarks/README.md): blocks of
256 samples are 1.3× slower than 2048 (each layer loop is a call); from 1024 to 16384 it hardly matters,
for shared and per-sample weights alike."""


def block_size(depth: int, itemsize: int) -> int:
    """Samples per block: a power of two near BLOCK_BYTES / ((2N + 1)·itemsize), within [128, 4096].

    >>> block_size(20, 8), block_size(20, 4), block_size(1000, 8)
    (2048, 4096, 128)
    """
    fit = BLOCK_BYTES // ((2 * depth + 1) * itemsize)
    return int(min(4096, max(128, 1 << max(0, fit.bit_length() - 1))))


class UnsupportedError(InvalidValueError):
    """numba cannot compile this activation's formulas; the chunked NumPy engine can evaluate them."""


def available() -> bool:
    """True when numba can be imported (``pip install symvg[fast]``)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _numba() -> Any:
    try:
        import numba
    except ImportError:
        raise BackendUnavailableError("the fused engine needs numba: pip install symvg[fast]") from None
    return numba


def _arrays() -> dict:
    """The vectorised functions over arrays (:mod:`symvg.engines.vmath`, :mod:`symvg.engines.verf`), imported on
    first use: they import numba."""
    _numba()  # the one-line error when numba is missing
    from symvg.engines import verf, vmath

    return {**vmath.ARRAYS, **verf.ARRAYS}


# ----------------------------------------------------------------------------- vectorisable math


VMATH = ("exp", "expneg", "expm1", "log1p", "tanh", "erf", "erfc")
"""The vectorised functions the kernel binds in place of libm's (``expneg``: e^x for x ≤ 0 only)."""


def vmath_array(name: str, x: np.ndarray) -> np.ndarray:
    """One of :data:`VMATH` over a 1-D float32/float64 array, as the kernel computes it (tests, benchmark).

    >>> if available():
    ...     v = vmath_array("exp", np.array([0.0, 1.0, -800.0, 800.0]))
    ...     assert v[0] == 1.0 and abs(v[1] - np.e) <= 4.5e-16 and v[2] == 0.0 and v[3] == np.inf
    ...     w = vmath_array("expneg", np.array([-1.0, -800.0]))
    ...     assert abs(w[0] - np.exp(-1.0)) <= 6e-17 and w[1] == 0.0
    ...     u = vmath_array("log1p", np.array([0.0, 1e-20, 1.0, -1.0, np.inf]))
    ...     assert u.tolist() == [0.0, 1e-20, float(np.log(2.0)), -np.inf, np.inf]
    ...     assert vmath_array("expm1", np.array([1e-20, 0.0, -np.inf])).tolist() == [1e-20, 0.0, -1.0]
    ...     assert vmath_array("erfc", np.array([0.0, -np.inf, np.inf, 30.0])).tolist() == [1.0, 2.0, 0.0, 0.0]
    """
    if name not in VMATH:
        raise InvalidValueError(f"vmath_array takes one of {', '.join(VMATH)}, got {name!r}")
    x = np.ascontiguousarray(x)
    if name == "expneg" and (x > 0).any():
        raise InvalidValueError("expneg takes arguments ≤ 0 only")
    out = np.empty_like(x)
    _arrays()[name](x, out)
    return out



@lru_cache(maxsize=256)  # asked on every call (engine choice, kernel key): keep it off the hot path
def _loss_form(chain: Chain) -> tuple[sp.Expr, bool]:
    """(form, logit): ∂L/∂z_N in (z, y) where the loss is taken through the logit
    (:func:`symvg.engines.kernels.loss_form`), else ∂L/∂h_N in a depth-free symbol, so chains of any depth share one
    compiled kernel."""
    dz = loss_form(chain.activations[-1], chain.loss, chain.residual)
    if dz is not None:
        return dz, True
    return chain.dloss().xreplace({chain.h(chain.depth): _hN}), False


SCRATCH_KEPT = 8 << 20
"""Largest block scratch a thread keeps between calls (two shapes at most): allocated fresh, its pages are
faulted in and zeroed by the OS on every call, 0.9 ms per 2.7 MB here, which made loops of small calls up to
3× slower. Larger scratch (deep chains: (2N + 4)·128 samples) is allocated per call and freed."""

_kept = threading.local()  # each thread's scratch: a thread runs one kernel call at a time, so none is shared


def _scratch(rows: int, block: int, dtype: str) -> np.ndarray:
    if rows * block * np.dtype(dtype).itemsize > SCRATCH_KEPT:
        return np.empty((rows, block), dtype=dtype)
    kept = _kept.__dict__.setdefault("arrays", {})
    key = (rows, block, dtype)
    if key not in kept:
        if len(kept) >= 2:
            kept.pop(next(iter(kept)))
        kept[key] = np.empty((rows, block), dtype=dtype)
    return kept[key]


def runs(nblocks: int, threads: int | None = None) -> list[tuple[int, int]]:
    """The runs of blocks, ``(first, stop)``, one per thread: as many threads as ``threads`` asks (every core,
    ``numba.config.NUMBA_NUM_THREADS``, by default), and no more than there are blocks.

    >>> runs(10, 1), runs(1, 8)
    ([(0, 10)], [(0, 1)])
    >>> len(runs(10, 3)) == min(3, _numba().config.NUMBA_NUM_THREADS)
    True
    """
    every = _numba().config.NUMBA_NUM_THREADS
    use = max(1, min(threads or every, every, nblocks))
    per = -(-nblocks // use)
    return [(i, min(nblocks, i + per)) for i in range(0, nblocks, per)]


@lru_cache(maxsize=1)
def _pool() -> Any:
    """Worker threads for the runs after the first (the calling thread takes the first): the kernel is
    compiled ``nogil``, so they run at once."""
    return ThreadPoolExecutor(max_workers=max(1, _numba().config.NUMBA_NUM_THREADS - 1),
                              thread_name_prefix="symvg-fused")


def _launch(kern: Any, args: tuple, rows: int, block: int, dtype: str, spans: list[tuple[int, int]]) -> None:
    """Run the kernel on each span of blocks, the first on this thread and the others on the pool, each with
    its own scratch; waits for all of them (they write the result) before raising what any of them raised."""
    def one(span: tuple[int, int]) -> None:
        kern(*args, _scratch(rows, block, dtype), *span)
    others = [_pool().submit(one, span) for span in spans[1:]]
    try:
        one(spans[0])
    finally:
        wait(others)
    for f in others:
        f.result()


def _key(chain: Chain, dtype: Any) -> tuple:
    return chain.activations[0], _loss_form(chain), np.dtype(dtype).name


def on_disk(chain: Chain, dtype: Any = "float64") -> bool:
    """Whether the kernel ``chain`` needs was compiled by an earlier process and waits in the on-disk cache
    (:func:`symvg.engines.fused_kernel.cached`): then using it costs a load, not a compile."""
    return supports(chain) and _fused_kernel_cached(*_key(chain, dtype))


def warm(chain: Chain, dtype: Any = "float64") -> None:
    """Compile the kernel for ``chain`` now (7-12 s of CPU the first time, ~0.1 s from the on-disk cache after),
    by running it on one sample. :func:`symvg.engines.numeric.compile` calls it through the registry, whose fused entry notes the
    outcome (:class:`symvg.engines.registry.KernelCache`)."""
    one = np.ones(1, dtype=dtype)
    gradients(chain, one, one, np.ones((chain.depth, 1), dtype=dtype), np.zeros((chain.depth, 1), dtype=dtype))


VECTORISED = frozenset({"exp", "expm1", "log1p", "tanh", "erf", "erfc", "erfcneg", "Abs", "sign", "Heaviside", "Max",
                        "Min", "pick"})
"""Functions the kernel evaluates in SIMD lanes (its own exp, expm1, log1p, tanh, erf and erfc; selects and bit
operations for the rest, Piecewise included, which :func:`_branchless` turns into ``pick``). Any other function
(log, say) is a libm call per element, which stops the layer loop vectorising: GELU ran at 182 ms fused against
161-182 NumPy's engine before erf was vectorised, mish (before tanh was) 2× slower (N = 20, M = 10^6, float64)."""


@lru_cache(maxsize=256)
def scalar_calls(act: Activation) -> frozenset[str]:
    """The functions in ``act``'s φ and φ' that the kernel calls one element at a time (not in
    :data:`VECTORISED`); ``engine="auto"`` leaves such activations to NumPy's engine.

    >>> from symvg.symbolic.activations import get
    >>> sorted(scalar_calls(get("gelu"))), sorted(scalar_calls(get("expr:log(2 + z**2)")))
    ([], ['log'])
    """
    forms = local_forms(act)
    if forms.proved:
        return frozenset()
    calls = {type(f).__name__ for e in (forms.phi, forms.dphi) for f in _branchless(e).atoms(sp.Function)}
    return frozenset(calls - VECTORISED)


def supports(chain: Chain) -> bool:
    """Whether the fused engine takes this chain: numba is installed and every layer has one activation."""
    return available() and len(set(chain.activations)) == 1


def gradients(chain: Chain, x: np.ndarray, y: np.ndarray, W: np.ndarray, B: np.ndarray, *,
              threads: int | None = None, block: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """All dL/dw_k, (N, M), from contiguous x, y (M,) and W, B of shape (N, 1) (shared) or (N, M).

    Shapes are :func:`symvg.engines.plan.prepare`'s job; this takes its arrays as they are. Blocks holding a
    NaN or inf (in an input, or in φ or φ' where a formula overflowed) are returned in ``G`` as computed
    and listed by :func:`gradients_and_bad`. ``out``: a C-contiguous, writable (N, M) array of the
    inputs' dtype to write into (and return).
    """
    if out is not None:
        n, m, dtype = chain.depth, x.shape[0], np.result_type(x, W)
        if not (isinstance(out, np.ndarray) and out.shape == (n, m) and out.dtype == dtype
                and out.flags.c_contiguous and out.flags.writeable):
            raise InvalidValueError(f"out must be a C-contiguous, writable ({n}, {m}) array of {dtype.name}")
    G, _, _ = gradients_and_bad(chain, x, y, W, B, threads=threads, block=block, out=out)
    return G


def gradients_and_bad(chain: Chain, x: np.ndarray, y: np.ndarray, W: np.ndarray, B: np.ndarray, *,
                      threads: int | None = None, block: int | None = None,
                      out: np.ndarray | None = None) -> tuple[np.ndarray, list[slice], list[slice]]:
    """:func:`gradients`, plus the sample ranges that met a NaN or inf (to be checked and redone), and those
    where a product of nonzero numbers underflowed to 0 (to be checked if underflow is to be reported).

    ``out`` is taken as given: its caller (:func:`gradients`, or :func:`symvg.engines.plan.check_out` before
    the registry's fused entry) checked it."""
    numba = _numba()
    if not supports(chain):
        raise BackendUnavailableError("the fused engine takes chains with one activation in every layer")
    dtype = np.result_type(x, W)
    key = _key(chain, dtype)
    kern = _kernel(*key)
    n, m = chain.depth, x.shape[0]
    if block is None:  # no larger than the samples need: scratch is (2N + 4) rows of a block per thread
        block = min(block_size(n, dtype.itemsize), max(128, 1 << max(0, m - 1).bit_length()))
    G = np.empty((n, m), dtype=dtype) if out is None else out  # checked by the caller
    nblocks = (m + block - 1) // block
    bad, under = np.zeros(nblocks, dtype=np.bool_), np.zeros(nblocks, dtype=np.bool_)
    try:
        _launch(kern, (x, y, W, B, chain.residual, G, bad, under), 2 * n + 4, block, dtype.str, runs(nblocks, threads))
    except numba.core.errors.NumbaError as e:  # a user expression numba cannot compile
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()  # numba colours its messages
        first = text.splitlines()[0] if text else type(e).__name__
        raise UnsupportedError(f"the fused engine cannot compile {chain.activations[0].name}: {first} "
                               "(engine='chunked' evaluates it)") from None
    ranges = [[slice(i * block, min((i + 1) * block, m)) for i in np.flatnonzero(f)] for f in (bad, under & ~bad)]
    return G, ranges[0], ranges[1]


__all__ = ["BLOCK_BYTES", "SCRATCH_KEPT", "UnsupportedError", "VECTORISED", "VMATH", "available", "block_size",
           "gradients", "on_disk", "runs", "scalar_calls", "supports", "vmath_array", "warm"]
