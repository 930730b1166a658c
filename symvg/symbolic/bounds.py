"""What the factors imply: each is bounded, so the gradient is, and depth makes the bound shrink or grow.

Every activation factor obeys |φ'(z_j)| ≤ γ_j = sup|φ'| (proved in :mod:`symvg.symbolic.supremum`), so

    |∂L/∂w_k| ≤ |∂L/∂h_N| · ∏_{j>k} γ_j|w_j| · γ_k · |h_{k-1}|

and a chain of N layers with one activation and |w| everywhere has ``|∂h_N/∂h_0| ≤ (γ|w|)^N``:
it vanishes when γ|w| < 1. A ceiling above 1 proves nothing: only a floor m|w| > 1, with
m = inf|φ'|, proves exploding (:func:`decide` words every verdict). Exact where the inputs are:

>>> b = depth_bound("sigmoid", weight=1, layers=10, tol="1e-6")
>>> b.factor, b.bound, b.verdict, b.depth_to_vanish
(1/4, 1/1048576, 'vanish', 10)
>>> r = depth_bound("relu", weight=2)      # ceiling 2, but an inactive unit passes nothing: floor 0
>>> r.verdict, r.decision.possible
('undecided', ('vanish', 'explode'))
>>> depth_bound("leaky_relu:0.5", weight=4).verdict      # floor 0.5*4 = 2 > 1
'explode'
>>> neutral_weights("sigmoid")
4
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from symvg.display import Result, Worded
from symvg.errors import InvalidValueError
from symvg.exact import as_exact, Number, count, to_rational, unit_interval
from symvg.magnitude import MAX_EXACT_BITS, json_float, not_one, power, product, range_note, sci
from symvg.symbolic.activations import ActivationLike, get
from symvg.symbolic.chain import Chain
from symvg.symbolic.derive import Derivation, Factor, forward_values
from symvg.symbolic.powers import NUMERIC_DIGITS, depth_to_cross, direction, log10_power, log_rate, side


@dataclass(frozen=True)
class GradientBound(Result):
    """|∂L/∂w_k| ≤ ``expr``, factor by factor (``factors`` pairs each Factor with its bound)."""

    derivation: Derivation
    factors: tuple[tuple[Factor, sp.Expr], ...]
    expr: sp.Expr

    @property
    def gamma(self) -> tuple[sp.Expr, ...]:
        """γ_j = sup|φ_j'| per layer."""
        return tuple(a.gamma for a in self.derivation.chain.activations)

    def value(self, values: dict, dps: int | None = None) -> sp.Expr:
        """The bound at numbers, with the forward pass evaluated exactly as in ``Derivation.evaluate``;
        with ``dps``, every forward value is a ``dps``-digit Float instead (see :func:`~symvg.symbolic.derive.forward_values`),
        which stays fast where exact values nest (GELU's erf of erf of ...).

        >>> from symvg import Chain, derive
        >>> from symvg.symbolic.bounds import gradient_bound
        >>> b = gradient_bound(derive(Chain(2, "sigmoid"), 1))
        >>> vals = {"x": 1, "y": 0, "w1": 1, "w2": 2, "b1": 0, "b2": 0}
        >>> abs(b.value(vals, dps=30) - b.value(vals).evalf(30)) < 1e-28
        True
        """
        if dps is None:
            return self.expr.xreplace(dict(self.derivation.evaluate(values).values))
        return self.expr.xreplace(forward_values(self.derivation.chain, values, dps)).evalf(dps)


def factor_bound(f: Factor, chain: Chain) -> sp.Expr:
    """The tightest bound a factor has on its own: γ for φ', 1 + γ|w| for a residual step, |f| otherwise.

    Loss, weight and input factors are not squashed by anything, so their bound is their own size.
    """
    if f.kind == "activation":
        return chain.activations[f.layer - 1].gamma
    if f.kind == "residual":
        return 1 + chain.activations[f.layer - 1].gamma * sp.Abs(chain.w(f.layer))
    return sp.Abs(f.expr)


def gradient_bound(derivation: Derivation) -> GradientBound:
    """The bound on |∂L/∂w_k| that the proved suprema give.

    >>> from symvg import Chain, derive
    >>> gradient_bound(derive(Chain(2, "sigmoid"), 1)).expr
    Abs(w2)*Abs(x)*Abs(h2 - y)/8
    """
    pairs = tuple((f, factor_bound(f, derivation.chain)) for f in derivation.factors)
    return GradientBound(derivation, pairs, _product([b for _, b in pairs]))


def _product(bounds: list[sp.Expr]) -> sp.Expr:
    """∏ bounds. Where the numbers among them (γ once per layer) multiply out past :data:`MAX_EXACT_BITS`
    (4^-8000 has 4817 digits, and no printer takes an integer beyond 4300), each distinct number is kept
    as an unevaluated power instead: (1/4)**8000·|w_2|… .

    >>> w = sp.Symbol("w")
    >>> _product([sp.Rational(1, 4)] * 3 + [sp.Abs(w)]), _product([sp.Rational(1, 4)] * 8000 + [sp.Abs(w)])
    (Abs(w)/64, (1/4)**8000*Abs(w))
    """
    expr = sp.Mul(*bounds)
    if all(r.p.bit_length() + r.q.bit_length() <= MAX_EXACT_BITS for r in expr.atoms(sp.Rational)):
        return expr
    numbers = Counter(b for b in bounds if b.is_number)
    return sp.Mul(product([power(v, k) for v, k in numbers.items()]), *(b for b in bounds if not b.is_number),
                  evaluate=False)


# ----------------------------------------------------------------------------- the floor and the verdict


def derivative_floor(activation: ActivationLike) -> sp.Expr:
    """m = inf|φ'(z)| over the reals, proved (:func:`symvg.symbolic.infimum.prove_infimum`: the supremum's proof
    table, the zeros of φ' and, where sup|φ'| = ∞, its critical points); 0 where no floor above 0 is proved.

    >>> [derivative_floor(n) for n in ("sigmoid", "relu", "leaky_relu:0.2", "linear", "selu")]
    [0, 0, 1/5, 1, 0]
    >>> derivative_floor("expr:exp(z) + 2*z"), derivative_floor("expr:z**3 + z")   # φ' = e^z + 2 > 2; 3z² + 1 >= 1
    (2, 1)
    """
    return get(activation).infimum.value


def _where(where: sp.Basic) -> str:
    """A candidate's place as a reader writes it: 'z <= 0', 'z -> -oo', '-3 < z < 3'."""
    if isinstance(where, sp.Interval):
        lo, hi = where.start, where.end
        lt_lo, lt_hi = ("<" if where.left_open else "<="), ("<" if where.right_open else "<=")
        if lo == -sp.oo and hi == sp.oo:
            return "every z"
        if lo == -sp.oo:
            return f"z {lt_hi} {hi}"
        if hi == sp.oo:
            return f"z {'>' if where.left_open else '>='} {lo}"
        return f"{lo} {lt_lo} z {lt_hi} {hi}"
    return f"z -> {where}" if where in (sp.oo, -sp.oo) else f"z = {where}"


def floor_cause(activation: ActivationLike) -> str:
    """Why inf|φ'| is what it is, in words, from the proof's candidates that attain it (ASCII).

    >>> floor_cause("sigmoid"), floor_cause("relu")
    ("sigmoid' -> 0 as z -> -oo, z -> oo: saturation", "relu' = 0 for z <= 0: a unit there passes no gradient")
    >>> floor_cause("leaky_relu:0.2"), floor_cause("expr:z**3")
    ("leaky_relu' = 1/5 for z <= 0", "expr:z**3' = 0 for z = 0: a unit there passes no gradient")
    """
    act = get(activation)
    inf = act.infimum
    m, name = inf.value, act.name
    at = [c for c in inf.candidates if sp.Abs(c.value) == m] if inf.proved else []
    if not at:
        return f"no floor above {m} is proved for {name}'" + (f": {inf.why}" if inf.why else "")
    limits = [_where(c.where) for c in at if c.reason.startswith("limit")]
    pieces = [_where(c.where) if not c.reason.endswith("(sign change)")  # one zero inside, not the interval
              else f"one z in [{c.where.start}, {c.where.end}]" for c in at if not c.reason.startswith("limit")]
    parts = []
    if limits:
        parts.append(f"{name}' -> {m} as " + ", ".join(limits) + (": saturation" if m == 0 else ""))
    if pieces:
        parts.append(f"{name}' = {m} for " + " and ".join(pieces)
                     + (": a unit there passes no gradient" if m == 0 else ""))
    return "; ".join(parts)


KINDS = ("vanish", "explode", "neutral", "undecided")
"""Verdicts as depth grows, from a floor m and a ceiling c on every layer's factor (see :class:`Verdict`)."""

STATUSES = ("vanishes", "explodes", "held", "may vanish", "may explode", "may vanish or explode")
"""Verdicts at one depth N with a tolerance (see :class:`Verdict`)."""

EVAL_HINT = "`symvg eval` samples the typical case"


@dataclass(frozen=True)
class Verdict(Worded):
    """What a floor m and a ceiling c on every factor |∂h_j/∂h_{j-1}| prove about |∂h_N/∂h_0|, and no more.

    ``kind``, as the depth grows (m^N ≤ |∂h_N/∂h_0| ≤ c^N):

    * ``vanish``    c < 1: the gradient goes to 0 whatever the z's (proved by the ceiling);
    * ``explode``   m > 1: it grows without limit whatever the z's (proved by the floor);
    * ``neutral``   m = c = 1: every factor has size exactly 1;
    * ``undecided`` otherwise. ``possible`` names what the bounds leave open (c > 1 allows growth;
      m < 1 allows decay, m = 0 through saturation or units that pass nothing) and ``reason`` says why.

    ``status``, at depth ``layers`` with tolerance ``tol`` (None without them): ``vanishes`` (c^N < tol),
    ``explodes`` (m^N > 1/tol), ``held`` (both inside [tol, 1/tol]) -- each proved -- or ``may vanish``,
    ``may explode``, ``may vanish or explode`` where the bounds do not decide.
    """

    kind: str
    possible: tuple[str, ...]
    reason: str
    floor: sp.Expr
    ceiling: sp.Expr
    layers: int | None = None
    tol: sp.Expr | None = None
    status: str | None = None

    @property
    def proved(self) -> bool:
        """True when the bounds decide the trend (vanish, explode or neutral)."""
        return self.kind != "undecided"

    @property
    def short(self) -> str:
        """A table cell: ``vanishes``, ``explodes``, ``neutral``, or ``undecided: may …``."""
        if self.kind == "undecided":
            return "undecided: may " + " or ".join(self.possible)
        return {"vanish": "vanishes", "explode": "explodes", "neutral": "neutral"}[self.kind]

    @property
    def text(self) -> str:
        """One sentence: the verdict, why, and where the bounds do not decide, where to look instead."""
        if self.kind == "undecided":
            return f"undecided, may {' or '.join(self.possible)}: {self.reason}; {EVAL_HINT}"
        head = {"vanish": "vanishes", "explode": "explodes", "neutral": "neither vanishes nor explodes"}[self.kind]
        return f"{head} (proved: {self.reason})"

    def as_dict(self) -> dict:
        """JSON-ready: ``verdict`` (the kind), ``possible``, ``reason`` and, at a depth, ``status``."""
        d = {"verdict": self.kind, "possible": list(self.possible), "reason": self.reason}
        if self.status is not None:
            d["status"] = self.status
        return d


@lru_cache(maxsize=4096)  # decide() words the same ceiling once per depth of a sweep
def size_text(v: sp.Expr) -> str:
    """A bound's size for a sentence: exact when short, else 6 digits of any magnitude, and never a
    rounded 1 for a value that is not 1 (the verdict turns on which side of 1 it is).

    >>> size_text(sp.Rational(1, 4)), size_text(sp.Integer(10) ** 999 / 4), size_text(1 + sp.Rational(1, 10**30))
    ('1/4', '2.5e+998', '1 + 1e-30')
    """
    s = sp.sstr(v)
    if len(s) <= 12:
        return s
    return not_one(v, sci(v))  # of any size: 2.5e+998 is not inf


def _power(v: sp.Expr) -> str:
    """``v^N`` with brackets only where the base needs them: 2^N, (1/4)^N."""
    s = size_text(v)
    return f"{s}^N" if s.isdigit() else f"({s})^N"


def _crosses(f: sp.Expr, n: int, t: sp.Expr) -> bool:
    """f^n < t (f < 1) or f^n > 1/t (f > 1), exactly, for n ≥ 1; never for f = 1."""
    d = depth_to_cross(f, t)
    return d is not None and n >= d


def decide(floor: sp.Expr, ceiling: sp.Expr, layers: int | None = None, tol: sp.Expr | None = None,
           cause: str = "") -> Verdict:
    """The one verdict every command prints, from a proved floor ≤ each layer's factor ≤ a proved ceiling.

    ``cause`` says why the floor is what it is (:func:`floor_cause`); it goes into the
    reason when the floor leaves vanishing open.

    >>> decide(0, sp.Rational(1, 4)).text
    'vanishes (proved: the ceiling 1/4 < 1 gives |dh_N/dh_0| <= (1/4)^N)'
    >>> v = decide(0, 2, cause="sigmoid' -> 0 as z -> -oo, oo: saturation")
    >>> v.kind, v.possible
    ('undecided', ('vanish', 'explode'))
    >>> v.reason
    "the ceiling 2 > 1 allows growth but does not prove it; the floor is 0 (sigmoid' -> 0 as z -> -oo, oo: saturation)"
    >>> decide(0, 1, layers=50, tol=sp.Rational(1, 10**6)).short, decide(2, 2).kind
    ('undecided: may vanish', 'explode')
    """
    m, c = as_exact(floor), as_exact(ceiling)
    why = f" ({cause})" if cause else ""
    ms, cs = (-1 if m == 0 else side(m)), side(c)  # -1, 0, 1, or None: numeric and 1 to its digits
    unsure = f"is 1 to the {NUMERIC_DIGITS} digits its numeric value is known to"
    if cs == -1:
        kind, possible, reason = "vanish", (), f"the ceiling {size_text(c)} < 1 gives |dh_N/dh_0| <= {_power(c)}"
    elif ms == 1:
        kind, possible, reason = "explode", (), f"the floor {size_text(m)} > 1 gives |dh_N/dh_0| >= {_power(m)}"
    elif ms == 0 and cs == 0:
        kind, possible, reason = "neutral", (), "floor = ceiling = 1: every factor has size exactly 1"
    else:
        grow = ("there is no ceiling (sup|phi'| is unbounded), so growth is not ruled out" if c is sp.oo
                else f"the ceiling {size_text(c)} > 1 allows growth but does not prove it" if cs == 1
                else f"the ceiling {unsure}, so growth is not ruled out" if cs is None
                else "the ceiling 1 rules out growth")
        shrink = (f"the floor is 0{why}" if m == 0 else f"the floor {size_text(m)} < 1 allows decay{why}" if ms == -1
                  else f"the floor {unsure}, so decay is not ruled out{why}" if ms is None
                  else "the floor 1 rules out decay")
        possible = tuple(p for p, ok in (("vanish", ms != 0), ("explode", cs != -1 and cs != 0)) if ok)
        kind, reason = "undecided", f"{grow}; {shrink}"
    status = None if layers is None or tol is None else _status(m, c, layers, as_exact(tol))
    return Verdict(kind, possible, reason, m, c, layers, None if tol is None else as_exact(tol), status)


def _widen(v: sp.Expr, way: int) -> sp.Rational:
    """A numeric v moved by its uncertainty, 10^-NUMERIC_DIGITS relative, up (way = 1) or down (−1)."""
    return sp.Rational(sp.Float(v, NUMERIC_DIGITS + 10)) * (1 + way * sp.Rational(1, 10 ** NUMERIC_DIGITS))


def _status(m: sp.Expr, c: sp.Expr, n: int, t: sp.Expr) -> str:
    """The verdict at depth n: proved (vanishes, explodes, held) or what stays possible."""
    cs, ms = side(c), (-1 if m == 0 else side(m))
    if cs == -1 and _crosses(c, n, t):
        return "vanishes"
    if ms == 1 and _crosses(m, n, t):
        return "explodes"
    # a bound numerically 1 (side None) is read at the far end of what its digits allow
    low = m == 0 or (ms == -1 and _crosses(m, n, t)) or (ms is None and _crosses(_widen(m, -1), n, t))
    high = c is sp.oo or (cs == 1 and _crosses(c, n, t)) or (cs is None and _crosses(_widen(c, 1), n, t))
    return {(False, False): "held", (True, False): "may vanish", (False, True): "may explode",
            (True, True): "may vanish or explode"}[(low, high)]


# ----------------------------------------------------------------------------- the depth law


@dataclass(frozen=True)
class DepthBound(Result):
    """(γ|w|)^N for a chain of one activation with weights of size |w|: the vanishing/exploding law.

    ``factor`` = γ|w| is the ceiling of every layer's |w·φ'(z)|, ``floor`` = inf|φ'|·|w| its floor;
    ``decision`` is :func:`decide` of the two and ``verdict`` its kind (vanish, explode, neutral or
    undecided). ``depth_to_vanish`` is the depth from which the ceiling is below tol (proved),
    ``depth_to_explode`` the one from which the floor is above 1/tol (proved; None unless floor > 1),
    ``depth_may_explode`` the one from which the ceiling is above 1/tol: growth past 1/tol is no
    longer excluded there, which proves nothing.
    """

    activation: str
    gamma: sp.Expr
    weight: sp.Expr
    factor: sp.Expr
    layers: int | None
    bound: sp.Expr | None
    verdict: str
    tol: sp.Expr | None
    depth_to_vanish: int | None
    depth_to_explode: int | None
    floor: sp.Expr = sp.Integer(0)
    decision: Verdict | None = None
    depth_may_explode: int | None = None

    @property
    def log_rate(self) -> float:
        """ln(γ|w|): the bound's change per layer on a log scale (negative: vanishing); see :func:`log_rate`."""
        return log_rate(self.factor)

    @property
    def log10_bound(self) -> float | None:
        """log10 of (γ|w|)^N, finite at any depth (None without layers, at γ|w| = 0 or with no ceiling)."""
        if self.layers is None or self.factor == 0 or self.factor is sp.oo:
            return None
        return log10_power(self.factor, self.layers)

    def as_dict(self) -> dict:
        """JSON-ready. A float that over/underflows is never passed off as the answer: it is null (inf)
        or 0.0 next to a ``note``, with ``log10_bound`` and the exact strings alongside."""
        d = {"activation": self.activation, "gamma": str(self.gamma), "gamma_value": json_float(self.gamma),
             "weight": str(self.weight), "factor": str(self.factor), "factor_value": json_float(self.factor),
             "floor": str(self.floor), "floor_value": json_float(self.floor),
             "log_rate": self.log_rate if math.isfinite(self.log_rate) else None, "verdict": self.verdict}
        if self.decision is not None:
            d.update(self.decision.as_dict())
        if self.verdict == UNBOUNDED:
            d.update(layers=self.layers, tol=None if self.tol is None else str(self.tol),
                     note="sup|φ'| is unbounded: no ceiling, so no depth law follows")
            return d
        notes = [range_note("factor", self.factor, d["factor_value"], log_key="")]
        if self.layers is not None:
            d.update(layers=self.layers, bound=str(self.bound), bound_value=json_float(self.bound),
                     log10_bound=self.log10_bound)
            notes.append(range_note("bound", self.bound, d["bound_value"]))
        if self.tol is not None:
            d.update(tol=str(self.tol), depth_to_vanish=self.depth_to_vanish, depth_to_explode=self.depth_to_explode,
                     depth_may_explode=self.depth_may_explode)
        notes = [n for n in notes if n]
        if notes:
            d["note"] = "; ".join(notes)
        return d


UNBOUNDED = "unbounded"
"""The verdict when sup|φ'| = ∞: there is no ceiling, so neither vanishing nor a bound follows."""


def verdict(factor: sp.Expr) -> str:
    """Which way the power f^N moves (:func:`~symvg.symbolic.powers.direction`), in words: "vanish" when
    f < 1, "explode" when f > 1, "neutral" at exactly 1, "unbounded" when f = ∞ (no ceiling).

    This is the direction of *one* bound, decided exactly -- not a verdict on the gradient: of a
    ceiling it proves vanishing but never exploding. What a command prints comes from :func:`decide`,
    which reads the floor too.
    """
    if factor is sp.oo:
        return UNBOUNDED
    return {-1: "vanish", 0: "neutral", 1: "explode"}[direction(factor)]


def depth_bound(activation: ActivationLike, weight: Number = 1, layers: int | None = None,
                tol: Number | None = None) -> DepthBound:
    """The law (γ|w|)^N for ``activation`` and weights of size ``weight``; see the module docstring."""
    act = get(activation)
    w = sp.Abs(to_rational(weight, "weight"))
    layers = None if layers is None else count(layers, "layers")
    t = None if tol is None else unit_interval(tol, "tol")
    f = act.gamma * w if act.supremum.bounded else sp.oo  # no ceiling, even at |w| = 0 (oo·0 is nan)
    m = derivative_floor(act) * w
    decision = decide(m, f, layers, t, floor_cause(act) if w != 0 else "|w| = 0")
    bound = None if layers is None else (sp.oo if f is sp.oo else power(f, layers))
    dv = de = dm = None
    if t is not None:  # a factor numerically 1 (side None) has no depth to give
        dv = depth_to_cross(f, t) if side(f) == -1 else None
        de = depth_to_cross(m, t) if m != 0 and side(m) == 1 else None
        dm = depth_to_cross(f, t) if f is not sp.oo and side(f) == 1 else None
    kind = UNBOUNDED if f is sp.oo and decision.kind != "explode" else decision.kind  # a floor > 1 needs no ceiling
    return DepthBound(act.label, act.gamma, w, f, layers, bound, kind, t, dv, de, m, decision, dm)


def neutral_weights(activation: ActivationLike) -> sp.Expr:
    """|w| = 1/γ: the weight size at which the bound neither shrinks nor grows."""
    g = get(activation).gamma
    if g == 0:
        raise InvalidValueError(f"{get(activation).label} has γ = 0: every gradient through it is zero")
    if g is sp.oo:
        raise InvalidValueError(f"{get(activation).label} has γ = oo (sup|φ'| unbounded): no weight size "
                                "gives a ceiling")
    return 1 / g


def stable_weight_range(activation: ActivationLike, layers: int, tol: Number) -> tuple[sp.Expr, sp.Expr]:
    """Weights |w| for which the depth-``layers`` bound stays within [tol, 1/tol]: [tol^(1/N)/γ, tol^(-1/N)/γ].

    >>> stable_weight_range("sigmoid", 2, "0.01")
    (2/5, 40)
    """
    layers = count(layers, "layers")
    t = unit_interval(tol, "tol")
    n = neutral_weights(activation)
    root = t ** sp.Rational(1, layers)
    return n * root, n / root


__all__ = ["EVAL_HINT", "KINDS", "STATUSES", "UNBOUNDED", "DepthBound", "GradientBound", "Verdict", "decide", "depth_bound", "size_text",
           "derivative_floor", "factor_bound", "floor_cause", "gradient_bound", "neutral_weights",
           "stable_weight_range", "verdict"]
