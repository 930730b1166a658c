"""The counter-based generator (symvg.engines.philox): its NumPy reference against the known-answer vectors
published with Random123, its C text (compiled as C99 behind the CUDA-as-C shim) against the reference, and
the normals' moments.

NumPy's own ``np.random.Philox`` is Philox4x64-10 (64-bit words, other multipliers), so it cannot check a
4x32 implementation; the published vectors do instead.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from symvg import errors
from symvg.engines import cuda
from symvg.engines.cuda import SEG, Draw
from symvg.engines.plan import prepare
from symvg.engines.philox import (SOURCE, STREAM_INPUTS, STREAM_WEIGHT_BIAS, box_muller, counters, key_from_seed,
                                  normals, philox4x32, uniform_closed_open, uniform_open_closed)

from symvg.symbolic.chain import Chain

from conftest import C_COMPILER, CUDA_AS_C_SHIM, assert_close_rowwise, compile_c

# Random123's tests/kat_vectors, "philox4x32 10" lines (counter[4], key[2] -> output[4]); the same three
# lines are quoted in TensorFlow's compiler/tests/stateful_random_ops_test.py, which cites Random123-Boost's
# libs/random/test/test_philox.cpp lines 50-52.
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]

_WRAPPERS = """
void philox_batch(const unsigned int *ctr, const unsigned int *key, unsigned int *out, long n)
{
    long i;
    int j;
    for (i = 0; i < n; ++i) {
        unsigned int c[4];
        for (j = 0; j < 4; ++j) c[j] = ctr[4 * i + j];
        symvg_philox4x32_10(c, key[2 * i], key[2 * i + 1]);
        for (j = 0; j < 4; ++j) out[4 * i + j] = c[j];
    }
}

void normal_batch(unsigned int k0, unsigned int k1, const unsigned long long *sample, unsigned int layer,
                  unsigned int stream, double *out, long n)
{
    long i;
    for (i = 0; i < n; ++i) symvg_philox_normal2(k0, k1, sample[i], layer, stream, out + i, out + n + i);
}

void uniform_batch(const unsigned int *hi, const unsigned int *lo, double *out, long n)
{
    long i;
    for (i = 0; i < n; ++i) {
        out[i] = symvg_uniform_closed_open(hi[i], lo[i]);
        out[n + i] = symvg_uniform_open_closed(hi[i], lo[i]);
    }
}

void box_muller_batch(const double *u1, const double *u2, double *out, long n)
{
    long i;
    for (i = 0; i < n; ++i) symvg_box_muller(u1[i], u2[i], out + i, out + n + i);
}
"""

M = 4096
RNG = np.random.default_rng(2011)


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    if C_COMPILER is None:
        pytest.skip("no C compiler")
    # the include guard: the text may appear twice in one file (two kernels sharing a C file)
    return compile_c(CUDA_AS_C_SHIM + SOURCE + SOURCE + _WRAPPERS, tmp_path_factory.mktemp("philox_as_c"),
                     name="philox", opt="-O0")


def _ptr(a):
    return ctypes.c_void_p(a.ctypes.data)


def _c_philox(lib, ctr, key):
    ctr, key = np.ascontiguousarray(ctr, np.uint32), np.ascontiguousarray(key, np.uint32)
    out = np.zeros_like(ctr)
    lib.philox_batch(_ptr(ctr), _ptr(key), _ptr(out), ctypes.c_long(len(ctr)))
    return out


def _random_words(shape):
    return RNG.integers(0, 2**32, size=shape, dtype=np.uint64).astype(np.uint32)


@pytest.mark.parametrize("ctr, key, want", KAT)
def test_reference_matches_published_vectors(ctr, key, want):
    assert philox4x32(np.array(ctr), np.array(key)).tolist() == list(want)


def test_c_matches_published_vectors(lib):
    got = _c_philox(lib, [c for c, _, _ in KAT], [k for _, k, _ in KAT])
    assert got.tolist() == [list(w) for _, _, w in KAT]


def test_c_equals_reference_bitwise(lib):
    """Random counters and keys, plus the structured counters a kernel uses (sample index carries into word 1)."""
    ctr = np.concatenate([_random_words((M, 4)), counters(np.arange(2**32 - 8, 2**32 + 8, dtype=np.uint64), 7, 1)])
    key = _random_words((len(ctr), 2))
    want = philox4x32(ctr, key)
    assert np.array_equal(_c_philox(lib, ctr, key), want)
    assert len({tuple(r) for r in want.tolist()}) == len(want)  # a key-wise bijection: no repeated outputs


def test_uniforms_exact_and_in_range(lib):
    hi = np.concatenate([[0, 0, 0xFFFFFFFF, 0xFFFFFFFF], _random_words(M)]).astype(np.uint32)
    lo = np.concatenate([[0, 0x7FF, 0xFFFFF800, 0xFFFFFFFF], _random_words(M)]).astype(np.uint32)
    out = np.zeros(2 * len(hi))
    lib.uniform_batch(_ptr(hi), _ptr(lo), _ptr(out), ctypes.c_long(len(hi)))
    co, oc = uniform_closed_open(hi, lo), uniform_open_closed(hi, lo)
    assert np.array_equal(out[:len(hi)], co) and np.array_equal(out[len(hi):], oc)  # both exact: bitwise
    # independent of either: the 53-bit integer read with Python ints, scaled by an exact power of two
    ints = [((int(h) << 32 | int(l)) >> 11) for h, l in zip(hi, lo)]
    assert co.tolist() == [i / 2**53 for i in ints] and oc.tolist() == [(i + 1) / 2**53 for i in ints]
    assert co[:4].tolist() == [0.0, 0.0, 1 - 2**-53, 1 - 2**-53] and oc[:4].tolist() == [2**-53, 2**-53, 1.0, 1.0]
    assert co.min() >= 0 and co.max() < 1 and oc.min() > 0 and oc.max() <= 1


def _c_normals(lib, key, samples, layer, stream):
    s = np.ascontiguousarray(samples, np.uint64)
    out = np.zeros(2 * len(s))
    lib.normal_batch(ctypes.c_uint(int(key[0])), ctypes.c_uint(int(key[1])), _ptr(s), ctypes.c_uint(layer),
                     ctypes.c_uint(stream), _ptr(out), ctypes.c_long(len(s)))
    return out.reshape(2, len(s))


def test_c_normals_match_reference(lib):
    """The pair goes through libm's log/sqrt/cos/sin in C and NumPy's own in the reference: the two may differ
    by an ulp per call, so |n_C - n_np| ≤ 8 ulp of r (n = r·cos t with |cos t| ≤ 1: each of log, sqrt, the
    product and cos/sin contributes ≤ ~1 ulp relative to r; 8 leaves room, while a wrong bit in the uniforms
    moves n by ≥ 2^-53·r/u1 relative and a swapped pair by O(1))."""
    key = key_from_seed(12345)
    samples = np.concatenate([np.arange(M, dtype=np.uint64), np.uint64(2**40) + np.arange(64, dtype=np.uint64)])
    for layer, stream in [(0, STREAM_INPUTS), (5, STREAM_WEIGHT_BIAS)]:
        want, got = normals(key, samples, layer, stream), _c_normals(lib, key, samples, layer, stream)
        r = np.hypot(want[0], want[1])
        assert np.all(np.abs(got - want) <= 8 * np.spacing(r)), np.max(np.abs(got - want) / np.spacing(r))


def test_box_muller_extremes_finite(lib):
    """The smallest u1 the (0, 1] conversion gives, 2^-53, is the largest radius: sqrt(106 ln 2) ≈ 8.5717."""
    u1, u2 = np.array([2.0**-53, 1.0, 0.5, 2.0**-53]), np.array([0.0, 0.25, 1 - 2.0**-53, 0.5])
    out = np.zeros(2 * len(u1))
    lib.box_muller_batch(_ptr(u1), _ptr(u2), _ptr(out), ctypes.c_long(len(u1)))
    want = box_muller(u1, u2)
    assert np.all(np.isfinite(out)) and np.allclose(out.reshape(2, -1), want, rtol=1e-15, atol=1e-15)
    assert abs(want[0, 0] - np.sqrt(106 * np.log(2))) < 1e-14 and np.all(want[:, 1] == 0)


def test_normal_moments():
    """2·2^16 draws: the mean's standard error is 1/sqrt(n) ≈ 0.0028, the variance's sqrt(2/n) ≈ 0.0039, the
    fourth moment's sqrt(96/n) ≈ 0.027; each is held to 5 standard errors (a fixed key, so not flaky; a
    generator off by a scale of 1% or a bias of 0.015 fails). The pair's correlation is held the same way."""
    z = normals(key_from_seed(1), np.arange(2**16), layer=2, stream=STREAM_WEIGHT_BIAS)
    n = z.size
    assert np.all(np.isfinite(z)) and np.abs(z).max() <= np.sqrt(106 * np.log(2)) + 1e-12
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / n)
    assert abs((z**4).mean() - 3) < 5 * np.sqrt(96 / n)
    assert abs(np.corrcoef(z[0], z[1])[0, 1]) < 5 / np.sqrt(z.shape[1])


def test_distinct_counters_and_keys_give_distinct_streams():
    """Changing the layer, the stream, the sample's high word or one key bit changes about half the output bits
    (4096·128 bits per comparison: the fraction's standard error is 0.0007, held to ±0.01)."""
    base_key = key_from_seed(3)
    samples = np.arange(M, dtype=np.uint64)
    base = philox4x32(counters(samples, 4, 0), base_key)
    flipped_key = base_key ^ np.array([1, 0], dtype=np.uint32)
    for other in (philox4x32(counters(samples, 5, 0), base_key), philox4x32(counters(samples, 4, 1), base_key),
                  philox4x32(counters(samples + np.uint64(2**32), 4, 0), base_key),
                  philox4x32(counters(samples, 4, 0), flipped_key)):
        flipped = np.unpackbits((base ^ other).view(np.uint8)).mean()
        assert abs(flipped - 0.5) < 0.01, flipped
    assert not np.array_equal(key_from_seed(3), key_from_seed(4))


def test_bad_seeds_and_counters_are_refused():
    for seed in (-1, 1.5, None, True, "7"):
        with pytest.raises(errors.InvalidValueError):
            key_from_seed(seed)
    with pytest.raises(errors.InvalidValueError):
        counters([0], 2**32, 0)
    with pytest.raises(errors.InvalidValueError):
        counters([0], 0, -1)


# ----------------------------------------------------------------------------- the whole-chain kernel, drawn


# sigmoid and ReLU only: the kernels' maths is test_cuda_chain's; these print in ~0.1 s, where tanh's forms
# alone take ~2 s of SymPy printing
DRAWN_CASES = [(Chain(4, "sigmoid"), False, Draw((1, 2), w_std=1.5, b_std=0.5)),
               (Chain(4, "sigmoid", residual=True), False,
                Draw((3, 4), first=2**33, w_mean=0.1, w_std=0.7, b_std=0.2)),
               (Chain(3, "sigmoid", loss="bce"), False, Draw((5, 6), w_std=2.0, y_sign=True)),
               # three segments, the draws recomputed; residual, so δ does not vanish in 69 layers, and w small
               # enough that z = w·h stays within |z| < 100 as h grows: φ'(z) = e^-|z| then holds in float32
               (Chain(2 * SEG + 5, "sigmoid", residual=True), False, Draw((7, 8), w_std=0.5, b_std=1.0)),
               (Chain(4, ["relu", "sigmoid", "relu", "sigmoid"]), True, Draw((9, 10), w_std=1.1, b_std=0.3))]
REL = {"float64": 1e-12, "float32": 3e-5}
FLAGGED = Chain(3, "softplus")  # softplus' = e^z/(1+e^z) is a generic formula: inf/inf where z passes exp's range


@pytest.fixture(scope="module")
def chain_twin(tmp_path_factory):
    """``run(chain, dtype, log, draw=None | Draw, m, data=None)`` → (G, S, flags, status) from the C-compiled
    whole-chain kernel, plain (reading ``data`` = x, y, W, B) or drawn (drawing them from ``draw``)."""
    if C_COMPILER is None:
        pytest.skip("no C compiler")
    keys = dict.fromkeys(cuda.kernel_key(c, dt, log, drawn)[0]  # the depth is an argument: one kernel serves many
                         for c, log, _ in DRAWN_CASES + [(Chain(5, "sigmoid"), False, None), (FLAGGED, False, None),
                                                         (FLAGGED, True, None)]
                         for dt in REL for drawn in (False, True))
    srcs = [cuda.chain_source(k) for k in keys] + [cuda.draw_source(dt) for dt in REL]
    lib = compile_c("\n".join([CUDA_AS_C_SHIM, *dict.fromkeys(s.preamble for s in srcs), *(s.code for s in srcs)]),
                    tmp_path_factory.mktemp("drawn_as_c"), name="drawn", opt="-O0")
    conv = {np.int64: ctypes.c_longlong, np.int32: ctypes.c_int, np.uint32: ctypes.c_uint,
            np.float64: ctypes.c_double}

    def call(name, args):
        getattr(lib, name)(*[conv[type(a)](a) if type(a) in conv else ctypes.c_void_p(a.ctypes.data) for a in args])

    def run(chain, dtype, log, m, draw=None, data=None, flagged=False):
        key, layers = cuda.kernel_key(chain, dtype, log, draw is not None)
        n = chain.depth
        G = np.full((n, m), np.nan, dtype=dtype)
        S = np.full((n, m), np.nan, dtype=dtype) if log else None
        flags, status = np.full(m, 255, dtype=np.uint8), np.zeros(1, dtype=np.uint32)
        acts = np.array(layers, dtype=np.uint8)
        if draw is None:
            args = cuda.launch_args(n, prepare(chain, *data, np, dtype, check_finite=False), acts, G, S, flags, status)
        else:
            args = draw.args(n, m, acts, G, S, flags, status)
        call(cuda.chain_source(key).name, args)
        if flagged:  # what finish() takes
            return G, S, flags, status
        assert not flags.any() and int(status[0]) == 0, flags
        return G if S is None else np.stack([G, S])

    def draw_at(draw, n, at, dtype):
        """x, y, W, B of samples draw.first + at, from the C twin of cuda.draw_source."""
        at = np.ascontiguousarray(at, dtype=np.int64)
        x, y = np.full(at.size, np.nan, dtype=dtype), np.full(at.size, np.nan, dtype=dtype)
        W, B = np.full((n, at.size), np.nan, dtype=dtype), np.full((n, at.size), np.nan, dtype=dtype)
        call(cuda.draw_source(dtype).name, draw.at_args(n, at, x, y, W, B))
        return x, y, W, B

    run.draw_at, run.call = draw_at, call
    return run


@pytest.mark.parametrize("chain, log, draw", DRAWN_CASES)
def test_drawn_kernel_equals_plain_kernel_on_the_reference_draws(chain_twin, chain, log, draw):
    """The drawn kernel's gradients are the plain kernel's on the x, y, W, B that the NumPy reference
    (Draw.inputs, through philox.normals) draws: the draws, their scaling and the counters agree."""
    m = 300
    for dtype in REL:
        data = draw.inputs(chain.depth, m, dtype)
        drawn, plain = chain_twin(chain, dtype, log, m, draw=draw), chain_twin(chain, dtype, log, m, data=data)
        if log:  # ln|g| and the sign: the signs agree exactly, the logs to rel
            assert np.array_equal(drawn[1], plain[1])
            assert np.allclose(drawn[0], plain[0], rtol=REL[dtype], atol=REL[dtype])
        else:
            assert_close_rowwise(drawn.astype(float), plain.astype(float), REL[dtype])
        g = drawn[0] if log else drawn  # log domain: a ReLU's exact 0 is log|g| = -inf, rightly
        assert not np.isnan(g).any() and np.ptp(g[np.isfinite(g)]) > 0  # no NaN, and the samples differ


def test_drawn_kernel_is_stateless_and_keyed(chain_twin):
    """Sample first + i is the same network whichever chunk draws it; another key is another network."""
    chain, dtype = Chain(5, "sigmoid"), "float64"
    base = Draw((11, 12), w_std=1.5, b_std=0.5)
    whole = chain_twin(chain, dtype, False, 200, draw=base)
    tail = chain_twin(chain, dtype, False, 120, draw=Draw((11, 12), first=80, w_std=1.5, b_std=0.5))
    assert np.array_equal(whole[:, 80:], tail)  # the same route on the same inputs
    other = chain_twin(chain, dtype, False, 200, draw=Draw((11, 13), w_std=1.5, b_std=0.5))
    assert not np.isclose(whole, other).any(axis=0).all()


@pytest.mark.parametrize("chain, draw", [(c, d) for c, log, d in DRAWN_CASES if not log][1:3])
def test_draw_kernel_gives_each_sample_the_networks_the_drawn_kernel_drew(chain_twin, chain, draw):
    """cuda.draw_source at any sample indices writes the very x, y, W, B the drawn chain kernel draws for
    them: the plain kernel on them gives its gradients bit for bit (and they are the NumPy reference's
    draws to a few ulps, libm's log and cos)."""
    n, m, at = chain.depth, 300, np.array([299, 0, 17, 5, 17])
    for dtype in REL:
        data = chain_twin.draw_at(draw, n, at, dtype)
        assert all(np.isfinite(a).all() for a in data)
        drawn = chain_twin(chain, dtype, False, m, draw=draw)
        plain = chain_twin(chain, dtype, False, at.size, data=data)
        assert np.array_equal(plain, drawn[:, at])
        for got, want in zip(data, draw.inputs(n, at.size, dtype, at=at)):
            np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps, atol=0)


@pytest.mark.parametrize("log", [False, True])
def test_flagged_drawn_samples_are_redone_on_the_same_draws(chain_twin, log):
    """A drawn kernel's flagged samples (softplus' = inf/inf past exp's range) are drawn again by
    cuda.draw_source and redone by the per-layer path (cuda.finish), which repairs them: the whole result is
    then the NumPy engine's on the reference draws."""
    from symvg.engines import numeric
    from symvg.engines.plan import Inputs

    chain, m = FLAGGED, 400
    for dtype in REL:
        draw = Draw((21, 22), first=10**6, w_std={"float64": 300.0, "float32": 40.0}[dtype])
        G, S, flags, status = chain_twin(chain, dtype, log, m, draw=draw, flagged=True)
        assert 0 < np.count_nonzero(flags) < m, dtype

        def again(idx):
            return Inputs(*chain_twin.draw_at(draw, chain.depth, idx, dtype), int(idx.size))
        got = cuda.finish(chain, again, G, S, flags, status, backend="numpy", dtype=dtype, allow_underflow=True)
        want = numeric.gradients(chain, *draw.inputs(chain.depth, m, dtype), dtype=dtype, engine="chunked", log=log,
                                 allow_underflow=True)
        if log:
            assert np.array_equal(got[1], want[1]) and not np.isnan(got[0]).any()  # -inf: φ' = e^z/(1+e^z) = 0
            np.testing.assert_allclose(got[0], want[0], rtol=10 * np.finfo(dtype).eps, atol=50 * np.finfo(dtype).eps)
        else:
            assert np.isfinite(got).all()
            assert_close_rowwise(got.astype(float), want.astype(float), 50 * REL[dtype])


def test_a_draw_that_can_pass_the_dtype_is_refused_before_the_device():
    with pytest.raises(errors.InvalidValueError, match=r"up to \|mean\| \+ 8.572·std = 8.572e\+38\) can pass float32"):
        cuda.launch_drawn(Chain(2, "sigmoid"), Draw((1, 2), w_std=1e38), 10, np.dtype("float32"))


def test_both_cuda_launches_run_end_to_end_on_the_c_twins(chain_twin, monkeypatch):
    """cuda.launch and cuda.launch_drawn, host side and all (buffers, the kernel's arguments, the status read,
    flagged samples drawn again and redone), with NumPy standing in for CuPy and the C twins for the device;
    only the redo's per-layer CuPy kernels are replaced by NumPy's engine. The flagged samples are softplus
    past exp's range, repaired exactly: the result is the NumPy engine's on the reference draws."""
    import sys
    import types

    from symvg.engines import numeric

    fake = types.ModuleType("cupy")
    fake.__getattr__ = lambda name: getattr(np, name)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    kernel = lambda name: lambda grid, block, args: chain_twin.call(name, args)  # noqa: E731
    monkeypatch.setattr(cuda, "_compiled", lambda key: kernel(cuda.chain_source(key).name))
    monkeypatch.setattr(cuda, "_raw", lambda src: kernel(src.name))
    monkeypatch.setattr(cuda, "_device_layers", lambda layers, device: np.array(layers, dtype=np.uint8))
    fake.cuda = types.SimpleNamespace(Device=lambda: types.SimpleNamespace(id=0))
    finish = cuda.finish
    monkeypatch.setattr(cuda, "finish", lambda *a, **k: finish(*a, **{**k, "backend": "numpy"}))
    chain, m = FLAGGED, 300
    draw = Draw((21, 22), first=10**6, w_std=300.0)
    data = draw.inputs(chain.depth, m)
    for log in (False, True):
        want = numeric.gradients(chain, *data, engine="chunked", log=log, allow_underflow=True)
        for got in (cuda.launch_drawn(chain, draw, m, np.dtype("float64"), log=log, allow_underflow=True),
                    cuda.launch(chain, prepare(chain, *data, np, "float64"), np.dtype("float64"), log=log,
                                allow_underflow=True)):
            if log:
                assert np.array_equal(got[1], want[1])
                np.testing.assert_allclose(got[0], want[0], rtol=1e-14, atol=1e-13)
            else:
                assert_close_rowwise(got, want, 1e-12)
