"""Training logs of per-layer gradient norms: the records, their readers and their writer.

The records and their checks live in :mod:`symvg.logs.records`, the CSV/JSON/TensorBoard readers in
:mod:`symvg.logs.readers` (TensorBoard event files are decoded by :mod:`symvg.logs.events`; :func:`read_log`
picks the reader), the CSV writer in :mod:`symvg.logs.writers`, PyTorch collection in
:mod:`symvg.logs.pytorch`. Every public name is importable from here.

A log holds, per layer and step, the norm of the layer's weight gradient and, where logged,
the norm of its bias gradient (that is δ_k itself), its weights' Frobenius and spectral norms,
the fraction of weights near zero, σw² = fan_in·Var W and σb² = Var b, and the activation
after the layer. Norms may be nan or inf: a run that diverged is diagnosed up to that point
(:mod:`symvg.diagnose`), so the readers keep those values instead of refusing them.

* **CSV, long form**, one row per (step, layer)::

      step,layer,grad_norm[,weight_norm][,bias_grad_norm][,spectral_norm][,sigma_w2][,sigma_b2]
          [,near_zero_fraction][,activation][,order]

  Common names map by themselves (``epoch``/``iteration``/``global_step`` → step, ``layer_name``/
  ``name``/``param`` → layer, ``gradient_norm``/``grad`` → grad_norm, ...), ``columns`` maps the
  rest, and any other column is ignored with a note. ``layer`` is an integer depth index (when
  every value is an integer) or a name; names follow the ``order`` column or first appearance.
* **CSV, wide form**: a step column and one column per layer (``step,dense_0,dense_1``), or
  Lightning's ``CSVLogger`` metrics with ``grad_2.0_norm/<param>`` columns (empty cells skipped).
* **JSON**: ``{"steps": [...], "layers": [{"name": ..., "grad_norm": [...], ...}]}``.

>>> from symvg.logs import read_log  # every public name, from here
"""

from __future__ import annotations

from symvg.logs.events import OPTIONAL
from symvg.logs.records import GradientLog, LayerLog, Record
from symvg.logs.readers import (ALIASES, CSV_COLUMNS, parse_columns, read_csv, read_json, read_log, read_tensorboard,
                                read_wide)
from symvg.logs.writers import write_csv

__all__ = ["Record", "LayerLog", "GradientLog", "read_csv", "read_json", "read_tensorboard", "read_wide", "read_log",
           "write_csv", "parse_columns", "CSV_COLUMNS", "ALIASES", "OPTIONAL"]
