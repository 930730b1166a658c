"""What a diagnosis finds, as frozen results, and the thresholds it judges by (see :mod:`symvg.diagnose`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from symvg.display import Result, Worded

VANISHING_BELOW = 1e-2
"""A layer whose mean gradient norm is below this multiple of the last layer's is vanishing."""

EXPLODING_ABOVE = 1e2
"""A layer whose mean gradient norm is above this multiple of the last layer's is exploding."""

UPDATE_BELOW, UPDATE_ABOVE = 1e-7, 1.0
"""Update ratio lr·|g|/|w| outside these is vanishing / exploding on the absolute scale."""

LR_RANGE = (1e-5, 1.0)
"""Learning rates assumed possible when none is given: a verdict must hold for all of them."""

RAW_BELOW, RAW_ABOVE = 1e-8, 1e3
"""An update lr·|g| outside these is vanishing / exploding when no weight norm is logged."""

DEAD_FRACTION = 0.5
"""More than this fraction of a layer's weights near zero earns the dead-units remedy."""


def log10_mean(values: Sequence[float]) -> float:
    """log10 of the arithmetic mean of non-negative finite values, without overflow.

    >>> log10_mean([1.7e308, 1.7e308]) == math.log10(1.7e308), log10_mean([0.0, 0.0])
    (True, -inf)
    """
    top = max(values)
    if top == 0:
        return -math.inf
    return math.log10(top) + math.log10(math.fsum(v / top for v in values) / len(values))

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

def _sized(x: float | None, lg: float | None) -> float | None:
    """``x`` for JSON, None where it is not finite or underflowed to 0 from a finite log10 (10^-400 is not 0).

    >>> _sized(0.0, -400.0), _sized(0.0, None), _sized(2.0, 0.301)
    (None, 0.0, 2.0)
    """
    return None if x == 0 and lg is not None and math.isfinite(lg) else _f(x)


def _pow10(lg: float) -> float:
    try:
        return 10.0 ** lg
    except OverflowError:
        return math.inf


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class LayerDiagnosis(Result):
    """One layer (``index`` 1…N from the input): mean norms over the steps used, and its class."""

    index: int
    name: str
    mean_grad_norm: float
    log10_mean: float
    log10_relative: float  # log10 of mean / last layer's mean
    weight_norm: float | None
    near_zero_fraction: float | None
    activation: str | None
    status: str  # "vanishing" | "exploding" | "healthy"
    bias_grad_norm: float | None = None
    spectral_norm: float | None = None
    log10_update: float | None = None  # the absolute-scale measure (see Scale.evidence)
    sqrt_chi1: float | None = None  # mean-field factor for the step back from the next layer to this one

    @property
    def relative_to_last(self) -> float:
        """mean / last layer's mean (0 or inf where the ratio leaves the float range)."""
        return _pow10(self.log10_relative)


@dataclass(frozen=True)
class DecayFit(Result):
    """Least squares of log10(mean norm) on depth back from the output: factor = 10^slope."""

    log10_factor: float
    log10_se: float | None  # standard error of the slope in log10 units
    layers_used: int

    @property
    def factor(self) -> float:
        return _pow10(self.log10_factor)

    @property
    def factor_se(self) -> float | None:
        return None if self.log10_se is None else self.factor * self.log10_se * math.log(10)

    @property
    def log_slope(self) -> float:
        return self.log10_factor * math.log(10)

    def __str__(self) -> str:
        se = "" if self.log10_se is None else f" ± {_g10(self.log10_factor + _l10(self.log10_se * math.log(10)))}"
        return f"{_g10(self.log10_factor)}{se} per layer"


@dataclass(frozen=True)
class Scale(Worded):
    """The absolute-scale judgement: which evidence, its thresholds (log10), and what it found."""

    evidence: str
    low: float
    high: float
    text: str


@dataclass(frozen=True)
class Divergence(Worded):
    """The first step at which a logged norm is nan or inf, and the layers where it is."""

    step: int
    layers: tuple[str, ...]
    value: str
    text: str


@dataclass(frozen=True)
class BoundComparison(Worded):
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
    log10_implied_weight_norm: float | None = None  # its size where the float underflows or overflows


@dataclass(frozen=True)
class MeanFieldComparison(Worded):
    """√χ1 per layer step (None where σw² is not logged or q* diverges) against the measured factor."""

    sqrt_chi1: tuple[float | None, ...]
    factor: float
    measured: float
    text: str


@dataclass(frozen=True)
class Remedy(Worded):
    """A fix that applies, and why."""

    key: str
    text: str


@dataclass(frozen=True)
class Diagnosis(Result):
    """What a training log says about vanishing or exploding gradients (see the module docstring)."""

    source: str
    steps_used: tuple[int, ...]
    layers: tuple[LayerDiagnosis, ...]
    fit: DecayFit
    log10_first_last: float
    status: str  # "vanishing" | "exploding" | "mixed" | "healthy"
    verdict: str
    bound: BoundComparison | None
    remedies: tuple[Remedy, ...]
    vanishing_below: float = VANISHING_BELOW
    exploding_above: float = EXPLODING_ABOVE
    scale: Scale | None = None
    divergence: Divergence | None = None
    bias_fit: DecayFit | None = None
    mean_field: MeanFieldComparison | None = None
    notes: tuple[str, ...] = ()

    @property
    def first_last_ratio(self) -> float:
        return _pow10(self.log10_first_last)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON: floats that are not finite become None (log10 fields carry the size)."""
        return as_dict(self)


def _fit_dict(fit: DecayFit | None) -> dict[str, Any] | None:
    return None if fit is None else {
        "factor": _f(fit.factor), "factor_se": _f(fit.factor_se), "log10_factor": _f(fit.log10_factor),
        "log10_slope_se": fit.log10_se, "log_slope": _f(fit.log_slope), "layers_used": fit.layers_used,
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
            "implied_weight_norm": _sized(b.implied_weight_norm, b.log10_implied_weight_norm),
            "log10_implied_weight_norm": _f(b.log10_implied_weight_norm), "text": b.text},
        "mean_field": None if d.mean_field is None else {
            "sqrt_chi1": [_f(c) for c in d.mean_field.sqrt_chi1], "factor": _f(d.mean_field.factor),
            "measured": _f(d.mean_field.measured), "text": d.mean_field.text},
        "remedies": [{"key": r.key, "text": r.text} for r in d.remedies],
        "notes": list(d.notes),
    }


__all__ = ["LayerDiagnosis", "DecayFit", "Scale", "Divergence", "BoundComparison", "MeanFieldComparison", "Remedy",
           "Diagnosis", "log10_mean", "VANISHING_BELOW", "EXPLODING_ABOVE", "UPDATE_BELOW", "UPDATE_ABOVE", "LR_RANGE",
           "RAW_BELOW", "RAW_ABOVE", "DEAD_FRACTION"]
