"""The vectorised maths the fused kernel is built from, for numba: ``exp``, ``expm1``, ``log1p`` and ``tanh``
that LLVM can vectorise (within 2 ulp, tested), ``pick`` and ``at`` (branch-free select, scalar-or-row
index), and the ``stream`` and ``fence`` intrinsics that write the result past the cache.

Imports numba at its top (~1 s): :mod:`symvg.engines.fused` imports this module only when it builds a
kernel, so numba stays optional. The functions numba compiles carry no annotations: numba's overload
matching compares them. Not for use outside the engines: :func:`symvg.engines.fused.vmath_array` runs
these functions over an array.
"""

from __future__ import annotations

import math
import platform
import warnings
from typing import Any, Callable

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import NumbaIRAssumptionWarning
from numba.extending import intrinsic, overload

# numba's own "internal pedantic check" on variable scopes fires when these small functions are inlined
# four deep (a generic formula's tanh → tanh_parts → vexpneg). The code is right (the tests compare every
# activation with mpmath and the NumPy engine); the warning says nothing to the user, so it is hidden
# for our functions only.
warnings.filterwarnings("ignore", message=r"(?s).*by_width__locals__.*is not in scope",
                        category=NumbaIRAssumptionWarning)


def float_bits(n: Any, op: str) -> Any:
    # IEEE bit work on a float32/float64, written in LLVM IR so the integer part stays as wide as the
    # float (numba would widen int32 arithmetic to int64, halving the float32 vector width):
    #   pow2      2^n for an integral float n in the normal exponent range: (n + bias) << mantissa bits
    #   exponent  k of x = 2^k·m, m in [1, 2), for a positive normal float x
    #   mantissa  m of the same
    if n not in (types.float32, types.float64):
        return None
    single = n == types.float32
    ity, fty = (ir.IntType(32), ir.FloatType()) if single else (ir.IntType(64), ir.DoubleType())
    bias, shift = (127, 23) if single else (1023, 52)

    def codegen(ctx: Any, b: Any, sig: Any, args: Any) -> Any:
        if op == "pow2":
            return b.bitcast(b.shl(b.add(b.fptosi(args[0], ity), ity(bias)), ity(shift)), fty)
        i = b.bitcast(args[0], ity)
        if op == "exponent":
            return b.sitofp(b.sub(b.lshr(i, ity(shift)), ity(bias)), fty)
        return b.bitcast(b.or_(b.and_(i, ity((1 << shift) - 1)), ity(bias << shift)), fty)
    return n(n), codegen


@intrinsic
def pow2(typingctx: Any, n: Any) -> Any:
    return float_bits(n, "pow2")


@intrinsic
def exponent(typingctx: Any, n: Any) -> Any:
    return float_bits(n, "exponent")


@intrinsic
def mantissa(typingctx: Any, n: Any) -> Any:
    return float_bits(n, "mantissa")


@intrinsic
def stream(typingctx: Any, src: Any, dst: Any, c: Any) -> Any:
    # dst[:c] = src[:c] for contiguous 1-D float rows, the 64-byte-aligned middle with non-temporal
    # vector stores: the (N, M) result goes to memory without first being read into the cache (which a
    # normal store does), and without evicting the block's h and φ' from it. The kernel took 12 % less
    # time with it at N = 20, M = 10^6.
    if not (isinstance(src, types.Array) and isinstance(dst, types.Array) and src.dtype == dst.dtype
            and src.dtype in (types.float32, types.float64) and src.ndim == dst.ndim == 1
            and src.layout == dst.layout == "C" and isinstance(c, types.Integer)):
        return None
    item = 4 if src.dtype == types.float32 else 8
    lanes = 64 // item
    i64 = ir.IntType(64)

    def codegen(ctx: Any, b: Any, sig: Any, args: Any) -> Any:
        vty = ir.VectorType(ctx.get_value_type(sig.args[0].dtype), lanes)
        s = ctx.make_array(sig.args[0])(ctx, b, args[0]).data
        d = ctx.make_array(sig.args[1])(ctx, b, args[1]).data
        n = b.sext(args[2], i64) if args[2].type.width < 64 else args[2]

        def copy(start: Any, count: Any) -> None:  # element by element, normal stores
            with cgutils.for_range(b, count, intp=i64) as loop:
                i = b.add(start, loop.index)
                b.store(b.load(b.gep(s, [i])), b.gep(d, [i]))

        addr = b.ptrtoint(d, i64)
        head = b.udiv(b.and_(b.sub(i64(0), addr), i64(63)), i64(item))  # elements before a 64-byte line
        head = b.select(b.icmp_unsigned("!=", b.and_(addr, i64(item - 1)), i64(0)), n, head)  # never aligns
        head = b.select(b.icmp_signed("<", head, n), head, n)
        body = b.sdiv(b.sub(n, head), i64(lanes))
        copy(i64(0), head)
        nontemporal = b.module.add_metadata([ir.IntType(32)(1)])
        with cgutils.for_range(b, body, intp=i64) as loop:
            at = b.add(head, b.mul(loop.index, i64(lanes)))
            v = b.load(b.bitcast(b.gep(s, [at]), vty.as_pointer()), align=item)
            b.store(v, b.bitcast(b.gep(d, [at]), vty.as_pointer()), align=64).set_metadata("nontemporal",
                                                                                          nontemporal)
        done = b.add(head, b.mul(body, i64(lanes)))
        copy(done, b.sub(n, done))
        return ctx.get_dummy_value()
    return types.none(src, dst, c), codegen


@intrinsic
def fence(typingctx: Any) -> Any:
    # Non-temporal stores are weakly ordered, even on x86: fence them before the thread reports done.
    def codegen(ctx: Any, b: Any, sig: Any, args: Any) -> Any:
        if platform.machine().lower() in ("x86_64", "amd64", "i686", "x86"):
            b.call(cgutils.get_or_insert_function(b.module, ir.FunctionType(ir.VoidType(), []),
                                                  "llvm.x86.sse.sfence"), [])
        else:
            b.fence("seq_cst")
        return ctx.get_dummy_value()
    return types.none(), codegen


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


# error_model: no ZeroDivisionError branch, so loops vectorise; contract: a·b + c as one FMA (1 rounding)
jit = numba.njit(inline="always", error_model="numpy", fastmath={"contract"})


def horner(coefs: tuple) -> Callable:
    # p(x), coefficients highest power first, written out as multiply-adds in LLVM IR: a loop over a tuple
    # stays a loop for LLVM, which past ~12 terms does not unroll it, and then the loop around it does not
    # vectorise (expm1's 17 terms ran 16x slower); nested inlined functions (one per term) are unrolled but
    # cost numba a typing pass per term at every call site (a second per polynomial).
    width = types.float32 if isinstance(coefs[0], np.float32) else types.float64

    @intrinsic
    def p(typingctx: Any, x: Any) -> Any:
        if x != width:
            return None

        def codegen(ctx: Any, b: Any, sig: Any, args: Any) -> Any:
            acc = ctx.get_constant(width, coefs[0])
            for cj in coefs[1:]:  # contract, as fastmath={"contract"} sets it: a*x + c may become one FMA
                acc = b.fadd(b.fmul(acc, args[0], flags=("contract",)), ctx.get_constant(width, cj), flags=("contract",))
            return acc
        return width(width), codegen
    return p


def make(c: dict, ft: Any) -> tuple[Callable, Callable, Callable]:
    lo, hi, log2e, ln2hi, ln2lo = (ft(c[k]) for k in ("lo", "hi", "log2e", "ln2hi", "ln2lo"))
    poly = horner(tuple(ft(v) for v in reversed(c["poly"])))
    half, zero, inf, off, tiny = ft(0.5), ft(0.0), ft(np.inf), ft(64), ft(2.0 ** -64)

    @jit
    def reduced(xc):  # (n, e^r) with xc = n·ln2 + r, |r| ≤ ln2/2
        n = np.floor(xc * log2e + half)  # np.floor keeps the width (math.floor gives an int64)
        r = (xc - n * ln2hi) - n * ln2lo
        return n, poly(r)

    def vexp(x):
        n, p = reduced(min(x if x >= lo else lo, hi))  # NaN goes in as lo: pow2 never sees a NaN
        n1 = np.floor(n * half)  # 2^n as 2^n1·2^n2, both normal, so results reach the subnormals
        e = p * pow2(n1) * pow2(n - n1)
        e = inf if x > hi else e
        e = zero if x < lo else e
        return x if x != x else e

    # expm1: below |x| = 0.7, x·q(x) with q = Σ x^k/(k+1)! (degree 16, or 10 for float32: the first
    # term left out is under a tenth of an ulp); above, e^x - 1, where the - 1 scales e^x's error by
    # at most e^0.7/(e^0.7 - 1) = 2.
    cut = ft(0.7)
    q = horner(tuple(ft(1 / math.factorial(j + 1)) for j in reversed(range(17 if ft is np.float64 else 11))))
    one = ft(1)

    def vexpm1(x):
        xs = x if abs(x) <= cut else zero  # the polynomial's branch never sees a large, inf or NaN x
        small, big = xs * q(xs), vexp(x) - one
        return small if abs(x) <= cut else big

    def vexpneg(x):
        # e^x for x ≤ 0 only (the logistic's and tanh's e^{-|z|}): 2^n = 2^(n+64)·2^-64 stays
        # normal down to the subnormal results, and e^lo rounds to 0, so one clamp does (7 fewer
        # operations than vexp).
        n, p = reduced(x if x >= lo else lo)  # NaN goes in as lo, and comes out as NaN
        e = p * pow2(n + off) * tiny
        return x if x != x else e
    vexp = jit(vexp)
    return vexp, jit(vexpneg), jit(vexpm1)


# log1p: fdlibm's log kernel (e_log.c: log(1+f) = f - (f²/2 - s·(f²/2 + R(s²))), s = f/(2+f), R of
# degree 7, |f| < √2 - 1) after 1 + u = 2^k·(1 + f), with the rounding error of 1 + u added back.
lg = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
      2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01)


def make_log1p(ft: Any) -> Callable:
    one, two, half, sqrt2 = ft(1), ft(2), ft(0.5), ft(math.sqrt(2))
    ln2hi, ln2lo = (ft(6.93147180369123816490e-01), ft(1.90821492927058770002e-10)) if ft is np.float64 else \
        (ft(6.9313812256e-01), ft(9.0580006145e-06))
    poly = horner(tuple(ft(v) for v in reversed(lg)) + (ft(0),))  # R(w) = w·(Lg1 + w·(Lg2 + ...))
    zero, inf, nan = ft(0), ft(np.inf), ft(np.nan)

    def vlog1p(u):
        u1 = one + u
        err = (u - (u1 - one)) if abs(u) <= one else (one - (u1 - u))  # 1 + u = u1 + err exactly
        k = exponent(u1)
        m = mantissa(u1)
        k = k + one if m > sqrt2 else k
        m = m * half if m > sqrt2 else m
        f = m - one
        s = f / (two + f)
        w = s * s
        r = poly(w)
        hfsq = half * f * f
        v = k * ln2hi - ((hfsq - (s * (hfsq + r) + (k * ln2lo + err / u1))) - f)
        v = inf if u1 == inf else v
        v = -inf if u1 == zero else v
        v = u if u == zero else v  # ±0 keeps its sign
        return nan if not (u1 >= zero) else v  # u < -1 or NaN
    return jit(vlog1p)


# tanh: libm's is a scalar call that stops the loop vectorising (it made the fused tanh 1.7× slower than
# NumPy's engine). With e = e^{-2a}, a = |x|: tanh a = (1 - e)/(1 + e), free of cancellation for
# a ≥ 0.625 (1 - e > 0.7); below, Cephes' approximation (tanh.c, tanhf.c): a rational function of a²
# (float64, 2.5e-16) or a polynomial (float32). Within 2 ulp (tested).
def make_tanh(ft: Any, vexpneg: Callable) -> tuple[Callable, Callable]:
    one, two, cut = ft(1), ft(2), ft(0.625)
    if ft is np.float64:
        p = horner(tuple(map(ft, (-9.64399179425052238628e-1, -9.92877231001918586564e1,
                                  -1.61468768441708447952e3))))
        q = horner(tuple(map(ft, (1.0, 1.12811678491632931402e2, 2.23548839060100448583e3,
                                  4.84406305325125486048e3))))
        near0 = jit(lambda a, s: a + a * s * (p(s) / q(s)))
    else:
        c = horner(tuple(map(ft, (-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2,
                                  1.33314422036e-1, -3.33332819422e-1, 0.0))))
        near0 = jit(lambda a, s: c(s) * a + a)

    @jit
    def tanh_parts(a):  # (tanh a, e^{-2a}, 1/(1 + e^{-2a})) for a = |x|: the derivative needs e and r
        e = vexpneg(-two * a)
        r = one / (one + e)
        small, big = near0(a, a * a), (one - e) * r  # both, then a select: no call inside a branch
        return (small if a < cut else big), e, r

    @jit
    def vtanh(x):
        t, _, _ = tanh_parts(abs(x))
        return math.copysign(t, x)
    return tanh_parts, vtanh


vexp64, vexpneg64, vexpm164 = make(c64, np.float64)
vexp32, vexpneg32, vexpm132 = make(c32, np.float32)
vlog1p64, vlog1p32 = make_log1p(np.float64), make_log1p(np.float32)


def by_width(f64: Callable, f32: Callable) -> Callable:
    def f(x):  # the name generated code calls; numba picks the width
        raise TypeError("a numba-only function: call it from compiled code")

    @overload(f, inline="always")
    def _f(x):
        if x == types.float32:
            return lambda x: f32(x)
        if isinstance(x, (types.Float, types.Integer)):
            return lambda x: f64(np.float64(x))
        return None
    return f


(parts64, vtanh64), (parts32, vtanh32) = make_tanh(np.float64, vexpneg64), make_tanh(np.float32, vexpneg32)
vexp, vexpneg, vexpm1, vlog1p, vtanh, tanh_parts = (
    by_width(vexp64, vexp32), by_width(vexpneg64, vexpneg32), by_width(vexpm164, vexpm132),
    by_width(vlog1p64, vlog1p32), by_width(vtanh64, vtanh32), by_width(parts64, parts32))


def at(a, j):  # a[j] for a per-sample row, a itself for a shared scalar
    return a[j]


@overload(at, inline="always")
def _at(a, j):
    if isinstance(a, types.Array):
        return lambda a, j: a[j]
    return lambda a, j: a


@jit
def pick(c, a, b):
    return a if c else b


@jit
def nanif(x):
    # 0 where x is finite, NaN where it is inf or NaN (no fastmath flag lets LLVM fold x - x): the guard a printed
    # formula adds for a value it computes on the way (symvg.engines.repair.guard)
    return x - x


def _over(f: Callable) -> Callable:
    def apply(x, out):
        for i in range(x.size):
            out[i] = f(x[i])
    return apply


_loop = numba.njit(error_model="numpy", fastmath={"contract"})
ARRAYS = {k: _loop(_over(f)) for k, f in
          {"exp": vexp, "expneg": vexpneg, "expm1": vexpm1, "log1p": vlog1p, "tanh": vtanh}.items()}
"""Each vectorised function over a 1-D array, ``ARRAYS[name](x, out)``: as the kernel computes it."""

__all__ = ["ARRAYS", "at", "fence", "jit", "nanif", "pick", "stream", "tanh_parts", "vexp", "vexpm1", "vexpneg",
           "vlog1p", "vtanh"]
