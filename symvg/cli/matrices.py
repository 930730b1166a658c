"""``symvg spectrum``, ``symvg rnn``, ``symvg clip``: real layers are matrices."""

from __future__ import annotations

import math

import click

from symvg.theory import clipping
from symvg.theory import matrices as mx
from symvg.theory import rnn as rnn_mod
from symvg.theory import skipbn
from symvg.theory import spectrum as spec
from symvg.errors import InvalidValueError
from symvg.engines.sampling import available_memory
from symvg.cli._io import (emit, format_option, markdown_table, output_option, precheck_output, seed_option, table, to_json,
                           width_option)


def _depths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise InvalidValueError(f"--at must be comma-separated depths such as 1,10,50, got {text!r}") from None


def _check_memory(width: int, samples: int) -> None:
    need = 8 * samples * width * width * 6  # J, a weight batch, the QR/SVD workspaces
    have = available_memory()
    if have is not None and need > have:
        raise InvalidValueError(f"--width {width} --samples {samples} needs about {need // 10**6} MB but only "
                                f"{have // 10**6} MB are available; lower --samples or --width")


@click.command("spectrum")
@click.option("--activation", "-a", default="tanh", show_default=True, help="Catalogue name (e.g. tanh, relu).")
@width_option(spec.MAX_WIDTH, 256)
@click.option("--depth", "-L", type=click.IntRange(1, spec.MAX_DEPTH), default=50, show_default=True)
@click.option("--init", type=click.Choice(spec.INITS), default="orthogonal", show_default=True)
@click.option("--sigma-w2", "sigma_w2", default=None, help="σw² (default: the critical value, χ1 = 1).")
@click.option("--sigma-b2", "sigma_b2", default="0", show_default=True, help="σb².")
@click.option("--samples", type=click.IntRange(1, spec.MAX_SAMPLES), default=1, show_default=True,
              help="Independent random networks (≥ 2 for standard errors).")
@seed_option()
@click.option("--at", "at", default="", help="Also record the spectrum at these depths, e.g. 1,10,25.")
@click.option("--backend", type=click.Choice(["numpy", "cupy"]), default="numpy", show_default=True)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Write histograms of log10 σ per recorded depth to this image (atomically).")
@format_option("text", "json", "markdown")
@output_option
def spectrum(activation: str, width: int, depth: int, init: str, sigma_w2: str | None, sigma_b2: str, samples: int,
             seed: int, at: str, backend: str, plot_path: str | None, fmt: str, output: str | None) -> None:
    """Singular values of J = D_L W_L ⋯ D_1 W_1 at initialisation, beside the theory.

    \b
      symvg spectrum -a tanh --width 256 --depth 50 --init orthogonal --sigma-b2 0.01
      symvg spectrum -a tanh --init gaussian --sigma-b2 0.01 --samples 4 --at 5,20
      symvg spectrum -a linear --init gaussian --sigma-w2 1 --depth 10 --samples 8
    """
    from symvg.theory import meanfield as mf
    from symvg.views import plot as plots

    precheck_output(output)
    if plot_path:
        plots.format_for(plot_path)
        precheck_output(plot_path)
    _check_memory(width, samples)
    if sigma_w2 is None:
        cp = mf.critical_sigma_w2(activation, sigma_b2)
        sigma_w2 = str(cp.sigma_w2) if cp.exact else repr(float(cp.sigma_w2))
    r = spec.spectrum(activation, width=width, depth=depth, init=init, sigma_w2=sigma_w2, sigma_b2=sigma_b2,
                      samples=samples, seed=seed, at=_depths(at), backend=backend)
    if plot_path:
        plots.save(spec.plot_histograms(r), plot_path)
    text = {"json": lambda: to_json(r.as_dict()), "markdown": r._repr_markdown_}.get(fmt, lambda: str(r))
    emit(text(), output)


def _vector(text: str, what: str) -> list[str]:
    parts = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise InvalidValueError(f"{what} must be comma-separated numbers such as 30,40, got {text!r}")
    return parts


@click.command("rnn")
@click.option("--steps", "-T", type=click.IntRange(1, rnn_mod.MAX_STEPS), default=100, show_default=True)
@click.option("--activation", "-a", default="tanh", show_default=True, help="Catalogue name.")
@click.option("--spectral-radius", "spectral_radius", type=click.FloatRange(0, 1e6), default=1.0, show_default=True,
              help="ρ(W), the largest |eigenvalue| of the recurrent matrix.")
@width_option(rnn_mod.MAX_WIDTH, 64)
@click.option("--init", type=click.Choice(rnn_mod.INITS), default="gaussian", show_default=True)
@click.option("--input-scale", type=click.FloatRange(0, 1e6), default=1.0, show_default=True,
              help="Scale of U x_s (U entries N(0, scale²/n), x_s ~ N(0, I)).")
@click.option("--forget", "-f", default="0.9", show_default=True, help="LSTM forget gate for the comparison.")
@seed_option()
@format_option("text", "json", "markdown")
@output_option
def rnn(steps: int, activation: str, spectral_radius: float, width: int, init: str, input_scale: float, forget: str,
        seed: int, fmt: str, output: str | None) -> None:
    """h_s = φ(W h_(s-1) + U x_s): ∂h_T/∂h_0 = ∏ D_s W derived, bounded (Pascanu et al. 2013) and simulated.

    \b
      symvg rnn --steps 100 --activation tanh --spectral-radius 0.9
      symvg rnn --steps 50 --activation linear --init orthogonal --spectral-radius 1.1 --format json
    """
    precheck_output(output)
    d = rnn_mod.derive_rnn(steps, 0, width)
    sim = rnn_mod.simulate_rnn(activation, width, steps, spectral_radius, init, input_scale, seed)
    cond = rnn_mod.pmb_condition(activation, repr(sim.sigma_max), rnn_mod.sigma_max_error(width))
    cmp = rnn_mod.compare_lstm(steps, sim.sigma_max, activation, forget)
    if fmt == "json":
        emit(to_json({"derivation": d.as_dict(), "condition": cond.as_dict(), "simulation": sim.as_dict(),
                      "lstm": cmp.as_dict()}), output)
        return
    lines = [str(d), f"bound: ‖dh{steps}/dh0‖₂ <= (γ·σ_max(W))^{steps}", str(cond), str(sim),
             f"LSTM cell path (forget f = {cmp.forget}): log10 f^{steps} = {cmp.log10_cell:.4g} against the RNN "
             f"bound's {cmp.log10_rnn:.4g}; the cell path keeps more whenever f > γ·σ_max"]
    emit("\n\n".join(lines) if fmt == "markdown" else "\n".join(lines), output)


@click.command("clip")
@click.option("--gradient", "-g", required=True, help="The gradient, comma-separated (e.g. 30,40).")
@click.option("--threshold", "-t", required=True, help="Clipping threshold τ > 0 on the norm.")
@click.option("--direction", "-d", default=None, help="A direction u (e.g. the exploding one) to report the step along.")
@format_option("text", "json", "markdown")
@output_option
def clip(gradient: str, threshold: str, direction: str | None, fmt: str, output: str | None) -> None:
    """Gradient clipping by norm, exactly: ĝ = g·min(1, τ/‖g‖).

    \b
      symvg clip --gradient 30,40 --threshold 5 --direction 1,0
    """
    precheck_output(output)
    c = clipping.clip_by_norm(_vector(gradient, "--gradient"), threshold,
                              None if direction is None else _vector(direction, "--direction"))
    if fmt == "json":
        emit(to_json(c.as_dict()), output)
    else:
        emit(str(c).replace("\n", "\n\n") if fmt == "markdown" else str(c), output)


MAX_CHECK_WORK = 10**9
"""Largest Σ n_(j-1)·n_j·min(n_(j-1), n_j) for vector --check: 2·1024³ took 20 s on a loaded 2-core machine."""


def _random_check(d: mx.VectorDerivation, activation: str, sigma_w2: float,
                  seed: int) -> tuple[mx.Backprop, mx.NormBounds]:
    import math

    import numpy as np

    work = sum(a * b * min(a, b) for a, b in zip(d.widths, d.widths[1:]))   # one SVD per layer for the bounds
    if work > MAX_CHECK_WORK:
        raise InvalidValueError(f"--check takes one SVD per layer: Σ n_(j-1)·n_j·min = {work:.3g} exceeds "
                                f"{MAX_CHECK_WORK:.0e} (seconds); lower the widths or drop --check")
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal((b, a)) * math.sqrt(sigma_w2 / a) for a, b in zip(d.widths, d.widths[1:])]
    bp = mx.backprop(ws, None, rng.standard_normal(d.widths[0]), rng.standard_normal(d.widths[-1]), activation)
    return bp, mx.norm_bounds(ws, activation, float(np.linalg.norm(bp.deltas[-1])))


@click.command("vector")
@click.option("--widths", "-w", default="3,4,4,2", show_default=True, help="n0,n1,…,nN: input width, then each layer.")
@click.option("--activation", "-a", default="tanh", show_default=True, help="Catalogue name.")
@click.option("--wrt", "-k", type=int, default=1, show_default=True, help="The layer k of ∂L/∂W_k.")
@click.option("--check", is_flag=True, help="Also draw a random network and check the norm bounds on every ‖δ_k‖.")
@click.option("--sigma-w2", "sigma_w2", type=click.FloatRange(0, 1e6), default=1.0, show_default=True,
              help="--check: weight variance × fan_in.")
@seed_option("--check: random seed.")
@format_option("text", "json", "markdown", "latex")
@output_option
def vector(widths: str, activation: str, wrt: int, check: bool, sigma_w2: float, seed: int, fmt: str,
           output: str | None) -> None:
    """The vector chain rule: δ_k = W_(k+1)ᵀ D_(k+1) δ_(k+1), ∂L/∂W_k = D_k δ_k h_(k-1)ᵀ, factor by factor.

    \b
      symvg vector --widths 3,4,4,2 --activation tanh --wrt 1
      symvg vector --widths 8,8,8,8 -a leaky_relu:0.1 --check --format json
    """
    precheck_output(output)
    try:
        ws = tuple(int(t) for t in _vector(widths, "--widths"))
    except ValueError:
        raise InvalidValueError(f"--widths must be comma-separated integers such as 3,4,2, got {widths!r}") from None
    if check and fmt == "latex":  # the LaTeX view is the derivation alone: the check would be dropped silently
        raise InvalidValueError("--check prints a table of ‖δ_k‖ between its bounds, which --format latex does not "
                                "hold; use --format text, markdown or json with --check")
    d = mx.derive_vector(ws, activation, wrt)
    bp, nb = _random_check(d, activation, sigma_w2, seed) if check else (None, None)
    if fmt == "json":
        data = d.as_dict()
        if bp is not None:
            data["check"] = {"backprop": bp.as_dict(), "bounds": nb.as_dict(),
                             "holds": nb.holds(bp.as_dict()["delta_norms"])}
            if _zero_note(bp.as_dict()["delta_norms"]):
                data["check"]["note"] = _zero_note(bp.as_dict()["delta_norms"])
        emit(to_json(data), output)
        return
    if fmt == "latex":
        emit(d.latex(), output)
        return
    text = str(d) if fmt == "text" else "```\n" + str(d) + "\n```\n\n$$" + d.latex() + "$$"
    if bp is not None:
        norms = bp.as_dict()["delta_norms"]
        rows = [[k, _pow10(lo), f"{v:.4g}", _pow10(up)]
                for k, (lo, v, up) in enumerate(zip(nb.lower, norms, nb.upper))]
        tab = (markdown_table if fmt == "markdown" else table)(rows, ["k", "lower", "‖δ_k‖", "upper"])
        gap = "\n\n" if fmt == "markdown" else "\n"  # a Markdown table needs blank lines around it
        text += (f"\n\nrandom network (σw² = {sigma_w2:g}, seed {seed}): {nb}{gap}" + tab
                 + f"{gap}bounds {'hold' if nb.holds(norms) else 'VIOLATED'} at every layer"
                 + (f"{gap}note: {_zero_note(norms)}" if _zero_note(norms) else ""))
    emit(text, output)


def _zero_note(norms: list[float]) -> str:
    """Why a ‖δ_k‖ printed 0 may not be 0: a float64 0 is said, never read as the value."""
    zeros = [k for k, v in enumerate(norms) if v == 0]
    if not zeros:
        return ""
    return (f"‖δ_k‖ is 0 in float64 for k <= {zeros[-1]}" if zeros == list(range(zeros[-1] + 1)) else
            f"‖δ_k‖ is 0 in float64 at k = {', '.join(map(str, zeros))}") + (
        ": a weight matrix is 0, or some φ'(z) is 0 in float64 (an exact 0, as ReLU's for z <= 0, or an underflow: "
        "tanh'(z) rounds to 0 beyond |z| ≈ 19), so the true norm may be tiny, not 0")


def _pow10(lg: float) -> str:
    """A bound from its log10: 10^x itself in float64's range, else '10^x' (10 ** 400.0 raised OverflowError;
    a lower bound of 1e-400 was printed as 0)."""
    if lg == -math.inf:
        return "0"
    return f"{10 ** lg:.4g}" if -300 < lg < 300 else f"10^{lg:.6g}"


@click.command("skip")
@click.option("--depth", "-N", type=click.IntRange(1, 1000), default=6, show_default=True, help="Layers N.")
@click.option("--length", "-t", type=click.IntRange(min=1), default=2, show_default=True,
              help="Skip length t: layer k−t feeds layer k (t = 1: the residual chain).")
@click.option("--activation", "-a", default="tanh", show_default=True, help="Catalogue name.")
@width_option(skipbn.MAX_WIDTH, 32)
@click.option("--sigma-w2", "sigma_w2", default="1", show_default=True, help="W entries N(0, σw²/n).")
@click.option("--samples", type=click.IntRange(1, skipbn.MAX_SAMPLES), default=8, show_default=True,
              help="Random networks for the mean square tr(JJᵀ)/n.")
@seed_option()
@format_option("text", "json", "markdown")
@output_option
def skip(depth: int, length: int, activation: str, width: int, sigma_w2: str, samples: int, seed: int, fmt: str,
         output: str | None) -> None:
    """Skips of any length t: ∂h_N/∂h_0 as a sum over paths, its bound, and random networks.

    h_k = φ(W_k h_(k-1)) + h_(k-t): J_k = D_k W_k J_(k-1) + J_(k-t); ‖J_N‖₂ <= U_N with
    U_k = γ‖W_k‖₂ U_(k-1) + U_(k-t); for linear φ, E tr(J_N J_Nᵀ)/n is exact.

    \b
      symvg skip --depth 6 --length 2 --activation tanh
      symvg skip --depth 30 --length 3 -a sigmoid --width 64
      symvg skip --depth 12 --length 3 -a linear --samples 64 --format json
    """
    import sympy as sp

    precheck_output(output)
    if length > depth:
        raise InvalidValueError(f"--length must be at most --depth ({depth}), got {length}")
    expansion = skipbn.skip_jacobian(depth, length) if depth <= skipbn.MAX_SYMBOLIC_DEPTH else None
    run = skipbn.simulate_skips(activation, width, depth, length, sigma_w2, seed, samples)
    if fmt == "json":
        emit(to_json({"expansion": None if expansion is None else str(expansion),
                      "a_k": "w_k·φ'(z_k) (width 1)", "simulation": run.as_dict()}), output)
        return
    head = (f"dh{depth}/dh0 = {expansion}   (a_k = w_k·φ'(z_k), width 1: one term per path)"
            if expansion is not None else f"{run.paths} paths (the expansion is shown up to depth "
                                          f"{skipbn.MAX_SYMBOLIC_DEPTH})")
    if fmt == "markdown":
        emit((f"$$\\frac{{\\partial h_{{{depth}}}}}{{\\partial h_0}} = {sp.latex(expansion)}$$"
              if expansion is not None else head) + "\n\n" + run._repr_markdown_(), output)
        return
    emit(head + "\n" + str(run), output)


@click.command("batchnorm")
@click.option("--values", "-x", default="1,2,3,6", show_default=True,
              help="A batch of one feature (2..16 numbers) for the exact backward factor ∂y/∂x.")
@click.option("--eps", default="0", show_default=True, help="ε in σ² = mean((x − μ)²) + ε.")
@click.option("--activation", "-a", default="relu", show_default=True, help="Catalogue name, for the deep network.")
@width_option(skipbn.MAX_WIDTH, 64)
@click.option("--depth", "-L", type=click.IntRange(1, 1000), default=30, show_default=True)
@click.option("--batch", "-B", type=click.IntRange(3, 4096), default=8, show_default=True,
              help="Batch size of the deep network.")
@seed_option()
@format_option("text", "json", "markdown")
@output_option
def batchnorm(values: str, eps: str, activation: str, width: int, depth: int, batch: int, seed: int, fmt: str,
              output: str | None) -> None:
    """Batch normalisation: its exact backward factor, and a deep BN network without skips (exploding, Yang et al. 2019).

    \b
      symvg batchnorm --values 1,2,3,6
      symvg batchnorm -a linear --width 256 --depth 20 --batch 8 --format json
    """
    precheck_output(output)
    factor = skipbn.bn_factor(_vector(values, "--values"), eps)
    run = skipbn.simulate_batchnorm(activation, width, depth, batch, seed)
    if fmt == "json":
        emit(to_json({"factor": factor.as_dict(), "simulation": run.as_dict()}), output)
        return
    if fmt == "markdown":
        emit(factor._repr_markdown_() + "\n\n" + run._repr_markdown_(), output)
        return
    emit(str(factor) + "\n" + str(run), output)


COMMANDS = [spectrum, rnn, clip, vector, skip, batchnorm]


__all__ = ["COMMANDS"]
