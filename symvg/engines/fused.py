"""The fused CPU engine: the whole forward and backward pass in one numba kernel (optional extra ``fast``).

One job: the same structured chain rule as :mod:`symvg.engines.numeric`, compiled so that each block of samples
is read once, carried through every layer in cache, and written once, on every core:

    for each block of samples (a run of blocks per thread, one set of scratch each):
        forward   z_k = w_k·h_{k-1} + b_k,  (h_k, φ'_k) = pair(z_k)        one vectorised loop per layer
        backward  δ_N = ∂L/∂h_N, or ∂L/∂z_N with φ'_N = 1 where the loss is taken through the logit (BCE)
                  a_k = δ_k·φ'_k;  g_k = a_k·h_{k-1};  δ_{k-1} = a_k·w_k (+ δ_k if residual)
                  row g_k streamed to the result with non-temporal stores

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
:mod:`symvg.engines.kernels` (the same proved forms the NumPy engine uses) and inlined into the kernel:

* ``logistic``: e = e^{-|z|}, s = 1/(1+e); φ = s or e·s, φ' = e·s² -- one exp, no overflow, no cancellation;
* ``tanh``: φ = tanh z, φ' = 4e/(1+e)² with e = e^{-2|z|};
* ``generic``: ``lambdify`` of the C99-rewritten φ and φ', Piecewise made branch-free (``pick``), with
  ``exp``, ``expm1`` and ``log1p`` bound to vectorised versions (within 2 ulp, tested; :data:`VMATH`) and
  every other function to ``math``, whose calls (erf, erfc, log) are made one element at a time: see
  :func:`scalar_calls`.

What it does not take (the NumPy engine does): chains whose layers use different activations, the log
domain, and CuPy. The kernel flags every block that meets a NaN or inf: in x, y or z (a non-finite w or
b makes z so), or in φ, φ' of a generic formula (softplus' = e^z/(1+e^z) at z > 709). So the inputs need
no separate pass to be checked: a flagged block's inputs are checked (and refused if not finite), and
otherwise it is redone by the NumPy engine, which repairs overflowing formulas exactly and reports what
the floats cannot hold. A block where a product of nonzero numbers (or the loss step) gave 0 is listed apart,
for the registry's fused entry (:mod:`symvg.engines.registry`) to tell an underflow from a true 0.

One kernel is compiled per (activation, loss, dtype), whatever the depth, in 4-5 s on first use
(:func:`warm`; ``symvg.engines.numeric.compile`` calls it), and runs on every core unless told otherwise.
Whether it compiled, or why not, is the registry's fused entry's to remember (its ``KernelCache``);
this module keeps no routing state.

>>> import numpy as np
>>> from symvg.symbolic.chain import Chain
>>> if available():
...     g = gradients(Chain(2, "relu"), np.array([2.0]), np.array([0.0]),
...                   np.array([[0.5], [3.0]]), np.array([[0.0], [0.0]]))
...     assert g.tolist() == [[36.0], [6.0]]
"""

from __future__ import annotations

import math
import re
import threading
from functools import lru_cache
from typing import Any, Callable

import numpy as np
import sympy as sp

from symvg.symbolic.activations import Activation
from symvg.symbolic.parse import z
from symvg.symbolic.chain import Chain, y as y_sym
from symvg.errors import BackendUnavailableError, InvalidValueError
from symvg.engines.kernels import evaluation_forms, local, loss_form

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


_launch = threading.Lock()
"""One kernel launch at a time: numba's default (workqueue) threading layer aborts the process when two
Python threads launch parallel kernels at once."""


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


def _vmath() -> Any:
    """The vectorised maths module (:mod:`symvg.engines.vmath`), imported on first use: it imports numba."""
    _numba()  # the one-line error when numba is missing
    from symvg.engines import vmath

    return vmath


# ----------------------------------------------------------------------------- vectorisable math


VMATH = ("exp", "expneg", "expm1", "log1p", "tanh")
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
    """
    if name not in VMATH:
        raise InvalidValueError(f"vmath_array takes one of {', '.join(VMATH)}, got {name!r}")
    x = np.ascontiguousarray(x)
    if name == "expneg" and (x > 0).any():
        raise InvalidValueError("expneg takes arguments ≤ 0 only")
    out = np.empty_like(x)
    _vmath().ARRAYS[name](x, out)
    return out


# ----------------------------------------------------------------------------- local pieces


def _floats(e: sp.Expr) -> sp.Expr:
    # numba types literals as machine integers: 87904967042368842997010876040615967103/50000… (SELU) or
    # 10**30 would overflow int64. Integers that floats hold exactly (and exponents) stay integers.
    return e.replace(lambda a: a.is_Rational and (not a.is_Integer or abs(a) > 2 ** 53), lambda a: sp.Float(a, 20))


_pick = sp.Function("pick")


def _branchless(e: sp.Expr) -> sp.Expr:
    # Piecewise prints as `a if c else b`: a branch per element, which LLVM may keep (an inlined exp is
    # too big to speculate), and which mixed signs then mispredict. pick(c, a, b) evaluates both pieces
    # as arguments and selects: ELU 1.3× faster (measured, N = 20, M = 10^6).
    def nest(pieces: tuple) -> sp.Expr:
        (expr, cond), rest = pieces[0], pieces[1:]
        if cond == sp.true:
            return expr
        return _pick(cond, expr, nest(rest) if rest else sp.nan)
    return e.replace(lambda a: isinstance(a, sp.Piecewise), lambda a: nest(a.args))


@lru_cache(maxsize=None)
def pair(act: Activation, dtype: str) -> Callable:
    """A numba function z ↦ (φ(z), φ'(z)) for one activation and dtype (see the module docstring)."""

    vm = _vmath()
    vexp, vexpneg, jit = vm.vexp, vm.vexpneg, vm.jit
    ft = np.dtype(dtype).type
    one, four = ft(1), ft(4)
    kind = local(act).kind
    if kind == "logistic":
        def logistic(zv):
            e = vexpneg(-abs(zv))
            s = one / (one + e)
            es = e * s
            return (s if zv >= 0 else es), es * s
        return jit(logistic)
    if kind == "tanh":
        tanh_parts = vm.tanh_parts

        def tanh(zv):
            t, e, r = tanh_parts(abs(zv))
            return math.copysign(t, zv), four * e * r * r
        return jit(tanh)
    if kind == "identity":
        return jit(lambda zv: (zv, one))
    phi, dphi = (_branchless(_floats(e)) for e in evaluation_forms(act))
    f = sp.lambdify(z, (phi, dphi), modules=[{"exp": vexp, "expm1": vm.vexpm1, "log1p": vm.vlog1p, "tanh": vm.vtanh,
                                              "erfcneg": vm.erfcneg, "pick": vm.pick}, "math"], cse=True)
    return jit(f)


_hN = sp.Symbol("h_N", real=True)


@lru_cache(maxsize=256)  # asked on every call (engine choice, kernel key): keep it off the hot path
def _loss_form(chain: Chain) -> tuple[sp.Expr, bool]:
    """(form, logit): ∂L/∂z_N in (z, y) where the loss is taken through the logit
    (:func:`symvg.engines.kernels.loss_form`), else ∂L/∂h_N in a depth-free symbol, so chains of any depth share one
    compiled kernel."""
    dz = loss_form(chain.activations[-1], chain.loss, chain.residual)
    if dz is not None:
        return dz, True
    return chain.dloss().xreplace({chain.h(chain.depth): _hN}), False


@lru_cache(maxsize=None)
def _dloss(form: sp.Expr, logit: bool) -> Callable:
    vm = _vmath()
    mods = [{"exp": vm.vexp, "expm1": vm.vexpm1, "log1p": vm.vlog1p, "tanh": vm.vtanh, "erfcneg": vm.erfcneg,
             "pick": vm.pick}, "math"]
    return vm.jit(sp.lambdify((z if logit else _hN, y_sym), _branchless(_floats(form)), modules=mods, cse=True))


# ----------------------------------------------------------------------------- the kernel


def _layer_loops(act: Activation, dtype: str) -> tuple[Callable, ...]:
    """The loops the kernel runs over one block, each its own vectorised function (not inlined): forward
    (one layer), nonfinite (a row of inputs) and backward (one layer)."""
    numba = _numba()
    local_jit = numba.njit(error_model="numpy", fastmath={"contract"})
    fpair = pair(act, dtype)
    at = _vmath().at
    ft = np.dtype(dtype).type
    zero = ft(0)
    check_local = local(act).kind == "generic"  # the logistic and tanh forms stay finite for every finite z
    positive = not check_local  # φ' > 0 everywhere (logistic, tanh, identity): a 0 is an underflow (z = 1000)

    @local_jit
    def forward(w, b, hp, hn, d, c, residual):
        bad, under = False, False
        for j in range(c):
            zj = at(w, j) * hp[j] + at(b, j)
            hj, dj = fpair(zj)
            # v - v is NaN exactly when v is inf or NaN. z is not finite when w or b is not (or z overflowed,
            # which the chunked engine then redoes); φ and φ' need checking only where a formula can overflow.
            bad |= (zj - zj != zero) | (check_local & ((hj - hj != zero) | (dj - dj != zero)))
            under |= positive & (dj == zero)
            hn[j] = hp[j] + hj if residual else hj
            d[j] = dj
        return bad, under

    @local_jit
    def nonfinite(a, c):
        bad = False
        for j in range(c):
            bad |= a[j] * zero != zero
        return bad

    @local_jit
    def backward(delta, d, hp, w, g, c, residual):
        bad, under = False, False
        for j in range(c):
            dj, hj = delta[j], hp[j]
            a = dj * d[j]
            gj = a * hj
            aw = a * at(w, j)
            g[j] = gj
            delta[j] = dj + aw if residual else aw
            # a result that is not finite overflowed (or met a NaN); a product of two nonzero numbers that
            # is 0 underflowed (in a residual chain δ_k + a·w keeps δ_k, so that product does not count)
            bad |= gj - gj != zero
            under |= ((gj == zero) & (a != zero) & (hj != zero)) | ((a == zero) & (dj != zero) & (d[j] != zero)) | (
                (aw == zero) & (a != zero) & (at(w, j) != zero) & (not residual))
        return bad, under

    return forward, nonfinite, backward


def _loss_loops(loss: tuple[sp.Expr, bool], dtype: str) -> tuple[Callable, Callable]:
    """The loss step over one block, as :func:`_layer_loops`: loss (δ_N = ∂L/∂h_N) and loss_logit
    (∂L/∂z_N with φ'_N ← 1)."""
    numba = _numba()
    local_jit = numba.njit(error_model="numpy", fastmath={"contract"})
    at = _vmath().at
    dl = _dloss(*loss)
    ft = np.dtype(dtype).type
    zero, one = ft(0), ft(1)

    # The loss step flags NaN/inf, and a 0 (an underflow of the form, e^{-800}, or a true 0) to be looked at
    @local_jit
    def loss(hN, yv, delta, c):
        bad, under = False, False
        for j in range(c):
            dj = dl(hN[j], yv[j])
            delta[j] = dj
            bad |= dj - dj != zero
            under |= dj == zero
        return bad, under

    @local_jit
    def loss_logit(w, b, hp, yv, delta, dN, c):
        # ∂L/∂z_N, z_N recomputed as forward computed it; φ'_N ← 1 so that backward needs no second form
        bad, under = False, False
        for j in range(c):
            dj = dl(at(w, j) * hp[j] + at(b, j), yv[j])
            delta[j] = dj
            dN[j] = one
            bad |= dj - dj != zero
            under |= dj == zero
        return bad, under

    return loss, loss_logit


@lru_cache(maxsize=None)
def _kernel(act: Activation, loss: tuple[sp.Expr, bool], dtype: str) -> Callable:
    """The parallel kernel for one (activation, loss, dtype); compiled on its first call."""
    numba = _numba()
    logit = loss[1]
    forward, nonfinite, backward = _layer_loops(act, dtype)
    loss, loss_logit = _loss_loops(loss, dtype)
    vm = _vmath()
    stream, fence = vm.stream, vm.fence

    @numba.njit(parallel=True, error_model="numpy", fastmath={"contract"})
    def kernel(x, yv, W, B, residual, G, bad, under, S):
        n, m = G.shape
        chunks, block = S.shape[0], S.shape[2]
        shared_w, shared_b = W.shape[1] == 1, B.shape[1] == 1
        nblocks = (m + block - 1) // block
        per = (nblocks + chunks - 1) // chunks if chunks else 0
        for chunk in numba.prange(chunks):  # one run of blocks per thread, with its own scratch
            H = S[chunk, :n + 1]
            D = S[chunk, n + 1:2 * n + 1]
            delta = S[chunk, 2 * n + 1]
            row = S[chunk, 2 * n + 2]  # a shared w_k or b_k beside a per-sample one, spread over a row
            g = S[chunk, 2 * n + 3]  # a row of the result, in cache until streamed out
            for blk in range(chunk * per, min(nblocks, (chunk + 1) * per)):
                s0 = blk * block
                c = min(block, m - s0)
                H[0, :c] = x[s0:s0 + c]
                flag = nonfinite(x[s0:s0 + c], c) | nonfinite(yv[s0:s0 + c], c)
                low = False
                for k in range(n):
                    # Shared w_k and b_k go in as scalars (a row of copies cost 13 % at N = 20): two
                    # specialisations of forward, (float, float) and (array, array).
                    if shared_w and shared_b:
                        fk, uk = forward(W[k, 0], B[k, 0], H[k], H[k + 1], D[k], c, residual)
                    else:
                        if shared_w:
                            row[:c] = W[k, 0]
                        elif shared_b:
                            row[:c] = B[k, 0]
                        w = row if shared_w else W[k, s0:s0 + c]
                        b = row if shared_b else B[k, s0:s0 + c]
                        fk, uk = forward(w, b, H[k], H[k + 1], D[k], c, residual)
                    flag |= fk
                    low |= uk
                if logit:
                    if shared_w and shared_b:
                        fl, ul = loss_logit(W[n - 1, 0], B[n - 1, 0], H[n - 1], yv[s0:s0 + c], delta, D[n - 1], c)
                    else:
                        if shared_w:
                            row[:c] = W[n - 1, 0]
                        elif shared_b:
                            row[:c] = B[n - 1, 0]
                        w = row if shared_w else W[n - 1, s0:s0 + c]
                        b = row if shared_b else B[n - 1, s0:s0 + c]
                        fl, ul = loss_logit(w, b, H[n - 1], yv[s0:s0 + c], delta, D[n - 1], c)
                else:
                    fl, ul = loss(H[n], yv[s0:s0 + c], delta, c)
                flag |= fl
                low |= ul
                for k in range(n - 1, -1, -1):
                    if shared_w:
                        fk, uk = backward(delta, D[k], H[k], W[k, 0], g, c, residual)
                    else:
                        fk, uk = backward(delta, D[k], H[k], W[k, s0:s0 + c], g, c, residual)
                    flag |= fk
                    low |= uk
                    stream(g, G[k, s0:s0 + c], c)
                bad[blk] = flag
                under[blk] = low
            fence()

    return kernel


SCRATCH_KEPT = 8 << 20
"""Largest block scratch kept between calls (two shapes at most): allocated fresh, its pages are faulted
in and zeroed by the OS on every call, 0.9 ms per 2.7 MB here, which made loops of small calls up to 3×
slower. Larger scratch (deep chains: 2·(2N + 4)·128 samples) is allocated per call and freed."""


def _scratch(chunks: int, rows: int, block: int, dtype: str) -> np.ndarray:
    if chunks * rows * block * np.dtype(dtype).itemsize > SCRATCH_KEPT:
        return np.empty((chunks, rows, block), dtype=dtype)
    return _kept_scratch(chunks, rows, block, dtype)


@lru_cache(maxsize=2)  # used only under _launch: one kernel at a time writes it
def _kept_scratch(chunks: int, rows: int, block: int, dtype: str) -> np.ndarray:
    return np.empty((chunks, rows, block), dtype=dtype)


def _key(chain: Chain, dtype: Any) -> tuple:
    return chain.activations[0], _loss_form(chain), np.dtype(dtype).name


def warm(chain: Chain, dtype: Any = "float64") -> None:
    """Compile the kernel for ``chain`` now (4-5 s, once per process), by running it on one sample.
    :func:`symvg.engines.numeric.compile` calls it through the registry, whose fused entry notes the
    outcome (:class:`symvg.engines.registry.KernelCache`)."""
    one = np.ones(1, dtype=dtype)
    gradients(chain, one, one, np.ones((chain.depth, 1), dtype=dtype), np.zeros((chain.depth, 1), dtype=dtype))


VECTORISED = frozenset({"exp", "expm1", "log1p", "tanh", "Abs", "sign", "Heaviside", "Max", "Min", "pick"})
"""Functions the kernel evaluates in SIMD lanes (its own exp, expm1, log1p and tanh; selects and bit
operations for the rest, Piecewise included, which :func:`_branchless` turns into ``pick``). Any other function (erf, erfc, log) is a libm call per element, which stops the
layer loop vectorising: GELU ran at 182 ms fused against 161-182 NumPy's engine, erf 156-158 against
129-145, mish (before tanh was vectorised) 2× slower (N = 20, M = 10^6, float64)."""


@lru_cache(maxsize=256)
def scalar_calls(act: Activation) -> frozenset[str]:
    """The functions in ``act``'s φ and φ' that the kernel calls one element at a time (not in
    :data:`VECTORISED`); ``engine="auto"`` leaves such activations to NumPy's engine.

    >>> from symvg.symbolic.activations import get
    >>> sorted(scalar_calls(get("gelu"))), sorted(scalar_calls(get("softplus")))
    (['erfcneg'], [])
    """
    if local(act).kind != "generic":
        return frozenset()
    calls = {type(f).__name__ for e in evaluation_forms(act) for f in _branchless(e).atoms(sp.Function)}
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
    with _launch:
        before = numba.get_num_threads()
        every = numba.config.NUMBA_NUM_THREADS  # all cores unless asked otherwise
        use = max(1, min(threads or every, every))
        numba.set_num_threads(use)
        try:
            kern(x, y, W, B, chain.residual, G, bad, under, _scratch(min(use, nblocks), 2 * n + 4, block, dtype.str))
        except numba.core.errors.NumbaError as e:  # a user expression numba cannot compile
            text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()  # numba colours its messages
            first = text.splitlines()[0] if text else type(e).__name__
            raise UnsupportedError(f"the fused engine cannot compile {chain.activations[0].name}: {first} "
                                   "(engine='chunked' evaluates it)") from None
        finally:
            numba.set_num_threads(before)
    ranges = [[slice(i * block, min((i + 1) * block, m)) for i in np.flatnonzero(f)] for f in (bad, under & ~bad)]
    return G, ranges[0], ranges[1]


__all__ = ["BLOCK_BYTES", "SCRATCH_KEPT", "UnsupportedError", "VECTORISED", "VMATH", "available", "block_size",
           "gradients", "scalar_calls", "supports", "vmath_array", "warm"]
