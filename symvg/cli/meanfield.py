"""``symvg meanfield``: q*, χ1, depth scales and the order/chaos verdict of a wide random network."""

from __future__ import annotations

import click

from symvg.theory import meanfield as mf
from symvg.errors import InvalidValueError
from symvg.cli._io import emit, format_option, output_option, precheck_output, seed_option, to_json


@click.command("meanfield")
@click.option("--activation", "-a", required=True, help="Catalogue name (e.g. tanh, gelu, erf, selu, leaky_relu:0.2).")
@click.option("--sigma-w2", "sigma_w2", default=None, help="Weight variance × fan_in, σw² (e.g. 2, 1.76, 25/9).")
@click.option("--sigma-b2", "sigma_b2", default="0", show_default=True, help="Bias variance σb².")
@click.option("--q0", "q0", default="1", show_default=True,
              help="Input variance q0: the fixed point is the one the variance map reaches from it.")
@click.option("--critical", is_flag=True, help="Solve χ1 = 1 for σw² at this σb² instead.")
@click.option("--simulate", is_flag=True, help="Also run random finite networks and compare with mean field.")
@click.option("--width", type=click.IntRange(min=2), default=256, show_default=True, help="Simulation width n.")
@click.option("--depth", type=click.IntRange(min=2), default=20, show_default=True, help="Simulation depth L.")
@click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True, help="Inputs per network.")
@click.option("--seeds", type=click.IntRange(min=2), default=8, show_default=True, help="Independent networks.")
@seed_option("First random seed.")
@format_option("text", "json")
@output_option
def meanfield(activation: str, sigma_w2: str | None, sigma_b2: str, q0: str, critical: bool, simulate: bool, width: int,
              depth: int, batch: int, seeds: int, seed: int, fmt: str, output: str | None) -> None:
    """Mean-field signal propagation (Poole 2016, Schoenholz 2017): q*, χ1, ξ_q, ξ_c, verdict.

    \b
      symvg meanfield -a tanh --sigma-w2 1.76 --sigma-b2 0.05
      symvg meanfield -a tanh --sigma-b2 0.05 --critical
      symvg meanfield -a relu --sigma-w2 2 --simulate --width 256 --depth 20

    --critical checks its answer (χ1 = 1 at a finite, stable q* reached from --q0) and says so
    when no σw² qualifies (GELU, SiLU: q diverges first).
    """
    precheck_output(output)
    if critical:
        if sigma_w2 is not None:
            raise InvalidValueError("--critical solves for σw²; drop --sigma-w2 (got "
                                    f"{sigma_w2!r}) or drop --critical")
        result = mf.critical_sigma_w2(activation, sigma_b2, q0=q0)
        emit(to_json(result.as_dict()) if fmt == "json" else result.text(), output)
        return
    if sigma_w2 is None:
        raise InvalidValueError("--sigma-w2 is required unless --critical is given")
    result = mf.mean_field(activation, sigma_w2, sigma_b2, q0=q0)
    if simulate:
        mf.check_simulation_size(width, depth, batch, seeds, 1, cli=True)
    sim = (mf.simulate(activation, sigma_w2, sigma_b2, width=width, depth=depth, batch=batch, seeds=seeds,
                       seed=seed) if simulate else None)
    if fmt == "json":
        data = result.as_dict()
        if sim is not None:
            data["simulation"] = sim.as_dict()
        emit(to_json(data), output)
    else:
        emit(result.text() + ("\n" + sim.text() if sim is not None else ""), output)


COMMANDS = [meanfield]


__all__ = ["COMMANDS"]
