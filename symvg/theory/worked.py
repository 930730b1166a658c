"""The classic hand-worked vanishing-gradient numbers, computed exactly.

Each example is data (labelled factors as exact Rationals) and its docstring is a doctest, so
the numbers people quote are checked on every test run. Decimals are printed exactly: a
terminating Rational is shown with every digit, never rounded through a float.

>>> print(shallow())
dL/dw1 = dL/dh1 × sigma'(z1) × x
       = 25 × 0.25 × 0.2
       = 1.25
w1 ← 0.25 − 0.01 × 1.25 = 0.2375

*Where the commonly published arithmetic differs.* The articles these examples come from contain
slips a learner trips on; symvg keeps the exact values and says so here:

* the deep update is printed as 0.249999; exactly it is 0.25 − 0.01 × 0.004125 = 0.24995875
  (0.249999 would need a step of 1e-6; the step is 4.125e-5, about 41 times larger);
* the old weight is given as 0.5 and then used as 0.25 in the update; symvg uses 0.25 throughout,
  the value the printed result 0.2375 needs (from 0.5 it would be 0.4875);
* "tanh output is 0 to 1": tanh maps onto (−1, 1); it is its derivative 1 − tanh² that lies in (0, 1];
* "ReLU is a linear function": it is piecewise linear -- linear on z < 0 and on z > 0, not overall.

>>> s, d = shallow(), deep()
>>> decimal(d.new_weight), decimal(d.weight - d.new_weight)             # not 0.249999, not a 1e-6 step
('0.24995875', '0.00004125')
>>> decimal(product(s.labels, s.factors, weight="0.5", lr="0.01").new_weight)  # had w_old really been 0.5
'0.4875'
>>> tanh = get("tanh")
>>> [round(float(tanh(sp.Integer(v))), 4) for v in (-3, 0, 3)]          # outputs in (-1, 1), not (0, 1)
[-0.9951, 0.0, 0.9951]
>>> relu = get("relu")
>>> relu(sp.Integer(-1)) + relu(sp.Integer(1)) == relu(sp.Integer(0))   # a linear map would give equality
False
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy as sp

from symvg.display import Result
from symvg.symbolic.activations import get
from symvg.exact import Number, to_rational


def decimal(r: sp.Expr) -> str:
    """An exact decimal for a terminating Rational, else SymPy's own form.

    >>> decimal(sp.Rational(33, 8000)), decimal(sp.Rational(3, 10**10)), decimal(sp.Rational(1, 9))
    ('0.004125', '3e-10', '1/9')
    >>> decimal(sp.Float("0.004125")), decimal(sp.Float("1e-400"))
    ('0.004125', '1e-400')
    """
    r = to_rational(r) if isinstance(r, sp.Float) else r  # nsimplify read Float('1e-400') as 0
    if not isinstance(r, sp.Rational):
        return str(r)
    q = int(r.q)
    twos = fives = 0
    while q % 2 == 0:
        q //= 2
        twos += 1
    while q % 5 == 0:
        q //= 5
        fives += 1
    if q != 1:
        return str(r)
    places = max(twos, fives)
    digits = abs(int(r.p)) * 10**places // int(r.q)
    sign = "-" if r < 0 else ""
    if places > 6 and digits < 10:  # 3e-10 reads better than 0.0000000003
        return f"{sign}{digits}e-{places}"
    whole, frac = divmod(digits, 10**places)
    return f"{sign}{whole}" + (f".{frac:0{places}d}".rstrip("0") if frac else "")


@dataclass(frozen=True)
class WorkedProduct(Result):
    """A chain-rule product written out: labelled factors, their exact product, and the SGD step."""

    title: str
    labels: tuple[str, ...]
    factors: tuple[sp.Rational, ...]
    weight: sp.Rational | None = None
    lr: sp.Rational | None = None
    target: str = "dL/dw1"

    @property
    def value(self) -> sp.Rational:
        """The product, exactly."""
        return sp.Mul(*self.factors)

    @property
    def new_weight(self) -> sp.Rational | None:
        """w − lr·g, exactly (None when no weight/lr is given)."""
        if self.weight is None or self.lr is None:
            return None
        return self.weight - self.lr * self.value

    def as_dict(self) -> dict:
        """Exact values as strings, for JSON."""
        d = {"title": self.title, "target": self.target, "labels": list(self.labels),
             "factors": [str(f) for f in self.factors], "factors_decimal": [decimal(f) for f in self.factors],
             "value": str(self.value), "value_decimal": decimal(self.value)}
        if self.new_weight is not None:
            d.update(weight=str(self.weight), lr=str(self.lr), new_weight=str(self.new_weight),
                     new_weight_decimal=decimal(self.new_weight))
        return d

    def latex(self) -> str:
        """One ``align*`` row: the factors, ``\\times``-separated, and their product.

        >>> print(thirds().latex())
        g &= \\frac{1}{3} \\times \\frac{1}{3} = \\frac{1}{9}
        """
        def tex(r: sp.Expr) -> str:
            d = decimal(r)
            return sp.latex(r) if "/" in d else d.replace("e-", r"\times 10^{-") + ("}" if "e-" in d else "")

        row = f"{_tex_name(self.target)} &= " + r" \times ".join(tex(f) for f in self.factors) + f" = {tex(self.value)}"
        if self.new_weight is not None:
            w = _tex_name(self.target.split("/d")[-1])
            row += rf", \quad {w} \leftarrow {tex(self.weight)} - {tex(self.lr)} \times {tex(self.value)} = {tex(self.new_weight)}"
        return row

    def __str__(self) -> str:
        pad = " " * len(self.target)
        lines = [f"{self.target} = " + " × ".join(self.labels),
                 f"{pad} = " + " × ".join(decimal(f) for f in self.factors),
                 f"{pad} = {decimal(self.value)}"]
        if self.new_weight is not None:
            lines.append(f"{self.target.split('/d')[-1]} ← {decimal(self.weight)} − {decimal(self.lr)} × {decimal(self.value)}"
                         f" = {decimal(self.new_weight)}")
        return "\n".join(lines)


def _tex_name(name: str) -> str:
    # "dL/dw1" -> \frac{\partial L}{\partial w_{1}}; "sigma'(0)" -> \sigma'(0); plain names through sympy
    if name.startswith("d") and "/d" in name:
        num, den = name[1:].split("/d")
        return rf"\frac{{\partial {sp.latex(sp.Symbol(num))}}}{{\partial {sp.latex(sp.Symbol(den))}}}"
    return sp.latex(sp.Symbol(name)) if name.isidentifier() else name.replace("sigma", r"\sigma")


def product(labels: tuple[str, ...], factors: tuple[Number, ...], title: str = "", weight: Number | None = None,
            lr: Number | None = None, target: str = "dL/dw1") -> WorkedProduct:
    """Build a :class:`WorkedProduct` from numbers as people write them ("0.25", 1/3 as "1/3")."""
    return WorkedProduct(title, tuple(labels), tuple(to_rational(f) for f in factors),
                         None if weight is None else to_rational(weight, "weight"),
                         None if lr is None else to_rational(lr, "lr"), target)


def shallow() -> WorkedProduct:
    """One sigmoid layer: the gradient is the loss slope times σ' (at most 1/4) times the input.

    The published version states w_old = 0.5 but computes with 0.25; 0.25 is the value its own
    result 0.2375 needs, so symvg uses it (from 0.5 the step would give 0.4875).

    >>> ex = shallow()
    >>> ex.value, ex.new_weight
    (5/4, 19/80)
    >>> decimal(ex.new_weight)
    '0.2375'
    """
    return product(("dL/dh1", "sigma'(z1)", "x"), (25, "0.25", "0.20"), "a shallow sigmoid chain",
                   weight="0.25", lr="0.01")


def deep() -> WorkedProduct:
    """Five more local derivatives below 1: the same loss slope now barely moves the weight.

    Often published as "w1 = 0.249999"; the exact step is 0.01 × 0.004125 = 0.00004125, so the new
    weight is 0.24995875 (see the module docstring for the other published slips).

    >>> ex = deep()
    >>> print(ex)
    dL/dw1 = dL/dh5 × d1 × d2 × d3 × d4 × d5
           = 25 × 0.25 × 0.22 × 0.2 × 0.15 × 0.1
           = 0.004125
    w1 ← 0.25 − 0.01 × 0.004125 = 0.24995875
    >>> ex.value == sp.Rational(4125, 10**6), ex.new_weight == sp.Rational(24995875, 10**8)
    (True, True)
    >>> decimal((ex.weight - ex.new_weight) / ex.weight)   # relative change: "the weight barely moves"
    '0.000165'
    """
    return product(("dL/dh5", "d1", "d2", "d3", "d4", "d5"), (25, "0.25", "0.22", "0.20", "0.15", "0.10"),
                   "a deep chain: every local derivative below 1", weight="0.25", lr="0.01")


def tiny() -> WorkedProduct:
    """Four small derivatives: the product is ten orders of magnitude below any one of them.

    >>> ex = tiny()
    >>> ex.value, decimal(ex.value)
    (3/10000000000, '3e-10')
    """
    return product(("d1", "d2", "d3", "d4"), ("0.001", "0.1", "0.001", "0.003"), "tiny local derivatives",
                   target="g")


def thirds() -> WorkedProduct:
    """Two factors of 1/3: exact fractions, no rounding.

    >>> thirds().value
    1/9
    """
    return product(("d1", "d2"), ("1/3", "1/3"), "two factors of one third", target="g")


def sigmoid_halves() -> tuple[WorkedProduct, WorkedProduct]:
    """σ(0) = ½ so σ'(0) = σ(0)(1 − σ(0)) = ½·½ = ¼ -- the maximum -- and ½·¼ = ⅛.

    The ½ is computed from the catalogue's sigmoid, not typed in:

    >>> first, second = sigmoid_halves()
    >>> print(first)
    sigma'(0) = sigma(0) × (1 − sigma(0))
              = 0.5 × 0.5
              = 0.25
    >>> first.value, second.value
    (1/4, 1/8)
    >>> first.value == get("sigmoid").gamma
    True
    """
    s = get("sigmoid")
    half = s(sp.Integer(0))
    first = WorkedProduct("σ'(0) = σ(0)(1 − σ(0))", ("sigma(0)", "(1 − sigma(0))"), (half, 1 - half),
                          target="sigma'(0)")
    second = WorkedProduct("½ · ¼", ("1/2", "sigma'(0)"), (half, first.value), target="g")
    return first, second


def sigmoid_depth(depth: int) -> sp.Rational:
    """The σ'-product of a depth-N sigmoid chain is at most (1/4)^N: γ^N with γ proved.

    >>> [sigmoid_depth(n) for n in (1, 2, 3, 10)]
    [1/4, 1/16, 1/64, 1/1048576]
    """
    return get("sigmoid").gamma ** depth


EXAMPLES: dict[str, Callable[[], object]] = {
    "shallow": shallow,
    "deep": deep,
    "tiny": tiny,
    "thirds": thirds,
    "halves": sigmoid_halves,
}


__all__ = ["EXAMPLES", "WorkedProduct", "decimal", "deep", "product", "shallow", "sigmoid_depth", "sigmoid_halves", "thirds", "tiny"]
