"""The chain rule, structured: dL/dw_k as an ordered product of local derivatives.

Naive ``sympy.diff`` on the nested loss re-differentiates ever-growing expressions and stalls
near depth 30. Here each layer keeps its forward symbols z_j, h_j, and the backward walk only
writes down *local* derivatives -- one or two per layer -- so the size is linear in depth
(micrograd's idea, written symbolically):

    ∂L/∂w_k = ∂L/∂h_N · ∏_{j=N}^{k+1} (∂h_j/∂z_j · ∂z_j/∂h_{j-1}) · ∂h_k/∂z_k · ∂z_k/∂w_k
            = 2(h_N − y) · ∏ φ'(z_j)·w_j · φ'(z_k) · h_{k-1}

>>> from symvg.symbolic.chain import Chain
>>> d = derive(Chain(2, "relu"), wrt=1)
>>> for f in d.factors: print(f)
dL/dh2 = 2*(h2 - y)
dh2/dz2 = relu'(z2)
dz2/dh1 = w2
dh1/dz1 = relu'(z1)
dz1/dw1 = x
>>> d.evaluate({"x": 2, "y": 0, "w1": "0.5", "b1": 0, "w2": 3, "b2": 0}).value   # all rational: exact
36
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Mapping

import sympy as sp

from symvg.symbolic.parse import z
from symvg.exact import Number, to_rational
from symvg.symbolic.chain import Chain
from symvg import display, magnitude
from symvg.display import Result
from symvg.errors import InvalidChainError, InvalidValueError

MAX_CLOSED_FORM_DEPTH = 12
"""Depth up to which the fully substituted closed form in x is built.

Beyond it the expression is a nest of N exponentials whose printed size grows quadratically and
tells a reader nothing the product form does not; ask for ``.product`` and ``.forward`` instead.
"""


CANONICAL_PRODUCT_DEPTH = 64
"""Depth up to which ``Derivation.product`` is put in SymPy's canonical form."""


@dataclass(frozen=True)
class Factor(Result):
    """One local derivative: ``∂num/∂den = expr`` at ``layer``, of a ``kind`` the bounds know how to bound.

    kinds: ``loss`` (∂L/∂h_N), ``activation`` (∂h_j/∂z_j = φ'(z_j)), ``weight`` (∂z_j/∂h_{j-1} = w_j),
    ``residual`` (∂h_j/∂h_{j-1} = 1 + w_j·φ'(z_j)), ``input`` (∂z_k/∂w_k = h_{k-1}).
    """

    num: sp.Symbol
    den: sp.Symbol
    expr: sp.Expr
    kind: str
    layer: int
    activation: str = ""

    @property
    def name(self) -> str:
        return f"d{self.num}/d{self.den}"

    @property
    def display(self) -> sp.Expr | str:
        """What to show for the factor: φ'(z_j) by name for activations (and in 1 + w_j·φ'(z_j) for
        residual factors), the expression otherwise.

        >>> [str(f.display) for f in derive(Chain(2, "tanh", residual=True)).factors][1:3]
        ["1 + w2*tanh'(z2)", "tanh'(z1)"]
        """
        if self.kind == "activation":
            return f"{self.activation}'({self.den})"
        if self.kind == "residual":
            return f"1 + w{self.layer}*{self.activation}'(z{self.layer})"
        return self.expr

    def __str__(self) -> str:
        return f"{self.name} = {self.display}"


@dataclass(frozen=True)
class Evaluation(Result):
    """The derivation at numbers: each factor's value, and their product (exact when inputs are).

    ``values`` holds the inputs and every forward value (z_j, h_j) they produced.
    """

    values: tuple[tuple[sp.Symbol, sp.Expr], ...]
    factors: tuple[sp.Expr, ...]
    value: sp.Expr

    def __float__(self) -> float:
        return float(self.value.evalf(30))


@dataclass(frozen=True)
class Derivation(Result):
    """∂L/∂w_k of a :class:`~symvg.symbolic.chain.Chain`, factor by factor.

    ``factors`` are in the order the chain rule walks them: from the loss back to layer k.
    ``product`` multiplies them (in forward symbols); ``closed_form()`` substitutes the forward
    pass to get an expression in x, y, w, b.
    """

    chain: Chain
    wrt: int
    factors: tuple[Factor, ...]

    @property
    def target(self) -> sp.Symbol:
        return self.chain.w(self.wrt)

    @cached_property
    def product(self) -> sp.Expr:
        """The factors multiplied, in forward symbols (linear size in depth).

        Up to :data:`CANONICAL_PRODUCT_DEPTH` layers SymPy puts the product in canonical form;
        deeper, canonical ordering costs more than the whole derivation (superlinear in the number
        of factors) and nobody reads it, so the factors stay an unevaluated Mul in chain-rule order
        -- the same value, as ``.doit()`` shows.
        """
        exprs = [f.expr for f in self.factors]
        return sp.Mul(*exprs, evaluate=self.chain.depth <= CANONICAL_PRODUCT_DEPTH)

    def forward(self) -> tuple[tuple[sp.Symbol, sp.Expr], ...]:
        """The definitions the product's symbols stand for (h0 is x)."""
        return self.chain.forward()

    def closed_form(self) -> sp.Expr:
        """The product with the forward pass substituted: an expression in x, y, w, b only.

        Refused beyond :data:`MAX_CLOSED_FORM_DEPTH`, with the reason.
        """
        if self.chain.depth > MAX_CLOSED_FORM_DEPTH:
            raise InvalidChainError(
                f"closed form is built only up to depth {MAX_CLOSED_FORM_DEPTH} (got {self.chain.depth}): "
                "it is a nest of one expression per layer and grows quadratically when printed; "
                "use the product form with the forward definitions instead")
        return _substitute_forward(self.product, self.chain)

    def subs(self, values: Mapping[str | sp.Symbol, Number]) -> sp.Expr:
        """The closed form with some inputs fixed (exact Rationals from the given numbers)."""
        return self.closed_form().xreplace(_parse_values(self.chain, values, partial=True))

    def evaluate(self, values: Mapping[str | sp.Symbol, Number]) -> Evaluation:
        """Every factor at the given x, y, w, b (all required): exact when the inputs are rational and each
        forward value's exact form stays short (rationals always do: ReLU chains stay exact at any depth).

        Walks the forward pass layer by layer, so it works at any depth. A forward value whose exact form
        passes :data:`EXACT_OPS` operations (sigmoid's nest exp(−1/(1 + exp(−…))) grows every layer, and
        SymPy's time on it exponentially: 20 layers never finished) is carried on as a Float of
        :func:`_carry_digits` digits, enough that the rounding, amplified by at most γ|w| per layer, stays
        below 30 digits of the result.
        """
        env = _parse_values(self.chain, values, partial=False)
        dps = _carry_digits(self.chain, env)
        for sym, rhs in self.chain.forward():
            v = _simplify_number(rhs.xreplace(env))
            if dps is not None and not v.is_Rational and not isinstance(v, sp.Float) and sp.count_ops(v) > EXACT_OPS:
                v = sp.Float(v.evalf(dps), dps)
            env[sym] = v
        vals = tuple(_simplify_number(f.expr.xreplace(env)) for f in self.factors)
        return Evaluation(tuple(env.items()), vals, _simplify_number(sp.Mul(*vals)))

    def __str__(self) -> str:
        return "\n".join([f"dL/d{self.target} for {self.chain.name} chain, depth {self.chain.depth}:"]
                         + [f"  {f}" for f in self.factors])

    def _repr_latex_(self) -> str:
        return display.latex(self)


def derive(chain: Chain, wrt: int = 1) -> Derivation:
    """Derive ∂L/∂w_wrt for ``chain`` (validated, cached on the hashable chain spec)."""
    if not isinstance(chain, Chain):
        raise InvalidChainError(f"derive needs a Chain, got {type(chain).__name__}")
    return _derive(chain, chain.layer(wrt))


def _local(template: sp.Expr, zj: sp.Symbol) -> sp.Expr:
    # φ'(z) is already canonical and has z as its only symbol, so renaming z to z_j needs no
    # re-evaluation; skipping it saves the assumption queries and Mul.flatten of every layer.
    with sp.evaluate(False):
        return template.xreplace({z: zj})


@lru_cache(maxsize=128)
def _derive(chain: Chain, k: int) -> Derivation:
    n = chain.depth
    fs = [Factor(sp.Symbol("L"), chain.h(n), chain.dloss(), "loss", n)]
    for j in range(n, k, -1):  # the backward walk: one layer at a time, local derivatives only
        act = chain.activations[j - 1]
        dphi = _local(act.derivative, chain.z(j))
        if chain.residual:
            fs.append(Factor(chain.h(j), chain.h(j - 1), 1 + chain.w(j) * dphi, "residual", j, act.name))
        else:
            fs.append(Factor(chain.h(j), chain.z(j), dphi, "activation", j, act.name))
            fs.append(Factor(chain.z(j), chain.h(j - 1), chain.w(j), "weight", j))
    act = chain.activations[k - 1]
    fs.append(Factor(chain.h(k), chain.z(k), _local(act.derivative, chain.z(k)), "activation", k, act.name))
    fs.append(Factor(chain.z(k), chain.w(k), chain.h(k - 1), "input", k))
    return Derivation(chain, k, tuple(fs))


def _substitute_forward(expr: sp.Expr, chain: Chain) -> sp.Expr:
    # Highest layer first, so each definition only introduces symbols still to be replaced.
    for sym, rhs in reversed(chain.forward()):
        expr = expr.xreplace({sym: rhs})
    return expr


def _simplify_number(v: sp.Expr) -> sp.Expr:
    # Piecewise at a number collapses; rationals stay rational; leave transcendental values exact.
    v = sp.piecewise_fold(v) if v.has(sp.Piecewise) else v
    return v.doit() if v.has(sp.Piecewise) else v


def forward_values(chain: Chain, values: Mapping[str | sp.Symbol, Number], dps: int) -> dict:
    """The inputs and every z_j, h_j of ``chain``'s forward pass as ``dps``-digit Floats, layer by layer.

    Each value is rounded to ``dps`` digits before the next layer uses it, so the expression size does
    not grow with depth; with dps = 30 the forward values carry about 30 correct digits.
    """
    env = {s: sp.Float(v, dps) for s, v in _parse_values(chain, values, partial=False).items()}
    for sym, rhs in chain.forward():
        env[sym] = sp.Float(sp.piecewise_fold(rhs.xreplace(env)).evalf(dps), dps)
    return env


MAX_CARRY_DIGITS = 2000
"""Most digits a carried forward value may need (:func:`_carry_digits`); beyond, evaluation is refused."""

EXACT_OPS = 20
"""Operations a forward value's exact form may have before it is carried as digits (:meth:`Derivation.evaluate`)."""


def _carry_digits(chain: Chain, env: dict) -> int | None:
    """Digits for carried forward values: 30 plus log10 of how much the layers can amplify a rounding,
    ∏ max(1, γ_j|w_j|) (an error in h_(j−1) reaches z_j times w_j and h_j times φ'); None when some γ is
    unbounded (no such bound: the values stay exact)."""
    total = 30.0
    for j, act in enumerate(chain.activations, start=1):
        if not act.supremum.bounded:
            return None
        lg = magnitude.log10(act.gamma * abs(env[chain.w(j)]))   # finite for |w| = 1e999 too
        total += max(0.0, lg) if lg is not None else 0.0
    if total > MAX_CARRY_DIGITS:
        raise InvalidValueError(f"evaluating this chain at these weights would carry {int(total)} digits per value "
                                f"(γ|w| amplifies a rounding up to 10^{int(total) - 30}); at most {MAX_CARRY_DIGITS}")
    return int(total) + 10


def _parse_values(chain: Chain, values: Mapping[str | sp.Symbol, Number], partial: bool) -> dict:
    by_name = {str(s): s for s in chain.symbols()}
    env: dict = {}
    for key, v in values.items():
        name = str(key)
        if name not in by_name:
            raise InvalidValueError(f"unknown input {name!r}; this chain has {', '.join(by_name)}")
        env[by_name[name]] = to_rational(v, name)
    if by_name["y"] in env:
        chain.check_labels(env[by_name["y"]])
    missing = [n for n, s in by_name.items() if s not in env]
    if missing and not partial:
        raise InvalidValueError(f"missing values for {', '.join(missing)}")
    return env


__all__ = ["CANONICAL_PRODUCT_DEPTH", "EXACT_OPS", "MAX_CARRY_DIGITS", "MAX_CLOSED_FORM_DEPTH", "Derivation", "Evaluation", "Factor", "derive", "forward_values"]
