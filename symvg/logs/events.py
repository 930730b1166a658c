"""TensorBoard event files and tag-named tables, read without TensorBoard: records checked, runs found.

An event file is a sequence of TFRecords -- ``uint64 length, uint32 masked crc32c(length),
data, uint32 masked crc32c(data)`` -- each holding one ``Event`` protocol buffer. Every
checksum is verified, so a bit-flipped file is refused naming the file and the record, and a
truncated one is read up to its last complete record with a note saying so. Only the few
fields needed are decoded (step, summary value tag, scalar, tensor scalar, histogram), by a
small protobuf reader here: no tensorboard or TensorFlow install is needed.

It returns per-parameter series; :mod:`symvg.logs` turns them into a log. They come from scalar tags (:func:`match_tag`): ``grad_<p>_norm/<param>``
(PyTorch Lightning's ``grad_norm`` utility, also as ``CSVLogger`` columns), ``grad_norm/<layer>``,
``<layer>/grad_norm``, ``weight_norm/<layer>``, ``bias_grad_norm/<layer>``, ``spectral_norm/<layer>``,
``sigma_w2/<layer>``, ``sigma_b2/<layer>``, ``near_zero_fraction/<layer>``; a ``<p>.bias`` gradient
becomes the bias gradient of ``<p>.weight``. Histograms written by ``add_histogram`` of a gradient
(tags ``<param>/grad``, ``<param>_grad``, ``grad/<param>``) give the exact norm √(sum of squares).
TensorFlow 2 histograms (Keras' ``histogram_freq``) keep bucket counts only, and of weights, not
gradients: no norm can be recovered from them, and the note says so.

>>> masked_crc32c(b"")  # the empty string's crc32c is 0; masked: rotated and offset
2726488792
"""

from __future__ import annotations

import math
import os
import re
import struct
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

from symvg.errors import InvalidValueError

OPTIONAL = ("weight_norm", "near_zero_fraction", "bias_grad_norm", "spectral_norm", "sigma_w2", "sigma_b2")
"""Per-layer quantities a log may carry besides the weight-gradient norm (tags ``<quantity>/<layer>``)."""

Series = Dict[str, Dict[str, Dict[int, float]]]
"""{parameter: {quantity: {step: value}}}"""
TagSeries = Tuple[str, Series, List[str], List[str]]
"""(source, series, notes, tags seen)"""

def _tables() -> list[list[int]]:
    """Slicing-by-4 tables for crc32c (Castagnoli polynomial, reflected): four bytes per Python step."""
    t0 = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t0.append(c)
    tables = [t0]
    for _ in range(3):
        prev = tables[-1]
        tables.append([(prev[n] >> 8) ^ t0[prev[n] & 0xFF] for n in range(256)])
    return tables


_T0, _T1, _T2, _T3 = _tables()


def masked_crc32c(data: bytes) -> int:
    """TFRecord's checksum: crc32c rotated right by 15 bits plus 0xa282ead8 (mod 2^32)."""
    crc = 0xFFFFFFFF
    n4 = len(data) // 4 * 4
    t0, t1, t2, t3 = _T0, _T1, _T2, _T3
    for word in memoryview(data[:n4]).cast("I") if n4 else ():
        crc ^= word if _LITTLE else int.from_bytes(word.to_bytes(4, "big"), "little")
        crc = t3[crc & 0xFF] ^ t2[(crc >> 8) & 0xFF] ^ t1[(crc >> 16) & 0xFF] ^ t0[crc >> 24]
    for b in data[n4:]:
        crc = t0[(crc ^ b) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


_LITTLE = sys.byteorder == "little"


# ----------------------------------------------------------------------------- records and protobuf


def records(path: Path, notes: list[str]) -> Iterator[bytes]:
    """The data of each TFRecord in ``path``, checksums verified; truncation at the end is noted."""
    buf = path.read_bytes()
    pos, i = 0, 0
    while pos < len(buf):
        i += 1
        head = buf[pos:pos + 12]
        if len(head) < 12:
            _truncated(path, i, pos, notes)
            return
        (length,), (crc,) = struct.unpack("<Q", head[:8]), struct.unpack("<I", head[8:])
        if masked_crc32c(head[:8]) != crc:
            what = " (not a TensorBoard event file?)" if i == 1 else ""
            raise InvalidValueError(f"{path}: record {i} (byte {pos}): length checksum mismatch{what}; "
                                    "the file is corrupted")
        end = pos + 12 + length
        if end + 4 > len(buf):
            _truncated(path, i, pos, notes)
            return
        data = buf[pos + 12:end]
        if masked_crc32c(data) != struct.unpack("<I", buf[end:end + 4])[0]:
            raise InvalidValueError(f"{path}: record {i} (byte {pos}): data checksum mismatch; "
                                    "the file is corrupted")
        yield data
        pos = end + 4


def _truncated(path: Path, i: int, pos: int, notes: list[str]) -> None:
    if i == 1:
        raise InvalidValueError(f"{path}: no complete record ({pos + len(path.read_bytes()[pos:])} bytes); "
                                "not a TensorBoard event file")
    notes.append(f"{path.name}: truncated inside record {i} (byte {pos}); the {i - 1} complete records "
                 "before it were read")


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("bad varint")
        b = buf[pos]
        value |= (b & 0x7F) << shift
        pos += 1
        shift += 7
        if not b & 0x80:
            return value, pos


def fields(buf: bytes) -> Iterator[tuple[int, int, "int | bytes"]]:
    """(field number, wire type, value) of each field of a protobuf message; ValueError if malformed."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise ValueError(f"wire type {wire}")
        if pos > len(buf):
            raise ValueError("field runs past the end")
        yield number, wire, value


def _first(buf: bytes, number: int) -> "int | bytes | None":
    return next((v for n, _, v in fields(buf) if n == number), None)


def _tensor_scalar(t: bytes) -> float | None:
    """A float/double TensorProto holding one value, else None."""
    dtype, shape, content, floats, doubles = 0, b"", b"", [], []
    for n, wire, v in fields(t):
        if n == 1:
            dtype = int(v)  # type: ignore[arg-type]
        elif n == 2:
            shape = v  # type: ignore[assignment]
        elif n == 4:
            content = v  # type: ignore[assignment]
        elif n == 5:
            floats += struct.unpack(f"<{len(v) // 4}f", v) if wire == 2 else struct.unpack("<f", v)  # type: ignore
        elif n == 6:
            doubles += struct.unpack(f"<{len(v) // 8}d", v) if wire == 2 else struct.unpack("<d", v)  # type: ignore
    if shape and any(n == 2 for n, _, _ in fields(shape)):  # a dimension: not a scalar
        return None
    fmt = {1: "<f", 2: "<d"}.get(dtype)
    if fmt and len(content) == struct.calcsize(fmt):
        return struct.unpack(fmt, content)[0]
    values = floats if dtype == 1 else doubles if dtype == 2 else []
    return float(values[0]) if len(values) == 1 else None


def events(path: Path, notes: list[str]) -> Iterator[tuple[int, str, str, float | None]]:
    """(step, tag, kind, value) for each summary value: kind is scalar, grad_histogram or histogram."""
    for i, data in enumerate(records(path, notes), 1):
        try:
            if i == 1:
                version = _first(data, 3)
                if not isinstance(version, bytes) or not version.startswith(b"brain.Event"):
                    raise InvalidValueError(f"{path}: record 1 is not a TensorBoard file header; "
                                            "not a TensorBoard event file")
            step, summary = 0, None
            for n, _, v in fields(data):
                step = (v - (1 << 64) if v >= 1 << 63 else v) if n == 2 else step  # type: ignore[operator]
                summary = v if n == 5 else summary
            for n, _, value in fields(summary or b""):
                if n == 1:
                    yield (int(step),) + _summary_value(value)  # type: ignore[arg-type]
        except (ValueError, struct.error, UnicodeDecodeError) as e:
            if isinstance(e, InvalidValueError):
                raise
            raise InvalidValueError(f"{path}: record {i}: not a readable event ({e})") from None


def _summary_value(v: bytes) -> tuple[str, str, float | None]:
    tag, simple, histo, tensor, plugin = "", None, None, None, b""
    for n, _, x in fields(v):
        if n == 1:
            tag = x.decode("utf-8")  # type: ignore[union-attr]
        elif n == 2:
            simple = struct.unpack("<f", x)[0]  # type: ignore[arg-type]
        elif n == 5:
            histo = x
        elif n == 8:
            tensor = x
        elif n == 9:
            plugin = _first(_first(x, 1) or b"", 1) or b""  # type: ignore[arg-type]
    if simple is not None:
        return tag, "scalar", simple
    if histo is not None:
        sq = _first(histo, 5)  # type: ignore[arg-type]
        return tag, "grad_histogram", math.sqrt(struct.unpack("<d", sq)[0]) if isinstance(sq, bytes) else 0.0
    if tensor is not None and plugin != b"histograms":
        return tag, "scalar", _tensor_scalar(tensor)  # type: ignore[arg-type]
    return tag, "histogram" if plugin == b"histograms" else "other", None


# ----------------------------------------------------------------------------- tags


_TAGS = (  # (pattern, quantity); the first match wins
    (re.compile(r"^grad_(?:[0-9.]+|inf)_norm_total$"), None),  # Lightning's total over all parameters
    (re.compile(r"^grad_(?:[0-9.]+|inf)_norm[/_](?P<name>.+)$"), "grad_norm"),
    (re.compile(r"^grad_norm/(?P<name>.+)$"), "grad_norm"),
    (re.compile(r"^(?P<name>.+)/grad_norm$"), "grad_norm"),
    *((re.compile(rf"^{q}/(?P<name>.+)$"), q) for q in OPTIONAL),
)
_GRAD_HISTOGRAM = re.compile(r"^(?:grads?|gradients?)/(?P<a>.+)$|^(?P<b>.+?)(?:/grads?|/gradients?|_grad)$")


def match_tag(tag: str) -> tuple[str, str] | None:
    """(quantity, layer) for a per-layer scalar tag, or None for any other tag.

    >>> match_tag("grad_2.0_norm/layer1.weight"), match_tag("grad_2.0_norm_total"), match_tag("train_loss")
    (('grad_norm', 'layer1.weight'), None, None)
    >>> match_tag("fc3.weight/grad_norm"), match_tag("grad_norm/fc3.weight_step")
    (('grad_norm', 'fc3.weight'), ('grad_norm', 'fc3.weight'))
    >>> match_tag("train/grad_norm")  # Hugging Face Trainer's total norm

    """
    if tag.endswith("_epoch"):
        return None  # Lightning's per-epoch aggregate of a per-step value
    tag = tag[: -len("_step")] if tag.endswith("_step") else tag
    for pattern, quantity in _TAGS:
        m = pattern.match(tag)
        if m:
            if (m.groupdict().get("name") or "").lower() in _SPLITS:
                return None  # HF Trainer's train/grad_norm: the total over all parameters, not a layer 'train'
            return (quantity, m.group("name")) if quantity else None
    return None


_SPLITS = {"train", "training", "eval", "val", "valid", "validation", "test"}
"""Names of a data split, which a ``<split>/grad_norm`` tag puts where a layer name would be."""


# ----------------------------------------------------------------------------- event directories


def find_runs(root: Path, max_depth: int = 6) -> dict[str, list[Path]]:
    """Event files under ``root`` grouped by their directory (a run), relative to ``root`` ('.' for itself)."""
    if root.is_file():
        return {".": [root]}
    runs: dict[str, list[Path]] = {}
    base = len(root.parts)
    for here, dirs, files in os.walk(root):
        if len(Path(here).parts) - base >= max_depth:
            dirs[:] = []
        dirs.sort()
        found = sorted(Path(here) / f for f in files if f.startswith("events.out.tfevents"))
        if found:
            runs[str(Path(here).relative_to(root))] = found
    return runs


def tensorboard_series(path: "str | os.PathLike[str]", run: str | None = None) -> TagSeries:
    """Per-parameter series from a TensorBoard event file or directory; ``run`` picks a subfolder's run."""
    root = Path(path)
    runs = find_runs(root)
    if not runs:
        raise InvalidValueError(f"{root}: no TensorBoard event files (events.out.tfevents.*) in this directory "
                                "or its subfolders")
    if run is None and len(runs) > 1:
        raise InvalidValueError(f"{root}: {len(runs)} runs ({', '.join(list(runs)[:6])}"
                                f"{', ...' if len(runs) > 6 else ''}); choose one with --run NAME")
    key = run if run is not None else next(iter(runs))
    if key not in runs:
        raise InvalidValueError(f"{root}: no run {key!r}; runs: {', '.join(runs)}")
    source = str(root if key == "." else root / key)
    notes: list[str] = [f"run {key!r} of {len(runs)}"] if len(runs) > 1 else []
    values: dict[str, dict[str, dict[int, float]]] = {}
    seen: dict[str, None] = {}
    skipped: dict[str, None] = {}
    unnamed: dict[str, None] = {}
    owner: dict[tuple[str, str], tuple[str, str]] = {}  # (layer, quantity) -> (tag, kind) that gives it
    dropped: dict[str, str] = {}
    for file in runs[key]:  # in name order, which is time order: a resumed run's later value wins
        for step, tag, kind, value in events(file, notes):
            seen.setdefault(tag)
            hit = match_tag(tag) if kind == "scalar" else _histogram_tag(tag) if kind == "grad_histogram" else None
            if hit:
                if value is not None and _owns(owner, values, dropped, hit, tag, kind):
                    values.setdefault(hit[1], {}).setdefault(hit[0], {})[step] = float(value)
            elif kind == "histogram":
                skipped.setdefault(tag)
            elif kind == "grad_histogram":
                unnamed.setdefault(tag)
    if skipped:
        notes.append(f"{len(skipped)} TensorFlow histogram tag(s) ignored ({', '.join(list(skipped)[:3])}): "
                     "they keep bucket counts only, from which no norm can be recovered; log grad_norm scalars")
    if dropped:
        notes.append(f"{len(dropped)} tag(s) giving a quantity another tag already gives ignored ("
                     + ", ".join(f"{t} (kept {k})" for t, k in list(dropped.items())[:3]) + "): one tag per layer "
                     "and quantity, a scalar before a histogram")
    if unnamed:
        notes.append(f"{len(unnamed)} histogram tag(s) not named as a gradient ignored ({', '.join(list(unnamed)[:3])});"
                     " a gradient's histogram is read from <param>/grad, <param>_grad or grad/<param>")
    return source, values, notes, list(seen)


def _owns(owner: dict[tuple[str, str], tuple[str, str]], values: Series, dropped: dict[str, str],
          hit: tuple[str, str], tag: str, kind: str) -> bool:
    """Whether ``tag`` gives (quantity, layer) ``hit``: the first tag does, a scalar takes over from a histogram.

    A scalar grad_norm/fc1.weight and a histogram fc1.weight/grad both give fc1.weight's gradient norm; the
    later one silently overwrote the other, step by step, so the layer's series mixed two sources.
    """
    key = (hit[1], hit[0])
    first = owner.setdefault(key, (tag, kind))
    if first[0] == tag:
        return True
    if first[1] == "grad_histogram" and kind == "scalar":
        values.get(hit[1], {}).pop(hit[0], None)
        dropped[first[0]] = tag
        owner[key] = (tag, kind)
        return True
    dropped[tag] = first[0]
    return False


def _histogram_tag(tag: str) -> tuple[str, str] | None:
    m = _GRAD_HISTOGRAM.match(tag)
    return ("grad_norm", m.group("a") or m.group("b")) if m else None


__all__ = ["masked_crc32c", "records", "fields", "events", "match_tag", "find_runs", "tensorboard_series",
           "OPTIONAL"]
