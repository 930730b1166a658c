"""symvg.engines.registry: which entry takes which request, and why the others do not.

Routing is asked without running anything (``route`` on a :class:`Request` with no inputs), so the GPU
entries are tested here on the CPU, CuPy or not; what the GPU computes is tested behind
``pytest.importorskip("cupy")`` at the end and in tests/test_cuda_chain.py. No test here compiles a
numba kernel: the fused entry's :class:`KernelCache` is fed its facts directly.
"""

from __future__ import annotations

import numpy as np
import pytest

from symvg.engines import cuda, fused, numeric, registry
from symvg.engines.registry import Chunked, Cuda, Fused, KernelCache, Request, route
from symvg.errors import BackendUnavailableError, InvalidValueError
from symvg.symbolic.chain import Chain

DEEPEST = cuda.SEG * cuda.CHECKPOINTS


@pytest.fixture
def entries(monkeypatch, empty_kernel_cache):
    """A fused entry with a cache of its own, so that no fact noted here reaches other tests, and an empty
    on-disk kernel cache, so that no kernel another test compiled reaches these."""
    fresh = Fused(KernelCache())
    monkeypatch.setattr(registry, "ENTRIES", (fresh, Chunked("numpy"), Cuda(), Chunked("cupy")))
    return fresh


def _name(r: registry.Route) -> tuple[str, str]:
    return r.engine.name, r.engine.backend


def test_cupy_requests_take_the_whole_chain_kernel_unless_it_refuses():
    for chain in (Chain(20, "sigmoid"), Chain(3, ["relu", "tanh", "sigmoid"], loss="bce"),
                  Chain(5, "elu", residual=True), Chain(DEEPEST, "tanh"), Chain(4, "expr:z/(1 + abs(z))")):
        for log in (False, True):
            r = route(Request(chain, "cupy", np.dtype("float32"), log, 10**7))
            assert _name(r) == ("cuda", "cupy") and r.refusals == (), (chain.name, log)
    r = route(Request(Chain(DEEPEST + 1, "tanh"), "cupy", samples=10))
    assert _name(r) == ("chunked", "cupy")  # the per-layer CuPy path takes what the kernel cannot
    assert r.refusals == (("cuda", cuda.refusal(Chain(DEEPEST + 1, "tanh"))),)
    assert f"depth {DEEPEST + 1} is beyond" in r.refusals[0][1]
    assert numeric.choose_engine(Chain(3, "relu"), 10, backend="cupy") == "cuda"


def test_named_engines_on_either_backend():
    chain = Chain(3, "relu")
    assert _name(route(Request(chain, "cupy", engine="chunked"))) == ("chunked", "cupy")
    assert _name(route(Request(chain, "numpy", engine="chunked", log=True))) == ("chunked", "numpy")
    assert _name(route(Request(chain, "cupy", engine="cuda", log=True))) == ("cuda", "cupy")
    with pytest.raises(InvalidValueError, match=r"engine 'cuda' does not take this request: it runs on the GPU "
                                                r"\(backend 'cupy'\), not backend 'numpy'"):
        route(Request(chain, "numpy", engine="cuda"))
    with pytest.raises(InvalidValueError, match=r"engine 'fused' .* runs on the CPU \(backend 'numpy'\)"):
        route(Request(chain, "cupy", engine="fused"))
    with pytest.raises(InvalidValueError, match=r"engine 'cuda' .* depth 5000 is beyond"):
        route(Request(Chain(5000, "relu"), "cupy", engine="cuda"))
    with pytest.raises(InvalidValueError, match="engine must be one of auto, fused, chunked, cuda, got 'numba'"):
        route(Request(chain, engine="numba"))


def test_fused_refusals_say_why(entries, monkeypatch):
    if not fused.available():
        pytest.skip("numba is not installed: the fused entry refuses everything with that reason")
    monkeypatch.setattr(registry, "FUSED_MIN_WORK", 100)

    def why(chain, **kw):
        r = route(Request(chain, **kw))
        return r.engine.name, dict(r.refusals).get("fused")

    assert why(Chain(3, "relu"), log=True, samples=10**9) == ("chunked", "it computes direct gradients, not the "
                                                               "log domain (log=True)")
    assert why(Chain(2, ["relu", "tanh"]), samples=10**9)[1].endswith("one activation in every layer; this one has 2")
    assert "calls log one element at a time" in why(Chain(3, "expr:log(2 + z**2)"), samples=10**9)[1]
    engine, text = why(Chain(3, "relu"), samples=33)  # 99 numbers: below the (patched) 100
    assert engine == "chunked" and "not compiled yet (nor in the on-disk cache), and N·M = 99 numbers do not repay compiling it" in text
    assert why(Chain(3, "relu"), samples=34) == ("fused", None)  # 102 numbers repay it
    assert why(Chain(3, "relu"), samples=1, ahead=True) == ("fused", None)  # compile(): compiling is the point
    assert why(Chain(3, "expr:log(2 + z**2)"), samples=1, engine="fused") == ("fused", None)  # asked for: runs


def test_the_kernel_cache_steers_auto(entries):
    if not fused.available():
        pytest.skip("numba is not installed")
    c32, c64 = (Request(Chain(4, "relu"), dtype=np.dtype(d), samples=1) for d in ("float32", "float64"))
    assert route(c32).engine.name == "chunked"
    assert entries.kernels.attempt(c32.chain, c32.dtype, lambda: "ran") == "ran"  # a kernel ran: compiled
    assert entries.kernels.compiled(Chain(9, "relu"), "float32")  # any depth: the kernel is depth-free
    assert route(c32).engine.name == "fused" and route(c64).engine.name == "chunked"  # per dtype

    def broken():
        raise fused.UnsupportedError("the fused engine cannot compile relu: numba said no")
    with pytest.raises(fused.UnsupportedError):
        entries.kernels.attempt(c64.chain, c64.dtype, broken)
    r = route(Request(Chain(4, "relu"), samples=10**12))  # no work is large enough to try it again
    assert r.engine.name == "chunked" and dict(r.refusals)["fused"].endswith("numba said no")
    with pytest.raises(InvalidValueError, match="engine 'fused' does not take this request: .*numba said no"):
        route(Request(Chain(4, "relu"), engine="fused"))
    assert registry.FUSED.kernels is not entries.kernels and not registry.FUSED.kernels.failure(Chain(4, "relu"))


def test_evaluate_reports_the_engine_that_ran(entries, monkeypatch):
    ev = numeric.evaluate(Chain(2, "relu"), 2.0, 0.0, [0.5, 3.0], [0.0, 0.0])
    assert ev.gradients.tolist() == [[36.0], [6.0]]  # derive(Chain(2, "relu"), k).evaluate(...) gives 36 and 6
    assert (ev.engine, ev.backend) == ("chunked", "numpy") and [n for n, _ in ev.refusals] == ["fused"]
    if not fused.available():
        return
    # a kernel that fails to compile in the call itself: noted, and the call is answered by NumPy's engine
    monkeypatch.setattr(registry, "FUSED_MIN_WORK", 1)

    def broken(*a, **k):
        raise fused.UnsupportedError("the fused engine cannot compile relu: numba said no")
    monkeypatch.setattr(fused, "gradients_and_bad", broken)
    ev = numeric.evaluate(Chain(2, "relu"), 2.0, 0.0, [0.5, 3.0], [0.0, 0.0])
    assert ev.gradients.tolist() == [[36.0], [6.0]] and ev.engine == "chunked"
    assert ev.refusals == (("fused", "the fused engine cannot compile relu: numba said no"),)
    with pytest.raises(fused.UnsupportedError, match="numba said no"):
        numeric.gradients(Chain(2, "sigmoid"), 2.0, 0.0, [0.5, 3.0], engine="fused")


def test_a_cupy_request_without_cupy_is_refused_before_routing():
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(BackendUnavailableError, match=r"pip install symvg\[gpu\]"):
            numeric.evaluate(Chain(2, "relu"), 1.0, 0.0, [1.0, 1.0], backend="cupy")
    else:
        pytest.skip("CuPy is installed: test_on_the_gpu_cupy_routes_to_the_whole_chain_kernel covers it")


def test_on_the_gpu_cupy_routes_to_the_whole_chain_kernel(cupy):
    rng = np.random.default_rng(4)
    x, W = rng.standard_normal(500), rng.standard_normal((6, 500))
    want = numeric.gradients(Chain(6, "sigmoid"), x, 0.3, W, engine="chunked")
    ev = numeric.evaluate(Chain(6, "sigmoid"), x, 0.3, W, backend="cupy")
    assert (ev.engine, ev.backend) == ("cuda", "cupy")
    np.testing.assert_allclose(cupy.asnumpy(ev.gradients), want, rtol=1e-12, atol=1e-300)
    out = cupy.empty((6, 500))
    assert numeric.gradients(Chain(6, "sigmoid"), x, 0.3, W, backend="cupy", out=out) is out
    layered = numeric.evaluate(Chain(6, "sigmoid"), x, 0.3, W, backend="cupy", engine="chunked")
    assert layered.engine == "chunked"
    np.testing.assert_allclose(cupy.asnumpy(layered.gradients), want, rtol=1e-12, atol=1e-300)
