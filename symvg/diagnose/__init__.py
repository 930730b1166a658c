"""Diagnose a real training run against the derived bound and the mean-field prediction.

The input is a :class:`~symvg.logs.GradientLog` (read by :mod:`symvg.logs` / :mod:`symvg.logs.events`):
per layer and step the norm of the weight gradient, and where logged the bias gradient, the
weight norms, σw² and σb². The output, a :class:`Diagnosis`, says how fast gradients shrink or
grow per layer going back from the output, whether that is vanishing, exploding or healthy --
layer against layer *and* on an absolute scale -- how it compares with γ·‖W‖ and with the
mean-field χ1, and what would help.

>>> log = GradientLog.from_records(
...     Record(step, k, 0.2 ** (5 - k), weight_norm=1.0, activation="sigmoid")
...     for step in range(3) for k in range(1, 6))
>>> d = diagnose(log, lr=0.1)
>>> round(d.fit.factor, 3), d.status, [l.status for l in d.layers]
(0.2, 'vanishing', ['vanishing', 'vanishing', 'healthy', 'healthy', 'healthy'])
>>> print(d.bound.text)
measured factor 0.2 per layer (decay); sigmoid bound 1/4·‖W‖ predicts ≤ 0.25 (‖W‖ = 1, geometric mean of the Frobenius norms, ≥ the spectral norms)

Conventions:

* **Layers** are numbered 1…N from the input (w1…wN, as everywhere in symvg); the gradient
  enters at layer N. The *per-layer factor* multiplies the gradient norm on each step back.
* **Steps.** Each layer's norm is averaged over the steps used: all steps, or the last
  ``window`` ones -- always *before* the first nan/inf, which is reported as a divergence.
* **Fit.** log10(mean norm) against depth back from layer N, least squares; factor =
  10^slope with its standard error (delta method), from 3 layers up. Zero layers are left out (with one
  nonzero layer left, the factor is 0: a dead network).
  All arithmetic is on log10 values, so norms of 1e-300 or 1e308 neither under- nor overflow.
* **Relative class**: below :data:`VANISHING_BELOW` (1e-2×) the last layer's norm is vanishing,
  above :data:`EXPLODING_ABOVE` (1e2×) exploding -- a layer learning 100× slower or faster.
* **Absolute class**, so that a uniformly tiny or huge log is not "healthy": with weight norms
  the update ratio lr·|g|/|w| (the fraction by which one SGD step moves the layer's weights)
  below :data:`UPDATE_BELOW` means the weights take over 10^7 steps to change -- vanishing;
  above :data:`UPDATE_ABOVE` one step moves them by more than their size -- exploding. Without
  ``lr`` the ratio must hold for every learning rate in :data:`LR_RANGE`. Without weight norms
  the update lr·|g| itself is judged: below 1e-8 it is under float32's rounding step for any
  weight ≥ 0.1 (:data:`RAW_BELOW`), above 1e3 (:data:`RAW_ABOVE`) no weight survives it.
* **Bound.** δ_k = φ'(z_k) ⊙ W_{k+1}ᵀ δ_{k+1}, so ‖δ_k‖ ≤ γ·‖W_{k+1}‖₂·‖δ_{k+1}‖ with the
  spectral norm; the Frobenius norm is an upper bound of it (loose by up to √width). A weight
  gradient is ‖δ_k‖·‖h_{k-1}‖, whose two factors can move apart; the bias gradient is δ_k alone,
  so where biases are logged their own factor is fitted too.
* **Mean field**: each layer's χ1 = σw²·E[φ'(z)²] at the fixed point q* of its own (σw², σb²)
  (:func:`symvg.theory.meanfield.mean_field`), predicting a gradient-norm factor √χ1 per layer.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from symvg.symbolic import activations
from symvg.errors import InvalidValueError, SymvgError
from symvg.logs.records import GradientLog, LayerLog, Record, activation as _activation  # noqa: F401  (Record: the doctest)
from symvg.diagnose.results import *  # noqa: F401,F403  the result types are part of this package's API
from symvg.diagnose.results import (EXPLODING_ABOVE, LR_RANGE, RAW_ABOVE, RAW_BELOW, UPDATE_ABOVE, UPDATE_BELOW,
                                    VANISHING_BELOW, DecayFit, Diagnosis, Divergence, LayerDiagnosis, Scale,
                                    __all__ as _results, _l10, _pow10, log10_mean)
from symvg.diagnose.rules import compare_bound, compare_mean_field, remedies, saturating, scale_text, verdict


# ----------------------------------------------------------------------------- the maths


def fit_decay(mean_norms: Sequence[float]) -> DecayFit:
    """Fit log10(norm) on depth counted back from the last layer; factor = 10^slope per layer.

    >>> f = fit_decay([0.2 ** 3, 0.2 ** 2, 0.2, 1.0])
    >>> round(f.factor, 6), round(f.factor_se, 6)
    (0.2, 0.0)
    >>> fit_decay([1.0, 1.0]).factor_se is None
    True
    """
    return fit_log10([_l10(float(m)) for m in mean_norms])


def fit_log10(log10_means: Sequence[float]) -> DecayFit:
    """:func:`fit_decay` on log10 values (layers at -inf, no gradient at all, are left out)."""
    y = np.asarray(log10_means, dtype=float)
    keep = np.isfinite(y)
    d = (len(y) - 1 - np.arange(len(y)))[keep].astype(float)
    y = y[keep]
    n = len(d)
    if n < 2:
        raise InvalidValueError(f"need a nonzero mean gradient norm in at least 2 layers to fit a decay, got {n}")
    dc = d - d.mean()
    sxx = float(dc @ dc)
    slope = float(dc @ (y - y.mean())) / sxx
    se = None
    if n > 2:
        resid = y - y.mean() - slope * dc
        se = math.sqrt(float(resid @ resid) / (n - 2) / sxx)
    return DecayFit(slope, se, n)


def find_divergence(log: GradientLog) -> Divergence | None:
    """The first step where any layer logged nan or inf (in any norm), or None."""
    bad: dict[int, list[tuple[int, str, float]]] = {}
    for k, layer in enumerate(log.layers, 1):
        for q in ("grad_norm", "bias_grad_norm", "weight_norm", "spectral_norm"):
            for s, v in zip(layer.steps, layer.series(q)):
                if v is not None and not math.isfinite(v):
                    bad.setdefault(s, []).append((k, f"{q} {v}", v))
                    break
    if not bad:
        return None
    step = min(bad)
    hits = sorted(set((k, what) for k, what, _ in bad[step]))
    names = tuple(dict.fromkeys(f"w{k} ({log.layers[k - 1].name})" for k, _ in hits))
    k, what = hits[0]
    text = (f"layer w{k} ({log.layers[k - 1].name}) logged {what} at step {step}, the first non-finite value"
            + (f" ({len(names)} layers at that step)" if len(names) > 1 else ""))
    return Divergence(step, names, what.split()[-1], text)


def _mean(layer: LayerLog, q: str, keep: set[int]) -> float | None:
    vals = [v for v, s in zip(layer.series(q), layer.steps) if s in keep and v is not None]
    return None if not vals else _pow10(log10_mean(vals)) if q != "near_zero_fraction" else float(np.mean(vals))


def _steps(log: GradientLog, window: int | None, div: Divergence | None) -> tuple[int, ...]:
    steps = tuple(s for s in log.steps if div is None or s < div.step)
    if not steps:
        raise InvalidValueError(f"{log.source}: {div.text if div else 'no steps'}; no finite steps before it "
                                "to diagnose")
    return steps[-window:] if window else steps


def _scale(lg: list[float], lw: list[float | None], lr: float | None) -> tuple[Scale, list[float]]:
    """Pick the absolute evidence (update ratio, or raw update) and each layer's log10 measure."""
    if all(w is not None and w > -math.inf for w in lw):
        lo_lr, hi_lr = (lr, lr) if lr else LR_RANGE
        what = f"update ratio lr·|g|/|w| (lr = {lr:g})" if lr else \
            f"|g|/|w| (the update ratio for lr = 1; no --lr given, so judged for every lr in {LR_RANGE[0]:g}…1)"
        meas = [g - w + (math.log10(lr) if lr else 0.0) for g, w in zip(lg, lw)]  # type: ignore[operator]
        low = math.log10(UPDATE_BELOW) - (0.0 if lr else math.log10(hi_lr))
        high = math.log10(UPDATE_ABOVE) - (0.0 if lr else math.log10(lo_lr))
        return Scale(what, low, high, ""), meas
    lo_lr, hi_lr = (lr, lr) if lr else LR_RANGE
    # "no weight norms logged" was said also when some layers had them (or a norm of 0): say which it is
    why = "no weight norms logged" if all(w is None for w in lw) else \
        f"weight norms > 0 logged for {sum(w is not None and w > -math.inf for w in lw)} of {len(lw)} layers only"
    what = (f"update lr·|g| (lr = {lr:g}; {why})" if lr else
            f"raw |g| ({why}, no --lr: judged for every lr in {LR_RANGE[0]:g}…1)")
    meas = [g + (math.log10(lr) if lr else 0.0) for g in lg]
    low = math.log10(RAW_BELOW) - (0.0 if lr else math.log10(hi_lr))
    high = math.log10(RAW_ABOVE) - (0.0 if lr else math.log10(lo_lr))
    return Scale(what, low, high, ""), meas


def _classify(rel: float, meas: float, lo_rel: float, hi_rel: float, scale: Scale) -> tuple[str, str]:
    relative = "vanishing" if rel < lo_rel else "exploding" if rel > hi_rel else "healthy"
    absolute = "vanishing" if meas < scale.low else "exploding" if meas > scale.high else "healthy"
    return relative, absolute


def diagnose(log: GradientLog, activation: "str | Sequence[str | None] | None" = None, *, window: int | None = None,
             vanishing_below: float = VANISHING_BELOW, exploding_above: float = EXPLODING_ABOVE,
             lr: float | None = None) -> Diagnosis:
    """Diagnose ``log``; ``activation`` (one name, or one per layer) overrides the log's own.

    >>> flat = GradientLog.from_records(Record(0, k, 1.0 + 0.01 * k) for k in range(4))
    >>> d = diagnose(flat, "relu")
    >>> d.status, d.remedies, round(d.first_last_ratio, 2)
    ('healthy', (), 0.97)
    >>> diagnose(flat, window=0)
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: window must be a positive number of steps, got 0
    """
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
        raise InvalidValueError(f"window must be a positive number of steps, got {window!r}")
    if not (0 < vanishing_below < 1 < exploding_above < math.inf):
        raise InvalidValueError(f"thresholds need 0 < vanishing_below < 1 < exploding_above, "
                                f"got {vanishing_below!r} and {exploding_above!r}")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf):
        raise InvalidValueError(f"lr must be a finite number > 0, got {lr!r}")
    n = len(log.layers)
    if n < 2:
        raise InvalidValueError(f"{log.source}: {n} layer(s); need gradient norms for at least 2 layers")
    div = find_divergence(log)
    used = _steps(log, window, div)
    keep = set(used)
    acts = _layer_activations(log, activation)
    lg = _grad_means(log, used)
    means = {q: [_mean(l, q, keep) for l in log.layers] for q in
             ("weight_norm", "near_zero_fraction", "bias_grad_norm", "spectral_norm", "sigma_w2", "sigma_b2")}
    scale, meas = _scale(lg, [None if w is None else _l10(w) for w in means["weight_norm"]], lr)
    mf = _mean_field(acts, means["sigma_w2"], means["sigma_b2"])
    layers, rel_classes, abs_classes = [], [], []
    lo_rel, hi_rel = math.log10(vanishing_below), math.log10(exploding_above)
    for k, (layer, act) in enumerate(zip(log.layers, acts)):
        rel, ab = _classify(lg[k] - lg[-1], meas[k], lo_rel, hi_rel, scale)
        rel_classes.append(rel)
        abs_classes.append(ab)
        layers.append(LayerDiagnosis(
            k + 1, layer.name, _pow10(lg[k]), lg[k], lg[k] - lg[-1],
            means["weight_norm"][k], means["near_zero_fraction"][k], act.label if act else layer.activation,
            ab if ab != "healthy" else rel, means["bias_grad_norm"][k], means["spectral_norm"][k], meas[k],
            mf[k] if k < n - 1 else None))
    # every layer but one at mean gradient 0 (a dead network) was refused as "need ... at least 2 layers": the
    # factor is 0, the clearest vanishing there is
    fit = fit_log10(lg) if sum(math.isfinite(v) for v in lg) >= 2 else DecayFit(-math.inf, None, 1)
    bias = means["bias_grad_norm"]
    bias_fit = fit_log10([_l10(b) for b in bias]) if all(b is not None for b in bias) and \
        sum(b > 0 for b in bias) >= 2 else None  # type: ignore[operator]
    status = _overall([l.status for l in layers])
    scale = Scale(scale.evidence, scale.low, scale.high, scale_text(scale, meas, abs_classes))
    # The words before the divergence judge the finite steps as they are: forcing "exploding" first made a
    # flat log of norms 1 read "Exploding gradients, uniformly across layers ... above the range".
    text = verdict(status, _overall(rel_classes), layers, fit, vanishing_below, exploding_above, scale, div)
    if div is not None:
        status = "exploding"
    bound = compare_bound(bias_fit or fit, acts, means["weight_norm"], means["spectral_norm"], bias_fit is not None,
                          [_l10(b) for b in bias] if bias_fit is not None else lg)  # type: ignore[arg-type]
    return Diagnosis(log.source, used, tuple(layers), fit, lg[0] - lg[-1], status, text, bound,
                     remedies(status, layers, acts, div), vanishing_below, exploding_above, scale, div, bias_fit,
                     compare_mean_field(mf, bias_fit or fit, bias_fit is not None), log.notes)


def _grad_means(log: GradientLog, used: Sequence[int]) -> list[float]:
    """log10 of each layer's mean weight-gradient norm over the steps ``used``."""
    keep, lg = set(used), []
    for layer in log.layers:
        vals = [v for v, s in zip(layer.grad_norm, layer.steps) if s in keep]
        if not vals:
            raise InvalidValueError(f"{log.source}: layer {layer.name!r} has no gradient norm in steps "
                                    f"{used[0]}..{used[-1]}; widen the window")
        lg.append(log10_mean(vals))
    if lg[-1] == -math.inf:
        raise InvalidValueError(f"{log.source}: the last layer {log.layers[-1].name!r} has mean gradient norm 0; "
                                "nothing to compare the other layers with")
    return lg


def _overall(classes: Sequence[str]) -> str:
    s = set(classes)
    return ("mixed" if {"vanishing", "exploding"} <= s else "vanishing" if "vanishing" in s
            else "exploding" if "exploding" in s else "healthy")


def _mean_field(acts: Sequence[activations.Activation | None], sw2: Sequence[float | None],
                sb2: Sequence[float | None]) -> list[float | None]:
    """√χ1 for the step back from layer k+1 to layer k: φ of layer k, (σw², σb²) of layer k+1."""
    from symvg.theory.meanfield import chi1 as chi1_at  # χ1 alone: mean_field's c* took seconds a layer in chaos

    out: list[float | None] = []
    for k in range(len(acts) - 1):
        act, w, b = acts[k], sw2[k + 1], sb2[k + 1]
        if act is None or w is None:
            out.append(None)
            continue
        try:  # 6 significant digits: the measured variance carries no more, and exact arithmetic stays cheap
            chi1 = float(chi1_at(act, f"{w:.6g}", f"{(b or 0.0):.6g}"))
        except SymvgError:  # q* diverges: no stationary prediction
            chi1 = math.nan
        out.append(math.sqrt(chi1) if math.isfinite(chi1) else None)
    return out


def _layer_activations(log: GradientLog, activation: "str | Sequence[str | None] | None"
                       ) -> list[activations.Activation | None]:
    n = len(log.layers)
    if activation is None:
        return [_activation(l.activation, f"{log.source}: layer {l.name!r}") if l.activation else None
                for l in log.layers]
    names = [activation] * n if isinstance(activation, str) else list(activation)
    if len(names) == n - 1:
        names.append(None)  # the output layer's activation does not enter the backward factors
    if len(names) != n:
        raise InvalidValueError(f"activation: got {len(names)} names for {n} layers; give one, {n - 1} or {n}")
    return [_activation(a, f"activation for layer w{k}") if a else None for k, a in enumerate(names, 1)]


__all__ = [*_results, "fit_decay", "fit_log10", "find_divergence", "diagnose", "saturating", "compare_bound"]
