"""Recurrent networks through time: ∂h_T/∂h_t = ∏ D_s W, bounded by (γ·σ_max(W))^{T−t}, and simulated.

For h_s = φ(W h_{s-1} + U x_s + b), each step contributes ∂h_s/∂h_{s-1} = D_s W with D_s = diag(φ'(z_s)):

    ∂h_T/∂h_t = D_T W · D_{T−1} W ⋯ D_{t+1} W,      ‖∂h_T/∂h_t‖₂ ≤ (γ·σ_max(W))^{T−t}.

Pascanu, Mikolov & Bengio (2013): σ_max(W) < 1/γ is *sufficient* for the gradient to vanish (the bound
goes to 0 geometrically), and so σ_max(W) > 1/γ is *necessary* for it to explode -- not sufficient:
the D_s can still shrink it.

>>> d = derive_rnn(3, 0, width=4)
>>> d.product
D3*W*D2*W*D1*W
>>> b = pmb_condition("tanh", "0.5")
>>> b.verdict
'vanishing (proved: γ·σ_max = 1/2 < 1)'
>>> pmb_condition("sigmoid", 4).verdict
'not proved either way: γ·σ_max = 1 (vanishing needs < 1; exploding needs > 1)'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy as sp

from symvg.theory import lstm as lstm_mod
from symvg.symbolic.activations import Activation, get
from symvg.symbolic.parse import z
from symvg.exact import Number, to_rational
from symvg.errors import InvalidValueError, OverflowReport
from symvg.theory.matrices import numpy_functions

MAX_STEPS, MAX_WIDTH = 10_000, 1024
MAX_WORK = 2**31
"""Largest steps·width³ simulated (each step multiplies and takes the spectral norm of an n×n matrix): about
0.5·10^9 per second here, so a few seconds (200·512³, the old cap, ran past a minute)."""
INITS = ("gaussian", "orthogonal")


@dataclass(frozen=True)
class RNNDerivation:
    """∂h_T/∂h_t as a product of matrix symbols (W is n×n, D_s = diag(φ'(z_s)))."""

    steps: int
    start: int
    width: int
    product: sp.Basic

    def latex(self) -> str:
        return rf"\frac{{\partial h_{{{self.steps}}}}}{{\partial h_{{{self.start}}}}} = {sp.latex(self.product)}"

    def __str__(self) -> str:
        shown = str(self.product)
        if self.steps - self.start > 6:  # the product holds the first and last three steps only
            parts = shown.split("*")
            shown = "*".join(parts[:6]) + "*⋯*" + "*".join(parts[6:])
        return f"dh{self.steps}/dh{self.start} = {shown}   (D_s = diag(φ'(z_s)), z_s = W h_(s-1) + U x_s + b)"

    def as_dict(self) -> dict:
        return {"steps": self.steps, "start": self.start, "width": self.width, "product": str(self.product),
                "latex": self.latex()}

    def _repr_latex_(self) -> str:
        return "$$" + self.latex() + "$$"


def _int(v: object, what: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise InvalidValueError(f"{what} must be an integer in {lo}..{hi}, got {v!r}")
    return v


def derive_rnn(steps: int, start: int = 0, width: int = 1) -> RNNDerivation:
    """The product ∏_{s=T}^{t+1} D_s W, in full up to 6 steps (then the first and last three; ``str`` marks the gap)."""
    _int(steps, "steps", 1, MAX_STEPS)
    _int(start, "start", 0, steps - 1)
    _int(width, "width", 1, MAX_WIDTH)
    w = sp.MatrixSymbol("W", width, width)
    ss = list(range(steps, start, -1))
    if len(ss) > 6:
        ss = ss[:3] + ss[-3:]
    mats = [m for s in ss for m in (sp.MatrixSymbol(f"D{s}", width, width), w)]
    return RNNDerivation(steps, start, width, sp.MatMul(*mats))


@dataclass(frozen=True)
class PMBCondition:
    """γ·σ_max(W) against 1: Pascanu–Mikolov–Bengio's sufficient condition for vanishing."""

    activation: str
    gamma: sp.Expr
    sigma_max: sp.Expr
    rel_error: sp.Rational = sp.S.Zero
    """Relative error bound on ``sigma_max`` (a float from LAPACK): a rate within it of 1 proves nothing."""

    @property
    def rate(self) -> sp.Expr:
        return self.gamma * self.sigma_max

    @property
    def verdict(self) -> str:
        r, shown, e = self.rate, _show(self.rate), self.rel_error
        if e and r * (1 - e) <= 1 <= r * (1 + e):
            return (f"not proved either way: γ·σ_max = {shown} is 1 within the float64 error of the computed "
                    f"σ_max (± {float(e):.1g} relative)")
        if r < 1:
            return f"vanishing (proved: γ·σ_max = {shown} < 1)"
        if r == 1:
            return f"not proved either way: γ·σ_max = {shown} (vanishing needs < 1; exploding needs > 1)"
        return f"exploding possible, not proved (γ·σ_max = {shown} > 1 is necessary, not sufficient)"

    def as_dict(self) -> dict:
        return {"activation": self.activation, "gamma": str(self.gamma), "sigma_max": str(self.sigma_max),
                "rate": str(self.rate), "verdict": self.verdict}

    def __str__(self) -> str:
        return f"{self.activation}: γ = {_show(self.gamma)}, σ_max(W) = {_show(self.sigma_max)}: {self.verdict}"

    def _repr_markdown_(self) -> str:
        return (f"{self.activation}: $\\gamma = {sp.latex(self.gamma)}$, $\\sigma_{{max}}(W) = "
                f"{_show(self.sigma_max)}$: **{self.verdict}**")


def _show(v: sp.Expr) -> str:
    """Short rationals exactly; long ones (a float's decimal) as 6 significant digits, or all 17 where 6 would
    round to 1 (a rate 1.0000000000000002 was shown as 1, beside "> 1")."""
    if v.is_Rational and v.q < 10**4:
        return str(v)
    f = float(v)
    return f"{f:.6g}" if f"{f:.6g}" != "1" or f == 1 else repr(f)


def pmb_condition(activation: str | Activation, sigma_max: Number, rel_error: Number = 0) -> PMBCondition:
    """The condition for a recurrent matrix with largest singular value ``sigma_max`` (exact when rational).

    ``rel_error`` bounds the relative error of a computed σ_max: a linear orthogonal W has σ_max = 1 exactly,
    but LAPACK returned 1.0000000000000002 and the verdict read "γ·σ_max = 1 > 1".

    >>> pmb_condition("linear", "1.0000000000000002", "1e-13").verdict[:22]
    'not proved either way:'
    """
    act = get(activation)
    s = sigma_max if isinstance(sigma_max, sp.Float) else to_rational(sigma_max, "sigma_max")
    if s < 0:
        raise InvalidValueError(f"sigma_max must be >= 0, got {sigma_max!r}")
    e = to_rational(rel_error, "rel_error")
    if not 0 <= e < 1:
        raise InvalidValueError(f"rel_error must be in [0, 1), got {rel_error!r}")
    return PMBCondition(act.label, act.gamma, s, e)


def sigma_max_error(width: int) -> sp.Rational:
    """A bound on the relative error of σ_max(W) from LAPACK's SVD: 10·n·ε (backward stable: c·n·ε·‖W‖₂).

    >>> float(sigma_max_error(64))
    1.4210854715202004e-13
    """
    return 10 * _int(width, "width", 1, MAX_WIDTH) * sp.Rational(1, 2**52)


def recurrent_matrix(rng: np.random.Generator, width: int, spectral_radius: float, init: str) -> np.ndarray:
    """W with the given spectral radius: a Gaussian matrix rescaled by its largest |eigenvalue|, or ρ·O (Haar)."""
    g = rng.standard_normal((width, width))
    if init == "orthogonal":
        q, r = np.linalg.qr(g)
        return spectral_radius * q * np.where(np.diag(r) < 0, -1.0, 1.0)
    rho = float(np.max(np.abs(np.linalg.eigvals(g))))
    return g * (spectral_radius / rho)


@dataclass(frozen=True)
class RNNSimulation:
    """‖∂h_T/∂h_t‖₂ measured for every gap T − t = 0..T, against the bound (γ·σ_max)^{T−t} (both log10)."""

    activation: str
    width: int
    steps: int
    init: str
    spectral_radius: float
    sigma_max: float
    gamma: float
    log10_norms: tuple[float, ...]
    log10_bound: tuple[float, ...]
    seed: int

    @property
    def bound_holds(self) -> bool:
        return all(m <= b + 1e-9 for m, b in zip(self.log10_norms, self.log10_bound))

    @property
    def measured_rate(self) -> float:
        """Per-step growth factor fitted on the second half of the gaps (where the product has settled)."""
        k = np.arange(len(self.log10_norms))
        half = len(k) // 2
        y = np.asarray(self.log10_norms[half:])
        if len(y) < 2 or not np.all(np.isfinite(y)):
            return math.nan
        return float(10 ** np.polyfit(k[half:], y, 1)[0])

    def as_dict(self) -> dict:
        fin = lambda v: v if math.isfinite(v) else None  # noqa: E731
        return {"activation": self.activation, "width": self.width, "steps": self.steps, "init": self.init,
                "spectral_radius": self.spectral_radius, "sigma_max": self.sigma_max, "gamma": self.gamma,
                "log10_norms": [fin(v) for v in self.log10_norms], "log10_bound": [fin(v) for v in self.log10_bound],
                "bound_holds": self.bound_holds, "measured_rate": fin(self.measured_rate), "seed": self.seed,
                **({"note": self.zero_note} if self.zero_note else {})}

    @property
    def zero_note(self) -> str:
        """Why the measured product is 0 in float64, when it is ('' otherwise): a 0 is said, never read as a value."""
        if math.isfinite(self.log10_norms[-1]):
            return ""
        if self.spectral_radius == 0:
            return "W = 0, so the Jacobian is exactly 0"
        return ("the float64 product came out 0: some φ'(z) is 0 in float64 (an exact 0, as ReLU's for z <= 0, or "
                "an underflow: tanh'(z) rounds to 0 beyond |z| ≈ 19), so the true norm may be tiny, not 0")

    def __str__(self) -> str:
        T = self.steps
        rate = self.measured_rate
        norm = f"{self.log10_norms[-1]:.4g}" if not self.zero_note else "-inf in float64 (see the note)"
        fitted = f"≈ {rate:.4g}" if math.isfinite(rate) else "not measured (the product reached 0)"
        return (f"simulated {self.activation} RNN, width {self.width}, {self.init} W with ρ = {self.spectral_radius:g} "
                f"(σ_max = {self.sigma_max:.4g}), seed {self.seed}:\n"
                f"  log10 ‖dh{T}/dh0‖ = {norm}  <=  bound T·log10(γσ_max) = "
                f"{self.log10_bound[-1]:.4g}  ({'holds' if self.bound_holds else 'VIOLATED'} at every gap)\n"
                f"  measured per-step factor {fitted}; "
                f"bound's γ·σ_max = {self.gamma * self.sigma_max:.4g}"
                + (f"\n  note: {self.zero_note}" if self.zero_note else ""))

    def _repr_markdown_(self) -> str:
        return "\n\n".join(str(self).splitlines())


def simulate_rnn(activation: str | Activation = "tanh", width: int = 64, steps: int = 100,
                 spectral_radius: float = 1.0, init: str = "gaussian", input_scale: float = 1.0,
                 seed: int = 0) -> RNNSimulation:
    """Run h_s = φ(W h_{s-1} + U x_s) for ``steps`` steps and measure ‖∂h_T/∂h_t‖₂ for every t."""
    act = get(activation)
    _int(width, "width", 1, MAX_WIDTH)
    _int(steps, "steps", 1, MAX_STEPS)
    if init not in INITS:
        raise InvalidValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    for what, v in (("spectral_radius", spectral_radius), ("input_scale", input_scale)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and 0 <= v <= 1e6):
            raise InvalidValueError(f"{what} must be a finite number in [0, 1e6], got {v!r}")
    if steps * width**3 > MAX_WORK:
        raise InvalidValueError(f"steps × width³ = {steps * width**3:.3g} exceeds {MAX_WORK:.3g} (one n×n product "
                                "and norm per step); lower --steps or --width")
    phi, dphi = numpy_functions(act)
    rng = np.random.default_rng(seed)
    w = recurrent_matrix(rng, width, float(spectral_radius), init)
    u = rng.standard_normal((width, width)) * (input_scale / math.sqrt(width))
    h, ds = np.zeros(width), []
    varies = z in act.derivative.free_symbols  # a constant φ' (linear) needs no z: an overflowed h cannot change D_s
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(1, steps + 1):
            zs = w @ h + u @ rng.standard_normal(width)
            if varies and not np.all(np.isfinite(zs)):
                raise OverflowReport(f"the forward pass overflows float64 at step {step} (h_s grows like ρ^s for "
                                     f"{act.label}): its φ'(z_s) would be read off inf or NaN, so no Jacobian is "
                                     "measured; lower --steps or --spectral-radius", layers=(step,))
            ds.append(dphi(zs))
            h = phi(zs)
    jac, log_scale, norms = np.eye(width), 0.0, [0.0]
    for d in reversed(ds):  # ∂h_T/∂h_{t-1} = ∂h_T/∂h_t · D_t W, rescaled each step so it cannot overflow
        jac = (jac * d) @ w
        s = float(np.linalg.norm(jac, 2))
        norms.append(log_scale + (math.log10(s) if s > 0 else -math.inf))
        if s > 0:
            jac, log_scale = jac / s, log_scale + math.log10(s)
    gamma, smax = float(act.gamma), float(np.linalg.norm(w, 2))
    rate = math.log10(gamma * smax) if gamma * smax > 0 else -math.inf
    bound = tuple(k * rate if k else 0.0 for k in range(steps + 1))
    return RNNSimulation(act.label, width, steps, init, float(spectral_radius), smax, gamma, tuple(norms), bound, seed)


def compare_lstm(steps: int, sigma_max: float, activation: str | Activation = "tanh",
                 forget: Number = "0.9") -> lstm_mod.CellVsRNN:
    """The LSTM cell path f^T beside this RNN's bound (γ·σ_max)^T (symvg.theory.lstm with |w| = σ_max)."""
    return lstm_mod.compare(steps, forget, repr(float(sigma_max)), activation)


__all__ = ["INITS", "PMBCondition", "RNNDerivation", "RNNSimulation", "compare_lstm", "derive_rnn", "pmb_condition",
           "recurrent_matrix", "sigma_max_error", "simulate_rnn"]
