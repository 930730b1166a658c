"""The whole-chain CUDA kernel without a GPU: its printed source is compiled as C99 behind a thin shim
(tests/conftest.py: the CUDA qualifiers defined away, one "thread" whose grid-stride loop visits every
sample), called with the very arguments the host side would launch it with, and checked against mpmath
(symvg.engines.reference.reference) and the NumPy engine.

Every variant is compiled once per session, all in one C file (one compiler run, -O0: ~70 kernels in ~1 s). Inputs are
float32 numbers, so one mpmath reference serves both dtypes.
"""

from __future__ import annotations

import ctypes

import mpmath
import numpy as np
import pytest

from symvg.engines import cuda as cuda_chain, numeric
from symvg.engines.plan import prepare
from symvg.engines.reference import reference
from symvg import errors
from symvg.symbolic.activations import get, names
from symvg.symbolic.chain import Chain
from symvg.engines.cuda import FLAG_NONFINITE, FLAG_REDO, FLAG_UNDERFLOW, SEG, chain_source, finish, kernel_key, launch_args
from symvg.engines.csource import elementwise_source
from symvg.engines.kernels import local

from conftest import C_COMPILER, CUDA_AS_C_SHIM, as_floats, assert_close_rowwise, compile_c

pytestmark = pytest.mark.skipif(C_COMPILER is None, reason="no C compiler")

ACTS = [*names(), "expr:z/(1+abs(z))"]
DTYPES = ("float64", "float32")
REL = {"float64": 1e-12, "float32": 3e-5}
DEEP = 2 * SEG + 5  # three segments: the checkpoint-and-recompute path
MIXED = ["tanh", "relu", "sigmoid"]
GENERIC01 = "expr:(1 + tanh(z))/2"  # an output proved inside (0, 1) that is not the logistic: BCE's generic form

CHAINS = ([Chain(4, a) for a in ACTS] + [Chain(4, a, residual=True) for a in ACTS]
          + [Chain(3, "sigmoid", loss="bce"), Chain(3, GENERIC01, loss="bce"), Chain(3, MIXED, loss="bce"),
             Chain(DEEP, "sigmoid"),
             Chain(DEEP, ["tanh", "sigmoid"] * (DEEP // 2) + ["sigmoid"], residual=True)])
LOG_CHAINS = [Chain(4, "sigmoid"), Chain(4, "relu", residual=True), Chain(3, "sigmoid", loss="bce"),
              Chain(DEEP, "tanh"), Chain(3, "softplus"), Chain(2, "gelu"), Chain(2, "tanh", residual=True)]


@pytest.fixture(scope="session")
def twin(tmp_path_factory):
    """``run(chain, x, y, W, B, dtype, log=False)`` → (G, S, flags, status) from the C-compiled kernel."""
    variants = {kernel_key(c, dt, log)[0] for dt in DTYPES for c, log in
                [(c, False) for c in CHAINS] + [(c, True) for c in LOG_CHAINS]}
    sources = [chain_source(k) for k in variants]
    preambles = list(dict.fromkeys(s.preamble for s in sources))
    lib = compile_c("\n".join([CUDA_AS_C_SHIM, *preambles, *(s.code for s in sources)]),
                    tmp_path_factory.mktemp("cuda_chain_as_c"), opt="-O0")

    def run(chain, x, y, W, B, dtype, log=False):
        key, layers = kernel_key(chain, dtype, log)
        inp = prepare(chain, x, y, W, B, np, dtype, check_finite=False)
        n, m = chain.depth, inp.samples
        G = np.full((n, m), np.nan, dtype=dtype)  # every entry must be written
        S = np.full((n, m), np.nan, dtype=dtype) if log else None
        flags, status = np.full(m, 255, dtype=np.uint8), np.zeros(1, dtype=np.uint32)
        args = launch_args(n, inp, np.array(layers, dtype=np.uint8), G, S, flags, status)
        conv = {np.int64: ctypes.c_longlong, np.int32: ctypes.c_int}
        getattr(lib, chain_source(key).name)(*[conv[type(a)](a) if type(a) in conv
                                               else ctypes.c_void_p(a.ctypes.data) for a in args])
        return inp, G, S, flags, status
    return run


def _inputs(rng, n, m, per_sample, scale=1.0):
    """float32-representable x, y, W, B (so both dtypes see the same exact inputs)."""
    shape = (n, m) if per_sample else (n,)
    f = lambda *s: rng.standard_normal(s).astype(np.float32).astype(np.float64)  # noqa: E731
    return f(m), f(m), scale * f(*shape), 0.5 * f(*shape)


@pytest.fixture(scope="module")
def refs():
    """mpmath references, computed once per (chain, seed, per_sample) for both dtypes."""
    cache = {}

    def get_ref(chain, seed, per_sample, m=5, bce_y=False):
        k = (chain, seed, per_sample, m)
        if k not in cache:
            rng = np.random.default_rng(seed)
            x, y, W, B = _inputs(rng, chain.depth, m, per_sample)
            if bce_y:
                y = rng.uniform(0, 1, m).astype(np.float32).astype(np.float64)
            cache[k] = (x, y, W, B), reference(chain, x, y, W, B, dps=40)
        return cache[k]
    return get_ref


def _check(twin, chain, data, ref, dtype):
    x, y, W, B = data
    inp, G, _, flags, status = twin(chain, x, y, W, B, dtype)
    assert not flags.any() and int(status[0]) == 0, flags
    assert_close_rowwise(G.astype(float), as_floats(ref), REL[dtype])


def test_every_layer_body_is_the_per_layer_printers():
    """No activation form is written twice: each device function's body is elementwise_source's."""
    key, _ = kernel_key(Chain(3, ["gelu", "elu", "sigmoid"], residual=True), "float64")
    code = chain_source(key).code
    for a in key.activations:
        assert elementwise_source(a, residual=True).operation.replace("\n", "\n    ") in code


@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("residual", [False, True])
def test_every_activation_matches_mpmath(twin, refs, name, residual):
    chain = Chain(4, name, residual=residual)
    for per_sample in (False, True):
        data, ref = refs(chain, 1, per_sample)
        for dtype in DTYPES:
            _check(twin, chain, data, ref, dtype)


@pytest.mark.parametrize("chain", [Chain(3, "sigmoid", loss="bce"), Chain(3, GENERIC01, loss="bce"),
                                   Chain(3, MIXED, loss="bce")],
                         ids=["sigmoid", "generic01", "mixed"])
def test_bce_matches_mpmath(twin, refs, chain):
    for per_sample in (False, True):
        data, ref = refs(chain, 2, per_sample, bce_y=True)
        if chain.residual:  # keep h_N inside (0, 1): a small x and small last weights
            x, y, W, B = data
            data = (0.05 * x, y, W * np.array([1, 1, 0.05])[:, None] if per_sample else W * [1, 1, 0.05], 0 * B)
            ref = reference(chain, *data, dps=40)
        for dtype in DTYPES:
            _check(twin, chain, data, ref, dtype)


def test_bce_at_saturation_through_the_logit(twin):
    """z_N = ±60 and ±800: h_N rounds to 0 or 1. Where csource.loss_source exists (the logit form) every
    gradient is finite and matches mpmath; before it, the textbook ∂L/∂h_N is flagged, never returned."""
    chain = Chain(2, "sigmoid", loss="bce")
    x = np.ones(6)
    W = np.array([[1.0] * 6, [60.0, -60.0, 800.0, -800.0, 60.0, 3.0]])
    y = np.array([0.0, 1.0, 0.0, 1.0, 1.0, 0.25])
    ref = reference(chain, x, y, W, np.zeros(2))
    for dtype in DTYPES:
        _, G, _, flags, _ = twin(chain, x, y, W.astype(dtype), np.zeros(2), dtype)
        ok = flags == 0
        assert ok.all(), flags  # through the logit (csource.loss_source): nothing to redo
        assert_close_rowwise(G[:, ok].astype(float), as_floats(ref[:, ok]), REL[dtype])


@pytest.mark.parametrize("chain", LOG_CHAINS, ids=lambda c: f"{c.name}-{c.depth}-{c.loss}")
def test_log_domain_matches_mpmath(twin, chain):
    rng = np.random.default_rng(3)
    x, y, W, B = _inputs(rng, chain.depth, 4, per_sample=True)
    if chain.loss == "bce":
        y = np.array([0.0, 1.0, 0.5, 0.25])
    ref = reference(chain, x, y, W, B, dps=40)
    lref = np.vectorize(lambda v: float(mpmath.log(abs(v))) if v != 0 else -np.inf, otypes=[float])(ref)
    sref = np.vectorize(lambda v: float(mpmath.sign(v)), otypes=[float])(ref)
    for dtype in DTYPES:
        _, lg, sign, flags, _ = twin(chain, x, y, W, B, dtype, log=True)
        assert not flags.any()
        fin = np.isfinite(lref)
        assert (sign[fin] == sref[fin]).all()
        assert (lg[~fin] == -np.inf).all()
        tol = 50 * chain.depth * float(np.finfo(dtype).eps)
        assert (np.abs(lg[fin] - lref[fin]) <= tol * np.maximum(1.0, np.abs(lref[fin]))).all()


@pytest.mark.parametrize("chain", CHAINS[-2:], ids=["sigmoid", "mixed-residual"])
def test_deep_chain_recomputed_by_segments_matches_the_numpy_engine(twin, chain):
    rng = np.random.default_rng(5)
    for per_sample in (False, True):
        x, y, W, B = _inputs(rng, chain.depth, 64, per_sample, scale=1.5)
        inp, G, _, flags, _ = twin(chain, x, y, W, B, "float64")
        want = numeric.gradients(chain, x, y, W, B, engine="chunked")
        assert not flags.any()
        np.testing.assert_allclose(G, want, rtol=1e-12, atol=1e-14 * np.abs(want).max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_past_exps_range_is_exact_or_flagged(twin, dtype):
    """|z| beyond exp's range (800 for float64, 100 for float32): the proved forms stay finite and exact;
    a generic formula that overflows (softplus' = e^z/(1+e^z)) is flagged, and finish() redoes exactly those
    samples with the NumPy engine, which repairs them."""
    big = 800.0 if dtype == "float64" else 100.0
    x = np.array([1.0, 1.0, 1.0, 1.0, 0.5])
    W = np.array([[big, -big, 2.0, 1.0, 1.0], [1.0, 1.0, big, -big, 1.0], [0.5] * 5])
    B, y = np.zeros(3), np.full(5, 0.25)
    for name in ACTS:
        chain = Chain(3, name)
        ref = reference(chain, x, y, W, B)
        inp, G, S, flags, status = twin(chain, x, y, W, B, dtype)
        if local(get(name)).kind != "generic":
            assert not (flags & FLAG_NONFINITE).any(), (name, flags)
        ok = flags == 0
        assert np.isfinite(G[:, ok]).all()
        # GELU'(-800) ≈ -10^-138000 is below what the oracle resolves (NaN: no value claimed); far below floats
        want = as_floats(ref[:, ok])
        unresolved = np.isnan(want)
        assert (G[:, ok][unresolved] == 0).all() and (name == "gelu" or not unresolved.any()), name
        assert_close_rowwise(G[:, ok].astype(float), np.where(unresolved, 0.0, want), 50 * REL[dtype])
        if ok.all():
            continue
        got = finish(chain, inp, G, S, flags, status, backend="numpy", dtype=dtype, allow_underflow=True)
        want = numeric.gradients(chain, x, y, W, B, dtype=dtype, engine="chunked",
                                 allow_underflow=True)
        np.testing.assert_allclose(got[:, ~ok], want[:, ~ok], rtol=REL[dtype], atol=0)


def test_an_overflowed_pre_activation_is_flagged_and_reported(twin):
    """z = w·h + b beyond the dtype: φ'(±inf) of the overflow-safe forms would be a finite 0 (or 1/6 and 0 for
    hard_sigmoid); the kernel flags the sample and finish() reports the overflow, never a finite answer."""
    x, y = np.array([2.0, 0.5]), np.zeros(2)
    W = np.array([[1.0, 1.0], [1e308, 1.0], [1.0, 1.0], [1.0, 1.0]])
    B = np.array([[0.0, 0.0], [1e308, 0.0], [0.0, 0.0], [0.0, 0.0]])  # sample 0: z_2 = inf; sample 1 ordinary
    runs = [(Chain(4, name), False) for name in ("tanh", "sigmoid", "hard_sigmoid", "elu")] + [(Chain(4, "sigmoid"), True)]
    for chain, log in runs:
        inp, G, S, flags, status = twin(chain, x, y, W, B, "float64", log=log)
        assert flags.tolist() == [FLAG_NONFINITE, 0], (chain, log)
        with pytest.raises(errors.OverflowReport, match="pre-activation z_k"):
            finish(chain, inp, G, S, flags, status, backend="numpy", allow_underflow=True)


def test_log_domain_flagged_samples_are_redone(twin):
    chain, x, y = Chain(3, "softplus"), np.ones(3), np.zeros(3)
    W = np.array([[800.0, 1.0, 2.0], [1.0] * 3, [0.5] * 3])  # softplus' = inf/inf at z = 800
    inp, lg, sign, flags, status = twin(chain, x, y, W, np.zeros(3), "float64", log=True)
    assert flags.tolist() == [FLAG_NONFINITE, 0, 0]
    got_lg, got_sign = finish(chain, inp, lg, sign, flags, status, backend="numpy", allow_underflow=True)
    want_lg, want_sign = numeric.gradients(chain, x, y, W, np.zeros(3), log=True)
    assert np.isfinite(got_lg).all() and (got_sign == want_sign).all()
    np.testing.assert_allclose(got_lg, want_lg, rtol=0, atol=1e-12)


def test_log_domain_residual_factor_that_cancels_is_flagged(twin):
    """1 + w_2·tanh'(z_2) with w_2 = -1 and z_2 = -2e-20: tanh'(z_2) = 1 - z_2² + … rounds to 1 (e^{-2|z|} = 1), so
    the factor is 0 where it is 4e-40, and dL/dw_1 (mpmath: -8e-60) would be returned as log|g| = -inf."""
    chain, x, y = Chain(2, "tanh", residual=True), np.array([1e-20, 0.5]), np.ones(2)
    W, B = np.array([1.0, -1.0]), np.zeros(2)
    ref = reference(chain, x, y, W, B, dps=40)
    assert -8.1e-60 < ref[0, 0] < -7.9e-60 and ref[0, 1] != 0  # sample 0 cancels, sample 1 does not
    inp, lg, sign, flags, status = twin(chain, x, y, W, B, "float64", log=True)
    assert flags.tolist() == [FLAG_UNDERFLOW, 0]
    with pytest.raises(errors.UnderflowReport, match=r"layer\(s\) 1 \(the largest is 10\^-59\.1, within"):
        finish(chain, inp, lg, sign, flags, status, backend="numpy")


@pytest.mark.parametrize("where", ["x", "y", "W", "B", "shared W"])
def test_nan_inputs_are_flagged_and_refused(twin, where):
    chain = Chain(3, "hard_sigmoid")  # a NaN z gives φ = 1, φ' = 0: nothing downstream shows it
    rng = np.random.default_rng(7)
    x, y, W, B = _inputs(rng, 3, 4, per_sample=where != "shared W")
    target = {"x": x, "y": y, "W": W, "B": B, "shared W": W}[where]
    target[..., 2] = np.nan
    for dtype in DTYPES:
        inp, G, S, flags, status = twin(chain, x, y, W, B, dtype)
        want = [True] * 4 if where == "shared W" else [False, False, True, False]
        assert ((flags & FLAG_NONFINITE) != 0).tolist() == want
        assert int(status[0]) & FLAG_NONFINITE
        with pytest.raises(errors.InvalidValueError, match="must be finite"):
            finish(chain, inp, G, S, flags, status, backend="numpy", dtype=dtype)


def test_product_underflow_is_flagged_and_reported_unless_allowed(twin):
    chain = Chain(6, "linear")
    # g_1 = 2(h_6 − 1)·w^5·x = −2e-50 is below float32's 1.4e-45: 0; at w = 1e-9 it is −2e-45 (held as a
    # subnormal), and δ_0 = a_1·w_1, which rounds to 0 there, is no gradient: no flag for it. But z_6 = w^6 = 1e-54
    # rounds to 0 there: flagged (h_6 is lost; the redo finds that harmless, h_6 − 1 rounds to -1 anyway)
    # (y = 0.5 for w = 1: h_6 = 1 = y would make δ_6 = 0, which is looked at too)
    x, y, W = np.array([1.0, 1.0, 1.0]), np.array([1.0, 0.5, 1.0]), np.array([[1e-10, 1.0, 1e-9]] * 6)
    inp, G, S, flags, status = twin(chain, x, y, W, np.zeros(6), "float32")
    assert flags.tolist() == [FLAG_UNDERFLOW, 0, FLAG_UNDERFLOW] and G[0, 0] == 0 and G[0, 2] != 0
    kept = G.copy()
    assert finish(chain, inp, G, S, flags, status, backend="numpy", dtype="float32", allow_underflow=True) is G
    assert (G == kept).all()  # accepted: nothing redone
    underflow = getattr(errors, "UnderflowReport", None)
    if underflow is None:  # before the engines' reports: the flagged sample is what the NumPy engine gives
        g = finish(chain, inp, G, S, flags, status, backend="numpy", dtype="float32")
        assert (g == numeric.gradients(chain, x, y, W, np.zeros(6), dtype="float32", engine="chunked")).all()
    else:
        with pytest.raises(underflow):
            finish(chain, inp, G, S, flags, status, backend="numpy", dtype="float32")


@pytest.mark.parametrize("log", [False, True])
def test_a_phi_that_underflowed_itself_is_flagged_not_passed_on_as_zero(twin, log):
    """GELU(-40) ≈ -1.5e-348 and GELU'(-40) are 0 in float64 with no product of the chain rule underflowing:
    flagged (an exact 0 of the forms, ReLU's on z < 0, is not), and finish() reports it, in both domains."""
    x, y, W = np.ones(3), np.full(3, 0.5), np.array([[-40.0, 1.0, 0.0], [1.0] * 3])
    inp, G, S, flags, status = twin(Chain(2, "gelu"), x, y, W, np.zeros(2), "float64", log=log)
    assert flags.tolist() == [FLAG_UNDERFLOW, 0, 0]
    with pytest.raises(errors.UnderflowReport):
        finish(Chain(2, "gelu"), inp, G, S, flags, status, backend="numpy")
    _, _, _, relu_flags, _ = twin(Chain(4, "relu"), x, y, np.array([[-40.0, 1.0, 0.0]] + [[1.0] * 3] * 3), np.zeros(4),
                                  "float64")
    assert not relu_flags.any()


def test_a_pre_activation_that_underflowed_to_zero_is_flagged(twin):
    """z_1 = w_1·x = 1e-400 with b_1 = 0 rounds to 0 (ReLU'(0) = 0 then zeroes a g_1 of -1e-200): flagged and
    redone; with b_1 ≠ 0 the lost 1e-400 is rounding, not an underflow."""
    chain, x, y = Chain(4, "relu"), np.array([1e-200, 1e-200, 1.0]), np.full(3, 0.25)  # h_4 = 0.5 ≠ y: δ_4 ≠ 0
    W, B = np.array([[1e-200, 1e-200, 1.0]] + [[1.0] * 3] * 3), np.zeros((4, 3))
    B[0, 1] = 0.5
    inp, G, S, flags, status = twin(chain, x, y, W, B, "float64")
    assert flags.tolist() == [FLAG_REDO, 0, 0]  # ReLU'(0) is a convention: redone, whatever is allowed
    with pytest.raises(errors.UnderflowReport):  # h_1 = 0 where it is 1e-400 zeroes g_2 … g_4
        finish(chain, inp, G, S, flags, status, backend="numpy")
    chain = Chain(1, "leaky_relu")  # nothing comes out 0: g_1 is 1e-200, not the 1e-202 of φ'(0) = 0.01
    inp, G, S, flags, status = twin(chain, x, y, W[:1], B[:1], "float64")
    assert flags.tolist() == [FLAG_REDO, 0, 0]
    got = finish(chain, inp, G, S, flags, status, backend="numpy", allow_underflow=True)
    assert_close_rowwise(got, as_floats(reference(chain, x, y, W[:1], B[:1])), 1e-12)


def test_a_residual_sum_that_cancelled_to_zero_is_flagged(twin):
    """h_1 = 1 + tanh(-40) is 0 in float64 (truly 3.6e-35): flagged, and finish() reports g_2's exact-looking 0."""
    chain, x, y = Chain(2, "tanh", residual=True), np.ones(2), np.full(2, 0.5)
    W = np.array([[-40.0, 1.0], [1.0, 1.0]])
    inp, G, S, flags, status = twin(chain, x, y, W, np.zeros(2), "float64")
    assert flags.tolist() == [FLAG_UNDERFLOW, 0] and G[1, 0] == 0
    with pytest.raises(errors.UnderflowReport):
        finish(chain, inp, G, S, flags, status, backend="numpy")


def _device_sources():
    """What the device compilers get: the switch over activations and BCE's logit form (float64); the log
    domain, erfc, float math (float32); a drawn kernel (Philox inside) and the kernel that draws its flagged
    samples again."""
    keys = [kernel_key(c, dt, log, drawn)[0] for c, dt, log, drawn in
            [(Chain(3, MIXED, loss="bce"), "float64", False, False), (Chain(4, "gelu", residual=True), "float32", True, False),
             (Chain(3, "sigmoid", loss="bce"), "float64", False, True)]]
    return [chain_source(k) for k in keys] + [cuda_chain.draw_source("float32")]


@pytest.mark.slow  # nvcc takes ~3 s of CPU for these kernels, where the CUDA toolkit is installed
def test_printed_source_compiles_for_the_device_with_nvcc(tmp_path):
    """The C twin cannot see CUDA-only syntax (extern "C" __global__, the unroll pragma, CUDA's math
    overloads): nvcc compiles the very text NVRTC gets, to PTX for an H100/H200 (sm_90)."""
    import shutil
    import subprocess

    nvcc = shutil.which("nvcc")
    if nvcc is None or subprocess.run([nvcc, "--version"], capture_output=True).returncode != 0:
        pytest.skip("no CUDA toolkit (nvcc)")
    sources = _device_sources()
    src = tmp_path / "chain.cu"
    src.write_text("\n".join(s.cuda for s in sources))
    r = subprocess.run([nvcc, "-arch=sm_90", "-ptx", "-o", str(tmp_path / "chain.ptx"), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[:3000]
    ptx = (tmp_path / "chain.ptx").read_text()
    assert all(f".entry {s.name}(" in ptx for s in sources)


def _nvrtc():
    """libnvrtc, the runtime compiler CuPy's RawKernel calls, where one is installed (the system's, or the
    ``nvidia-cuda-nvrtc`` wheel's: CI installs it, with no GPU needed); None otherwise."""
    import ctypes.util
    import importlib.util
    import pathlib

    found = [ctypes.util.find_library("nvrtc")]
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations if spec else None) or ():
        found += sorted(str(p) for p in pathlib.Path(root).glob("*/lib/libnvrtc.so*"))
    for path in filter(None, found):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


@pytest.mark.slow  # NVRTC takes ~4 s of CPU for these kernels
def test_printed_source_compiles_with_nvrtc_as_cupy_compiles_it():
    """nvcc compiles with the host's headers; NVRTC, which CuPy's RawKernel calls, has none, so an
    undefined M_PI, INFINITY or int64_t passes nvcc and fails on the GPU. This compiles the very text
    ``cupy.RawKernel(src.cuda, src.name)`` gets, for sm_90, and asks NVRTC for each kernel's mangled name
    (the name CuPy looks the kernel up by: extern "C" keeps it as printed)."""
    lib = _nvrtc()
    if lib is None:
        pytest.skip("no NVRTC (pip install nvidia-cuda-nvrtc)")
    sources = _device_sources()
    prog, opts = ctypes.c_void_p(), (ctypes.c_char_p * 1)(b"-arch=compute_90")
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), "\n".join(s.cuda for s in sources).encode(), b"chain.cu",
                                  0, None, None) == 0
    try:
        for s in sources:
            assert lib.nvrtcAddNameExpression(prog, s.name.encode()) == 0
        rc = lib.nvrtcCompileProgram(prog, 1, opts)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        assert rc == 0, log.value.decode()[:3000]
        assert "warning" not in log.value.decode(), log.value.decode()[:3000]
        for s in sources:
            lowered = ctypes.c_char_p()
            assert lib.nvrtcGetLoweredName(prog, s.name.encode(), ctypes.byref(lowered)) == 0
            assert lowered.value == s.name.encode()
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def test_launch_args_use_strides_not_copies():
    chain = Chain(2, "relu")
    inp = prepare(chain, 1.0, [0.0, 1.0, 2.0], np.ones((2, 3)), [0.0, 0.5], np, "float32")
    args = launch_args(2, inp, np.zeros(2, np.uint8), np.empty((2, 3), np.float32), None, None, None)
    m, n, _, xs, _, ys, _, wk, wi, _, bk, bi = args[:12]
    assert (m, n, xs, ys, wk, wi, bk, bi) == (3, 2, 0, 1, 3, 1, 1, 0)
    assert args[13] is args[14]  # no log: S is G, unused


# ----------------------------------------------------------------------------- on a GPU (skipped without one)


@pytest.mark.parametrize("chain", [Chain(20, "sigmoid"), Chain(5, "gelu", residual=True), Chain(3, MIXED, loss="bce"),
                                   Chain(DEEP, "tanh"), Chain(4, "expr:z/(1+abs(z))")], ids=lambda c: c.name)
def test_on_the_gpu_matches_the_numpy_engine(cupy, chain):
    rng = np.random.default_rng(11)
    for per_sample in (False, True):
        x, y, W, B = _inputs(rng, chain.depth, 1000, per_sample)
        if chain.loss == "bce":
            y = rng.uniform(0, 1, 1000)
        for dtype in DTYPES:
            want = numeric.gradients(chain, x, y, W, B, dtype=dtype, engine="chunked")
            got = cuda_chain.gradients_cuda(chain, *(cupy.asarray(v) for v in (x, y, W, B)), dtype=dtype)
            assert_close_rowwise(cupy.asnumpy(got).astype(float), want.astype(float), 50 * REL[dtype])
            out = cupy.empty((chain.depth, 1000), dtype=dtype)
            assert cuda_chain.gradients_cuda(chain, x, y, W, B, dtype=dtype, out=out) is out
            lg, sign = cuda_chain.gradients_cuda(chain, x, y, W, B, dtype=dtype, log=True)
            wl, ws = numeric.gradients(chain, x, y, W, B, dtype=dtype, log=True)
            assert (cupy.asnumpy(sign) == ws).all()
            # an error of log|g| is a relative error of g: absolute tolerance, as REL, widened for N layers
            np.testing.assert_allclose(cupy.asnumpy(lg), wl, rtol=0, atol=chain.depth * 10 * REL[dtype])


def test_on_the_gpu_flagged_samples_are_redone_or_refused(cupy):
    chain = Chain(3, "softplus")
    x = np.ones(4)
    W = np.array([[800.0, 1.0, -800.0, 0.5], [1.0] * 4, [0.5] * 4])  # softplus' = e^z/(1+e^z) = inf/inf at 800
    got = cupy.asnumpy(cuda_chain.gradients_cuda(chain, x, 0.0, W, allow_underflow=True))
    want = numeric.gradients(chain, x, 0.0, W, engine="chunked",
                             allow_underflow=True)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    W[1, 2] = np.nan
    with pytest.raises(errors.InvalidValueError, match="must be finite"):
        cuda_chain.gradients_cuda(chain, x, 0.0, W)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_loss_that_cancelled_to_zero_is_flagged(twin, dtype):
    """h_4 = σ(42.6) = 1 − 3e-19 rounds to y = 1, so δ_4 = 2(h_4 − y) = 0 and every g_k came out an exact-looking 0
    (mpmath: ~1e-37 and smaller), unflagged; the other engines look at such a zero, so does the kernel now. At h_4 = 0
    (ReLU off, y = 0) δ_4 = 0 is exact and not flagged."""
    chain, x, y = Chain(4, "sigmoid"), np.ones(2), np.array([1.0, 0.5])
    W = np.array([1.0, 1.0, 1.0, 60.0])
    ref = reference(chain, x, y, W, np.zeros(4))
    assert all(v != 0 for v in ref[:, 0])
    inp, G, _, flags, status = twin(chain, x, y, W, np.zeros(4), dtype)
    assert flags.tolist() == [FLAG_UNDERFLOW, 0] and (G[:, 0] == 0).all()
    with pytest.raises(errors.UnderflowReport, match="came out 0"):
        finish(chain, inp, G, None, flags, status, backend="numpy", dtype=dtype)
    _, _, _, relu_flags, _ = twin(Chain(4, "relu"), np.array([-1.0, 1.0]), np.zeros(2), np.ones(4), np.zeros(4), dtype)
    assert not relu_flags.any()


def test_finish_redoes_in_the_dtype_of_the_result():
    """finish() without dtype redid a float32 kernel's flagged samples in float64 and stored them in the float32
    result: g = 6.8e-47 (mpmath), below float32's range, became an unreported 0."""
    chain, x, y, W = Chain(2, "sigmoid"), np.ones(1), np.full(1, 0.3), np.array([[-104.0], [1.0]])
    assert 0 < float(reference(chain, x, y, W, np.zeros(2))[0, 0]) < 1e-45
    inp = prepare(chain, x, y, W, np.zeros(2), np, "float32")
    G, flags, status = np.zeros((2, 1), np.float32), np.array([FLAG_UNDERFLOW], np.uint8), np.array([FLAG_UNDERFLOW])
    with pytest.raises(errors.UnderflowReport, match="float32"):
        finish(chain, inp, G, None, flags, status, backend="numpy")


@pytest.mark.parametrize("dtype", DTYPES)
def test_generic_bce_keeps_its_digits_where_the_output_saturates(twin, dtype):
    """BCE on φ = (1 + tanh z)/2 through the logit: y·φ'/φ cancels to y·(1 − tanh z_N), which kept 4 digits at
    z_N = 15 and none from z_N ≈ 19 (an exact-looking 0 there, or a report); written 2y/(1 + e^{2z}) it keeps them."""
    chain, x, y = Chain(3, GENERIC01, loss="bce"), np.ones(4), np.array([1.0, 1.0, 0.0, 0.25])
    W = np.array([[1.0] * 4, [1.0] * 4, [18.0, 30.0, -30.0, 30.0]])
    ref = as_floats(reference(chain, x, y, W, np.zeros(3), dps=40))
    assert 0 < abs(ref[2, 1]) < 1e-20  # g_3 = −(1 − tanh z_3)·h_2 at z_3 ≈ 25
    _, G, _, flags, _ = twin(chain, x, y, W, np.zeros(3), dtype)
    assert not flags.any()
    g = numeric.gradients(chain, x, y, W, np.zeros(3), dtype=dtype, engine="chunked")
    for j in range(4):  # sample by sample: their scales differ by 20 orders
        assert_close_rowwise(G.astype(float)[:, j:j + 1], ref[:, j:j + 1], REL[dtype])
        assert_close_rowwise(g.astype(float)[:, j:j + 1], ref[:, j:j + 1], REL[dtype])
