"""Reading a gradient log: CSV (long or wide), JSON, TensorBoard; :func:`read_log` picks the reader.

The schemas are described in :mod:`symvg.logs`. Every cell is read by :func:`parse_norm` or
:func:`parse_int` (length-capped, never evaluated) and every record is checked by
:func:`symvg.logs.records.check_record`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from symvg.errors import InvalidValueError
from symvg.logs.events import OPTIONAL, Series, match_tag, tensorboard_series
from symvg.logs.records import MAX_CELL, GradientLog, Record, _show, check_norm, check_record


CSV_COLUMNS = ("step", "layer", "grad_norm") + OPTIONAL + ("activation", "order")
_REQUIRED = CSV_COLUMNS[:3]
ALIASES: dict[str, str] = {
    "epoch": "step", "iteration": "step", "iter": "step", "global_step": "step", "batch": "step",
    "layer_name": "layer", "name": "layer", "param": "layer", "parameter": "layer", "module": "layer",
    "gradient_norm": "grad_norm", "grad": "grad_norm", "grad_l2_norm": "grad_norm", "gradient": "grad_norm",
    "param_norm": "weight_norm", "w_norm": "weight_norm", "bias_grad": "bias_grad_norm",
}
"""Column names other loggers use (Keras-style ``epoch,layer_name,grad_norm``), mapped to the schema's."""


# ----------------------------------------------------------------------------- cells


_DECIMAL = re.compile(r"\s*[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|nan|inf|infinity)\s*", re.I)
"""What a norm cell may be: an ASCII decimal, nan or inf (what loggers write)."""


def parse_norm(text: str, where: str) -> float:
    """A CSV cell as a norm: a decimal number, or nan/inf (kept: the run diverged there).

    >>> parse_norm("1e308", "x"), parse_norm("nan", "x")
    (1e+308, nan)
    >>> parse_norm("1_000", "x")
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: x: '1_000' is not a number
    >>> parse_norm("1" * 500, "x")
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: x: '11111111111111111111111111111… (502 characters) is longer than 100 characters
    """
    if len(text) > MAX_CELL:
        raise InvalidValueError(f"{where}: {_show(text)} is longer than {MAX_CELL} characters")
    if not _DECIMAL.fullmatch(text):  # float() also reads '1_000' and non-ASCII digits ('１e-400' as 0)
        raise InvalidValueError(f"{where}: {text!r} is not a number")
    v = float(text)
    if math.isinf(v) and "inf" not in text.lower():
        raise InvalidValueError(f"{where}: {text!r} is beyond the float range (about 1.8e308)")
    if _underflows(text, v):
        raise InvalidValueError(f"{where}: {text!r} is below the float range (about 4.9e-324): it would read as 0")
    return v


def _underflows(text: str, v: float) -> bool:
    """A nonzero decimal that float() rounds to 0 (1e-400): a logged 0 is a dead gradient, this is not one.

    >>> _underflows("1e-400", 0.0), _underflows("0.0e-5", 0.0), _underflows("-0", -0.0)
    (True, False, False)
    """
    return v == 0 and any(c in "123456789" for c in text.lower().partition("e")[0])


def parse_int(text: str, where: str) -> int:
    """An integer cell of at most 18 digits."""
    if not re.fullmatch(r"\s*[+-]?[0-9]{1,18}\s*", text):
        raise InvalidValueError(f"{where}: {_show(text)} is not an integer (at most 18 digits)")
    return int(text)


def read_text(p: Path) -> str:
    """A file's text (UTF-8, a spreadsheet's byte-order mark dropped)."""
    try:
        return p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidValueError(f"{p}: not UTF-8 text (byte {e.start}); expected a CSV or JSON log") from None



# ----------------------------------------------------------------------------- CSV


def _csv_rows(p: Path) -> tuple[list[str], list[tuple[str, list[str]]]]:
    reader = csv.reader(io.StringIO(read_text(p), newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise InvalidValueError(f"{p}: empty file; expected a header line {','.join(_REQUIRED)}[,...]")
        header = [h.strip() for h in header]
        rows = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue  # blank line
            where = f"{p}: line {reader.line_num}"
            if len(cells) != len(header):
                raise InvalidValueError(f"{where}: expected {len(header)} fields, got {len(cells)}")
            rows.append((where, [c.strip() for c in cells]))
    except csv.Error as e:
        raise InvalidValueError(f"{p}: line {reader.line_num}: not readable as CSV ({e})") from None
    if not rows:
        raise InvalidValueError(f"{p}: no data rows after the header")
    return header, rows


def parse_columns(spec: "str | Mapping[str, str] | None") -> dict[str, str]:
    """``"step=epoch,layer=layer_name"`` (schema name = the file's name) as {file name: schema name}.

    >>> parse_columns("step=epoch, grad_norm=g")
    {'epoch': 'step', 'g': 'grad_norm'}
    """
    if spec is None:
        return {}
    pairs = spec.items() if isinstance(spec, Mapping) else [
        tuple(part.split("=", 1)) if "=" in part else (part, "") for part in spec.split(",") if part.strip()]
    out = {}
    for ours, theirs in pairs:
        ours, theirs = str(ours).strip(), str(theirs).strip()
        if ours not in CSV_COLUMNS or not theirs:
            raise InvalidValueError(f"columns: {ours}={theirs!r}: expected SCHEMA=FILE_COLUMN with SCHEMA one of "
                                    f"{', '.join(CSV_COLUMNS)}")
        out[theirs] = ours
    return out


def read_csv(path: "str | os.PathLike[str]", columns: "str | Mapping[str, str] | None" = None) -> GradientLog:
    """Read a long or wide CSV log (see the module docstring); ``columns`` maps the file's names.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "g.csv"
    >>> _ = p.write_text("epoch,layer_name,grad_norm,lr\\n0,fc1,0.5,0.1\\n0,fc2,1.0,0.1\\n")
    >>> log = read_csv(p)
    >>> [(l.name, l.grad_norm) for l in log.layers], log.notes
    ([('fc1', (0.5,)), ('fc2', (1.0,))], ("ignored column(s) 'lr' (not part of the schema)",))
    >>> _ = p.write_text("step,layer,grad_norm\\n0,fc1,lots\\n")
    >>> read_csv(p)
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: ...g.csv: line 2, column grad_norm: 'lots' is not a number
    """
    p = Path(path)
    header, rows = _csv_rows(p)
    mapping = {**ALIASES, **parse_columns(columns)}
    named = [h if h in CSV_COLUMNS else mapping.get(h, mapping.get(h.lower(), "")) for h in header]
    if "layer" not in named and "step" in named:
        return read_wide(p, header, named, rows)
    for schema in set(named) - {""}:
        if named.count(schema) > 1:
            raise InvalidValueError(f"{p}: two columns map to {schema!r}: "
                                    f"{', '.join(h for h, n in zip(header, named) if n == schema)}")
    missing = [c for c in _REQUIRED if c not in named]
    if missing:
        seen = ", ".join(repr(h[:40]) for h in header[:8]) + (", ..." if len(header) > 8 else "")
        raise InvalidValueError(f"{p}: missing column(s) {', '.join(missing)} (columns seen: {seen}); the header "
                                f"must include {','.join(_REQUIRED)}, or name yours: --columns {missing[0]}=NAME")
    ignored = [h for h, n in zip(header, named) if not n]
    notes = [f"ignored column(s) {', '.join(map(repr, ignored))} (not part of the schema)"] if ignored else []
    table = [(where, {n: c for n, c in zip(named, cells) if n}) for where, cells in rows]
    return _long_records(p, table, notes)


def _long_records(p: Path, rows: list[tuple[str, dict[str, str]]], notes: list[str]) -> GradientLog:
    for where, row in rows:
        if not row["layer"]:
            raise InvalidValueError(f"{where}, column layer: empty; need a layer index or name")
        if len(row["layer"]) > MAX_CELL:
            raise InvalidValueError(f"{where}, column layer: {_show(row['layer'])} is longer than {MAX_CELL} characters")
    integer_layers = all(re.fullmatch(r"[+-]?[0-9]{1,18}", row["layer"]) for _, row in rows)
    records, order, first_line = [], {}, {}
    for where, row in rows:
        opt = {q: parse_norm(row[q], f"{where}, column {q}") for q in OPTIONAL if row.get(q)}
        layer: int | str = int(row["layer"]) if integer_layers else row["layer"]
        rec = Record(parse_int(row["step"], f"{where}, column step"), layer,
                     parse_norm(row["grad_norm"], f"{where}, column grad_norm"),
                     activation=row.get("activation") or None, **opt)
        key = (rec.step, str(layer))
        if key in first_line:
            raise InvalidValueError(f"{where}: duplicate record for step {rec.step}, layer {str(layer)!r} "
                                    f"(first at {first_line[key].split(': ')[-1]})")
        first_line[key] = where
        check_record(rec, where, "column ")
        if "order" in row:
            o = parse_int(row["order"], f"{where}, column order")
            if order.setdefault(str(layer), o) != o:
                raise InvalidValueError(f"{where}, column order: layer {str(layer)!r} has order {order[str(layer)]} "
                                        f"on an earlier line and {o} here")
        records.append(rec)
    use_order = order if "order" in rows[0][1] and not integer_layers else None
    return GradientLog.from_records(records, str(p), use_order, notes)



# ----------------------------------------------------------------------------- JSON


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for k, v in pairs:
        if k in seen:
            raise InvalidValueError(f"duplicate key {_show(k)} in one object; each key may appear once")
        seen[k] = v
    return seen


def _json_number(text: str) -> "int | float":
    if len(text) > MAX_CELL:
        raise InvalidValueError(f"a number of {len(text)} characters is beyond the float range or its precision")
    v = float(text)
    if math.isinf(v):
        raise InvalidValueError(f"{text} is beyond the float range (about 1.8e308)")
    if _underflows(text, v):
        raise InvalidValueError(f"{text} is below the float range (about 4.9e-324): it would read as 0")
    return v if any(c in text for c in ".eE") else int(text)


def _load_json(p: Path) -> Any:
    text = read_text(p)
    if not text.strip():
        raise InvalidValueError(f"{p}: empty file; expected a JSON object with a 'layers' list")
    try:
        # NaN/Infinity stay strings here and are read as norms below (a diverged run)
        return json.loads(text, parse_constant=lambda c: c, object_pairs_hook=_no_duplicates,
                          parse_int=_json_number, parse_float=_json_number)
    except json.JSONDecodeError as e:
        raise InvalidValueError(f"{p}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except RecursionError:
        raise InvalidValueError(f"{p}: JSON nested too deeply; a log is an object of lists of numbers") from None
    except InvalidValueError as e:
        raise InvalidValueError(f"{p}: {e}") from None


def _json_norm(v: Any, where: str, fraction: bool) -> float | None:
    if v is None:
        return None
    if v in ("NaN", "Infinity") and not fraction:
        return float(v)
    if isinstance(v, str):
        raise InvalidValueError(f"{where}: {_show(v)} is not a number")
    return check_norm(v, where, fraction)


def read_json(path: "str | os.PathLike[str]") -> GradientLog:
    """Read the JSON schema (see the module docstring); duplicate keys are refused.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "g.json"
    >>> _ = p.write_text('{"layers": [{"name": "a", "grad_norm": [1, 2]}, {"name": "b", "grad_norm": [3, null]}]}')
    >>> [(l.name, l.steps) for l in read_json(p).layers]
    [('a', (0, 1)), ('b', (0,))]
    """
    p = Path(path)
    data = _load_json(p)
    if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
        raise InvalidValueError(f"{p}: expected a JSON object with a 'layers' list")
    unknown = set(data) - {"steps", "layers"}
    if unknown:
        raise InvalidValueError(f"{p}: unknown key(s) {', '.join(sorted(str(k)[:40] for k in unknown))}; allowed: steps, layers")
    steps = data.get("steps")
    records: list[Record] = []
    names: dict[str, int] = {}
    for i, layer in enumerate(data["layers"]):
        where = f"{p}: layers[{i}]"
        if not isinstance(layer, dict):
            raise InvalidValueError(f"{where}: expected an object with 'name' and 'grad_norm'")
        bad = set(layer) - {"name", "grad_norm", "activation", *OPTIONAL}
        if bad:
            raise InvalidValueError(f"{where}: unknown key(s) {', '.join(sorted(str(k)[:40] for k in bad))}; allowed: "
                                    f"name, grad_norm, activation, {', '.join(OPTIONAL)}")
        if "name" not in layer or "grad_norm" not in layer:
            raise InvalidValueError(f"{where}: missing {'name' if 'name' not in layer else 'grad_norm'}")
        name = layer["name"]
        if isinstance(name, bool) or not isinstance(name, (str, int)) or len(str(name)) > MAX_CELL:
            raise InvalidValueError(f"{where}.name: {_show(name)} is not a layer name (a string or an integer "
                                    f"of at most {MAX_CELL} characters)")
        if not isinstance(layer["grad_norm"], list):
            raise InvalidValueError(f"{where}.grad_norm: expected a list of numbers, got {_show(layer['grad_norm'])}")
        if steps is None:
            steps = list(range(len(layer["grad_norm"])))
        if not isinstance(steps, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in steps):
            raise InvalidValueError(f"{p}: steps must be a list of integers")
        names.setdefault(str(name), i)
        records += _json_layer(layer, str(name), steps, where)
    return GradientLog.from_records(records, str(p), names)


def _json_layer(layer: Mapping[str, Any], name: str, steps: list[int], where: str) -> list[Record]:
    series = {}
    for key in ("grad_norm", *OPTIONAL):
        v = layer.get(key)
        if v is None:
            continue
        if not isinstance(v, list) or len(v) != len(steps):
            raise InvalidValueError(f"{where}.{key}: expected a list of {len(steps)} numbers (one per step)")
        series[key] = [_json_norm(x, f"{where}.{key}[{t}]", key == "near_zero_fraction") for t, x in enumerate(v)]
    act = layer.get("activation")
    if act is not None and not isinstance(act, str):
        raise InvalidValueError(f"{where}.activation: expected a name such as 'sigmoid', got {_show(act)}")
    out = []
    for t, step in enumerate(steps):
        if series["grad_norm"][t] is not None:
            out.append(Record(step, name, series["grad_norm"][t], activation=act or None,
                              **{q: series[q][t] for q in OPTIONAL if q in series}))
    return out



# ----------------------------------------------------------------------------- tag-named series: TensorBoard, wide CSV


def _assemble(values: Series, source: str, notes: list[str],
              seen: Sequence[str]) -> GradientLog:
    """Per-parameter series to layers: ``x.bias`` joins ``x.weight`` as its bias gradient."""
    names = [n for n in values if "grad_norm" in values[n]]
    if not names:
        shown = ", ".join(seen[:8]) + (", ..." if len(seen) > 8 else "") if seen else "none"
        raise InvalidValueError(f"{source}: no per-layer gradient-norm scalars (tags seen: {shown}); expected "
                                "grad_2.0_norm/<layer> (Lightning), grad_norm/<layer> or <layer>/grad_norm")
    weights = [n for n in names if n.endswith("weight")]
    biases = {n[: -len("weight")] + "bias" for n in weights} & set(names)
    if weights:
        names = weights
    if biases:
        notes.append(f"bias gradients of {len(biases)} layer(s) read as each layer's bias_grad_norm (δ_k)")
    out = []
    for name in names:
        q = dict(values[name])
        bias = name[: -len("weight")] + "bias" if name.endswith("weight") else None
        if bias in biases:
            q["bias_grad_norm"] = values[bias]["grad_norm"]  # type: ignore[index]
        for step, g in q["grad_norm"].items():
            out.append(Record(step, name, g, **{k: q[k].get(step) for k in OPTIONAL if k in q}))
    return GradientLog.from_records(out, source, {n: i for i, n in enumerate(names)}, notes)


def read_tensorboard(path: "str | os.PathLike[str]", run: str | None = None) -> GradientLog:
    """Read per-layer scalars from a TensorBoard event file or directory (:mod:`symvg.logs.events`)."""
    source, values, notes, seen = tensorboard_series(path, run)
    return _assemble(values, source, notes, seen)


_NOT_LAYERS = re.compile(r"^(?:loss|lr|learning_rate|acc|accuracy|time|wall_?time|epoch|step|lr[-_/].*|"
                         r"(?:train|val|valid|validation|test)[_/].*|.*[_/](?:loss|acc|accuracy|lr))$", re.I)
"""Columns of a wide CSV that are not layers: metrics, Lightning's ``lr-Adam`` (LearningRateMonitor), and
any of them with Lightning's ``_step``/``_epoch`` suffix (:func:`_not_a_layer`)."""


def _not_a_layer(column: str) -> bool:
    """``loss_epoch``, ``lr-Adam`` and ``val_acc_step`` are metrics, not layers (they were read as layers).

    >>> [_not_a_layer(c) for c in ("loss_epoch", "lr-Adam", "val_acc_step", "fc1", "dense_0")]
    [True, True, True, False, False]
    """
    return bool(_NOT_LAYERS.match(re.sub(r"_(?:step|epoch)$", "", column)))


def read_wide(p: Path, header: list[str], named: list[str], rows: list[tuple[str, list[str]]]) -> GradientLog:
    """One column per layer (or per ``grad_<p>_norm/<param>`` tag, as Lightning's CSVLogger writes)."""
    step_col = header.index("step") if "step" in header else named.index("step")
    tags = {i: match_tag(h) for i, h in enumerate(header) if i != step_col}
    if not any(tags.values()):
        tags = {i: ("grad_norm", h) for i, h in enumerate(header) if i != step_col and not _not_a_layer(h)}
    used = {i for i, t in tags.items() if t}
    ignored = [h for i, h in enumerate(header) if i != step_col and i not in used]
    notes = [f"wide layout: {len(used)} layer column(s)"]
    if ignored:
        notes.append(f"ignored column(s) {', '.join(map(repr, ignored[:6]))}{', ...' if len(ignored) > 6 else ''}"
                     " (not per-layer)")
    values: dict[str, dict[str, dict[int, float]]] = {}
    for where, cells in rows:
        step = parse_int(cells[step_col], f"{where}, column {header[step_col]}") if cells[step_col] else None
        for i in sorted(used):
            if cells[i] and step is not None:  # Lightning leaves a metric's cell empty on other rows
                quantity, name = tags[i]  # type: ignore[misc]
                series = values.setdefault(name, {}).setdefault(quantity, {})
                if step in series:
                    raise InvalidValueError(f"{where}: duplicate value for step {step}, column {header[i]!r}")
                series[step] = parse_norm(cells[i], f"{where}, column {header[i]}")
    return _assemble(values, str(p), notes, [h for i, h in enumerate(header) if i != step_col])



# ----------------------------------------------------------------------------- dispatch


def read_log(path: "str | os.PathLike[str]", *, columns: "str | Mapping[str, str] | None" = None,
             run: str | None = None) -> GradientLog:
    """Read a ``.csv``, ``.json`` or TensorBoard directory/event file, chosen by what ``path`` is."""
    p = Path(path)
    tensorboard = p.is_dir() or p.name.startswith("events.out.tfevents")
    # an option that does not apply was dropped without a word (--run x on a CSV read the CSV)
    if run is not None and not tensorboard:
        raise InvalidValueError(f"--run chooses a run in a TensorBoard directory; {str(p)!r} is not one")
    if columns is not None and (tensorboard or p.suffix.lower() != ".csv"):
        raise InvalidValueError(f"--columns maps CSV column names; {str(p)!r} is not a .csv log")
    if tensorboard:
        return read_tensorboard(p, run=run)
    if not p.exists():
        raise InvalidValueError(f"log {str(p)!r} does not exist")
    if p.suffix.lower() == ".csv":
        return read_csv(p, columns)
    if p.suffix.lower() == ".json":
        return read_json(p)
    raise InvalidValueError(f"log {str(p)!r}: unknown kind {p.suffix or '(no suffix)'!r}; "
                            "allowed: .csv, .json, or a TensorBoard directory")


__all__ = ["CSV_COLUMNS", "ALIASES", "parse_norm", "parse_int", "read_text", "parse_columns", "read_csv",
           "read_json", "read_tensorboard", "read_wide", "read_log"]
