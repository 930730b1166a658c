"""The engines, one entry each: why an entry does not take a request (or nothing), and how it runs one.

One job: routing. :func:`symvg.engines.numeric.gradients` validates its arguments once into a
:class:`Request`; :func:`route` then asks the entries of :data:`ENTRIES`, in order, and the first whose
``refusal(request)`` is None runs it:

=========  =======  ===================================================================================
entry      backend  takes
=========  =======  ===================================================================================
fused      numpy    one numba kernel for the whole pass (:mod:`symvg.engines.fused`): numba installed,
                    one activation throughout, direct gradients; with ``engine="auto"`` also an
                    activation the kernel vectorises, and a kernel compiled already or work
                    (N·M ≥ :data:`FUSED_MIN_WORK`) that repays compiling it
chunked    numpy    NumPy on cache-sized chunks (:mod:`symvg.engines.chunked`): everything
cuda       cupy     one CUDA kernel for the whole chain (:mod:`symvg.engines.cuda`): depths up to
                    ``SEG·CHECKPOINTS``, log domain and ``out=`` included
chunked    cupy     the chunked engine on CuPy, one kernel per layer and direction: everything
=========  =======  ===================================================================================

``engine="fused"``, ``"chunked"`` or ``"cuda"`` names an entry (for the request's backend): its refusal
becomes the error (:func:`route`). The fused entry owns the one piece of state routing reads: a
:class:`KernelCache` of which kernels compiled in this process and which failed (and why).

>>> from symvg.symbolic.chain import Chain
>>> route(Request(Chain(20, "sigmoid"), backend="cupy", samples=10**7)).engine.name
'cuda'
>>> r = route(Request(Chain(5000, "sigmoid"), backend="cupy", samples=10))
>>> r.engine.name, r.engine.backend, r.refusals[0][0]
('chunked', 'cupy', 'cuda')
>>> route(Request(Chain(2, "relu"), log=True, engine="fused"))
Traceback (most recent call last):
symvg.errors.InvalidValueError: engine 'fused' does not take this request: it computes direct gradients, not the log domain (log=True); engine='auto' picks one that does
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Protocol, TypeVar

import numpy as np

from symvg.engines import cuda, fused
from symvg.engines.chunked import CHUNK_BYTES, THREADS, check_underflow, run
from symvg.engines.kernels import fp_guard
from symvg.engines.plan import Inputs, Plan, check_finite_inputs, plan
from symvg.errors import BackendUnavailableError, InvalidValueError
from symvg.symbolic.chain import Chain

ENGINES = ("auto", "fused", "chunked", "cuda")
"""What ``engine=`` takes: ``auto`` (the first entry that accepts) or an entry's name."""
FUSED_MIN_WORK = 1 << 30
"""N·M from which ``engine="auto"`` compiles the fused kernel on the spot. Compiling costs 7-12 s of CPU on the 2-core
machine once per activation, loss and dtype (later processes load it from disk); the fused engine saves ~2 ns
per number over the chunked one (N = 20, sigmoid, benchmarks/README.md), so one call repays a compile only
from ~10⁹-10¹⁰ numbers. Below that, ``auto`` uses
the fused engine once it is compiled: by :func:`symvg.engines.numeric.compile`, an earlier call, or
``engine="fused"``."""

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Request:
    """One evaluation, validated (:func:`symvg.engines.numeric.gradients` builds it): what to route on
    (chain, backend, dtype, log, samples, the engine asked for) and what to run (inputs, ``out``, threads,
    chunk). ``inputs`` is None when only asking which engine would run (:func:`route`); ``ahead`` marks
    :func:`symvg.engines.numeric.compile`, where compiling now is the point."""

    chain: Chain
    backend: str = "numpy"
    dtype: np.dtype = np.dtype("float64")
    log: bool = False
    samples: int = 0
    engine: str = "auto"
    inputs: Inputs | None = None
    out: Any = None
    threads: int | None = None
    chunk: int | None = None
    allow_underflow: bool = False
    ahead: bool = False

    @property
    def plan(self) -> Plan:
        """The chain's plan (:func:`symvg.engines.plan.plan`, cached per chain)."""
        return plan(self.chain)

    @property
    def chunk_size(self) -> int:
        """Samples per chunk of the chunked engine: ``chunk``, or :data:`~symvg.engines.chunked.CHUNK_BYTES`' worth."""
        return CHUNK_BYTES // self.dtype.itemsize if self.chunk is None else self.chunk


class Engine(Protocol):
    """An entry: ``name`` and ``backend``; ``unavailable()`` names a missing dependency (or None);
    ``refusal(request)`` says why it does not take a request (or None); ``run(request)`` returns the
    gradients (``(log|g|, sign)`` with ``log``); ``warm(request)`` does its one-off work now."""

    name: str
    backend: str

    def unavailable(self) -> str | None: ...

    def refusal(self, request: Request) -> str | None: ...

    def run(self, request: Request) -> Any: ...

    def warm(self, request: Request) -> None: ...


def _wrong_backend(entry: Engine, request: Request) -> str | None:
    if request.backend == entry.backend:
        return None
    where = "the CPU" if entry.backend == "numpy" else "the GPU"
    return f"it runs on {where} (backend {entry.backend!r}), not backend {request.backend!r}"


# ----------------------------------------------------------------------------- fused (numba, CPU)


class KernelCache:
    """What this process has learnt about the fused engine's kernels, by (activation, loss form, dtype):
    compiled, or failed to compile (numba's reason, as :class:`symvg.engines.fused.UnsupportedError` said it).

    The kernels themselves are cached by :mod:`symvg.engines.fused` (numba compiles each on its first call);
    this records only what running them taught, written by :meth:`attempt` alone, which the fused entry
    wraps around every call that may compile. ``engine="auto"`` reads it: a compiled kernel is worth using
    for any work (so is one an earlier process left in the on-disk cache, :func:`symvg.engines.fused.on_disk`),
    and a failed one is not tried again.

    >>> from symvg.symbolic.chain import Chain
    >>> KernelCache().compiled(Chain(2, "relu")), KernelCache().failure(Chain(2, ["relu", "tanh"]))
    (False, None)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[tuple, str | None] = {}  # key -> None (compiled) or why it did not compile

    @staticmethod
    def _key(chain: Chain, dtype: Any) -> tuple | None:
        return fused._key(chain, dtype) if len(set(chain.activations)) == 1 else None

    def compiled(self, chain: Chain, dtype: Any = "float64") -> bool:
        """Whether the kernel ``chain`` needs ran in this process."""
        key = self._key(chain, dtype)
        with self._lock:
            return key is not None and key in self._known and self._known[key] is None

    def failure(self, chain: Chain, dtype: Any = "float64") -> str | None:
        """Why the kernel ``chain`` needs failed to compile in this process, or None."""
        key = self._key(chain, dtype)
        with self._lock:
            return None if key is None else self._known.get(key)

    def attempt(self, chain: Chain, dtype: Any, call: Callable[[], T]) -> T:
        """``call()``, which runs (and so, the first time, compiles) ``chain``'s kernel; its outcome noted."""
        key = self._key(chain, dtype)
        try:
            result = call()
        except fused.UnsupportedError as e:
            with self._lock:
                self._known[key] = str(e)
            raise
        with self._lock:
            self._known[key] = None
        return result


@dataclass(frozen=True)
class Fused:
    """The fused numba kernel (:mod:`symvg.engines.fused`) and its :class:`KernelCache`."""

    kernels: KernelCache = field(default_factory=KernelCache)
    name: ClassVar[str] = "fused"
    backend: ClassVar[str] = "numpy"

    def unavailable(self) -> str | None:
        return None if fused.available() else "needs numba: pip install symvg[fast]"

    def refusal(self, request: Request) -> str | None:
        chain, dt = request.chain, request.dtype
        distinct = len(set(chain.activations))
        if (why := _wrong_backend(self, request)) is not None:
            return why
        if request.log:
            return "it computes direct gradients, not the log domain (log=True)"
        if distinct != 1:
            return f"it takes chains with one activation in every layer; this one has {distinct}"
        if (failed := self.kernels.failure(chain, dt)) is not None:
            return failed
        if request.engine == "fused":  # asked for by name: what compiling costs is the caller's choice
            return None
        act, work = chain.activations[0], chain.depth * request.samples
        if not request.ahead and work < FUSED_MIN_WORK and not self.kernels.compiled(chain, dt) \
                and not fused.on_disk(chain, dt):
            return (f"its {dt.name} kernel for {act.name} is not compiled yet (nor in the on-disk cache), and "
                    f"N·M = {work} numbers do not repay compiling it (seconds; from FUSED_MIN_WORK = "
                    f"{FUSED_MIN_WORK} they do)")
        if calls := fused.scalar_calls(act):  # asked last: the first time, it derives the local forms
            return (f"{act.name} calls {', '.join(sorted(calls))} one element at a time in the kernel (not "
                    "vectorised), where NumPy's engine is as fast")
        return None

    def run(self, request: Request) -> np.ndarray:
        # The kernel is compiled for C-contiguous writable arrays, W and B always (N, ·): anything else
        # (a broadcast scalar, a read-only array) is copied rather than compiled for again.
        def as2d(a: np.ndarray) -> np.ndarray:  # shared (N,) → (N, 1): one kernel shape for both
            return np.require(a[:, None] if a.ndim == 1 else a, requirements="CW")

        inp, p, dt = request.inputs, request.plan, request.dtype
        x, y = np.require(inp.x, requirements="CW"), np.require(inp.y, requirements="CW")
        W, B = as2d(inp.W), as2d(inp.B)
        G, bad, low = self.kernels.attempt(p.chain, dt, lambda: fused.gradients_and_bad(
            p.chain, x, y, W, B, threads=request.threads, out=request.out))
        subs = [Inputs(x[sl], y[sl], inp.W if inp.shared_w else inp.W[:, sl],
                       inp.B if inp.shared_b else inp.B[:, sl], sl.stop - sl.start) for sl in bad]
        for sub in subs:  # something was not finite in these blocks: an input (refused here) ...
            check_finite_inputs(sub)
        # ... or a local formula that overflowed: the chunked engine repairs it exactly, or reports what the
        # floats cannot hold (overflow, NaN, underflow)
        for sl, sub in zip(bad, subs):
            G[:, sl] = run(p, np, sub, dt, False, request.chunk_size, 1, allow_underflow=request.allow_underflow)
        if low and not request.allow_underflow:
            with fp_guard():
                check_underflow(p, np, inp, G, low, dt)
        return G

    def warm(self, request: Request) -> None:
        self.kernels.attempt(request.chain, request.dtype, lambda: fused.warm(request.chain, request.dtype))


# ----------------------------------------------------------------------------- chunked (NumPy or CuPy)


@dataclass(frozen=True)
class Chunked:
    """The chunked engine (:mod:`symvg.engines.chunked`) on one backend: takes every request for it."""

    backend: str
    name: ClassVar[str] = "chunked"

    def unavailable(self) -> str | None:
        return None

    def refusal(self, request: Request) -> str | None:
        return _wrong_backend(self, request)

    def run(self, request: Request) -> Any:
        if self.backend == "numpy":
            xp = np
        else:
            import cupy as xp
        check_finite_inputs(request.inputs, xp)
        threads = THREADS if request.threads is None else request.threads
        return run(request.plan, xp, request.inputs, request.dtype, request.log, request.chunk_size, threads,
                   request.out, allow_underflow=request.allow_underflow)

    def warm(self, request: Request) -> None:
        request.plan  # the local forms are derived and lambdified here; nothing is compiled


# ----------------------------------------------------------------------------- cuda (whole chain, CuPy)


@dataclass(frozen=True)
class Cuda:
    """The whole-chain CUDA kernel (:mod:`symvg.engines.cuda`)."""

    name: ClassVar[str] = "cuda"
    backend: ClassVar[str] = "cupy"

    def unavailable(self) -> str | None:
        return None  # the backend itself was checked (symvg.engines.plan.array_module)

    def refusal(self, request: Request) -> str | None:
        return _wrong_backend(self, request) or cuda.refusal(request.chain)

    def run(self, request: Request) -> Any:
        return cuda.launch(request.chain, request.inputs, request.dtype, log=request.log, out=request.out,
                           allow_underflow=request.allow_underflow)

    def warm(self, request: Request) -> None:
        cuda.chain_source(cuda.kernel_key(request.chain, request.dtype, request.log)[0])  # printed once, cached


# ----------------------------------------------------------------------------- the lookup


FUSED = Fused()
ENTRIES: tuple[Engine, ...] = (FUSED, Chunked("numpy"), Cuda(), Chunked("cupy"))
"""Every engine, in the order ``engine="auto"`` asks them."""


@dataclass(frozen=True)
class Route:
    """The entry that takes a request, and ``(name, why)`` for each entry of that backend asked before it."""

    engine: Engine
    refusals: tuple[tuple[str, str], ...] = ()


def _named(request: Request) -> Engine:
    same = [e for e in ENTRIES if e.name == request.engine]
    entry = next((e for e in same if e.backend == request.backend), same[0])
    if (missing := entry.unavailable()) is not None:
        raise BackendUnavailableError(f"engine {entry.name!r} {missing}")
    if (why := entry.refusal(request)) is not None:
        raise InvalidValueError(f"engine {entry.name!r} does not take this request: {why}; engine='auto' "
                                "picks one that does")
    return entry


def route(request: Request) -> Route:
    """The entry that runs ``request``: the one ``request.engine`` names (its refusal raised as
    InvalidValueError, a missing dependency as BackendUnavailableError), or with ``auto`` the first of
    :data:`ENTRIES` for the request's backend that accepts it."""
    if request.engine not in ENGINES:
        raise InvalidValueError(f"engine must be one of {', '.join(ENGINES)}, got {request.engine!r}")
    if request.engine != "auto":
        return Route(_named(request))
    refusals = []
    for entry in ENTRIES:
        if entry.backend != request.backend:
            continue
        why = entry.refusal(request) or entry.unavailable()
        if why is None:
            return Route(entry, tuple(refusals))
        refusals.append((entry.name, why))
    raise BackendUnavailableError(f"no engine takes this request: {'; '.join(f'{n}: {w}' for n, w in refusals)}")


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` returns: the gradients (an (N, M) array, or ``(log|g|, sign)``), the entry that
    computed them (``engine``, on ``backend``), and ``(name, why)`` for each entry that declined first."""

    gradients: Any
    engine: str
    backend: str
    refusals: tuple[tuple[str, str], ...] = ()


def evaluate(request: Request) -> Evaluation:
    """Run ``request`` on the entry :func:`route` picks. With ``engine="auto"``, a fused kernel that fails to
    compile (a user expression numba cannot type) is noted by its :class:`KernelCache`, so the route taken
    again passes it by, and says why in ``refusals``."""
    chosen = route(request)
    try:
        result = chosen.engine.run(request)
    except fused.UnsupportedError:
        if request.engine != "auto":
            raise
        chosen = route(request)  # the failure is noted now: the fused entry refuses the request
        result = chosen.engine.run(request)
    return Evaluation(result, chosen.engine.name, chosen.engine.backend, chosen.refusals)

__all__ = ["ENGINES", "ENTRIES", "FUSED", "FUSED_MIN_WORK", "Chunked", "Cuda", "Engine", "Evaluation", "Fused",
           "KernelCache", "Request", "Route", "evaluate", "route"]
