"""Writing a gradient log: the long CSV schema that :func:`symvg.logs.readers.read_csv` reads back."""

from __future__ import annotations

import csv
import io
import os
from typing import Iterable

from symvg.logs.events import OPTIONAL
from symvg.logs.records import Record


def write_csv(records: Iterable[Record], path: "str | os.PathLike[str]") -> None:
    """Write records in the long CSV schema, atomically (the reverse of :func:`read_csv`)."""
    from symvg.atomic import write_atomic

    cols = ("step", "layer", "grad_norm") + OPTIONAL + ("activation",)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")  # quotes a name holding a comma or a quote ('fc,1' split a row)
    writer.writerow(cols)
    for r in records:
        cells = [str(r.step), str(r.layer), repr(float(r.grad_norm))]
        cells += ["" if getattr(r, q) is None else repr(float(getattr(r, q))) for q in OPTIONAL]
        writer.writerow(cells + [r.activation or ""])
    write_atomic(path, out.getvalue())



__all__ = ["write_csv"]
