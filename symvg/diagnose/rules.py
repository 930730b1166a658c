"""The judgement of a diagnosis: saturation from the proved floor, the bound and mean-field comparisons,
the verdict's words and the remedies."""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import sympy as sp

from symvg import magnitude
from symvg.symbolic import activations
from symvg.diagnose.results import (DEAD_FRACTION, BoundComparison, DecayFit, Divergence, LayerDiagnosis,
                                    MeanFieldComparison, Remedy, Scale, _g10, _pow10)


def saturating(act: activations.Activation) -> bool:
    """φ' can fall to 0 (the proved floor inf|φ'| is 0) and no piece is a ReLU-like φ' ≥ 1 side.

    >>> [saturating(activations.get(n)) for n in ("sigmoid", "tanh", "hard_sigmoid", "erf", "relu", "elu")]
    [True, True, True, True, False, False]
    """
    from symvg.symbolic.bounds import derivative_floor

    if derivative_floor(act) != 0:
        return False
    return not any(c.reason == "constant piece" and sp.Abs(c.value) >= 1 for c in act.supremum.candidates)


def _word(factor_log10: float) -> str:
    return "decay" if factor_log10 < 0 else "growth" if factor_log10 > 0 else "flat"


def compare_bound(fit: DecayFit, acts: Sequence[activations.Activation | None],
                  frobenius: Sequence[float | None], spectral: Sequence[float | None] = (),
                  from_bias: bool = False, log10_means: Sequence[float] | None = None) -> BoundComparison | None:
    """γ_k·‖W_{k+1}‖ for each step back (k = 1..N-1) against the fit; spectral norms where logged.

    ``from_bias``: the fit is of bias gradients, δ_k itself -- what the bound is about; a weight
    gradient ‖δ_k‖·‖h_{k-1}‖ also carries the change of activation norms. ``log10_means``: the fitted
    series per layer; with it each step back is held to its own bound (the bound is per step: a
    least-squares slope weighs the middle steps more than the geometric mean of the bounds does, so
    comparing those two flagged logs lying exactly on the bound at every step).

    >>> from symvg.diagnose import fit_decay
    >>> s = activations.get("sigmoid")
    >>> print(compare_bound(fit_decay([0.04, 0.2, 1.0]), [s, s, None], [None, None, None]).text)
    measured factor 0.2 per layer (decay); sigmoid bound 1/4·‖W‖ predicts ≤ 0.25·‖W‖; consistent if ‖W‖ ≥ 0.8
    """
    passed = list(acts[:-1])
    if not passed or any(a is None for a in passed):
        return None
    gammas = [a.gamma for a in passed]  # type: ignore[union-attr]
    # by the proof, not float(γ): leaky_relu:1e400 has γ = 1e400, bounded, and float() made it inf ("unbounded")
    unbounded = [a.label for a in passed if not a.supremum.bounded]  # type: ignore[union-attr]
    if unbounded:  # sup|φ'| = ∞: γ·‖W‖ bounds nothing
        return BoundComparison(tuple(dict.fromkeys(unbounded)), None, math.inf, None, None, fit.factor, None, None,
                               f"no bound: sup|φ'| is unbounded for {', '.join(dict.fromkeys(unbounded))}")
    lgam = [-math.inf if g == 0 else magnitude.log10(g) for g in gammas]
    lg_mean = float(np.mean(lgam))
    gamma_value = _pow10(lg_mean)
    labels = tuple(dict.fromkeys(a.label for a in passed))  # type: ignore[union-attr]
    single = len(set(gammas)) == 1
    who = labels[0] if len(labels) == 1 else "mixed (" + ", ".join(labels) + ")"
    g_txt = magnitude.short(gammas[0]) if single else f"{_g10(lg_mean)} (geometric mean)"
    measured = fit.factor
    lg_implied = fit.log10_factor - lg_mean if lg_mean > -math.inf else None
    implied = None if lg_implied is None else _pow10(lg_implied)
    src = ", bias gradients δ_k" if from_bias else ""
    head = f"measured factor {_g10(fit.log10_factor)} per layer ({_word(fit.log10_factor)}{src}); {who} bound {g_txt}·‖W‖ predicts ≤ "
    spec = list(spectral[1:]) if spectral else []
    norm, ws = ("spectral", spec) if spec and all(w is not None and w > 0 for w in spec) else \
        ("frobenius", list(frobenius[1:]))
    if ws and all(w is not None and w > 0 for w in ws):
        lws = [math.log10(w) for w in ws]  # type: ignore[arg-type]
        lw = float(np.mean(lws))
        lb = float(np.mean(lgam)) + lw
        fit_above = fit.log10_factor > lb + 1e-9
        above = (["the fit"] if fit_above else []) if log10_means is None else \
            _steps_above(log10_means, [g + w for g, w in zip(lgam, lws)])
        consistent = not above
        what = "spectral norms" if norm == "spectral" else "Frobenius norms, ≥ the spectral norms"
        text = head + f"{_g10(lb)} (‖W‖ = {_g10(lw)}, geometric mean of the {what})"
        if above:
            text += f"; above the bound{_where(above, len(lws))}: " + (
                "δ_k does not follow the plain dense chain the bound is about (a skip, a normalisation, another "
                "activation), or the norms moved over the steps averaged" if from_bias else
                "activation norms change across layers (see the module docstring)")
        elif fit_above:
            text += ("; every step back is within its own bound γ_k·‖W_(k+1)‖ (the fitted factor weighs the "
                     "middle steps more than this geometric mean)")
        return BoundComparison(labels, gammas[0] if single else None, gamma_value, _pow10(lw), _pow10(lb), measured,
                               consistent, implied, text, norm, log10_implied_weight_norm=lg_implied)
    text = head + f"{_g10(lg_mean)}·‖W‖" + (f"; consistent if ‖W‖ ≥ {_g10(lg_implied)}" if implied is not None else "")
    return BoundComparison(labels, gammas[0] if single else None, gamma_value, None, None, measured, None, implied,
                           text, log10_implied_weight_norm=lg_implied)


def _steps_above(log10_means: Sequence[float], log10_bounds: Sequence[float]) -> list[str]:
    """The steps back k+1 → k whose measured ratio exceeds γ_k·‖W_(k+1)‖ (in log10; a 0 → 0 step is no step)."""
    out = []
    for k, b in enumerate(log10_bounds):
        step = log10_means[k] - log10_means[k + 1]
        if not math.isnan(step) and step > b + 1e-9:
            out.append(f"w{k + 2}→w{k + 1}")
    return out


def _where(above: list[str], steps: int) -> str:
    if above == ["the fit"]:
        return ""
    return f" at {len(above)} of {steps} steps back ({', '.join(above[:4])}{', …' if len(above) > 4 else ''})"


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
    # inf is a norm past float64's range; a nan may come from an overflow, but also from 0·inf or a log of 0
    why = "exploding gradients" if div is None or div.value != "nan" else "nan: an overflow, 0·inf or a log of 0"
    head = f"Diverged ({why}): {div.text}. Before it, " if div else ""
    ratio = f"the first layer's gradient is {_g10(first.log10_relative)}× the last layer's"
    if status != "healthy" and relative == "healthy":
        return head + _absolute_only(status, layers, f"first/last = {_g10(first.log10_relative)}", rate, scale)
    if relative == "vanishing":
        which = _which(layers, lambda l: l.log10_relative < math.log10(low))
        text = f"Vanishing gradients: {which} below {low:g}× the last layer's; {ratio}; {_trend(fit, rate)}."
    elif relative == "exploding":
        which = _which(layers, lambda l: l.log10_relative > math.log10(high))
        text = f"Exploding gradients: {which} above {high:g}× the last layer's; {ratio}; {_trend(fit, rate)}."
    elif relative == "mixed":
        text = (f"Mixed: some layers' gradients are below {low:g}× the last layer's and some above {high:g}×; "
                f"the fitted {rate} hides that -- look at the layers one by one.")
    else:
        text = (f"Healthy: every layer's gradient is within {low:g}…{high:g}× the last layer's "
                f"(first/last = {_g10(first.log10_relative)}; {rate}).") + _projection(fit, low, high)
    return head + text + f" Absolute scale, {scale.text}."


def _which(layers: Sequence[LayerDiagnosis], test: Callable[[LayerDiagnosis], bool]) -> str:
    """'2 of 5 layers (w1, w2)': how many layers pass ``test``, and which (the first six named)."""
    hit = [f"w{l.index}" for l in layers if test(l)]
    names = ", ".join(hit[:6]) + (", …" if len(hit) > 6 else "")
    return f"{len(hit)} of {len(layers)} layers ({names})"


def _trend(fit: DecayFit, rate: str) -> str:
    """The fitted factor in words that match its side of 1 (a vanishing middle layer can sit in a growing fit)."""
    if fit.log10_factor < 0:
        return f"overall, gradients shrink by a {rate}"
    if fit.log10_factor > 0:
        return f"overall, gradients grow by a {rate}"
    return f"a flat fitted {rate}"


def _absolute_only(status: str, layers: Sequence[LayerDiagnosis], ratio: str, rate: str, scale: Scale) -> str:
    """Layer against layer alike, yet outside the absolute range: in every layer ("uniformly") or in some."""
    alike = (f"Layer against layer they look alike ({ratio}; {rate}), so the relative test alone would not "
             "show it")
    if status == "mixed":
        return f"Mixed on the absolute scale: {scale.text}. {alike}; look at the layers one by one."
    word = "below" if status == "vanishing" else "above"
    bad = [l for l in layers if l.status == status]
    if len(bad) == len(layers):
        return (f"{status.capitalize()} gradients, uniformly across layers: {scale.text}. {alike}; every layer's "
                f"measure is {word} the range.")
    which = _which(layers, lambda l: l.status == status)
    return (f"{status.capitalize()} gradients on the absolute scale in {which}: {scale.text}. {alike}; the other "
            f"layers' measures are within the range.")


def _projection(fit: DecayFit, low: float, high: float) -> str:
    if fit.log10_se is None or fit.log10_factor == 0:
        return ""
    lo_ci, hi_ci = fit.log10_factor - 2 * fit.log10_se, fit.log10_factor + 2 * fit.log10_se
    if lo_ci < 0 < hi_ci:
        return ""
    limit, word = (low, "below") if fit.log10_factor < 0 else (high, "above")
    # an N-layer network's first/last is factor^(N-1): N - 1 steps back, not N
    depth = 1 + math.log10(limit) / fit.log10_factor
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


__all__ = ["saturating", "compare_bound", "compare_mean_field", "scale_text", "verdict", "remedies", "REMEDIES"]
