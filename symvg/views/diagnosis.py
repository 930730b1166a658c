"""The text, Markdown and picture of a :class:`~symvg.diagnose.Diagnosis`."""

from __future__ import annotations

import os
from pathlib import Path
import numpy as np

from symvg import display
from symvg.atomic import write_atomic
from symvg.views.tables import markdown_table, table
from symvg.errors import BackendUnavailableError, InvalidValueError
from symvg.diagnose.results import Diagnosis, _g, _g10


_COLUMNS = (  # (header, value of a layer or None when no layer has it)
    ("k", lambda l: f"w{l.index}"), ("layer", lambda l: l.name), ("activation", lambda l: l.activation),
    ("mean |g|", lambda l: _g10(l.log10_mean)), ("× last", lambda l: _g10(l.log10_relative)),
    ("|g_bias|", lambda l: None if l.bias_grad_norm is None else _g(l.bias_grad_norm)),
    ("|w|", lambda l: None if l.weight_norm is None else _g(l.weight_norm)),
    ("‖W‖₂", lambda l: None if l.spectral_norm is None else _g(l.spectral_norm)),
    ("scale", lambda l: None if l.log10_update is None else _g10(l.log10_update)),
    ("√χ1", lambda l: None if l.sqrt_chi1 is None else _g(l.sqrt_chi1)),
    ("near 0", lambda l: None if l.near_zero_fraction is None else f"{l.near_zero_fraction:.1%}"),
    ("status", lambda l: l.status),
)


def _table(d: Diagnosis) -> tuple[list[list[str]], list[str]]:
    cols = [(h, f) for h, f in _COLUMNS if h in ("k", "layer", "activation", "status")
            or any(f(l) is not None for l in d.layers)]
    return [[f(l) or "-" for _, f in cols] for l in d.layers], [h for h, _ in cols]


def _lines(d: Diagnosis) -> list[str]:
    fitted = (f"{d.fit.layers_used} layers fitted" if np.isfinite(d.fit.log10_factor) else
              "one layer has a nonzero gradient, the others 0: no fit is needed")
    lines = [f"per-layer factor (back from the output): {d.fit} ({fitted})"]
    if d.bias_fit:
        lines.append(f"bias gradients (δ_k itself): {d.bias_fit} ({d.bias_fit.layers_used} layers fitted)")
    lines.append(f"first/last layer: {_g10(d.log10_first_last)}")
    lines.append(f"bound: {d.bound.text}" if d.bound else "bound: give --activation to compare with γ·‖W‖")
    if d.mean_field:
        lines.append(d.mean_field.text)
    return lines + [f"note: {n}" for n in d.notes]


def _steps_text(steps: tuple[int, ...]) -> str:
    """'20 steps, 0..19', or '1 step, 5' (it said '1 steps, 5..5')."""
    return f"1 step, {steps[0]}" if len(steps) == 1 else f"{len(steps)} steps, {steps[0]}..{steps[-1]}"


def render_text(d: Diagnosis) -> str:
    """A plain-text report: verdict, the per-layer table, the fit, the scale, the bound, the remedies."""

    steps = d.steps_used
    lines = [f"symvg diagnose: {d.source} ({_steps_text(steps)})", "",
             d.verdict, "", table(*_table(d)), ""] + _lines(d)
    if d.remedies:
        lines += ["", "remedies:"] + [f"  - {r.text}" for r in d.remedies]
    return "\n".join(lines) + "\n"


def render_markdown(d: Diagnosis) -> str:
    """The same report as GitHub-flavoured Markdown."""

    steps = d.steps_used
    rows, header = _table(d)
    lines = [f"## Gradient diagnosis: `{d.source}`", "",
             f"**{d.status}** ({_steps_text(steps)}). {d.verdict}", "",
             markdown_table(rows, [h.replace("|", "\\|") for h in header]), ""] + [f"- {x}" for x in _lines(d)]
    if d.remedies:
        lines += ["", "### Remedies", ""] + [f"- {r.text}" for r in d.remedies]
    return "\n".join(lines) + "\n"


display.text.register(Diagnosis, lambda d: render_text(d).rstrip("\n"))
display.markdown.register(Diagnosis, render_markdown)


PLOT_FORMATS = ("png", "pdf", "svg")


def plot(d: Diagnosis, path: "str | os.PathLike[str]") -> None:
    """log10 mean |grad| against layer, with the fitted line; written atomically."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in PLOT_FORMATS:
        raise InvalidValueError(f"plot {str(path)!r}: unknown image kind {fmt or '(no suffix)'!r}; "
                                f"allowed: {', '.join(PLOT_FORMATS)}")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise BackendUnavailableError("--plot needs matplotlib: pip install matplotlib "
                                      "(or pip install 'symvg[plot]')") from None

    fig = Figure(figsize=(6, 4), layout="constrained")
    FigureCanvasAgg(fig)  # no pyplot: no global state, no display needed
    ax = fig.add_subplot()
    k = np.array([l.index for l in d.layers])
    y = np.array([l.log10_mean for l in d.layers])
    for status, c in {"vanishing": "tab:blue", "exploding": "tab:red", "healthy": "tab:green"}.items():
        sel = np.array([l.status == status for l in d.layers]) & np.isfinite(y)
        if sel.any():
            ax.scatter(k[sel], y[sel], color=c, label=status, zorder=3)
    fin = np.isfinite(y)
    if not fin.all():  # a layer of mean gradient 0 has no log10: it was left off, the only vanishing one unseen
        ax.scatter(k[~fin], np.full((~fin).sum(), 0.03), marker="v", color="tab:blue", zorder=3, clip_on=False,
                   transform=ax.get_xaxis_transform(), label="mean gradient 0 (no log10: at the axis' foot)")
    dd = (len(y) - k).astype(float)  # depth back from the output layer
    if np.isfinite(d.fit.log10_factor):  # factor 0 (one nonzero layer) has no line
        a = float(np.mean(y[fin] - d.fit.log10_factor * dd[fin]))
        ax.plot(k, a + d.fit.log10_factor * dd, "k--", label=f"fit: ×{_g10(d.fit.log10_factor)} per layer back")
    ax.set_xticks(k, [f"w{i}" for i in k])
    ax.set_xlabel("layer (input → output)")
    ax.set_ylabel("log10 mean gradient norm")
    ax.set_title(f"{d.status}: {Path(d.source).name}")
    ax.legend()
    write_atomic(path, lambda f: fig.savefig(f, format=fmt))


__all__ = ["render_text", "render_markdown", "plot", "PLOT_FORMATS"]
