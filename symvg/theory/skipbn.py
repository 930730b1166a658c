"""Two more remedies, with the same rigour: skip connections of any length, and batch normalisation's backward factor.

**Skips of length t** (layer k−t feeds layer k): h_k = φ(W_k h_{k-1} + b_k) + h_{k−t} for k ≥ t. Then

    J_k = ∂h_k/∂h_0 = D_k W_k J_{k−1} + J_{k−t}      (J_0 = I, no skip term while k < t)

-- a sum over paths that take single layers (factor D_k W_k) or jump t layers (factor I). When t divides N
one path jumps all the way: the identity, which no activation can squash. t = 1 is the residual chain.

>>> skip_jacobian(3, 1)                       # the residual product (1 + a1)(1 + a2)(1 + a3), expanded
a1*a2*a3 + a1*a2 + a1*a3 + a1 + a2*a3 + a2 + a3 + 1
>>> skip_jacobian(4, 2)                       # a_k = w_k·φ'(z_k); the jump-jump path is the 1
a1*a2*a3*a4 + a1*a2 + a1*a4 + a3*a4 + 1

**Batch normalisation** of one feature over a batch of m values, y = (x − μ)/σ, σ² = mean((x − μ)²) + ε:

    ∂y/∂x = (1/σ)·(I − 11ᵀ/m − y yᵀ/m),

a projection (ε = 0) that removes the mean and the y direction, scaled by 1/σ.

>>> bn_jacobian(3)[0, 0]
(2/3 - y1**2/3)/sigma
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy as sp

from symvg.symbolic.activations import Activation, get
from symvg.errors import InvalidValueError
from symvg.theory.matrices import numpy_functions

MAX_SYMBOLIC_DEPTH = 16


def _a(k: int) -> sp.Symbol:
    return sp.Symbol(f"a{k}", real=True)


def _check(depth: int, length: int, most: int) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= most:
        raise InvalidValueError(f"depth must be an integer in 1..{most}, got {depth!r}")
    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= depth:
        raise InvalidValueError(f"skip length must be an integer in 1..{depth}, got {length!r}")


def skip_jacobian(depth: int, length: int) -> sp.Expr:
    """∂h_N/∂h_0 of a scalar chain with skips of ``length``, expanded, in a_k = w_k·φ'(z_k) (one term per path)."""
    _check(depth, length, MAX_SYMBOLIC_DEPTH)
    J = [sp.Integer(1)]
    for k in range(1, depth + 1):
        J.append(sp.expand(_a(k) * J[k - 1] + (J[k - length] if k >= length else 0)))
    return J[depth]


def skip_paths(depth: int, length: int) -> int:
    """How many paths: compositions of N into steps of 1 and t (t = 1: 2^N, each layer taken or skipped)."""
    _check(depth, length, 10**6)
    if length == 1:
        return 2**depth
    c = [1] + [0] * depth
    for k in range(1, depth + 1):
        c[k] = c[k - 1] + (c[k - length] if k >= length else 0)
    return c[depth]


@dataclass(frozen=True)
class SkipRun:
    """‖∂h_N/∂h_k‖₂ (log10, k = 0..N) in one random width-n network with skips of ``length``, and its bound."""

    activation: str
    width: int
    depth: int
    length: int
    log10_norm: float
    log10_plain: float
    log10_bound: float

    def as_dict(self) -> dict:
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in self.__dict__.items()}

    def __str__(self) -> str:
        return (f"{self.activation}, width {self.width}, depth {self.depth}, skips of length {self.length}: "
                f"log10 ‖dh_N/dh_0‖ = {self.log10_norm:.4g} (bound {self.log10_bound:.4g}); "
                f"without skips {self.log10_plain:.4g}")


def simulate_skips(activation: str | Activation, width: int, depth: int, length: int, sigma_w2: float = 1.0,
                   seed: int = 0) -> SkipRun:
    """J_k = D_k W_k J_{k−1} + J_{k−t} on a random network; bound U_k = γ‖W_k‖₂ U_{k−1} + U_{k−t}, U_0 = 1.

    The plain network (no skips) uses the same weights and input.
    """
    _check(depth, length, 1000)
    act = get(activation)
    phi, dphi = numpy_functions(act)
    rng = np.random.default_rng(seed)
    gamma = float(act.gamma)
    h = [rng.standard_normal(width)]
    hp = h[0]
    J, Jp, U = [np.eye(width)], np.eye(width), [1.0]
    for k in range(1, depth + 1):
        w = rng.standard_normal((width, width)) * math.sqrt(sigma_w2 / width)
        z = w @ h[-1]
        skip = k >= length
        h.append(phi(z) + (h[k - length] if skip else 0))
        J.append(dphi(z)[:, None] * (w @ J[-1]) + (J[k - length] if skip else 0))
        U.append(gamma * float(np.linalg.norm(w, 2)) * U[-1] + (U[k - length] if skip else 0))
        zp = w @ hp
        Jp, hp = dphi(zp)[:, None] * (w @ Jp), phi(zp)
    lg = lambda v: math.log10(v) if v > 0 else -math.inf  # noqa: E731
    return SkipRun(act.label, width, depth, length, lg(float(np.linalg.norm(J[-1], 2))),
                   lg(float(np.linalg.norm(Jp, 2))), lg(U[-1]))


# ----------------------------------------------------------------------------- batch normalisation


def bn_jacobian(m: int) -> sp.Matrix:
    """(1/σ)(I − 11ᵀ/m − y yᵀ/m) in symbols y1..ym, σ: batch normalisation's backward factor for one feature."""
    if isinstance(m, bool) or not isinstance(m, int) or not 2 <= m <= 16:
        raise InvalidValueError(f"batch size m must be an integer in 2..16 for the symbolic form, got {m!r}")
    y = sp.Matrix(sp.symbols(f"y1:{m + 1}", real=True))
    sigma = sp.Symbol("sigma", positive=True)
    return (sp.eye(m) - sp.ones(m, m) / m - y * y.T / m) / sigma


def bn_forward(x: np.ndarray, eps: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Normalise every row (a feature) across the batch (columns): y and σ per row."""
    mu = x.mean(axis=1, keepdims=True)
    sigma = np.sqrt(((x - mu) ** 2).mean(axis=1, keepdims=True) + eps)
    return (x - mu) / sigma, sigma


def bn_backward(dy: np.ndarray, y: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """dL/dx from dL/dy: (1/σ)(dy − mean(dy) − y·mean(dy ⊙ y)), the formula above applied row by row."""
    return (dy - dy.mean(axis=1, keepdims=True) - y * (dy * y).mean(axis=1, keepdims=True)) / sigma


@dataclass(frozen=True)
class BNRun:
    """log10 ‖∂L/∂H_l‖_F, l = 0..L, in a deep network h_l = φ(BN(W_l h_{l−1})) without skips."""

    activation: str
    width: int
    depth: int
    batch: int
    log10_grad: tuple[float, ...]

    @property
    def growth(self) -> float:
        """Geometric-mean factor per layer by which the gradient grows going back (> 1: exploding)."""
        return 10 ** ((self.log10_grad[0] - self.log10_grad[-1]) / self.depth)

    def as_dict(self) -> dict:
        return {"activation": self.activation, "width": self.width, "depth": self.depth, "batch": self.batch,
                "log10_grad": list(self.log10_grad), "growth_per_layer": self.growth}

    def __str__(self) -> str:
        return (f"batch-normalised {self.activation} network, width {self.width}, depth {self.depth}, batch "
                f"{self.batch}, no skips: the gradient grows by ×{self.growth:.4g} per layer going back "
                f"(log10 ‖dL/dH_0‖ − log10 ‖dL/dH_L‖ = {self.log10_grad[0] - self.log10_grad[-1]:.4g})")


def simulate_batchnorm(activation: str | Activation = "relu", width: int = 64, depth: int = 30, batch: int = 8,
                       seed: int = 0) -> BNRun:
    """Backpropagate a random output gradient through a deep BN network at Gaussian init (Yang et al. 2019's setting)."""
    _check(depth, 1, 1000)
    if isinstance(batch, bool) or not isinstance(batch, int) or not 3 <= batch <= 4096:
        raise InvalidValueError(f"batch must be an integer in 3..4096, got {batch!r}")
    act = get(activation)
    phi, dphi = numpy_functions(act)
    rng = np.random.default_rng(seed)
    h, cache = rng.standard_normal((width, batch)), []
    for _ in range(depth):
        w = rng.standard_normal((width, width)) / math.sqrt(width)
        y, sigma = bn_forward(w @ h)
        cache.append((w, y, sigma))
        h = phi(y)
    g = rng.standard_normal((width, batch))
    out = [float(np.linalg.norm(g))]
    for w, y, sigma in reversed(cache):
        g = w.T @ bn_backward(dphi(y) * g, y, sigma)
        out.append(float(np.linalg.norm(g)))
    return BNRun(act.label, width, depth, batch, tuple(math.log10(v) for v in reversed(out)))


__all__ = ["BNRun", "SkipRun", "bn_backward", "bn_forward", "bn_jacobian", "simulate_batchnorm", "simulate_skips",
           "skip_jacobian", "skip_paths"]
