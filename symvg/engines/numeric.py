"""Fast numeric evaluation of every dL/dw_k, for millions of samples at once.

One job: turn a :class:`~symvg.symbolic.chain.Chain` (or one :class:`~symvg.symbolic.derive.Derivation` of it) into
array code. The symbolic work happens once per activation (:mod:`symvg.engines.kernels` derives and proves
the local pieces φ, φ' and picks a kernel); the numbers then flow through the structured chain
rule that :mod:`symvg.symbolic.derive` writes down, never through the nested closed form:

    forward   z_k = w_k·h_{k-1} + b_k,  h_k = φ_k(z_k) (+ h_{k-1} if residual),  keep h_k and φ'_k
    backward  δ_N = ∂L/∂h_N;  a_k = δ_k·φ'_k;  g_k = a_k·h_{k-1};  δ_{k-1} = a_k·w_k  (residual: δ_k + a_k·w_k)

so all N gradients cost one forward and one backward pass. This module is the API: it validates the
arguments once (inputs, dtype, ``out=``) into a :class:`~symvg.engines.registry.Request`, and
:mod:`symvg.engines.registry` picks the engine, one entry each:

* ``fused`` (:mod:`symvg.engines.fused`, needs numba: ``pip install symvg[fast]``): one compiled kernel, blocks of
  samples carried through every layer in cache, a vectorised ``exp``, all cores. 2.5-4× faster than
  ``chunked`` for the sigmoid (benchmarks/README.md); chains with one activation throughout, not the log
  domain.
* ``chunked`` (:mod:`symvg.engines.chunked`): NumPy on cache-sized chunks, two threads taking chunks in turn (NumPy releases the GIL),
  every operation writing into a buffer it owns (``out=``); sigmoid needs one ``exp`` per layer and sample.
  Takes everything, and is the reference the fused engine is tested against.
* ``cuda`` (:mod:`symvg.engines.cuda`, ``backend="cupy"``): one CUDA kernel for the whole chain; chains
  deeper than it keeps go to ``chunked`` on CuPy (one kernel per layer and direction).

``engine="auto"`` (the default) takes the first entry that accepts the request: ``fused`` when numba is
installed, the chain qualifies, and its kernel is compiled already (:func:`compile` does that) or the
work is large enough to repay compiling it (:data:`symvg.engines.registry.FUSED_MIN_WORK`); else
``chunked``. Activations whose formulas call a function the kernel cannot vectorise (log, say) stay on
``chunked``, which is as fast or faster for them (:func:`symvg.engines.fused.scalar_calls`). An
engine named by ``engine=`` runs or says why not. :func:`evaluate` also reports which engine ran, and why
those before it declined.

>>> import numpy as np
>>> from symvg.symbolic.chain import Chain
>>> g = gradients(Chain(2, "relu"), x=2.0, y=0.0, weights=[0.5, 3.0], biases=[0.0, 0.0])
>>> g.tolist()                    # derive(Chain(2, "relu"), 1).evaluate(...) gives 36 exactly
[[36.0], [6.0]]

Which mode to use:

* ``float64`` (default): relative error ~1e-15 per layer; right while |g| > 1e-308. A sigmoid chain
  shrinks by at most 1/4 per layer, so from depth ~500 the gradient *underflows to exactly 0*.
* ``float32``: twice as fast, ~1e-7 per layer, underflows from depth ~60 for sigmoid. Good for
  magnitudes and statistics, not for comparing with exact values.
* ``log=True``: returns ``(log|g|, sign)`` by adding log|φ'| + log|w| instead of multiplying, so any
  depth keeps its magnitude (log|g| ≈ −896 at depth 600, w = 1, where float64 says 0). Costs a ``log`` per
  factor (~3× slower). Only the product is taken in logs: a φ' that itself underflows (sigmoid at
  z < −745) is still 0.
* :func:`symvg.engines.reference.reference`: mpmath at 50 digits, one sample at a time -- for tests, not for speed.

BCE is taken through the logit: every engine starts the backward pass from ∂L/∂z_N
(:func:`symvg.engines.kernels.loss_form`: σ(z_N) − y for a sigmoid output, written so that no 1 − h_N is formed),
not from ∂L/∂h_N = (h − y)/(h(1 − h)), which loses every digit once h_N rounds to 1 (z_N ≳ 37).

Numbers the floats cannot hold are reported, not returned: ``OverflowReport``, ``DomainError`` (NaN) and
``UnderflowReport`` (a nonzero gradient that became 0) from :mod:`symvg.errors`; see :func:`gradients`.

What is *not* reported (measured; each check was weighed against its cost):

* Digits lost in the subnormal range. A value below the dtype's smallest normal (float32 1.2e-38, float64
  2.2e-308) holds fewer digits, and a factor there passes that on. BCE at z_N = 100 in float32:
  ∂L/∂z_N = −e^{-100} = −3.7e-44 is 26 steps of float32's subnormal spacing 1.4e-45, and the three dL/dw_k
  come out 1.9 %, 1.7 % and 4.2 % off mpmath (4, 10 and 1 steps; the nearest float32 values are 0.06 %, 0.01 %
  and 1.6 % off), with no note. How often: no gradient of 20 000 samples was subnormal for N = 20 sigmoid, tanh
  or ReLU chains in float32 at the gaussian init; 12 % were at N = 60 (sigmoid). ``symvg eval``
  (:mod:`symvg.engines.sampling`) counts and notes subnormal gradients; here a pass over the result to find them
  cost as much as the fused kernel itself (0.13 s on 0.14 s, sigmoid float32, N = 20, M = 10^6), so it is left
  to the caller: ``(g != 0) & (abs(g) < numpy.finfo(dtype).tiny)``. That misses a subnormal intermediate that a
  later factor brings back into the normal range (a·h with |h| ≥ 2^23), which only a check of every product in
  the kernels would see. ``dtype="float64"`` keeps such values normal down to 2.2e-308.
* A residual sum that cancels to a nonzero, wrong value. h_k = h_(k-1) + φ(z_k) and δ_(k-1) = δ_k + a_k·w_k
  are flagged only where they cancel to exactly 0 (1 + tanh(-40)); 1 + tanh(-18.5) gives 2.2e-16 in float64,
  where the value is 1.7e-16 (30 % off), and passes on unflagged. A relative check (|h_k| far below |h_(k-1)|)
  would cost a comparison per residual step and sample in the fused and CUDA kernels and, for what it flags,
  an mpmath probe per sample; it is not made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from symvg.engines import fused, registry
from symvg.engines.chunked import CHUNK_BYTES, THREADS
from symvg.engines.plan import BACKENDS, array_module, check_dtype, check_out, plan, prepare
from symvg.engines.registry import ENGINES, Evaluation, Request
from symvg.errors import InvalidChainError, InvalidValueError
from symvg.symbolic.chain import Chain
from symvg.symbolic.derive import Derivation


def choose_engine(chain: Chain, samples: int, *, backend: str = "numpy", log: bool = False,
                  engine: str = "auto", dtype: Any = "float64") -> str:
    """Which engine :func:`gradients` runs for ``samples`` samples: ``fused``, ``chunked`` or ``cuda``
    (:func:`symvg.engines.registry.route`; nothing is validated but the engine, nothing run).

    An engine named by ``engine=`` is refused with the reason when it cannot run; ``"auto"`` passes on.

    >>> choose_engine(Chain(3, ["relu", "tanh", "relu"]), 10**9)   # mixed activations: NumPy's
    'chunked'
    >>> choose_engine(Chain(3, "relu"), 10**9, backend="cupy")
    'cuda'
    >>> choose_engine(Chain(2, "relu"), 1, engine="fused", log=True)
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: engine 'fused' does not take this request: it computes direct gradients, not the log domain (log=True); engine='auto' picks one that does
    """
    if backend not in BACKENDS:
        raise InvalidValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    req = Request(chain, backend, check_dtype(dtype), bool(log), samples, engine)
    return registry.route(req).engine.name


def _request(chain: Chain, x: Any, y: Any, weights: Any, biases: Any, backend: str, dtype: Any, log: bool,
             engine: str, chunk: int | None, threads: int | None, out: Any, allow_underflow: bool) -> Request:
    """Every argument checked, once: the one place :func:`gradients` and :func:`evaluate` validate."""
    xp = array_module(backend)
    dt = check_dtype(dtype)
    if engine not in ENGINES:
        raise InvalidValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise InvalidValueError(f"threads must be an integer >= 1, got {threads!r}")
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise InvalidValueError(f"chunk must be an integer >= 1, got {chunk!r}")
    plan(chain)  # a Chain, and its local forms derived
    inp = prepare(chain, x, y, weights, biases, xp, dt, check_finite=False)  # the engine checks NaN/inf
    if out is not None:
        check_out(out, inp, (chain.depth, inp.samples), dt, xp, bool(log))
    return Request(chain, backend, dt, bool(log), inp.samples, engine, inp, out, threads, chunk,
                   bool(allow_underflow))


# ----------------------------------------------------------------------------- public API

def gradients(chain: Chain, x: Any, y: Any, weights: Any, biases: Any = None, *, backend: str = "numpy",
              dtype: Any = "float64", log: bool = False, engine: str = "auto", chunk: int | None = None,
              threads: int | None = None, out: Any = None, allow_underflow: bool = False) -> Any:
    """dL/dw_k for every layer k and sample: an (N, M) array (row k-1 is layer k).

    ``weights``/``biases`` have shape (N,) (shared by all samples) or (N, M) (one network per sample);
    ``x``, ``y`` are scalars or (M,). With ``log=True`` returns ``(log|g|, sign)``. ``engine`` picks the
    CPU engine (see the module docstring); ``chunk`` sizes the chunked engine's chunks. ``threads``: the
    fused engine uses every core and the chunked one :data:`symvg.engines.chunked.THREADS` unless told otherwise. ``out``: an
    (N, M) C-contiguous array of ``dtype`` to write the result into, and return. For repeated calls: a
    fresh result costs the operating system's zeroing of its pages, ~10 ms per 160 MB on one core here
    (benchmarks/README.md). When the call raises (a NaN in the inputs, say), what ``out`` holds is
    unspecified: the fused engine finds bad inputs in the pass that writes it.

    What the floats cannot hold is reported, never returned as the answer (:mod:`symvg.errors`):
    ``OverflowReport`` where |g| (or, with ``log=True``, a forward value) is beyond the dtype's range, or where a
    product on the way to a |g| within it overflowed (the message tells the two apart, from the log domain),
    ``DomainError`` where a value is not a real number (NaN: an activation built directly with log(z), evaluated
    at z < 0 (``expr:`` refuses such formulas), BCE of a prediction outside (0, 1)), and ``UnderflowReport`` where
    a nonzero gradient became exactly 0 (found where the floating-point underflow flag was raised, or a kernel
    flagged a 0 that its forms do not hold exactly, confirmed in the log domain or by mpmath). ``log=True`` carries the
    magnitudes of deep products as log|g|; ``allow_underflow=True`` accepts underflowed zeros instead (as
    :mod:`symvg.engines.sampling` does, which counts them). A 0 that is exact (a ReLU that is off) is no underflow.

    >>> from symvg.symbolic.chain import Chain
    >>> g = gradients(Chain(3, "sigmoid"), x=[0.5, -1.0], y=1.0, weights=[1.0, 2.0, -1.0])
    >>> g.shape, bool((g[2] < 0).all())   # h3 < y = 1 and h2 > 0: raising w3 lowers L
    ((3, 2), True)
    >>> lg, sign = gradients(Chain(600, "sigmoid"), 1.0, 0.0, [1.0] * 600, log=True)
    >>> round(float(lg[0, 0]), 2), float(sign[0, 0])
    (-895.67, 1.0)
    >>> gradients(Chain(600, "sigmoid"), 1.0, 0.0, [1.0] * 600)
    Traceback (most recent call last):
    symvg.errors.UnderflowReport: dL/dw_k underflows float64 to 0 for 101 value(s) in layer(s) 1, 2, 3, 4, 5, 6, 7, 8, … (the largest is 10^-324.3): pass log=True for log|g|, or allow_underflow=True to accept the zeros
    >>> gradients(Chain(600, "sigmoid"), 1.0, 0.0, [1.0] * 600, allow_underflow=True)[0, 0]
    np.float64(0.0)
    >>> gradients(Chain(3, "linear"), [1e308], 0.0, [10.0] * 3)
    Traceback (most recent call last):
    symvg.errors.OverflowReport: dL/dw_k cannot be computed in float64 for 3 value(s) in layer(s) 1, 2, 3: a pre-activation z_k = w_k·h_(k-1) + b_k overflowed (|z| beyond 1.8e+308)
    """
    return evaluate(chain, x, y, weights, biases, backend=backend, dtype=dtype, log=log, engine=engine, chunk=chunk,
                    threads=threads, out=out, allow_underflow=allow_underflow).gradients


def evaluate(chain: Chain, x: Any, y: Any, weights: Any, biases: Any = None, *, backend: str = "numpy",
             dtype: Any = "float64", log: bool = False, engine: str = "auto", chunk: int | None = None,
             threads: int | None = None, out: Any = None, allow_underflow: bool = False) -> Evaluation:
    """:func:`gradients`, with the engine that computed them: an :class:`~symvg.engines.registry.Evaluation`
    (``gradients``, ``engine``, ``backend``, and ``refusals``: why each engine asked before it declined).

    >>> ev = evaluate(Chain(2, ["relu", "tanh"]), 1.0, 0.0, [0.5, 3.0])
    >>> ev.engine, ev.backend, ev.gradients.shape
    ('chunked', 'numpy', (2, 1))
    >>> ev.refusals
    (('fused', 'it takes chains with one activation in every layer; this one has 2'),)
    """
    req = _request(chain, x, y, weights, biases, backend, dtype, log, engine, chunk, threads, out, allow_underflow)
    return registry.evaluate(req)


@dataclass(frozen=True)
class Compiled:
    """A chain (all layers) or one derivation (layer ``wrt``) compiled for a backend and dtype."""

    chain: Chain
    wrt: int | None
    backend: str
    dtype: str
    log: bool = False
    engine: str = "auto"

    def __call__(self, x: Any, y: Any, weights: Any, biases: Any = None, *, out: Any = None) -> Any:
        """The gradients; ``out``, as in :func:`gradients`, is the whole (N, M) result (also with ``wrt``)."""
        g = gradients(self.chain, x, y, weights, biases, backend=self.backend, dtype=self.dtype, log=self.log,
                      engine=self.engine, out=out)
        if self.wrt is None:
            return g
        k = self.wrt - 1
        return (g[0][k], g[1][k]) if self.log else g[k]


def compile(target: Chain | Derivation, backend: str = "numpy", dtype: Any = "float64", log: bool = False,
            engine: str = "auto") -> Compiled:
    """A callable ``f(x, y, weights, biases)``: (N, M) gradients for a Chain, dL/dw_k (M,) for a Derivation.

    The symbolic work (proving the local forms, lambdify with cse) happens here, once, and so does the
    fused engine's numba compilation where the registry routes the chain to it (numba installed, one
    activation the kernel vectorises or ``engine="fused"``, not ``log``): the same lookup as :func:`gradients`,
    for work yet to come.

    >>> from symvg.symbolic.chain import Chain
    >>> from symvg.symbolic.derive import derive
    >>> f = compile(derive(Chain(2, "relu"), wrt=1))
    >>> f(2.0, 0.0, [0.5, 3.0], [0.0, 0.0]).tolist()
    [36.0]
    """
    if isinstance(target, Derivation):
        chain, wrt = target.chain, target.wrt
    elif isinstance(target, Chain):
        chain, wrt = target, None
    else:
        raise InvalidChainError(f"compile needs a Chain or a Derivation, got {type(target).__name__}")
    array_module(backend)  # fail now, not at the first call
    dt = check_dtype(dtype)
    plan(chain)
    # the one lookup gradients() makes, for work that is to come: the entry it picks does its one-off work
    # (the fused engine's numba compilation) here, not in the first call
    req = Request(chain, backend, dt, bool(log), 0, engine, ahead=True)
    try:
        registry.route(req).engine.warm(req)
    except fused.UnsupportedError:
        if engine == "fused":
            raise  # with auto, the failure is noted (registry.KernelCache) and the calls go to NumPy
    return Compiled(chain, wrt, backend, dt.name, bool(log), engine)


def estimate_bytes(depth: int, samples: int, dtype: Any = "float64", per_sample: bool = False,
                   log: bool = False, chunk: int | None = None, threads: int = THREADS) -> int:
    """Bytes :func:`gradients` allocates: the (N, M) result (twice for log), W and B when per sample,
    x and y, and each thread's chunk buffers.

    >>> estimate_bytes(20, 10**6) // 10**6      # MB: the 160 MB float64 result dominates
    187
    """
    item = check_dtype(dtype).itemsize
    chunk = CHUNK_BYTES // item if chunk is None else chunk
    full = depth * samples * item
    out = full * (2 if log else 1) + (2 * full if per_sample else 0) + 2 * samples * item
    return out + threads * (2 * depth + 5) * min(chunk, max(samples, 1)) * item


__all__ = ["BACKENDS", "Compiled", "ENGINES", "Evaluation", "array_module", "choose_engine", "compile",
           "estimate_bytes", "evaluate", "gradients"]
