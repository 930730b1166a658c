"""What every command shares: ``--format``/``--output`` options and one way to emit a result."""

from __future__ import annotations

import json
from typing import Any, Callable

import click
import sympy as sp

from symvg.atomic import check_writable, write_atomic
from symvg.views.tables import approx, markdown_table, table  # noqa: F401  (every command's tables and values)


def format_option(*choices: str, default: str | None = None) -> Callable:
    """``--format`` restricted to ``choices`` (the first is the default)."""
    return click.option("--format", "fmt", type=click.Choice(list(choices)), default=default or choices[0],
                        show_default=True, help="Output format.")


def seed_option(help: str | None = None) -> Callable:
    """``--seed``: a non-negative integer, 0 by default, the one way every random command takes its seed."""
    return click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help=help)


def width_option(most: int, default: int) -> Callable:
    """``--width``/``-n``: the layers' width n, from 1 to ``most``."""
    return click.option("--width", "-n", type=click.IntRange(1, most), default=default, show_default=True)


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
