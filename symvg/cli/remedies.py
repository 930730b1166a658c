"""``symvg relu``, ``symvg residual``, ``symvg lstm``: the three classic remedies, exactly."""

from __future__ import annotations

import click

from symvg.theory import lstm as lstm_mod
from symvg.theory import relu as relu_mod
from symvg.theory import residual as residual_mod
from symvg.symbolic.activations import get
from symvg.exact import to_rational
from symvg.magnitude import fields, short
from symvg.cli._io import approx, emit, format_option, output_option, precheck_output, seed_option, to_json

ACTIVATION_HELP = "Activation name (see 'symvg activations'), 'leaky_relu:0.2', or 'expr:<expression in z>'."


@click.command()
@click.option("--layers", "-n", type=int, default=10, show_default=True, help="Depth N of the ReLU chain.")
@click.option("--mean", default="0", show_default=True, help="Mean μ of the Gaussian pre-activations.")
@click.option("--std", default="1", show_default=True, help="Standard deviation s of the pre-activations.")
@click.option("--leaky", default="0.01", show_default=True, help="Leaky ReLU's negative slope ε for the floor.")
@click.option("--weight", "-w", default="1", show_default=True, help="|w| on every layer, for the leaky floor.")
@click.option("--samples", type=click.IntRange(min=0), default=0, show_default=True,
              help="Monte Carlo chains to check P(path alive) (0: none).")
@seed_option()
@format_option("text", "json")
@output_option
def relu(layers: int, mean: str, std: str, leaky: str, weight: str, samples: int, seed: int, fmt: str,
         output: str | None) -> None:
    """Inactive ReLU units and blocked paths, exactly; leaky ReLU's floor ε^N·|w|^N.

    A unit is inactive for one input when its z ≤ 0; it is dead (the "dying ReLU") only when that
    holds for every input, which depends on the data and training and is not computed here.

    \b
    symvg relu --layers 10
    symvg relu --layers 6 --samples 100000 --seed 1
    """
    precheck_output(output)
    inactive = relu_mod.inactive_probability(mean, std)
    alive = relu_mod.alive_path_probability(layers, mean, std)
    floor = relu_mod.uniform_leaky_floor(weight, layers, leaky)
    mc = relu_mod.simulate_alive_path(layers, samples, seed) if samples else None
    mu, s = to_rational(mean), to_rational(std)
    data = {"layers": layers, "mean": str(mu), "std": str(s),
            "conventions": {k: str(v) for k, v in relu_mod.conventions().items()},
            **fields("inactive_probability", inactive), **fields("alive_path_probability", alive),
            "leaky_slope": str(to_rational(leaky)), **fields("leaky_floor", floor),
            "monte_carlo": None if mc is None else mc.as_dict()}
    if fmt == "json":
        emit(to_json(data), output)
        return
    conv = ", ".join(f"{k}: {v}" for k, v in relu_mod.conventions().items())
    lines = [f"ReLU'(0) by convention: {conv}",
             f"P(unit inactive for one input) = P(z <= 0), z ~ N({short(mu)}, {short(s)}^2): {approx(inactive)}",
             f"P(all {layers} units active: the path passes a gradient) {_is(alive)}",
             f"leaky ReLU (ε = {short(to_rational(leaky))}) floor ε^N·|w|^N {_is(floor)}"]
    if mc is not None:
        lines.append(str(mc))
    emit("\n".join(lines), output)


@click.command()
@click.option("--layers", "-n", type=int, default=3, show_default=True,
              help=f"Depth N (path expansion up to {residual_mod.MAX_PATH_LAYERS}).")
@click.option("--activation", "-a", default="sigmoid", show_default=True, help=ACTIVATION_HELP)
@click.option("--weight", "-w", default="1", show_default=True, help="|w| on every layer, for the bounds.")
@format_option("text", "json")
@output_option
def residual(layers: int, activation: str, weight: str, fmt: str, output: str | None) -> None:
    """Skip connections: ∂h_N/∂h_0 as a sum over paths (the identity path is 1) and its bounds.

    \b
    symvg residual --layers 3 --activation tanh --weight 0.5
    """
    precheck_output(output)
    get(activation)  # fail on a bad name before expanding
    e = residual_mod.path_expansion(layers)
    b = residual_mod.residual_bounds(activation, [weight] * layers)
    if fmt == "json":
        emit(to_json({"expansion": e.as_dict(), "bounds": b.as_dict()}), output)
        return
    emit(f"{e}\n{b}", output)


@click.command()
@click.option("--steps", "-T", type=int, default=50, show_default=True, help="Time steps T.")
@click.option("--forget", "-f", default="0.9", show_default=True, help="Constant forget gate f in [0, 1].")
@click.option("--weight", "-w", default="1", show_default=True, help="The plain RNN's recurrent |w|.")
@click.option("--activation", "-a", default="sigmoid", show_default=True, help=ACTIVATION_HELP)
@format_option("text", "json")
@output_option
def lstm(steps: int, forget: str, weight: str, activation: str, fmt: str, output: str | None) -> None:
    """The LSTM cell path ∂c_T/∂c_0 = ∏ f_s against a plain RNN's (γ|w|)^T.

    \b
    symvg lstm --steps 50 --forget 0.9 --weight 1
    """
    precheck_output(output)
    c = lstm_mod.compare(steps, forget, weight, activation)
    if fmt == "json":
        emit(to_json(c.as_dict()), output)
        return
    emit(str(c), output)


def _is(v) -> str:
    """``= exact ≈ value``, or ``≈ value`` alone where the exact form is too long for a line."""
    text = approx(v)
    return text if text.startswith("≈") else f"= {text}"


COMMANDS = [relu, residual, lstm]


__all__ = ["COMMANDS"]
