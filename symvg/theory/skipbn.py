"""Two more remedies, with the same rigour: skip connections of any length, and batch normalisation's backward factor.

**Skips of length t** (layer k−t feeds layer k): h_k = φ(W_k h_{k-1} + b_k) + h_{k−t} for k ≥ t. Then

    J_k = ∂h_k/∂h_0 = D_k W_k J_{k−1} + J_{k−t}      (J_0 = I, no skip term while k < t)

-- a sum over paths that take single layers (factor D_k W_k) or jump t layers (factor I). When t divides N
one path jumps all the way: the identity, which no activation can squash. t = 1 is the residual chain.

>>> skip_jacobian(3, 1)                       # the residual product (1 + a1)(1 + a2)(1 + a3), expanded
a1*a2*a3 + a1*a2 + a1*a3 + a1 + a2*a3 + a2 + a3 + 1
>>> skip_jacobian(4, 2)                       # a_k = w_k·φ'(z_k); the jump-jump path is the 1
a1*a2*a3*a4 + a1*a2 + a1*a4 + a3*a4 + 1

**Batch normalisation** of one feature over a batch of m values, y = (x − μ)/σ, σ² = mean((x − μ)²) + ε:

    ∂y/∂x = (1/σ)·(I − 11ᵀ/m − y yᵀ/m),

a projection (ε = 0) that removes the mean and the y direction, scaled by 1/σ.

>>> bn_jacobian(3)[0, 0]
(2/3 - y1**2/3)/sigma
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from symvg.symbolic.activations import Activation, get
from symvg.symbolic.parse import z as z_sym
from symvg.errors import DomainError, InvalidValueError, OverflowReport
from symvg.exact import Number, to_rational
from symvg import magnitude
from symvg.magnitude import json_float, sci
from symvg.theory.matrices import numpy_functions

MAX_SYMBOLIC_DEPTH = 16


def _a(k: int) -> sp.Symbol:
    return sp.Symbol(f"a{k}", real=True)


def _check(depth: int, length: int, most: int) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= most:
        raise InvalidValueError(f"depth must be an integer in 1..{most}, got {depth!r}")
    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= depth:
        raise InvalidValueError(f"skip length must be an integer in 1..{depth}, got {length!r}")


def skip_jacobian(depth: int, length: int) -> sp.Expr:
    """∂h_N/∂h_0 of a scalar chain with skips of ``length``, expanded, in a_k = w_k·φ'(z_k) (one term per path)."""
    _check(depth, length, MAX_SYMBOLIC_DEPTH)
    J = [sp.Integer(1)]
    for k in range(1, depth + 1):
        J.append(sp.expand(_a(k) * J[k - 1] + (J[k - length] if k >= length else 0)))
    return J[depth]


def skip_paths(depth: int, length: int) -> int:
    """How many paths: compositions of N into steps of 1 and t (t = 1: 2^N, each layer taken or skipped)."""
    _check(depth, length, 10**6)
    if length == 1:
        return 2**depth
    c = [1] + [0] * depth
    for k in range(1, depth + 1):
        c[k] = c[k - 1] + (c[k - length] if k >= length else 0)
    return c[depth]


MAX_WIDTH, MAX_SAMPLES = 1024, 256
MAX_WORK = 2**32
"""Largest samples·depth·width³ (skips) or depth·width²·batch (batch norm) accepted: seconds, not hours."""


MAX_SKIP_STEPS = 20_000
"""Most layer steps (samples × depth) one skip run takes: each is a Python step with an SVD, about 0.2 ms at
width 2, so 256 samples × 1000 layers ran past a minute whatever the width."""
MAX_BN_WORK = 2**27
"""Largest depth × width² × batch for the BN network: at MAX_WORK (2^32) it took 47 s on a loaded 2-core machine."""


def _bounded(work: int, what: str, most: int = MAX_WORK) -> None:
    if work > most:
        raise InvalidValueError(f"{what} = {work:.3g} exceeds {most:.3g}, more than seconds of work; lower one of them")


def linear_skip_mean_square(depth: int, length: int, sigma_w2: Number) -> sp.Rational:
    """E tr(J_N J_Nᵀ)/n exactly, for a linear network with skips of ``length`` and W entries N(0, σw²/n).

    m_k = σw²·m_{k−1} + m_{k−t} (the skip term only for k ≥ t), m_0 = 1: the cross term
    E tr(W_k J_{k−1} J_{k−t}ᵀ) vanishes because W_k has mean zero and is independent of both, and
    E[W A Wᵀ] = σw²·tr(A)/n·I. Any width.

    >>> linear_skip_mean_square(4, 2, 1)          # 1, 1, 2, 3, 5: Fibonacci at σw² = 1
    5
    """
    _check(depth, length, 10**6)
    sw = to_rational(sigma_w2)
    m = [sp.Integer(1)]
    for k in range(1, depth + 1):
        m.append(sw * m[k - 1] + (m[k - length] if k >= length else 0))
    return m[depth]


@dataclass(frozen=True)
class SkipRun:
    """‖∂h_N/∂h_0‖₂ (log10) in one random width-n network with skips of ``length``, and its bound.

    ``log10_mean_square`` is log10 of tr(JJᵀ)/n averaged over ``samples`` networks (the first is the
    one the norms describe); ``exact_mean_square`` its exact expectation where one is known (linear φ).
    """

    activation: str
    width: int
    depth: int
    length: int
    log10_norm: float
    log10_plain: float
    log10_bound: float
    samples: int = 1
    sigma_w2: str = "1"
    log10_mean_square: float = math.nan
    mean_square_stderr_rel: float = math.nan
    exact_mean_square: str | None = None
    log10_exact_mean_square: float | None = None
    """log10 of the exact expectation: set for linear φ, also where its digits are too many to print (then
    ``exact_mean_square`` is None; σw² = 1e6 at N = 1000 gives 10^6000)."""

    @property
    def paths(self) -> int:
        """How many input-output paths the skips open (compositions of N into steps 1 and t)."""
        return skip_paths(self.depth, self.length)

    def agrees(self) -> bool | None:
        """Measured mean square within 4 standard errors of the exact expectation (None: no exact value)."""
        if self.log10_exact_mean_square is None or not math.isfinite(self.mean_square_stderr_rel):
            return None
        return abs(10 ** (self.log10_mean_square - self.log10_exact_mean_square) - 1) <= 4 * self.mean_square_stderr_rel

    def as_dict(self) -> dict:
        d = {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in self.__dict__.items()}
        return {**d, "paths": self.paths, "bound_holds": self.log10_norm <= self.log10_bound + 1e-9,
                "agrees": self.agrees()}

    def __str__(self) -> str:
        lines = [f"{self.activation}, width {self.width}, depth {self.depth}, skips of length {self.length} "
                 f"({self.paths} paths): log10 ‖dh_N/dh_0‖₂ = {self.log10_norm:.4g} <= bound {self.log10_bound:.4g} "
                 f"({'holds' if self.log10_norm <= self.log10_bound + 1e-9 else 'VIOLATED'}); "
                 f"same weights without skips {_plain_text(self.log10_plain)}"]
        if math.isfinite(self.log10_mean_square):
            se = (f" ± {self.mean_square_stderr_rel:.2g} relative" if math.isfinite(self.mean_square_stderr_rel)
                  else "")
            line = f"tr(JJᵀ)/n over {self.samples} network(s): 10^{self.log10_mean_square:.4g}{se}"
            if self.log10_exact_mean_square is not None:
                ok, lx = self.agrees(), self.log10_exact_mean_square
                line += ("; exact expectation (linear φ) " + (f"{self.exact_mean_square} ≈ " if self.exact_mean_square
                                                              else "")
                         + (f"{10 ** lx:.6g}" if abs(lx) < 300 else f"10^{lx:.6g}")
                         + ("" if ok is None else " (agrees within 4 standard errors)" if ok
                            else " (DISAGREES beyond 4 standard errors)"))
            lines.append(line)
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return "\n\n".join(str(self).splitlines())


def _plain_text(log10_plain: float) -> str:
    """The plain network's log10 norm; a float64 0 is not printed as the answer -inf (φ' may have underflowed)."""
    if log10_plain == -math.inf:
        return "0 in float64 (every path blocked, or a product underflowed: log10 not known)"
    return f"{log10_plain:.4g}" if math.isfinite(log10_plain) else "inf in float64 (overflowed: log10 not known)"


def _skip_sample(act: Activation, rng: Any, width: int, depth: int, length: int,
                 sigma_w2: float) -> tuple[float, float, float, float]:
    """One network, in log10: ‖J‖₂ with skips, ‖J‖₂ without (same weights), the bound U_N, and tr(JJᵀ)/n.

    The Jacobians carry a log10 scale (one shared by the t retained J_k, which are added): unscaled, J_k
    overflowed float64 (σw² = 1e6, N = 1000) and LAPACK's SVD failed on the inf/NaN ("internal error").
    """
    phi, dphi = numpy_functions(act)
    varies = z_sym in act.derivative.free_symbols  # a constant φ' (linear) needs no z: an overflowed h cannot change D
    gamma = float(act.gamma)
    h = [rng.standard_normal(width)]
    hp = h[0]
    # U in log10: γ‖W‖₂ ~ 1e150 at σw² = 1e300 made U_N inf ("bound inf (holds)")
    J, Jp, U, scale, pscale = [np.eye(width)], np.eye(width), [0.0], 0.0, 0.0
    lgam = math.log10(gamma) if gamma > 0 else -math.inf
    for k in range(1, depth + 1):
        w = rng.standard_normal((width, width)) * math.sqrt(sigma_w2 / width)
        skip = k >= length
        with np.errstate(over="ignore", invalid="ignore"):
            z, zp = w @ h[-1], w @ hp
            h.append(phi(z) + (h[k - length] if skip else 0))
            hp = phi(zp)
        if varies and not (np.all(np.isfinite(z)) and np.all(np.isfinite(zp))):
            raise OverflowReport(f"the forward pass overflows float64 at layer {k} (σw² = {sigma_w2:g} grows the "
                                 f"pre-activations of {act.label}): its φ'(z) would be read off inf or NaN; lower "
                                 "--depth or --sigma-w2", layers=(k,))
        J.append(dphi(z)[:, None] * (w @ J[-1]) + (J[k - length] if skip else 0))
        Jp = dphi(zp)[:, None] * (w @ Jp)
        big = float(np.max(np.abs(J[-1])))
        if big > 1e100:
            J, scale = [None if m is None else m / big for m in J], scale + math.log10(big)
        pbig = float(np.max(np.abs(Jp)))
        if pbig > 0 and not 1e-100 < pbig < 1e100:
            Jp, pscale = Jp / pbig, pscale + math.log10(pbig)
        wn = float(np.linalg.norm(w, 2))
        U.append(_log10_add(lgam + (math.log10(wn) if wn > 0 else -math.inf) + U[-1],
                            U[k - length] if skip else -math.inf))
        if k > length:  # only the last t Jacobians and inputs are read again
            J[k - length - 1] = h[k - length - 1] = None
    lg = lambda v: math.log10(v) if v > 0 else -math.inf  # noqa: E731
    return (scale + lg(float(np.linalg.norm(J[-1], 2))), pscale + lg(float(np.linalg.norm(Jp, 2))), U[-1],
            2 * scale + lg(float(np.sum(J[-1] ** 2)) / width))


def _log10_add(a: float, b: float) -> float:
    """log10(10^a + 10^b), exact at -inf (a zero term).

    >>> _log10_add(0.0, 0.0), _log10_add(-math.inf, 2.0), _log10_add(900.0, 0.0)
    (0.3010299956639812, 2.0, 900.0)
    """
    hi, lo = max(a, b), min(a, b)
    return hi if lo == -math.inf else hi + math.log10(1 + 10 ** (lo - hi))


def simulate_skips(activation: str | Activation, width: int, depth: int, length: int, sigma_w2: Number = 1.0,
                   seed: int = 0, samples: int = 1) -> SkipRun:
    """J_k = D_k W_k J_{k−1} + J_{k−t} on random networks; bound U_k = γ‖W_k‖₂ U_{k−1} + U_{k−t}, U_0 = 1.

    The plain network (no skips) uses the same weights and input. The norms are the first network's;
    tr(JJᵀ)/n is averaged over ``samples`` networks.
    """
    _check(depth, length, 1000)
    for what, v, most in (("width", width, MAX_WIDTH), ("samples", samples, MAX_SAMPLES)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= most:
            raise InvalidValueError(f"{what} must be an integer in 1..{most}, got {v!r}")
    _bounded(samples * depth * width**3, "samples × depth × width³")
    _bounded(samples * depth, "samples × depth", MAX_SKIP_STEPS)
    act = get(activation)
    sw = to_rational(sigma_w2)
    if sw < 0:
        raise InvalidValueError(f"sigma_w2 must be >= 0, got {sw}")
    if float(sw) == math.inf:   # W would be inf·N(0, 1): NaN, and LAPACK's SVD failed ("internal error")
        raise InvalidValueError(f"sigma_w2 = {sci(sw)} is beyond float64 (1.8e308), so no weights can be drawn; "
                                "'symvg skip' needs sigma_w2 <= 1e308")
    rng = np.random.default_rng(seed)
    runs = [_skip_sample(act, rng, width, depth, length, float(sw)) for _ in range(samples)]
    lms = np.array([r[3] for r in runs])
    ref = float(lms.max())   # the mean of 10^lms, taken at a common scale (each can be past float64)
    ms = 10.0 ** (lms - ref) if math.isfinite(ref) else np.zeros(samples)
    se = float(ms.std(ddof=1) / math.sqrt(samples) / ms.mean()) if samples > 1 and ms.mean() > 0 else math.nan
    exact = linear_skip_mean_square(depth, length, sw) if act.derivative == 1 else None
    exact_text = str(exact) if exact is not None and int(exact.p).bit_length() + int(exact.q).bit_length() < 3000 else None
    norm, plain, bound, _ = runs[0]
    mean = ref + math.log10(float(ms.mean())) if ms.mean() > 0 else -math.inf
    return SkipRun(act.label, width, depth, length, norm, plain, bound, samples, str(sw), mean, se, exact_text,
                   None if exact is None else magnitude.log10(exact))


# ----------------------------------------------------------------------------- batch normalisation


def bn_jacobian(m: int) -> sp.Matrix:
    """(1/σ)(I − 11ᵀ/m − y yᵀ/m) in symbols y1..ym, σ: batch normalisation's backward factor for one feature."""
    if isinstance(m, bool) or not isinstance(m, int) or not 2 <= m <= 16:
        raise InvalidValueError(f"batch size m must be an integer in 2..16 for the symbolic form, got {m!r}")
    y = sp.Matrix(sp.symbols(f"y1:{m + 1}", real=True))
    sigma = sp.Symbol("sigma", positive=True)
    return (sp.eye(m) - sp.ones(m, m) / m - y * y.T / m) / sigma


def bn_forward(x: np.ndarray, eps: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Normalise every row (a feature) across the batch (columns): y and σ per row."""
    mu = x.mean(axis=1, keepdims=True)
    sigma = np.sqrt(((x - mu) ** 2).mean(axis=1, keepdims=True) + eps)
    return (x - mu) / sigma, sigma


def bn_backward(dy: np.ndarray, y: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """dL/dx from dL/dy: (1/σ)(dy − mean(dy) − y·mean(dy ⊙ y)), the formula above applied row by row."""
    return (dy - dy.mean(axis=1, keepdims=True) - y * (dy * y).mean(axis=1, keepdims=True)) / sigma


def linear_bn_growth(batch: int) -> sp.Expr:
    """√((B−2)/(B−3)): the per-layer growth of ‖∂L/∂H‖ going back through a deep *linear* BN network,
    width → ∞ (Yang et al. 2019, whose rate (B−2)/(B−3) is for the squared norm). Above 1 for every B > 3.

    >>> linear_bn_growth(8)
    sqrt(30)/5
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 4:
        raise InvalidValueError(f"the linear BN growth needs a batch B >= 4, got {batch!r}")
    return sp.sqrt(sp.Rational(batch - 2, batch - 3))


@dataclass(frozen=True)
class BNRun:
    """log10 ‖∂L/∂H_l‖_F, l = 0..L, in a deep network h_l = φ(BN(W_l h_{l−1})) without skips."""

    activation: str
    width: int
    depth: int
    batch: int
    log10_grad: tuple[float, ...]
    predicted_growth: float | None = None
    """Yang et al.'s width → ∞ rate where it is closed-form here (linear φ, B >= 4), else None."""

    @property
    def growth(self) -> float:
        """Geometric-mean factor per layer by which the gradient grows going back (> 1: exploding)."""
        return 10 ** ((self.log10_grad[0] - self.log10_grad[-1]) / self.depth)

    @property
    def zero_note(self) -> str:
        """Why ‖dL/dH_0‖ is 0 in float64, when it is ('' otherwise): a float 0 is said, never read as a growth of ×0."""
        zeros = [k for k, v in enumerate(self.log10_grad) if v == -math.inf]
        if not zeros:
            return ""
        return (f"the gradient is 0 in float64 for layers l <= {zeros[-1]} (a φ' that is 0 on every nonzero entry, "
                "e.g. ReLU's, once the batch has collapsed to equal samples in float64): the true value may be tiny, "
                "not 0, so no growth is measured")

    def as_dict(self) -> dict:
        fin = lambda v: v if math.isfinite(v) else None  # noqa: E731
        return {"activation": self.activation, "width": self.width, "depth": self.depth, "batch": self.batch,
                "log10_grad": [fin(v) for v in self.log10_grad],
                "growth_per_layer": None if self.zero_note else self.growth,
                "predicted_growth_per_layer": self.predicted_growth, **({"note": self.zero_note} if self.zero_note
                                                                         else {})}

    def __str__(self) -> str:
        head = (f"batch-normalised {self.activation} network, width {self.width}, depth {self.depth}, batch "
                f"{self.batch}, no skips: ")
        if self.zero_note:
            return head + self.zero_note
        text = (head + f"the gradient grows by ×{self.growth:.4g} per layer going back "
                f"(log10 ‖dL/dH_0‖ − log10 ‖dL/dH_L‖ = {self.log10_grad[0] - self.log10_grad[-1]:.4g})")
        if self.predicted_growth is not None:
            text += (f"; Yang et al. 2019, linear, width → ∞: √((B−2)/(B−3)) = {self.predicted_growth:.4g} "
                     f"(finite width {self.width} departs from it by O(1/√n))")
        return text

    def _repr_markdown_(self) -> str:
        return str(self)


def simulate_batchnorm(activation: str | Activation = "relu", width: int = 64, depth: int = 30, batch: int = 8,
                       seed: int = 0) -> BNRun:
    """Backpropagate a random output gradient through a deep BN network at Gaussian init (Yang et al. 2019's setting)."""
    _check(depth, 1, 1000)
    if isinstance(batch, bool) or not isinstance(batch, int) or not 3 <= batch <= 4096:
        raise InvalidValueError(f"batch must be an integer in 3..4096, got {batch!r}")
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= MAX_WIDTH:
        raise InvalidValueError(f"width must be an integer in 1..{MAX_WIDTH}, got {width!r}")
    _bounded(depth * width**2 * batch, "depth × width² × batch", MAX_BN_WORK)
    act = get(activation)
    phi, dphi = numpy_functions(act)
    rng = np.random.default_rng(seed)
    h, cache = rng.standard_normal((width, batch)), []
    for k in range(1, depth + 1):
        w = rng.standard_normal((width, width)) / math.sqrt(width)
        with np.errstate(divide="ignore", invalid="ignore"):
            y, sigma = bn_forward(w @ h)
        if not np.all(sigma > 0):
            raise DomainError(f"layer {k}: a feature is constant across the batch (σ = 0 with ε = 0), so batch "
                              "normalisation is undefined there; use a larger --batch or --width", layers=(k,))
        cache.append((w, y, sigma))
        h = phi(y)
    g = rng.standard_normal((width, batch))
    # ‖g‖ carried in log10 and g rescaled each layer: 1000 layers at width 2 drove it to 0 or inf in float64
    # and math.log10 raised ("internal error: math domain error")
    lg = [math.log10(float(np.linalg.norm(g)))]
    g = g / float(np.linalg.norm(g))
    for w, y, sigma in reversed(cache):
        g = w.T @ bn_backward(dphi(y) * g, y, sigma)
        n = float(np.linalg.norm(g))
        lg.append(lg[-1] + math.log10(n) if n > 0 else -math.inf)
        if n == 0:
            lg += [-math.inf] * (depth + 1 - len(lg))   # an exact 0 stays 0 through every earlier layer
            break
        g = g / n
    pred = float(linear_bn_growth(batch)) if act.derivative == 1 and batch >= 4 else None
    return BNRun(act.label, width, depth, batch, tuple(reversed(lg)), pred)


@dataclass(frozen=True)
class BNFactor:
    """Batch normalisation's backward factor ∂y/∂x at one batch x, exactly (SymPy), with its spectrum.

    ∂y/∂x = (1/σ)(I − 11ᵀ/m − y yᵀ/m) is symmetric with eigenvalues 0 (along 1), ε/σ³ (along y:
    |y|² = m·v/(v + ε), v the batch variance) and 1/σ (the m − 2 directions orthogonal to both).
    """

    x: tuple[sp.Rational, ...]
    eps: sp.Rational
    mu: sp.Expr
    sigma: sp.Expr
    jacobian: sp.Matrix

    @property
    def eigenvalues(self) -> dict:
        """{value: multiplicity}, exact."""
        m = len(self.x)
        ev = {sp.Integer(0): 1}
        y_dir = sp.simplify(self.eps / self.sigma**3)
        ev[y_dir] = ev.get(y_dir, 0) + 1
        if m > 2:  # a batch of two has no direction orthogonal to both 1 and y: no 1/σ eigenvalue at all
            inv = sp.simplify(1 / self.sigma)
            ev[inv] = ev.get(inv, 0) + m - 2
        return ev

    def as_dict(self) -> dict:
        return {"x": [str(v) for v in self.x], "eps": str(self.eps), "mu": str(self.mu), "sigma": str(self.sigma),
                "sigma_float": json_float(self.sigma),
                "jacobian": [[str(v) for v in row] for row in self.jacobian.tolist()],
                "jacobian_float": [[json_float(v) for v in row] for row in self.jacobian.tolist()],
                "eigenvalues": [{"value": str(k), "float": json_float(k), "multiplicity": n}
                                for k, n in self.eigenvalues.items()], **self._range_note()}

    def _range_note(self) -> dict:
        """A note when a float field is null or 0.0 for a value that is not 0 (ε = 1e-400 or 1e700)."""
        values = [self.sigma, *self.jacobian, *self.eigenvalues]
        if all(v == 0 or json_float(v) not in (None, 0.0) for v in values):
            return {}
        return {"float_note": "a *_float field is null (beyond float64) or 0.0 (below it) where the exact value "
                              "is not: read the exact 'sigma', 'jacobian' and 'eigenvalues[].value'"}

    def __str__(self) -> str:
        # sci, not float: an entry of 1e-400 (ε = 1e-400) is not 0 and σ at ε = 1e700 is not inf
        rows = "\n".join("  [" + ", ".join(f"{'' if sci(v).startswith('-') else ' '}{sci(v)}" for v in row) + "]"
                         for row in self.jacobian.tolist())
        ev = ", ".join(f"{k} ≈ {sci(k)} (×{n})" for k, n in self.eigenvalues.items())
        return (f"batch x = ({', '.join(map(str, self.x))}), ε = {self.eps}: μ = {self.mu}, σ = {self.sigma} "
                f"≈ {sci(self.sigma)}\n∂y/∂x = (1/σ)(I − 11ᵀ/m − y yᵀ/m) ≈\n{rows}\n"
                f"eigenvalues (exact): {ev}")

    def _repr_latex_(self) -> str:
        return f"$\\frac{{\\partial y}}{{\\partial x}} = {sp.latex(self.jacobian)}$"

    def _repr_markdown_(self) -> str:
        m = len(self.x)
        rows = ["| " + " | ".join(sci(v) for v in row) + " |" for row in self.jacobian.tolist()]
        ev = ", ".join(f"${sp.latex(k)}$ (×{n})" for k, n in self.eigenvalues.items())
        return "\n".join([f"Batch x = ({', '.join(map(str, self.x))}), ε = {self.eps}: μ = ${sp.latex(self.mu)}$, "
                          f"σ = ${sp.latex(self.sigma)}$", "", "∂y/∂x = (1/σ)(I − 11ᵀ/m − y yᵀ/m) ≈", "",
                          "| " + " | ".join(f"x{j + 1}" for j in range(m)) + " |", "|" + "---|" * m, *rows, "",
                          f"Eigenvalues (exact): {ev}"])


def bn_factor(values: "list[Number] | tuple[Number, ...]", eps: Number = 0) -> BNFactor:
    """∂y/∂x of y = (x − μ)/σ at the batch ``values``, exact (2..16 values; σ > 0 required)."""
    x = tuple(to_rational(v) for v in values)
    m, e = len(x), to_rational(eps)
    if e < 0:
        raise InvalidValueError(f"eps must be >= 0, got {e}")
    if not 2 <= m <= 16:
        raise InvalidValueError(f"a batch of 2..16 values is needed for the exact factor, got {m}")
    mu = sum(x, sp.Integer(0)) / m
    sigma = sp.sqrt(sum(((v - mu) ** 2 for v in x), sp.Integer(0)) / m + e)
    if sigma == 0:
        raise InvalidValueError("the batch is constant and eps = 0: σ = 0, batch normalisation is undefined")
    sub = {sp.Symbol(f"y{i + 1}", real=True): (v - mu) / sigma for i, v in enumerate(x)}
    sub[sp.Symbol("sigma", positive=True)] = sigma
    J = bn_jacobian(m).xreplace(sub).applyfunc(sp.radsimp)
    return BNFactor(x, e, mu, sigma, J)


__all__ = ["BNFactor", "BNRun", "MAX_BN_WORK", "MAX_SAMPLES", "MAX_SKIP_STEPS", "MAX_WIDTH", "SkipRun",
           "bn_backward", "bn_factor", "bn_forward",
           "bn_jacobian", "linear_bn_growth", "linear_skip_mean_square", "simulate_batchnorm", "simulate_skips",
           "skip_jacobian", "skip_paths"]
