"""Fast numeric evaluation of every dL/dw_k, for millions of samples at once.

One job: turn a :class:`~symvg.symbolic.chain.Chain` (or one :class:`~symvg.symbolic.derive.Derivation` of it) into
array code. The symbolic work happens once per activation (:mod:`symvg.engines.kernels` derives and proves
the local pieces φ, φ' and picks a kernel); the numbers then flow through the structured chain
rule that :mod:`symvg.symbolic.derive` writes down, never through the nested closed form:

    forward   z_k = w_k·h_{k-1} + b_k,  h_k = φ_k(z_k) (+ h_{k-1} if residual),  keep h_k and φ'_k
    backward  δ_N = ∂L/∂h_N;  a_k = δ_k·φ'_k;  g_k = a_k·h_{k-1};  δ_{k-1} = a_k·w_k  (residual: δ_k + a_k·w_k)

so all N gradients cost one forward and one backward pass. This module is the API and the routing; two
CPU engines run it:

* ``fused`` (:mod:`symvg.engines.fused`, needs numba: ``pip install symvg[fast]``): one compiled kernel, blocks of
  samples carried through every layer in cache, a vectorised ``exp``, all cores. 2.5-4× faster than
  ``chunked`` for the sigmoid (benchmarks/README.md); chains with one activation throughout, not the log
  domain.
* ``chunked`` (:mod:`symvg.engines.chunked`): NumPy on cache-sized chunks, two threads taking chunks in turn (NumPy releases the GIL),
  every operation writing into a buffer it owns (``out=``); sigmoid needs one ``exp`` per layer and sample.
  Takes everything, and is the reference the fused engine is tested against.

``engine="auto"`` (the default) picks ``fused`` when numba is installed, the chain qualifies, and its kernel
is compiled already (:func:`compile` does that) or the work is large enough to repay compiling it
(:data:`FUSED_MIN_WORK`); else ``chunked``. Activations whose formulas call a function the kernel cannot
vectorise (erf for GELU, log) stay on ``chunked``, which is as fast or faster for them
(:func:`symvg.engines.fused.scalar_calls`). ``backend="cupy"`` runs one fused CUDA kernel per layer.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from symvg.engines import fused
from symvg.engines.chunked import CHUNK_BYTES, THREADS, check_underflow, run
from symvg.engines.kernels import fp_guard
from symvg.engines.plan import Inputs, Plan, check_dtype, check_finite_inputs, check_out, plan, prepare
from symvg.errors import BackendUnavailableError, InvalidChainError, InvalidValueError
from symvg.symbolic.chain import Chain
from symvg.symbolic.derive import Derivation

BACKENDS = ("numpy", "cupy")
ENGINES = ("auto", "fused", "chunked")
FUSED_MIN_WORK = 1 << 30
"""N·M from which ``engine="auto"`` compiles the fused kernel on the spot. Compiling costs 4-5 s once per
activation, loss and dtype; the fused engine saves ~2 ns per number over the chunked one (N = 20,
sigmoid, benchmarks/README.md), so one call repays it only from ~10⁹ numbers. Below that, ``auto`` uses
the fused engine once it is compiled: by :func:`compile`, an earlier call, or ``engine="fused"``."""


# ----------------------------------------------------------------------------- backends and inputs


def array_module(backend: str) -> Any:
    """``numpy``, or ``cupy`` imported lazily with a usable GPU; else BackendUnavailableError.

    >>> array_module("numpy").__name__
    'numpy'
    >>> array_module("jax")
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: backend must be one of numpy, cupy, got 'jax'
    """
    if backend not in BACKENDS:
        raise InvalidValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "numpy":
        return np
    try:
        import cupy
    except ImportError:
        raise BackendUnavailableError("backend 'cupy' needs CuPy: pip install symvg[gpu]") from None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise BackendUnavailableError("backend 'cupy': CuPy is installed but no CUDA device was found")
    except cupy.cuda.runtime.CUDARuntimeError as e:
        raise BackendUnavailableError(f"backend 'cupy': no usable CUDA device ({e})") from None
    return cupy


def choose_engine(chain: Chain, samples: int, *, backend: str = "numpy", log: bool = False,
                  engine: str = "auto", dtype: Any = "float64") -> str:
    """Which engine :func:`gradients` runs: ``fused``, ``chunked`` or (backend ``cupy``) ``cuda``.

    ``engine="fused"`` is refused with the reason when it cannot run; ``"auto"`` falls back quietly.

    >>> choose_engine(Chain(3, ["relu", "tanh", "relu"]), 10**9)   # mixed activations: NumPy's
    'chunked'
    >>> choose_engine(Chain(3, "relu"), 10**9, backend="cupy")
    'cuda'
    >>> choose_engine(Chain(2, "relu"), 1, engine="fused", log=True)
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: engine 'fused' is the CPU kernel for direct gradients: not with backend 'cupy' or log=True (use engine='chunked' or 'auto')
    """
    if engine not in ENGINES:
        raise InvalidValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "fused":
        if backend != "numpy" or log:
            raise InvalidValueError("engine 'fused' is the CPU kernel for direct gradients: not with backend "
                                    "'cupy' or log=True (use engine='chunked' or 'auto')")
        if not fused.available():
            raise BackendUnavailableError("engine 'fused' needs numba: pip install symvg[fast]")
        if not fused.supports(chain):
            raise InvalidValueError("engine 'fused' takes chains with one activation in every layer; "
                                    f"this one has {len(set(chain.activations))} (use engine='chunked' or 'auto')")
        return "fused"
    if backend != "numpy":
        return "cuda"
    if engine == "auto" and not log and fused.supports(chain) and not fused.refused(chain, dtype) and (
            chain.depth * samples >= FUSED_MIN_WORK or fused.is_compiled(chain, dtype)) and (
            not fused.scalar_calls(chain.activations[0])):
        return "fused"
    return "chunked"


def _run_fused(p: Plan, inp: Inputs, dtype: np.dtype, chunk: int, threads: int | None,
               out: np.ndarray | None = None, allow_underflow: bool = True) -> np.ndarray:
    # The kernel is compiled for C-contiguous writable arrays, W and B always (N, ·): anything else
    # (a broadcast scalar, a read-only array) is copied rather than compiled for again.
    def as2d(a: np.ndarray) -> np.ndarray:  # shared (N,) → (N, 1): one kernel shape for both
        return np.require(a[:, None] if a.ndim == 1 else a, requirements="CW")

    x, y = np.require(inp.x, requirements="CW"), np.require(inp.y, requirements="CW")
    W, B = as2d(inp.W), as2d(inp.B)
    G, bad, low = fused.gradients_and_bad(p.chain, x, y, W, B, threads=threads, out=out)
    subs = [Inputs(x[sl], y[sl], inp.W if inp.shared_w else inp.W[:, sl], inp.B if inp.shared_b else inp.B[:, sl],
                   sl.stop - sl.start) for sl in bad]
    for sub in subs:  # something was not finite in these blocks: an input (refused here) ...
        check_finite_inputs(sub)
    # ... or a local formula that overflowed: the chunked engine repairs it exactly, or reports what the
    # floats cannot hold (overflow, NaN, underflow)
    for sl, sub in zip(bad, subs):
        G[:, sl] = run(p, np, sub, dtype, False, chunk, 1, allow_underflow=allow_underflow)
    if low and not allow_underflow:
        with fp_guard():
            check_underflow(p, np, inp, G, low, dtype)
    return G


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
    ``OverflowReport`` where |g| (or, with ``log=True``, a forward value) is beyond the dtype's range,
    ``DomainError`` where a value is not a real number (NaN: ``expr:log(z)`` at z < 0, BCE of a prediction
    outside (0, 1)), and ``UnderflowReport`` where a nonzero gradient became exactly 0 (found where the
    floating-point underflow flag was raised, confirmed in the log domain). ``log=True`` carries the
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
    symvg.errors.OverflowReport: dL/dw_k overflows float64 (|g| beyond 1.8e+308) for 3 value(s) in layer(s) 1, 2, 3; log=True carries log|g| where only the backward products overflow, not the forward pass
    """
    xp = array_module(backend)
    dt = check_dtype(dtype)
    chunk = CHUNK_BYTES // dt.itemsize if chunk is None else chunk
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise InvalidValueError(f"threads must be an integer >= 1, got {threads!r}")
    if not isinstance(chunk, int) or chunk < 1:
        raise InvalidValueError(f"chunk must be an integer >= 1, got {chunk!r}")
    p = plan(chain)
    inp = prepare(chain, x, y, weights, biases, xp, dt, check_finite=False)
    if out is not None:
        check_out(out, inp, (chain.depth, inp.samples), dt, xp, bool(log))
    if choose_engine(chain, inp.samples, backend=backend, log=bool(log), engine=engine, dtype=dt) == "fused":
        try:  # checks for NaN and inf as it goes
            return _run_fused(p, inp, dt, chunk, threads, out, allow_underflow=bool(allow_underflow))
        except fused.UnsupportedError:
            if engine == "fused":
                raise
            fused.refuse(chain, dt)  # auto: remember, and let NumPy evaluate it from now on
    check_finite_inputs(inp, xp)
    return run(p, xp, inp, dt, bool(log), chunk, THREADS if threads is None else threads, out,
                allow_underflow=bool(allow_underflow))


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
    fused engine's numba compilation when it applies (numba installed, one activation, not ``log``,
    ``engine`` not ``chunked``).

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
    choose_engine(chain, 0, backend=backend, log=bool(log), engine=engine, dtype=dt)
    plan(chain)
    if engine != "chunked" and backend == "numpy" and not log and fused.supports(chain) and (
            engine == "fused" or not fused.scalar_calls(chain.activations[0])):
        try:
            fused.warm(chain, dt)  # the one-off numba compilation happens here, not in the first call
        except fused.UnsupportedError:
            if engine == "fused":
                raise
            fused.refuse(chain, dt)
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


__all__ = ["BACKENDS", "Compiled", "ENGINES", "FUSED_MIN_WORK", "array_module", "choose_engine", "compile",
           "estimate_bytes", "gradients"]
