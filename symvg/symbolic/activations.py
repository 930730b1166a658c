"""The catalogue of activations, each with how steep it can be, proved.

An :class:`Activation` is data: a SymPy expression φ(z), its derivative φ'(z) (with the
value at a kink stated, not left to chance), and its parameters. The one number the
vanishing-gradient argument needs, γ = sup|φ'(z)|, is *proved* from the derivative itself by
:func:`symvg.symbolic.supremum.prove_supremum` -- critical points from φ'' = 0, one-sided limits at
every kink and at ±∞ -- never typed in:

>>> get("sigmoid").supremum.value, get("sigmoid").supremum.argmax
(1/4, {0})
>>> get("tanh").supremum.value
1
>>> relu = get("relu")
>>> relu.supremum.value, relu.supremum.argmax
(1, Interval.open(0, oo))
>>> get("leaky_relu", 3).supremum.value   # max(1, ε)
3

Kinks follow PyTorch's convention by default (ReLU'(0) = 0, leaky ReLU'(0) = ε); SymPy's
own Heaviside(0) = 1/2 is available as ``at_zero="sympy"``:

>>> get("relu").derivative_at(0), get("relu", at_zero="sympy").derivative_at(0)
(0, 1/2)

Where the maximiser is the root of a transcendental equation (SiLU), the equation is kept
exactly and the root is given to 30 digits:

>>> s = get("silu").supremum
>>> s.exact, s.equation
(False, Eq(z*exp(z) - z - 2*exp(z) - 2, 0))
>>> s.value
1.09983932012886691695818492432
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Callable, Union

import sympy as sp

from symvg.errors import ExpressionError, InvalidValueError, UnknownActivationError
from symvg.exact import Number, nonnegative, positive, to_rational
from symvg.symbolic import proved
from symvg.symbolic import supremum as proof
from symvg.symbolic.infimum import Infimum, prove_infimum
from symvg.symbolic.parse import parse_expression, z


@dataclass(frozen=True)
class Activation:
    """φ(z) and φ'(z) as SymPy expressions in :data:`z`, plus the parameters that made them.

    ``derivative`` is φ' with every kink's value fixed by a stated convention (``convention``).
    Away from kinks it equals ``sympy.diff(expr, z)``; the tests check that.
    """

    name: str
    expr: sp.Expr
    derivative: sp.Expr
    params: tuple[tuple[str, sp.Expr], ...] = ()
    convention: str = ""
    note: str = ""

    @property
    def label(self) -> str:
        """Name with parameters, e.g. ``leaky_relu(negative_slope=1/100)``."""
        if not self.params:
            return self.name
        return f"{self.name}(" + ", ".join(f"{k}={v}" for k, v in self.params) + ")"

    def __call__(self, arg: sp.Expr) -> sp.Expr:
        """φ(arg)."""
        return self.expr.xreplace({z: arg})

    def prime(self, arg: sp.Expr) -> sp.Expr:
        """φ'(arg), kinks by this activation's convention."""
        return self.derivative.xreplace({z: arg})

    def derivative_at(self, value: Number) -> sp.Expr:
        """φ'(value), exactly."""
        return sp.simplify(self.prime(to_rational(value)))

    @cached_property
    def supremum(self) -> proof.Supremum:
        """γ = sup|φ'|, proved (see :func:`symvg.symbolic.supremum.prove_supremum`).

        A user expression's proof runs under :data:`symvg.symbolic.supremum.PROOF_SECONDS`; a catalogue
        entry's is known to finish (the tests prove every one), so a loaded machine never turns it into an error.
        A derivative the table of proved catalogue facts holds (:mod:`symvg.symbolic.proved`) is read from it
        instead of being proved again; the tests prove every entry of that table and compare.
        """
        return _cached_supremum(self.derivative, proof.PROOF_SECONDS if self.name.startswith("expr:") else None)

    @cached_property
    def infimum(self) -> Infimum:
        """m = inf|φ'|, proved where it can be (see :func:`symvg.symbolic.infimum.prove_infimum`); else 0, and why.

        For a user expression the proof gets what the supremum's proof left of :data:`~symvg.symbolic.supremum.
        PROOF_SECONDS` (the supremum's own reserve kept back), so a command stays within that budget.
        """
        return _cached_infimum(self.derivative, proof.PROOF_SECONDS if self.name.startswith("expr:") else None)

    @property
    def gamma(self) -> sp.Expr:
        """Shorthand for ``supremum.value``."""
        return self.supremum.value

    @classmethod
    def from_expression(cls, text: str) -> "Activation":
        """A user activation such as ``"z/(1+abs(z))"``, parsed without ``eval`` (see :mod:`symvg.symbolic.parse`)."""
        e = parse_expression(text)
        where = _not_real_on_reals(e)
        if where is not None:
            raise ExpressionError(f"expression {text.strip()[:60]!r}: {where}; an activation must be a real number at "
                                  "every real z (allowed, e.g.: log(1 + exp(z)), sqrt(z**2 + 1), abs(z), Max(0, z))")
        return cls(f"expr:{text}", e, sp.diff(e, z), note="user expression; kinks take SymPy's convention")


DOMAIN_SECONDS = 1.0
"""Most wall-clock time :func:`_not_real_on_reals` spends asking SymPy where a formula is undefined (it is
part of the :data:`~symvg.symbolic.supremum.STARTUP_SECONDS` a proof leaves to the rest of its command)."""

_PROBES = tuple(sp.Rational(p) for p in ("0", "-1", "1", "-1/2", "1/2", "-2", "2", "-10", "10", "-100", "100"))
"""Exact points tried first: most formulas that fail on ℝ fail at one of them (log(z), sqrt(z), 1/z at 0 or −1)."""


def _needs(e: sp.Expr) -> list[tuple[sp.Expr, sp.Expr, str]]:
    """(sub-formula, its argument, what the argument must be) for every place in ``e`` where a real z can
    leave the reals: a log's argument must be > 0, the base of a fractional power >= 0 (> 0 when the power is
    negative), the base of a negative integer power != 0. Every other function the parser allows is real on ℝ."""
    needs = []
    for node in sp.preorder_traversal(e):
        if isinstance(node, sp.log) and node.args[0].has(z):
            needs.append((node, node.args[0], "> 0"))
        elif isinstance(node, sp.Pow) and node.base.has(z) and node.exp.is_Rational:
            if not node.exp.is_Integer:
                needs.append((node, node.base, "> 0" if node.exp < 0 else ">= 0"))
            elif node.exp < 0:
                needs.append((node, node.base, "!= 0"))
    return list(dict.fromkeys(needs))


def _fails(value: sp.Expr, need: str) -> bool:
    """Whether SymPy shows that ``value`` (a number) breaks ``need``; False where it cannot tell."""
    if need == "!= 0":
        return value.is_zero is True
    return (value.is_positive if need == "> 0" else value.is_nonnegative) is False


def _violations(arg: sp.Expr, need: str) -> sp.Set | None:
    """The real z where ``arg`` breaks ``need``, by :func:`sympy.solveset`; None where SymPy cannot say."""
    bad = {"> 0": arg <= 0, ">= 0": arg < 0, "!= 0": sp.Eq(arg, 0)}[need]
    try:
        found = sp.solveset(bad, z, sp.S.Reals)
    except (NotImplementedError, ValueError, TypeError):
        return None
    return None if isinstance(found, sp.ConditionSet) or found.has(sp.ConditionSet) else found


@lru_cache(maxsize=256)
def _not_real_on_reals(e: sp.Expr) -> str | None:
    """Where ``e`` stops being a real number for some real z, in words; None where SymPy finds no such z.

    SymPy's assumptions settle most formulas at once (1 + e^z > 0); the rest are tried at a few exact
    points, then handed to :func:`sympy.solveset`, all within :data:`DOMAIN_SECONDS`: a formula SymPy cannot
    decide in that time is accepted (its NaN, if any, is reported when it is evaluated).

    >>> _not_real_on_reals(sp.log(z)), _not_real_on_reals(1 / (z - sp.Rational(1, 3)))
    ('log(z) is not a real number at z = 0 (it needs z > 0)', '1/(z - 1/3) is not a real number for z in {1/3} (it needs z - 1/3 != 0)')
    >>> _not_real_on_reals(sp.log(1 + sp.exp(z))), _not_real_on_reals(sp.sqrt(z**2 + 1))
    (None, None)
    """
    needs = [(node, arg, need) for node, arg, need in _needs(e)
             if {"> 0": arg.is_positive, ">= 0": arg.is_nonnegative, "!= 0": arg.is_nonzero}[need] is not True]
    end = time.monotonic() + DOMAIN_SECONDS
    for node, arg, need in needs:
        for p in _PROBES:
            if time.monotonic() < end and proof.within(max(0.0, end - time.monotonic()),
                                                      lambda: _fails(arg.subs(z, p), need)):
                return f"{node} is not a real number at z = {p} (it needs {arg} {need})"
    for node, arg, need in needs:
        left = end - time.monotonic()
        found = proof.within(left, lambda: _violations(arg, need)) if left > 0 else None
        if found is not None and found is not sp.S.EmptySet:
            return f"{node} is not a real number for z in {found} (it needs {arg} {need})"
    return None


ActivationLike = Union[str, Activation]
"""What :func:`get` accepts: a name (``"leaky_relu:0.2"``, ``"expr:..."``) or an Activation itself."""


_SPENT: dict[sp.Expr, float] = {}  # seconds each supremum proof took, for the floor's share of the budget


@lru_cache(maxsize=None)
def _cached_supremum(d: sp.Expr, budget: float | None) -> proof.Supremum:
    known = proved.lookup(d)
    if known is not None:
        return known
    start = time.monotonic()
    try:
        return proof.prove_supremum(d, budget)
    finally:
        _SPENT[d] = time.monotonic() - start


@lru_cache(maxsize=None)
def _cached_infimum(d: sp.Expr, budget: float | None) -> Infimum:
    sup = _cached_supremum(d, budget)
    left = None if budget is None else budget - proof._reserve(budget) - _SPENT.get(d, 0.0)
    return prove_infimum(d, sup, left)


def _kink_value(convention: str, pytorch: sp.Expr, left: sp.Expr, right: sp.Expr) -> sp.Expr:
    table = {"pytorch": pytorch, "sympy": (left + right) / 2, "left": left, "right": right}
    if convention not in table:
        raise InvalidValueError(f"at_zero must be one of {', '.join(table)}, got {convention!r}")
    return table[convention]


def sigmoid() -> Activation:
    """σ(z) = 1/(1+e^{-z}); σ' = σ(1-σ) ≤ 1/4."""
    e = 1 / (1 + sp.exp(-z))
    return Activation("sigmoid", e, sp.diff(e, z))


def tanh() -> Activation:
    """tanh(z); tanh' = 1 - tanh² ≤ 1."""
    return Activation("tanh", sp.tanh(z), sp.diff(sp.tanh(z), z))


def linear() -> Activation:
    """The identity: no squashing, γ = 1."""
    return Activation("linear", z, sp.Integer(1))


def relu(at_zero: str = "pytorch") -> Activation:
    """max(0, z); ReLU' is 0 for z < 0, 1 for z > 0 and, at 0, 0 (PyTorch) or 1/2 (SymPy's Heaviside)."""
    k = _kink_value(at_zero, sp.Integer(0), sp.Integer(0), sp.Integer(1))
    return Activation("relu", sp.Piecewise((0, z < 0), (z, True)),
                      sp.Piecewise((0, z < 0), (k, sp.Eq(z, 0)), (1, True)),
                      convention=f"ReLU'(0) = {k} ({at_zero})")


def leaky_relu(negative_slope: Number = "0.01", at_zero: str = "pytorch") -> Activation:
    """z for z > 0, εz otherwise; φ' ∈ {ε, 1}, so γ = max(1, ε) and the floor is ε."""
    eps = nonnegative(negative_slope, "negative_slope (ε)")
    k = _kink_value(at_zero, eps, eps, sp.Integer(1))
    return Activation("leaky_relu", sp.Piecewise((eps * z, z < 0), (z, True)),
                      sp.Piecewise((eps, z < 0), (k, sp.Eq(z, 0)), (1, True)),
                      params=(("negative_slope", eps),), convention=f"φ'(0) = {k} ({at_zero})")


def elu(alpha: Number = 1, at_zero: str = "pytorch") -> Activation:
    """α(e^z - 1) for z ≤ 0, z otherwise; φ' = αe^z on the left, 1 on the right."""
    a = positive(alpha, "alpha (α)")
    k = _kink_value(at_zero, a, a, sp.Integer(1))
    return Activation("elu", sp.Piecewise((a * (sp.exp(z) - 1), z <= 0), (z, True)),
                      sp.Piecewise((a * sp.exp(z), z < 0), (k, sp.Eq(z, 0)), (1, True)),
                      params=(("alpha", a),), convention=f"φ'(0) = {k} ({at_zero})")


def softplus() -> Activation:
    """log(1 + e^z), the smooth ReLU; φ' = σ(z) < 1, approached as z → ∞."""
    e = sp.log(1 + sp.exp(z))
    return Activation("softplus", e, sp.diff(e, z))


def gelu() -> Activation:
    """z·Φ(z) in its exact erf form (not the tanh approximation)."""
    e = z / 2 * (1 + sp.erf(z / sp.sqrt(2)))
    return Activation("gelu", e, sp.diff(e, z))


def silu() -> Activation:
    """z·σ(z) (swish with β = 1); its steepest point solves a transcendental equation."""
    e = z / (1 + sp.exp(-z))
    return Activation("silu", e, sp.diff(e, z))


def hard_sigmoid() -> Activation:
    """PyTorch's Hardsigmoid: clamp(z/6 + 1/2, 0, 1); φ' = 1/6 on (-3, 3), 0 outside (and at ±3)."""
    return Activation("hard_sigmoid", sp.Piecewise((0, z <= -3), (z / 6 + sp.Rational(1, 2), z < 3), (1, True)),
                      sp.Piecewise((0, z <= -3), (sp.Rational(1, 6), z < 3), (0, True)),
                      convention="φ'(±3) = 0 (pytorch)")


def erf() -> Activation:
    """erf(z), the Gaussian-CDF squashing; φ' = (2/√π)e^{-z²}, so γ = 2/√π ≈ 1.128 at z = 0."""
    return Activation("erf", sp.erf(z), sp.diff(sp.erf(z), z))


SELU_SCALE = sp.Rational("1.0507009873554804934193349852946")
"""λ of SELU, the decimal literal PyTorch uses (``SELU_SCALE`` in ATen), kept exact."""
SELU_ALPHA = sp.Rational("1.6732632423543772848170429916717")
"""α of SELU, the decimal literal PyTorch uses (``SELU_ALPHA`` in ATen), kept exact."""


def selu(at_zero: str = "pytorch") -> Activation:
    """λz for z > 0, λα(e^z − 1) otherwise (Klambauer et al. 2017); φ' ≤ λα ≈ 1.758, at z = 0 (PyTorch).

    PyTorch's backward takes the z ≤ 0 branch at 0, so φ'(0) = λα there.
    """
    k = _kink_value(at_zero, SELU_SCALE * SELU_ALPHA, SELU_SCALE * SELU_ALPHA, SELU_SCALE)
    return Activation("selu", sp.Piecewise((SELU_SCALE * SELU_ALPHA * (sp.exp(z) - 1), z <= 0), (SELU_SCALE * z, True)),
                      sp.Piecewise((SELU_SCALE * SELU_ALPHA * sp.exp(z), z < 0), (k, sp.Eq(z, 0)), (SELU_SCALE, True)),
                      convention=f"φ'(0) = {'λα' if at_zero in ('pytorch', 'left') else k} ({at_zero})")


CATALOGUE: dict[str, Callable[..., Activation]] = {
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "softplus": softplus,
    "gelu": gelu,
    "silu": silu,
    "hard_sigmoid": hard_sigmoid,
    "linear": linear,
    "erf": erf,
    "selu": selu,
}
ALIASES = {"swish": "silu", "logistic": "sigmoid", "identity": "linear", "leaky": "leaky_relu"}


def names() -> list[str]:
    """The catalogue's names, in display order."""
    return list(CATALOGUE)


def get(name: ActivationLike, *args: Number, **kwargs: object) -> Activation:
    """Look up an activation by name; ``"leaky_relu:0.2"`` passes ε = 0.2, ``"expr:..."`` parses safely.

    >>> get("leaky_relu:0.2").params
    (('negative_slope', 1/5),)
    >>> get("sigmod")
    Traceback (most recent call last):
    symvg.errors.UnknownActivationError: unknown activation 'sigmod'; known: sigmoid, tanh, relu, leaky_relu, elu, softplus, gelu, silu, hard_sigmoid, linear, erf, selu, or expr:<expression in z>
    """
    if isinstance(name, Activation):
        return name
    if not isinstance(name, str):
        raise UnknownActivationError(f"activation must be a name, got {name!r}")
    text = name.strip()
    if text.startswith("expr:"):
        return Activation.from_expression(text[len("expr:"):])
    key, _, arg = text.partition(":")
    key = ALIASES.get(key.strip().lower(), key.strip().lower())
    if key not in CATALOGUE:
        raise UnknownActivationError(
            f"unknown activation {name!r}; known: {', '.join(CATALOGUE)}, or expr:<expression in z>")
    if arg:
        args = (arg.strip(), *args)
    try:
        return _build(key, args, tuple(sorted(kwargs.items())))
    except TypeError:
        raise InvalidValueError(f"activation {key!r} does not take parameters {args or ''}{kwargs or ''}") from None


@lru_cache(maxsize=256)
def _build(key: str, args: tuple, kwargs: tuple) -> Activation:
    return CATALOGUE[key](*args, **dict(kwargs))



__all__ = ["ALIASES", "CATALOGUE", "DOMAIN_SECONDS", "SELU_ALPHA", "SELU_SCALE", "Activation", "ActivationLike", "elu", "erf", "gelu", "get", "hard_sigmoid",
           "leaky_relu", "linear", "names", "relu", "selu", "sigmoid", "silu", "softplus", "tanh"]
