"""``symvg underflow`` and ``symvg update``: the dtype limits of :mod:`symvg.theory.floats`, on the command line."""

from __future__ import annotations

import re
from typing import Any, Sequence

import click

from symvg.theory import floats
from symvg.exact import to_rational
from symvg.cli._io import emit, format_option, output_option, precheck_output, to_json

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?(/\d+)?")

_DTYPE = click.Choice([*floats.DTYPES, "all"])


class GreedyListCommand(click.Command):
    """A command whose list options take every number that follows them: ``--factors 25 0.25 0.22``.

    Before click parses, ``--factors 25 0.25`` is rewritten to ``--factors 25 --factors 0.25`` (a
    ``multiple=True`` option), so the order of the factors is kept exactly as typed -- it matters,
    because a dtype rounds after every multiplication. Negative numbers count as numbers; the list
    ends at the first token that is not one (another option, ``--``).
    """

    greedy: tuple[str, ...] = ("--factors",)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, expand_greedy(args, self.greedy))


def expand_greedy(args: Sequence[str], greedy: Sequence[str]) -> list[str]:
    """``["--factors", "2", "3", "--lr", "1"]`` -> ``["--factors", "2", "--factors", "3", "--lr", "1"]``.

    >>> expand_greedy(["--factors", "25", "-0.5", "--dtype", "all"], ["--factors"])
    ['--factors', '25', '--factors', '-0.5', '--dtype', 'all']
    >>> expand_greedy(["--factors=2", "3/4", "x"], ["--factors"])
    ['--factors=2', '--factors', '3/4', 'x']
    """
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        out.append(a)
        i += 1
        if a == "--":
            out.extend(args[i:])
            break
        name = a.split("=", 1)[0]
        if name in greedy and (a != name or i < len(args)):
            if a == name:
                out.append(args[i])  # the first value is the option's own, whatever it looks like
                i += 1
            while i < len(args) and _NUMBER.fullmatch(args[i].strip()):
                out += [name, args[i]]
                i += 1
    return out


def _split_factors(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """Also accept one quoted, space- or comma-separated list: ``--factors "25 0.25 0.22"``."""
    return tuple(part for v in value for part in re.split(r"[\s,]+", v.strip()) if part)


@click.command("underflow")
@click.option("--factor", required=True, help="The factor γ in γ^N, 0 < γ < 1 (exact: 0.25, 1/4).")
@click.option("--dtype", type=_DTYPE, default="all", show_default=True, help="Floating-point type.")
@format_option("text", "json")
@output_option
def underflow_cmd(factor: str, dtype: str, fmt: str, output: str | None) -> None:
    """Depth N at which a product of N equal factors leaves the normal range and reaches 0.

    \b
    Example:
      symvg underflow --factor 0.25
      symvg underflow --factor 1/4 --dtype float16 --format json
    """
    precheck_output(output)
    results = floats.underflow_table(factor, dtype)
    if fmt == "json":
        emit(to_json([u.as_dict() for u in results]), output)
        return
    emit("\n\n".join(u.explain() for u in results), output)


@click.command("update", cls=GreedyListCommand)
@click.option("--weight", required=True, help="The weight w before the step.")
@click.option("--lr", required=True, help="The learning rate α.")
@click.option("--grad", default=None, help="The gradient g (or give --factors).")
@click.option("--factors", multiple=True, callback=_split_factors,
              help="The factors whose product is g, in backward-pass order: --factors 25 0.25 0.22")
@click.option("--dtype", type=_DTYPE, default="all", show_default=True, help="Floating-point type.")
@format_option("text", "json")
@output_option
def update_cmd(weight: str, lr: str, grad: str | None, factors: tuple[str, ...], dtype: str, fmt: str,
               output: str | None) -> None:
    """One SGD step w - α·g, exactly and in float16/32/64: is it lost to rounding?

    \b
    Example:
      symvg update --weight 0.25 --lr 0.01 --factors 25 0.25 0.22 0.20 0.15 0.10
      symvg update --weight 0.25 --lr 0.01 --grad 1.25 --dtype float16
    """
    if (grad is None) == (not factors):
        raise click.UsageError("give exactly one of --grad G or --factors F1 F2 ...")
    precheck_output(output)
    results = floats.update_table(weight, lr, grad, list(factors) if factors else None, dtype)
    if fmt == "json":
        emit(to_json([u.as_dict() for u in results]), output)
        return
    emit(_update_text(results, factors), output)


def _update_text(results: Sequence[floats.Update], factors: Sequence[str]) -> str:
    u = results[0]
    show = floats.exact_text
    g = " × ".join(show(to_rational(f)) for f in factors) + " = " if factors else ""
    head = (f"w = {show(u.weight)}, lr = {show(u.lr)}, g = {g}{show(u.gradient)}\n"
            f"exact: lr·g = {show(u.step)}, new weight w - lr·g = {show(u.new_weight_exact)}")
    return "\n\n".join([head, *(r.explain() for r in results)])


COMMANDS: list[Any] = [underflow_cmd, update_cmd]


__all__ = ["COMMANDS"]
