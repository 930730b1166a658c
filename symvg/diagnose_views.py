"""The words and pictures of a :class:`~symvg.diagnose.Diagnosis`: verdict, bound, remedies, text, Markdown, plot."""

from __future__ import annotations

import math
import os
from pathlib import Path
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import sympy as sp

from . import activations
from .errors import BackendUnavailableError, InvalidValueError

if TYPE_CHECKING:  # the results are built in symvg.diagnose, which imports this module
    from .diagnose import DecayFit, Diagnosis, Divergence, LayerDiagnosis, Scale

DEAD_FRACTION = 0.5
"""More than this fraction of a layer's weights near zero earns the dead-units remedy."""


def _l10(x: float) -> float:
    return math.log10(x) if x > 0 else -math.inf


def _g(x: float | None, digits: int = 2) -> str:
    """A short human number: 0.21, 3.2e-07, 1.5e+03."""
    if x is None:
        return "n/a"
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.{digits}g}" if abs(x) < 1 else f"{x:.{digits + 1}g}"
    return f"{x:.{digits - 1}e}"


def _g10(lg: float | None) -> str:
    """A number given by its log10, printed without overflow: _g10(400.3) == '2.0e+400'."""
    if lg is None:
        return "n/a"
    if lg == -math.inf:
        return "0"
    if -300 < lg < 300:
        return _g(10.0 ** lg)
    e = math.floor(lg)
    m = 10 ** (lg - e)
    if round(m, 1) >= 10:
        m, e = m / 10, e + 1
    return f"{m:.1f}e{e:+d}"


def _f(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _pow10(lg: float) -> float:
    try:
        return 10.0 ** lg
    except OverflowError:
        return math.inf


@dataclass(frozen=True)
class BoundComparison:
    """The measured factor against γ·‖W‖ per layer (geometric means over the layers passed)."""

    activations: tuple[str, ...]
    gamma: Any  # exact SymPy number when one activation covers every layer, else None
    gamma_value: float
    weight_norm: float | None
    bound: float | None
    measured: float
    consistent: bool | None
    implied_weight_norm: float | None  # the ‖W‖ at which γ·‖W‖ equals the measurement
    text: str
    norm: str = "frobenius"  # or "spectral"


@dataclass(frozen=True)
class MeanFieldComparison:
    """√χ1 per layer step (None where σw² is not logged or q* diverges) against the measured factor."""

    sqrt_chi1: tuple[float | None, ...]
    factor: float
    measured: float
    text: str


@dataclass(frozen=True)
class Remedy:
    """A fix that applies, and why."""

    key: str
    text: str




def saturating(act: activations.Activation) -> bool:
    """φ' can fall to 0 (the proved floor inf|φ'| is 0) and no piece is a ReLU-like φ' ≥ 1 side.

    >>> [saturating(activations.get(n)) for n in ("sigmoid", "tanh", "hard_sigmoid", "erf", "relu", "elu")]
    [True, True, True, True, False, False]
    """
    from .regime import derivative_floor

    if derivative_floor(act) != 0:
        return False
    return not any(c.reason == "constant piece" and sp.Abs(c.value) >= 1 for c in act.supremum.candidates)


def _word(factor_log10: float) -> str:
    return "decay" if factor_log10 < 0 else "growth" if factor_log10 > 0 else "flat"


def compare_bound(fit: DecayFit, acts: Sequence[activations.Activation | None],
                  frobenius: Sequence[float | None], spectral: Sequence[float | None] = (),
                  from_bias: bool = False) -> BoundComparison | None:
    """γ_k·‖W_{k+1}‖ for each step back (k = 1..N-1) against the fit; spectral norms where logged.

    ``from_bias``: the fit is of bias gradients, δ_k itself -- what the bound is about; a weight
    gradient ‖δ_k‖·‖h_{k-1}‖ also carries the change of activation norms.

    >>> from symvg.diagnose import fit_decay
    >>> s = activations.get("sigmoid")
    >>> print(compare_bound(fit_decay([0.04, 0.2, 1.0]), [s, s, None], [None, None, None]).text)
    measured factor 0.2 per layer (decay); sigmoid bound 1/4·‖W‖ predicts ≤ 0.25·‖W‖; consistent if ‖W‖ ≥ 0.8
    """
    passed = list(acts[:-1])
    if not passed or any(a is None for a in passed):
        return None
    gammas = [a.gamma for a in passed]  # type: ignore[union-attr]
    unbounded = [a.label for a, g in zip(passed, gammas) if not math.isfinite(float(g))]  # type: ignore[union-attr]
    if unbounded:  # sup|φ'| = ∞: γ·‖W‖ bounds nothing
        return BoundComparison(tuple(dict.fromkeys(unbounded)), None, math.inf, None, None, fit.factor, None, None,
                               f"no bound: sup|φ'| is unbounded for {', '.join(dict.fromkeys(unbounded))}")
    lgam = [math.log10(float(g)) if float(g) > 0 else -math.inf for g in gammas]
    gamma_value = 10 ** float(np.mean(lgam))
    labels = tuple(dict.fromkeys(a.label for a in passed))  # type: ignore[union-attr]
    single = len(set(gammas)) == 1
    who = labels[0] if len(labels) == 1 else "mixed (" + ", ".join(labels) + ")"
    g_txt = str(gammas[0]) if single else f"{_g(gamma_value)} (geometric mean)"
    measured = fit.factor
    implied = measured / gamma_value if gamma_value > 0 else None
    src = ", bias gradients δ_k" if from_bias else ""
    head = f"measured factor {_g10(fit.log10_factor)} per layer ({_word(fit.log10_factor)}{src}); {who} bound {g_txt}·‖W‖ predicts ≤ "
    spec = list(spectral[1:]) if spectral else []
    norm, ws = ("spectral", spec) if spec and all(w is not None and w > 0 for w in spec) else \
        ("frobenius", list(frobenius[1:]))
    if ws and all(w is not None and w > 0 for w in ws):
        lw = float(np.mean([math.log10(w) for w in ws]))  # type: ignore[arg-type]
        lb = float(np.mean(lgam)) + lw
        consistent = fit.log10_factor <= lb + 1e-9
        what = "spectral norms" if norm == "spectral" else "Frobenius norms, ≥ the spectral norms"
        text = head + f"{_g10(lb)} (‖W‖ = {_g10(lw)}, geometric mean of the {what})"
        if not consistent:
            text += "; above the bound: activation norms change across layers (see the module docstring)"
        return BoundComparison(labels, gammas[0] if single else None, gamma_value, _pow10(lw), _pow10(lb), measured,
                               consistent, implied, text, norm)
    text = head + f"{_g(gamma_value)}·‖W‖" + (f"; consistent if ‖W‖ ≥ {_g(implied)}" if implied is not None else "")
    return BoundComparison(labels, gammas[0] if single else None, gamma_value, None, None, measured, None, implied,
                           text)


def compare_mean_field(sqrt_chi1: Sequence[float | None], fit: DecayFit, from_bias: bool = False
                       ) -> MeanFieldComparison | None:
    """The geometric mean of √χ1 over the steps back, against the measured factor (None without σw²)."""
    known = [c for c in sqrt_chi1 if c is not None and c > 0]
    if not known:
        return None
    lf = float(np.mean([math.log10(c) for c in known]))
    part = "" if len(known) == len(sqrt_chi1) else f" ({len(known)} of {len(sqrt_chi1)} steps known)"
    text = (f"mean field predicts √χ1 = {_g10(lf)} per layer{part} (χ1 from each layer's σw² = fan_in·Var W and "
            f"σb² at its fixed point q*); measured {_g10(fit.log10_factor)}"
            + (" (bias gradients δ_k)" if from_bias else " (weight gradients)"))
    return MeanFieldComparison(tuple(sqrt_chi1), _pow10(lf), fit.factor, text)


def scale_text(scale: Scale, meas: Sequence[float], classes: Sequence[str]) -> str:
    """One sentence: the evidence, its range over the layers, and how many layers fall outside."""
    lo, hi = min(meas), max(meas)
    text = f"{scale.evidence}: {_g10(lo)}…{_g10(hi)} over the layers"
    low, high = sum(c == "vanishing" for c in classes), sum(c == "exploding" for c in classes)
    if low:
        text += f"; {low} of {len(meas)} below {_g10(scale.low)} (vanishing)"
    if high:
        text += f"; {high} of {len(meas)} above {_g10(scale.high)} (exploding)"
    return text if low or high else text + f"; within {_g10(scale.low)}…{_g10(scale.high)}"


def verdict(status: str, relative: str, layers: Sequence[LayerDiagnosis], fit: DecayFit, low: float, high: float,
            scale: Scale, div: Divergence | None) -> str:
    """The headline: what is vanishing or exploding, by which evidence, and (if so) where it diverged."""
    first = layers[0]
    rate = f"factor {fit} going back"
    head = f"Diverged (exploding gradients): {div.text}. Before it, " if div else ""
    if status in ("vanishing", "exploding") and relative == "healthy":
        word = "below" if status == "vanishing" else "above"
        return head + (f"{status.capitalize()} gradients, uniformly across layers: {scale.text}. Layer against "
                       f"layer they look alike (first/last = {_g10(first.log10_relative)}; {rate}), so the "
                       f"relative test alone would not show it; every layer's measure is {word} the range.")
    if relative == "vanishing":
        bad = sum(l.log10_relative < math.log10(low) for l in layers)
        text = (f"Vanishing gradients: the first layer's gradient is {_g10(first.log10_relative)}× the last "
                f"layer's; gradients shrink by a {rate} ({bad} of {len(layers)} layers below {low:g}× the last).")
    elif relative == "exploding":
        bad = sum(l.log10_relative > math.log10(high) for l in layers)
        text = (f"Exploding gradients: the first layer's gradient is {_g10(first.log10_relative)}× the last "
                f"layer's; gradients grow by a {rate} ({bad} of {len(layers)} layers above {high:g}× the last).")
    elif relative == "mixed":
        text = (f"Mixed: some layers' gradients are below {low:g}× the last layer's and some above {high:g}×; "
                f"the fitted {rate} hides that -- look at the layers one by one.")
    else:
        text = (f"Healthy: every layer's gradient is within {low:g}…{high:g}× the last layer's "
                f"(first/last = {_g10(first.log10_relative)}; {rate}).") + _projection(fit, low, high)
    return head + text + f" Absolute scale, {scale.text}."


def _projection(fit: DecayFit, low: float, high: float) -> str:
    if fit.log10_se is None or fit.log10_factor == 0:
        return ""
    lo_ci, hi_ci = fit.log10_factor - 2 * fit.log10_se, fit.log10_factor + 2 * fit.log10_se
    if lo_ci < 0 < hi_ci:
        return ""
    limit, word = (low, "below") if fit.log10_factor < 0 else (high, "above")
    depth = math.log10(limit) / fit.log10_factor
    return f" At this rate a network about {depth:.0f} layers deep would fall {word} {limit:g}×."


REMEDIES: dict[str, str] = {
    "relu": "Use ReLU or leaky ReLU: φ' = 1 on the active side (γ = 1), so the activation no longer "
            "multiplies the gradient by at most {gamma} per layer.",
    "residual": "Add residual (skip) connections, h_(k+1) = h_k + f(h_k): the backward factor becomes "
                "I + ∂f/∂h, so the gradient has a path that is not multiplied down layer after layer.",
    "normalisation": "Add batch or layer normalisation: it keeps pre-activations near 0, where φ' is largest, "
                     "and the scale of each layer's output fixed.",
    "init": "Use critical initialisation: He (torch.nn.init.kaiming_normal_, variance 2/fan_in) for ReLU, "
            "Xavier/Glorot (variance 1/fan_in to 2/(fan_in+fan_out)) for tanh/sigmoid, so that "
            "γ_eff·|w| ≈ 1 per layer.",
    "clipping": "Clip gradients (torch.nn.utils.clip_grad_norm_) so one exploding step cannot wreck the weights; "
                "also lower the learning rate.",
    "init_explode": "Use smaller, critical initialisation (He for ReLU, Xavier for tanh/sigmoid): "
                    "per-layer factors above 1 come from weights that are too large.",
    "dead_units": "Many weights sit near zero ({fraction} in layer {layer}): units may be dead; "
                  "leaky ReLU or a smaller learning rate keeps them alive.",
}


def remedies(status: str, layers: Sequence[LayerDiagnosis], acts: Sequence[activations.Activation | None],
             div: Divergence | None = None) -> tuple[Remedy, ...]:
    """The remedies that apply; "use ReLU" only where an activation is unknown or proved saturating."""
    keys: list[str] = ["clipping"] if div else []
    sat = [a for a in acts[:-1] if a is not None and saturating(a)]
    if status in ("vanishing", "mixed"):
        if sat or any(a is None for a in acts[:-1]):
            keys.append("relu")
        keys += ["residual", "normalisation", "init"]
    if status in ("exploding", "mixed"):
        keys += ["clipping", "init_explode", "normalisation"]
    gamma = ", ".join(dict.fromkeys(f"{a.gamma} ({a.name})" for a in sat)) or "γ < 1"
    out = [Remedy(k, REMEDIES[k].format(gamma=gamma)) for k in dict.fromkeys(keys)]
    dead = [l for l in layers if l.near_zero_fraction is not None and l.near_zero_fraction > DEAD_FRACTION]
    if dead:
        worst = max(dead, key=lambda l: l.near_zero_fraction or 0.0)
        out.append(Remedy("dead_units", REMEDIES["dead_units"].format(
            fraction=f"{worst.near_zero_fraction:.0%}", layer=f"w{worst.index} ({worst.name})")))
    return tuple(out)


# ----------------------------------------------------------------------------- data and text


def _fit_dict(fit: DecayFit | None) -> dict[str, Any] | None:
    return None if fit is None else {
        "factor": _f(fit.factor), "factor_se": _f(fit.factor_se), "log10_factor": fit.log10_factor,
        "log10_slope_se": fit.log10_se, "log_slope": fit.log_slope, "layers_used": fit.layers_used,
        "direction": "per layer, from layer k+1 back to layer k"}


def as_dict(d: Diagnosis) -> dict[str, Any]:
    """Plain data for JSON: floats that are not finite become None (the log10 fields keep the size)."""
    b = d.bound
    return {
        "source": d.source,
        "steps_used": {"count": len(d.steps_used), "first": d.steps_used[0], "last": d.steps_used[-1]},
        "status": d.status, "verdict": d.verdict,
        "thresholds": {"vanishing_below": d.vanishing_below, "exploding_above": d.exploding_above,
                       "relative_to": "last layer's mean gradient norm"},
        "fit": _fit_dict(d.fit), "bias_fit": _fit_dict(d.bias_fit),
        "first_last_ratio": _f(d.first_last_ratio), "log10_first_last": _f(d.log10_first_last),
        "layers": [{"index": l.index, "name": l.name, "activation": l.activation,
                    "mean_grad_norm": _f(l.mean_grad_norm), "log10_mean_grad_norm": _f(l.log10_mean),
                    "relative_to_last": _f(l.relative_to_last), "log10_relative_to_last": _f(l.log10_relative),
                    "bias_grad_norm": _f(l.bias_grad_norm), "weight_norm": _f(l.weight_norm),
                    "spectral_norm": _f(l.spectral_norm), "near_zero_fraction": _f(l.near_zero_fraction),
                    "log10_scale_measure": _f(l.log10_update), "sqrt_chi1": _f(l.sqrt_chi1), "status": l.status}
                   for l in d.layers],
        "scale": None if d.scale is None else {"evidence": d.scale.evidence, "log10_low": d.scale.low,
                                               "log10_high": d.scale.high, "text": d.scale.text},
        "divergence": None if d.divergence is None else {"step": d.divergence.step, "layers": list(d.divergence.layers),
                                                         "value": d.divergence.value, "text": d.divergence.text},
        "bound": None if b is None else {
            "activations": list(b.activations), "gamma": None if b.gamma is None else str(b.gamma),
            "gamma_value": _f(b.gamma_value), "norm": b.norm, "weight_norm": _f(b.weight_norm), "bound": _f(b.bound),
            "measured": _f(b.measured), "consistent": b.consistent,
            "implied_weight_norm": _f(b.implied_weight_norm), "text": b.text},
        "mean_field": None if d.mean_field is None else {
            "sqrt_chi1": [_f(c) for c in d.mean_field.sqrt_chi1], "factor": _f(d.mean_field.factor),
            "measured": _f(d.mean_field.measured), "text": d.mean_field.text},
        "remedies": [{"key": r.key, "text": r.text} for r in d.remedies],
        "notes": list(d.notes),
    }


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
    lines = [f"per-layer factor (back from the output): {d.fit} ({d.fit.layers_used} layers fitted)"]
    if d.bias_fit:
        lines.append(f"bias gradients (δ_k itself): {d.bias_fit} ({d.bias_fit.layers_used} layers fitted)")
    lines.append(f"first/last layer: {_g10(d.log10_first_last)}")
    lines.append(f"bound: {d.bound.text}" if d.bound else "bound: give --activation to compare with γ·‖W‖")
    if d.mean_field:
        lines.append(d.mean_field.text)
    return lines + [f"note: {n}" for n in d.notes]


def render_text(d: Diagnosis) -> str:
    """A plain-text report: verdict, the per-layer table, the fit, the scale, the bound, the remedies."""
    from .commands._io import table

    steps = d.steps_used
    lines = [f"symvg diagnose: {d.source} ({len(steps)} steps, {steps[0]}..{steps[-1]})", "",
             d.verdict, "", table(*_table(d)), ""] + _lines(d)
    if d.remedies:
        lines += ["", "remedies:"] + [f"  - {r.text}" for r in d.remedies]
    return "\n".join(lines) + "\n"


def render_markdown(d: Diagnosis) -> str:
    """The same report as GitHub-flavoured Markdown."""
    from .commands._io import markdown_table

    steps = d.steps_used
    rows, header = _table(d)
    lines = [f"## Gradient diagnosis: `{d.source}`", "",
             f"**{d.status}** ({len(steps)} steps, {steps[0]}..{steps[-1]}). {d.verdict}", "",
             markdown_table(rows, [h.replace("|", "\\|") for h in header]), ""] + [f"- {x}" for x in _lines(d)]
    if d.remedies:
        lines += ["", "### Remedies", ""] + [f"- {r.text}" for r in d.remedies]
    return "\n".join(lines) + "\n"


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
    from .atomic import write_atomic

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
    dd = (len(y) - k).astype(float)  # depth back from the output layer
    a = float(np.mean(y[fin] - d.fit.log10_factor * dd[fin]))
    ax.plot(k, a + d.fit.log10_factor * dd, "k--", label=f"fit: ×{_g10(d.fit.log10_factor)} per layer back")
    ax.set_xticks(k, [f"w{i}" for i in k])
    ax.set_xlabel("layer (input → output)")
    ax.set_ylabel("log10 mean gradient norm")
    ax.set_title(f"{d.status}: {Path(d.source).name}")
    ax.legend()
    write_atomic(path, lambda f: fig.savefig(f, format=fmt))


__all__ = ["BoundComparison", "MeanFieldComparison", "Remedy", "DEAD_FRACTION", "saturating", "compare_bound", "compare_mean_field", "scale_text", "verdict", "remedies", "REMEDIES",
           "as_dict", "render_text", "render_markdown", "plot", "PLOT_FORMATS"]
