"""The ReLU family as a remedy, exactly: no squashing on the active side, but units can be inactive -- or dead.

One job: the probabilities and floors that decide whether a ReLU chain passes a gradient at all.

*Convention at 0.* ReLU'(0) is undefined; symvg states which value it uses (PyTorch's 0 by default,
SymPy's Heaviside(0) = 1/2 with ``at_zero="sympy"``, or the one-sided limits):

>>> conventions()
{'pytorch': 0, 'sympy': 1/2, 'left': 0, 'right': 1}

*Inactive units.* For one input, a unit whose pre-activation z ~ N(μ, s²) is below 0 passes no
gradient for that input (nor at z = 0 under PyTorch's convention -- a measure-zero event for
continuous z, so it does not change the probability). It is *inactive* for that input only:

    P(inactive) = P(z ≤ 0) = ½(1 + erf(−μ/(s√2))) = ½·erfc(μ/(s√2))        exactly ½ at μ = 0

written with erfc, so a probability of 10^-350 (μ = −40) is computed, not cancelled to 0:

>>> inactive_probability(0), inactive_probability(1, 1)
(1/2, erfc(sqrt(2)/2)/2)

*Dead units* -- the "dying ReLU" of the articles -- are something else: a unit with z ≤ 0 for *every*
input (say a large update drove its bias far below 0). It then gets no gradient from any input, so
gradient descent never revives it. Nothing here computes that probability: it depends on the data
and the training run, not on one Gaussian draw.

*A whole path.* ∂h_N/∂h_0 = ∏ w_j·ReLU'(z_j) is nonzero only when all N units are active. In the
scalar chain with w_j, b_j ~ N(0, σ²) independent and symmetric, z_j = w_j·h_{j-1} + b_j is symmetric
about 0 *given* h_{j-1} (whatever h_{j-1} ≥ 0 is, even 0, since b_j alone is symmetric), so
P(z_j > 0 | layers before) = ½ exactly, and the product law holds although the layers are not
independent: P(path alive) = 2^−N (:func:`alive_path_probability`; checked by Monte Carlo in
:func:`simulate_alive_path`).

>>> alive_path_probability(10), alive_path_probability(10**6)
(1/1024, (1/2)**1000000)

(a power too long to expand stays unevaluated, and is read through :mod:`symvg.magnitude`).

*Leaky ReLU's floor.* With φ' ∈ {ε, 1} and ε ≤ 1, |∂h_N/∂h_0| = ∏|w_j|·φ'(z_j) ≥ ε^N·∏|w_j|, with
equality on the all-negative path: the gradient shrinks, but never to 0.

>>> leaky_floor([2, "0.5", 3], "0.01")
3/1000000
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import sympy as sp

from collections import Counter

from symvg.display import Result
from symvg.symbolic.activations import get
from symvg.exact import count, Number, to_rational
from symvg.symbolic.chain import Chain
from symvg.errors import InvalidValueError
from symvg.magnitude import power, product
from symvg.engines.numeric import estimate_bytes, gradients
from symvg.engines.sampling import check_memory

MAX_MC_LAYERS = 100
"""Deepest chain the Monte Carlo check runs on: P(path alive) = 2^-N, and no feasible sample sees 2^-100."""
MAX_MC_WORK = 10**7
"""Largest layers × samples the check draws: a few seconds (10^8, 100 layers × 10^6 chains, took 25 s)."""


def conventions() -> dict[str, sp.Expr]:
    """ReLU'(0) under each convention ``get("relu", at_zero=...)`` accepts, read from the catalogue."""
    return {c: get("relu", at_zero=c).derivative_at(0) for c in ("pytorch", "sympy", "left", "right")}


def _std(s: Number) -> sp.Rational:
    v = to_rational(s, "std (s)")
    if v <= 0:
        raise InvalidValueError(f"std (s) must be > 0, got {s!r}")
    return v


def _layers(n: int) -> int:
    return count(n, "layers")


MAX_SPREAD = sp.Integer(10) ** 100
"""Largest |μ|/s taken: P = ½erfc(|μ|/(s√2)) is then ~10^(-10^200), whose log10 a float still holds."""


def _half_erfc(mean: Number, std: Number, sign: int) -> sp.Expr:
    mu, s = to_rational(mean, "mean (μ)"), _std(std)
    if abs(mu) > MAX_SPREAD * s:
        raise InvalidValueError(f"|mean|/std must be <= 1e100 (a probability near 10^(-10^200) is the limit of its "
                                f"log10), got mean {mean!r} and std {std!r}")
    return sp.erfc(sign * mu / (s * sp.sqrt(2))) / 2


def inactive_probability(mean: Number = 0, std: Number = 1) -> sp.Expr:
    """P(z ≤ 0) for z ~ N(mean, std²): ½·erfc(μ/(s√2)), exact (½ at μ = 0).

    The chance that a unit is inactive for *one* input -- not that it is dead (inactive for every input).
    """
    return _half_erfc(mean, std, 1)


def alive_probability(mean: Number = 0, std: Number = 1) -> sp.Expr:
    """P(z > 0) = 1 − P(inactive) = ½·erfc(−μ/(s√2)): the erfc form, so it does not cancel where it is tiny."""
    return _half_erfc(mean, std, -1)


def alive_path_probability(layers: int, mean: Number = 0, std: Number = 1) -> sp.Expr:
    """P(all N units active) = (1 − P(inactive))^N, assuming each z_j > 0 with that probability given the layers
    before (exact for symmetric weights and biases at μ = 0, see the module docstring): 2^−N at μ = 0.
    Exact; an unevaluated power where expanding it would be costly (:func:`symvg.magnitude.power`)."""
    return power(alive_probability(mean, std), _layers(layers))


def leaky_floor(weights: Sequence[Number], negative_slope: Number = "0.01") -> sp.Expr:
    """ε^N·∏|w_j|: the least |∂h_N/∂h_0| of a leaky-ReLU chain (ε ≤ 1), attained when every z_j < 0."""
    eps = get("leaky_relu", negative_slope).params[0][1]
    if eps > 1:
        raise InvalidValueError(f"negative_slope (ε) must be <= 1 for a floor ε^N·∏|w|, got {negative_slope!r}")
    ws = [abs(to_rational(w, f"weight w{j}")) for j, w in enumerate(weights, 1)]
    if not ws:
        raise InvalidValueError("weights must list at least one layer's weight, got none")
    return product([power(eps, len(ws))] + [power(w, k) for w, k in Counter(ws).items()])


def uniform_leaky_floor(weight: Number, layers: int, negative_slope: Number = "0.01") -> sp.Expr:
    """(ε|w|)^N: :func:`leaky_floor` with |w| on every one of N layers, for any N (no list of N weights).

    >>> uniform_leaky_floor(2, 3, "0.5") == leaky_floor([2, 2, 2], "0.5"), uniform_leaky_floor(1, 10**9)
    (True, (1/100)**1000000000)
    """
    n = _layers(layers)
    return power(leaky_floor([weight], negative_slope), n)   # leaky_floor([w]) = ε|w|, checked


@dataclass(frozen=True)
class AlivePaths(Result):
    """Monte Carlo estimate of P(path alive) against the exact 2^−N, with its binomial standard error."""

    layers: int
    samples: int
    seed: int
    alive: int
    exact: sp.Expr

    @property
    def estimate(self) -> float:
        return self.alive / self.samples

    @property
    def stderr(self) -> float:
        """√(p(1−p)/M) at the exact p: the scale of the estimate's sampling error (p ≥ 2^-100, a normal float)."""
        p = float(self.exact)
        return (p * (1 - p) / self.samples) ** 0.5

    @property
    def z_score(self) -> float:
        return (self.estimate - float(self.exact)) / self.stderr

    def as_dict(self) -> dict:
        return {"layers": self.layers, "samples": self.samples, "seed": self.seed, "alive": self.alive,
                "estimate": self.estimate, "exact": str(self.exact), "exact_value": float(self.exact),
                "stderr": self.stderr, "z_score": self.z_score}


def simulate_alive_path(layers: int, samples: int = 100_000, seed: int = 0) -> AlivePaths:
    """Draw M random ReLU chains (w_j, b_j, x ~ N(0, 1)) and count those whose dL/dw_1 is nonzero.

    dL/dw_1 = 2(h_N − y)·∏_{j>1} w_j·ReLU'(z_j)·ReLU'(z_1)·x (PyTorch convention): with continuous
    draws it is nonzero exactly when all N units are active. Runs :func:`symvg.engines.numeric.gradients`.
    """
    n = _layers(layers)
    if n > MAX_MC_LAYERS:
        raise InvalidValueError(f"the Monte Carlo check runs for layers <= {MAX_MC_LAYERS} (P(path alive) = 2^-N "
                                f"is beyond any feasible sample there), got {n}")
    samples = count(samples, "samples")
    if n * samples > MAX_MC_WORK:
        raise InvalidValueError(f"the Monte Carlo check draws layers × samples <= {MAX_MC_WORK:.0e} gradients (seconds), "
                                f"got {n} × {samples}; lower --samples")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidValueError(f"seed must be an integer >= 0, got {seed!r}")
    check_memory(estimate_bytes(n, samples, per_sample=True))   # the guard ``eval`` uses, before any allocation
    rng = np.random.default_rng(seed)
    W, B = rng.standard_normal((n, samples)), rng.standard_normal((n, samples))
    x = rng.standard_normal(samples)
    y = x + 10.0  # keeps h_N − y away from 0, so a zero gradient means an inactive unit, not a perfect fit
    g = gradients(Chain(n, "relu"), x, y, W, B)
    return AlivePaths(n, samples, seed, int(np.count_nonzero(g[0])), alive_path_probability(n))


__all__ = ["AlivePaths", "MAX_MC_LAYERS", "MAX_MC_WORK", "alive_path_probability", "alive_probability", "conventions",
           "inactive_probability", "leaky_floor", "simulate_alive_path", "uniform_leaky_floor"]
