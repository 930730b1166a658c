"""Shared test helpers."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

from symvg.symbolic.chain import Chain

# ----------------------------------------------------------------------------- one kernel cache per session


def pytest_configure(config):
    """Point the fused engine's kernel cache (symvg.engines.fused_kernel) at one fresh folder for the whole
    run, made by the controlling process before the xdist workers start, so they and the CLI subprocesses
    inherit it: a kernel compiled once (7-12 s) is loaded by every other process (0.1 s). A fresh folder,
    so each run still compiles every kernel it uses once; set SYMVG_CACHE_DIR yourself to keep one."""
    import os
    import tempfile

    from symvg.engines.fused_kernel import CACHE_ENV

    if hasattr(config, "workerinput") or os.environ.get(CACHE_ENV):
        return
    config._symvg_kernel_cache = tempfile.mkdtemp(prefix="symvg-kernels-")
    os.environ[CACHE_ENV] = config._symvg_kernel_cache


def pytest_unconfigure(config):
    import os

    from symvg.engines.fused_kernel import CACHE_ENV

    folder = getattr(config, "_symvg_kernel_cache", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(CACHE_ENV, None)


@pytest.fixture(scope="session")
def cupy():
    """CuPy with a CUDA device to test on; the test is skipped without one."""
    cp = pytest.importorskip("cupy")
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("CuPy finds no CUDA device")
    except Exception as e:  # noqa: BLE001 - any driver/runtime failure means: no device to test on
        pytest.skip(f"no usable CUDA device: {e}")
    return cp


@pytest.fixture
def empty_kernel_cache(monkeypatch, tmp_path):
    """Nothing compiled yet, as far as routing can tell: an empty on-disk kernel cache (engine="auto" takes a
    kernel found on disk) and a fresh record of what this process compiled (the fused entry's KernelCache).
    numba's own in-process kernels stay, so a test reusing an activation another test compiled pays no compile."""
    from symvg.engines import registry
    from symvg.engines.fused_kernel import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "kernels"))
    monkeypatch.setattr(registry.FUSED.kernels, "_known", {})
    return tmp_path / "kernels"


def symbol_values(chain: Chain, seed: int) -> dict:
    """:func:`random_values` keyed by the chain's symbols, for ``xreplace``."""
    vals = random_values(chain, seed)
    return {s: vals[str(s)] for s in chain.symbols()}


def random_values(chain: Chain, seed: int, lo: int = -2, hi: int = 2) -> dict:
    """Random rational inputs (odd denominators keep pre-activations off kinks at 0)."""
    rng = random.Random(seed)
    return {str(s): sp.Rational(rng.randint(lo * 97, hi * 97), 97) + sp.Rational(1, 1013) for s in chain.symbols()}


@pytest.fixture
def run():
    """Invoke the CLI in-process: returns (exit code, stdout, stderr)."""
    from symvg.cli import cli

    runner = CliRunner()

    def invoke(*args: str):
        r = runner.invoke(cli, list(args))
        return r.exit_code, r.stdout, r.stderr

    return invoke


# ----------------------------------------------------------------------------- CUDA source compiled as C


C_COMPILER = shutil.which("gcc") or shutil.which("cc")

CUDA_AS_C_SHIM = """\
#include <math.h>
/* CUDA's qualifiers defined away; one "thread" whose grid-stride loop visits every sample */
#define SYMVG_GLOBAL
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ restrict
typedef struct { unsigned int x; } symvg_dim3;
static const symvg_dim3 blockIdx = {0}, threadIdx = {0}, blockDim = {1}, gridDim = {1};
#define atomicOr(p, v) (*(p) |= (v))
"""


def compile_c(code: str, directory, name: str = "k", opt: str = "-O1"):
    """``code`` compiled as strict C99 (as NVRTC, it gets no M_PI from math.h) into a shared library, loaded
    with ctypes. Fails the test with the compiler's message. ``-O0`` compiles ~3x faster and rounds the same
    (x86-64 SSE, no contraction under -std=c99)."""
    import ctypes
    import subprocess

    src, lib = directory / f"{name}.c", directory / f"{name}.so"
    src.write_text(code)
    r = subprocess.run([C_COMPILER, "-std=c99", opt, "-shared", "-fPIC", "-o", str(lib), str(src), "-lm"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[:3000]
    return ctypes.CDLL(str(lib))


# ----------------------------------------------------------------------------- numeric tests (NumPy, fused)


def network_inputs(rng, n: int, m: int, per_sample: bool, scale: float = 1.0):
    """x, y of shape (m,) and W, B of shape (n, m) (per sample) or (n,), all standard normal."""
    shape = (n, m) if per_sample else (n,)
    return (rng.standard_normal(m), rng.standard_normal(m),
            scale * rng.standard_normal(shape), scale * rng.standard_normal(shape))


def as_floats(ref):
    """An object array of mpmath numbers (``symvg.engines.reference.reference``) as float64."""
    return np.vectorize(float, otypes=[float])(ref)


def assert_close_rowwise(g, ref, rel):
    """|g - ref| ≤ rel·max(|ref|, the largest |ref| of its layer).

    Entries far below their layer's largest come out of cancellations (z_k ≈ 0 at a root of φ', h_N ≈ y)
    that no float evaluation resolves; they are held to rel of the layer's scale.
    """
    scale = np.abs(ref).max(axis=1, keepdims=True)
    assert (np.abs(g - ref) <= rel * np.maximum(np.abs(ref), scale)).all(), (np.abs(g - ref) / scale).max()


def saturated_bce_inputs(z_last: float, dtype: str = "float64"):
    """x, W, B for Chain(3, "sigmoid", loss="bce") whose last pre-activation is z_last (to rounding)."""
    h1 = 1 / (1 + np.exp(-0.5))
    h2 = 1 / (1 + np.exp(-h1))
    return 1.0, np.array([0.5, 1.0, z_last / h2], dtype=dtype), np.zeros(3, dtype=dtype)


def assert_matches_mpmath_or_flags(compute, chain, x, y, W, B, dtype, rel, log=False):
    """``compute()`` (the gradients, or (log|g|, sign) when ``log``) agrees with symvg.engines.reference.reference to
    ``rel`` row-wise, or raises a NumericRangeError -- allowed only where the exact value is beyond the dtype
    (below its smallest subnormal, above its largest float) or not a real number. Returns "flagged" or "ok"."""
    import mpmath
    from symvg.errors import NumericRangeError
    from symvg.engines.reference import reference

    ref = reference(chain, x, y, W, B)
    fi = np.finfo(dtype)

    def beyond(v):
        return not mpmath.isfinite(v) or (v != 0 and not fi.smallest_subnormal <= abs(v) <= fi.max)
    try:
        got = compute()
    except NumericRangeError as e:
        assert any(beyond(v) for v in ref.flat), f"flagged, but every exact value fits {dtype}: {e}"
        return "flagged"
    if log:
        lg, sign = got
        lref = np.vectorize(lambda v: float(mpmath.log(abs(v))) if v != 0 else -np.inf, otypes=[float])(ref)
        sref = np.vectorize(lambda v: float(mpmath.sign(v)), otypes=[float])(ref)
        assert (sign == sref).all(), (sign, sref)
        fin = np.isfinite(lref)
        assert (lg[~fin] == lref[~fin]).all()
        assert (np.abs(lg[fin] - lref[fin]) <= rel * np.maximum(1.0, np.abs(lref[fin]))).all(), (lg, lref)
        return "ok"
    assert not any(beyond(v) for v in ref.flat), "an exact value beyond the dtype was returned without a flag"
    assert_close_rowwise(got.astype(float), as_floats(ref), rel)
    return "ok"


def saturated_chain_strategy():
    """Hypothesis: (chain, x, y, W, B, dtype, rel) -- hidden layers of moderate weight, the last one large
    (|w_N| up to 900, so z_N reaches ±800: σ saturates past every float), MSE or BCE, y in {0, 1} or (0, 1).
    ``rel`` is the tolerance the rounding of z_N alone allows: ~|w_N|·eps per layer."""
    from hypothesis import strategies as st

    @st.composite
    def draw(d):
        depth = d(st.integers(1, 4))
        hidden = d(st.lists(st.sampled_from(["sigmoid", "tanh", "softplus", "linear"]), min_size=depth - 1,
                            max_size=depth - 1))
        loss = d(st.sampled_from(["bce", "mse"]))
        last = "sigmoid" if loss == "bce" else d(st.sampled_from(["sigmoid", "tanh", "softplus"]))
        dtype = d(st.sampled_from(["float64", "float32"]))
        small = st.floats(-2, 2, allow_nan=False, width=32)
        W = d(st.lists(small, min_size=depth - 1, max_size=depth - 1)) + [d(st.floats(-900, 900, width=32))]
        B = d(st.lists(small, min_size=depth, max_size=depth))
        x = d(st.floats(-3, 3, width=32))
        y = d(st.sampled_from([0.0, 1.0, 0.25])) if loss == "bce" else d(st.floats(-2, 2, width=32))
        rel = 64 * depth * (1 + abs(W[-1])) * float(np.finfo(dtype).eps)
        return Chain(depth, hidden + [last], loss=loss), x, y, np.array(W), np.array(B), dtype, rel
    return draw()
