"""The LSTM's cell-state path, exactly: the forget gate is the effective weight, and nothing squashes it.

One job: derive ∂c_T/∂c_t along the cell path and set it beside a plain RNN's ∂h_T/∂h_t.

    LSTM cell   c_s = f_s·c_{s-1} + i_s·g_s            ⇒  ∂c_T/∂c_t = ∏_{s=t+1}^{T} f_s
    plain RNN   h_s = φ(w·h_{s-1} + u·x_s)              ⇒  ∂h_T/∂h_t = ∏_{s=t+1}^{T} w·φ'(z_s),  |…| ≤ (γ|w|)^{T−t}

*Which derivative this is.* The gates f_s, i_s, g_s are treated as given numbers (symbols f1…fT,
i1…iT, g1…gT): this is the direct cell-to-cell path, Hochreiter & Schmidhuber's constant error
carousel with Gers' forget gate. In a full LSTM the gates are computed from h_{s-1} = o_{s-1}·tanh(c_{s-1}),
so c_T also depends on c_t through the gates; those extra paths each carry a sigmoid'/tanh' factor
and are *not* included here. On the direct path there is no activation derivative at all: a forget
gate near 1 keeps the gradient, where the RNN multiplies a φ' ≤ γ in at every step.

>>> cell_gradient(3)
f1*f2*f3
>>> c = compare(steps=50, forget="0.9", weight=1, activation="sigmoid")
>>> round(c.cell_value, 7), f"{c.rnn_value:.3g}"        # 0.9^50 against (1/4)^50
(0.0051538, '7.89e-31')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy as sp

from symvg.display import Result
from symvg.symbolic.activations import Activation, get
from symvg.exact import count, Number, to_rational
from symvg.errors import InvalidValueError
from symvg.magnitude import bounded, json_float, power, range_note

MAX_SYMBOLIC_STEPS = 200
"""Most steps the symbolic recurrence is built for (its size is linear, this only guards typos)."""


def _sym(name: str, s: int) -> sp.Symbol:
    return sp.Symbol(f"{name}{s}", real=True)


def _steps(steps: int, start: int, limit: int | None = None) -> None:
    count(steps, "steps")
    if limit is not None and steps > limit:
        raise InvalidValueError(f"steps must be <= {limit} for the symbolic recurrence, got {steps}")
    if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start < steps:
        raise InvalidValueError(f"start must be an integer in 0..{steps - 1}, got {start!r}")


def cell_state(steps: int, start: int = 0) -> sp.Expr:
    """c_T written out from c_start: the scalar recurrence c_s = f_s·c_{s-1} + i_s·g_s, gates as symbols."""
    _steps(steps, start, MAX_SYMBOLIC_STEPS)
    c = _sym("c", start)
    for s in range(start + 1, steps + 1):
        c = _sym("f", s) * c + _sym("i", s) * _sym("g", s)
    return c


def cell_gradient(steps: int, start: int = 0) -> sp.Expr:
    """∂c_T/∂c_start by ``sympy.diff`` of :func:`cell_state`: ∏ f_s over s = start+1..T (gates given)."""
    return sp.expand(sp.diff(cell_state(steps, start), _sym("c", start)))


def rnn_state(activation: str | Activation, steps: int, start: int = 0) -> sp.Expr:
    """h_T of h_s = φ(w·h_{s-1} + u·x_s) from h_start, nested (one shared w and u, inputs x_s)."""
    _steps(steps, start, MAX_SYMBOLIC_STEPS)
    act = get(activation)
    w, u = sp.symbols("w u", real=True)
    h = _sym("h", start)
    for s in range(start + 1, steps + 1):
        h = act(w * h + u * _sym("x", s))
    return h


def rnn_product(activation: str | Activation, steps: int, start: int = 0) -> sp.Expr:
    """∏ w·φ'(z_s) with z_s = w·h_{s-1} + u·x_s substituted: what ``diff`` of :func:`rnn_state` must equal."""
    _steps(steps, start, MAX_SYMBOLIC_STEPS)
    act = get(activation)
    w, u = sp.symbols("w u", real=True)
    h, out = _sym("h", start), sp.Integer(1)
    for s in range(start + 1, steps + 1):
        zs = w * h + u * _sym("x", s)
        out *= w * act.prime(zs)
        h = act(zs)
    return out


def _log10(v: sp.Expr, times: int = 1) -> float:
    """times·log10 of an exact v > 0, without underflow and without cancellation: log10(p) − log10(q) in float64
    gave 0 for f = 1 − 1e-30 (both 30.0), so f^(10^40) ≈ 10^(−4.3e9) was printed with log10 0. Near 1 it is
    log1p(v − 1) with v − 1 formed exactly; elsewhere mpmath, whose exponent does not underflow.

    >>> round(_log10(sp.Rational(10**30 - 1, 10**30), 10**40), 3)   # -10^10 / ln 10
    -4342944819.033
    >>> round(_log10(sp.Rational(1, 4), 3), 12), _log10(sp.Integer(0))
    (-1.806179973984, -inf)
    """
    if v == 0:
        return -math.inf
    if v.is_Rational:
        import mpmath
        with mpmath.workprec(80):
            d = mpmath.mpf(v.p - v.q) / v.q     # v − 1, to 80 bits relative however close v is to 1
            ln = mpmath.log1p(d) if abs(d) < 0.5 else mpmath.log(mpmath.mpf(v.p) / v.q)
            return float(times * ln / mpmath.ln(10))
    return float(times * sp.log(v, 10).evalf(30))


@dataclass(frozen=True)
class CellVsRNN(Result):
    """f^T on the LSTM cell path against the plain RNN's bound (γ|w|)^T, exact and as log10."""

    steps: int
    forget: sp.Expr
    weight: sp.Expr
    activation: str
    gamma: sp.Expr

    @property
    def cell(self) -> sp.Expr:
        """f^T, exact (an unevaluated power where expanding it would be costly: T may be 10^9)."""
        return power(self.forget, self.steps)

    @property
    def rnn_bound(self) -> sp.Expr:
        return power(self.gamma * self.weight, self.steps)

    @property
    def log10_cell(self) -> float:
        return _log10(self.forget, self.steps)

    @property
    def log10_rnn(self) -> float:
        return _log10(self.gamma * self.weight, self.steps)

    @property
    def cell_value(self) -> float:
        """float64 of f^T: 0.0 where it underflows (see ``log10_cell``)."""
        return json_float(self.cell)   # f ≤ 1: never overflows

    @property
    def rnn_value(self) -> float | None:
        """float64 of (γ|w|)^T: 0.0 where it underflows, None where it overflows (see ``log10_rnn``)."""
        return json_float(self.rnn_bound)

    @property
    def forget_needed(self) -> sp.Expr:
        """The constant forget gate whose f^T equals the RNN's bound: γ|w| (the cell path beats it when f > γ|w|)."""
        return self.gamma * self.weight

    def as_dict(self) -> dict:
        def finite(v: float) -> float | None:
            return v if math.isfinite(v) else None

        cell, rnn = f"({self.forget})**{self.steps}", f"({self.gamma * self.weight})**{self.steps}"
        d = {"steps": self.steps, "forget": str(self.forget), "weight": str(self.weight),
             "activation": self.activation, "gamma": str(self.gamma),
             "cell": cell, "cell_value": self.cell_value, "log10_cell": finite(self.log10_cell),
             "rnn_bound": rnn, "rnn_value": self.rnn_value, "log10_rnn": finite(self.log10_rnn),
             "log10_ratio": finite(self.log10_cell - self.log10_rnn) if self.forget != 0 else None}
        notes = [range_note("cell", self.cell, d["cell_value"]),
                 range_note("rnn", self.rnn_bound, d["rnn_value"], "rnn_bound")]
        if any(notes):
            d["note"] = "; ".join(n for n in notes if n)
        return d


def compare(steps: int, forget: Number = "0.9", weight: Number = 1,
            activation: str | Activation = "sigmoid") -> CellVsRNN:
    """A constant forget gate ``forget`` over ``steps`` steps against an RNN with |w| = ``weight``."""
    _steps(steps, 0)
    f = to_rational(forget, "forget")
    if not 0 <= f <= 1:
        raise InvalidValueError(f"forget must be in [0, 1] (a sigmoid gate), got {forget!r}")
    act = get(activation)
    gamma = bounded(act.gamma, f"γ = sup|φ'| of {act.label}")
    return CellVsRNN(steps, f, abs(to_rational(weight, "weight")), act.label, gamma)


__all__ = ["CellVsRNN", "MAX_SYMBOLIC_STEPS", "cell_gradient", "cell_state", "compare", "rnn_product", "rnn_state"]
