"""``symvg spectrum``, ``symvg rnn``, ``symvg clip``: real layers are matrices."""

from __future__ import annotations

import click

from .. import spectrum as spec
from ..errors import InvalidValueError
from ..sampling import available_memory
from ._io import emit, format_option, markdown_table, output_option, precheck_output, to_json


def _depths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise InvalidValueError(f"--at must be comma-separated depths such as 1,10,50, got {text!r}") from None


def _check_memory(width: int, samples: int) -> None:
    need = 8 * samples * width * width * 6  # J, a weight batch, the QR/SVD workspaces
    have = available_memory()
    if have is not None and need > have:
        raise InvalidValueError(f"--width {width} --samples {samples} needs about {need // 10**6} MB but only "
                                f"{have // 10**6} MB are available; lower --samples or --width")


def _spectrum_markdown(r: spec.SpectrumResult) -> str:
    rows = [[a.depth] + [f"{v:.4g}" for v in a.log10_quantiles] + [f"{a.log10_condition:.4g}", f"{a.spread:.4g}"]
            for a in r.at]
    head = ["depth"] + [f"log10 σ q{p:g}" for p in spec.QUANTILES] + ["log10 cond", "m2/m1²−1"]
    g = r.agreement()
    return "\n".join([f"**{r.activation}**, {r.init} init, σw² = {r.sigma_w2}, σb² = {r.sigma_b2}, width {r.width}",
                      "", markdown_table(rows, head), "", f"Theory: {r.theory.statement}", "",
                      f"Predicted spread {g['spread_predicted']:.4g}, measured {g['spread_measured']:.4g} "
                      f"(tolerance {g['spread_tolerance']:.2g}): {'agrees' if g['spread_agrees'] else 'disagrees'}."])


@click.command("spectrum")
@click.option("--activation", "-a", default="tanh", show_default=True, help="Catalogue name (e.g. tanh, relu).")
@click.option("--width", "-n", type=click.IntRange(1, spec.MAX_WIDTH), default=256, show_default=True)
@click.option("--depth", "-L", type=click.IntRange(1, spec.MAX_DEPTH), default=50, show_default=True)
@click.option("--init", type=click.Choice(spec.INITS), default="orthogonal", show_default=True)
@click.option("--sigma-w2", "sigma_w2", default=None, help="σw² (default: the critical value, χ1 = 1).")
@click.option("--sigma-b2", "sigma_b2", default="0", show_default=True, help="σb².")
@click.option("--samples", type=click.IntRange(1, spec.MAX_SAMPLES), default=1, show_default=True,
              help="Independent random networks (≥ 2 for standard errors).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--at", "at", default="", help="Also record the spectrum at these depths, e.g. 1,10,25.")
@click.option("--backend", type=click.Choice(["numpy", "cupy"]), default="numpy", show_default=True)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Write histograms of log10 σ per recorded depth to this image (atomically).")
@format_option("text", "json", "markdown")
@output_option
def spectrum(activation: str, width: int, depth: int, init: str, sigma_w2: str | None, sigma_b2: str, samples: int,
             seed: int, at: str, backend: str, plot_path: str | None, fmt: str, output: str | None) -> None:
    """Singular values of J = D_L W_L ⋯ D_1 W_1 at initialisation, beside the theory.

    \b
      symvg spectrum -a tanh --width 256 --depth 50 --init orthogonal --sigma-b2 0.01
      symvg spectrum -a tanh --init gaussian --sigma-b2 0.01 --samples 4 --at 5,20
      symvg spectrum -a linear --init gaussian --sigma-w2 1 --depth 10 --samples 8
    """
    from .. import meanfield as mf
    from .. import plot as plots

    precheck_output(output)
    if plot_path:
        plots.format_for(plot_path)
        precheck_output(plot_path)
    _check_memory(width, samples)
    if sigma_w2 is None:
        cp = mf.critical_sigma_w2(activation, sigma_b2)
        sigma_w2 = str(cp.sigma_w2) if cp.exact else repr(float(cp.sigma_w2))
    r = spec.spectrum(activation, width=width, depth=depth, init=init, sigma_w2=sigma_w2, sigma_b2=sigma_b2,
                      samples=samples, seed=seed, at=_depths(at), backend=backend)
    if plot_path:
        plots.save(spec.plot_histograms(r), plot_path)
    text = {"json": lambda: to_json(r.as_dict()), "markdown": lambda: _spectrum_markdown(r)}.get(fmt, lambda: str(r))
    emit(text(), output)


COMMANDS = [spectrum]
