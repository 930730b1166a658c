"""erf and erfc that LLVM can vectorise, for the fused kernel (numba): libm's are scalar calls, one element at a
time, which stop the layer loop vectorising (GELU, erf and any formula using them ran no faster fused than
NumPy's engine).

fdlibm's method (s_erf.c; float32: FreeBSD's s_erff.c, whose fits have fewer terms), made branch-free: every
piece is evaluated and the right one selected (``pick``), since a data-dependent branch stops LLVM
vectorising. With a = |x|:

* a < 0.84375: erf a = a + a·P(a²)/Q(a²);
* a < 1.25: erf a = erx + P(s)/Q(s), s = a - 1 (erx: erf(1) cut to a few bits);
* beyond: erfc a = e^{-a²-0.5625+R(w)/S(w)}/a, w = 1/a², R/S fitted on [1.25, 1/0.35] and [1/0.35, 28]
  (float32: 11), with -a² = -u² + (u - a)(u + a) exactly, u = a with its low mantissa bits cleared.

The four rationals share one division (numerator and denominator are selected first), and the tail's two
exponentials are one: e^{hi + lo} with the Cody-Waite reduction of :func:`symvg.engines.vmath.vexp` applied to hi
(exact) and lo added to the reduced argument; 2^n·(e^r/a) is scaled by 2^64 and back, so a result in the
subnormals is rounded once. erfc(x) for x < 0 is 1 + erf|x|. erf is within 1 ulp of mpmath, erfc within 2
(float64) and 2.5 (float32: every float checked), down to erfc's underflow (tests/test_verf.py).

The formulas are written as Python over :class:`F`, which emits each operation as LLVM IR where the function
is called: to numba, erf is one intrinsic (one typing step), so it adds nothing measurable to a kernel's
compile time, and LLVM sees straight-line code it vectorises.

Imports numba: imported only where a kernel is built. Not for use outside the engines:
:func:`symvg.engines.fused.vmath_array` runs these over an array.
"""

from __future__ import annotations

from typing import Any, Callable

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from symvg.engines.vmath import _loop, _over, c32, c64

# Coefficients lowest power first. float64: fdlibm's (|error| of each fit below 2^-57); float32: FreeBSD's
# lower-degree fits for float (below 2^-28), so fewer multiply-adds in the float32 kernel.
F64 = dict(
    erx=8.45062911510467529297e-01, small=0.84375, mid=1.25, split=1 / 0.35, top=28.0,
    pp=(1.28379167095512558561e-01, -3.25042107247001499370e-01, -2.84817495755985104766e-02,
        -5.77027029648944159157e-03, -2.37630166566501626084e-05),
    qq=(1.0, 3.97917223959155352819e-01, 6.50222499887672944485e-02, 5.08130628187576562776e-03,
        1.32494738004321644526e-04, -3.96022827877536812320e-06),
    pa=(-2.36211856075265944077e-03, 4.14856118683748331666e-01, -3.72207876035701323847e-01,
        3.18346619901161753674e-01, -1.10894694282396677476e-01, 3.54783043256182359371e-02,
        -2.16637559486879084300e-03),
    qa=(1.0, 1.06420880400844228286e-01, 5.40397917702171048937e-01, 7.18286544141962662868e-02,
        1.26171219808761642112e-01, 1.36370839120290507362e-02, 1.19844998467991074170e-02),
    ra=(-9.86494403484714822705e-03, -6.93858572707181764372e-01, -1.05586262253232909814e+01,
        -6.23753324503260060396e+01, -1.62396669462573470355e+02, -1.84605092906711035994e+02,
        -8.12874355063065934246e+01, -9.81432934416914548592e+00),
    sa=(1.0, 1.96512716674392571292e+01, 1.37657754143519042600e+02, 4.34565877475229228821e+02,
        6.45387271733267880336e+02, 4.29008140027567833386e+02, 1.08635005541779435134e+02,
        6.57024977031928170135e+00, -6.04244152148580987438e-02),
    rb=(-9.86494292470009928597e-03, -7.99283237680523006574e-01, -1.77579549177547519889e+01,
        -1.60636384855821916062e+02, -6.37566443368389627722e+02, -1.02509513161107724954e+03,
        -4.83519191608651397019e+02),
    sb=(1.0, 3.03380607434824582924e+01, 3.25792512996573918826e+02, 1.53672958608443695994e+03,
        3.19985821950859553908e+03, 2.55305040643316442583e+03, 4.74528541206955367215e+02,
        -2.24409524465858183362e+01))

F32 = dict(
    erx=8.42697144e-01, small=0.84375, mid=1.25, split=2.85715, top=11.0,
    pp=(1.28379166e-01, -3.36030394e-01, -1.86261395e-03),
    qq=(1.0, 3.12324315e-01, 2.16070414e-02, -1.98859372e-03),
    pa=(3.65041046e-06, 4.15109307e-01, -2.09395722e-01, 8.67677554e-02),
    qa=(1.0, 4.95560974e-01, 3.71248513e-01, 3.92478965e-02),
    ra=(-9.88156721e-03, -5.43658376e-01, -1.66828310e+00, -6.91554189e-01),
    sa=(1.0, 4.48581553e+00, 4.10799170e+00, 5.53855181e-01),
    rb=(-9.86496918e-03, -5.48049808e-01, -1.84115684e+00),
    sb=(1.0, 4.87132740e+00, 3.04982710e+00, -7.61900663e-01))


C = ("contract",)  # a·b + c as one FMA, as vmath's fastmath={"contract"} allows


class F:
    """A float32/float64 LLVM value with the arithmetic the formulas below use, each operation emitted at the
    call site: the whole of erf is one node for numba (written as inlined numba functions, it cost a typing
    pass per statement and call site, and added 4-8 s to each kernel's compile)."""

    __slots__ = ("b", "v")

    def __init__(self, b: Any, v: Any) -> None:
        self.b, self.v = b, v

    def _(self, o: Any) -> Any:
        return o.v if isinstance(o, F) else ir.Constant(self.v.type, float(o))

    def _op(self, name: str, x: Any, y: Any) -> F:
        return F(self.b, getattr(self.b, name)(self._(x), self._(y), flags=C))

    def __add__(self, o): return self._op("fadd", self, o)  # noqa: E704
    def __radd__(self, o): return self._op("fadd", o, self)  # noqa: E704
    def __sub__(self, o): return self._op("fsub", self, o)  # noqa: E704
    def __rsub__(self, o): return self._op("fsub", o, self)  # noqa: E704
    def __mul__(self, o): return self._op("fmul", self, o)  # noqa: E704
    def __rmul__(self, o): return self._op("fmul", o, self)  # noqa: E704
    def __truediv__(self, o): return self._op("fdiv", self, o)  # noqa: E704
    def __rtruediv__(self, o): return self._op("fdiv", o, self)  # noqa: E704
    def __neg__(self): return F(self.b, self.b.fneg(self.v, flags=C))  # noqa: E704
    def __lt__(self, o): return self.b.fcmp_ordered("<", self.v, self._(o))  # noqa: E704
    def __gt__(self, o): return self.b.fcmp_ordered(">", self.v, self._(o))  # noqa: E704
    def __ge__(self, o): return self.b.fcmp_ordered(">=", self.v, self._(o))  # noqa: E704
    def __le__(self, o): return self.b.fcmp_ordered("<=", self.v, self._(o))  # noqa: E704

    @property
    def single(self) -> bool:
        return isinstance(self.v.type, ir.FloatType)

    def pick(self, c: Any, other: Any) -> F:
        """self where c, else other: a select of two computed values."""
        return F(self.b, self.b.select(c, self.v, self._(other)))

    def call(self, name: str, *more: F) -> F:
        """An LLVM intrinsic of this value (and more of its type): floor, fabs, copysign, fma."""
        fty = self.v.type
        fn = self.b.module.declare_intrinsic(name, [fty], ir.FunctionType(fty, [fty] * (1 + len(more))))
        return F(self.b, self.b.call(fn, [self.v, *(m.v for m in more)]))

    def _int(self) -> Any:
        return ir.IntType(32 if self.single else 64)

    def chop(self) -> F:
        """This value with the low half of its mantissa bits cleared: its square is exact."""
        ity = self._int()
        keep = ity(-(1 << (13 if self.single else 32)))
        return F(self.b, self.b.bitcast(self.b.and_(self.b.bitcast(self.v, ity), keep), self.v.type))

    def pow2(self) -> F:
        """2^n for this integral value n in the normal exponent range: (n + bias) << mantissa bits."""
        ity = self._int()
        bias, shift = (127, 23) if self.single else (1023, 52)
        n = self.b.fptosi(self.v, ity)
        return F(self.b, self.b.bitcast(self.b.shl(self.b.add(n, ity(bias)), ity(shift)), self.v.type))


def poly(x: F, coefs: tuple) -> F:
    """Horner's scheme, coefficients lowest power first."""
    acc = F(x.b, x._(coefs[-1]))
    for c in reversed(coefs[:-1]):
        acc = acc * x + c
    return acc


def parts(a: F) -> tuple[F, F]:
    """(erf a, erfc a) for a = |x| (numbers for a NaN, which the callers replace): every piece, then selects."""
    k, c = (F32, c32) if a.single else (F64, c64)
    t = a.pick(a >= 1, 1.0)  # the tail's argument, within [1, top]: no inf or NaN reaches the exponent bits
    t = t.pick(t <= k["top"], k["top"])
    zz, s, w = a * a, a - 1, 1 / (t * t)
    low, near, far = a < k["small"], a < k["mid"], t >= k["split"]
    num = poly(zz, k["pp"]).pick(low, poly(s, k["pa"]).pick(near, poly(w, k["rb"]).pick(far, poly(w, k["ra"]))))
    den = poly(zz, k["qq"]).pick(low, poly(s, k["qa"]).pick(near, poly(w, k["sb"]).pick(far, poly(w, k["sa"]))))
    q = num / den
    u = t.chop()  # -t² = -u² + (u - t)(u + t), u² exact
    hi = -u * u - 0.5625
    dx = (u - t) * (u + t) + q
    # e^{hi + dx}/t rounds to 0 (or x is NaN): clamped, so 2^(n + 64) below stays a normal number and no NaN
    # reaches the float-to-integer conversion (whose result LLVM leaves undefined)
    gone = a.b.fcmp_unordered("<", (hi + dx).v, a._(c["lo"]))
    hi, dx = F(a.b, a._(c["lo"])).pick(gone, hi), F(a.b, a._(0.0)).pick(gone, dx)
    n = ((hi + dx) * c["log2e"] + 0.5).call("llvm.floor")
    r = ((hi - n * c["ln2hi"]) - n * c["ln2lo"]) + dx
    e = poly(r, c["poly"]) * (n + 64).pow2() / t * 2.0 ** -64  # erfc t, rounded once, in the subnormals too
    aq = a * q
    erf_a = (a + aq).pick(low, (k["erx"] + q).pick(near, 1 - e))
    # erfc below 0.84375 as 1 - erf, in the form whose roundings fall in binades no coarser than the result's:
    # fdlibm's 0.5 - (a·q + (a - 0.5)) rounds its bracket to twice the result's ulp above a = 0.5 (2.4 ulp seen)
    minus = (-a).call("llvm.fma", q, 1 - a)  # 1 - a - a·q, once rounded: 1 - a is exact for a ≥ 0.5
    half = 0.5 - a.call("llvm.fma", q, a - 0.5)
    small = (1 - (a + aq)).pick(a < 0.25, half.pick(a < 0.5, minus))
    return erf_a, small.pick(low, ((1 - k["erx"]) - q).pick(near, e))


def function(emit: Callable) -> Callable:
    """A numba intrinsic of one number (float32 kept, anything else as float64), its body emitted by ``emit``."""
    def typer(typingctx: Any, x: Any) -> Any:
        if not isinstance(x, (types.Float, types.Integer)):
            return None
        width = types.float32 if x == types.float32 else types.float64

        def codegen(ctx: Any, b: Any, sig: Any, args: Any) -> Any:
            return emit(F(b, ctx.cast(b, args[0], x, width))).v
        return width(x), codegen
    return intrinsic(typer)


def _nan(x: F) -> Any:
    return x.b.fcmp_unordered("uno", x.v, x.v)


def _erf(x: F) -> F:
    e, _ = parts(x.call("llvm.fabs"))
    return x.pick(_nan(x), e.call("llvm.copysign", x))


def _erfc(x: F, neg: bool = False) -> F:  # erfc(-x) if neg; for x < 0, erfc x = 1 + erf|x|
    e, c_ = parts(x.call("llvm.fabs"))
    return x.pick(_nan(x), (1 + e).pick(x > 0 if neg else x < 0, c_))


verf = function(_erf)
verfc = function(_erfc)
erfcneg = function(lambda u: _erfc(u, neg=True))
"""erfc(-u): GELU's Φ(z) = erfc(-z/√2)/2, which (1 + erf(z/√2))/2 would cancel for z ≪ 0."""

ARRAYS = {k: _loop(_over(f)) for k, f in {"erf": verf, "erfc": verfc}.items()}
"""Each function over a 1-D array, ``ARRAYS[name](x, out)``: as the kernel computes it."""

__all__ = ["ARRAYS", "F", "erfcneg", "function", "parts", "poly", "verf", "verfc"]
