"""What every command shares: ``--format``/``--output`` options and one way to emit a result."""

from __future__ import annotations

import json
from typing import Any, Callable, Sequence

import click
import sympy as sp

from .. import magnitude
from ..atomic import check_writable, write_atomic


def format_option(*choices: str, default: str | None = None) -> Callable:
    """``--format`` restricted to ``choices`` (the first is the default)."""
    return click.option("--format", "fmt", type=click.Choice(list(choices)), default=default or choices[0],
                        show_default=True, help="Output format.")


def output_option(f: Callable) -> Callable:
    """``--output FILE``: written atomically (temp file + rename); stdout when absent."""
    return click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
                        help="Write to FILE atomically instead of stdout.")(f)


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


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain aligned text table."""
    cells = [[str(h) for h in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A GitHub-flavoured Markdown table."""
    out = ["| " + " | ".join(map(str, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
