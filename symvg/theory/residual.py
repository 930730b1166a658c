"""Residual connections, exactly: the product of (1 + w_j·φ'(z_j)) is a sum over paths, and one path is 1.

One job: the path expansion of a residual chain's Jacobian and the bounds it implies.

With h_j = h_{j-1} + φ(z_j), z_j = w_j·h_{j-1} + b_j, each layer contributes ∂h_j/∂h_{j-1} = 1 + w_j·φ'(z_j), so

    ∂h_N/∂h_k = ∏_{j=k+1}^{N} (1 + w_j·φ'(z_j)) = Σ_{S ⊆ {k+1..N}} ∏_{j∈S} w_j·φ'(z_j)

-- 2^(N−k) paths, one per subset of layers the signal goes *through* (it skips the rest). The empty
subset is the identity path: the term 1, which no activation can squash. Grouped by path length:

>>> e = path_expansion(2)
>>> for length, term in enumerate(e.by_length): print(length, term)
0 1
1 w1*phi'(z1) + w2*phi'(z2)
2 w1*w2*phi'(z1)*phi'(z2)

A plain chain keeps only the longest path, ∏ w_j·φ'(z_j). Bounds, for |w_j|·γ_j < 1:

    ∏ (1 − |w_j|γ_j)  ≤  |∂h_N/∂h_k|  ≤  ∏ (1 + |w_j|γ_j)        (plain: 0 ≤ … ≤ ∏ |w_j|γ_j)

>>> b = residual_bounds("sigmoid", [1, 1, 1])
>>> b.lower, b.upper, b.plain
(27/64, 125/64, 1/64)
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import sympy as sp

from symvg.display import Result
from symvg.symbolic.activations import Activation, get
from symvg.exact import count, Number, to_rational
from symvg.symbolic.chain import Chain
from symvg.errors import InvalidValueError
from symvg.magnitude import bounded, fields, power, product

MAX_PATH_LAYERS = 12
"""Most layers expanded into paths: 2^12 = 4096 terms; beyond that the product form says the same."""

dphi = sp.Function("phi'")
"""φ' as an undefined function, so the expansion shows the paths rather than one activation's formula."""


def _w(j: int) -> sp.Symbol:
    return sp.Symbol(f"w{j}", real=True)


def _z(j: int) -> sp.Symbol:
    return sp.Symbol(f"z{j}", real=True)


@dataclass(frozen=True)
class PathExpansion(Result):
    """∂h_N/∂h_k of a residual chain as ``product`` and as ``by_length[ℓ]`` = the sum of the length-ℓ paths."""

    depth: int
    start: int
    product: sp.Expr
    by_length: tuple[sp.Expr, ...]

    @property
    def expanded(self) -> sp.Expr:
        """Σ over all paths (the identity path first)."""
        return sp.Add(*self.by_length)

    @property
    def paths(self) -> int:
        """2^(N−k): one path per subset of the layers k+1..N."""
        return 2 ** (self.depth - self.start)

    @property
    def plain(self) -> sp.Expr:
        """The one path a plain chain has: ∏ w_j·φ'(z_j), the longest."""
        return self.by_length[-1]

    def with_activation(self, activation: str | Activation) -> "PathExpansion":
        """φ' replaced by ``activation``'s derivative (its kink convention included)."""
        act = get(activation)

        def sub(e: sp.Expr) -> sp.Expr:
            return e.replace(dphi, lambda arg: act.prime(arg))

        return PathExpansion(self.depth, self.start, sub(self.product), tuple(sub(t) for t in self.by_length))

    def as_dict(self) -> dict:
        return {"depth": self.depth, "start": self.start, "paths": self.paths, "product": str(self.product),
                "by_length": [str(t) for t in self.by_length]}

    def __str__(self) -> str:
        lines = [f"dh{self.depth}/dh{self.start} = {self.product}", f"  = sum over {self.paths} paths, by length:"]
        lines += [f"  length {n}: {t}" for n, t in enumerate(self.by_length)]
        return "\n".join(lines)


def path_expansion(depth: int, start: int = 0) -> PathExpansion:
    """Expand ∂h_depth/∂h_start and group the terms by path length (the degree in the w's).

    Built layer by layer -- each layer is either skipped (the 1) or gone through (w_j·φ'(z_j)) --
    rather than by ``sympy.expand`` of the product; the tests check that the groups sum to
    ``sympy.expand`` of the product and that each equals the elementary symmetric sum of its size.
    """
    count(depth, "depth")
    if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start < depth:
        raise InvalidValueError(f"start must be an integer in 0..{depth - 1}, got {start!r}")
    if depth - start > MAX_PATH_LAYERS:
        raise InvalidValueError(f"path expansion is built for at most {MAX_PATH_LAYERS} layers "
                                f"(2^{MAX_PATH_LAYERS} paths), got {depth - start}; use the product form")
    layers = range(start + 1, depth + 1)
    groups: list[list[sp.Expr]] = [[sp.Integer(1)]]   # groups[ℓ]: the paths through ℓ of the layers so far
    for j in layers:
        through = _w(j) * dphi(_z(j))
        groups = [(groups[n] if n < len(groups) else []) + ([t * through for t in groups[n - 1]] if n else [])
                  for n in range(len(groups) + 1)]
    product = sp.Mul(*(1 + _w(j) * dphi(_z(j)) for j in layers))
    return PathExpansion(depth, start, product, tuple(sp.Add(*g) for g in groups))


def subset_sum(depth: int, start: int, length: int) -> sp.Expr:
    """Σ_{|S| = length} ∏_{j∈S} w_j·φ'(z_j), built from subsets directly (the check on :func:`path_expansion`)."""
    layers = range(start + 1, depth + 1)
    return sp.Add(*(sp.Mul(*(_w(j) * dphi(_z(j)) for j in s)) for s in itertools.combinations(layers, length)))


def derive_jacobian(chain: Chain, k: int) -> sp.Expr:
    """∏ of the ``residual`` factors of :func:`symvg.symbolic.derive.derive` (chain, k): its ∂h_N/∂h_k, in forward symbols."""
    from symvg.symbolic.derive import derive

    if not chain.residual:
        raise InvalidValueError("derive_jacobian needs a Chain with residual=True")
    return sp.Mul(*(f.expr for f in derive(chain, k).factors if f.kind == "residual"))


@dataclass(frozen=True)
class ResidualBounds(Result):
    """Bounds on |∂h_N/∂h_0| for weights of the given sizes (either sign): residual lower/upper, and plain."""

    activation: str
    gamma: sp.Expr
    weights: tuple[sp.Expr, ...]
    lower: sp.Expr   # ∏ max(0, 1 − γ|w_j|): > 0 while every γ|w_j| < 1 -- no vanishing to 0
    upper: sp.Expr   # ∏ (1 + γ|w_j|)
    plain: sp.Expr   # ∏ γ|w_j|: the plain chain's upper bound (its lower bound is inf|φ'|-based, often 0)

    def as_dict(self) -> dict:
        """Exact strings, float64 values (null where they overflow, with a note), and log10s."""
        return {"activation": self.activation, "gamma": str(self.gamma), "weights": [str(w) for w in self.weights],
                **fields("lower", self.lower), **fields("upper", self.upper), **fields("plain", self.plain)}


def residual_bounds(activation: str | Activation, weights: Sequence[Number]) -> ResidualBounds:
    """Exact bounds on the residual Jacobian ∏(1 + w_jφ'(z_j)) from γ = sup|φ'| (see the module docstring).

    |1 + a| ≥ 1 − |a| and ≤ 1 + |a| for each factor; the lower bound is positive only while γ|w_j| < 1
    for every j, and is then attained when w_jφ'(z_j) = −γ|w_j| (sigmoid: w_j < 0 and z_j = 0).
    """
    act = get(activation)
    ws = tuple(abs(to_rational(w, f"weight w{j}")) for j, w in enumerate(weights, 1))
    if not ws:
        raise InvalidValueError("weights must list at least one layer's weight, got none")
    g, counts = bounded(act.gamma, f"γ = sup|φ'| of {act.label}"), Counter(ws)

    def prod(factor) -> sp.Expr:   # equal weights as one power: exact, and cheap for |w| = 1e999
        return product(power(factor(w), k) for w, k in counts.items())

    lower = prod(lambda w: sp.Max(0, 1 - g * w))
    return ResidualBounds(act.label, g, ws, lower, prod(lambda w: 1 + g * w), prod(lambda w: g * w))


__all__ = ["MAX_PATH_LAYERS", "PathExpansion", "ResidualBounds", "derive_jacobian", "dphi", "path_expansion",
           "residual_bounds", "subset_sum"]
