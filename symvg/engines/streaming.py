"""Per-layer statistics of |g| reduced chunk by chunk, every layer at once, on NumPy or CuPy alike.

One job: fold (N, c) chunks of gradients into per-layer accumulators of shape (N,) (or (N, bins)) and
read the statistics off them, so a Monte Carlo run keeps O(N) memory whatever its number of samples M.
Every function takes the array module ``xp`` of its arrays (``numpy`` or ``cupy``): the same code runs
on the host and on the device, and only the accumulators cross to the host.

What is exact and what is not:

* counts (zeros, subnormals, below tol), minimum and maximum: exact;
* means: each chunk is summed in float64 (pairwise, along the samples axis) and the chunk sums are added
  with Neumaier's compensated summation: a relative error of a few ulps, whatever the number of chunks (a sum
  past float64's maximum is summed again, scaled by a power of 2: :func:`rescaled`);
* quantiles: exact (linear interpolation between order statistics, as ``numpy.quantile``) when the run is
  one chunk (:func:`exact_quantiles`); otherwise read from a per-layer histogram of log10|g| with ``bins``
  equal bins over a window of that layer's values (:func:`histogram_quantiles`). Every value keeps its
  bin, and the estimate of an order statistic is its bin's centre, so the estimate is within half a bin
  width w/2 (in decades) of the true quantile: relative error ≤ 10^(w/2) − 1 for |g|, ± w/2 for log10|g|.
  Exact zeros never enter the histogram: they are counted, and a quantile among them is 0 exactly.

>>> import numpy as np
>>> g = np.array([[0.0, 1e-3, 1e-2, 1e-1, 1.0]])
>>> a = accumulate(new(np, 1), np, g, None, tol=0.05, tiny=np.finfo(np.float64).tiny)
>>> int(a["zeros"][0]), int(a["below"][0]), round(float(mean(a)[0]), 12)
(1, 3, 0.2222)
>>> exact_quantiles(np, g, None, (0.5, 0.25))[:, 0].tolist()   # as numpy.quantile: the zero counts
[0.01, 0.001]
"""

from __future__ import annotations

from typing import Any

import numpy as np

HIST_BYTES = 64 << 20
"""Histogram counts per run (int64): bins per layer shrink for very deep chains to stay within this."""
MAX_BINS = 1 << 14
MIN_BINS = 64


def bins_for(depth: int) -> int:
    """Bins per layer: 16384 up to depth 512, then fewer (never under 64) so N × bins × 8 B ≤ 64 MB.

    >>> bins_for(20), bins_for(100_000)
    (16384, 83)
    """
    return int(min(MAX_BINS, max(MIN_BINS, HIST_BYTES // (8 * depth))))


def new(xp: Any, depth: int) -> dict[str, Any]:
    """Empty accumulators for ``depth`` layers (float64 sums with their compensation, int64 counts)."""
    def zeros(dtype: Any) -> Any:
        return xp.zeros(depth, dtype=dtype)

    return {"n": 0, "zeros": zeros(np.int64), "subnormal": zeros(np.int64), "below": zeros(np.int64),
            "sum": zeros(np.float64), "comp": zeros(np.float64),
            "min": xp.full(depth, np.inf), "max": xp.full(depth, -np.inf)}


def log10_abs(xp: Any, g: Any, sign: Any | None) -> Any:
    """log10|g| as float64, −inf at exact zeros; ``sign`` given: g is already ln|g| (the log domain)."""
    if sign is not None:
        t = g.astype(np.float64) / np.log(10)
        return xp.where(sign == 0, -np.inf, t)
    with np.errstate(divide="ignore"):
        return xp.log10(xp.abs(g).astype(np.float64))


def accumulate(acc: dict[str, Any], xp: Any, g: Any, sign: Any | None, tol: float, tiny: float,
               t: Any | None = None) -> dict[str, Any]:
    """Fold one (N, c) chunk into ``acc`` (returned). ``sign`` is None for direct gradients; in the log
    domain (``g`` = ln|g|, ``sign`` 0 at exact zeros) the mean is that of log10|g| over the nonzero values.
    ``t``: the chunk's :func:`log10_abs`, when the caller has it already."""
    t = log10_abs(xp, g, sign) if t is None else t
    nonzero = t > -np.inf
    zeros = g.shape[1] - nonzero.sum(axis=1)
    some = bool((zeros > 0).any())  # most chunks have no zeros: no masked copies then
    acc["zeros"] += zeros
    if sign is None:
        # in float64: NumPy would round tol to a float32 chunk's dtype (0.7 -> 0.69999999), and miss the |g| equal to it
        v = xp.abs(g).astype(np.float64, copy=False)
        acc["below"] += (v < tol).sum(axis=1)
        acc["subnormal"] += ((nonzero & (v < tiny)) if some else (v < tiny)).sum(axis=1)
        with np.errstate(over="ignore"):
            s = v.sum(axis=1)
    else:
        acc["below"] += (t < np.log10(tol)).sum(axis=1)
        s = (xp.where(nonzero, t, 0.0) if some else t).sum(axis=1)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowed sum is summed again (see rescaled)
        _neumaier(acc, s)
    acc["min"] = xp.minimum(acc["min"], (xp.where(nonzero, t, np.inf) if some else t).min(axis=1))
    acc["max"] = xp.maximum(acc["max"], t.max(axis=1))
    acc["n"] += g.shape[1]
    return acc


def overflowed(acc: dict[str, Any], xp: Any) -> Any:
    """Layers whose sum of |g| overflowed float64 (inf or NaN) though every |g| is finite: see :func:`rescaled`."""
    return ~xp.isfinite(acc["sum"] + acc["comp"]) & (acc["max"] < np.inf)


def rescaled(acc: dict[str, Any], xp: Any, chunks: Any) -> dict[str, Any]:
    """Sum |g| again over ``chunks`` (the run's (N, c) gradients, drawn again), scaled by 2^-(⌈log2 n⌉ + 1) in the
    layers whose sum overflowed, so that n values below float64's maximum sum below it; :func:`mean` unscales.
    A power of 2 scales exactly; it flushes only values below 2^-1030 or so, beside a sum beyond 10^308.

    >>> g = np.full((1, 4), 1e308)
    >>> a = accumulate(new(np, 1), np, g, None, tol=1.0, tiny=2.2e-308)
    >>> float(mean(rescaled(a, np, [g]))[0])
    1e+308
    """
    over = overflowed(acc, xp)
    acc["scale"] = xp.where(over, 2.0 ** -(int(acc["n"]).bit_length() + 1), 1.0)
    acc["sum"], acc["comp"] = xp.zeros_like(acc["sum"]), xp.zeros_like(acc["comp"])
    for g in chunks:
        _neumaier(acc, (xp.abs(g).astype(np.float64) * acc["scale"][:, None]).sum(axis=1))
    return acc


def _neumaier(acc: dict[str, Any], s: Any) -> None:
    # the running sum's lost low-order part is kept in comp (Neumaier's variant of Kahan's summation)
    total = acc["sum"] + s
    big = abs(acc["sum"]) >= abs(s)
    acc["comp"] += (acc["sum"] - total + s) * big + (s - total + acc["sum"]) * ~big
    acc["sum"] = total


def mean(acc: dict[str, Any], log: bool = False) -> Any:
    """Mean |g| per layer, or with ``log`` the mean of log10|g| over the nonzero values (−inf where none)."""
    n = acc["n"] - acc["zeros"] if log else acc["n"] + 0 * acc["zeros"]
    with np.errstate(invalid="ignore", divide="ignore"):
        m = (acc["sum"] + acc["comp"]) / n / acc.get("scale", 1.0)
    m[n == 0] = -np.inf
    return m


def _positions(n: Any, quantiles: tuple[float, ...], xp: Any) -> tuple[Any, Any, Any]:
    """Per layer and quantile: the order statistics below and above q·(n−1), and the weight of the upper one."""
    q = xp.asarray(quantiles, dtype=np.float64)[:, None]
    r = q * xp.maximum(n - 1, 0)[None, :]
    lo = xp.floor(r)
    return lo.astype(np.int64), xp.ceil(r).astype(np.int64), r - lo


def _interpolate(a: Any, b: Any, f: Any, xp: Any) -> Any:
    # a + f(b − a), but a where both are equal (also ±inf, where b − a would be NaN)
    with np.errstate(invalid="ignore"):
        return xp.where(a == b, a, a + f * (b - a))


def exact_quantiles(xp: Any, g: Any, sign: Any | None, quantiles: tuple[float, ...]) -> Any:
    """(len(quantiles), N) quantiles of |g| (log domain: of log10|g| over the nonzero values, −inf where
    there are none) from one chunk that holds every sample, as ``numpy.quantile(..., method="linear")``."""
    if sign is None:
        v = xp.sort(xp.abs(g), axis=1).astype(np.float64)
        first = xp.zeros(g.shape[0], dtype=np.int64)
    else:
        v = xp.sort(log10_abs(xp, g, sign), axis=1)
        first = (v == -np.inf).sum(axis=1)
    n = g.shape[1] - first
    lo, hi, f = _positions(n, quantiles, xp)

    def take(j: Any) -> Any:
        idx = xp.minimum(j + first[None, :], g.shape[1] - 1).T
        return xp.take_along_axis(v, idx, axis=1).T

    return xp.where(n[None, :] > 0, _interpolate(take(lo), take(hi), f, xp), -np.inf)


def windows(acc: dict[str, Any], xp: Any, pad: float = 0.0) -> tuple[Any, Any]:
    """(lo, width) of each layer's histogram window over log10|g|: [min, max] widened by ``pad`` times its
    width (at least ``pad`` decades) on each side; a layer without nonzero values gets [0, 1)."""
    lo, hi = acc["min"], acc["max"]
    empty = ~(hi >= lo) | (hi == -np.inf)
    extra = pad * xp.maximum(hi - lo, 1.0)
    lo = xp.where(empty, 0.0, lo - extra)
    width = xp.where(empty, 1.0, xp.maximum(hi + extra - lo, 1e-12))
    return lo, width


def histogram(xp: Any, g: Any, sign: Any | None, lo: Any, width: Any, bins: int,
              t: Any | None = None) -> tuple[Any, Any, Any]:
    """(N, bins) counts of log10|g| over each layer's window [lo, lo + width), and the counts that fell
    below and above it (those are counted in the first and last bin). ``t`` as in :func:`accumulate`."""
    t = log10_abs(xp, g, sign) if t is None else t
    n = g.shape[0]
    pos = (t - lo[:, None]) * (bins / width[:, None])  # −inf at the zeros
    nonzero = pos > -np.inf
    some = not bool(nonzero.all())
    below = ((pos < 0) & nonzero if some else pos < 0).sum(axis=1)
    above = (pos > bins).sum(axis=1)  # pos == bins is the upper edge (the maximum, in an exact window): inside
    b = xp.clip(pos, 0, bins - 1, out=pos).astype(np.int64)
    b += (xp.arange(n, dtype=np.int64) * bins)[:, None]
    counts = xp.bincount((b[nonzero] if some else b).ravel(), minlength=n * bins).reshape(n, bins)
    return counts, below, above


def histogram_quantiles(xp: Any, acc: dict[str, Any], counts: Any, lo: Any, width: Any, log: bool,
                        quantiles: tuple[float, ...]) -> tuple[Any, Any]:
    """(len(quantiles), N) quantiles from the histograms, and the ranks among the nonzero values of the two
    order statistics behind each (negative among the zeros). Each is within half a bin of the exact one
    unless its rank lies among values clamped into an edge bin: :func:`trusted` tells, from those ranks."""
    zeros, n = acc["zeros"], acc["n"]
    first = 0 * zeros if log else zeros  # the direct quantiles count the zeros; the log-domain ones skip them
    size = n - zeros + first
    lo_j, hi_j, f = _positions(size, quantiles, xp)
    bins = counts.shape[1]
    cum = xp.cumsum(counts, axis=1)  # (N, bins)
    w = width / bins

    def order_stat(j: Any) -> tuple[Any, Any]:
        k = j - first[None, :]  # rank among the nonzero values, negative among the zeros
        b = (cum[None, :, :] <= k[:, :, None]).sum(axis=2)
        t = xp.clip(lo[None, :] + (xp.minimum(b, bins - 1) + 0.5) * w[None, :], acc["min"], acc["max"])
        v = t if log else 10.0 ** t
        return xp.where(k < 0, 0.0 if not log else -np.inf, v), k

    a, ka = order_stat(lo_j)
    b, kb = order_stat(hi_j)
    q = xp.where(size[None, :] > 0, _interpolate(a, b, f, xp), -np.inf if log else 0.0)
    return q, (ka, kb)


def trusted(ranks: tuple[Any, Any], below: Any, above: Any, nonzero: Any) -> Any:
    """True where both order statistics behind a quantile lie inside their layer's window (or among the zeros)."""
    ok = True
    for k in ranks:
        ok = ok & ((k < 0) | ((k >= below[None, :]) & (k < (nonzero - above)[None, :])))
    return ok


def to_host(a: Any) -> np.ndarray:
    """A NumPy copy of a NumPy or CuPy array (the only transfer a device run makes)."""
    return a.get() if hasattr(a, "get") else np.asarray(a)


__all__ = ["HIST_BYTES", "MAX_BINS", "MIN_BINS", "accumulate", "bins_for", "exact_quantiles", "histogram",
           "histogram_quantiles", "log10_abs", "mean", "new", "overflowed", "rescaled", "to_host", "trusted", "windows"]
