"""Monte Carlo over random networks: how big is dL/dw_k, layer by layer, for random weights and inputs?

One job: draw weights, biases and inputs, run :func:`symvg.engines.numeric.gradients` for all layers,
and summarise each layer's |g| (mean, median, quantiles, how many fall below a tolerance, how many
are exactly 0 or subnormal) in a frozen :class:`GradientStats`. The samples stream in chunks
(:func:`chunk_samples`: 32 MB of gradients), each drawn, evaluated and folded into per-layer
accumulators (:mod:`symvg.engines.streaming`), so memory does not grow with the number of samples;
``backend="cupy"`` draws, evaluates and reduces each chunk on the device and copies only the accumulators.
There, when every sample is its own network, the whole-chain CUDA kernel draws each sample's x, y, w_k, b_k
itself from a counter-based generator (:func:`_drawn`, :mod:`symvg.engines.philox`): no weight array exists.

>>> from symvg.symbolic.chain import Chain
>>> s = sample(Chain(10, "sigmoid"), samples=2000, seed=0)
>>> s.layers[0].k, s.layers[-1].k
(1, 10)
>>> s.layers[0].median_abs < s.layers[-1].median_abs   # the first layer's gradient has vanished most
True
>>> sorted(s.as_dict()["layers"][0])[:4]
['frac_below_tol', 'k', 'mean_abs', 'median_abs']

Before anything is allocated one chunk's memory is estimated and compared with what the machine has
free, and N × M (with the steps per layer and chunk) with what a run evaluates in bounded time (:data:`MAX_WORK`): ``samples=10**11`` is
refused with the numbers. With ``log=True`` the statistics are of log10|g| (``scale = "log10"``), which
stays finite at any depth; ``as_dict`` then names them ``log10_median_abs``, ``log10_geomean_abs``, ``log10_q05`` … .
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, replace
from typing import Any, Union

import numpy as np

from symvg.display import Result
from symvg.symbolic.chain import Chain
from symvg.errors import InvalidValueError
from symvg.engines import streaming as S
from symvg.engines import cuda, numeric, philox, registry
from symvg.engines.numeric import array_module, choose_engine, estimate_bytes, evaluate
from symvg.engines.chunked import CHUNK_BYTES as ENGINE_CHUNK_BYTES
from symvg.engines.plan import check_dtype
from symvg.exact import count

Init = Union[str, tuple[float, float]]
INITS = ("gaussian", "xavier", "he")
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class LayerStats(Result):
    """|dL/dw_k| over the samples (log10|g| when the run was in the log domain)."""

    k: int
    mean_abs: float
    median_abs: float
    q05: float
    q25: float
    q75: float
    q95: float
    frac_below_tol: float
    zeros: int          # exactly 0 (underflowed, or a factor exactly 0: a ReLU that is off, a weight of 0)
    subnormal: int      # 0 < |g| < finfo.tiny: already losing digits


@dataclass(frozen=True)
class GradientStats(Result):
    """Per-layer statistics of one Monte Carlo run, and how it was drawn."""

    chain: str
    depth: int
    samples: int
    init: str
    dtype: str
    backend: str
    engine: str  # the engine that ran: fused, chunked or cuda (symvg.engines.numeric.evaluate reports it)
    log: bool
    tol: float
    shared_weights: bool
    seed: int | None
    layers: tuple[LayerStats, ...]
    chunk: int = 0  # samples per chunk (= samples: one chunk)
    quantile_resolution: float | None = None  # decades (half a histogram bin); None: quantiles exact

    @property
    def scale(self) -> str:
        return "log10" if self.log else "linear"

    def resolution_note(self) -> str | None:
        """How far the quantiles may be from the exact ones, or None where they are exact (one chunk).

        >>> s = sample(Chain(2, "tanh"), samples=3000, seed=0, chunk=1000, engine="chunked")
        >>> s.resolution_note().startswith("quantiles from per-layer histograms of log10|g| (3 chunks of 1000")
        True
        """
        r = self.quantile_resolution
        if r is None:
            return None
        err = f"± {r:.2g} in log10|g|" if self.log else f"± {100 * (10 ** r - 1):.2g} % of |g|"
        return (f"quantiles from per-layer histograms of log10|g| ({-(-self.samples // self.chunk)} chunks of "
                f"{self.chunk} samples): within {err} (half a bin, {r:.2g} decades); counts and extremes are "
                "exact, means to rounding")

    @property
    def underflowed(self) -> tuple[int, ...]:
        """Layers with exact zeros in a direct (not log-domain) run."""
        return tuple(s.k for s in self.layers if s.zeros and not self.log)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready. In the log domain the statistics are named for what they are (LOG_NAMES): the
        mean of log10|g| is ``log10_geomean_abs`` (log10 of the geometric mean), not a mean of |g|.

        >>> from symvg.symbolic.chain import Chain
        >>> sorted(sample(Chain(2, "tanh"), samples=8, seed=0, log=True).as_dict()["layers"][0])[2:5]
        ['log10_geomean_abs', 'log10_median_abs', 'log10_q05']
        """
        d = asdict(self)
        d["scale"] = self.scale
        d["quantiles"] = "exact" if self.quantile_resolution is None else "histogram"
        names = LOG_NAMES if self.log else {}
        # JSON has no ±inf: a statistic that is not finite (log10 of 0) is null
        d["layers"] = [{names.get(k, k): (None if isinstance(v, float) and not np.isfinite(v) else v)
                        for k, v in asdict(s).items()} for s in self.layers]
        return d


LOG_NAMES = {"mean_abs": "log10_geomean_abs", "median_abs": "log10_median_abs", "q05": "log10_q05",
             "q25": "log10_q25", "q75": "log10_q75", "q95": "log10_q95"}
"""JSON names of a log-domain run's statistics (each is of log10|g|, not of |g|)."""


def init_params(init: Init) -> tuple[float, float, str]:
    """(mean, std, label) of the weight distribution; for a scalar chain fan_in = fan_out = 1.

    Xavier's std √(2/(fan_in+fan_out)) is then 1 and He's √(2/fan_in) is √2.

    >>> init_params("he")[1] == 2 ** 0.5, init_params((0, 0.5))
    (True, (0.0, 0.5, 'gaussian(mean=0.0, std=0.5)'))
    >>> init_params("uniform")
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: init must be one of gaussian, xavier, he, or (mean, std), got 'uniform'
    """
    if isinstance(init, str):
        table = {"gaussian": 1.0, "xavier": (2 / (1 + 1)) ** 0.5, "he": (2 / 1) ** 0.5}
        if init not in table:
            raise InvalidValueError(f"init must be one of {', '.join(INITS)}, or (mean, std), got {init!r}")
        return 0.0, table[init], init
    try:
        parts = tuple(init)
    except TypeError:
        parts = ()
    # numbers, not text or bools: ("1", "2") or (True, 1) would otherwise be read as (1.0, 2.0) or (1.0, 1.0)
    if len(parts) != 2 or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in parts):
        raise InvalidValueError(f"init must be one of {', '.join(INITS)}, or (mean, std), got {init!r}")
    mean, std = (float(v) for v in parts)
    if not (np.isfinite(mean) and np.isfinite(std) and std >= 0):
        raise InvalidValueError(f"init (mean, std) needs finite numbers and std >= 0, got {init!r}")
    return mean, std, f"gaussian(mean={mean}, std={std})"


def check_representable(mean: float, std: float, label: str, dtype: np.dtype) -> None:
    """Refuse an init whose mean and std are both below ``dtype``'s smallest normal number (and not both 0): its
    draws would be subnormal (digits lost) or exactly 0 (every gradient through them an exact-looking 0), not the
    distribution asked for. One tiny parameter beside a normal-sized one is only rounded away, as any float
    rounds (the draws are made in float64, then rounded): N(1e-40, 1) in float32 draws normal numbers.

    >>> check_representable(0.0, 1e-50, "gaussian(mean=0.0, std=1e-50)", np.dtype("float32"))
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: init gaussian(mean=0.0, std=1e-50): 1e-50 is below float32's smallest normal number (1.175e-38), so the weights would be subnormal or 0; use dtype float64, or a larger std
    >>> check_representable(0.0, 1e-50, "", np.dtype("float64"))
    >>> check_representable(1e-40, 1.0, "", np.dtype("float32"))
    """
    tiny = float(np.finfo(dtype).tiny)
    v, what = max((abs(mean), "mean"), (std, "std"))
    if 0 < v < tiny:
        raise InvalidValueError(f"init {label}: {v:.4g} is below {dtype.name}'s smallest normal number ({tiny:.4g}), "
                                f"so the weights would be subnormal or 0; use dtype float64, or a larger {what}")


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes, or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(needed: int, available: int | None = None,
                 hint: str = "lower --samples (memory grows as depth × samples)") -> None:
    """Refuse a run that would not fit, with both numbers.

    >>> check_memory(10**9, available=10**8)
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: this run needs about 1000 MB but only 100 MB are available; lower --samples (memory grows as depth × samples)
    """
    have = available_memory() if available is None else available
    if have is not None and needed > have:
        raise InvalidValueError(f"this run needs about {needed // 10**6} MB but only {have // 10**6} MB are available; "
                                f"{hint}")


CHUNK_BYTES = 32 << 20
"""Gradients per chunk: a run draws, evaluates and reduces this much at a time, whatever its samples M."""
MIN_CHUNK = 1024
"""Samples per chunk at least: the chunked engine pays a Python step per layer and chunk, so a very deep
chain takes chunks of 1024 samples (memory then grows with the depth, never with M)."""
MAX_WORK = {"numpy": 15 * 10**7, "cupy": 10**12}
"""Work a run may take, in gradients (depth × samples) plus :data:`STEP_WORK` per layer of each chunk: on the
2-core machine 10^8 gradients took 15-22 s (``eval -n 100 -m 1000000``, with and without ``--log-domain``) and
``-n 100000 -m 1024 --log-domain`` 48 s, so a run admitted ends within about a minute. 10^10 was half an hour."""
STEP_WORK = 400
"""What one layer of one engine chunk costs beyond its gradients, in gradients: the chunked engine's Python step
per layer and chunk (about 60 µs for both passes, at 150 ns a gradient), which a deep chain of few samples or
a small ``--chunk`` pays mostly (``-n 100000 -m 3``: 6 s for 3·10^5 gradients)."""


def chunk_samples(depth: int, samples: int, dtype: Any = "float64") -> int:
    """Samples per chunk: the chunk's (N, c) gradients fill CHUNK_BYTES (at least MIN_CHUNK samples).

    Fixed by the run's depth and dtype, never by the machine or its threads, so a seed gives the same
    draws everywhere. ``samples`` ≤ this: one chunk, exact quantiles.

    >>> chunk_samples(5, 10**8), chunk_samples(5, 1000), chunk_samples(10**5, 10**4)
    (838860, 1000, 1024)
    """
    return int(min(samples, max(MIN_CHUNK, CHUNK_BYTES // (depth * check_dtype(dtype).itemsize))))


def check_work(depth: int, samples: int, backend: str = "numpy", chunk: int | None = None,
               dtype: Any = "float64") -> None:
    """Refuse a run that would not finish in bounded time (:data:`MAX_WORK`), with the numbers. ``chunk``: samples
    per chunk (:func:`chunk_samples` where None), each split again into the chunked engine's own chunks.

    >>> check_work(3, 10**11)
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: this run evaluates 3 × 100000000000 = 3e+11 gradients, more than a numpy run takes in bounded time (1.5e+08 gradients, less 400 for each layer of each chunk of samples); lower --samples or --layers
    >>> check_work(1000, 10**5, chunk=1)
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: this run evaluates 1000 × 100000 = 1e+08 gradients in 1e+08 steps (a layer of a chunk of samples each), more than a numpy run takes in bounded time (1.5e+08 gradients, less 400 for each layer of each chunk of samples); lower --samples or --layers, or raise --chunk
    """
    cap = MAX_WORK.get(backend, MAX_WORK["numpy"])
    c = chunk_samples(depth, samples, dtype) if chunk is None else max(1, min(chunk, samples))
    per_chunk = -(-c // (ENGINE_CHUNK_BYTES // check_dtype(dtype).itemsize))  # the engine's chunks in one of ours
    steps = depth * -(-samples // c) * per_chunk
    if depth * samples + STEP_WORK * steps > cap:
        shown = f" in {steps:.3g} steps (a layer of a chunk of samples each)" if STEP_WORK * steps > depth * samples else ""
        raise InvalidValueError(f"this run evaluates {depth} × {samples} = {depth * samples:.3g} gradients{shown}, "
                                f"more than a {backend} run takes in bounded time ({cap:.3g} gradients, less "
                                f"{STEP_WORK} for each layer of each chunk of samples); lower --samples or --layers"
                                + (", or raise --chunk" if shown and chunk is not None else ""))


def chunk_generator(seed: int | None, i: int) -> np.random.SeedSequence:
    """The seed of chunk ``i``'s draws: child ``i`` of ``SeedSequence(seed)`` (a shared network comes from
    ``SeedSequence(seed)`` itself). Chunk i's generator draws W then B (per sample), then x, then y.

    >>> chunk_generator(4, 0).spawn_key
    (0,)
    """
    return np.random.SeedSequence(seed, spawn_key=(i,))


def _rng(xp: Any, ss: np.random.SeedSequence) -> Any:
    if xp is np:
        return np.random.default_rng(ss)
    return xp.random.RandomState(int(ss.generate_state(1, np.uint32)[0]))  # CuPy: draws on the device


def _normal(rng: Any, shape: Any, mean: float, std: float) -> Any:
    # A huge mean or std overflows while drawing; that is checked by the caller and refused in one line,
    # so NumPy's warnings (printed before the error) say nothing more.
    with np.errstate(over="ignore", invalid="ignore"):
        return mean + std * rng.standard_normal(shape)


@dataclass(frozen=True)
class _Run:
    """Everything one chunk needs: what to draw, and how to evaluate it."""

    chain: Chain
    xp: Any
    dt: np.dtype
    mean: float
    std: float
    label: str
    gaussian_bias: bool
    shared: tuple[Any, Any] | None
    seed: Any
    backend: str
    log: bool
    engine: str
    draw: Any = None  # a cuda.Draw: the chunks are drawn inside the whole-chain kernel (see _drawn)
    chunk: int = 0    # samples per chunk: chunk i holds samples i·chunk …, the drawn kernel's counters

    def network(self, rng: Any, shape: Any) -> tuple[Any, Any]:
        with np.errstate(over="ignore", invalid="ignore"):  # beyond float32 on the cast: refused just below
            W = _normal(rng, shape, self.mean, self.std).astype(self.dt, copy=False)
            B = (_normal(rng, shape, self.mean, self.std) if self.gaussian_bias else self.xp.zeros(shape)).astype(
                self.dt, copy=False)
        if not (bool(self.xp.isfinite(W).all()) and bool(self.xp.isfinite(B).all())):
            raise InvalidValueError(f"init {self.label} draws weights or biases beyond {self.dt.name}'s range (inf); "
                                    f"use a mean and std whose draws stay below {float(np.finfo(self.dt).max):.4g}")
        return W, (B if self.chain.bias else self.xp.zeros(shape, dtype=self.dt))

    def gradients(self, i: int, size: int) -> tuple[Any, Any]:
        """Chunk ``i`` (``size`` samples) drawn from :func:`chunk_generator` and evaluated: (g, sign or None)."""
        return self.evaluated(i, size)[:2]

    def evaluated(self, i: int, size: int) -> tuple[Any, Any, str]:
        """:meth:`gradients`, and the engine that computed them."""
        if self.draw is not None:
            r = cuda.launch_drawn(self.chain, replace(self.draw, first=i * self.chunk), size, self.dt, log=self.log,
                                  allow_underflow=not self.log)
            return (*(r if self.log else (r, None)), "cuda")
        rng = _rng(self.xp, chunk_generator(self.seed, i))
        W, B = self.shared if self.shared is not None else self.network(rng, (self.chain.depth, size))
        x = rng.standard_normal(size).astype(self.dt, copy=False)
        y = rng.standard_normal(size)
        y = ((y > 0) if self.chain.loss == "bce" else y).astype(self.dt, copy=False)
        # Direct: exact zeros are counted, underflowed or not; overflow and NaN are reported
        # (symvg.errors.NumericRangeError). Log domain: a 0 must be a true 0, or it is reported too.
        ev = evaluate(self.chain, x, y, W, B, backend=self.backend, dtype=self.dt, log=self.log,
                      engine=self.engine, allow_underflow=not self.log)
        g, sign = ev.gradients if self.log else (ev.gradients, None)
        return g, sign, ev.engine


def _drawn(chain: Chain, samples: int, backend: str, dt: np.dtype, log: bool, engine: str, shared: bool,
           mean: float, std: float, gaussian_bias: bool, seed: Any) -> cuda.Draw | None:
    """What the drawn whole-chain kernel would draw for this run (:class:`symvg.engines.cuda.Draw`), or None
    where the run reads its networks instead: on CPUs, for one shared network, or where routing would not
    pick the whole-chain kernel. Sample i is then the network at counter i under the seed's Philox key, so
    the N×M weights never exist and the numbers do not depend on the chunk size.

    >>> d = _drawn(Chain(3, "sigmoid", loss="bce"), 10**6, "cupy", np.dtype("float64"), False, "auto", False,
    ...            0.0, 2.0, True, seed=0)
    >>> (d.w_mean, d.w_std, d.b_mean, d.b_std, d.y_sign), d.key == cuda.Draw.from_seed(0).key
    ((0.0, 2.0, 0.0, 2.0, True), True)
    >>> _drawn(Chain(3, "sigmoid"), 10**6, "cupy", np.dtype("float64"), False, "chunked", False, 0.0, 2.0, True, 0)
    """
    if backend != "cupy" or shared:
        return None
    request = registry.Request(chain, backend=backend, dtype=dt, log=log, samples=samples, engine=engine)
    if registry.route(request).engine.name != "cuda":
        return None
    key = philox.key_from_seed(seed) if seed is not None else np.random.SeedSequence().generate_state(2, np.uint32)
    b_mean, b_std = (mean, std) if gaussian_bias and chain.bias else (0.0, 0.0)
    return cuda.Draw((int(key[0]), int(key[1])), 0, mean, std, b_mean, b_std, chain.loss == "bce")


def _prepare_engine(chain: Chain, samples: int, backend: str, log: bool, engine: str, dt: np.dtype) -> None:
    """Compile the fused kernel first when the whole run's work repays it: each chunk alone is too small
    for ``auto`` to compile it, but it takes a compiled kernel (see FUSED_MIN_WORK)."""
    if engine == "auto" and choose_engine(chain, samples, backend=backend, log=log, engine=engine, dtype=dt) == "fused":
        numeric.compile(chain, backend, dt, log, engine)


def run_bytes(depth: int, chunk: int, dtype: Any, log: bool, shared_weights: bool, one_chunk: bool) -> int:
    """Bytes a run holds at once: one chunk's engine memory, its float64 log10|g| and sort (or histograms)."""
    b = estimate_bytes(depth, chunk, dtype, per_sample=not shared_weights, log=log) + 2 * depth * chunk * 8
    return b + (0 if one_chunk else 2 * depth * S.bins_for(depth) * 8)


def _reduce(run: _Run, samples: int, chunk: int, tol: float) -> tuple[dict, Any, float | None, str]:
    """Stream the chunks through the accumulators: (accumulators, (5, N) quantiles, resolution or None, the
    engine that evaluated the first chunk; the kernel is compiled before, so every chunk takes that one).

    One chunk: exact quantiles. More: histograms over windows set by chunk 0's [min, max] (widened by
    half its width, at least half a decade, each side); should a quantile's order statistic fall among
    values beyond a window, the chunks are drawn again (same seeds) into windows of the exact [min, max]."""
    xp, n = run.xp, run.chain.depth
    tiny = float(np.finfo(run.dt).tiny)
    acc = S.new(xp, n)
    sizes = [min(chunk, samples - start) for start in range(0, samples, chunk)]
    g, sign, engine = run.evaluated(0, sizes[0])
    t = S.log10_abs(xp, g, sign)
    S.accumulate(acc, xp, g, sign, tol, tiny, t)
    if len(sizes) == 1:
        if not run.log and bool(S.overflowed(acc, xp).any()):
            S.rescaled(acc, xp, [g])
        return acc, S.exact_quantiles(xp, g, sign, QUANTILES), None, engine
    bins = S.bins_for(n)
    lo, width = S.windows(acc, xp, pad=0.5)
    counts, below, above = S.histogram(xp, g, sign, lo, width, bins, t)
    del g, sign, t
    for i, size in enumerate(sizes[1:], start=1):
        g, sign = run.gradients(i, size)
        t = S.log10_abs(xp, g, sign)
        S.accumulate(acc, xp, g, sign, tol, tiny, t)
        c, b, a = S.histogram(xp, g, sign, lo, width, bins, t)
        counts, below, above = counts + c, below + b, above + a
        del g, sign, t
    if not run.log and bool(S.overflowed(acc, xp).any()):  # the mean of huge |g| is finite; their sum was not
        S.rescaled(acc, xp, (run.gradients(i, size)[0] for i, size in enumerate(sizes)))
    q, ranks = S.histogram_quantiles(xp, acc, counts, lo, width, run.log, QUANTILES)
    if not bool(S.trusted(ranks, below, above, acc["n"] - acc["zeros"]).all()):
        lo, width = S.windows(acc, xp)
        counts = sum(S.histogram(xp, *run.gradients(i, size), lo, width, bins)[0] for i, size in enumerate(sizes))
        q, _ = S.histogram_quantiles(xp, acc, counts, lo, width, run.log, QUANTILES)
    spread = S.to_host(width)[S.to_host(acc["max"] >= acc["min"])]
    return acc, q, float(spread.max() / bins / 2) if spread.size else 0.0, engine


def sample(chain: Chain, samples: int = 10_000, init: Init = "gaussian", seed: int | None = None,
           backend: str = "numpy", dtype: Any = "float64", tol: float = 1e-8, shared_weights: bool = False,
           log: bool = False, engine: str = "auto", chunk: int | None = None) -> GradientStats:
    """Draw weights (``init``), biases and inputs x ~ N(0, 1), targets y (N(0,1) for mse, 0/1 for bce),
    evaluate every dL/dw_k and summarise per layer.

    ``shared_weights=True`` draws one network (weights (N,)) for all samples; otherwise every sample
    is its own network (weights (N, M)). Biases follow the Gaussian init and are 0 for xavier/he.
    ``engine`` is :func:`symvg.engines.numeric.gradients`'s CPU engine (``auto``, ``fused`` or ``chunked``).
    A gradient that overflows or is not a real number raises :class:`symvg.errors.NumericRangeError`
    (so does, with ``log=True``, a local factor that underflowed: every engine flags a φ or φ' that is 0 where its
    forms hold no exact 0, and the mpmath oracle settles it); direct zeros are counted in ``zeros``.

    The samples stream in chunks of ``chunk`` (default :func:`chunk_samples`): memory is one chunk's,
    whatever ``samples``. Chunk i draws from :func:`chunk_generator`: a seed gives the same numbers on any
    machine and thread count, for the same chunk size. Networks drawn in the CUDA kernel (:func:`_drawn`)
    are sample i's under the seed's key whatever the chunk size. Quantiles are exact when the run is one chunk, else
    within ``quantile_resolution`` decades (:mod:`symvg.engines.streaming`); the other statistics are exact
    (means to a few ulps). ``backend="cupy"`` draws, evaluates and reduces on the device.
    """
    m = count(samples, "samples")
    # numbers.Real takes NumPy scalars (np.float32(1e-8) is a finite number > 0); a bool is not a tolerance
    if isinstance(tol, bool) or not (isinstance(tol, numbers.Real) and np.isfinite(tol) and tol > 0):
        raise InvalidValueError(f"tol must be a finite number > 0, got {tol!r}")
    mean, std, label = init_params(init)
    dt = check_dtype(dtype)
    check_representable(mean, std, label, dt)
    n = chain.depth
    c = chunk_samples(n, m, dt) if chunk is None else min(count(chunk, "chunk"), m)
    check_work(n, m, backend, c, dt)
    check_memory(run_bytes(n, c, dt, log, shared_weights, c >= m),
                 hint="lower --chunk or --layers (memory grows as depth × chunk, not with --samples)")
    xp = array_module(backend)
    gaussian_bias = isinstance(init, tuple) or init == "gaussian"
    # No seed: fresh entropy, drawn once, so that a second pass over the chunks (see _reduce) draws the same
    # samples as the first; SeedSequence(None) per chunk would draw new ones and mix two runs' statistics.
    entropy = np.random.SeedSequence().entropy if seed is None else seed
    run = _Run(chain, xp, dt, mean, std, label, gaussian_bias, None, entropy, backend, bool(log), engine,
               _drawn(chain, m, backend, dt, bool(log), engine, shared_weights, mean, std, gaussian_bias, seed), c)
    if shared_weights:  # one network for every chunk, from SeedSequence(seed) itself
        run = replace(run, shared=run.network(_rng(xp, np.random.SeedSequence(entropy)), (n,)))
    if run.draw is None:  # the drawn kernel is printed and compiled at its first launch
        _prepare_engine(chain, m, backend, bool(log), engine, dt)
    acc, q, resolution, used = _reduce(run, m, c, float(tol))
    means, host, q = S.to_host(S.mean(acc, bool(log))), {k: S.to_host(v) for k, v in acc.items()}, S.to_host(q)
    layers = tuple(LayerStats(k + 1, float(means[k]), float(q[2, k]), float(q[0, k]), float(q[1, k]), float(q[3, k]),
                              float(q[4, k]), float(host["below"][k] / m), int(host["zeros"][k]),
                              0 if log else int(host["subnormal"][k])) for k in range(n))
    return GradientStats(chain.name, n, m, label, dt.name, backend, used, bool(log), float(tol), bool(shared_weights),
                         seed, layers, c, resolution)


@dataclass(frozen=True)
class DeadPaths(Result):
    """Why a width-1 ReLU chain shows zeros at every layer: a path that is alive only with probability 2^-N.

    dL/dw_k of a plain ReLU chain is non-zero only when every unit 1..N is on (z_j > 0): a unit that is
    off cuts the backward path above it, or feeds h = 0 forward. With zero-mean Gaussian weights
    and biases (or zero biases), z_j is symmetric about 0 given everything before it, so each unit is
    on with probability 1/2, independently: a fraction 2^-N of random networks passes any gradient.
    """

    depth: int
    expected: float  # 2^-depth
    observed: float  # fraction of samples whose dL/dw_1 is not exactly 0
    nonzero: int
    samples: int

    def sentence(self) -> str:
        return (f"a width-1 ReLU chain passes a gradient only when all {self.depth} units are on; with zero-mean "
                f"weights and biases each is on with probability 1/2, so a fraction 2^-{self.depth} = "
                f"{self.expected:.3g} of random networks is expected non-zero ({self.nonzero} of {self.samples} = "
                f"{self.observed:.3g} here). These zeros are dead paths, not underflow; a wide layer keeps some "
                "path alive (see symvg meanfield).")

    def as_dict(self) -> dict[str, Any]:
        return dict(asdict(self), note=self.sentence())


def dead_paths(chain: Chain, init: Init, stats: GradientStats) -> DeadPaths | None:
    """The 2^-N note for a plain all-ReLU chain drawn per sample with zero-mean weights, else None.

    >>> s = sample(Chain(3, "relu"), samples=4000, init="he", seed=0)
    >>> d = dead_paths(Chain(3, "relu"), "he", s)
    >>> d.expected, abs(d.observed - 1 / 8) < 4 * (1 / 8 * 7 / 8 / 4000) ** 0.5
    (0.125, True)
    >>> dead_paths(Chain(3, "relu"), (1.0, 1.0), s) is None   # mean 1: units are on more often than 1/2
    True
    """
    mean, std, _ = init_params(init)
    relu_only = all(a.name == "relu" for a in chain.activations) and not chain.residual
    if not relu_only or stats.shared_weights or mean != 0 or std == 0:
        return None
    nonzero = stats.samples - stats.layers[0].zeros
    return DeadPaths(chain.depth, 2.0 ** -chain.depth, nonzero / stats.samples, nonzero, stats.samples)


__all__ = ["CHUNK_BYTES", "DeadPaths", "GradientStats", "INITS", "LayerStats", "MAX_WORK", "MIN_CHUNK", "STEP_WORK",
           "available_memory", "check_memory", "check_representable", "check_work", "chunk_generator",
           "chunk_samples", "dead_paths", "init_params", "run_bytes", "sample"]
