"""``symvg compare``: one table of vanishing/exploding over activations, with and without skip connections."""

from __future__ import annotations

import math

import click
import sympy as sp

from symvg.symbolic import activations as acts
from symvg.symbolic.bounds import EVAL_HINT
from symvg.errors import InvalidValueError
from symvg.exact import to_rational
from symvg.magnitude import power, sci, short
from symvg.symbolic.regime import Regime, regime
from symvg.cli._io import emit, format_option, markdown_table, output_option, precheck_output, table, to_json

HEADER = ("activation", "residual", "γ", "floor..ceiling per layer", "bound at N", "log10 bound", "ceiling crosses",
          "held to N", "verdict", "at depth N")


def parse_activations(text: str | None) -> list[str]:
    """``"sigmoid, relu,leaky_relu:0.2"`` -> names (the whole catalogue when None); empty items are refused.

    >>> parse_activations("sigmoid, relu")
    ['sigmoid', 'relu']
    >>> parse_activations("sigmoid,,relu")
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: --activations must be a comma-separated list of names, got 'sigmoid,,relu'
    """
    if text is None:
        return acts.names()
    items = [t.strip() for t in text.split(",")]
    if not all(items):
        raise InvalidValueError(f"--activations must be a comma-separated list of names, got {text!r}")
    return items


def _num(v: sp.Expr) -> str:
    """The exact value when it is short, else 6 significant digits of any magnitude (the JSON keeps the exact
    string): 1e999/4 is 2.5e+998, never inf.

    >>> _num(sp.Rational(1, 4)), _num(sp.Integer(10) ** 999 / 4), _num(sp.Rational(1, 3 * 10**400))
    ('1/4', '2.5e+998', '3.33333e-401')
    """
    return short(v, 10)


def _log10(v: float) -> str:
    """The log10 column; −∞ only for a bound that is exactly 0, said so."""
    return "-∞ (exact 0)" if v == -math.inf else f"{v:.4g}"


def _crossing(r: Regime) -> str:
    """Where the ceiling leaves [tol, 1/tol]: below tol proves vanishing; above 1/tol proves nothing."""
    if r.depth_to_cross is None:
        return "never"
    return f"{'< tol' if bool(r.factor < 1) else '> 1/tol'} at {_depth(r.depth_to_cross)}"


def _depth(n: int) -> str:
    """A depth for a table cell: exact up to 12 digits, else ≈ 6 significant digits (compare -w 1e-400 --residual
    printed a 402-digit depth, 400 characters wide; the JSON keeps the exact integer).

    >>> _depth(62), _depth(552620422318570964164317949124247409824264357270905514247998696232217426322)
    ('62', '≈ 5.5262e+74')
    """
    return str(n) if n < 10**12 else f"≈ {sci(sp.Integer(n))}"


def _long_power(f: sp.Expr, n: int) -> str:
    """f^n for a table cell: ``(short f)**n`` while the short text of f is f exactly, else the value of the
    power evaluated whole -- a base rounded before it is raised to n is another number (0.250000025^(10^9)
    is 10^43 times 0.25^(10^9)).

    >>> _long_power(sp.Integer(10) ** 999 / 4, 50), _long_power(sp.Rational(10000001, 40000000), 10**9)
    ('(2.5e+998)**50', '≈ 1.26323e-602059948')
    """
    base = _num(f)
    try:
        exact = to_rational(base) == f
    except InvalidValueError:
        exact = False
    return f"({base})**{n}" if exact else f"≈ {sci(power(f, n))}"


def row(r: Regime) -> tuple[str, ...]:
    """One table row of a :class:`~symvg.symbolic.regime.Regime`."""
    bound = r.bound_text if len(r.bound_text) <= 24 else _long_power(r.factor, r.layers)
    log10 = _log10(r.log10_bound)
    if r.factor is sp.oo:  # sup|φ'| = oo: there is no bound to show
        bound, log10 = "no ceiling", "-"
    return (r.activation, "yes" if r.residual else "no", _num(r.gamma), f"{_num(r.floor)}..{_num(r.factor)}",
            bound, log10, _crossing(r), "all" if r.held_to is None else _depth(r.held_to),
            r.decision.short if r.decision else r.verdict, r.status)


@click.command()
@click.option("--layers", "-n", type=int, default=50, show_default=True, help="Depth N of the chains.")
@click.option("--weight", "-w", default="1", show_default=True, help="Weight size |w| on every layer (exact).")
@click.option("--tol", default="1e-6", show_default=True, help="The bound is 'vanished' below tol, 'exploded' above 1/tol.")
@click.option("--activations", "-a", "names", default=None,
              help="Comma-separated activations (default: the whole catalogue), e.g. 'sigmoid,relu,leaky_relu:0.2'.")
@click.option("--plain", "mode", flag_value="plain", default=True, help="Plain chains only (default).")
@click.option("--residual", "mode", flag_value="residual", help="Residual chains only: h_k = h_{k-1} + φ(z_k).")
@click.option("--both", "mode", flag_value="both", help="Each activation plain and residual.")
@format_option("text", "markdown", "json")
@output_option
def compare(layers: int, weight: str, tol: str, names: str | None, mode: str, fmt: str, output: str | None) -> None:
    """Compare activations: per-layer factor, bound at depth N (never underflows), depth to vanish/explode.

    The per-layer factor |∂h_j/∂h_{j-1}| lies in [floor, ceiling]: [inf|φ'|·|w|, γ|w|] for a plain
    chain, [1 − γ|w|, 1 + γ|w|] with skip connections. 'held to N' is the deepest N at which both
    bounds stay in [tol, 1/tol]; 'at depth N' reads both bounds at the given depth. 'verdict' says
    what the bounds prove as depth grows: 'vanishes' (ceiling < 1), 'explodes' (floor > 1) or
    'undecided: may …' -- a ceiling above 1 never proves exploding. The reasons follow the table.

    \b
    symvg compare --layers 50
    symvg compare --layers 20 --activations sigmoid,tanh,relu --both --format markdown
    """
    precheck_output(output)
    chosen = parse_activations(names)
    residual = {"plain": (False,), "residual": (True,), "both": (False, True)}[mode]
    results = [regime(a, weight, layers, tol, residual=r) for a in chosen for r in residual]
    if fmt == "json":
        emit(to_json({"layers": layers, "weight": weight, "tol": tol, "rows": [r.as_dict() for r in results]}), output)
        return
    rows = [row(r) for r in results]
    head = f"depth N = {layers}, |w| = {short(results[0].weight)}, tol = {short(results[0].tol)}"
    body = markdown_table(rows, HEADER) if fmt == "markdown" else table(rows, HEADER)
    emit(head + "\n\n" + body + "\n\n" + reasons(results), output)


def reasons(results: list[Regime]) -> str:
    """Why each undecided row is undecided, once per distinct reason (the same words as ``bound`` and ``sweep``)."""
    seen: dict[str, list[str]] = {}
    for r in results:
        if r.decision is not None and not r.decision.proved:
            name = r.activation + (" (residual)" if r.residual else "")
            d = r.decision
            seen.setdefault(f"may {' or '.join(d.possible)}: {d.reason}", []).append(name)
    if not seen:
        return "every verdict above is proved by the bounds"
    lines = [f"{', '.join(names)}: {text}" for text, names in seen.items()]
    return "\n".join(["undecided rows: the bounds leave open", *lines, f"({EVAL_HINT})"])


COMMANDS = [compare]


__all__ = ["COMMANDS"]
