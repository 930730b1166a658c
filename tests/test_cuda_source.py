"""The CuPy path without a GPU: every ElementwiseKernel body symvg prints is compiled as C99 with gcc and
run, on its own against the NumPy kernels, and inside symvg.engines.chunked's CUDA control flow (one kernel per
layer, the device-side repair of overflowing formulas) with NumPy standing in for CuPy.

Strict C99 (``-std=c99``) leaves glibc's M_PI and friends undefined, as NVRTC does, so the kernels'
preamble has to supply them. Where CUDA exists, tests/test_numeric.py runs the real thing.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import types

import numpy as np
import pytest

from symvg.engines import chunked, numeric
from symvg.engines.plan import plan, prepare
from symvg.engines.reference import reference
from symvg.symbolic.activations import get, names
from symvg.symbolic.chain import Chain
from symvg.engines.csource import elementwise_source
from symvg.engines.kernels import fp_guard, layer_kernel, local

CC = shutil.which("gcc") or shutil.which("cc")
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler")

ACTS = [*names(), "expr:z/(1+abs(z))"]
CTYPES = {"float64": "double", "float32": "float"}


def _c_function(src, fname: str, ctype: str) -> str:
    return f"""
#define T {ctype}
void {fname}(long n, const T *hp_, const T *w_, const T *b_, T *h_, T *d_) {{
    for (long i = 0; i < n; ++i) {{
        T hp = hp_[i], w = w_[i], b = b_[i], h, d;
        {src.operation}
        h_[i] = h; d_[i] = d;
    }}
}}
#undef T
"""


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """One shared library holding every (activation, residual, dtype) kernel body symvg prints."""
    funcs, index = [], {}
    for i, name in enumerate(ACTS):
        for residual in (False, True):
            src = elementwise_source(get(name), residual)
            for dtype, ctype in CTYPES.items():
                fname = f"k{i}_{int(residual)}_{dtype}"
                funcs.append(_c_function(src, fname, ctype))
                index[(name, residual, dtype)] = fname
    preamble = elementwise_source(get("gelu")).preamble
    code = "#include <math.h>\n" + preamble + "\n" + "\n".join(funcs)
    d = tmp_path_factory.mktemp("cuda_as_c")
    (d / "k.c").write_text(code)
    r = subprocess.run([CC, "-std=c99", "-O1", "-shared", "-fPIC", "-o", str(d / "k.so"), str(d / "k.c"), "-lm"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[:3000]
    lib = ctypes.CDLL(str(d / "k.so"))

    def kernel(name, residual, dtype):
        f = getattr(lib, index[(name, residual, dtype)])

        def run(hp, w, b, h, d):  # ElementwiseKernel's calling convention, broadcasting scalars
            n = h.shape[0]
            args = [np.ascontiguousarray(np.broadcast_to(np.asarray(a, dtype=dtype), (n,))) for a in (hp, w, b)]
            ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
            f(ctypes.c_long(n), *map(ptr, args), ptr(h), ptr(d))
        return run
    return kernel


def test_preamble_defines_what_nvrtc_lacks():
    src = elementwise_source(get("gelu"))
    assert "M_SQRT2" in src.operation and "#define M_SQRT2 1.4142135623730950488" in src.preamble
    assert "#define M_PI 3.14159265358979323846" in src.preamble


@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_printed_kernel_matches_the_numpy_kernel(library, name, dtype):
    far = [-800.0, -720.0, -100.0, -89.0, 89.0, 100.0, 720.0, 800.0]  # past exp's range in one dtype or both
    zs = np.concatenate([np.linspace(-30, 30, 601), [-1e-300, 0.0, 1e-300], far]).astype(dtype)
    # float32: the C body rounds its subexpressions in another order than NumPy (and promotes its double
    # literals), so near a root of φ' (GELU at -0.75, SiLU at -1.28) a few ulps of a cancelling sum show
    rtol, scale = (1e-12, 1e-300) if dtype == "float64" else (1e-5, 1e-6)
    for residual in (False, True):
        hp = np.full_like(zs, 0.75) if residual else zs
        w, b = (np.ones_like(zs), zs - hp) if residual else (np.ones_like(zs), np.zeros_like(zs))
        h, d = np.empty_like(zs), np.empty_like(zs)
        library(name, residual, dtype)(hp, w, b, h, d)
        z_used = hp * w + b  # what the kernel saw, rounded as it rounds
        want_h, want_d = np.empty_like(zs), np.empty_like(zs)
        with fp_guard():
            layer_kernel(local(get(name)), np)(z_used.copy(), want_h, want_d)
        if residual:
            want_h = hp + want_h
        # A generic formula may overflow on the device (softplus' = e^z/(1+e^z) at 800): chunked repairs
        # those entries on the host (see the control-flow test below). The proved forms never do.
        finite = np.isfinite(h) & np.isfinite(d)
        if local(get(name)).kind != "generic":
            assert finite.all(), (name, zs[~finite])
        tiny = 5e-324 if dtype == "float64" else 1.5e-45
        for got, want, what in ((h, want_h, "φ"), (d, want_d, "φ'")):
            np.testing.assert_allclose(got[finite], want[finite], rtol=rtol,
                                       atol=max(4 * tiny, scale * float(np.abs(want[np.isfinite(want)]).max())),
                                       err_msg=f"{name} {what}, residual={residual}")


class _NumpyAsCupy(types.SimpleNamespace):
    """NumPy under another name, so symvg.engines.chunked takes its CUDA branch (``xp is not np``)."""

    def __getattr__(self, attr):
        return getattr(np, attr)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cuda_control_flow_with_c_kernels_matches_the_chunked_engine(library, monkeypatch, dtype):
    monkeypatch.setattr(chunked, "_cupy_layer", lambda loc, residual: library(loc.activation.name, residual, dtype))
    rng = np.random.default_rng(4)
    xp = _NumpyAsCupy()
    for chain in (Chain(6, "sigmoid"), Chain(5, "gelu", residual=True), Chain(4, "softplus", loss="mse")):
        n, m = chain.depth, 300
        x, y = rng.standard_normal(m), rng.standard_normal(m)
        W, B = rng.standard_normal((n, m)), 0.5 * rng.standard_normal(n)
        if chain.activations[0].name == "softplus":
            W[0, :3] = 800.0  # e^z overflows: softplus' = e^z/(1+e^z) is inf/inf there, repaired on the host
            x[:3] = 1.0
        p = plan(chain)
        inp = prepare(chain, x, y, W, B, np, dtype)
        with fp_guard():
            got = chunked.run(p, xp, inp, np.dtype(dtype), False, 1 << 20, 1)
        # float32: a few of the softplus chain's gradients are below 1e-45 (10^-128): both routes give 0
        want = numeric.gradients(chain, x, y, W, B, dtype=dtype, engine="chunked", allow_underflow=True)
        assert np.isfinite(got).all(), chain
        np.testing.assert_allclose(got, want, rtol=1e-10 if dtype == "float64" else 2e-4,
                                   atol=1e-6 * np.abs(want).max() if dtype == "float32" else 1e-300)


@pytest.mark.parametrize("dtype, z", [("float64", -400.0), ("float32", -60.0)])
def test_a_device_formula_that_overflows_on_the_way_to_a_finite_value_is_repaired(library, monkeypatch, dtype, z):
    # SiLU' as SymPy writes it squares e^{-z} to inf (float64 from z < -355, float32 from z < -44) and ended finite
    # and wrong (+1.9e-174 at -400, truly -7.6e-172), so the host never redid it; its guard now makes it NaN there
    from symvg.engines.reference import reference

    h, d = np.empty(1, dtype=dtype), np.empty(1, dtype=dtype)
    library("silu", False, dtype)(np.array([1.0]), np.array([z]), np.array([0.0]), h, d)
    assert np.isnan(d[0]) or dtype == "float32"  # C's exp of a float is double's: no overflow in the C twin
    monkeypatch.setattr(chunked, "_cupy_layer", lambda loc, residual: library(loc.activation.name, residual, dtype))
    chain, x, W = Chain(2, "silu"), np.array([1.0, 1.0]), np.array([[z, 1.0], [1.0, 1.0]])
    with fp_guard():
        got = chunked.run(plan(chain), _NumpyAsCupy(), prepare(chain, x, 1.0, W, None, np, dtype), np.dtype(dtype),
                          False, 1 << 20, 1)
    want = np.vectorize(float)(reference(chain, x, 1.0, W.astype(dtype)))
    np.testing.assert_allclose(got, want, rtol=1e-12 if dtype == "float64" else 1e-5)


def test_cuda_control_flow_reports_an_overflowed_pre_activation(library, monkeypatch):
    """z = w·h + b beyond float64 is reported as such, never answered with φ'(±inf) = 0 (tanh, sigmoid: the
    overflow-safe forms) or repaired on the host into a finite φ' (softplus: the generic path)."""
    from symvg.errors import OverflowReport

    monkeypatch.setattr(chunked, "_cupy_layer", lambda loc, residual: library(loc.activation.name, residual, "float64"))
    for name in ("tanh", "sigmoid", "softplus"):
        chain = Chain(3, name)
        W = np.array([[1.0, 1.0], [1e308, 1.0], [1.0, 1.0]])  # sample 0: z_2 = 1e308·φ(2) + 1e308 = inf
        inp = prepare(chain, np.array([2.0, 0.5]), 0.5, W, np.array([0.0, 1e308, 0.0]), np)
        with fp_guard(), pytest.raises(OverflowReport, match="pre-activation z_k") as info:
            chunked.run(plan(chain), _NumpyAsCupy(), inp, np.dtype("float64"), False, 1 << 20, 1)
        # layers 1 and 2 go through φ'(z_2); softplus(inf) = inf makes z_3 overflow too
        assert info.value.layers == ((1, 2, 3) if name == "softplus" else (1, 2)), name


LOSS_ACTS = ["sigmoid", "hard_sigmoid"]


@pytest.fixture(scope="module")
def loss_library(tmp_path_factory):
    """The printed BCE loss kernels (∂L/∂z_N through the logit) as C, one per activation and dtype."""
    from symvg.engines.csource import loss_source

    funcs, index = [], {}
    for i, name in enumerate(LOSS_ACTS):
        src = loss_source(get(name), "bce")
        for dtype, ctype in CTYPES.items():
            fname = f"loss{i}_{dtype}"
            funcs.append(f"""
#define T {ctype}
void {fname}(long n, const T *hp_, const T *w_, const T *b_, const T *y_, T *a_) {{
    for (long i = 0; i < n; ++i) {{
        T hp = hp_[i], w = w_[i], b = b_[i], y = y_[i], a;
        {src.operation}
        a_[i] = a;
    }}
}}
#undef T
""")
            index[(name, dtype)] = fname
    code = "#include <math.h>\n" + loss_source(get("sigmoid"), "bce").preamble + "\n" + "\n".join(funcs)
    d = tmp_path_factory.mktemp("loss_as_c")
    (d / "l.c").write_text(code)
    r = subprocess.run([CC, "-std=c99", "-O1", "-shared", "-fPIC", "-o", str(d / "l.so"), str(d / "l.c"), "-lm"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[:3000]
    lib = ctypes.CDLL(str(d / "l.so"))

    def kernel(name, dtype):
        f = getattr(lib, index[(name, dtype)])

        def run(hp, w, b, y, a):
            n = a.shape[0]
            args = [np.ascontiguousarray(np.broadcast_to(np.asarray(v, dtype=dtype), (n,))) for v in (hp, w, b, y)]
            ptr = lambda v: v.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
            f(ctypes.c_long(n), *map(ptr, args), ptr(a))
        return run
    return kernel


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_printed_bce_loss_kernel_matches_mpmath_at_saturation(loss_library, dtype):
    import mpmath

    zs = np.array([-800.0, -60.0, -40.0, -2.5, 0.0, 1.5, 36.0, 40.0, 60.0, 800.0])
    for name in LOSS_ACTS:
        for yv in (0.0, 1.0, 0.25):
            a = np.empty(zs.shape, dtype=dtype)
            loss_library(name, dtype)(zs, 1.0, 0.0, yv, a)
            for zv, got in zip(zs, a):
                with mpmath.workdps(60 + int(abs(zv))):  # 1 − σ(800) needs ~350 digits
                    z_, y_ = mpmath.mpf(float(np.asarray(zv, dtype=dtype))), mpmath.mpf(yv)
                    if name == "sigmoid":
                        p, dp = 1 / (1 + mpmath.exp(-z_)), mpmath.exp(-z_) / (1 + mpmath.exp(-z_)) ** 2
                    else:
                        p, dp = min(max(z_ / 6 + mpmath.mpf(1) / 2, 0), 1), (mpmath.mpf(1) / 6 if -3 < z_ < 3 else 0)
                    if (p == 1 and yv != 1) or (p == 0 and yv != 0):
                        assert np.isnan(got), (name, zv, yv, got)  # L = -log 0: no derivative
                        continue
                    # the textbook ∂L/∂h·φ' where it is defined; 0 where φ' = 0 and the loss is finite
                    want = 0 if dp == 0 else (p - y_) / (p * (1 - p)) * dp
                tiny = np.finfo(dtype).tiny
                assert abs(float(got) - float(want)) <= 4 * np.finfo(dtype).eps * abs(float(want)) + tiny * 4, (
                    name, zv, yv, got, float(want))


def test_cuda_control_flow_runs_the_printed_bce_kernel(library, loss_library, monkeypatch):
    monkeypatch.setattr(chunked, "_cupy_layer", lambda loc, residual: library(loc.activation.name, residual, "float64"))
    monkeypatch.setattr(chunked, "_cupy_loss", lambda p: loss_library(p.chain.activations[-1].name, "float64"))
    chain = Chain(3, "sigmoid", loss="bce")
    x = np.array([1.0, 1.0, 0.3])
    W = np.array([[0.5, 0.5, 1.0], [1.0, 1.0, -2.0], [70.0, -70.0, 0.7]])  # z_3 = ±61: h_3 rounds to 1 or 0
    y = np.array([0.0, 1.0, 0.25])
    p = plan(chain)
    inp = prepare(chain, x, y, W, np.zeros(3), np)
    with fp_guard():
        got = chunked.run(p, _NumpyAsCupy(), inp, np.dtype("float64"), False, 1 << 20, 1)
    ref = np.vectorize(float, otypes=[float])(reference(chain, x, y, W, np.zeros(3)))
    np.testing.assert_allclose(got, ref, rtol=1e-13, atol=0)
