"""Gradient clipping by norm (Pascanu, Mikolov & Bengio 2013), exactly.

    ĝ = g · min(1, τ/‖g‖)

The update keeps its direction and its length becomes min(‖g‖, τ). Along any direction u (for instance
the exploding one, where g·u is huge) the step becomes (g·u)·min(1, τ/‖g‖): at most τ·|cos∠(g, u)| ≤ τ,
so one exploding gradient cannot throw the weights arbitrarily far. Exact when the inputs are rational:

>>> c = clip_by_norm([30, 40], 5, direction=[1, 0])
>>> c.norm, c.scale, c.clipped, c.clipped_norm
(50, 1/10, (3, 4), 5)
>>> c.step_along, c.clipped_step_along
(30, 3)
>>> clip_by_norm([1, 1], 5).clipped        # below the threshold: unchanged
(1, 1)

PyTorch's ``clip_grad_norm_`` uses τ/(‖g‖ + 10⁻⁶) instead of τ/‖g‖, so its clipped norm is slightly below
τ; :data:`TORCH_EPS` names that constant and the tests compare against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import sympy as sp

from symvg.exact import Number, to_rational
from symvg.magnitude import json_float, sci
from symvg.errors import InvalidValueError

TORCH_EPS = sp.Rational(1, 10**6)
"""The ε in torch.nn.utils.clip_grad_norm_'s clip coefficient max_norm/(total_norm + ε)."""

MAX_LENGTH = 10_000


def _vector(values: Sequence[Number], what: str) -> tuple[sp.Rational, ...]:
    vs = tuple(values)
    if not 1 <= len(vs) <= MAX_LENGTH:
        raise InvalidValueError(f"{what} must have 1..{MAX_LENGTH} entries, got {len(vs)}")
    return tuple(to_rational(v, f"{what}[{i}]") for i, v in enumerate(vs))


@dataclass(frozen=True)
class Clipped:
    """The gradient before and after clipping at ``threshold``, and the step along ``direction`` (a unit vector's)."""

    gradient: tuple[sp.Expr, ...]
    threshold: sp.Expr
    norm: sp.Expr
    scale: sp.Expr
    clipped: tuple[sp.Expr, ...]
    direction: tuple[sp.Expr, ...] | None = None

    @property
    def clipped_norm(self) -> sp.Expr:
        return sp.radsimp(self.scale * self.norm)

    @property
    def step_along(self) -> sp.Expr | None:
        """g·u/‖u‖: the unclipped step along the direction (None without one)."""
        if self.direction is None:
            return None
        dot = sum(g * d for g, d in zip(self.gradient, self.direction))
        return sp.radsimp(dot / sp.sqrt(sum(d * d for d in self.direction)))

    @property
    def clipped_step_along(self) -> sp.Expr | None:
        s = self.step_along
        return None if s is None else sp.radsimp(self.scale * s)

    @property
    def was_clipped(self) -> bool:
        return bool(self.norm**2 > self.threshold**2)

    def as_dict(self) -> dict:
        # json_float: null beyond float64 (‖g‖ = 1e999 was inf, which JSON refuses), with a note then
        f = lambda e: None if e is None else {"exact": str(e), "value": json_float(e)}  # noqa: E731
        exact = [self.norm, self.scale, *self.clipped, self.clipped_norm, self.step_along, self.clipped_step_along]
        outside = any(e is not None and e != 0 and json_float(e) in (None, 0.0) for e in exact)
        return {"gradient": [str(g) for g in self.gradient], "threshold": str(self.threshold), "norm": f(self.norm),
                "scale": f(self.scale), "clipped": [str(c) for c in self.clipped],
                "clipped_values": [json_float(c) for c in self.clipped], "clipped_norm": f(self.clipped_norm),
                "was_clipped": self.was_clipped, "step_along": f(self.step_along),
                "clipped_step_along": f(self.clipped_step_along),
                **({"note": "a value is beyond float64's range: null where it overflows, 0.0 where it underflows; "
                            "the exact strings hold it"} if outside else {})}

    def __str__(self) -> str:
        short = lambda v: ", ".join(map(str, v[:6])) + (", …" if len(v) > 6 else "")  # noqa: E731
        lines = [f"‖g‖ = {self.norm} ≈ {sci(self.norm)}, threshold τ = {self.threshold}",
                 f"scale min(1, τ/‖g‖) = {self.scale} ≈ {sci(self.scale)}"
                 + ("" if self.was_clipped else "  (‖g‖ ≤ τ: unchanged)"),
                 f"clipped ĝ = ({short(self.clipped)}), ‖ĝ‖ = {self.clipped_norm}"]
        if self.direction is not None:
            lines.append(f"step along the direction: {self.step_along} ≈ {sci(self.step_along)} → "
                         f"{self.clipped_step_along} ≈ {sci(self.clipped_step_along)} (|·| ≤ τ always)")
        return "\n".join(lines)

    def _repr_latex_(self) -> str:
        g, c = (sp.latex(sp.Matrix(v).T) for v in (self.gradient, self.clipped))
        return (rf"$\hat g = g\,\min\!\left(1, \frac{{\tau}}{{\lVert g\rVert}}\right) = {sp.latex(self.scale)}\,{g}"
                rf" = {c}$")


def clip_by_norm(gradient: Sequence[Number], threshold: Number, direction: Sequence[Number] | None = None) -> Clipped:
    """Clip ``gradient`` to norm at most ``threshold`` (> 0) by rescaling; exact SymPy numbers."""
    g = _vector(gradient, "gradient")
    tau = to_rational(threshold, "threshold")
    if tau <= 0:
        raise InvalidValueError(f"threshold must be > 0, got {threshold!r}")
    u = None
    if direction is not None:
        u = _vector(direction, "direction")
        if len(u) != len(g):
            raise InvalidValueError(f"direction has {len(u)} entries but the gradient has {len(g)}")
        if all(d == 0 for d in u):
            raise InvalidValueError("direction must not be the zero vector")
    sq = sum(v * v for v in g)
    norm = sp.sqrt(sq)
    scale = sp.Integer(1) if sq <= tau**2 else sp.radsimp(tau / norm)  # compared squared: rational, exact
    return Clipped(g, tau, norm, scale, tuple(sp.radsimp(scale * v) for v in g), u)


__all__ = ["Clipped", "TORCH_EPS", "clip_by_norm"]
