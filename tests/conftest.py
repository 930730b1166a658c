"""Shared test helpers."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

from symvg.chain import Chain


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
    """An object array of mpmath numbers (``symvg.numeric.reference``) as float64."""
    return np.vectorize(float, otypes=[float])(ref)


def assert_close_rowwise(g, ref, rel):
    """|g - ref| ≤ rel·max(|ref|, the largest |ref| of its layer).

    Entries far below their layer's largest come out of cancellations (z_k ≈ 0 at a root of φ', h_N ≈ y)
    that no float evaluation resolves; they are held to rel of the layer's scale.
    """
    scale = np.abs(ref).max(axis=1, keepdims=True)
    assert (np.abs(g - ref) <= rel * np.maximum(np.abs(ref), scale)).all(), (np.abs(g - ref) / scale).max()
