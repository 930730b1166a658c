"""``symvg sweep``: the "how deep before it vanishes" table, depth N × activation of (γ|w|)^N."""

from __future__ import annotations

import sys
from typing import Iterable, Iterator, TypeVar

import click

from symvg.symbolic import bounds
from symvg.views import bounds as bviews
from symvg.symbolic.activations import get
from symvg.errors import InvalidValueError
from symvg.cli._io import emit, format_option, output_option, precheck_output

MAX_DEPTHS = 10_000
"""Most depths one sweep tabulates (the table is for reading; a typo like 1..10000000 is refused)."""

MAX_DEPTH = 100_000
"""Largest depth N accepted (the same guard as :data:`symvg.symbolic.chain.MAX_DEPTH`)."""

MAX_CELLS = 10_000
"""Most cells (depths × activations) one sweep computes: about 0.5-1 ms each, so it answers in seconds
(1..10000 for six activations took over a minute)."""

PROGRESS_CELLS = 2_000
"""Sweeps with more cells than this show a progress bar (on a terminal only)."""

T = TypeVar("T")


def parse_range(text: str) -> range:
    """``"A..B"`` or ``"A..B..STEP"`` (inclusive) as a range of depths; a single ``"N"`` is N..N.

    >>> parse_range("1..5"), parse_range("10..50..10"), parse_range("7")
    (range(1, 6), range(10, 51, 10), range(7, 8))
    >>> parse_range("5..1")
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: layers range '5..1' must have B >= A (got A=5, B=1); write A..B or A..B..STEP with 1 <= A <= B
    """
    parts = str(text).strip().split("..")
    shape = "write A..B or A..B..STEP with 1 <= A <= B"
    if not 1 <= len(parts) <= 3 or not all(p.strip().isdigit() for p in parts):
        raise InvalidValueError(f"layers range {text!r} is not of the form A..B or A..B..STEP (whole numbers); {shape}")
    nums = [int(p) for p in parts]
    a, b, step = nums[0], nums[1] if len(nums) > 1 else nums[0], nums[2] if len(nums) > 2 else 1
    if a < 1:
        raise InvalidValueError(f"layers range {text!r} must start at A >= 1 (got A={a}); {shape}")
    if b < a:
        raise InvalidValueError(f"layers range {text!r} must have B >= A (got A={a}, B={b}); {shape}")
    if b > MAX_DEPTH:
        raise InvalidValueError(f"layers range {text!r} goes beyond the largest depth {MAX_DEPTH}")
    if step < 1:
        raise InvalidValueError(f"layers range {text!r} must have STEP >= 1 (got {step})")
    r = range(a, b + 1, step)
    if len(r) > MAX_DEPTHS:
        raise InvalidValueError(f"layers range {text!r} has {len(r)} depths; at most {MAX_DEPTHS} (use a STEP: A..B..STEP)")
    return r


class DepthRange(click.ParamType):
    """``--layers A..B[..STEP]`` validated by :func:`parse_range` (the message names the bad value)."""

    name = "A..B[..STEP]"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> range:
        if isinstance(value, range):
            return value
        try:
            return parse_range(str(value))
        except InvalidValueError as e:
            self.fail(str(e), param, ctx)


def _activation_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise InvalidValueError(f"--activations needs at least one name, got {text!r}")
    return names


def _progress(items: Iterable[T], length: int) -> Iterator[T]:
    """Show click's progress bar on a terminal for long sweeps; plain iteration when piped."""
    if length > PROGRESS_CELLS and sys.stderr.isatty():
        with click.progressbar(items, length=length, label="sweeping", file=sys.stderr) as bar:
            yield from bar
    else:
        yield from items


@click.command()
@click.option("--layers", "-n", type=DepthRange(), default="1..50", show_default=True,
              help="Depths N: A..B or A..B..STEP (inclusive).")
@click.option("--activations", "-a", default="sigmoid,tanh,relu", show_default=True,
              help="Comma-separated activation names (see 'symvg activations').")
@click.option("--weight", "-w", default="1", show_default=True, help="Weight size |w| on every layer (exact: '0.5').")
@click.option("--tol", default="1e-6", show_default=True, help="The bound 'vanishes' below TOL (explodes above 1/TOL).")
@format_option("text", "markdown", "csv", "json")
@output_option
def sweep(layers: range, activations: str, weight: str, tol: str, fmt: str, output: str | None) -> None:
    """Tabulate the bound (γ|w|)^N over depths N for several activations, and the depth at which each vanishes.

    \b
    symvg sweep --layers 1..50 --activations sigmoid,tanh,relu
    symvg sweep --layers 10..100..10 --weight 2 --format markdown
    """
    precheck_output(output)
    acts = [get(n) for n in _activation_names(activations)]  # unknown names fail before any work
    cells = [(a, n) for a in acts for n in layers]
    if len(cells) > MAX_CELLS:
        raise click.BadParameter(f"{len(layers)} depths × {len(acts)} activations = {len(cells)} cells; at most "
                                 f"{MAX_CELLS} (use a STEP: A..B..STEP, or fewer activations)", param_hint="'--layers'")
    done = [bounds.depth_bound(a, weight, layers=n, tol=tol) for a, n in _progress(cells, len(cells))]
    columns = [done[i * len(layers):(i + 1) * len(layers)] for i in range(len(acts))]
    emit(bviews.render_sweep(columns, fmt), output)


COMMANDS = [sweep]


__all__ = ["COMMANDS"]
