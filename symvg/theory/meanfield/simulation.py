"""Monte-Carlo check of mean field: push inputs through finite random nets and a gradient back.

The per-layer gradient factor is estimated as the mean of the per-layer ratios
r_l = |δ^{l−1}|²/|δ^l|² (batch means), which is unbiased for χ1 under mean field's gradient
independence. A fit on log norms (the geometric mean of r_l) is not: E[log r] < log E[r] by the
Jensen gap ≈ Var(r)/(2·E[r]²), an O(1/width) downward bias. For ReLU and one input,
r = (σw²/n)·χ²_k with k ≈ n/2 active units, so E[log r] − log χ1 = ψ(k/2) − log(k/2) − 1/(2n) + …
≈ −2.5/n per layer: at width 512 and depth 50 that is a 0.5% shortfall, many standard errors.
:class:`Simulation` reports both and the gap it measured.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import sympy as sp

from symvg.display import Result
from symvg.engines.numeric import array_module  # the one backend picker (CuPy only when asked for)

from symvg.symbolic.activations import Activation, get
from symvg.symbolic.parse import z
from symvg.exact import Number
from symvg.errors import InvalidValueError, SymvgRuntimeError
from symvg.engines.sampling import available_memory
from symvg.theory.meanfield.quadrature import _numpy_function
from symvg.theory.meanfield.theory import _float, mean_field

__all__ = ["Simulation", "simulate", "check_simulation_size", "MAX_SIMULATION_WORK"]

MAX_SIMULATION_WORK = 2 * 10**11
"""Multiply-adds one :func:`simulate` call may ask for: minutes of NumPy at most, never hours."""


def check_simulation_size(width: int, depth: int, batch: int, seeds: int = 1, jacobian_inputs: int = 0, *,
                          cli: bool = False) -> None:
    """Refuse, before any array is allocated, a simulation that would not fit in memory or in time.

    One net keeps ``depth`` weight matrices (width²) and pre-activations (batch × width), plus a
    few width² Jacobian temporaries, in float64; the work is seeds·depth·(2·batch·width² +
    jacobian_inputs·width³) multiply-adds. ``cli`` names the sizes as the command's options.

    >>> check_simulation_size(256, 10**9, 32)
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: a simulation with width 256, depth 1000000000, batch 32...
    """
    names = (f"--width {width} --depth {depth} --batch {batch}" if cli
             else f"width {width}, depth {depth}, batch {batch}")
    need = 8 * (depth * width * (width + batch) + 4 * width * width)
    have = available_memory()
    if have is not None and need > have:
        raise InvalidValueError(f"a simulation with {names} needs about {need // 10**6} MB but only "
                                f"{have // 10**6} MB are available; lower the width (memory grows as depth × width²)")
    work = seeds * depth * (2 * batch * width**2 + jacobian_inputs * width**3)
    if work > MAX_SIMULATION_WORK:
        raise InvalidValueError(f"a simulation with {names}, {seeds} seeds and {jacobian_inputs} Jacobian inputs "
                                f"asks for about {work:.2g} multiply-adds, over the limit of "
                                f"{MAX_SIMULATION_WORK:.0e}; lower the depth, width or seeds")




def _xp_function(expr: sp.Expr, backend: str) -> Callable:
    if backend == "numpy":
        return _numpy_function(expr)
    return sp.lambdify(z, expr, modules=["cupy"])


@dataclass(frozen=True)
class Simulation(Result):
    """A Monte-Carlo check of mean field on finite random networks (``seeds`` independent nets).

    ``q_layers`` is the per-layer mean squared pre-activation (mean over seeds), ``grad_sq`` the
    per-layer mean squared gradient w.r.t. pre-activations, normalised to 1 at the top layer
    (expected ≈ χ1^(L−l)). ``chi1_fit`` ± ``chi1_stderr``: the mean of the per-layer ratios
    |δ^{l−1}|²/|δ^l|², averaged over seeds (unbiased for χ1). ``chi1_logfit``: their geometric
    mean, what a fit on log norms estimates, low by the measured Jensen gap ``log_gap``
    (= mean log of the mean ratio − mean log ratio ≈ Var/(2·mean²)). ``jac_mean``/``jac_var``:
    mean and variance of the squared singular values of ∂h^l/∂h^0 (mean expected ≈ χ1^l).
    """

    activation: str
    sigma_w2: float
    sigma_b2: float
    width: int
    depth: int
    batch: int
    seeds: int
    q_star: float
    chi1: float
    q_layers: tuple[float, ...]
    q_mean: float
    q_stderr: float
    grad_sq: tuple[float, ...]
    chi1_fit: float
    chi1_stderr: float
    chi1_logfit: float
    log_gap: float
    jac_mean: tuple[float, ...]
    jac_var: tuple[float, ...]
    jac_mean_stderr: tuple[float, ...]

    @property
    def z_score(self) -> float:
        """(mean ratio − χ1)/stderr: |z| ≲ 3 is agreement within the statistical error.

        The mean ratio, not the log fit, is compared: the log fit's O(1/width) bias is not in the stderr.
        With few seeds this is a t statistic with seeds − 1 degrees of freedom: at 8 seeds |z| > 3
        happens 2% of the time by chance alone.
        """
        return (self.chi1_fit - self.chi1) / self.chi1_stderr if self.chi1_stderr > 0 else math.inf

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        d = asdict(self)
        d["z_score"] = self.z_score
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    def __str__(self) -> str:
        return self.text()

    def text(self) -> str:
        """The agreement, in a few lines."""
        L = self.depth
        return "\n".join([
            f"{self.activation}: σw² = {self.sigma_w2:g}, σb² = {self.sigma_b2:g}; width {self.width}, "
            f"depth {L}, batch {self.batch}, {self.seeds} seeds",
            f"  q^l (layers 1..{L}, mean)  = {self.q_mean:.6g} ± {self.q_stderr:.2g}   "
            f"mean field q* = {self.q_star:.6g}",
            f"  gradient ratio per layer   = {self.chi1_fit:.6g} ± {self.chi1_stderr:.2g}   mean field χ1 = "
            f"{self.chi1:.6g}   (z = {self.z_score:+.2f}; mean of per-layer ratios)",
            f"  a fit on log norms gives   = {self.chi1_logfit:.6g}: low by the Jensen gap Var/(2·mean²) ≈ "
            f"{self.log_gap:.2g} per layer in log (an O(1/width) bias), so it is not the one compared",
            f"  |∂z^l/∂z^L|² at l = 1      = {self.grad_sq[0]:.6g}   χ1^{L - 1} = {self.chi1 ** (L - 1):.6g}",
        ] + ([f"  Jacobian s² mean at depth {L} = {self.jac_mean[-1]:.6g} ± {self.jac_mean_stderr[-1]:.2g}   "
               f"χ1^{L} = {self.chi1 ** L:.6g}   (s² variance {self.jac_var[-1]:.6g})"] if self.jac_mean else []))


def _run_net(xp: Any, phi: Callable, dphi: Callable, rng: Any, sw: float, sb: float, n: int, L: int,
             batch: int, q_in: float, n_jac: int) -> tuple[Any, Any, Any, Any]:
    """One random net: forward q^l, backward |δ^l|², and Jacobian s² moments for ``n_jac`` inputs."""
    z0 = rng.standard_normal((batch, n)) * math.sqrt(q_in)  # inputs already at the fixed point
    h = phi(z0)
    Ws, zs, qs = [], [], []
    for _ in range(L):
        W = rng.standard_normal((n, n)) * math.sqrt(sw / n)
        b = rng.standard_normal(n) * math.sqrt(sb)
        zl = h @ W + b
        Ws.append(W)
        zs.append(zl)
        qs.append(xp.mean(zl * zl))
        h = phi(zl)
    # backward: δ^{l-1} = (δ^l Wᵀ) ⊙ φ'(z^{l-1}), starting from a random top gradient
    delta = rng.standard_normal((batch, n))
    grads = [xp.mean(xp.sum(delta * delta, axis=1))]
    for l in range(L - 1, 0, -1):
        delta = (delta @ Ws[l].T) * dphi(zs[l - 1])
        grads.append(xp.mean(xp.sum(delta * delta, axis=1)))
    # Jacobian ∂h^l/∂h^0 = D_l W_lᵀ … D_1 W_1ᵀ: mean s² = tr(JJᵀ)/n, mean s⁴ = ‖JᵀJ‖²_F/n
    jm, jv = xp.zeros(L), xp.zeros(L)
    for i in range(n_jac):
        J = xp.eye(n)
        for l in range(L):
            J = dphi(zs[l][i])[:, None] * (Ws[l].T @ J)
            m1 = xp.sum(J * J) / n
            JtJ = J.T @ J
            jm[l] += m1 / n_jac
            jv[l] += (xp.sum(JtJ * JtJ) / n - m1 * m1) / n_jac
    return xp.stack(qs), xp.stack(grads[::-1]), jm, jv


def simulate(activation: "str | Activation", sigma_w2: Number, sigma_b2: Number = 0, *, width: int = 256,
             depth: int = 20, batch: int = 32, seeds: int = 8, seed: int = 0, jacobian_inputs: int = 1,
             backend: str = "numpy") -> Simulation:
    """Push inputs through ``seeds`` random width-n nets and a gradient back; compare with mean field.

    >>> s = simulate("relu", 2, 0, width=64, depth=4, batch=8, seeds=2)
    >>> s.chi1, len(s.grad_sq), s.grad_sq[-1]
    (1.0, 4, 1.0)
    """
    width, depth, batch, seeds, jacobian_inputs = _check_sizes(width, depth, batch, seeds, jacobian_inputs)
    xp = array_module(backend)
    mf = mean_field(activation, sigma_w2, sigma_b2)
    act = get(activation)
    sw, sb = float(mf.sigma_w2), float(mf.sigma_b2)
    q = _float(mf.q_star)
    q_in = q if 0 < q < math.inf else 1.0  # q* = 0 or oo (ReLU-like): χ1 does not depend on q
    phi, dphi = _xp_function(act.expr, backend), _xp_function(act.derivative, backend)
    qs, gs, ratios, logs, jms, jvs = [], [], [], [], [], []
    for s in range(seeds):
        rng = xp.random.default_rng(seed + s)
        ql, gl, jm, jv = _run_net(xp, phi, dphi, rng, sw, sb, width, depth, batch, q_in, jacobian_inputs)
        ql, gl = np.asarray(_host(ql), dtype=float), np.asarray(_host(gl), dtype=float)
        if not np.all(gl > 0):
            raise SymvgRuntimeError(f"the gradient of net {s} is exactly 0 at some layer (every unit inactive); "
                                    "widen the net")
        r = gl[:-1] / gl[1:]  # |δ^{l−1}|²/|δ^l|², one per layer
        qs.append(ql)
        gs.append(gl / gl[-1])
        ratios.append(r.mean())
        logs.append(np.log(r).mean())
        jms.append(np.asarray(_host(jm), dtype=float))
        jvs.append(np.asarray(_host(jv), dtype=float))
    per_seed_q, ratios_a, logs_a = np.array([x.mean() for x in qs]), np.array(ratios), np.array(logs)
    jac = ((tuple(np.mean(jms, axis=0).tolist()), tuple(np.mean(jvs, axis=0).tolist()),
            tuple((np.std(jms, axis=0, ddof=1) / math.sqrt(seeds)).tolist())) if jacobian_inputs else ((), (), ()))
    return Simulation(act.label, sw, sb, width, depth, batch, seeds, q, _float(mf.chi1),
                      tuple(np.mean(qs, axis=0).tolist()), float(per_seed_q.mean()),
                      float(per_seed_q.std(ddof=1) / math.sqrt(seeds)), tuple(np.mean(gs, axis=0).tolist()),
                      float(ratios_a.mean()), float(ratios_a.std(ddof=1) / math.sqrt(seeds)),
                      float(np.exp(logs_a.mean())), float(np.mean(np.log(ratios_a) - logs_a)), *jac)


def _check_sizes(width: int, depth: int, batch: int, seeds: int, jacobian_inputs: int) -> tuple[int, ...]:
    """The sizes as plain ints, after the type, range, memory and work checks."""
    for what, v, lo in (("width", width, 2), ("depth", depth, 2), ("batch", batch, 1), ("seeds", seeds, 2),
                        ("jacobian_inputs", jacobian_inputs, 0)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
            raise InvalidValueError(f"{what} must be an integer >= {lo}, got {v!r}")
    if jacobian_inputs > batch:
        raise InvalidValueError(f"jacobian_inputs must be <= batch ({batch}), got {jacobian_inputs}")
    sizes = tuple(int(v) for v in (width, depth, batch, seeds, jacobian_inputs))
    check_simulation_size(*sizes)
    return sizes


def _host(a: Any) -> Any:
    """A NumPy view of a NumPy or CuPy array."""
    return a.get() if hasattr(a, "get") else a
