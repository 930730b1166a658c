"""What every command shares: ``--format``/``--output`` options and one way to emit a result."""

from __future__ import annotations

import json
from typing import Any, Callable

import click
import sympy as sp

from symvg import magnitude
from symvg.atomic import check_writable, write_atomic
from symvg.views.tables import markdown_table, table  # noqa: F401  (every command's tables)


def format_option(*choices: str, default: str | None = None) -> Callable:
    """``--format`` restricted to ``choices`` (the first is the default)."""
    return click.option("--format", "fmt", type=click.Choice(list(choices)), default=default or choices[0],
                        show_default=True, help="Output format.")


OUTPUT_PATH = click.Path(dir_okay=False, readable=False)
"""The type of every output path: click checks no readability (a mode-0200 file or ``/dev/stdout`` is a fine
output); :func:`symvg.atomic.target` decides how it is written or why not."""


def output_option(f: Callable) -> Callable:
    """``--output FILE``: a regular file is replaced atomically (temp file + rename), a device or FIFO written
    through; stdout when absent."""
    return click.option("--output", "-o", type=OUTPUT_PATH, default=None,
                        help="Write to FILE (atomically for a regular file) instead of stdout.")(f)


def precheck_output(output: str | None) -> None:
    """Refuse an unwritable ``--output`` before any work is done."""
    if output:
        check_writable(output)


def emit(text: str, output: str | None = None) -> None:
    """Print ``text`` or write it atomically to ``output``."""
    if not text.endswith("\n"):
        text += "\n"
    if output:
        write_atomic(output, text)
    else:
        click.echo(text, nl=False)


def _default(o: Any) -> Any:
    if isinstance(o, sp.Basic):
        return str(o)
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def to_json(obj: Any) -> str:
    """Stable JSON: two-space indent, SymPy objects as their SymPy-syntax strings, NaN refused."""
    return json.dumps(obj, indent=2, default=_default, allow_nan=False, ensure_ascii=False)


def approx(v: sp.Expr, width: int = 40) -> str:
    """``exact ≈ 6 digits`` for text output, of any magnitude; the exact part only when it is short
    (``--format json`` keeps it whole), so 1e-3495 is never shown as ≈ 0 nor 1e999 as inf.

    >>> approx(sp.Rational(1, 1024)), approx(sp.Pow(sp.Rational(1, 2), 10**4, evaluate=False))
    ('1/1024 ≈ 0.000976562', '(1/2)**10000 ≈ 5.01237e-3011')
    >>> approx(sp.Integer(10) ** 999)
    '≈ 1.0e+999'
    """
    value, exact = magnitude.sci(v), magnitude.short(v, width)
    if exact != value or (v.is_Rational and _fits(v, width)):   # the short text is the exact value
        return exact if exact == value else f"{exact} ≈ {value}"
    return f"≈ {value}"


def _fits(v: sp.Rational, width: int) -> bool:
    return abs(v.p).bit_length() + v.q.bit_length() <= 4 * width and len(str(v)) <= width
