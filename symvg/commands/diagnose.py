"""``symvg diagnose``: read a training log, compare it with the bound, say what to do."""

from __future__ import annotations

import click

from .. import diagnose as dg
from ._io import OUTPUT_PATH, emit, format_option, output_option, precheck_output, to_json

_RENDER = {"text": dg.render_text, "markdown": dg.render_markdown, "json": lambda d: to_json(d.as_dict())}


@click.command("diagnose")
@click.argument("log", type=click.Path(exists=True, dir_okay=True, file_okay=True))
@click.option("--activation", "-a", multiple=True, metavar="NAME",
              help="Activation after each layer (overrides the log's): once for all layers, or once per layer "
                   "in depth order. E.g. sigmoid, relu, leaky_relu:0.1.")
@click.option("--window", type=click.IntRange(min=1), default=None,
              help="Average over the last N logged steps only (default: all steps).")
@click.option("--vanishing-below", type=click.FloatRange(min=0, max=1, min_open=True, max_open=True),
              default=dg.VANISHING_BELOW, show_default=True,
              help="A layer below this multiple of the last layer's gradient norm is vanishing.")
@click.option("--exploding-above", type=click.FloatRange(min=1, min_open=True),
              default=dg.EXPLODING_ABOVE, show_default=True,
              help="A layer above this multiple of the last layer's gradient norm is exploding.")
@format_option("text", "markdown", "json")
@click.option("--plot", "plot_path", type=OUTPUT_PATH, default=None,
              help="Also draw mean |grad| per layer (log axis) with the fitted decay to this .png/.pdf/.svg.")
@output_option
def diagnose(log: str, activation: tuple[str, ...], window: int | None, vanishing_below: float,
             exploding_above: float, fmt: str, plot_path: str | None, output: str | None) -> None:
    """Diagnose vanishing/exploding gradients in a training LOG (.csv, .json or a TensorBoard directory).

    \b
    CSV columns: step,layer,grad_norm[,weight_norm][,near_zero_fraction][,activation][,order]
    Example:
      symvg diagnose grads.csv --activation sigmoid --plot grads.png
    """
    precheck_output(output)
    precheck_output(plot_path)
    acts = None if not activation else activation[0] if len(activation) == 1 else list(activation)
    d = dg.diagnose(dg.read_log(log), acts, window=window, vanishing_below=vanishing_below,
                    exploding_above=exploding_above)
    if plot_path:
        dg.plot(d, plot_path)
    emit(_RENDER[fmt](d), output)


COMMANDS = [diagnose]
