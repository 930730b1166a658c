"""symvg.engines.fused (the numba engine) against mpmath at 50 digits and against the chunked NumPy engine.

Each activation/loss/dtype compiles one kernel (~2 s), so the cases below share kernels where they can:
shared and per-sample weights, residual or not, and any depth run through the same compiled code.
"""

from __future__ import annotations

import math
import zlib

import mpmath
import numpy as np
import pytest

numba = pytest.importorskip("numba")

from symvg.engines import fused, numeric, registry  # noqa: E402
from symvg.symbolic.activations import get, names  # noqa: E402
from symvg.symbolic.chain import Chain  # noqa: E402
from symvg.errors import BackendUnavailableError, InvalidValueError, OverflowReport, UnderflowReport  # noqa: E402
from symvg.engines.numeric import gradients  # noqa: E402
from symvg.engines.reference import reference  # noqa: E402

from conftest import (as_floats, assert_close_rowwise, assert_matches_mpmath_or_flags, network_inputs,  # noqa: E402
                      saturated_bce_inputs)


# ----------------------------------------------------------------------------- the vectorised exp


@pytest.mark.parametrize("nonpositive", [False, True], ids=["vexp", "vexpneg"])
def test_vexp_float64_within_1_5_ulp_of_mpmath_everywhere(nonpositive):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-745, 709.78, 20000), rng.normal(0, 2, 20000), np.linspace(-0.35, 0.35, 2001),
                        [0.0, 1.0, -1.0, 709.78, -708.39, -720.0, -744.4]])
    if nonpositive:
        x = -np.abs(x)
    v = fused.vmath_array("expneg" if nonpositive else "exp", x)
    sample = np.concatenate([np.arange(x.size - 7, x.size), rng.choice(x.size, 400, replace=False)])
    with mpmath.workdps(40):
        for i in sample:
            exact = mpmath.exp(mpmath.mpf(float(x[i])))
            ulp = np.spacing(float(exact)) if float(exact) > 0 else 5e-324
            assert abs(mpmath.mpf(float(v[i])) - exact) <= 1.5 * ulp, (x[i], v[i])
    np.testing.assert_allclose(v, np.exp(x), rtol=3e-16, atol=5e-324)  # every point vs libm (subnormals: 1 unit)
    assert v[-1] > 0 and v[-1] < np.finfo(np.float64).tiny  # a subnormal result, not a flush to zero


@pytest.mark.parametrize("nonpositive", [False, True], ids=["vexp", "vexpneg"])
def test_vexp_float32_within_1_5_ulp_of_the_exact_value(nonpositive):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-87, 88.7, 50000), rng.normal(0, 2, 50000)]).astype(np.float32)
    if nonpositive:
        x = -np.abs(x)
    v = fused.vmath_array("expneg" if nonpositive else "exp", x)
    assert v.dtype == np.float32
    exact = np.exp(x.astype(np.float64))  # float64 exp rounded to float32 is the correctly rounded value here
    ulps = np.abs(v.astype(np.float64) - exact) / np.spacing(exact.astype(np.float32)).astype(np.float64)
    assert ulps.max() <= 1.5


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_vexp_overflows_and_underflows_like_libm(dtype):
    big = 800.0 if dtype == "float64" else 100.0
    x = np.array([big, -big * 1.5, 0.0, -1e30, 1e30, -np.inf], dtype=dtype)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(fused.vmath_array("exp", x), np.exp(x))
    neg = np.array([-big, -big * 1.5, -0.0, -1e30, -np.inf, -np.finfo(dtype).tiny, np.nan], dtype=dtype)
    np.testing.assert_array_equal(fused.vmath_array("expneg", neg), np.exp(neg))
    assert np.isnan(fused.vmath_array("exp", np.array([np.nan], dtype=dtype))).all()
    with pytest.raises(InvalidValueError, match="≤ 0 only"):
        fused.vmath_array("expneg", np.array([1.0], dtype=dtype))
    with pytest.raises(InvalidValueError, match="one of exp, expneg, expm1, log1p, tanh, erf, erfc, got 'sin'"):
        fused.vmath_array("sin", np.array([1.0]))
    # the subnormal range, where vexpneg scales by 2^64 and back
    sub = -np.linspace(700, 745, 200) if dtype == "float64" else -np.linspace(85, 103.9, 200)
    np.testing.assert_allclose(fused.vmath_array("expneg", sub.astype(dtype)), np.exp(sub.astype(dtype)),
                               rtol=4e-16 if dtype == "float64" else 2e-7, atol=np.finfo(dtype).smallest_subnormal)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_vlog1p_within_1_ulp_of_mpmath_and_its_special_values_like_libm(dtype):
    rng = np.random.default_rng(6)
    top = 700 if dtype == "float64" else 80
    u = np.concatenate([rng.uniform(0, 1, 400), np.exp(-rng.uniform(0, top, 400)), rng.uniform(-0.999, 5, 400),
                        10 ** rng.uniform(-30, 30, 400), [np.sqrt(2) - 1, 1e-20, 2.0 ** -53]]).astype(dtype)
    v = fused.vmath_array("log1p", u)
    assert v.dtype == np.dtype(dtype)
    with mpmath.workdps(40):
        for ui, vi in zip(u, v):
            exact = mpmath.log1p(mpmath.mpf(float(ui)))
            ulp = np.spacing(np.abs(np.asarray(float(exact), dtype=dtype)))
            assert abs(mpmath.mpf(float(vi)) - exact) <= ulp, (ui, vi)
    special = np.array([0.0, -0.0, -1.0, -2.0, np.inf, np.nan], dtype=dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        got = fused.vmath_array("log1p", special)
        np.testing.assert_array_equal(got, np.log1p(special))
    assert np.array_equal(np.signbit(got[:2]), [False, True])  # log1p(-0) = -0, as libm gives


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_vexpm1_within_2_ulp_of_mpmath_and_its_special_values_like_libm(dtype):
    rng = np.random.default_rng(7)
    top = 700 if dtype == "float64" else 85
    x = np.concatenate([rng.uniform(-1.2, 1.2, 600), rng.uniform(-top, top, 300), rng.normal(0, 2, 300),
                        -(10.0 ** rng.uniform(-30, 0, 100)), [0.6999, 0.7, 0.7001, -0.7, -0.7001]]).astype(dtype)
    v = fused.vmath_array("expm1", x)
    with mpmath.workdps(40):
        for xi, vi in zip(x, v):
            exact = mpmath.expm1(mpmath.mpf(float(xi)))
            ulp = np.spacing(np.abs(np.asarray(float(exact), dtype=dtype)))
            assert abs(mpmath.mpf(float(vi)) - exact) <= 2 * ulp, (xi, vi)
    special = np.array([0.0, -0.0, -np.inf, np.inf, np.nan, 1000.0], dtype=dtype)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(fused.vmath_array("expm1", special), np.expm1(special))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tanh_pair_within_2_ulp_and_its_derivative_within_4(dtype):
    # The vectorised tanh: Cephes' rational function below |z| = 0.625, (1 - e)/(1 + e) above.
    from symvg.symbolic.activations import get

    f = fused.pair(get("tanh"), dtype)

    @numba.njit
    def run(zs, t, d):
        for i in range(zs.size):
            t[i], d[i] = f(zs[i])

    rng = np.random.default_rng(5)
    zs = np.concatenate([rng.uniform(-0.7, 0.7, 700), rng.normal(0, 3, 700), [0.625, -0.625, 0.6249, 1e-30, 40.0]])
    zs = zs.astype(dtype)
    t, d = np.empty_like(zs), np.empty_like(zs)
    run(zs, t, d)
    with mpmath.workdps(40):
        for zi, ti, di in zip(zs, t, d):
            exact = mpmath.tanh(mpmath.mpf(float(zi)))
            for got, want, ulps in ((ti, exact, 2), (di, mpmath.sech(mpmath.mpf(float(zi))) ** 2, 4)):
                ulp = np.spacing(np.abs(np.asarray(float(want), dtype=dtype))) if want else 0
                assert abs(mpmath.mpf(float(got)) - want) <= ulps * ulp, (zi, got, want)
    neg0 = np.array([-0.0], dtype=dtype)
    run(neg0, t[:1], d[:1])
    assert np.signbit(t[0]) and d[0] == 1  # tanh(-0) = -0, as libm gives
    # the same tanh stands in for libm's in generic formulas (z·tanh(z), mish)
    alone = fused.vmath_array("tanh", zs)
    np.testing.assert_allclose(alone, np.tanh(zs), rtol=3 * np.finfo(dtype).eps, atol=0)


# ----------------------------------------------------------------------------- the kernel: correctness


@pytest.mark.parametrize("name", names())
def test_fused_matches_mpmath_every_activation(name):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for depth, per_sample, residual in ((1, True, False), (5, False, True), (12, True, False)):
        chain = Chain(depth, name, residual=residual)
        x, y, W, B = network_inputs(rng, depth, 7, per_sample)
        g = gradients(chain, x, y, W, B, engine="fused")
        assert_close_rowwise(g, as_floats(reference(chain, x, y, W, B)), 1e-12)


@pytest.mark.parametrize("name", names())
def test_fused_never_passes_an_underflowed_phi_or_dphi_on_as_an_exact_zero(name):
    """φ or φ' itself below float64's range (GELU(-40) ≈ -1.5e-348, softplus'(-800), ELU'(-800)) came out an exact-
    looking 0 gradient, unflagged, where no product of the chain rule underflowed. The mpmath oracle says what is
    exact: a 0 the engine returns must be one, else the call is reported."""
    chain = Chain(2, name)
    x, y, B = np.ones(5), np.full(5, 0.5), np.zeros(2)
    W = np.array([[-40.0, -800.0, 800.0, 0.0, 1.0], np.ones(5)])
    ref = reference(chain, x, y, W, B)
    try:
        g = gradients(chain, x, y, W, B, engine="fused")
    except (UnderflowReport, OverflowReport):
        assert any(v != 0 and abs(v) < 2.3e-308 or abs(v) > 1.8e308 for v in ref.ravel()), ref  # a true report
        return
    assert all(ref[i] == 0 for i in zip(*np.nonzero(g == 0))), (g, ref)
    assert_close_rowwise(g, as_floats(ref), 1e-12)


@pytest.mark.parametrize("name", ["linear", "relu", "gelu"])
def test_a_pre_activation_that_underflowed_to_zero_is_reported(name):
    """z_1 = w_1·x = 1e-400 rounds to 0: h_1 = φ(0) = 0 passed the loss of it on as an exact 0 gradient, and ReLU's
    kink (φ'(0) = 0) made g_1, truly -1e-200 and well within range, an exact-looking -0."""
    chain = Chain(3, name)
    x, y, W = np.array([1e-200, 1.0]), np.array([0.5, 0.5]), np.array([[1e-200, 1.0], [1.0, 1.0], [1.0, 1.0]])
    ref = reference(chain, x, y, W, np.zeros(3))
    assert ref[1, 0] != 0  # g_2 = a_2·h_1, h_1 ≈ 1e-400: not 0
    for engine in ("fused", "chunked"):
        with pytest.raises(UnderflowReport, match="came out 0|underflows"):
            gradients(chain, x, y, W, np.zeros(3), engine=engine)


@pytest.mark.parametrize("name", ["leaky_relu", "relu", "expr:abs(z)"])
def test_a_pre_activation_lost_to_underflow_takes_phi_prime_on_its_side(name):
    """z_1 = w_1·x = ±1e-400 rounds to 0, where φ'(0) is the kink's convention: leaky ReLU'(0) = 0.01 made
    g_1 = 1e-202 where it is 1e-200 (nothing 0, so nothing reported); the slope on the side of the lost z is
    the answer (mpmath)."""
    chain = Chain(1, name)
    x, y, W = np.array([1e-200, -1e-200, 1.0]), np.full(3, 0.5), np.array([[1e-200, 1e-200, 1.0]])
    want = as_floats(reference(chain, x, y, W, np.zeros(1)))
    # the fused kernel for |z| alone would cost a 6 s compile; ReLU's and leaky ReLU's the suite compiles anyway
    for engine in ("chunked",) if name.startswith("expr:") else ("fused", "chunked"):
        assert_close_rowwise(gradients(chain, x, y, W, np.zeros(1), engine=engine), want, 1e-12)


def test_a_residual_sum_that_cancelled_to_zero_is_reported():
    """h_1 = x + tanh(-40) = 1 − 1 is 0 in float64 (truly 3.6e-35), so g_2 = a_2·h_1 came out an exact-looking 0 with
    nothing raised: no product underflowed and a cancelling sum raises no flag."""
    chain, x, y, W = Chain(2, "tanh", residual=True), np.ones(2), np.full(2, 0.5), np.array([[-40.0, 1.0], [1.0, 1.0]])
    assert reference(chain, x, y, W, np.zeros(2))[1, 0] != 0
    for engine in ("fused", "chunked"):
        with pytest.raises(UnderflowReport, match="came out 0"):
            gradients(chain, x, y, W, np.zeros(2), engine=engine)


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_fused_losses_and_samples_across_block_edges(loss):
    chain = Chain(7, "sigmoid", loss=loss)
    rng = np.random.default_rng(5)
    blk = fused.block_size(7, 8)
    for m in (1, blk - 1, blk + 3, 3 * blk):
        x, W, B = rng.standard_normal(m), rng.standard_normal((7, m)), rng.standard_normal(7)
        y = rng.uniform(0, 1, m)
        g = gradients(chain, x, y, W, B, engine="fused")
        assert g.shape == (7, m)
        np.testing.assert_allclose(g, gradients(chain, x, y, W, B, engine="chunked"), rtol=1e-11, atol=1e-300)
        ref = as_floats(reference(chain, x[:5], y[:5], W[:, :5], B))
        assert_close_rowwise(g[:, :5], ref, 1e-12)


def test_fused_is_deterministic_across_thread_counts_and_blocks():
    chain = Chain(9, "tanh", residual=True)
    rng = np.random.default_rng(2)
    x, y, W, B = network_inputs(rng, 9, 5000, True)
    one = gradients(chain, x, y, W, B, engine="fused", threads=1)
    assert np.array_equal(one, gradients(chain, x, y, W, B, engine="fused", threads=2))
    X, Y, W2, B2 = (np.ascontiguousarray(a) for a in (x, y, W, B))
    assert np.array_equal(one, fused.gradients(chain, X, Y, W2, B2, block=100))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("engine", ["fused", "chunked"])
def test_out_receives_exactly_the_fresh_result(engine, dtype):
    # Row starts at every alignment (M is odd) and a result 8 bytes past a 64-byte line: the fused engine
    # streams each row's aligned middle with non-temporal stores and copies its ends.
    rng = np.random.default_rng(4)
    n, m = 5, 3 * fused.block_size(5, np.dtype(dtype).itemsize) + 7
    for per_sample in (False, True):
        chain = Chain(n, "sigmoid", residual=per_sample)
        x, y, W, B = network_inputs(rng, n, m, per_sample)
        fresh = gradients(chain, x, y, W, B, dtype=dtype, engine=engine)
        buf = np.full(n * m + 32, np.nan, dtype=dtype)
        skew = (-buf.ctypes.data % 64) // buf.itemsize + 1  # one element past a line
        out = buf[skew:skew + n * m].reshape(n, m)
        assert gradients(chain, x, y, W, B, dtype=dtype, engine=engine, out=out) is out
        assert np.array_equal(out, fresh)
        assert np.isnan(buf[:skew]).all() and np.isnan(buf[skew + n * m:]).all()  # nothing written outside


def test_deep_chains_take_scratch_that_is_not_kept():
    # 2 threads × (2·3000 + 4) rows × 128 samples × 8 bytes = 12 MB, over SCRATCH_KEPT: allocated per call
    chain = Chain(3000, "tanh")
    rng = np.random.default_rng(8)
    x, y, W, B = network_inputs(rng, 3000, 300, False)
    assert 2 * 6004 * fused.block_size(3000, 8) * 8 > fused.SCRATCH_KEPT
    # 3000 tanh layers: the first layers' gradients underflow, which is accepted here (the subject is scratch)
    g = gradients(chain, x, y, W, B, engine="fused", threads=2, allow_underflow=True)
    np.testing.assert_allclose(g, gradients(chain, x, y, W, B, engine="chunked", allow_underflow=True), rtol=1e-9,
                               atol=1e-300)


def test_fused_gradients_checks_the_out_it_is_given():
    chain = Chain(3, "sigmoid")
    x = np.linspace(-1, 1, 50)
    W, B = np.full((3, 1), 0.5), np.zeros((3, 1))
    for out in (np.empty((4, 50)), np.empty((3, 58)), np.empty((3, 49)), np.empty((3, 50), np.float32),
                np.empty((50, 3)).T, [[0.0] * 50] * 3):
        with pytest.raises(InvalidValueError, match=r"C-contiguous, writable \(3, 50\) array of float64"):
            fused.gradients(chain, x, x, W, B, out=out)


def test_fused_float32_within_its_tolerance():
    rng = np.random.default_rng(3)
    x, y, W, B = network_inputs(rng, 10, 3000, True)
    c = Chain(10, "sigmoid")
    g32 = gradients(c, x, y, W, B, dtype="float32", engine="fused")
    assert g32.dtype == np.float32
    g64 = gradients(c, x, y, W, B, engine="chunked")
    np.testing.assert_allclose(g32, g64, rtol=2e-4, atol=1e-7 * np.abs(g64).max())


def test_fused_repairs_blocks_whose_local_formulas_overflow():
    # softplus' = e^z/(1 + e^z) is inf/inf at z = 800 and softplus = log1p(e^z) is inf: the kernel flags the
    # block, the chunked engine redoes it exactly, and the other blocks stay as the kernel computed them.
    c = Chain(3, "softplus")
    blk = fused.block_size(3, 8)
    m = 3 * blk
    x = np.linspace(-2, 2, m)
    x[blk + 7] = 1.0
    W = np.ones((3, m))
    W[0, blk + 7] = 800.0
    X, Y, W2, B2 = x, np.full(m, 0.3), W, np.zeros((3, 1))
    raw, bad, low = fused.gradients_and_bad(c, X, Y, W2, B2)
    assert bad == [slice(blk, 2 * blk)] and low == []
    g = gradients(c, x, 0.3, W, 0.0, engine="fused")
    assert np.isfinite(g).all()
    cols = [0, blk + 7, m - 1]
    np.testing.assert_allclose(g[:, cols], as_floats(reference(c, x[cols], 0.3, W[:, cols], 0.0)), rtol=1e-12)
    assert np.array_equal(g[:, : blk], raw[:, : blk])


# ----------------------------------------------------------------------------- choosing the engine


def test_auto_takes_fused_once_compiled_or_for_huge_work(monkeypatch, empty_kernel_cache):
    calls = []
    real = fused.gradients_and_bad
    monkeypatch.setattr(fused, "gradients_and_bad", lambda *a, **k: calls.append(1) or real(*a, **k))
    c = Chain(4, "expr:z/(2 + abs(z))")
    assert numeric.choose_engine(c, 2) == "chunked" and not registry.FUSED.kernels.compiled(c)
    gradients(c, [1.0, 2.0], 0.0, [0.5] * 4)
    assert calls == []  # 8 numbers of work: compiling (seconds) would cost more than the answer
    f = numeric.compile(c)  # compiling is compile()'s job: the kernel is built here ...
    assert registry.FUSED.kernels.compiled(c) and not registry.FUSED.kernels.compiled(c, "float32") and calls == [1]
    assert numeric.choose_engine(Chain(9, "expr:z/(2 + abs(z))"), 2) == "fused"  # ... for any depth
    f([1.0, 2.0], 0.0, [0.5] * 4)
    gradients(c, [1.0, 2.0], 0.0, [0.5] * 4)
    assert calls == [1, 1, 1]
    gradients(c, [1.0, 2.0], 0.0, [0.5] * 4, log=True)  # the log domain is chunked-only
    gradients(c, [1.0, 2.0], 0.0, [0.5] * 4, engine="chunked")
    gradients(Chain(2, ["relu", "tanh"]), [1.0], 0.0, [0.5] * 2)  # so are mixed activations
    assert calls == [1, 1, 1]
    monkeypatch.setattr(registry, "FUSED_MIN_WORK", 8)  # huge work compiles on the spot
    assert numeric.choose_engine(Chain(4, "expr:z/(3 + abs(z))"), 2) == "fused"
    assert numeric.choose_engine(Chain(4, "expr:z/(3 + abs(z))"), 1) == "chunked"


def test_auto_leaves_activations_with_scalar_libm_calls_to_numpy(monkeypatch):
    monkeypatch.setattr(registry, "FUSED_MIN_WORK", 8)
    for name, calls in (("expr:log(2 + z**2)", {"log"}), ("expr:erf(log(2 + z**2))", {"log"})):
        c = Chain(3, name)
        assert fused.scalar_calls(c.activations[0]) == calls and numeric.choose_engine(c, 10**6) == "chunked"
        assert numeric.choose_engine(c, 10**6, engine="fused") == "fused"  # asked for, it still runs
    for name in ("sigmoid", "tanh", "softplus", "elu", "selu", "silu", "relu", "expr:z/(1 + abs(z))",
                 "expr:z*tanh(z)", "expr:Max(z, z/10)", "expr:sqrt(1 + z**2)", "expr:log(1 + z**2)",
                 "gelu", "erf", "expr:erf(z)/2 + z", "expr:z*erf(1/(1 + z**2))",  # erf, erfc: vectorised (verf)
                 "expr:z*tanh(log(1 + exp(z)))"):  # mish: log(1 + e^z) is log1p(e^z) in φ' too (vlog1p)
        c = Chain(3, name)
        assert not fused.scalar_calls(c.activations[0]) and numeric.choose_engine(c, 10) == "fused", name
    monkeypatch.setattr(fused, "warm", lambda *a: pytest.fail("compile() warmed a kernel auto will not use"))
    numeric.compile(Chain(3, "expr:log(2 + z**2)"))


def test_mish_agrees_with_numpy():
    c = Chain(6, "expr:z*tanh(log(1 + exp(z)))")
    rng = np.random.default_rng(9)
    x, y, W, B = network_inputs(rng, 6, 3000, True)
    np.testing.assert_allclose(gradients(c, x, y, W, B, engine="fused"), gradients(c, x, y, W, B, engine="chunked"),
                               rtol=1e-11, atol=1e-300)


def test_engine_errors_name_the_problem(monkeypatch):
    with pytest.raises(InvalidValueError, match="engine must be one of auto, fused, chunked, cuda, got 'gpu'"):
        gradients(Chain(2, "relu"), 1.0, 0.0, [1.0, 1.0], engine="gpu")
    with pytest.raises(InvalidValueError, match="one activation in every layer; this one has 2"):
        gradients(Chain(2, ["relu", "tanh"]), 1.0, 0.0, [1.0, 1.0], engine="fused")
    with pytest.raises(InvalidValueError, match=r"not the log domain \(log=True\)"):
        gradients(Chain(2, "relu"), 1.0, 0.0, [1.0, 1.0], engine="fused", log=True)
    with pytest.raises(InvalidValueError, match="engine must be one of"):
        numeric.compile(Chain(2, "relu"), engine="numba")
    monkeypatch.setattr(fused, "available", lambda: False)
    with pytest.raises(BackendUnavailableError, match=r"needs numba: pip install symvg\[fast\]"):
        gradients(Chain(2, "relu"), 1.0, 0.0, [1.0, 1.0], engine="fused")
    monkeypatch.setattr(registry, "FUSED_MIN_WORK", 1)
    assert gradients(Chain(2, "relu"), 2.0, 0.0, [0.5, 3.0]).tolist() == [[36.0], [6.0]]  # auto falls back
    assert numeric.compile(Chain(2, "relu"))(2.0, 0.0, [0.5, 3.0]).tolist() == [[36.0], [6.0]]


def test_cli_eval_engine_fused_gives_the_chunked_numbers(run):
    args = ["eval", "--layers", "6", "--samples", "3000", "--seed", "4", "--format", "json"]
    import json

    code, out, err = run(*args, "--engine", "fused")
    assert code == 0, err
    fused_stats = json.loads(out)
    code, out, err = run(*args, "--engine", "chunked")
    chunked_stats = json.loads(out)
    assert (fused_stats["engine"], chunked_stats["engine"]) == ("fused", "chunked")
    for a, b in zip(fused_stats["layers"], chunked_stats["layers"]):
        assert a["k"] == b["k"] and a["median_abs"] == pytest.approx(b["median_abs"], rel=1e-12)
        assert a["frac_below_tol"] == b["frac_below_tol"]
    code, out, _ = run("eval", "--layers", "6", "--samples", "10", "--engine", "fused")
    assert code == 0 and "float64 on numpy (fused)" in out.splitlines()[0]


@pytest.mark.parametrize("where", ["x", "y", "weights", "biases", "shared weights"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fused_refuses_nan_and_inf_inputs_found_in_its_own_pass(where, bad):
    # the fused engine skips prepare's full read of W and B: its kernel flags the block instead
    c = Chain(4, "sigmoid")  # sigmoid(±inf) is finite, so a missed inf would pass silently
    rng = np.random.default_rng(9)
    m = 3 * fused.block_size(4, 8) + 5
    x, y, W, B = rng.standard_normal(m), rng.standard_normal(m), rng.standard_normal((4, m)), rng.standard_normal((4, m))
    i = m - 2
    if where == "shared weights":
        W = rng.standard_normal(4)
        W[2] = bad
    else:
        {"x": x, "y": y, "weights": W[1], "biases": B[3]}[where][i] = bad
    name = where.split()[-1]
    with pytest.raises(InvalidValueError, match=f"^{name} must be finite numbers"):
        gradients(c, x, y, W, B, engine="fused")


def test_fused_from_several_python_threads_at_once():
    # each call runs on its own threads with its own scratch (each thread keeps one): concurrent calls from
    # Python threads must give every caller its own, exact result
    from concurrent.futures import ThreadPoolExecutor

    chain = Chain(5, "sigmoid")
    rng = np.random.default_rng(8)
    x, y, W, B = network_inputs(rng, 5, 20000, True)
    want = gradients(chain, x, y, W, B, engine="fused")
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: gradients(chain, x, y, W, B, engine="fused"), range(8)))
    assert all(np.array_equal(g, want) for g in got)


def test_one_compilation_serves_every_input_layout():
    # compile() builds the kernel once; scalar or array x and y, shared or per-sample W and B must not
    # trigger another numba specialisation (a read-only broadcast view used to)
    c = Chain(3, "expr:z/(2 + abs(z))")
    numeric.compile(c)
    kern = fused._kernel(*fused._key(c, "float64"))
    assert len(kern.signatures) == 1
    rng = np.random.default_rng(6)
    for x, y, W, B in [(1.0, 0.0, [0.5] * 3, None), (rng.standard_normal(9), 2.0, rng.standard_normal((3, 9)), 0.1),
                       (rng.standard_normal(9), rng.standard_normal(9), [0.5] * 3, rng.standard_normal((3, 9))),
                       (np.float64(2.0), rng.standard_normal(4), rng.standard_normal((3, 1)), [0.0] * 3)]:
        g = gradients(c, x, y, W, B)
        np.testing.assert_allclose(g, gradients(c, x, y, W, B, engine="chunked"), rtol=1e-13)
    assert len(kern.signatures) == 1


def test_integer_literals_beyond_int64_compile():
    # numba types Python ints as int64: 10**30 in a user expression must reach it as a float. The kernel's
    # φ, φ' are pair_source's text; compiled alone (fused_kernel.pair) it costs 1.5 s, not a kernel's 6 s
    from symvg.engines import fused_kernel

    act = get("expr:10**30*z + z")
    assert "e+30" in fused_kernel.pair_source(act)  # a float literal, not an int numba would type as int64
    h, d = fused_kernel.pair(act, "float64")(1e-31)
    assert h == pytest.approx(1e-31 * (10**30 + 1), rel=1e-15) and d == float(10**30 + 1)


def test_a_kernel_numba_cannot_compile_falls_back_or_is_refused(monkeypatch, empty_kernel_cache):
    from numba.core.errors import TypingError

    def broken(*key):
        def kern(*args):
            raise TypingError("Failed in nopython mode pipeline (step: nopython frontend)\nmore")
        return kern
    monkeypatch.setattr(fused, "_kernel", broken)
    c = Chain(3, "expr:z/(5 + abs(z))")
    with pytest.raises(fused.UnsupportedError, match=r"cannot compile expr:z/\(5 \+ abs\(z\)\): Failed in nopython"):
        gradients(c, [1.0, 2.0], 0.0, [0.5] * 3, engine="fused")
    assert issubclass(fused.UnsupportedError, InvalidValueError)  # the CLI's exit status 2
    want = gradients(c, [1.0, 2.0], 0.0, [0.5] * 3, engine="chunked")
    f = numeric.compile(c)  # auto: the failed compile is noted, and NumPy evaluates it
    assert "cannot compile" in registry.FUSED.kernels.failure(c) and numeric.choose_engine(c, 10**12) == "chunked"
    np.testing.assert_array_equal(f([1.0, 2.0], 0.0, [0.5] * 3), want)


def test_sample_reports_the_engine_that_ran_for_its_dtype(empty_kernel_cache):
    from symvg.engines.sampling import sample

    c = Chain(3, "sigmoid")  # the float32 kernel test_out_receives_exactly_the_fresh_result builds too
    numeric.compile(c, dtype="float32")
    assert sample(c, samples=50, dtype="float32", seed=0).engine == "fused"
    assert sample(c, samples=50, dtype="float64", seed=0).engine == "chunked"  # that kernel is not built


def test_fused_uses_every_core_unless_told(monkeypatch):
    # one run of blocks per thread: every core by default, as many as asked, never more than the blocks; the
    # calling thread takes the first run and the pool the others
    cores = numba.config.NUMBA_NUM_THREADS
    assert len(fused.runs(1000)) == min(cores, 1000) and fused.runs(1000, threads=1) == [(0, 1000)]
    assert len(fused.runs(3, threads=64)) == min(3, cores)
    for nblocks, threads in [(7, 2), (5, 3), (64, 5), (1, 1)]:
        spans = fused.runs(nblocks, threads)
        assert spans[0][0] == 0 and spans[-1][1] == nblocks and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    seen = []
    real = fused._launch
    monkeypatch.setattr(fused, "_launch", lambda *a: seen.append(a[-1]) or real(*a))
    c = Chain(2, "sigmoid")
    x = np.linspace(-1, 1, 10 * fused.block_size(2, 8))  # ten blocks
    gradients(c, x, 0.0, [1.0, 1.0], engine="fused")
    gradients(c, x, 0.0, [1.0, 1.0], engine="fused", threads=1)
    gradients(c, [1.0], 0.0, [1.0, 1.0], engine="fused")  # one block: no worker thread woken
    assert len(seen[0]) == min(cores, 10) and len(seen[1]) == 1 and len(seen[2]) == 1


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fused_saturated_bce_matches_mpmath_or_flags(dtype):
    # before: inf (z_N = 60, y = 0) and NaN (y = 1) from (h - y)/(h(1 - h)) at h = 1; now ∂L/∂z_N = σ(z) - y
    chain = Chain(3, "sigmoid", loss="bce")
    rel = 1e-12 if dtype == "float64" else 2e-5
    seen = set()
    for z_last in (40.0, 60.0, 800.0, -40.0, -60.0, -800.0):
        x, W, B = saturated_bce_inputs(z_last, dtype)
        for y in (0.0, 1.0, 0.25):
            seen.add(assert_matches_mpmath_or_flags(
                lambda: gradients(chain, x, y, W, B, dtype=dtype, engine="fused"),
                chain, x, y, W.astype(float), B.astype(float), dtype, rel))
    assert seen == {"ok", "flagged"}


def test_fused_reports_overflow_and_underflow_found_in_its_pass():
    from symvg.errors import OverflowReport, UnderflowReport

    with pytest.raises(OverflowReport):
        gradients(Chain(3, "sigmoid"), [1e308], 0.0, [1e308] * 3, engine="fused")
    W = np.full((200, 3), 0.05)  # |w·σ'| ≤ 1/80 per layer: the first layers' gradients fall below 1e-324
    with pytest.raises(UnderflowReport):
        gradients(Chain(200, "sigmoid"), [1.0, 2.0, 3.0], 0.0, W, engine="fused")
    g = gradients(Chain(200, "sigmoid"), [1.0, 2.0, 3.0], 0.0, W, engine="fused", allow_underflow=True)
    assert (g[0] == 0).all() and (g[-1] != 0).all()


@pytest.mark.slow  # compiles SiLU's pair with numba (~4 s here): the one activation in the catalogue that does this
def test_fused_flags_a_generic_formula_that_overflows_on_the_way_to_a_finite_value():
    # SiLU' as SymPy writes it squares e^{-z} = e^400 to inf at z = -400 and came out +1.9e-174 (truly -7.6e-172):
    # finite, so the block was not flagged and the wrong value returned. Its guard (repair.guard) is NaN there,
    # which flags the block for the chunked engine's exact repair; elsewhere the guard adds 0
    pair = fused.pair(get("silu"), "float64")
    assert math.isnan(pair(-400.0)[1]) and math.isnan(pair(-800.0)[1])
    for zv in (-300.0, -1.0, 0.0, 2.0, 800.0):  # σ(z)(1 + z·σ(-z)), independently
        with mpmath.workdps(50):
            s = 1 / (1 + mpmath.exp(-zv))
            want = float(s * (1 + zv * mpmath.exp(-zv) * s))
        assert abs(pair(zv)[1] - want) <= 1e-14 * abs(want), zv
