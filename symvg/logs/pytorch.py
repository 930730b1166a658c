"""Per-layer gradient records straight from a PyTorch model: :func:`collect_torch` (needs ``torch``)."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from symvg.errors import BackendUnavailableError, InvalidValueError
from symvg.logs.records import Record

NEAR_ZERO = 1e-3
"""|w| below this counts as a weight near zero."""


def collect_torch(model: Any, loss_fn: Callable[[Any, Any], Any], batch: Sequence[Any], *, step: int = 0,
                  activation: "str | Sequence[str | None] | None" = None, near_zero: float = NEAR_ZERO
                  ) -> tuple[Record, ...]:
    """One forward and backward pass of ``model`` on ``batch = (inputs, targets)``; a Record per weight.

    Reads ``param.grad`` of every parameter named ``*weight`` with two or more dimensions
    (linear and convolution weights, not normalisation scales), in module order, with the
    gradient of the matching ``*bias`` (that is δ_k summed over the batch), the weight's
    Frobenius and spectral norms (a convolution kernel is flattened to out × rest first: the
    matrix, not the convolution operator), σw² = fan_in·Var W and σb² = Var b. The gradients
    stay in ``.grad`` for the optimiser's step.
    """
    try:
        import torch
    except ImportError:
        raise BackendUnavailableError("collect_torch needs PyTorch: pip install torch") from None
    inputs, targets = batch
    model.zero_grad(set_to_none=True)
    loss_fn(model(inputs), targets).backward()
    params = dict(model.named_parameters())
    weights = [(n, p) for n, p in params.items() if n.endswith("weight") and p.dim() >= 2]
    acts = [activation] * len(weights) if activation is None or isinstance(activation, str) else list(activation)
    if len(acts) != len(weights):
        raise InvalidValueError(f"activation: got {len(acts)} names for {len(weights)} weight layers")
    out = []
    with torch.no_grad():
        for (name, p), act in zip(weights, acts):
            if p.grad is None:
                continue  # a frozen or unused layer has no gradient to report
            bias = params.get(name[: -len("weight")] + "bias")
            w = p.reshape(p.shape[0], -1).double()
            finite = bool(torch.isfinite(w).all())  # a diverged run's weights: nan, reported as such
            out.append(Record(
                step, name, float(p.grad.norm()), float(p.norm()), float((p.abs() < near_zero).float().mean()), act,
                bias_grad_norm=None if bias is None or bias.grad is None else float(bias.grad.norm()),
                spectral_norm=float(torch.linalg.matrix_norm(w, ord=2)) if finite else math.nan,
                sigma_w2=float(w.shape[1] * w.var(unbiased=False)),
                sigma_b2=None if bias is None else float(bias.double().var(unbiased=False))))
    return tuple(out)


__all__ = ["collect_torch", "NEAR_ZERO"]
