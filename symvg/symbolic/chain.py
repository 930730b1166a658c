"""The network, described once: the seeds' scalar chain x → h1 → h2 → … → h_N → L.

    h_0 = x,   z_k = w_k·h_{k-1} + b_k,   h_k = φ_k(z_k)            (plain)
                                          h_k = h_{k-1} + φ_k(z_k)  (residual=True)
    L = (h_N − y)²  (mse, PyTorch's MSELoss on one sample)   or   −y·log h_N − (1−y)·log(1−h_N)  (bce)

Everything downstream (derive, the bounds, the engines, the views) reads these forward definitions; nothing
else builds the network. Validation happens here, once.

>>> c = Chain(2, "sigmoid")
>>> c
Chain(depth=2, activation='sigmoid', loss='mse', bias=True, residual=False)
>>> c.forward()
((z1, b1 + w1*x), (h1, 1/(1 + exp(-z1))), (z2, b2 + h1*w2), (h2, 1/(1 + exp(-z2))))
>>> c.loss_expr()
(h2 - y)**2
>>> Chain(0)
Traceback (most recent call last):
symvg.errors.InvalidChainError: depth must be an integer >= 1, got 0
"""

from __future__ import annotations

import numbers
import operator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Sequence, Union

import sympy as sp

from symvg.symbolic.activations import Activation, get
from symvg.symbolic.parse import z
from symvg.errors import InvalidChainError, LossDomainError

MAX_DEPTH = 100_000
"""Largest depth accepted; the structured derivation is linear in depth, this only guards typos."""

LOSSES = ("mse", "bce")

x, y = sp.symbols("x y", real=True)

ActivationSpec = Union[str, Activation, Sequence[Union[str, Activation]]]


@lru_cache(maxsize=None)
def _symbol(name: str, k: int) -> sp.Symbol:
    return sp.Symbol(f"{name}{k}", real=True)


# Where a counterexample to 0 < φ(z) < 1 is looked for: the kinks of the catalogue and far out on both sides.
_WITNESSES = (0, -1, 1, -3, 3, -10, 10, -100, 100)
_FACTOR_OPS = 60


def _proved_positive(e: sp.Expr) -> bool:
    """SymPy's assumptions prove e > 0 for every real z (trying forms they reason about better: one fraction,
    tanh/sigmoid as exponentials). False means "not proved", not "false"."""
    if isinstance(e, sp.Piecewise):
        return all(_proved_positive(piece) for piece, _ in e.args)  # sound: each piece, over all of R
    tries = [lambda t: t, sp.together, lambda t: sp.together(t.rewrite(sp.exp))]
    if sp.count_ops(e) <= _FACTOR_OPS:  # factor is the strongest try and the one that can take long
        tries.append(lambda t: sp.factor(sp.together(t.rewrite(sp.exp))))
    return any(f(e).is_positive for f in tries)


@lru_cache(maxsize=256)
def _unit_interval_witness(act: Activation) -> str | None:
    """None when 0 < φ(z) < 1 is proved for every real z; else why BCE cannot take φ as its prediction.

    >>> from symvg.symbolic.activations import get
    >>> _unit_interval_witness(get("sigmoid")) is None, _unit_interval_witness(get("expr:(1 + tanh(z))/2")) is None
    (True, True)
    >>> _unit_interval_witness(get("tanh"))
    'tanh(z) = 0 at z = 0, outside (0, 1)'
    >>> _unit_interval_witness(get("expr:exp(-z**2)"))
    'φ(z) = 1 at z = 0, outside (0, 1)'
    >>> _unit_interval_witness(get("hard_sigmoid"))
    'hard_sigmoid(z) = 0 at z = -3, outside (0, 1)'
    """
    phi = sp.piecewise_fold(act.expr)
    name = "φ(z)" if act.name.startswith("expr:") else f"{act.label}(z)"
    if _proved_positive(phi) and _proved_positive(sp.piecewise_fold(1 - phi)):
        return None
    for p in _WITNESSES:
        v = phi.subs(z, p)
        if v.is_extended_real and (sp.Le(v, 0) == sp.true or sp.Ge(v, 1) == sp.true):
            shown = str(v) if v.is_Rational else f"{v} ≈ {sp.N(v, 4)}"
            return f"{name} = {shown} at z = {p}, outside (0, 1)"
    return f"0 < {name} < 1 could not be proved for every z" + (f" (φ(z) = {act.expr})" if name == "φ(z)" else "")


def _check_bce_output(last: Activation, residual: bool) -> None:
    """BCE takes log h_N and log(1 - h_N): refuse a chain whose output is not proved to stay in (0, 1)."""
    if residual:
        raise LossDomainError("bce needs the output h_N in (0, 1), but a residual chain's h_N = h_(N-1) + φ(z_N) "
                              "is x + N·φ(0) when every w and b is 0, any real number; use --loss mse")
    why = _unit_interval_witness(last)
    if why is not None:
        raise LossDomainError(f"bce needs the output h_N in (0, 1): {why}; end the chain in sigmoid, or use mse")


@dataclass(frozen=True)
class Chain:
    """A depth-N scalar chain with one activation (or one per layer) and a loss."""

    depth: int
    activation: ActivationSpec = "sigmoid"
    loss: str = "mse"
    bias: bool = True
    residual: bool = False
    activations: tuple[Activation, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.depth, bool) or not isinstance(self.depth, numbers.Integral) or not 1 <= self.depth <= MAX_DEPTH:
            raise InvalidChainError(f"depth must be an integer >= 1, got {self.depth!r}"
                                    if not (isinstance(self.depth, numbers.Integral) and self.depth > MAX_DEPTH)
                                    else f"depth must be <= {MAX_DEPTH}, got {self.depth!r}")
        object.__setattr__(self, "depth", operator.index(self.depth))  # np.int64(3) -> 3
        if self.loss not in LOSSES:
            raise InvalidChainError(f"unknown loss {self.loss!r}; known: {', '.join(LOSSES)}")
        spec = self.activation
        if isinstance(spec, (str, Activation)):
            acts = (get(spec),) * self.depth
        else:
            if isinstance(spec, (bytes, dict)) or not isinstance(spec, Iterable):
                raise InvalidChainError(f"activation must be a name, an Activation, or one per layer; "
                                        f"got {type(spec).__name__} {spec!r:.60}")
            spec = tuple(spec)
            if len(spec) != self.depth:
                raise InvalidChainError(f"got {len(spec)} activations for depth {self.depth}; give one, or one per layer")
            acts = tuple(get(a) for a in spec)
            object.__setattr__(self, "activation", spec)  # hashable
        object.__setattr__(self, "activations", acts)
        if self.loss == "bce":
            _check_bce_output(acts[-1], self.residual)

    # -- the symbols of the maths, named as in the text: w3, b3, z3, h3 (h0 is x)
    def w(self, k: int) -> sp.Symbol:
        return _symbol("w", self.layer(k))

    def b(self, k: int) -> sp.Symbol:
        return _symbol("b", self.layer(k)) if self.bias else sp.Integer(0)

    def z(self, k: int) -> sp.Symbol:
        return _symbol("z", self.layer(k))

    def h(self, k: int) -> sp.Symbol:
        return x if k == 0 else _symbol("h", self.layer(k))

    def layer(self, k: int) -> int:
        """Validate a layer index: an integer in 1..depth."""
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= self.depth:
            raise InvalidChainError(f"layer index must be an integer in 1..{self.depth}, got {k!r}")
        return operator.index(k)

    @property
    def name(self) -> str:
        """A short description: the activation label (or labels), and residual if on."""
        labels = sorted({a.label for a in self.activations})
        base = labels[0] if len(labels) == 1 else "mixed(" + ", ".join(a.label for a in self.activations) + ")"
        return base + (" residual" if self.residual else "")

    def symbols(self) -> tuple[sp.Symbol, ...]:
        """The free inputs: x, y, w1…wN, b1…bN (biases only when on)."""
        ws = tuple(self.w(k) for k in range(1, self.depth + 1))
        bs = tuple(self.b(k) for k in range(1, self.depth + 1)) if self.bias else ()
        return (x, y) + ws + bs

    def pre_activation(self, k: int) -> sp.Expr:
        """z_k in terms of h_{k-1}."""
        return self.w(k) * self.h(k - 1) + self.b(k)

    def output(self, k: int) -> sp.Expr:
        """h_k in terms of z_k (and h_{k-1} when residual)."""
        act = self.activations[self.layer(k) - 1](self.z(k))
        return self.h(k - 1) + act if self.residual else act

    def forward(self) -> tuple[tuple[sp.Symbol, sp.Expr], ...]:
        """The forward pass as definitions (z1, …), (h1, …), …, in order."""
        out = []
        for k in range(1, self.depth + 1):
            out += [(self.z(k), self.pre_activation(k)), (self.h(k), self.output(k))]
        return tuple(out)

    def loss_expr(self, prediction: sp.Expr | None = None) -> sp.Expr:
        """L as a function of the prediction (h_N by default)."""
        p = self.h(self.depth) if prediction is None else prediction
        if self.loss == "mse":
            return (p - y) ** 2
        return -y * sp.log(p) - (1 - y) * sp.log(1 - p)

    def dloss(self) -> sp.Expr:
        """∂L/∂h_N, the first factor of every gradient."""
        p = self.h(self.depth)
        # Written in the textbook form (the tests check it equals diff(L, h_N)); evaluate=False
        # stops SymPy distributing the 2 into 2*h_N - 2*y.
        if self.loss == "mse":
            return sp.Mul(2, p - y, evaluate=False)
        return (p - y) / (p * (1 - p))

    def check_labels(self, labels: Any) -> None:
        """Refuse, for BCE, a label y outside [0, 1] or NaN (LossDomainError): BCE's y is a probability (a 0/1
        class or a soft label); at y = 2 its formula is no cross-entropy, its minimum not at h_N = y. ``labels``
        is one exact number or an array of them (NumPy or CuPy); MSE takes any real y.

        >>> Chain(1, "sigmoid", loss="bce").check_labels(sp.Rational(1, 2))
        >>> Chain(1, "sigmoid", loss="bce").check_labels(sp.Integer(2))
        Traceback (most recent call last):
        symvg.errors.LossDomainError: bce takes labels y in [0, 1] (a class 0/1 or a probability), got y = 2; use mse for other targets
        >>> import numpy as np
        >>> Chain(1, "sigmoid", loss="bce").check_labels(np.array([0.0, np.nan]))
        Traceback (most recent call last):
        symvg.errors.LossDomainError: bce takes labels y in [0, 1] (a class 0/1 or a probability), got y = nan; use mse for other targets
        >>> Chain(1, "sigmoid").check_labels(np.array([-5.0, 7.0]))   # mse: any real y
        """
        if self.loss != "bce":
            return
        if isinstance(labels, sp.Basic):
            if labels.is_real and bool(labels >= 0) and bool(labels <= 1):
                return
            shown = str(labels)
        else:
            bad = ~((labels >= 0) & (labels <= 1))  # a comparison with NaN is False: NaN is bad too
            if not bool(bad.any()):
                return
            shown = repr(float(labels[bad].ravel()[0] if getattr(labels, "ndim", 0) else labels))
        raise LossDomainError(f"bce takes labels y in [0, 1] (a class 0/1 or a probability), got y = {shown}; "
                              "use mse for other targets")

    def nested(self) -> sp.Expr:
        """L written out as one nested expression in x, y, w, b -- what naive ``sympy.diff`` works on.

        Its size grows with depth; it is here for checking the structured derivation, not for use.
        """
        h = x
        for k in range(1, self.depth + 1):
            zk = self.w(k) * h + self.b(k)
            act = self.activations[k - 1](zk)
            h = h + act if self.residual else act
        return self.loss_expr(h)


__all__ = ["LOSSES", "MAX_DEPTH", "ActivationSpec", "Chain", "x", "y"]
