"""The catalogue of activations, and the proof of how steep each one can be.

An :class:`Activation` is data: a SymPy expression φ(z), its derivative φ'(z) (with the
value at a kink stated, not left to chance), and its parameters. The one number the
vanishing-gradient argument needs, γ = sup|φ'(z)|, is *proved* by :func:`prove_supremum`
from the derivative itself -- critical points from φ'' = 0, one-sided limits at every kink
and at ±∞ -- never typed in:

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

import re
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property, lru_cache
from typing import Callable, Union

import mpmath
import sympy as sp

from .errors import InvalidValueError, UnknownActivationError

z = sp.Symbol("z", real=True)
"""The pre-activation variable every catalogue expression is written in."""

DIGITS = 30
"""Digits kept for maximisers that are roots of transcendental equations."""

_SCAN = 40
"""Half-width of the interval scanned for roots no closed form gives (see :func:`_real_roots`)."""


# ----------------------------------------------------------------------------- the proof


@dataclass(frozen=True)
class Candidate:
    """One line of the proof table: where |φ'| was looked at, its value, and whether it is attained."""

    where: sp.Basic  # a point, an interval (φ' constant there) or ±oo
    value: sp.Expr
    attained: bool
    reason: str  # "critical point", "constant piece", "limit at -oo", "kink", ...


@dataclass(frozen=True)
class Supremum:
    """γ = sup|φ'(z)| over the reals, with the evidence.

    ``argmax`` is the set where |φ'| = γ (a point, an interval, or EmptySet when γ is only
    approached, e.g. softplus as z → ∞). ``exact`` is False when the maximiser is the root of a
    transcendental ``equation``; then ``value`` is a 30-digit Float.
    """

    value: sp.Expr
    argmax: sp.Set
    attained: bool
    exact: bool
    equation: sp.Eq | None
    candidates: tuple[Candidate, ...]

    @property
    def argmax_point(self) -> sp.Expr | None:
        """The maximiser when it is a single point, else None."""
        if isinstance(self.argmax, sp.FiniteSet) and len(self.argmax) == 1:
            return next(iter(self.argmax))
        return None

    def explain(self) -> str:
        """A few lines a reader can check by hand."""
        lines = [f"  {c.reason:<22} at {c.where}: |φ'| = {c.value}" + ("" if c.attained else " (approached)")
                 for c in self.candidates]
        how = "attained on" if self.attained else "approached, not attained; argmax"
        lines.append(f"  sup|φ'| = {self.value}, {how} {self.argmax}")
        if self.equation is not None:
            lines.append(f"  maximiser solves {self.equation} (root to {DIGITS} digits; no closed form)")
        return "\n".join(lines)


def _pieces(d: sp.Expr) -> list[tuple[sp.Expr, sp.Set]]:
    """Split φ' into (smooth expression, set) pieces that cover the reals."""
    pw = sp.piecewise_fold(d.rewrite(sp.Piecewise))
    pairs = pw.as_expr_set_pairs(sp.S.Reals) if isinstance(pw, sp.Piecewise) else [(pw, sp.S.Reals)]
    out = []
    for expr, s in pairs:
        for part in (s.args if isinstance(s, sp.Union) else (s,)):
            if part is not sp.S.EmptySet:
                out.append((expr, part))
    return out


def _magnitude(v: sp.Expr) -> sp.Expr:
    return sp.simplify(sp.Abs(v))


def _real_roots(eq: sp.Expr, lo: sp.Expr, hi: sp.Expr) -> list[sp.Float]:
    """Roots of a transcendental ``eq`` on (lo, hi), by sign changes on a fine grid then refinement.

    Honest about its limits: only [-_SCAN, _SCAN] is scanned; the limits at ±∞ are separate
    candidates of the proof, so a maximiser beyond the scan would show up as a larger limit.
    """
    f = sp.lambdify(z, eq, modules="mpmath")
    a = max(float(lo), -_SCAN) if lo.is_finite else -_SCAN
    b = min(float(hi), _SCAN) if hi.is_finite else _SCAN
    roots: list[sp.Float] = []
    with mpmath.workdps(DIGITS + 20):
        grid = [mpmath.mpf(a) + (mpmath.mpf(b) - a) * i / 8000 for i in range(8001)]
        vals = [f(t) for t in grid]
        for t0, t1, v0, v1 in zip(grid, grid[1:], vals, vals[1:]):
            if v0 == 0:
                roots.append(t0)
            elif v0 * v1 < 0:
                roots.append(mpmath.findroot(f, (t0, t1), solver="anderson"))
        return [sp.Float(r, DIGITS) for r in roots]


def prove_supremum(d: sp.Expr) -> Supremum:
    """Prove sup|d(z)| over the reals for a derivative ``d`` written in :data:`z`.

    >>> prove_supremum(sp.exp(-z**2)).value
    1
    >>> prove_supremum(1 - sp.tanh(z)**2).candidates[0].reason
    'critical point'
    """
    candidates: list[Candidate] = []
    equation = None
    for expr, dom in _pieces(d):
        if isinstance(dom, sp.FiniteSet):  # a kink whose derivative value is fixed by convention
            for p in dom:
                candidates.append(Candidate(p, _magnitude(expr.subs(z, p)), True, "kink (convention)"))
            continue
        lo, hi = dom.inf, dom.sup
        slope = sp.diff(expr, z)
        if sp.simplify(slope) == 0:
            candidates.append(Candidate(dom, _magnitude(expr), True, "constant piece"))
            continue
        crit = sp.solveset(slope, z, dom)
        if isinstance(crit, sp.ConditionSet):
            cond = crit.condition
            equation = cond if isinstance(cond, sp.Eq) else sp.Eq(cond, 0)
            points = _real_roots(equation.lhs - equation.rhs, lo, hi)
            for p in points:
                candidates.append(Candidate(p, sp.Abs(expr.subs(z, p)).evalf(DIGITS), True, "critical point (numeric)"))
        else:
            for p in crit:
                candidates.append(Candidate(p, _magnitude(expr.subs(z, p)), True, "critical point"))
        for end, direction, inside in ((lo, "+", dom.contains(lo) == sp.true), (hi, "-", dom.contains(hi) == sp.true)):
            if end.is_infinite:
                candidates.append(Candidate(end, _magnitude(sp.limit(expr, z, end)), False, f"limit at {end}"))
            elif inside:
                candidates.append(Candidate(end, _magnitude(expr.subs(z, end)), True, "kink"))
            else:
                candidates.append(Candidate(end, _magnitude(sp.limit(expr, z, end, direction)), False,
                                            f"limit at {end}{direction}"))
    key = [float(c.value.evalf(DIGITS + 10)) if c.value.is_finite is not False else float("inf")
           for c in candidates]
    best = max(key)
    top = [c for c, k in zip(candidates, key) if _same(k, best, c.value, candidates[key.index(best)].value)]
    value = top[0].value
    hit = [c for c in top if c.attained]
    argmax: sp.Set = sp.S.EmptySet
    for c in hit:
        argmax = argmax.union(c.where if isinstance(c.where, sp.Set) else sp.FiniteSet(c.where))
    if not hit:  # only approached: report where
        argmax = sp.S.EmptySet
    exact = not any(c.reason.endswith("(numeric)") for c in top)
    return Supremum(value, argmax, bool(hit), exact, equation if not exact else None, tuple(candidates))


def _same(k: float, best: float, a: sp.Expr, b: sp.Expr) -> bool:
    if abs(k - best) > 1e-25 * max(1.0, abs(best)):
        return False
    return a == b or sp.simplify(a - b) == 0 or not (a.is_Rational and b.is_Rational)


# ----------------------------------------------------------------------------- activations

Number = Union[int, float, str, Fraction, sp.Rational]


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
    def supremum(self) -> Supremum:
        """γ = sup|φ'|, proved (see :func:`prove_supremum`)."""
        return _cached_supremum(self.derivative)

    @property
    def gamma(self) -> sp.Expr:
        """Shorthand for ``supremum.value``."""
        return self.supremum.value

    @classmethod
    def from_expression(cls, text: str) -> "Activation":
        """A user activation such as ``"z/(1+abs(z))"``, parsed without ``eval`` (see :mod:`symvg.parse`)."""
        from .parse import parse_expression

        e = parse_expression(text)
        return cls(f"expr:{text}", e, sp.diff(e, z), note="user expression; kinks take SymPy's convention")


@lru_cache(maxsize=None)
def _cached_supremum(d: sp.Expr) -> Supremum:
    return prove_supremum(d)


def to_rational(value: Number, what: str = "value") -> sp.Rational:
    """An exact Rational from user input, never through ``eval``/``sympify``.

    >>> to_rational("0.25"), to_rational(0.1), to_rational("1/3")
    (1/4, 1/10, 1/3)
    >>> to_rational("nan")
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: value must be a finite number, got 'nan'
    """
    if isinstance(value, sp.Rational):
        return value
    if isinstance(value, sp.Float):
        value = str(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Fraction)):
        raise InvalidValueError(f"{what} must be a finite number, got {value!r}")
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidValueError(f"{what} must be a finite number, got {value!r}")
        value = repr(value)  # the decimal the user typed, not the binary float's expansion
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 64 or not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?(/\d+)?", text):
            raise InvalidValueError(f"{what} must be a finite number, got {value!r}")
        try:
            value = Fraction(text)
        except (ValueError, ZeroDivisionError):
            raise InvalidValueError(f"{what} must be a finite number, got {value!r}") from None
    fr = Fraction(value)
    return sp.Rational(fr.numerator, fr.denominator)


def _kink_value(convention: str, pytorch: sp.Expr, left: sp.Expr, right: sp.Expr) -> sp.Expr:
    table = {"pytorch": pytorch, "sympy": (left + right) / 2, "left": left, "right": right}
    if convention not in table:
        raise InvalidValueError(f"at_zero must be one of {', '.join(table)}, got {convention!r}")
    return table[convention]


def _nonnegative(value: Number, what: str) -> sp.Rational:
    v = to_rational(value, what)
    if v < 0:
        raise InvalidValueError(f"{what} must be >= 0, got {value!r}")
    return v


def _positive(value: Number, what: str) -> sp.Rational:
    v = to_rational(value, what)
    if v <= 0:
        raise InvalidValueError(f"{what} must be > 0, got {value!r}")
    return v


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
    eps = _nonnegative(negative_slope, "negative_slope (ε)")
    k = _kink_value(at_zero, eps, eps, sp.Integer(1))
    return Activation("leaky_relu", sp.Piecewise((eps * z, z < 0), (z, True)),
                      sp.Piecewise((eps, z < 0), (k, sp.Eq(z, 0)), (1, True)),
                      params=(("negative_slope", eps),), convention=f"φ'(0) = {k} ({at_zero})")


def elu(alpha: Number = 1, at_zero: str = "pytorch") -> Activation:
    """α(e^z - 1) for z ≤ 0, z otherwise; φ' = αe^z on the left, 1 on the right."""
    a = _positive(alpha, "alpha (α)")
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


def get(name: "str | Activation", *args: Number, **kwargs: object) -> Activation:
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
