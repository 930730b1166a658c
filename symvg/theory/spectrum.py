"""Singular values of the input-output Jacobian J = D_L W_L ⋯ D_1 W_1 of a random network at initialisation.

Whether a deep network trains depends on the whole spread of J's singular values, not only their
mean. Measured here (batched NumPy linear algebra; CuPy when asked, imported only then) and set
beside the theory, with W entries N(0, σw²/n) (``gaussian``) or W = σw·O, O Haar-orthogonal
(``orthogonal``), b ~ N(0, σb²), inputs at the mean-field fixed point q*:

* mean squared singular value m1 = tr(JJᵀ)/n: E m1 = χ1^L (mean field; exact at any width for
  linear Gaussian nets);
* linear Gaussian nets: the moments of JJᵀ/σw^{2L} tend to the Fuss–Catalan numbers
  FC_L(k) = binom((L+1)k, k)/(Lk+1); the second moment at finite width n is exact (docs/matrices.md);
* linear orthogonal nets: every singular value is exactly σw^L (isometry);
* nonlinear nets (Pennington, Schoenholz & Ganguli 2017): for large width the normalised spread
  m2/m1² − 1 = L·(μ2/μ1² − 1 − s1), μk = E[φ'(√q* u)^{2k}], s1 = −1 (Gaussian) or 0 (orthogonal).
  ReLU has μ2/μ1² = 2, so its spread is L even with orthogonal weights: no dynamical isometry.

>>> fuss_catalan(1, 2), fuss_catalan(3, 2), fuss_catalan(2, 3)   # FC_L(k): L=1 is Catalan
(2, 4, 12)
>>> linear_gaussian_m2(1, 10)                                   # 2 + 1/n, exactly
21/10
>>> r = spectrum("linear", width=16, depth=3, init="orthogonal", sigma_w2=4, samples=2)
>>> round(r.at[-1].log10_quantiles[0], 9), round(r.at[-1].log10_quantiles[-1], 9)   # all σw^L = 8
(0.903089987, 0.903089987)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import sympy as sp

from symvg.engines.numeric import array_module  # the one backend picker (CuPy only when asked for)

from symvg.theory import meanfield as mf
from symvg.theory.matrices import float_activation
from symvg.symbolic.activations import Activation, get
from symvg.symbolic.parse import z
from symvg import magnitude
from symvg.exact import Number, to_rational
from symvg.errors import BackendUnavailableError, InvalidValueError, OverflowReport

INITS = ("orthogonal", "gaussian")
QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
MAX_WIDTH, MAX_DEPTH, MAX_SAMPLES = 2048, 1000, 256
MAX_WORK = 8 * 200 * 1024**3
"""Largest samples × depth × width³ on CuPy (a GPU)."""
MAX_CPU_WORK = 2**32
"""The same on NumPy: the default run (256³·50 = 8.4e8) takes about 4 s here, so this is about 20 s; the GPU cap
(8 samples of width 1024, depth 200) was hours on a CPU."""
"""Largest samples·depth·width³ accepted, so that every request answers in bounded time."""
RESOLUTION = 1e-13
"""Singular values below σ_max·RESOLUTION are at float64's floor in a product of L matrices: not resolved."""


def fuss_catalan(L: int, k: int) -> int:
    """FC_L(k) = binom((L+1)k, k)/(Lk+1): the k-th moment of JJᵀ for L Gaussian layers, width → ∞."""
    return sp.binomial((L + 1) * k, k) // (L * k + 1)


def linear_gaussian_m2(L: int, n: int) -> sp.Rational:
    """E[tr((JJᵀ)²)/n]/σw^{4L} for L Gaussian n×n layers, exactly (Wick's theorem; docs/matrices.md).

    With t = tr(A)/n, s = tr(A²)/n and A → W A Wᵀ: E[t'²] = t² + 2s/n², E[s'] = t² + (1 + 1/n)s.
    """
    t2, s = sp.Integer(1), sp.Integer(1)
    for _ in range(L):
        t2, s = t2 + 2 * s / n**2, t2 + (1 + sp.Rational(1, n)) * s
    return s


# ----------------------------------------------------------------------------- theory


@dataclass(frozen=True)
class Theory:
    """What is predicted for one (activation, init, σw², σb², L, n)."""

    q_star: float
    chi1: float
    chi1_exact: str | None
    mu1: float
    mu2: float
    s1: int
    log10_m1: float
    spread: float
    statement: str
    exact_spread: float | None = None
    fuss_catalan: tuple[int, ...] = ()

    def as_dict(self) -> dict:
        return {"q_star": _fin(self.q_star), "chi1": _fin(self.chi1), "chi1_exact": self.chi1_exact,
                "mu1": self.mu1, "mu2": self.mu2, "s1": self.s1, "log10_m1": _fin(self.log10_m1),
                "spread": _fin(self.spread),
                "exact_spread": None if self.exact_spread is None else _fin(self.exact_spread),
                "fuss_catalan": list(self.fuss_catalan),
                "statement": self.statement}

    def __str__(self) -> str:
        return (f"χ1 = {self.chi1_exact or f'{self.chi1:.6g}'}, log10 χ1^L = {self.log10_m1:.4g}; μ1 = {self.mu1:.4g}, "
                f"μ2 = {self.mu2:.4g}\n  {self.statement}")

    def _repr_markdown_(self) -> str:
        return "\n\n".join(line.strip() for line in str(self).splitlines())


def _fin(v: float) -> float | None:
    return v if isinstance(v, (int, float)) and math.isfinite(v) else None


def _mus(act: Activation, q: float) -> tuple[float, float]:
    if q == 0:  # the limit q → 0+: each side's φ'(0±)^(2k), averaged; exact, so an isometry's spread is 0, not -1e-14
        t = sp.Symbol("t", positive=True)
        sides = [sp.limit(act.derivative.subs(z, sign * t), t, 0) for sign in (-1, 1)]
        return tuple(float((sides[0] ** (2 * k) + sides[1] ** (2 * k)) / 2) for k in (1, 2))  # type: ignore[return-value]
    d = sp.lambdify(z, act.derivative, modules=["numpy"])
    ks = mf.kinks(act.derivative)
    f2 = lambda a: np.asarray(d(a), dtype=float) ** 2 * np.ones_like(a)  # noqa: E731
    return mf.gauss_expect(f2, q, ks), mf.gauss_expect(lambda a: f2(a) ** 2, q, ks)


def theory(activation: str | Activation, init: str, sigma_w2: Number, sigma_b2: Number, depth: int,
           width: int) -> Theory:
    """The predictions beside a measurement (see the module docstring)."""
    act = get(activation)
    res = mf.mean_field(act, sigma_w2, sigma_b2)
    q = float(res.q_star)
    # μ1, μ2 at the q* that χ1 is taken at (q = 0 is the limit q → 0+, φ'(0)²): tanh at σw² = 1, σb² = 0
    # has q* = 0 and χ1 = 1, and μ's from q = 1 beside it predicted a spread of 0.58·L, where PSG's
    # isometry is 0. Only without a finite fixed point (q* = ∞) is q = 1 used.
    mu1, mu2 = _mus(act, q if q < math.inf else 1.0)
    chi1 = float(res.chi1)
    s1 = -1 if init == "gaussian" else 0
    spread = depth * (mu2 / mu1**2 - 1 - s1) if mu1 > 0 else math.inf
    linear = act.derivative == 1
    exact, fc = None, ()
    if linear and init == "gaussian":
        # exact, then shown by magnitude.sci: 3^L − 1 at width 1 passes float64's range from L = 647
        spread_q = linear_gaussian_m2(depth, width) - 1
        exact = magnitude.json_float(spread_q)
        exact = math.inf if exact is None else exact
        fc = tuple(int(fuss_catalan(depth, k)) for k in (1, 2, 3, 4))
        statement = ("linear Gaussian: E m1 = σw^{2L} at any width; moments → σw^{2Lk}·FC_L(k); "
                     f"spread exactly {magnitude.sci(spread_q)} at width {width} (→ L = {depth})")
    elif linear:
        exact = 0.0
        sv = sp.Pow(to_rational(sigma_w2), sp.Rational(depth, 2), evaluate=False)   # σw^L past 1e308 too
        statement = f"linear orthogonal: every singular value is exactly σw^L = {magnitude.sci(sv)}"
    else:
        statement = ("PSG 2017 (width → ∞): m1 = χ1^L, spread m2/m1² − 1 = L(μ2/μ1² − 1 − s1) = "
                     f"{spread:.4g}"
                     + ("; ReLU-like φ'² ∈ {0, 1}: μ2/μ1² = 2, spread ≥ L for any init, no isometry"
                        if abs(mu2 / mu1**2 - 2) < 1e-12 else ""))
    return Theory(q, chi1, str(res.chi1) if res.exact else None, mu1, mu2, s1,
                  depth * math.log10(chi1) if chi1 > 0 else -math.inf, spread, statement, exact, fc)


# ----------------------------------------------------------------------------- measurement




def random_weights(xp: Any, rng: Any, init: str, n: int, sigma_w2: float, batch: int) -> Any:
    """``batch`` n×n weights: entries N(0, σw²/n), or σw·O with O Haar-orthogonal.

    O is the Q of a Gaussian matrix's QR with R's signs moved into it (Mezzadri 2007). On the CPU
    with SciPy, the factorisation itself is skipped (:func:`haar_householder`): a third of the cost.
    """
    if init == "gaussian":
        return rng.standard_normal((batch, n, n)) * math.sqrt(sigma_w2 / n)
    if xp is np and _lapack() is not None:
        return haar_householder(rng, n, batch) * math.sqrt(sigma_w2)
    return haar_qr(xp, rng.standard_normal((batch, n, n))) * math.sqrt(sigma_w2)


def haar_qr(xp: Any, g: Any) -> Any:
    """Haar-orthogonal matrices from Gaussian ones ``g`` (batch × n × n): Q·diag(sign R_jj) of g = QR."""
    q, r = xp.linalg.qr(g)
    sign = xp.sign(xp.diagonal(r, axis1=-2, axis2=-1))
    sign = xp.where(sign == 0, 1.0, sign)
    return q * sign[..., None, :]


def haar_householder(rng: Any, n: int, batch: int) -> np.ndarray:
    """Haar-orthogonal matrices as LAPACK's QR of a Gaussian matrix would give them, without factorising it.

    Householder QR of a Gaussian G reflects, at step j, rows j..n of column j of H_(j-1)⋯H_1 G, and
    that vector is N(0, I) and independent of the earlier ones (the H_i depend on earlier columns
    only; a Gaussian vector is rotation invariant). So Q = H_1⋯H_n is built from independent Gaussian
    vectors x_j of lengths n, n−1, …, 1 directly (Stewart 1980), with LAPACK's reflector convention
    (H x = β e1, β = −sign(x_1)‖x‖) and R_jj = β_j; dorgqr forms Q, and Q·diag(sign β) is Haar.
    Only n(n+1)/2 normals are drawn and no O(n³) factorisation runs.
    """
    dorgqr = _lapack().dorgqr
    iu = np.triu_indices(n)
    out = np.empty((batch, n, n))
    for b in range(batch):
        a_t = np.zeros((n, n))
        a_t[iu] = rng.standard_normal(iu[0].size)  # row j of aᵀ = column j of a: x_j from the diagonal down
        v_t, tau, sign = _reflectors(a_t)
        q, _, info = dorgqr(v_t.T, tau, lwork=64 * n, overwrite_a=True)  # v_t.T is Fortran-ordered: no copy
        if info != 0:  # pragma: no cover - LAPACK reports an argument error only
            raise RuntimeError(f"dorgqr failed with info = {info}")
        out[b] = q * sign[None, :]
    return out


def _reflectors(a_t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LAPACK dlarfg on every row j of the upper triangular ``a_t`` (columns j..n), in place.

    Returns the reflectors (row j: zero up to j, then v_j without its unit head), τ and sign β.
    """
    alpha = np.diagonal(a_t).copy()
    np.fill_diagonal(a_t, 0.0)
    xnorm = np.sqrt(np.einsum("ij,ij->i", a_t, a_t))
    reflect = xnorm > 0                       # a zero tail (always so in the last row) leaves H = I
    beta = np.where(reflect, -np.copysign(np.hypot(alpha, xnorm), alpha), alpha)
    tau = np.where(reflect, (beta - alpha) / np.where(beta == 0, 1.0, beta), 0.0)
    a_t /= np.where(reflect, alpha - beta, 1.0)[:, None]
    return a_t, tau, np.where(beta < 0, -1.0, 1.0)


def _lapack() -> Any:
    try:
        from scipy.linalg import lapack
    except ImportError:  # SciPy is optional: NumPy's QR is the route then
        return None
    return lapack


@dataclass(frozen=True)
class AtDepth:
    """The spectrum of J after ``depth`` layers, over all samples (log10 of singular values)."""

    depth: int
    log10_quantiles: tuple[float, ...]
    log10_condition: float
    resolved: bool
    log10_m1: float
    m1_stderr_rel: float
    spread: float
    spread_stderr: float
    histogram: tuple[tuple[float, ...], tuple[int, ...]]
    moments: tuple[float, ...] = ()
    """m_k/m1^k for k = 1..4 (m_k = mean of σ^{2k}): scale-free, FC_L(k) for linear Gaussian nets as n → ∞."""

    def as_dict(self) -> dict:
        return {"depth": self.depth, "quantiles": list(QUANTILES), "normalised_moments": [_fin(v) for v in self.moments],
                "log10_singular_value_quantiles": [_fin(v) for v in self.log10_quantiles],
                "log10_condition_number": _fin(self.log10_condition), "resolved": self.resolved,
                "log10_m1": _fin(self.log10_m1), "m1_stderr_rel": _fin(self.m1_stderr_rel),
                "spread": _fin(self.spread), "spread_stderr": _fin(self.spread_stderr),
                "histogram_log10_edges": list(self.histogram[0]),
                "histogram_counts": list(self.histogram[1])}

    def __str__(self) -> str:
        return (f"depth {self.depth}: log10 σ at quantiles {', '.join(f'{p:g}' for p in QUANTILES)}: {_q(self)}; "
                + (f"log10 cond {self.log10_condition:.4g}" if not math.isnan(self.log10_condition) else
                   "no condition number (J = 0)")
                + ("" if self.resolved else " (smallest σ below float64 resolution: a lower bound)"))

    def _repr_markdown_(self) -> str:
        return str(self)


def _summarise(depth: int, sv: np.ndarray, log_scale: np.ndarray) -> AtDepth:
    """Quantiles, condition number, m1 and spread from scaled singular values ``sv`` (samples × n)."""
    smax = sv.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):  # a J = 0 sample has no condition number (nan)
        lg = np.log10(sv) + log_scale[:, None]
        cond = np.log10(smax) - np.log10(sv.min(axis=1))
    resolved = bool(np.all(sv.min(axis=1) >= RESOLUTION * smax))
    m1 = np.mean(sv**2, axis=1)
    m2 = np.mean(sv**4, axis=1)
    # ratios of sample means, each sample rescaled to a common scale first
    ref = log_scale.max()
    w1 = m1 * 10.0 ** (2 * (log_scale - ref))
    w2 = m2 * 10.0 ** (4 * (log_scale - ref))
    mean1 = float(w1.mean())
    if mean1 == 0:  # J is exactly 0 in every sample (e.g. a layer of inactive ReLU units): m1 = 0, no ratios
        nan = math.nan
        return AtDepth(depth, _quantiles(lg), nan, resolved, -math.inf, nan, nan, nan,
                       ((-0.5, 0.5), (0,)), (nan,) * 4)
    se = float(w1.std(ddof=1) / math.sqrt(len(w1)) / mean1) if len(w1) > 1 else math.nan
    spread = float(w2.mean() / mean1**2 - 1)
    spread_se = _jackknife(w1, w2) if len(w1) > 1 else math.nan
    with np.errstate(over="ignore"):
        moments = tuple(float(np.mean(np.mean(sv ** (2 * k), axis=1) * 10.0 ** (2 * k * (log_scale - ref))))
                        / mean1**k for k in (1, 2, 3, 4))
    finite = lg[np.isfinite(lg)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    # an exact isometry puts every value in one point: give the histogram a unit-wide range around it
    counts, edges = np.histogram(finite, bins=40, range=(lo, hi) if hi - lo > 1e-9 else (lo - 0.5, hi + 0.5))
    return AtDepth(depth, _quantiles(lg), float(np.nanmax(cond)), resolved,
                   math.log10(mean1) + 2 * float(ref), se, spread, spread_se,
                   (tuple(float(e) for e in edges), tuple(int(c) for c in counts)), moments)


def _jackknife(w1: np.ndarray, w2: np.ndarray) -> float:
    """Jackknife standard error of mean(w2)/mean(w1)² − 1 over the samples."""
    n = len(w1)
    with np.errstate(divide="ignore", invalid="ignore"):  # one sample with J ≠ 0: leaving it out leaves 0/0
        loo = ((w2.sum() - w2) / (n - 1)) / ((w1.sum() - w1) / (n - 1)) ** 2 - 1
        return float(math.sqrt((n - 1) / n * np.sum((loo - loo.mean()) ** 2)))


def _quantiles(lg: np.ndarray) -> tuple[float, ...]:
    """Quantiles of log10 σ where exact zeros (−inf: a singular J, e.g. dead ReLU units) stay −inf."""
    flat = np.sort(lg.ravel())
    idx = np.round(np.asarray(QUANTILES) * (flat.size - 1)).astype(int)
    return tuple(float(flat[i]) for i in idx)


@dataclass(frozen=True)
class SpectrumResult:
    """Measured spectra at the recorded depths, and the theory for the full depth."""

    activation: str
    init: str
    sigma_w2: str
    sigma_b2: str
    width: int
    depth: int
    samples: int
    seed: int
    backend: str
    q_input: float
    at: tuple[AtDepth, ...]
    theory: Theory

    def agreement(self) -> dict:
        """Measured against predicted at the full depth, within 4 standard errors plus the finite-width allowance.

        The allowance is (L/n)·|prediction| for the spread and L/n for m1 (relative): the order of the
        leading 1/n correction, exact for linear Gaussian nets (where the exact finite-width spread is
        compared instead, with no allowance), an allowance, not a proof, for nonlinear ones.
        """
        a, t, ratio = self.at[-1], self.theory, self.depth / self.width
        exact = t.exact_spread is not None
        pred = t.exact_spread if exact else t.spread
        allow = 0.0 if exact else ratio * abs(pred)
        se = a.spread_stderr if math.isfinite(a.spread_stderr) else 0.0
        m1_off = abs(10 ** (a.log10_m1 - t.log10_m1) - 1)
        m1_tol = 4 * (a.m1_stderr_rel if math.isfinite(a.m1_stderr_rel) else 0.0) + (0 if exact else ratio)
        return {"spread_predicted": pred, "spread_measured": a.spread, "spread_tolerance": 4 * se + allow,
                # None: J = 0 in every sample, so there is no measured spread to agree or disagree
                "spread_agrees": abs(a.spread - pred) <= 4 * se + allow + 1e-9 if math.isfinite(a.spread) else None,
                "m1_relative_error": m1_off, "m1_tolerance": m1_tol, "m1_agrees": m1_off <= m1_tol + 1e-9}

    def as_dict(self) -> dict:
        return {"activation": self.activation, "init": self.init, "sigma_w2": self.sigma_w2,
                "sigma_b2": self.sigma_b2, "width": self.width, "depth": self.depth, "samples": self.samples,
                "seed": self.seed, "backend": self.backend, "q_input": self.q_input,
                "measured": [a.as_dict() for a in self.at], "theory": self.theory.as_dict(),
                "agreement": {k: _fin(v) if isinstance(v, float) else v for k, v in self.agreement().items()}}

    def __str__(self) -> str:
        t, last = self.theory, self.at[-1]
        lines = [f"J = D_L W_L ⋯ D_1 W_1 for {self.activation}, {self.init} init, σw² = {self.sigma_w2}, "
                 f"σb² = {self.sigma_b2}, width {self.width}, {self.samples} sample(s), seed {self.seed}, "
                 f"input pre-activations of variance {self.q_input:.4g}"
                 + ("" if self.q_input == self.theory.q_star else " (q* is 0 or ∞: 1 used)")]
        lines += [f"  {a}" for a in self.at]
        lines += [f"measured at L = {self.depth}: log10 m1 = {last.log10_m1:.4g}"
                  + (f" (± {last.m1_stderr_rel:.2g} relative)" if math.isfinite(last.m1_stderr_rel) else "")
                  + (f", spread m2/m1² − 1 = {last.spread:.4g}" if math.isfinite(last.spread) else
                     " (m1 = 0: J is 0 in float64 in every sample, so no spread is measured; some φ'(z) is 0 there, "
                     "exactly as ReLU's for z <= 0, or by underflow as tanh'(z) beyond |z| ≈ 19: the true J may be "
                     "tiny, not 0)")
                  + (f" ± {last.spread_stderr:.2g}" if math.isfinite(last.spread_stderr) else ""),
                  f"theory: {t}"]
        if t.fuss_catalan:
            lines.append("  m_k/m1^k, k = 1..4: measured " + ", ".join(f"{v:.4g}" for v in last.moments)
                         + "; Fuss–Catalan (n → ∞) " + ", ".join(map(str, t.fuss_catalan)))
        lines += [
                  _agreement_line(self.agreement(), self.samples)]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        head = ["depth"] + [f"log10 σ q{p:g}" for p in QUANTILES] + ["log10 cond", "m2/m1²−1"]
        rows = [[str(a.depth)] + [f"{v:.4g}" for v in a.log10_quantiles] + [f"{a.log10_condition:.4g}", f"{a.spread:.4g}"]
                for a in self.at]
        g = self.agreement()
        return "\n".join([f"**{self.activation}**, {self.init} init, σw² = {self.sigma_w2}, σb² = {self.sigma_b2}, "
                          f"width {self.width}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                          *("| " + " | ".join(r) + " |" for r in rows), "", f"Theory: {self.theory.statement}", "",
                          f"Predicted spread {g['spread_predicted']:.4g}, " + (
                              f"measured {g['spread_measured']:.4g} (tolerance {g['spread_tolerance']:.2g}): "
                              f"{'agrees' if g['spread_agrees'] else 'disagrees'}." if g['spread_agrees'] is not None
                              else "not measured: J is 0 in float64 in every sample.")])


def _agreement_line(g: dict, samples: int) -> str:
    verdict = lambda ok: "agrees" if ok else "DISAGREES"  # noqa: E731
    pred = f"{g['spread_predicted']:.4g}" if math.isfinite(g["spread_predicted"]) else "one beyond float64 (above)"
    spread = (f"spread {g['spread_measured']:.4g} vs {pred} (tolerance "
              f"{g['spread_tolerance']:.2g}) {verdict(g['spread_agrees'])}" if g["spread_agrees"] is not None else
              f"spread not measured (J = 0 in float64 in every sample) vs {pred}")
    return (f"measured vs predicted: {spread}; m1 off by "
            f"{g['m1_relative_error']:.2g} relative (tolerance {g['m1_tolerance']:.2g}) {verdict(g['m1_agrees'])}"
            + ("; one sample gives no standard error" if samples < 2 else ""))


def _q(a: AtDepth) -> str:
    return " ".join(f"{v:.3g}" for v in a.log10_quantiles)


def _check(width: int, depth: int, samples: int, init: str, at: Sequence[int],
           backend: str = "numpy") -> tuple[int, ...]:
    for what, v, lo, hi in (("width", width, 1, MAX_WIDTH), ("depth", depth, 1, MAX_DEPTH),
                            ("samples", samples, 1, MAX_SAMPLES)):
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise InvalidValueError(f"{what} must be an integer in {lo}..{hi}, got {v!r}")
    if init not in INITS:
        raise InvalidValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    most = MAX_WORK if backend == "cupy" else MAX_CPU_WORK
    if samples * depth * width**3 > most:
        raise InvalidValueError(f"samples × depth × width³ = {samples * depth * width**3:.3g} exceeds {most:.3g} "
                                f"on {backend} (seconds of work; --backend cupy takes up to {MAX_WORK:.3g}); lower one of them")
    ds = tuple(sorted(set(at) | {depth}))
    if any(isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= depth for d in ds):
        raise InvalidValueError(f"recorded depths must be integers in 1..{depth}, got {list(at)}")
    return ds


def _functions(act: Activation, backend: str) -> tuple[Callable, Callable]:
    mods = ["cupy"] if backend == "cupy" else ["scipy", "numpy"]
    return sp.lambdify(z, act.expr, modules=mods), sp.lambdify(z, act.derivative, modules=mods)


def spectrum(activation: str | Activation, width: int = 256, depth: int = 50, init: str = "orthogonal",
             sigma_w2: Number = 1, sigma_b2: Number = 0, samples: int = 1, seed: int = 0,
             at: Sequence[int] = (), backend: str = "numpy") -> SpectrumResult:
    """Measure J's singular values after each depth in ``at`` (and ``depth``) over ``samples`` networks."""
    ds = _check(width, depth, samples, init, at, backend)
    float_activation(activation)
    if to_rational(sigma_w2, "sigma_w2") == 0:  # every W is 0: J = 0, no singular values to spread (was ZeroDivisionError)
        raise InvalidValueError("sigma_w2 = 0 makes every W zero, so J = 0 exactly and has no spectrum to measure; "
                                "give sigma_w2 > 0")
    act, xp = get(activation), array_module(backend)
    shown = lambda v: v.strip() if isinstance(v, str) else str(to_rational(v))  # noqa: E731  (as the user wrote it)
    th = theory(act, init, sigma_w2, sigma_b2, depth, width)
    sw, sb = float(to_rational(sigma_w2)), float(to_rational(sigma_b2))
    if not (0 < sw < math.inf and sb < math.inf):   # 1e-400 became 0.0 (every W zero), 1e400 inf (SVD failed)
        raise InvalidValueError(f"to draw weights, sigma_w2 must lie in float64's range (1e-308 .. 1e308) and "
                                f"sigma_b2 below 1e308, got {shown(sigma_w2)} and {shown(sigma_b2)}; the mean-field "
                                "theory alone ('symvg meanfield') takes any")
    q_in = th.q_star if 0 < th.q_star < math.inf else 1.0
    phi, dphi = _functions(act, backend)
    rng = xp.random.default_rng(seed)
    h = phi(rng.standard_normal((samples, width)) * math.sqrt(q_in))  # pre-activations at q*, as mean field has them
    J, log_scale, out = None, np.zeros(samples), []
    varies = z in act.derivative.free_symbols  # a constant φ' (linear) needs no z: an overflowed h cannot change D
    for layer in range(1, depth + 1):
        w = random_weights(xp, rng, init, width, sw, samples)
        with np.errstate(over="ignore", invalid="ignore"):
            zl = xp.einsum("bij,bj->bi", w, h) + rng.standard_normal((samples, width)) * math.sqrt(sb)
            h = phi(zl) * xp.ones_like(zl)
        if varies and not bool(xp.all(xp.isfinite(zl))):
            raise OverflowReport(f"the forward pass overflows float64 at layer {layer} (σw² = {shown(sigma_w2)} "
                                 f"grows the pre-activations of {act.label}): its φ'(z) would be read off inf or NaN, "
                                 "so no spectrum is measured; lower --depth or --sigma-w2", layers=(layer,))
        J, norm = _step(xp, J, w, dphi(zl) * xp.ones_like(zl))
        log_scale = log_scale + np.log10(_host(norm))
        if layer in ds:
            # singular values straight from J (LAPACK gesdd, no vectors): accurate to σ_max·ε, where an
            # eigensolver on JᵀJ would lose the small ones below σ_max·√ε
            out.append(_summarise(layer, _host(xp.linalg.svd(J, compute_uv=False)), log_scale))
    return SpectrumResult(act.label, init, shown(sigma_w2), shown(sigma_b2), width, depth,
                          samples, seed, backend, q_in, tuple(out), th)


def _step(xp: Any, J: Any, w: Any, d: Any) -> tuple[Any, Any]:
    """J ← D W J (W J one batched matmul, D a row scaling), then rescaled to unit mean square singular value.

    The rescaling keeps depth-200 products from overflowing or underflowing; the caller keeps the
    scale in log10. The first layer's J is D W itself.
    """
    J = w.copy() if J is None else xp.matmul(w, J)
    J *= d[:, :, None]
    big = xp.max(xp.abs(J), axis=(1, 2))   # scaled first: J² of entries near 1e160 overflowed (σw² = 1e300)
    big = xp.where(big > 0, big, 1.0)
    J /= big[:, None, None]
    norm = big * xp.sqrt(xp.einsum("bij,bij->b", J, J) / J.shape[-1])
    norm = xp.where(norm > 0, norm, 1.0)
    J *= (big / norm)[:, None, None]
    return J, norm


def plot_histograms(result: SpectrumResult) -> Any:
    """One histogram of log10 σ per recorded depth (matplotlib imported only here)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise BackendUnavailableError("plotting needs matplotlib: pip install symvg[plot]") from None
    fig = Figure(figsize=(6.4, 1.6 + 1.4 * len(result.at)))
    axes = fig.subplots(len(result.at), 1, squeeze=False)[:, 0]
    for ax, a in zip(axes, result.at):
        edges, counts = a.histogram
        ax.stairs(counts, edges, fill=True)
        ax.set_ylabel(f"L = {a.depth}")
    axes[-1].set_xlabel("log10 singular value of J")
    fig.suptitle(f"{result.activation}, {result.init}, σw² = {result.sigma_w2}, σb² = {result.sigma_b2}, "
                 f"n = {result.width}")
    return fig


def _host(a: Any) -> np.ndarray:
    return np.asarray(a.get() if hasattr(a, "get") else a, dtype=float)


__all__ = ["AtDepth", "INITS", "SpectrumResult", "Theory", "fuss_catalan", "linear_gaussian_m2",
           "haar_householder", "haar_qr", "plot_histograms", "random_weights", "spectrum", "theory"]
