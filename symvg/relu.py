"""The ReLU family as a remedy, exactly: no squashing on the active side, but units can be inactive -- or dead.

One job: the probabilities and floors that decide whether a ReLU chain passes a gradient at all.

*Convention at 0.* ReLU'(0) is undefined; symvg states which value it uses (PyTorch's 0 by default,
SymPy's Heaviside(0) = 1/2 with ``at_zero="sympy"``, or the one-sided limits):

>>> conventions()
{'pytorch': 0, 'sympy': 1/2, 'left': 0, 'right': 1}

*Inactive units.* For one input, a unit whose pre-activation z ~ N(μ, s²) is below 0 passes no
gradient for that input (nor at z = 0 under PyTorch's convention -- a measure-zero event for
continuous z, so it does not change the probability). It is *inactive* for that input only:

    P(inactive) = P(z ≤ 0) = ½(1 + erf(−μ/(s√2)))        exactly ½ at μ = 0

>>> inactive_probability(0), inactive_probability(1, 1)
(1/2, 1/2 - erf(sqrt(2)/2)/2)

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

>>> alive_path_probability(10)
1/1024

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

from .activations import Number, get, to_rational
from .chain import Chain
from .errors import InvalidValueError
from .numeric import gradients


def conventions() -> dict[str, sp.Expr]:
    """ReLU'(0) under each convention ``get("relu", at_zero=...)`` accepts, read from the catalogue."""
    return {c: get("relu", at_zero=c).derivative_at(0) for c in ("pytorch", "sympy", "left", "right")}


def _std(s: Number) -> sp.Rational:
    v = to_rational(s, "std (s)")
    if v <= 0:
        raise InvalidValueError(f"std (s) must be > 0, got {s!r}")
    return v


def _layers(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidValueError(f"layers must be an integer >= 1, got {n!r}")
    return n


def inactive_probability(mean: Number = 0, std: Number = 1) -> sp.Expr:
    """P(z ≤ 0) for z ~ N(mean, std²): ½(1 + erf(−μ/(s√2))), exact (½ at μ = 0).

    The chance that a unit is inactive for *one* input -- not that it is dead (inactive for every input).
    """
    mu, s = to_rational(mean, "mean (μ)"), _std(std)
    return sp.Rational(1, 2) * (1 + sp.erf(-mu / (s * sp.sqrt(2))))


def alive_path_probability(layers: int, mean: Number = 0, std: Number = 1) -> sp.Expr:
    """P(all N units active) = (1 − P(inactive))^N, assuming each z_j > 0 with that probability given the layers
    before (exact for symmetric weights and biases at μ = 0, see the module docstring): 2^−N at μ = 0."""
    return (1 - inactive_probability(mean, std)) ** _layers(layers)


def leaky_floor(weights: Sequence[Number], negative_slope: Number = "0.01") -> sp.Expr:
    """ε^N·∏|w_j|: the least |∂h_N/∂h_0| of a leaky-ReLU chain (ε ≤ 1), attained when every z_j < 0."""
    eps = get("leaky_relu", negative_slope).params[0][1]
    if eps > 1:
        raise InvalidValueError(f"negative_slope (ε) must be <= 1 for a floor ε^N·∏|w|, got {negative_slope!r}")
    ws = [to_rational(w, f"weight w{j}") for j, w in enumerate(weights, 1)]
    if not ws:
        raise InvalidValueError("weights must list at least one layer's weight, got none")
    return eps ** len(ws) * sp.Mul(*(abs(w) for w in ws))


@dataclass(frozen=True)
class AlivePaths:
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
        """√(p(1−p)/M) at the exact p: the scale of the estimate's sampling error."""
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
    draws it is nonzero exactly when all N units are active. Runs :func:`symvg.numeric.gradients`.
    """
    n = _layers(layers)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise InvalidValueError(f"samples must be an integer >= 1, got {samples!r}")
    rng = np.random.default_rng(seed)
    W, B = rng.standard_normal((n, samples)), rng.standard_normal((n, samples))
    x = rng.standard_normal(samples)
    y = x + 10.0  # keeps h_N − y away from 0, so a zero gradient means an inactive unit, not a perfect fit
    g = gradients(Chain(n, "relu"), x, y, W, B)
    return AlivePaths(n, samples, seed, int(np.count_nonzero(g[0])), alive_path_probability(n))


__all__ = ["AlivePaths", "alive_path_probability", "conventions", "inactive_probability", "leaky_floor",
           "simulate_alive_path"]
