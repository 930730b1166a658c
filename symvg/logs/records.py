"""The records of a gradient log, and the one place a logged value is checked.

A :class:`Record` is one layer at one step; :class:`GradientLog` groups them into per-layer series in
depth order. Every reader (:mod:`symvg.logs.readers`, :mod:`symvg.logs.pytorch`) builds records and lets
:func:`check_record` validate them, so a value is checked the same way whatever file it came from.

>>> log = GradientLog.from_records([Record(0, "b", 1.0), Record(0, "a", float("nan"))])
>>> [l.name for l in log.layers], log.layers[1].grad_norm
(['b', 'a'], (nan,))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from symvg.symbolic import activations
from symvg.errors import InvalidValueError, SymvgInputError
from symvg.logs.events import OPTIONAL

MAX_CELL = 100
"""Longest cell or JSON string read: a name or number longer than this is refused, never parsed."""


@dataclass(frozen=True)
class Record:
    """One layer at one step: what a training loop logs (norms may be nan/inf where a run diverged)."""

    step: int
    layer: "int | str"
    grad_norm: float
    weight_norm: float | None = None
    near_zero_fraction: float | None = None
    activation: str | None = None
    bias_grad_norm: float | None = None
    spectral_norm: float | None = None
    sigma_w2: float | None = None
    sigma_b2: float | None = None


@dataclass(frozen=True)
class LayerLog:
    """One layer's series over steps (``None`` where an optional value was not logged)."""

    name: str
    steps: tuple[int, ...]
    grad_norm: tuple[float, ...]
    weight_norm: tuple[float | None, ...]
    near_zero_fraction: tuple[float | None, ...]
    activation: str | None = None
    bias_grad_norm: tuple[float | None, ...] = ()
    spectral_norm: tuple[float | None, ...] = ()
    sigma_w2: tuple[float | None, ...] = ()
    sigma_b2: tuple[float | None, ...] = ()

    def series(self, quantity: str) -> tuple[float | None, ...]:
        """The values of ``quantity`` (``grad_norm`` or one of :data:`OPTIONAL`), one per step."""
        values = getattr(self, quantity)
        return values if values else (None,) * len(self.steps)


@dataclass(frozen=True)
class GradientLog:
    """Per-layer series in depth order (first nearest the input), where they came from, and reading notes."""

    layers: tuple[LayerLog, ...]
    source: str = "<records>"
    notes: tuple[str, ...] = field(default=())

    @property
    def steps(self) -> tuple[int, ...]:
        """Every step that any layer logged, sorted."""
        return tuple(sorted({s for layer in self.layers for s in layer.steps}))

    @classmethod
    def from_records(cls, records: Iterable[Record], source: str = "<records>",
                     order: Mapping[str, int] | None = None, notes: Sequence[str] = ()) -> "GradientLog":
        """Group records by layer; integer layers sort numerically, names by ``order`` or first appearance.

        >>> GradientLog.from_records([Record(0, "a", -1.0)])
        Traceback (most recent call last):
        symvg.errors.InvalidValueError: <records>: record 1, grad_norm: -1.0 is negative; a norm must be >= 0
        """
        by_layer: dict[str, dict[int, Record]] = {}
        keys: dict[str, Any] = {}
        for i, r in enumerate(records, 1):
            where = f"{source}: record {i}"
            check_record(r, where)
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
        return cls(tuple(_layer_log(name, by_layer[name], source) for name in names), source, tuple(notes))


def _layer_log(name: str, by_step: Mapping[int, Record], source: str) -> LayerLog:
    rows = [by_step[s] for s in sorted(by_step)]
    acts = {r.activation for r in rows if r.activation}
    if len(acts) > 1:
        raise InvalidValueError(f"{source}: layer {name!r} has activations {', '.join(sorted(acts))}; it must have one")
    opt = {q: tuple(getattr(r, q) for r in rows) for q in OPTIONAL}
    return LayerLog(name, tuple(r.step for r in rows), tuple(r.grad_norm for r in rows),
                    activation=acts.pop() if acts else None, **opt)


def check_record(r: Record, where: str, col: str = "") -> None:
    """The one place a logged value is validated; ``col`` prefixes field names ("column " for CSV)."""
    if isinstance(r.step, bool) or not isinstance(r.step, int) or abs(r.step) >= 10**18:
        raise InvalidValueError(f"{where}, {col}step: {_show(r.step)} is not an integer below 1e18")
    if isinstance(r.layer, bool) or not isinstance(r.layer, (int, str)) or len(str(r.layer)) > MAX_CELL:
        raise InvalidValueError(f"{where}, {col}layer: {_show(r.layer)} is not a layer index or a name "
                                f"of at most {MAX_CELL} characters")
    if isinstance(r.layer, str) and any(ord(c) < 32 or 127 <= ord(c) < 160 for c in r.layer):
        # a line break in a name split the text and Markdown tables of every report
        raise InvalidValueError(f"{where}, {col}layer: {_show(r.layer)} holds a control character (a line break "
                                "or tab); a layer name is one line")
    check_norm(r.grad_norm, f"{where}, {col}grad_norm")
    for q in OPTIONAL:
        v = getattr(r, q)
        if v is not None:
            check_norm(v, f"{where}, {col}{q}", fraction=q == "near_zero_fraction")
    if r.activation:
        activation(r.activation, f"{where}, {col}activation")


def check_norm(value: Any, where: str, fraction: bool = False) -> float:
    """A norm is a number >= 0, nan or +inf (a diverged run); a fraction lies in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValueError(f"{where}: {_show(value)} is not a number")
    if isinstance(value, int) and abs(value) >= 10**300:
        raise InvalidValueError(f"{where}: an integer of {len(str(abs(value)))} digits is beyond the float range")
    if value < 0:
        allowed = "a fraction lies in [0, 1]" if fraction else "a norm must be >= 0"
        raise InvalidValueError(f"{where}: {value!r} is negative; {allowed}")
    if fraction and not 0 <= value <= 1:
        raise InvalidValueError(f"{where}: {value!r} is not in [0, 1]; a fraction lies in [0, 1]")
    return float(value)


def activation(name: str, where: str) -> activations.Activation:
    """The catalogue activation ``name``, with ``where`` in front of any error."""
    try:
        return activations.get(name)
    except SymvgInputError as e:
        raise type(e)(f"{where}: {e}") from None


def _show(value: Any) -> str:
    """``repr`` cut to a readable length: a 5000-digit cell is named, not printed."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}… ({len(text)} characters)"



__all__ = ["MAX_CELL", "Record", "LayerLog", "GradientLog", "check_record", "check_norm", "activation"]
