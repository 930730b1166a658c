"""``symvg eval``: gradient magnitudes of random networks, every layer at once, streamed in chunks so memory does not
grow with --samples (see :mod:`symvg.engines.sampling`)."""

from __future__ import annotations

import math
import sys

import click
import numpy as np
import sympy as sp

from symvg.symbolic.activations import Activation
from symvg.symbolic.chain import Chain
from symvg.errors import InvalidValueError
from symvg.magnitude import short
from symvg.engines.numeric import BACKENDS, ENGINES
from symvg.engines.plan import DTYPES
from symvg.engines.sampling import DeadPaths, GradientStats, INITS, dead_paths, sample
from symvg.cli._io import emit, format_option, markdown_table, output_option, precheck_output, seed_option, table, to_json


class InitType(click.ParamType):
    """gaussian | xavier | he | MEAN,STD"""

    name = "init"

    def convert(self, value, param, ctx):  # type: ignore[override]
        if isinstance(value, tuple) or value in INITS:
            return value
        parts = str(value).split(",")
        try:
            mean, std = (float(p) for p in parts)
        except ValueError:
            self.fail(f"{value!r} is not one of {', '.join(INITS)} or MEAN,STD", param, ctx)
        for text, v in zip(parts, (mean, std)):
            if _underflowed(text, v):
                self.fail(f"{text.strip()!r} in {value!r} underflows float64 to 0 (the smallest normal float64 is "
                          f"{sys.float_info.min:.4g})", param, ctx)
        return (mean, std)


def _underflowed(text: str, v: float) -> bool:
    """``text`` names a nonzero number that float64 rounds to 0 (or to a subnormal, losing its digits)."""
    return abs(v) < sys.float_info.min and any(c in "123456789" for c in text.lower().split("e")[0])


class TolType(click.ParamType):
    """A tolerance: a finite float64 > 0 that the text really names (1e-400 is refused, not read as 0)."""

    name = "float"

    def convert(self, value, param, ctx):  # type: ignore[override]
        if isinstance(value, float):
            return value
        try:
            v = float(value)
        except ValueError:
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(v) or v <= 0 and not _underflowed(str(value), v):
            self.fail(f"{value!r} must be a finite number > 0", param, ctx)
        if _underflowed(str(value), v):
            self.fail(f"{value!r} is below float64's smallest normal number {sys.float_info.min:.4g}", param, ctx)
        return v


def check_constants(acts: tuple[Activation, ...]) -> None:
    """Refuse an activation whose numbers float64 cannot hold (expr:1e400*z): the engines evaluate in float64,
    where such a constant would become inf or 0 and change the function.

    >>> from symvg.symbolic.activations import get
    >>> check_constants((get("expr:1e400*z"),))
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: activation 'expr:1e400*z' has the constant 1.0e+400, beyond float64 (|x| <= 1.798e+308, nonzero |x| >= 2.225e-308); the numeric engines evaluate in float64
    """
    for act in dict.fromkeys(acts):
        for c in (act.expr.atoms(sp.Number) | act.derivative.atoms(sp.Number)):
            x = abs(sp.Float(c, 20)) if c.is_finite else None
            if x is not None and x != 0 and not (sys.float_info.min <= x <= sys.float_info.max):
                raise InvalidValueError(
                    f"activation {act.label!r} has the constant {short(c)}, beyond float64 (|x| <= "
                    f"{sys.float_info.max:.4g}, nonzero |x| >= {sys.float_info.min:.4g}); the numeric engines "
                    "evaluate in float64")


def _fmt(v: float | None, log: bool) -> str:
    if v is None or v != v or v in (float("inf"), float("-inf")):  # log10 of a layer whose every |g| is 0
        return "-"
    return f"{v:.2f}" if log else f"{v:.3e}"


def _frac(f: float) -> str:
    """A fraction to 3 places that never rounds to 0 or 1 unless it is 0 or 1: 9998 of 10000 below tol is not all.

    >>> _frac(0.0), _frac(0.9998), _frac(0.0002), _frac(0.25), _frac(1.0)
    ('0.000', '>0.999', '<0.001', '0.250', '1.000')
    """
    if 0 < f < 0.0005:
        return "<0.001"
    if 0.9995 <= f < 1:
        return ">0.999"
    return f"{f:.3f}"


def render_text(s: GradientStats, dead: DeadPaths | None = None, markdown: bool = False) -> str:
    """The per-layer table (a Markdown table with ``markdown``), and a plain sentence when a float result
    underflowed to zero or the quantiles are approximate."""
    log = s.log
    unit = "log10|g|" if log else "|g|"
    head = (f"dL/dw_k over {s.samples} random {'shared-weight inputs' if s.shared_weights else 'networks'}: "
            f"{s.chain}, depth {s.depth}, init {s.init}, {s.dtype} on {s.backend} ({s.engine})")
    rows = [(L.k, _fmt(L.median_abs, log), _fmt(L.mean_abs, log), _fmt(L.q05, log), _fmt(L.q95, log),
             _frac(L.frac_below_tol), L.zeros) for L in s.layers]
    header = ["k", f"median {unit}", f"mean {unit}", "q05", "q95", f"<{s.tol:g}", "zeros"]
    body = markdown_table(rows, [h.replace("|", "\\|") for h in header]) if markdown else table(rows, header)
    lines = [head, "", body]
    for note in (zeros_note(s), subnormal_note(s)):
        if note:
            lines += ["", f"note: {note}."]
    if s.resolution_note():
        lines += ["", f"note: {s.resolution_note()}."]
    if dead is not None:
        lines += ["", f"note: {dead.sentence()}"]
    return "\n".join(lines)


@click.command("eval")
@click.option("--layers", "-n", type=click.IntRange(1, 100_000), required=True, help="Depth N.")
@click.option("--activation", "-a", default="sigmoid", show_default=True, help="Activation name or expr:<z expr>.")
@click.option("--samples", "-m", type=click.IntRange(1), default=10_000, show_default=True, help="Samples M.")
@click.option("--init", type=InitType(), default="gaussian", show_default=True,
              help="Weights: gaussian (0,1), xavier, he, or MEAN,STD.")
@click.option("--loss", type=click.Choice(["mse", "bce"]), default="mse", show_default=True)
@click.option("--residual", is_flag=True, help="Skip connections h_k = h_{k-1} + φ(z_k).")
@click.option("--shared-weights", is_flag=True, help="One network for all samples (weights of shape (N,)).")
@click.option("--backend", type=click.Choice(list(BACKENDS)), default="numpy", show_default=True)
@click.option("--dtype", type=click.Choice(list(DTYPES)), default="float64", show_default=True)
@click.option("--engine", type=click.Choice(list(ENGINES)), default="auto", show_default=True,
              help="CPU engine: fused (numba, symvg[fast]; compiles 3-4 s first), chunked (NumPy), or auto "
                   "(fused only where that compile pays off in one run).")
@seed_option()
@click.option("--tol", type=TolType(), default=1e-8, show_default=True,
              help="Report the fraction of |g| below this.")
@click.option("--log-domain", is_flag=True, help="Accumulate log|g| so deep chains do not underflow to 0.")
@click.option("--chunk", type=click.IntRange(1), default=None,
              help="Samples per chunk (default: 32 MB of gradients, at least 1024). More samples than one chunk: "
                   "quantiles from histograms, to a stated resolution. The seed's draws depend on it.")
@format_option("text", "markdown", "json")
@output_option
def eval_cmd(layers, activation, samples, init, loss, residual, shared_weights, backend, dtype, engine, seed, tol,
             log_domain, chunk, fmt, output):
    """Sample random networks and report |dL/dw_k| for every layer k.

    \b
    symvg eval --layers 20 --samples 100000
    symvg eval --layers 600 --log-domain --format json
    """
    precheck_output(output)
    if not isinstance(init, (str, tuple)):
        raise InvalidValueError(f"bad init {init!r}")
    chain = Chain(layers, activation, loss=loss, residual=residual)
    check_constants(chain.activations)
    stats = sample(chain, samples=samples, init=init, seed=seed, backend=backend, dtype=dtype, tol=tol,
                   shared_weights=shared_weights, log=log_domain, engine=engine, chunk=chunk)
    dead = dead_paths(chain, init, stats)
    emit(to_json(json_data(stats, dead)) if fmt == "json" else render_text(stats, dead, fmt == "markdown"), output)


def zeros_note(s: GradientStats) -> str | None:
    """Why some |g| are exactly 0, saying only what is known: a direct run cannot tell an underflowed gradient from
    a true 0 (a factor exactly 0: a ReLU that is off, a weight of 0), the log domain can (it would report underflow).

    >>> from symvg.symbolic.chain import Chain
    >>> print(zeros_note(sample(Chain(2, "tanh"), samples=4, init=(0.0, 0.0), seed=0, log=True)))
    8 gradients are exactly 0 (layers 1, 2): a factor is exactly 0 (the log domain carries underflowed magnitudes); \
the log10 statistics are of the nonzero values, undefined (- or null) in layers 1, 2 where there are none
    """
    ks = tuple(L.k for L in s.layers if L.zeros)
    if not ks:
        return None
    where = f"(layers {', '.join(map(str, ks[:8]))}{', …' if len(ks) > 8 else ''})"
    total = sum(L.zeros for L in s.layers)
    if not s.log:
        return (f"{total} gradients are exactly 0 in {s.dtype} {where}: each underflowed, or has a factor that is "
                "exactly 0 (a ReLU that is off, a weight of 0); rerun with --log-domain to tell them apart (there an "
                "underflowed gradient keeps its magnitude, a true 0 stays 0)")
    empty = [L.k for L in s.layers if L.zeros == s.samples]
    none = (f", undefined (- or null) in layers {', '.join(map(str, empty[:8]))}{', …' if len(empty) > 8 else ''} "
            "where there are none") if empty else ""
    return (f"{total} gradients are exactly 0 {where}: a factor is exactly 0 (the log domain carries underflowed "
            f"magnitudes); the log10 statistics are of the nonzero values{none}")


def subnormal_note(s: GradientStats) -> str | None:
    """Where some |g| are subnormal, say that they and the statistics among them hold fewer digits than printed.

    >>> from symvg.symbolic.chain import Chain
    >>> print(subnormal_note(sample(Chain(4, "linear"), samples=4, init=(0.0, 1e-105), seed=0)))
    8 gradients are subnormal in float64 (layers 1, 2): 0 < |g| < 2.2e-308, where float64's spacing is 4.9e-324, \
so they, and a statistic among them, hold fewer digits than shown; --log-domain keeps their digits
    """
    ks = tuple(L.k for L in s.layers if L.subnormal)
    if not ks or s.log:
        return None
    fi = np.finfo(s.dtype)
    return (f"{sum(L.subnormal for L in s.layers)} gradients are subnormal in {s.dtype} (layers "
            f"{', '.join(map(str, ks[:8]))}{', …' if len(ks) > 8 else ''}): 0 < |g| < {float(fi.tiny):.2g}, where "
            f"{s.dtype}'s spacing is {float(fi.smallest_subnormal):.2g}, so they, and a statistic among them, hold fewer "
            "digits than shown; --log-domain keeps their digits")


def json_data(s: GradientStats, dead: DeadPaths | None = None) -> dict:
    """``as_dict`` plus, when some |g| are exactly 0, the layers and a note (as in the text view). A direct run cannot
    tell an underflowed 0 from a true one (a weight of exactly 0), so the layers are ``zero_layers``, not underflowed."""
    data = s.as_dict()
    if s.underflowed:
        data["zero_layers"] = list(s.underflowed)
    if zeros_note(s):
        data["note"] = zeros_note(s)
    if subnormal_note(s):
        data["subnormal_note"] = subnormal_note(s)
    if s.resolution_note():
        data["quantile_note"] = s.resolution_note()
    if dead is not None:
        data["dead_paths"] = dead.as_dict()
    return data


COMMANDS = [eval_cmd]


__all__ = ["COMMANDS", "subnormal_note", "zeros_note"]
