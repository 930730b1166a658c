"""The fused CPU engine: the whole forward and backward pass in one numba kernel (optional extra ``fast``).

One job: the same structured chain rule as :mod:`symvg.numeric`, compiled so that each block of samples
is read once, carried through every layer in cache, and written once, on every core:

    for each block of samples (in parallel):
        forward   z_k = w_k·h_{k-1} + b_k,  (h_k, φ'_k) = pair(z_k)        one vectorised loop per layer
        backward  a_k = δ_k·φ'_k;  g_k = a_k·h_{k-1};  δ_{k-1} = a_k·w_k (+ δ_k if residual)

Why numba alone was not enough (see ``../shared/PERFORMANCE.md``): its ``exp`` is a scalar libm call, so a
fused loop lost to NumPy's SIMD ``exp``. ``vexp`` here is an ``exp`` that LLVM can vectorise: Cody-Waite
reduction e^x = 2^n·e^r with |r| ≤ ln2/2, a degree-11 Chebyshev (float64) or degree-7 Taylor (float32) polynomial,
and 2^n assembled from its exponent bits. It is within 1.5 ulp of the correctly rounded value (tested),
overflows to inf and underflows through the subnormals like libm.

Each layer's ``pair(z) -> (φ, φ')`` is made from the activation's SymPy expressions by
:mod:`symvg.kernels` (the same proved forms the NumPy engine uses) and inlined into the kernel:

* ``logistic``: e = e^{-|z|}, s = 1/(1+e); φ = s or e·s, φ' = e·s² -- one exp, no overflow, no cancellation;
* ``tanh``: φ = tanh z, φ' = 4e/(1+e)² with e = e^{-2|z|};
* ``generic``: ``lambdify`` of the C99-rewritten φ and φ' with ``exp`` bound to ``vexp`` and every
  other function to ``math``.

What it does not take (the NumPy engine does): chains whose layers use different activations, the log
domain, and CuPy. The kernel flags every block that meets a NaN or inf: in x, y or z (a non-finite w or
b makes z so), or in φ, φ' of a generic formula (softplus' = e^z/(1+e^z) at z > 709). So the inputs need
no separate pass to be checked: a flagged block's inputs are checked (and refused if not finite), and
otherwise it is redone by the NumPy engine, which repairs overflowing formulas exactly.

One kernel is compiled per (activation, loss, dtype), whatever the depth, in 3-4 s on first use
(:func:`warm`; ``symvg.numeric.compile`` calls it), and runs on every core unless told otherwise.

>>> import numpy as np
>>> from symvg.chain import Chain
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

from .activations import Activation, z
from .chain import Chain, y as y_sym
from .errors import BackendUnavailableError, InvalidValueError
from .kernels import evaluation_forms, local

BLOCK_BYTES = 1 << 20
"""Target size of one block's h_0..h_N and φ'_1..φ'_N. Measured at N = 20 (benchmarks/README.md): blocks of
128 samples are 1.3-1.8× slower than 2048 (each layer loop is a call, and a block allocates its scratch);
beyond ~1 MiB per block the gain stops."""


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


# ----------------------------------------------------------------------------- a vectorisable exp


@lru_cache(maxsize=None)
def _primitives() -> dict[str, Any]:
    """vexp and erfcneg for numba, built once (importing numba and compiling costs ~1 s).

    The functions numba compiles carry no annotations: numba's overload matching compares them.
    """
    numba = _numba()
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic, overload

    @intrinsic
    def pow2(typingctx: Any, n: Any) -> Any:
        # 2^n for an integral float n in the normal exponent range: (n + bias) << mantissa bits,
        # reinterpreted as a float. Written in LLVM IR so the integer work stays as wide as the float
        # (numba would widen int32 arithmetic to int64, halving the float32 vector width).
        if n not in (types.float32, types.float64):
            return None
        single = n == types.float32
        ity, fty = (ir.IntType(32), ir.FloatType()) if single else (ir.IntType(64), ir.DoubleType())
        bias, shift = (127, 23) if single else (1023, 52)

        def codegen(ctx: Any, b: Any, sig: Any, args: Any) -> Any:
            i = b.fptosi(args[0], ity)
            return b.bitcast(b.shl(b.add(i, ity(bias)), ity(shift)), fty)
        return n(n), codegen

    # float64: exp interpolated at the 12 Chebyshev nodes of [-ln2/2, ln2/2] (mpmath, 50 digits), max
    # relative error 1.7e-17 -- two multiply-adds fewer than the Taylor polynomial of the same accuracy.
    # float32: Taylor to degree 7 (5e-9). Coefficients lowest power first. lo and hi lie just past the
    # dtype's range of exp, so clamping there changes no finite result.
    cheb11 = (1.0, 1.0, 0.5000000000000019, 0.1666666666666668, 0.0416666666664881, 0.008333333333319601,
              0.0013888888952314775, 0.00019841269890047113, 2.4801485482328494e-05, 2.755724091857897e-06,
              2.763263963904103e-07, 2.5110037605963777e-08)
    c64 = dict(lo=-745.2, hi=709.79, log2e=1.4426950408889634, ln2hi=6.93147180369123816490e-01,
               ln2lo=1.90821492927058770002e-10, poly=cheb11)
    c32 = dict(lo=-104.0, hi=88.73, log2e=1.44269504, ln2hi=0.693359375, ln2lo=-2.12194440e-4,
               poly=tuple(1 / math.factorial(j) for j in range(8)))
    jit = numba.njit(inline="always", error_model="numpy")  # error_model: no ZeroDivisionError branch, so loops vectorise

    def make(c: dict, ft: Any) -> Callable:
        lo, hi, log2e, ln2hi, ln2lo = (ft(c[k]) for k in ("lo", "hi", "log2e", "ln2hi", "ln2lo"))
        coef = tuple(ft(v) for v in reversed(c["poly"]))
        half, zero, inf = ft(0.5), ft(0.0), ft(np.inf)

        def vexp(x):
            xc = min(max(x, lo), hi)
            n = np.floor(xc * log2e + half)  # np.floor keeps the width (math.floor gives an int64)
            r = (xc - n * ln2hi) - n * ln2lo
            p = coef[0]
            for cj in coef[1:]:  # unrolled by numba: Horner, highest power first
                p = p * r + cj
            n1 = np.floor(n * half)  # 2^n as 2^n1·2^n2, both normal, so results reach the subnormals
            e = p * pow2(n1) * pow2(n - n1)
            e = inf if x > hi else e
            return zero if x < lo else e
        return jit(vexp)

    vexp64 = make(c64, np.float64)
    vexp32 = make(c32, np.float32)

    def vexp(x):  # the name generated code calls; numba picks the width
        return math.exp(x)

    @overload(vexp, inline="always")
    def _vexp(x):
        if x == types.float32:
            return lambda x: vexp32(x)
        if isinstance(x, (types.Float, types.Integer)):
            return lambda x: vexp64(np.float64(x))
        return None

    @jit
    def erfcneg(u):
        return math.erfc(-u)

    return {"vexp": vexp, "erfcneg": erfcneg, "vexp_array": numba.njit(error_model="numpy")(_over(vexp)),
            "jit": jit}


def _over(f: Callable) -> Callable:
    def apply(x, out):
        for i in range(x.size):
            out[i] = f(x[i])
    return apply


def vexp_array(x: np.ndarray) -> np.ndarray:
    """The vectorised ``exp`` over a 1-D float32/float64 array (for tests and the benchmark).

    >>> if available():
    ...     v = vexp_array(np.array([0.0, 1.0, -800.0, 800.0]))
    ...     assert v[0] == 1.0 and abs(v[1] - np.e) <= 4.5e-16 and v[2] == 0.0 and v[3] == np.inf
    """
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    _primitives()["vexp_array"](x, out)
    return out


# ----------------------------------------------------------------------------- local pieces


def _floats(e: sp.Expr) -> sp.Expr:
    # numba types literals as machine integers: 87904967042368842997010876040615967103/50000… (SELU) or
    # 10**30 would overflow int64. Integers that floats hold exactly (and exponents) stay integers.
    return e.replace(lambda a: a.is_Rational and (not a.is_Integer or abs(a) > 2 ** 53), lambda a: sp.Float(a, 20))


@lru_cache(maxsize=None)
def pair(act: Activation, dtype: str) -> Callable:
    """A numba function z ↦ (φ(z), φ'(z)) for one activation and dtype (see the module docstring)."""

    prim = _primitives()
    vexp, jit = prim["vexp"], prim["jit"]
    ft = np.dtype(dtype).type
    one, two, four = ft(1), ft(2), ft(4)
    kind = local(act).kind
    if kind == "logistic":
        def logistic(zv):
            e = vexp(-abs(zv))
            s = one / (one + e)
            es = e * s
            return (s if zv >= 0 else es), es * s
        return jit(logistic)
    if kind == "tanh":
        def tanh(zv):
            e = vexp(-two * abs(zv))
            q = one + e
            return math.tanh(zv), four * e / (q * q)
        return jit(tanh)
    if kind == "identity":
        return jit(lambda zv: (zv, one))
    phi, dphi = (_floats(e) for e in evaluation_forms(act))
    f = sp.lambdify(z, (phi, dphi), modules=[{"exp": vexp, "erfcneg": prim["erfcneg"]}, "math"], cse=True)
    return jit(f)


_hN = sp.Symbol("h_N", real=True)


@lru_cache(maxsize=256)  # asked on every call (engine choice, kernel key): keep it off the hot path
def _loss_form(chain: Chain) -> sp.Expr:
    """∂L/∂h_N in a depth-free symbol, so chains of any depth share one compiled kernel."""
    return chain.dloss().xreplace({chain.h(chain.depth): _hN})


@lru_cache(maxsize=None)
def _dloss(form: sp.Expr) -> Callable:
    return _primitives()["jit"](sp.lambdify((_hN, y_sym), _floats(form), modules="math"))


# ----------------------------------------------------------------------------- the kernel


@lru_cache(maxsize=None)
def _kernel(act: Activation, loss_form: sp.Expr, dtype: str) -> Callable:
    """The parallel kernel for one (activation, loss, dtype); compiled on its first call."""
    numba = _numba()
    local_jit = numba.njit(error_model="numpy")  # not inlined: each layer loop is its own vectorised function
    fpair = pair(act, dtype)
    dl = _dloss(loss_form)
    ft = np.dtype(dtype).type
    zero = ft(0)
    check_local = local(act).kind == "generic"  # the logistic and tanh forms stay finite for every finite z

    @local_jit
    def forward(w, b, hp, hn, d, c, residual):
        bad = False
        for j in range(c):
            zj = w[j] * hp[j] + b[j]
            hj, dj = fpair(zj)
            # v - v is NaN exactly when v is inf or NaN. z is not finite when w or b is not (or z overflowed,
            # which the chunked engine then redoes); φ and φ' need checking only where a formula can overflow.
            bad |= (zj - zj != zero) | (check_local & ((hj - hj != zero) | (dj - dj != zero)))
            hn[j] = hp[j] + hj if residual else hj
            d[j] = dj
        return bad

    @local_jit
    def nonfinite(a, c):
        bad = False
        for j in range(c):
            bad |= a[j] * zero != zero
        return bad

    @local_jit
    def backward(delta, d, hp, w, g, c, residual):
        for j in range(c):
            a = delta[j] * d[j]
            g[j] = a * hp[j]
            delta[j] = delta[j] + a * w[j] if residual else a * w[j]

    @local_jit
    def loss(hN, yv, delta, c):
        for j in range(c):
            delta[j] = dl(hN[j], yv[j])

    @numba.njit(parallel=True, error_model="numpy")
    def kernel(x, yv, W, B, residual, block, G, bad):
        n, m = G.shape
        shared_w, shared_b = W.shape[1] == 1, B.shape[1] == 1
        for blk in numba.prange((m + block - 1) // block):
            s0 = blk * block
            c = min(block, m - s0)
            H = np.empty((n + 1, block), dtype=G.dtype)
            D = np.empty((n, block), dtype=G.dtype)
            wrow = np.empty(block, dtype=G.dtype)  # shared w_k and b_k spread over a row: one loop shape for both
            brow = np.empty(block, dtype=G.dtype)
            delta = np.empty(block, dtype=G.dtype)
            H[0, :c] = x[s0:s0 + c]
            flag = nonfinite(x[s0:s0 + c], c) | nonfinite(yv[s0:s0 + c], c)
            for k in range(n):
                if shared_w:
                    wrow[:c] = W[k, 0]
                if shared_b:
                    brow[:c] = B[k, 0]
                w = wrow if shared_w else W[k, s0:s0 + c]
                b = brow if shared_b else B[k, s0:s0 + c]
                flag |= forward(w, b, H[k], H[k + 1], D[k], c, residual)
            bad[blk] = flag
            loss(H[n], yv[s0:s0 + c], delta, c)
            for k in range(n - 1, -1, -1):
                if shared_w:
                    wrow[:c] = W[k, 0]
                w = wrow if shared_w else W[k, s0:s0 + c]
                backward(delta, D[k], H[k], w, G[k, s0:s0 + c], c, residual)

    return kernel


_warm: set[tuple] = set()


def _key(chain: Chain, dtype: Any) -> tuple:
    return chain.activations[0], _loss_form(chain), np.dtype(dtype).name


def is_compiled(chain: Chain, dtype: Any = "float64") -> bool:
    """Whether this process already compiled the kernel ``chain`` needs (activation, loss, dtype)."""
    return supports(chain) and _key(chain, dtype) in _warm


_refused: set[tuple] = set()


def refuse(chain: Chain, dtype: Any = "float64") -> None:
    """Note that this chain's kernel does not compile, so ``engine="auto"`` stops trying it."""
    _refused.add(_key(chain, dtype))


def refused(chain: Chain, dtype: Any = "float64") -> bool:
    """Whether :func:`refuse` was called for this chain's kernel."""
    return supports(chain) and _key(chain, dtype) in _refused


def warm(chain: Chain, dtype: Any = "float64") -> None:
    """Compile the kernel for ``chain`` now (3-4 s, once per process), by running it on one sample."""
    one = np.ones(1, dtype=dtype)
    gradients(chain, one, one, np.ones((chain.depth, 1), dtype=dtype), np.zeros((chain.depth, 1), dtype=dtype))


def supports(chain: Chain) -> bool:
    """Whether the fused engine takes this chain: numba is installed and every layer has one activation."""
    return available() and len(set(chain.activations)) == 1


def gradients(chain: Chain, x: np.ndarray, y: np.ndarray, W: np.ndarray, B: np.ndarray, *,
              threads: int | None = None, block: int | None = None) -> np.ndarray:
    """All dL/dw_k, (N, M), from contiguous x, y (M,) and W, B of shape (N, 1) (shared) or (N, M).

    Shapes are :func:`symvg.numeric.prepare`'s job; this takes its arrays as they are. Blocks holding a
    NaN or inf (in an input, or in φ or φ' where a formula overflowed) are returned in ``G`` as computed
    and listed by :func:`gradients_and_bad`.
    """
    G, _ = gradients_and_bad(chain, x, y, W, B, threads=threads, block=block)
    return G


def gradients_and_bad(chain: Chain, x: np.ndarray, y: np.ndarray, W: np.ndarray, B: np.ndarray, *,
                      threads: int | None = None, block: int | None = None) -> tuple[np.ndarray, list[slice]]:
    """:func:`gradients`, plus the sample ranges that met a NaN or inf (to be checked and redone)."""
    numba = _numba()
    if not supports(chain):
        raise BackendUnavailableError("the fused engine takes chains with one activation in every layer")
    dtype = np.result_type(x, W)
    key = _key(chain, dtype)
    kern = _kernel(*key)
    n, m = chain.depth, x.shape[0]
    block = block_size(n, dtype.itemsize) if block is None else block
    G = np.empty((n, m), dtype=dtype)
    nblocks = (m + block - 1) // block
    bad = np.zeros(nblocks, dtype=np.bool_)
    with _launch:
        before = numba.get_num_threads()
        every = numba.config.NUMBA_NUM_THREADS  # all cores unless asked otherwise
        numba.set_num_threads(max(1, min(threads or every, every)))
        try:
            kern(x, y, W, B, chain.residual, block, G, bad)
        except numba.core.errors.NumbaError as e:  # a user expression numba cannot compile
            text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()  # numba colours its messages
            first = text.splitlines()[0] if text else type(e).__name__
            raise UnsupportedError(f"the fused engine cannot compile {chain.activations[0].name}: {first} "
                                   "(engine='chunked' evaluates it)") from None
        finally:
            numba.set_num_threads(before)
    _warm.add(key)
    return G, [slice(i * block, min((i + 1) * block, m)) for i in np.flatnonzero(bad)]


__all__ = ["BLOCK_BYTES", "UnsupportedError", "available", "block_size", "gradients", "gradients_and_bad",
           "is_compiled", "pair", "refuse", "refused", "supports", "vexp_array", "warm"]
