"""symvg.engines.verf (the vectorised erf and erfc of the fused kernel) against mpmath, and the kernel's use of it."""

from __future__ import annotations

import math
import platform

import mpmath
import numpy as np
import pytest

numba = pytest.importorskip("numba")

from symvg.engines import fused, fused_kernel, verf  # noqa: E402
from symvg.symbolic.activations import get  # noqa: E402
from symvg.symbolic.chain import Chain  # noqa: E402

BOUND = {("erf", "float64"): 1.0, ("erf", "float32"): 1.0, ("erfc", "float64"): 2.0, ("erfc", "float32"): 2.5}
"""The bounds claimed in verf's docstring, in ulps. The worst seen: erf 0.83 (float64: mpmath, 90k random points
over [0, 27.5]) and 0.84 (float32: every float in [2^-12, 11]); erfc 1.93 (float64, x near 1.34) and 2.39
(float32, x near 1.32), where e^{-x²-0.5625+R/S}/x rounds after a P/Q, a reduction and a polynomial."""

TOP = {"float64": 28.0, "float32": 10.5}  # past erfc's underflow: 27.3 (float64), 10.1 (float32)


def ulps_off(x: np.ndarray, got: np.ndarray, f, dtype: str) -> np.ndarray:
    """|got - f(x)| in units of the last place of f(x) rounded to dtype (the smallest subnormal at 0)."""
    out = np.empty(x.size)
    with mpmath.workdps(40):
        for i, (xi, gi) in enumerate(zip(x.tolist(), got.tolist())):
            exact = f(mpmath.mpf(xi))
            ulp = float(np.spacing(np.abs(np.asarray(float(exact), dtype=dtype))))
            out[i] = float(abs(mpmath.mpf(gi) - exact)) / ulp
    return out


def points(dtype: str, rng: np.random.Generator) -> np.ndarray:
    """Both signs of: every piece's range (and both sides of each boundary), the tail down to erfc's underflow,
    small and subnormal |x|."""
    top = TOP[dtype]
    edges = np.array([0.84375, 1.25, 1 / 0.35, 2.85715, 0.25, 6.0, 4.0])
    tiny = np.finfo(dtype).tiny
    x = np.concatenate([rng.uniform(0, 0.84375, 250), rng.uniform(0.84375, 1.25, 200), rng.uniform(1.25, 3, 200),
                        rng.uniform(3, top, 200), np.linspace(top - 1.5, top, 50),
                        np.nextafter(edges.astype(dtype), 0), edges, np.nextafter(edges.astype(dtype), 10),
                        10.0 ** rng.uniform(np.log10(tiny), -2, 80), tiny * np.array([1.0, 0.5, 1e-3]),
                        [np.finfo(dtype).smallest_subnormal]]).astype(dtype)
    return np.concatenate([x, -x])


def run(name: str, x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    verf.ARRAYS[name](x, out)
    return out


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["erf", "erfc"])
def test_within_2_ulp_of_mpmath_from_0_to_the_underflow(name, dtype):
    x = points(dtype, np.random.default_rng(11 if dtype == "float64" else 12))
    got = run(name, x)
    assert got.dtype == np.dtype(dtype)
    off = ulps_off(x, got, getattr(mpmath, name), dtype)
    worst = int(np.argmax(off))
    assert off[worst] <= BOUND[name, dtype], (x[worst], got[worst], off[worst])
    if name == "erfc":  # the tail reaches the subnormals, rounded once, and then 0
        sub = got[(x > 0) & (got > 0) & (got < np.finfo(dtype).tiny)]
        assert sub.size >= 5 and (got[x >= TOP[dtype] - 0.01] == 0).all()


def test_float32_dense_against_float64_libm_rounded():
    # float64's erf and erfc rounded to float32 are the correctly rounded values bar rare double roundings:
    # an independent reference for a dense grid (mpmath checks the sample above)
    x = np.linspace(-10.5, 10.5, 200_001, dtype=np.float32)
    for name, f in (("erf", math.erf), ("erfc", math.erfc)):
        exact = np.array([f(v) for v in x.astype(np.float64).tolist()])
        got = run(name, x).astype(np.float64)
        ulp = np.spacing(np.abs(exact.astype(np.float32))).astype(np.float64)
        assert (np.abs(got - exact) / ulp).max() <= BOUND[name, "float32"] + 0.01, name  # + a double rounding


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_special_values_like_libm(dtype):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e30], dtype=dtype)
    e, c = run("erf", x), run("erfc", x)
    np.testing.assert_array_equal(e, [0.0, -0.0, 1.0, -1.0, np.nan, 1.0, -1.0])
    np.testing.assert_array_equal(c, [1.0, 1.0, 0.0, 2.0, np.nan, 0.0, 2.0])
    assert np.array_equal(np.signbit(e[:2]), [False, True])  # erf(-0) = -0
    s = np.array([np.finfo(dtype).smallest_subnormal, -np.finfo(dtype).smallest_subnormal * 7], dtype=dtype)
    np.testing.assert_array_equal(run("erf", s), (s.astype(np.float64) * (2 / math.sqrt(math.pi))).astype(dtype))


def test_erfcneg_is_erfc_of_minus_u_without_cancellation():
    # GELU's Φ(z) = erfc(-z/√2)/2: for z ≪ 0 the value is erfc's tail, never 1 + erf (which rounds to 0)
    @numba.njit
    def neg(u, out):
        for i in range(u.size):
            out[i] = verf.erfcneg(u[i])

    u = np.array([-27.0, -10.0, -1.0, -0.5, 0.0, 0.5, 3.0, 30.0, np.nan])
    out = np.empty_like(u)
    neg(u, out)
    assert np.isnan(out[-1]) and out[-2] == 2.0
    off = ulps_off(-u[:-1], out[:-1], mpmath.erfc, "float64")
    assert off.max() <= BOUND["erfc", "float64"] and 0 < out[0] < 1e-300


def test_the_kernel_binds_erf_and_erfc_to_verf():
    # printed as erf(...), erfc(...), erfcneg(...) and bound over math's scalar calls in the kernel's header
    assert "from symvg.engines.verf import erfcneg, verf as erf, verfc as erfc" in fused_kernel.HEADER
    assert "erf(z)" in fused_kernel.pair_source(get("erf")) and "erfcneg(" in fused_kernel.pair_source(get("gelu"))
    for name in ("gelu", "erf", "expr:z*erf(z)", "expr:erf(1/(1 + z**2))"):
        assert not fused.scalar_calls(Chain(1, name).activations[0]), name


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="reads x86 assembly")
def test_the_erf_loop_is_vectorised():
    # the point of verf: a branch-free body LLVM turns into vector instructions (packed divides: one per
    # rational, the tail's 1/t² and e/t), where libm's erf was a call per element
    run("erf", np.zeros(64))
    asm = "\n".join(verf.ARRAYS["erf"].inspect_asm().values())
    assert "vdivpd" in asm or "divpd" in asm
