"""The text of the classic remedies' results: ReLU's alive paths, residual bounds, the LSTM cell path.

Each is the result's ``str()`` (registered with :mod:`symvg.display`) and what ``symvg relu``,
``symvg residual`` and ``symvg lstm`` print.
"""

from __future__ import annotations

import sympy as sp

from symvg import display
from symvg.magnitude import short
from symvg.theory.lstm import CellVsRNN, cell_gradient
from symvg.theory.relu import AlivePaths
from symvg.theory.residual import ResidualBounds
from symvg.views.tables import approx


def alive_paths_text(mc: AlivePaths) -> str:
    """The Monte Carlo estimate of P(path alive) against the exact value, in standard errors."""
    return (f"Monte Carlo ({mc.samples} chains, seed {mc.seed}): {mc.estimate:.6g} "
            f"(exact {float(mc.exact):.6g}, {mc.z_score:+.2f} standard errors)")


def residual_bounds_text(b: ResidualBounds) -> str:
    """The residual chain's lower and upper bounds, and the plain chain's ceiling beside them.

    >>> from symvg.theory.residual import residual_bounds
    >>> print(residual_bounds_text(residual_bounds("sigmoid", ["1/2", "1"])))
    bounds for sigmoid, γ = 1/4, |w| = 1/2, 1:
      residual: 21/32 ≈ 0.65625  <=  |dh2/dh0|  <=  45/32 ≈ 1.40625
      plain (the longest path only): |dh2/dh0| <= 1/32 ≈ 0.03125
    """
    n = len(b.weights)
    ws = f"{short(b.weights[0])} on every layer" if len(set(b.weights)) == 1 else ", ".join(map(short, b.weights))
    return "\n".join([f"bounds for {b.activation}, γ = {short(b.gamma)}, |w| = {ws}:",
                      f"  residual: {approx(b.lower)}  <=  |dh{n}/dh0|  <=  {approx(b.upper)}",
                      f"  plain (the longest path only): |dh{n}/dh0| <= {approx(b.plain)}"])


def cell_vs_rnn_text(c: CellVsRNN) -> str:
    """The LSTM cell path f^T against the plain RNN's (γ|w|)^T, with their sizes as log10."""
    steps = c.steps
    sym = cell_gradient(steps) if steps <= 6 else "f1*f2*...*f" + str(steps)
    return "\n".join([f"cell path (gates given): dc{steps}/dc0 = {sym}",
                      f"  constant f = {short(c.forget)}: f^{steps} {_value(c.cell, c.log10_cell)}",
                      f"plain {c.activation} RNN: |dh{steps}/dh0| <= (γ|w|)^{steps} = "
                      f"({short(c.gamma * c.weight)})^{steps} {_value(c.rnn_bound, c.log10_rnn)}",
                      f"the cell path keeps more gradient whenever f > γ|w| = {short(c.forget_needed)}"])


def _value(v: sp.Expr, log10: float) -> str:
    """``= exact ≈ value (log10 …)`` where the exact value is short (f = 1: ``= 1``, not ``≈ 1``; f = 0.9, T = 3:
    ``= 729/1000 ≈ 0.729``), else ``≈ value``; an exact 0 is said as such (its log10 is −∞, not a number to print).

    >>> _value(sp.Integer(1), 0.0), _value(sp.Rational(1, 64), -1.80618)
    ('= 1 (log10 0)', '= 1/64 ≈ 0.015625 (log10 -1.80618)')
    """
    if v == 0:
        return "= 0 exactly"
    text = approx(v)
    return f"{'' if text.startswith('≈') else '= '}{text} (log10 {log10:.6g})"


display.text.register(AlivePaths, alive_paths_text)
display.text.register(ResidualBounds, residual_bounds_text)
display.text.register(CellVsRNN, cell_vs_rnn_text)

__all__ = ["alive_paths_text", "cell_vs_rnn_text", "residual_bounds_text"]
