"""Diagnose a real training run against the derived bound.

The input is what a training loop can log cheaply: the norm of each layer's weight gradient
at each step (optionally the weight norm, the fraction of weights near zero, and the
activation). The output, a :class:`Diagnosis`, says how fast gradients shrink or grow per
layer as they travel back from the output, whether that is vanishing, exploding or healthy,
how it compares with symvg's bound γ·|w| per layer, and what would help.

>>> log = GradientLog.from_records(
...     Record(step, k, 0.2 ** (4 - k), weight_norm=1.0, activation="sigmoid")
...     for step in range(3) for k in range(5))
>>> d = diagnose(log)
>>> round(d.fit.factor, 3), d.status, [l.status for l in d.layers]
(0.2, 'vanishing', ['vanishing', 'vanishing', 'healthy', 'healthy', 'healthy'])
>>> print(d.bound.text)
measured decay 0.2 per layer; sigmoid bound 1/4·|w| predicts ≤ 0.25 (|w| = 1, geometric mean of the logged weight norms)

How the numbers are made (the conventions a reader needs):

* **Depth order.** Layer 0 is nearest the input, the last layer is the output layer, where
  the gradient enters. Gradients travel backwards, so the *per-layer factor* is how much the
  gradient norm is multiplied by on each step from layer k+1 to layer k.
* **Mean.** Each layer's gradient norm is averaged (arithmetic mean) over all logged steps,
  or over the last ``window`` distinct steps of the log.
* **Fit.** With depth counted backwards from the last layer (d = N-1-k), ``log(mean norm)``
  is fitted by ordinary least squares against d; the factor is ``exp(slope)`` and its
  standard error comes from the slope's (delta method: se(factor) = factor·se(slope)); it
  needs three layers or more (two give a factor without an error). Layers whose mean is 0
  (no gradient at all) are left out of the fit and reported as vanishing.
* **Classification** of each layer, relative to the last layer's mean norm:
  below :data:`VANISHING_BELOW` (1e-2×) it is *vanishing*, above :data:`EXPLODING_ABOVE`
  (1e2×) *exploding*, otherwise *healthy*. Two orders of magnitude is where plain SGD makes a
  layer learn a hundred times slower (or faster) than the output layer -- as if it had its own
  learning rate off by 100. Both thresholds are arguments of :func:`diagnose`.
* **Bound.** The gradient reaching layer k is δ_k = φ'(z_k) ⊙ W_{k+1}ᵀ δ_{k+1}, so
  ‖δ_k‖ ≤ γ_k·‖W_{k+1}‖·‖δ_{k+1}‖ with γ = sup|φ'| (proved in :mod:`symvg.activations`) and
  any norm at least the spectral one -- the logged Frobenius norm is such a bound. The
  comparison uses the geometric mean of γ_k·|w_{k+1}| over the layers the gradient passes.
  A weight gradient's norm is ‖δ_k‖·‖h_{k-1}‖, so the measured factor also carries the ratio
  of successive activation norms; for layers of one width and one activation that ratio is
  close to 1. Without weight norms only γ is known and the report says which |w| the
  measurement implies.

Log formats (all read into a :class:`GradientLog`):

* **CSV**, long form, one row per (step, layer)::

      step,layer,grad_norm[,weight_norm][,near_zero_fraction][,activation][,order]

  ``step`` is an integer; ``layer`` is either an integer depth index (when every value is
  an integer, layers are sorted numerically) or a name. Names are put in depth order by the
  integer ``order`` column when present, else by first appearance in the file. Norms are
  finite and >= 0, ``near_zero_fraction`` lies in [0, 1]; optional cells may be empty.
  ``activation`` (a catalogue name such as ``sigmoid`` or ``leaky_relu:0.1``) is the one
  applied after that layer and must not change between steps. Any other column is refused.
* **JSON**, wide form::

      {"steps": [0, 1, 2],                  # optional; default 0, 1, ..., T-1
       "layers": [                          # in depth order, input side first
         {"name": "fc1", "grad_norm": [..T numbers..],
          "weight_norm": [..], "near_zero_fraction": [..], "activation": "sigmoid"}]}

  Only ``name`` and ``grad_norm`` are required; a ``null`` entry means "not logged then".
* **TensorBoard** event directory (extra ``tensorboard``): scalar tags
  ``grad_<p>_norm/<layer>`` (PyTorch Lightning's ``grad_norm``; ``grad_<p>_norm_total`` is
  ignored), ``grad_norm/<layer>`` or ``<layer>/grad_norm``, plus optional
  ``weight_norm/<layer>`` and ``near_zero_fraction/<layer>``. Layers are in the order their
  tags first appear; when some layers end in ``weight``, biases are dropped (the bound is about
  weights). Lightning's ``_step`` suffix is stripped and ``_epoch`` aggregates are ignored.
* **PyTorch** directly: :func:`collect_torch` runs one forward and backward pass and returns
  the records for that step.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from . import activations
from .errors import BackendUnavailableError, InvalidValueError, SymvgInputError

VANISHING_BELOW = 1e-2
"""A layer whose mean gradient norm is below this multiple of the last layer's is vanishing."""

EXPLODING_ABOVE = 1e2
"""A layer whose mean gradient norm is above this multiple of the last layer's is exploding."""

NEAR_ZERO = 1e-3
"""|w| below this counts as a weight near zero (:func:`collect_torch`)."""

DEAD_FRACTION = 0.5
"""More than this fraction of a layer's weights near zero earns the dead-units remedy."""

CSV_COLUMNS = ("step", "layer", "grad_norm", "weight_norm", "near_zero_fraction", "activation", "order")
_REQUIRED = CSV_COLUMNS[:3]
_SATURATING = {"sigmoid", "tanh", "hard_sigmoid", "softplus"}  # φ' → 0 for large |z|


# ----------------------------------------------------------------------------- the log


@dataclass(frozen=True)
class Record:
    """One layer at one step: what a training loop logs."""

    step: int
    layer: "int | str"
    grad_norm: float
    weight_norm: float | None = None
    near_zero_fraction: float | None = None
    activation: str | None = None


@dataclass(frozen=True)
class LayerLog:
    """One layer's series over steps (``None`` where an optional value was not logged)."""

    name: str
    steps: tuple[int, ...]
    grad_norm: tuple[float, ...]
    weight_norm: tuple[float | None, ...]
    near_zero_fraction: tuple[float | None, ...]
    activation: str | None = None


@dataclass(frozen=True)
class GradientLog:
    """Per-layer series in depth order (index 0 nearest the input), and where they came from."""

    layers: tuple[LayerLog, ...]
    source: str = "<records>"

    @property
    def steps(self) -> tuple[int, ...]:
        """Every step that any layer logged, sorted."""
        return tuple(sorted({s for layer in self.layers for s in layer.steps}))

    @classmethod
    def from_records(cls, records: Iterable[Record], source: str = "<records>",
                     order: Mapping[str, int] | None = None) -> "GradientLog":
        """Group records by layer; integer layers sort numerically, names by ``order`` or first appearance.

        >>> log = GradientLog.from_records([Record(0, "b", 1.0), Record(0, "a", 2.0)])
        >>> [l.name for l in log.layers]
        ['b', 'a']
        >>> GradientLog.from_records([Record(0, "a", -1.0)])
        Traceback (most recent call last):
        symvg.errors.InvalidValueError: <records>: record 1, grad_norm: -1.0 is negative; a norm must be >= 0
        """
        by_layer: dict[str, dict[int, Record]] = {}
        keys: dict[str, Any] = {}
        for i, r in enumerate(records, 1):
            where = f"{source}: record {i}"
            _check_record(r, where)
            name = str(r.layer)
            seen = by_layer.setdefault(name, {})
            keys.setdefault(name, r.layer)
            if r.step in seen:
                raise InvalidValueError(f"{where}: duplicate record for step {r.step}, layer {name!r}")
            seen[r.step] = r
        if not by_layer:
            raise InvalidValueError(f"{source}: no records; need gradient norms for at least 2 layers")
        names = list(by_layer)
        if order is not None:
            names.sort(key=lambda n: order[n])
        elif all(isinstance(k, int) for k in keys.values()):
            names.sort(key=lambda n: keys[n])
        layers = []
        for name in names:
            rows = [by_layer[name][s] for s in sorted(by_layer[name])]
            acts = {r.activation for r in rows if r.activation}
            if len(acts) > 1:
                raise InvalidValueError(
                    f"{source}: layer {name!r} has activations {', '.join(sorted(acts))}; it must have one")
            layers.append(LayerLog(name, tuple(r.step for r in rows), tuple(r.grad_norm for r in rows),
                                   tuple(r.weight_norm for r in rows), tuple(r.near_zero_fraction for r in rows),
                                   acts.pop() if acts else None))
        return cls(tuple(layers), source)


def _check_record(r: Record, where: str, col: str = "") -> None:
    """The one place a logged value is validated; ``col`` prefixes field names ("column " for CSV)."""
    if isinstance(r.step, bool) or not isinstance(r.step, int):
        raise InvalidValueError(f"{where}, {col}step: {r.step!r} is not an integer")
    _check_number(r.grad_norm, f"{where}, {col}grad_norm")
    if r.weight_norm is not None:
        _check_number(r.weight_norm, f"{where}, {col}weight_norm")
    if r.near_zero_fraction is not None:
        _check_number(r.near_zero_fraction, f"{where}, {col}near_zero_fraction", upper=1.0)
    if r.activation:
        _activation(r.activation, f"{where}, {col}activation")


def _check_number(value: Any, where: str, upper: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValueError(f"{where}: {value!r} is not a number")
    if not math.isfinite(value):
        raise InvalidValueError(f"{where}: {value!r} is not allowed; need a finite number >= 0")
    if value < 0:
        allowed = "a fraction lies in [0, 1]" if upper == 1.0 else "a norm must be >= 0"
        raise InvalidValueError(f"{where}: {value!r} is negative; {allowed}")
    if upper is not None and value > upper:
        raise InvalidValueError(f"{where}: {value!r} is above {upper}; a fraction lies in [0, 1]")
    return float(value)


def _activation(name: str, where: str) -> activations.Activation:
    try:
        return activations.get(name)
    except SymvgInputError as e:
        raise type(e)(f"{where}: {e}") from None


# ----------------------------------------------------------------------------- readers


def _parse_float(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidValueError(f"{where}: {text!r} is not a number") from None


def _parse_int(text: str, where: str) -> int:
    if not re.fullmatch(r"\s*[+-]?\d{1,18}\s*", text):
        raise InvalidValueError(f"{where}: {text!r} is not an integer")
    return int(text)


def read_csv(path: "str | os.PathLike[str]") -> GradientLog:
    """Read the long CSV schema (see the module docstring).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "g.csv"
    >>> _ = p.write_text("step,layer,grad_norm\\n0,fc1,0.5\\n0,fc2,1.0\\n")
    >>> [(l.name, l.grad_norm) for l in read_csv(p).layers]
    [('fc1', (0.5,)), ('fc2', (1.0,))]
    >>> _ = p.write_text("step,layer,grad_norm\\n0,fc1,lots\\n")
    >>> read_csv(p)
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: ...g.csv: line 2, column grad_norm: 'lots' is not a number
    """
    p = Path(path)
    reader = csv.reader(io.StringIO(_read_text(p), newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise InvalidValueError(f"{p}: empty file; expected a header line {','.join(_REQUIRED)}[,...]")
        header = [h.strip() for h in header]
        for h in header:
            if h not in CSV_COLUMNS:
                raise InvalidValueError(f"{p}: unknown column {h!r}; allowed: {', '.join(CSV_COLUMNS)}")
        missing = [c for c in _REQUIRED if c not in header]
        if missing:
            raise InvalidValueError(f"{p}: missing column(s) {', '.join(missing)}; "
                                    f"the header must include {','.join(_REQUIRED)}")
        if len(set(header)) != len(header):
            raise InvalidValueError(f"{p}: a column appears twice in the header {','.join(header)}")
        rows = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue  # blank line
            where = f"{p}: line {reader.line_num}"
            if len(cells) != len(header):
                raise InvalidValueError(f"{where}: expected {len(header)} fields, got {len(cells)}")
            rows.append((where, dict(zip(header, (c.strip() for c in cells)))))
    except csv.Error as e:
        raise InvalidValueError(f"{p}: line {reader.line_num}: not readable as CSV ({e})") from None
    if not rows:
        raise InvalidValueError(f"{p}: no data rows after the header")
    integer_layers = all(re.fullmatch(r"[+-]?\d+", row["layer"]) for _, row in rows)
    records, order, first_line = [], {}, {}
    for where, row in rows:
        if not row["layer"]:
            raise InvalidValueError(f"{where}, column layer: empty; need a layer index or name")
        opt = {}
        for col in ("weight_norm", "near_zero_fraction"):
            if row.get(col):
                opt[col] = _parse_float(row[col], f"{where}, column {col}")
        layer: int | str = int(row["layer"]) if integer_layers else row["layer"]
        rec = Record(_parse_int(row["step"], f"{where}, column step"), layer,
                     _parse_float(row["grad_norm"], f"{where}, column grad_norm"),
                     activation=row.get("activation") or None, **opt)
        key = (rec.step, str(layer))
        if key in first_line:
            raise InvalidValueError(f"{where}: duplicate record for step {rec.step}, layer {str(layer)!r} "
                                    f"(first at {first_line[key].split(': ')[-1]})")
        first_line[key] = where
        _check_record(rec, where, "column ")
        if "order" in row:
            o = _parse_int(row["order"], f"{where}, column order")
            if order.setdefault(str(layer), o) != o:
                raise InvalidValueError(f"{where}, column order: layer {str(layer)!r} has order {order[str(layer)]} "
                                        f"on an earlier line and {o} here")
        records.append(rec)
    return GradientLog.from_records(records, str(p), order if "order" in rows[0][1] and not integer_layers else None)


def _read_text(p: Path) -> str:
    """The file as UTF-8 text; anything else is refused as input, not crashed on."""
    try:
        return p.read_bytes().decode("utf-8-sig")  # -sig: a spreadsheet's byte-order mark is not a column name
    except UnicodeDecodeError as e:
        raise InvalidValueError(f"{p}: not UTF-8 text (byte {e.start}); expected a CSV or JSON log") from None


def read_json(path: "str | os.PathLike[str]") -> GradientLog:
    """Read the wide JSON schema (see the module docstring).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "g.json"
    >>> _ = p.write_text('{"layers": [{"name": "a", "grad_norm": [1, 2]}, {"name": "b", "grad_norm": [3, null]}]}')
    >>> [(l.name, l.steps) for l in read_json(p).layers]
    [('a', (0, 1)), ('b', (0,))]
    """
    p = Path(path)
    text = _read_text(p)
    if not text.strip():
        raise InvalidValueError(f"{p}: empty file; expected a JSON object with a 'layers' list")
    try:
        data = json.loads(text, parse_constant=lambda c: c)  # NaN/Infinity stay strings, refused below
    except json.JSONDecodeError as e:
        raise InvalidValueError(f"{p}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
        raise InvalidValueError(f"{p}: expected a JSON object with a 'layers' list")
    unknown = set(data) - {"steps", "layers"}
    if unknown:
        raise InvalidValueError(f"{p}: unknown key(s) {', '.join(sorted(unknown))}; allowed: steps, layers")
    steps = data.get("steps")
    records = []
    for i, layer in enumerate(data["layers"]):
        where = f"{p}: layers[{i}]"
        if not isinstance(layer, dict):
            raise InvalidValueError(f"{where}: expected an object with 'name' and 'grad_norm'")
        bad = set(layer) - {"name", "grad_norm", "weight_norm", "near_zero_fraction", "activation"}
        if bad:
            raise InvalidValueError(f"{where}: unknown key(s) {', '.join(sorted(bad))}; allowed: name, grad_norm, "
                                    "weight_norm, near_zero_fraction, activation")
        if "name" not in layer or "grad_norm" not in layer:
            raise InvalidValueError(f"{where}: missing {'name' if 'name' not in layer else 'grad_norm'}")
        g = layer["grad_norm"]
        if not isinstance(g, list):
            raise InvalidValueError(f"{where}.grad_norm: expected a list of numbers, got {g!r}")
        if steps is None:
            steps = list(range(len(g)))
        if not isinstance(steps, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in steps):
            raise InvalidValueError(f"{p}: steps must be a list of integers")
        series = {}
        for key in ("grad_norm", "weight_norm", "near_zero_fraction"):
            v = layer.get(key)
            if v is None:
                continue
            if not isinstance(v, list) or len(v) != len(steps):
                raise InvalidValueError(f"{where}.{key}: expected a list of {len(steps)} numbers (one per step)")
            series[key] = v
        act = layer.get("activation")
        if act is not None and not isinstance(act, str):
            raise InvalidValueError(f"{where}.activation: expected a name such as 'sigmoid', got {act!r}")
        for t, step in enumerate(steps):
            if series["grad_norm"][t] is None:
                continue
            vals = {k: series[k][t] for k in series}
            for k, v in vals.items():
                if v is not None:
                    _check_number(v, f"{where}.{k}[{t}]", upper=1.0 if k == "near_zero_fraction" else None)
            records.append(Record(step, str(layer["name"]), float(vals["grad_norm"]),
                                  _float_or_none(vals.get("weight_norm")),
                                  _float_or_none(vals.get("near_zero_fraction")), act or None))
    return GradientLog.from_records(records, str(p), {str(l["name"]): i for i, l in enumerate(data["layers"])})


def _float_or_none(v: Any) -> float | None:
    return None if v is None else float(v)


_TB_TAGS = (  # (pattern, quantity); the first match wins
    (re.compile(r"^grad_(?:[0-9.]+|inf)_norm_total$"), None),  # Lightning's total over all parameters
    (re.compile(r"^grad_(?:[0-9.]+|inf)_norm[/_](?P<name>.+)$"), "grad_norm"),
    (re.compile(r"^grad_norm/(?P<name>.+)$"), "grad_norm"),
    (re.compile(r"^(?P<name>.+)/grad_norm$"), "grad_norm"),
    (re.compile(r"^weight_norm/(?P<name>.+)$"), "weight_norm"),
    (re.compile(r"^near_zero_fraction/(?P<name>.+)$"), "near_zero_fraction"),
)


def match_tensorboard_tag(tag: str) -> tuple[str, str] | None:
    """(quantity, layer) for a per-layer scalar tag, or None for any other tag.

    >>> match_tensorboard_tag("grad_2.0_norm/layer1.weight")
    ('grad_norm', 'layer1.weight')
    >>> match_tensorboard_tag("grad_2.0_norm_total") is None, match_tensorboard_tag("train_loss") is None
    (True, True)
    >>> match_tensorboard_tag("fc3.weight/grad_norm"), match_tensorboard_tag("grad_norm/fc3.weight_step")
    (('grad_norm', 'fc3.weight'), ('grad_norm', 'fc3.weight'))
    """
    if tag.endswith("_epoch"):
        return None  # Lightning's per-epoch aggregate of a per-step value
    tag = tag[: -len("_step")] if tag.endswith("_step") else tag
    for pattern, quantity in _TB_TAGS:
        m = pattern.match(tag)
        if m:
            return (quantity, m.group("name")) if quantity else None
    return None


def read_tensorboard(path: "str | os.PathLike[str]") -> GradientLog:
    """Read per-layer scalars from a TensorBoard event directory (or file); needs ``tensorboard``."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        raise BackendUnavailableError(
            "reading TensorBoard logs needs tensorboard: pip install tensorboard (or pip install 'symvg[tensorboard]')"
        ) from None
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0})  # 0: keep every event, not a sample
    acc.Reload()
    tags = acc.Tags().get("scalars", [])
    values: dict[str, dict[str, dict[int, float]]] = {}
    for tag in tags:
        hit = match_tensorboard_tag(tag)
        if hit:
            quantity, name = hit
            series = values.setdefault(name, {}).setdefault(quantity, {})
            for ev in acc.Scalars(tag):
                series[int(ev.step)] = float(ev.value)  # a resumed run's later value wins
    names = [n for n in values if "grad_norm" in values[n]]
    if not names:
        seen = ", ".join(tags[:8]) + (", ..." if len(tags) > 8 else "") if tags else "none"
        raise InvalidValueError(f"{path}: no per-layer gradient-norm scalars (tags seen: {seen}); expected "
                                "grad_2.0_norm/<layer> (Lightning), grad_norm/<layer> or <layer>/grad_norm")
    if any(n.endswith("weight") for n in names):
        names = [n for n in names if n.endswith("weight")]
    records = []
    for name in names:
        q = values[name]
        for step, g in q["grad_norm"].items():
            records.append(Record(step, name, g, q.get("weight_norm", {}).get(step),
                                  q.get("near_zero_fraction", {}).get(step)))
    return GradientLog.from_records(records, str(path), {n: i for i, n in enumerate(names)})


def read_log(path: "str | os.PathLike[str]") -> GradientLog:
    """Read a ``.csv``, ``.json`` or TensorBoard directory/event file, chosen by what ``path`` is."""
    p = Path(path)
    if p.is_dir() or p.name.startswith("events.out.tfevents"):
        return read_tensorboard(p)
    if not p.exists():
        raise InvalidValueError(f"log {str(p)!r} does not exist")
    readers: dict[str, Callable[[Path], GradientLog]] = {".csv": read_csv, ".json": read_json}
    if p.suffix.lower() not in readers:
        raise InvalidValueError(f"log {str(p)!r}: unknown kind {p.suffix or '(no suffix)'!r}; "
                                "allowed: .csv, .json, or a TensorBoard directory")
    return readers[p.suffix.lower()](p)


def write_csv(records: Iterable[Record], path: "str | os.PathLike[str]") -> None:
    """Write records in the long CSV schema, atomically (the reverse of :func:`read_csv`)."""
    from .atomic import write_atomic

    rows = [",".join(CSV_COLUMNS[:6])]
    for r in records:
        cells = (r.step, r.layer, repr(float(r.grad_norm)), "" if r.weight_norm is None else repr(float(r.weight_norm)),
                 "" if r.near_zero_fraction is None else repr(float(r.near_zero_fraction)), r.activation or "")
        rows.append(",".join(map(str, cells)))
    write_atomic(path, "\n".join(rows) + "\n")


def collect_torch(model: Any, loss_fn: Callable[[Any, Any], Any], batch: Sequence[Any], *, step: int = 0,
                  activation: "str | Sequence[str | None] | None" = None, near_zero: float = NEAR_ZERO
                  ) -> tuple[Record, ...]:
    """One forward and backward pass of ``model`` on ``batch = (inputs, targets)``; a Record per weight.

    Reads ``param.grad`` of every parameter named ``*weight`` with two or more dimensions
    (linear and convolution weights, not normalisation scales), in ``named_parameters()``
    order, which is module order. The gradients stay in ``.grad`` for the optimiser's step.
    ``activation`` names the activation after each of those layers (one name for all).
    """
    try:
        import torch
    except ImportError:
        raise BackendUnavailableError("collect_torch needs PyTorch: pip install torch") from None
    inputs, targets = batch
    model.zero_grad(set_to_none=True)
    loss_fn(model(inputs), targets).backward()
    weights = [(n, p) for n, p in model.named_parameters() if n.endswith("weight") and p.dim() >= 2]
    acts = [activation] * len(weights) if activation is None or isinstance(activation, str) else list(activation)
    if len(acts) != len(weights):
        raise InvalidValueError(f"activation: got {len(acts)} names for {len(weights)} weight layers")
    out = []
    with torch.no_grad():
        for (name, p), act in zip(weights, acts):
            if p.grad is None:
                continue  # a frozen or unused layer has no gradient to report
            out.append(Record(step, name, float(p.grad.norm()), float(p.norm()),
                              float((p.abs() < near_zero).float().mean()), act))
    return tuple(out)


# ----------------------------------------------------------------------------- the diagnosis


@dataclass(frozen=True)
class LayerDiagnosis:
    """One layer: its mean gradient norm, that relative to the last layer, and its class."""

    index: int
    name: str
    mean_grad_norm: float
    relative_to_last: float
    weight_norm: float | None
    near_zero_fraction: float | None
    activation: str | None
    status: str  # "vanishing" | "exploding" | "healthy"


@dataclass(frozen=True)
class DecayFit:
    """Least squares of log(mean norm) on depth counted back from the output: factor = exp(slope)."""

    factor: float
    factor_se: float | None
    log_slope: float
    log_slope_se: float | None
    layers_used: int

    def __str__(self) -> str:
        se = f" ± {_g(self.factor_se)}" if self.factor_se is not None else ""
        return f"{_g(self.factor)}{se} per layer"


@dataclass(frozen=True)
class BoundComparison:
    """The measured factor against γ·|w| per layer (geometric means over the layers passed)."""

    activations: tuple[str, ...]
    gamma: Any  # exact SymPy number when one activation covers every layer, else None
    gamma_value: float
    weight_norm: float | None
    bound: float | None
    measured: float
    consistent: bool | None
    implied_weight_norm: float | None  # the |w| at which γ·|w| equals the measurement
    text: str


@dataclass(frozen=True)
class Remedy:
    """A fix that applies, and why."""

    key: str
    text: str


@dataclass(frozen=True)
class Diagnosis:
    """What a training log says about vanishing or exploding gradients (see the module docstring)."""

    source: str
    steps_used: tuple[int, ...]
    layers: tuple[LayerDiagnosis, ...]
    fit: DecayFit
    first_last_ratio: float
    status: str  # "vanishing" | "exploding" | "mixed" | "healthy"
    verdict: str
    bound: BoundComparison | None
    remedies: tuple[Remedy, ...]
    vanishing_below: float = VANISHING_BELOW
    exploding_above: float = EXPLODING_ABOVE

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON: floats that are not finite become None, SymPy numbers strings."""
        b = self.bound
        return {
            "source": self.source,
            "steps_used": {"count": len(self.steps_used), "first": self.steps_used[0], "last": self.steps_used[-1]},
            "status": self.status,
            "verdict": self.verdict,
            "thresholds": {"vanishing_below": self.vanishing_below, "exploding_above": self.exploding_above,
                           "relative_to": "last layer's mean gradient norm"},
            "fit": {"factor": _f(self.fit.factor), "factor_se": _f(self.fit.factor_se),
                    "log_slope": _f(self.fit.log_slope), "log_slope_se": _f(self.fit.log_slope_se),
                    "layers_used": self.fit.layers_used,
                    "direction": "per layer, from layer k+1 back to layer k"},
            "first_last_ratio": _f(self.first_last_ratio),
            "layers": [{"index": l.index, "name": l.name, "activation": l.activation,
                        "mean_grad_norm": _f(l.mean_grad_norm), "relative_to_last": _f(l.relative_to_last),
                        "weight_norm": _f(l.weight_norm), "near_zero_fraction": _f(l.near_zero_fraction),
                        "status": l.status} for l in self.layers],
            "bound": None if b is None else {
                "activations": list(b.activations), "gamma": None if b.gamma is None else str(b.gamma),
                "gamma_value": _f(b.gamma_value), "weight_norm": _f(b.weight_norm), "bound": _f(b.bound),
                "measured": _f(b.measured), "consistent": b.consistent,
                "implied_weight_norm": _f(b.implied_weight_norm), "text": b.text},
            "remedies": [{"key": r.key, "text": r.text} for r in self.remedies],
        }


def _f(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _g(x: float | None, digits: int = 2) -> str:
    """A short human number: 0.21, 3.2e-07, 1.5e+03."""
    if x is None:
        return "n/a"
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.{digits}g}" if abs(x) < 1 else f"{x:.{digits + 1}g}"
    return f"{x:.{digits - 1}e}"


def fit_decay(mean_norms: Sequence[float]) -> DecayFit:
    """Fit log(norm) on depth counted back from the last layer; factor = exp(slope) per layer.

    >>> f = fit_decay([0.2 ** 3, 0.2 ** 2, 0.2, 1.0])
    >>> round(f.factor, 6), round(f.factor_se, 6)
    (0.2, 0.0)
    >>> fit_decay([1.0, 1.0]).factor_se is None
    True
    """
    y = np.asarray(mean_norms, dtype=float)
    d = (len(y) - 1 - np.arange(len(y)))[y > 0].astype(float)  # depth back from the output layer
    logy = np.log(y[y > 0])
    n = len(d)
    if n < 2:
        raise InvalidValueError(f"need a nonzero mean gradient norm in at least 2 layers to fit a decay, got {n}")
    dc = d - d.mean()
    sxx = float(dc @ dc)
    slope = float(dc @ (logy - logy.mean())) / sxx
    se = None
    if n > 2:
        resid = logy - logy.mean() - slope * dc
        se = math.sqrt(float(resid @ resid) / (n - 2) / sxx)
    factor = math.exp(slope) if slope < 700 else math.inf
    return DecayFit(factor, None if se is None else factor * se, slope, se, n)


def _window_mean(values: Sequence[float | None], steps: Sequence[int], keep: set[int]) -> float | None:
    vals = [v for v, s in zip(values, steps) if s in keep and v is not None]
    return float(np.mean(vals)) if vals else None


def compare_bound(fit: DecayFit, acts: Sequence[activations.Activation | None],
                  weight_norms: Sequence[float | None]) -> BoundComparison | None:
    """γ_k·|w_{k+1}| for each layer the gradient passes back through (k = 0..N-2), against the fit.

    ``acts[k]`` is the activation after layer k, ``weight_norms[k]`` layer k's |w|; None when
    any passed layer's activation is unknown.

    >>> s = activations.get("sigmoid")
    >>> print(compare_bound(fit_decay([0.04, 0.2, 1.0]), [s, s, None], [None, None, None]).text)
    measured decay 0.2 per layer; sigmoid bound 1/4·|w| predicts ≤ 0.25·|w|; consistent if |w| ≥ 0.8
    """
    passed = list(acts[:-1])
    if not passed or any(a is None for a in passed):
        return None
    gammas = [a.gamma for a in passed]
    gamma_value = float(np.exp(np.mean([math.log(float(g)) if float(g) > 0 else -math.inf for g in gammas])))
    labels = tuple(dict.fromkeys(a.label for a in passed))
    single = len(set(gammas)) == 1
    gamma = gammas[0] if single else None
    who = labels[0] if len(labels) == 1 else "mixed (" + ", ".join(labels) + ")"
    g_txt = str(gamma) if single else f"{_g(gamma_value)} (geometric mean)"
    ws = list(weight_norms[1:])
    measured = fit.factor
    implied = measured / gamma_value if gamma_value > 0 else None
    head = f"measured decay {_g(measured)} per layer; {who} bound {g_txt}·|w| predicts ≤ "
    if ws and all(w is not None and w > 0 for w in ws):
        w = float(np.exp(np.mean(np.log(ws))))
        bound = gamma_value * w
        consistent = measured <= bound * (1 + 1e-9)
        text = head + f"{_g(bound)} (|w| = {_g(w)}, geometric mean of the logged weight norms)"
        if not consistent:
            text += "; above the bound: activation norms change across layers (see the module docstring)"
        return BoundComparison(labels, gamma, gamma_value, w, bound, measured, consistent, implied, text)
    text = head + f"{_g(gamma_value)}·|w|"
    if implied is not None:
        text += f"; consistent if |w| ≥ {_g(implied)}"
    return BoundComparison(labels, gamma, gamma_value, None, None, measured, None, implied, text)


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


def _remedies(status: str, layers: Sequence[LayerDiagnosis], acts: Sequence[activations.Activation | None]
              ) -> tuple[Remedy, ...]:
    keys: list[str] = []
    if status in ("vanishing", "mixed"):
        if any(a is None or a.name in _SATURATING for a in acts[:-1]):
            keys.append("relu")
        keys += ["residual", "normalisation", "init"]
    if status in ("exploding", "mixed"):
        keys += ["clipping", "init_explode", "normalisation"]
    known = [a for a in acts[:-1] if a is not None and a.name in _SATURATING]
    gamma = ", ".join(dict.fromkeys(f"{a.gamma} ({a.name})" for a in known)) or "γ < 1"
    out = [Remedy(k, REMEDIES[k].format(gamma=gamma)) for k in dict.fromkeys(keys)]
    dead = [l for l in layers if l.near_zero_fraction is not None and l.near_zero_fraction > DEAD_FRACTION]
    if dead:
        worst = max(dead, key=lambda l: l.near_zero_fraction or 0.0)
        out.append(Remedy("dead_units", REMEDIES["dead_units"].format(
            fraction=f"{worst.near_zero_fraction:.0%}", layer=worst.name)))
    return tuple(out)


def diagnose(log: GradientLog, activation: "str | Sequence[str] | None" = None, *, window: int | None = None,
             vanishing_below: float = VANISHING_BELOW, exploding_above: float = EXPLODING_ABOVE) -> Diagnosis:
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
    n = len(log.layers)
    if n < 2:
        raise InvalidValueError(f"{log.source}: {n} layer(s); need gradient norms for at least 2 layers")
    all_steps = log.steps
    used = all_steps[-window:] if window else all_steps
    keep = set(used)
    acts = _layer_activations(log, activation)
    means = []
    for layer in log.layers:
        m = _window_mean(layer.grad_norm, layer.steps, keep)
        if m is None:
            raise InvalidValueError(f"{log.source}: layer {layer.name!r} has no gradient norm in steps "
                                    f"{used[0]}..{used[-1]}; widen the window")
        means.append(m)
    last = means[-1]
    if last == 0:
        raise InvalidValueError(f"{log.source}: the last layer {log.layers[-1].name!r} has mean gradient norm 0; "
                                "nothing to compare the other layers with")
    layers = []
    for k, (layer, m, act) in enumerate(zip(log.layers, means, acts)):
        rel = m / last
        status = "vanishing" if rel < vanishing_below else "exploding" if rel > exploding_above else "healthy"
        layers.append(LayerDiagnosis(k, layer.name, m, rel, _window_mean(layer.weight_norm, layer.steps, keep),
                                     _window_mean(layer.near_zero_fraction, layer.steps, keep),
                                     act.label if act else layer.activation, status))
    fit = fit_decay(means)
    classes = {l.status for l in layers}
    status = ("mixed" if {"vanishing", "exploding"} <= classes else "vanishing" if "vanishing" in classes
              else "exploding" if "exploding" in classes else "healthy")
    bound = compare_bound(fit, acts, [l.weight_norm for l in layers])
    verdict = _verdict(status, layers, fit, vanishing_below, exploding_above)
    return Diagnosis(log.source, used, tuple(layers), fit, means[0] / last, status, verdict, bound,
                     _remedies(status, layers, acts), vanishing_below, exploding_above)


def _layer_activations(log: GradientLog, activation: "str | Sequence[str] | None"
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
    return [_activation(a, f"activation for layer {k}") if a else None for k, a in enumerate(names)]


def _verdict(status: str, layers: Sequence[LayerDiagnosis], fit: DecayFit, low: float, high: float) -> str:
    first = layers[0]
    rate = f"factor {fit} going back"
    if status == "vanishing":
        bad = sum(l.status == "vanishing" for l in layers)
        return (f"Vanishing gradients: the first layer's gradient is {_g(first.relative_to_last)}× the last layer's; "
                f"gradients shrink by a {rate} ({bad} of {len(layers)} layers below {low:g}× the last).")
    if status == "exploding":
        bad = sum(l.status == "exploding" for l in layers)
        return (f"Exploding gradients: the first layer's gradient is {_g(first.relative_to_last)}× the last layer's; "
                f"gradients grow by a {rate} ({bad} of {len(layers)} layers above {high:g}× the last).")
    if status == "mixed":
        return (f"Mixed: some layers' gradients are below {low:g}× the last layer's and some above {high:g}×; "
                f"the fitted {rate} hides that -- look at the layers one by one.")
    text = (f"Healthy: every layer's gradient is within {low:g}…{high:g}× the last layer's "
            f"(first/last = {_g(first.relative_to_last)}; {rate}).")
    lo_ci = fit.factor - 2 * (fit.factor_se or 0.0)
    hi_ci = fit.factor + 2 * (fit.factor_se or 0.0)
    if fit.factor_se is not None and (hi_ci < 1 or lo_ci > 1) and fit.factor > 0:
        limit, word = (low, "below") if fit.factor < 1 else (high, "above")
        depth = math.log(limit) / math.log(fit.factor)
        text += f" At this rate a network about {depth:.0f} layers deep would fall {word} {limit:g}×."
    return text


# ----------------------------------------------------------------------------- views


def _rows(d: Diagnosis) -> list[list[str]]:
    return [[str(l.index), l.name, l.activation or "-", _g(l.mean_grad_norm), _g(l.relative_to_last),
             _g(l.weight_norm) if l.weight_norm is not None else "-",
             f"{l.near_zero_fraction:.1%}" if l.near_zero_fraction is not None else "-", l.status]
            for l in d.layers]


_HEADER = ["k", "layer", "activation", "mean |g|", "× last", "|w|", "near 0", "status"]


def render_text(d: Diagnosis) -> str:
    """A plain-text report: verdict, the per-layer table, the fit, the bound, the remedies."""
    from .commands._io import table

    steps = d.steps_used
    lines = [f"symvg diagnose: {d.source} ({len(steps)} steps, {steps[0]}..{steps[-1]})", "",
             d.verdict, "", table(_rows(d), _HEADER), "",
             f"per-layer factor (back from the output): {d.fit} ({d.fit.layers_used} layers fitted)",
             f"first/last layer: {_g(d.first_last_ratio)}"]
    lines.append(f"bound: {d.bound.text}" if d.bound else "bound: give --activation to compare with γ·|w|")
    if d.remedies:
        lines += ["", "remedies:"] + [f"  - {r.text}" for r in d.remedies]
    return "\n".join(lines) + "\n"


def render_markdown(d: Diagnosis) -> str:
    """The same report as GitHub-flavoured Markdown."""
    from .commands._io import markdown_table

    steps = d.steps_used
    lines = [f"## Gradient diagnosis: `{d.source}`", "",
             f"**{d.status}** ({len(steps)} steps, {steps[0]}..{steps[-1]}). {d.verdict}", "",
             markdown_table(_rows(d), [h.replace("|", "\\|") for h in _HEADER]), "",
             f"- per-layer factor (back from the output): {d.fit} ({d.fit.layers_used} layers fitted)",
             f"- first/last layer: {_g(d.first_last_ratio)}",
             f"- bound: {d.bound.text}" if d.bound else "- bound: no activation given"]
    if d.remedies:
        lines += ["", "### Remedies", ""] + [f"- {r.text}" for r in d.remedies]
    return "\n".join(lines) + "\n"


PLOT_FORMATS = ("png", "pdf", "svg")


def plot(d: Diagnosis, path: "str | os.PathLike[str]") -> None:
    """Mean |grad| against layer on a log axis, with the fitted decay line; written atomically."""
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
    k = np.arange(len(d.layers))
    y = np.array([l.mean_grad_norm for l in d.layers])
    colours = {"vanishing": "tab:blue", "exploding": "tab:red", "healthy": "tab:green"}
    for status, c in colours.items():
        sel = np.array([l.status == status and l.mean_grad_norm > 0 for l in d.layers])
        if sel.any():
            ax.scatter(k[sel], y[sel], color=c, label=status, zorder=3)
    # the fitted line through the layers that were fitted: log y = a + slope·(N-1-k)
    pos = y > 0
    dd = (len(y) - 1 - k).astype(float)
    a = float(np.mean(np.log(y[pos]) - d.fit.log_slope * dd[pos]))
    ax.plot(k, np.exp(a + d.fit.log_slope * dd), "k--", label=f"fit: ×{_g(d.fit.factor)} per layer back")
    ax.set_yscale("log")
    ax.set_xticks(k, [l.name for l in d.layers], rotation=45 if len(d.layers) > 6 else 0, ha="right")
    ax.set_xlabel("layer (input → output)")
    ax.set_ylabel("mean gradient norm")
    ax.set_title(f"{d.status}: {Path(d.source).name}")
    ax.legend()
    write_atomic(path, lambda f: fig.savefig(f, format=fmt))


__all__ = [
    "Record", "LayerLog", "GradientLog", "LayerDiagnosis", "DecayFit", "BoundComparison", "Remedy", "Diagnosis",
    "read_csv", "read_json", "read_tensorboard", "read_log", "write_csv", "collect_torch", "match_tensorboard_tag",
    "fit_decay", "compare_bound", "diagnose", "render_text", "render_markdown", "plot",
    "VANISHING_BELOW", "EXPLODING_ABOVE", "REMEDIES",
]
