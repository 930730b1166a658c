"""Monte Carlo over random networks: how big is dL/dw_k, layer by layer, for random weights and inputs?

One job: draw weights, biases and inputs, run :func:`symvg.engines.numeric.gradients` once for all layers,
and summarise each layer's |g| (mean, median, quantiles, how many fall below a tolerance, how many
are exactly 0 or subnormal) in a frozen :class:`GradientStats`.

>>> from symvg.symbolic.chain import Chain
>>> s = sample(Chain(10, "sigmoid"), samples=2000, seed=0)
>>> s.layers[0].k, s.layers[-1].k
(1, 10)
>>> s.layers[0].median_abs < s.layers[-1].median_abs   # the first layer's gradient has vanished most
True
>>> sorted(s.as_dict()["layers"][0])[:4]
['frac_below_tol', 'k', 'mean_abs', 'median_abs']

Before anything is allocated the memory is estimated and compared with what the machine has free,
so ``samples=10**9`` is refused with the numbers rather than by the kernel's OOM killer.
With ``log=True`` the statistics are of log10|g| (``scale = "log10"``), which stays finite at any depth;
``as_dict`` then names them ``log10_median_abs``, ``log10_geomean_abs``, ``log10_q05`` … .
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Union

import numpy as np

from symvg.display import Result
from symvg.symbolic.chain import Chain
from symvg.errors import InvalidValueError
from symvg.engines.numeric import choose_engine, estimate_bytes, gradients
from symvg.engines.plan import check_dtype

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
    zeros: int          # exactly 0 (underflowed, or a ReLU that is off)
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
    engine: str  # the engine that ran: fused, chunked or cuda (see symvg.engines.numeric.choose_engine)
    log: bool
    tol: float
    shared_weights: bool
    seed: int | None
    layers: tuple[LayerStats, ...]

    @property
    def scale(self) -> str:
        return "log10" if self.log else "linear"

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
        mean, std = (float(v) for v in init)
    except (TypeError, ValueError):
        raise InvalidValueError(f"init must be one of {', '.join(INITS)}, or (mean, std), got {init!r}") from None
    if not (np.isfinite(mean) and np.isfinite(std) and std >= 0):
        raise InvalidValueError(f"init (mean, std) needs finite numbers and std >= 0, got {init!r}")
    return mean, std, f"gaussian(mean={mean}, std={std})"


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


def check_memory(needed: int, available: int | None = None) -> None:
    """Refuse a run that would not fit, with both numbers.

    >>> check_memory(10**9, available=10**8)
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: this run needs about 1000 MB but only 100 MB are available; lower --samples (memory grows as depth × samples)
    """
    have = available_memory() if available is None else available
    if have is not None and needed > have:
        raise InvalidValueError(f"this run needs about {needed // 10**6} MB but only {have // 10**6} MB are available; "
                                "lower --samples (memory grows as depth × samples)")


def _layer(k: int, g: np.ndarray, sign: np.ndarray | None, tol: float, dt: np.dtype) -> LayerStats:
    if sign is not None:  # log domain: g is ln|g|; report log10 so a reader sees the exponent
        v = g / np.log(10)
        zeros = int(np.count_nonzero(sign == 0))
        below = float(np.mean(v < np.log10(tol)))
        sub = 0
    else:
        v = np.abs(g)
        zeros = int(np.count_nonzero(v == 0))
        sub = int(np.count_nonzero((v > 0) & (v < np.finfo(dt).tiny)))
        below = float(np.mean(v < tol))
    finite = v[np.isfinite(v)] if sign is not None else v
    if finite.size == 0:
        finite = np.array([-np.inf])
    # Linear interpolation between order statistics computes inf - inf = NaN once a gradient overflowed
    # (or, in the log domain, all were 0): there the quantiles are order statistics themselves.
    q = np.quantile(finite, QUANTILES, method="linear" if np.isfinite(finite).all() else "inverted_cdf")
    mean = float(np.mean(finite.astype(np.float64)))
    return LayerStats(k, mean, float(q[2]), float(q[0]), float(q[1]), float(q[3]), float(q[4]), below, zeros, sub)


def sample(chain: Chain, samples: int = 10_000, init: Init = "gaussian", seed: int | None = None,
           backend: str = "numpy", dtype: Any = "float64", tol: float = 1e-8, shared_weights: bool = False,
           log: bool = False, engine: str = "auto") -> GradientStats:
    """Draw weights (``init``), biases and inputs x ~ N(0, 1), targets y (N(0,1) for mse, 0/1 for bce),
    evaluate every dL/dw_k and summarise per layer.

    ``shared_weights=True`` draws one network (weights (N,)) for all samples; otherwise every sample
    is its own network (weights (N, M)). Biases follow the Gaussian init and are 0 for xavier/he.
    ``engine`` is :func:`symvg.engines.numeric.gradients`'s CPU engine (``auto``, ``fused`` or ``chunked``).
    A gradient that overflows or is not a real number raises :class:`symvg.errors.NumericRangeError`
    (so does, with ``log=True``, a local factor that underflowed); direct zeros are counted in ``zeros``.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise InvalidValueError(f"samples must be an integer >= 1, got {samples!r}")
    if not (isinstance(tol, (int, float)) and np.isfinite(tol) and tol > 0):
        raise InvalidValueError(f"tol must be a finite number > 0, got {tol!r}")
    mean, std, label = init_params(init)
    dt = check_dtype(dtype)
    n = chain.depth
    need = estimate_bytes(n, samples, dt, per_sample=not shared_weights, log=log) + 3 * samples * dt.itemsize
    check_memory(need)
    rng = np.random.default_rng(seed)
    shape = (n,) if shared_weights else (n, samples)
    # A huge mean or std overflows while drawing; that is checked just below and refused in one line,
    # so NumPy's warnings (printed before the error) say nothing more.
    with np.errstate(over="ignore", invalid="ignore"):
        W = (mean + std * rng.standard_normal(shape)).astype(dt)
        B = ((mean + std * rng.standard_normal(shape)) if isinstance(init, tuple) or init == "gaussian"
             else np.zeros(shape)).astype(dt)
    if not (np.isfinite(W).all() and np.isfinite(B).all()):
        raise InvalidValueError(f"init {label} draws weights or biases beyond {dt.name}'s range (inf); "
                                f"use a mean and std whose draws stay below {float(np.finfo(dt).max):.4g}")
    if not chain.bias:
        B = np.zeros(shape, dtype=dt)
    x = rng.standard_normal(samples).astype(dt)
    y = (rng.integers(0, 2, samples) if chain.loss == "bce" else rng.standard_normal(samples)).astype(dt)
    # Direct: exact zeros are counted (and noted by `symvg eval`), underflowed or not; overflow and NaN are
    # reported (symvg.errors.NumericRangeError). Log domain: a 0 must be a true 0, or it is reported too.
    out = gradients(chain, x, y, W, B, backend=backend, dtype=dt, log=log, engine=engine, allow_underflow=not log)
    if backend == "cupy":
        import cupy

        out = tuple(cupy.asnumpy(o) for o in out) if log else cupy.asnumpy(out)
    G, S = out if log else (out, None)
    layers = tuple(_layer(k, G[k - 1], None if S is None else S[k - 1], float(tol), dt) for k in range(1, n + 1))
    used = choose_engine(chain, samples, backend=backend, log=log, engine=engine, dtype=dt)
    return GradientStats(chain.name, n, samples, label, dt.name, backend, used, bool(log), float(tol), bool(shared_weights),
                         seed, layers)


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


__all__ = ["DeadPaths", "GradientStats", "INITS", "LayerStats", "available_memory", "check_memory", "dead_paths",
           "init_params", "sample"]
