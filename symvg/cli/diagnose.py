"""``symvg diagnose``: read a training log, compare it with the bound, say what to do."""

from __future__ import annotations

import click

from symvg import diagnose as dg
from symvg.views import diagnosis as views
from symvg.logs import read_log
from symvg.cli._io import OUTPUT_PATH, emit, format_option, output_option, precheck_output, to_json

_RENDER = {"text": views.render_text, "markdown": views.render_markdown, "json": lambda d: to_json(d.as_dict())}


@click.command("diagnose")
@click.argument("log", type=click.Path(exists=True, dir_okay=True, file_okay=True))
@click.option("--activation", "-a", multiple=True, metavar="NAME",
              help="Activation after each layer (overrides the log's): once for all layers, or once per layer "
                   "in depth order. E.g. sigmoid, relu, leaky_relu:0.1.")
@click.option("--window", type=click.IntRange(min=1), default=None,
              help="Average over the last N logged steps only (default: all steps); always steps before the "
                   "first nan/inf, so --window 5 looks at the 5 steps before a blow-up.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="The learning rate: the absolute scale is then judged by lr·|g|/|w| (default: for every lr "
                   "in 1e-5…1).")
@click.option("--columns", default=None, metavar="SCHEMA=NAME,...",
              help="CSV column names of your logger, e.g. step=epoch,layer=layer_name,grad_norm=norm "
                   "(common names are mapped without it).")
@click.option("--run", default=None, metavar="NAME",
              help="In a TensorBoard directory holding several runs (version_0/, version_1/ ...), the one to read.")
@click.option("--vanishing-below", type=click.FloatRange(min=0, max=1, min_open=True, max_open=True),
              default=dg.VANISHING_BELOW, show_default=True,
              help="A layer below this multiple of the last layer's gradient norm is vanishing.")
@click.option("--exploding-above", type=click.FloatRange(min=1, min_open=True),
              default=dg.EXPLODING_ABOVE, show_default=True,
              help="A layer above this multiple of the last layer's gradient norm is exploding.")
@format_option("text", "markdown", "json")
@click.option("--plot", "plot_path", type=OUTPUT_PATH, default=None,
              help="Also draw log10 mean |grad| per layer with the fitted line to this .png/.pdf/.svg.")
@output_option
def diagnose(log: str, activation: tuple[str, ...], window: int | None, lr: float | None, columns: str | None,
             run: str | None, vanishing_below: float, exploding_above: float, fmt: str, plot_path: str | None,
             output: str | None) -> None:
    """Diagnose vanishing/exploding gradients in a training LOG (.csv, .json or a TensorBoard directory).

    \b
    CSV columns: step,layer,grad_norm[,weight_norm][,bias_grad_norm][,spectral_norm]
                 [,sigma_w2][,sigma_b2][,near_zero_fraction][,activation][,order]
    or wide: step,<layer 1>,<layer 2>,... (Lightning's grad_2.0_norm/<param> columns too).
    Example:
      symvg diagnose grads.csv --activation sigmoid --lr 0.01 --plot grads.png
    """
    precheck_output(output)
    precheck_output(plot_path)
    acts = None if not activation else activation[0] if len(activation) == 1 else list(activation)
    d = dg.diagnose(read_log(log, columns=columns, run=run), acts, window=window, lr=lr,
                    vanishing_below=vanishing_below, exploding_above=exploding_above)
    if plot_path:
        views.plot(d, plot_path)
    emit(_RENDER[fmt](d), output)


COMMANDS = [diagnose]


__all__ = ["COMMANDS"]
