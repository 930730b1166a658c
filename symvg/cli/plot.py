"""``symvg plot``: the gradient bound against depth, φ' with its supremum, the order/chaos diagram."""

from __future__ import annotations

import click

from symvg.views import plot as plots
from symvg.errors import InvalidValueError
from symvg.cli._io import OUTPUT_PATH, precheck_output, seed_option

KINDS = ("gradients", "derivatives", "phase")


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise InvalidValueError(f"--activations needs at least one name, got {text!r}")
    return names


@click.command()
@click.argument("kind", type=click.Choice(KINDS))
@click.option("--output", "-o", required=True, type=OUTPUT_PATH,
              help="Image file: .png, .pdf or .svg (written atomically).")
@click.option("--layers", "-n", type=click.IntRange(1, plots.MAX_PLOT_LAYERS), default=30, show_default=True,
              help="gradients: depth of the plot.")
@click.option("--activations", "-a", default="sigmoid,tanh,relu,leaky_relu", show_default=True,
              help="gradients, derivatives: comma-separated activation names.")
@click.option("--weight", "-w", default="1", show_default=True, help="gradients: weight size |w|.")
@click.option("--activation", default="tanh", show_default=True, help="phase: the activation.")
@click.option("--samples", "-m", type=click.IntRange(0, 10**6), default=2000, show_default=True,
              help="gradients: random networks (Gaussian w, b, x) whose median |dL/dw_k| is drawn; 0: bound only.")
@seed_option("gradients: seed of the sampled networks.")
def plot(kind: str, output: str, layers: int, activations: str, weight: str, activation: str, samples: int,
         seed: int) -> None:
    """Draw KIND (gradients, derivatives or phase) to an image file.

    \b
    symvg plot gradients --layers 80 --output gradients.png
    symvg plot derivatives --activations sigmoid,tanh,gelu --output d.svg
    symvg plot phase --activation tanh --output phase.pdf
    """
    plots.format_for(output)  # a bad suffix or directory fails before any drawing
    precheck_output(output)
    if kind == "gradients":
        fig = plots.plot_gradients(layers=layers, activations=_names(activations), weight=weight,
                                   samples=samples or None, seed=seed)
    elif kind == "derivatives":
        fig = plots.plot_derivatives(_names(activations))
    else:
        fig = plots.plot_phase(activation)
    plots.save(fig, output)
    click.echo(f"wrote {output}", err=True)


COMMANDS = [plot]


__all__ = ["COMMANDS"]
