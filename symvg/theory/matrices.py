"""The vector chain rule, exactly: a width-n layer multiplies the backward signal by a matrix.

For h_k = φ(z_k), z_k = W_k h_{k-1} + b_k with W_k ∈ ℝ^{n_k × n_{k-1}} and L = ‖h_N − y‖²:

    δ_N = ∂L/∂h_N = 2(h_N − y),   δ_k = W_{k+1}ᵀ D_{k+1} δ_{k+1},   D_k = diag(φ'(z_k)),
    ∂L/∂W_k = (D_k δ_k) h_{k-1}ᵀ,  ∂L/∂b_k = D_k δ_k.

Derived here as SymPy matrix expressions (``MatrixSymbol``), factor by factor, like the scalar chain:

>>> d = derive_vector((3, 4, 2), "tanh", wrt=1)
>>> for f in d.factors: print(f)
dL/dh2 = 2*(h2 - y)  [2×1]
(dh2/dz2)ᵀ = D2 = diag(tanh'(z2))  [2×2]
(dz2/dh1)ᵀ = W2.T  [4×2]
(dh1/dz1)ᵀ = D1 = diag(tanh'(z1))  [4×4]
dz1/dW1 = h0.T (outer product)  [1×3]
>>> d.gradient, d.gradient.shape
(D1*W2.T*D2*delta2*h0.T, (4, 3))

The norm bounds (proved in docs/matrices.md): with γ = sup|φ'| and φ'_min = inf|φ'|,

    ∏_{j>k} φ'_min σ_min(W_jᵀ) · ‖δ_N‖  ≤  ‖δ_k‖  ≤  ∏_{j>k} γ ‖W_j‖₂ · ‖δ_N‖.

>>> derivative_floor("leaky_relu:0.2"), derivative_floor("tanh"), derivative_floor("linear")
(1/5, 0, 1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import sympy as sp

from symvg import magnitude
from symvg.symbolic.activations import Activation, get
from symvg.symbolic.parse import z
from symvg.errors import InvalidChainError, InvalidValueError, OverflowReport

MAX_WIDTH = 4096
"""Largest layer width accepted (memory grows as width²)."""
MAX_LAYERS = 1000
"""Most layers in one derivation (1000 print in about a second)."""


def _widths(widths: Sequence[int]) -> tuple[int, ...]:
    ws = tuple(widths)
    if len(ws) < 2:
        raise InvalidChainError(f"widths must list n0 (input) and at least one layer, got {ws!r}")
    if len(ws) - 1 > MAX_LAYERS:
        raise InvalidChainError(f"widths must list at most {MAX_LAYERS} layers after n0, got {len(ws) - 1}")
    for n in ws:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_WIDTH:
            raise InvalidChainError(f"every width must be an integer in 1..{MAX_WIDTH}, got {n!r}")
    return tuple(int(n) for n in ws)


def W(j: int, widths: Sequence[int]) -> sp.MatrixSymbol:
    """The weight matrix W_j, n_j × n_{j-1}."""
    return sp.MatrixSymbol(f"W{j}", widths[j], widths[j - 1])


def D(j: int, widths: Sequence[int]) -> sp.MatrixSymbol:
    """D_j = diag(φ'(z_j)), n_j × n_j, as a symbol (its entries come from the forward pass)."""
    return sp.MatrixSymbol(f"D{j}", widths[j], widths[j])


def H(j: int, widths: Sequence[int]) -> sp.MatrixSymbol:
    """The layer output h_j (h0 is the input x), a column n_j × 1."""
    return sp.MatrixSymbol(f"h{j}", widths[j], 1)


def delta(j: int, widths: Sequence[int]) -> sp.MatrixSymbol:
    """δ_j = ∂L/∂h_j, a column n_j × 1."""
    return sp.MatrixSymbol(f"delta{j}", widths[j], 1)


@dataclass(frozen=True)
class MatrixFactor:
    """One local Jacobian (transposed, as the backward pass applies it): ``name = expr`` of ``kind`` at ``layer``."""

    name: str
    expr: sp.Basic
    kind: str
    layer: int
    note: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(int(s) for s in self.expr.shape)

    def __str__(self) -> str:
        shown = f"{self.expr}" if not self.note else f"{self.expr} = {self.note}"
        if self.kind == "loss":
            shown = self.note
        elif self.kind == "input":
            shown = f"{self.expr} (outer product)"
        return f"{self.name} = {shown}  [{self.shape[0]}×{self.shape[1]}]"

    def as_dict(self) -> dict:
        return {"name": self.name, "expr": str(self.expr), "latex": sp.latex(self.expr), "kind": self.kind,
                "layer": self.layer, "shape": list(self.shape), "note": self.note}

    def _repr_latex_(self) -> str:
        return f"${sp.latex(self.expr)}$"


@dataclass(frozen=True)
class VectorDerivation:
    """∂L/∂W_k of a fully connected network, factor by factor, and the recursion δ_k it unrolls."""

    widths: tuple[int, ...]
    activation: str
    wrt: int
    factors: tuple[MatrixFactor, ...]

    @property
    def depth(self) -> int:
        return len(self.widths) - 1

    @property
    def backward(self) -> sp.Basic:
        """δ_k = W_{k+1}ᵀ D_{k+1} ⋯ W_Nᵀ D_N δ_N, unrolled (δ_N itself when k = N)."""
        mats = self._backward_factors()
        return sp.MatMul(*mats) if len(mats) > 1 else mats[0]

    def _backward_factors(self) -> list:
        mats = [f.expr for f in reversed(self.factors) if f.kind in ("weight", "activation") and f.layer > self.wrt]
        return mats + [delta(self.depth, self.widths)]

    @property
    def gradient(self) -> sp.Basic:
        """∂L/∂W_k = D_k δ_k h_{k-1}ᵀ, with δ_k unrolled."""
        k, ws = self.wrt, self.widths
        return sp.MatMul(D(k, ws), *self._backward_factors(), H(k - 1, ws).T)

    def substitute(self, mapping: dict) -> sp.Matrix:
        """The gradient with explicit matrices put in for the symbols (e.g. 1×1 for width 1), multiplied out."""
        return sp.Matrix(self.gradient.xreplace(mapping).doit())

    def latex(self) -> str:
        """The derivation as LaTeX ``aligned`` rows: δ_N, the recursion, and the gradient."""
        k, n = self.wrt, self.depth
        rows = [rf"\delta_{{{n}}} &= \frac{{\partial L}}{{\partial h_{{{n}}}}} = 2\,(h_{{{n}}} - y)",
                rf"D_j &= \operatorname{{diag}}\big(\mathrm{{{self.activation}}}'(z_j)\big)",
                rf"\delta_{{{k}}} &= {_latex(self.backward)}",
                rf"\frac{{\partial L}}{{\partial W_{{{k}}}}} &= {_latex(self.gradient)}"]
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"

    def __str__(self) -> str:
        head = f"dL/dW{self.wrt} for a {self.activation} network, widths {'-'.join(map(str, self.widths))}:"
        tail = f"  dL/dW{self.wrt} = {_text(self.gradient)}  [{self.widths[self.wrt]}×{self.widths[self.wrt - 1]}]"
        return "\n".join([head] + [f"  {f}" for f in self.factors] + [tail])

    def as_dict(self) -> dict:
        return {"widths": list(self.widths), "activation": self.activation, "wrt": self.wrt,
                "factors": [f.as_dict() for f in self.factors], "backward": _text(self.backward),
                "gradient": _text(self.gradient), "latex": self.latex()}

    def _repr_latex_(self) -> str:
        return "$$" + self.latex() + "$$"


def _factors(e: sp.Basic) -> tuple:
    return e.args if isinstance(e, sp.MatMul) else (e,)


def _text(e: sp.Basic) -> str:
    """str of a product of matrix symbols, factor by factor: SymPy's printer took quadratic time (120 layers: 6 s,
    240: 23 s). The same text, as a test checks.

    >>> _text(derive_vector((2, 3, 2), "tanh", 1).gradient)
    'D1*W2.T*D2*delta2*h0.T'
    """
    return "*".join(map(str, _factors(e)))


def _latex(e: sp.Basic) -> str:
    """sp.latex of the product, factor by factor (the same text, in linear time)."""
    return " ".join(map(sp.latex, _factors(e)))


def derive_vector(widths: Sequence[int], activation: str | Activation = "tanh", wrt: int = 1) -> VectorDerivation:
    """Derive ∂L/∂W_wrt for the network with layer widths ``widths`` = (n0, n1, …, nN)."""
    ws = _widths(widths)
    n = len(ws) - 1
    if isinstance(wrt, bool) or not isinstance(wrt, int) or not 1 <= wrt <= n:
        raise InvalidChainError(f"wrt must be a layer index in 1..{n}, got {wrt!r}")
    act = get(activation)
    return _derive_vector(ws, act, wrt)


@lru_cache(maxsize=64)
def _derive_vector(ws: tuple[int, ...], act: Activation, k: int) -> VectorDerivation:
    n = len(ws) - 1
    fs = [MatrixFactor(f"dL/dh{n}", delta(n, ws), "loss", n, f"2*(h{n} - y)")]
    for j in range(n, k, -1):
        fs.append(MatrixFactor(f"(dh{j}/dz{j})ᵀ", D(j, ws), "activation", j, f"diag({act.name}'(z{j}))"))
        fs.append(MatrixFactor(f"(dz{j}/dh{j - 1})ᵀ", W(j, ws).T, "weight", j))
    fs.append(MatrixFactor(f"(dh{k}/dz{k})ᵀ", D(k, ws), "activation", k, f"diag({act.name}'(z{k}))"))
    fs.append(MatrixFactor(f"dz{k}/dW{k}", H(k - 1, ws).T, "input", k))
    return VectorDerivation(ws, act.label, k, tuple(fs))


# ----------------------------------------------------------------------------- numbers


@lru_cache(maxsize=64)
def float_activation(activation: str | Activation) -> Activation:
    """The activation, if its slope γ = sup|φ'| is a float64 number; the float simulations need one.

    >>> float_activation("leaky_relu:1e309")
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: leaky_relu(1.0e+309): γ = sup|φ'| = 1.0e+309 is beyond float64's range (1.8e308), so φ' cannot be simulated in floats; the exact commands (bound, derive) take it
    """
    act = get(activation)
    s = act.supremum
    if s.bounded and magnitude.json_float(s.value) is None:  # was an internal TypeError/OverflowError (dtype object)
        label = act.label if len(act.label) <= 60 else f"{act.name}({magnitude.short(s.value)})"
        raise InvalidValueError(f"{label}: γ = sup|φ'| = {magnitude.sci(s.value)} is beyond float64's range "
                                "(1.8e308), so φ' cannot be simulated in floats; the exact commands (bound, derive) take it")
    return act


def numpy_functions(activation: str | Activation) -> tuple[Callable, Callable]:
    """φ and φ' as NumPy functions (kinks by the catalogue's convention)."""
    act = float_activation(activation)
    mods = ["scipy", "numpy"] if _has_scipy() else ["numpy"]
    f, df = sp.lambdify(z, act.expr, modules=mods), sp.lambdify(z, act.derivative, modules=mods)
    return (lambda a: np.broadcast_to(f(a), np.shape(a)).astype(float),
            lambda a: np.broadcast_to(df(a), np.shape(a)).astype(float))


def _has_scipy() -> bool:
    try:
        import scipy.special  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class Backprop:
    """One forward and backward pass: ``deltas[k]`` = ∂L/∂h_k (k = 0..N), ``grads[k-1]`` = ∂L/∂W_k."""

    loss: float
    deltas: tuple[np.ndarray, ...]
    grads: tuple[np.ndarray, ...]
    bias_grads: tuple[np.ndarray, ...]
    derivatives: tuple[np.ndarray, ...]

    def as_dict(self) -> dict:
        return {"loss": self.loss, "delta_norms": [float(np.linalg.norm(d)) for d in self.deltas],
                "grad_norms": [float(np.linalg.norm(g)) for g in self.grads]}

    def __str__(self) -> str:
        return f"loss {self.loss:.6g}; ‖δ_k‖ = " + ", ".join(f"{v:.3g}" for v in self.as_dict()["delta_norms"])

    def _repr_markdown_(self) -> str:
        rows = [f"| {k} | {d:.4g} |" for k, d in enumerate(self.as_dict()["delta_norms"])]
        return "\n".join([f"Loss {self.loss:.6g}", "", "| k | ‖δ_k‖ |", "|---|---|", *rows])


def backprop(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray] | None, x: np.ndarray, y: np.ndarray,
             activation: str | Activation = "tanh") -> Backprop:
    """The vector chain rule in NumPy: forward pass, then δ_k = W_{k+1}ᵀ D_{k+1} δ_{k+1}.

    >>> bp = backprop([np.array([[2.0]])], None, np.array([1.0]), np.array([0.0]), "linear")
    >>> bp.loss, bp.grads[0].tolist()          # L = (2·1)², ∂L/∂W = 2·(2 − 0)·1
    (4.0, [[4.0]])
    """
    phi, dphi = numpy_functions(activation)
    ws = [np.asarray(w, dtype=float) for w in weights]
    bs = [np.zeros(w.shape[0]) for w in ws] if biases is None else [np.asarray(b, dtype=float) for b in biases]
    _check_shapes(ws, bs, np.asarray(x))
    hs, ds = [np.asarray(x, dtype=float)], []
    with np.errstate(over="ignore", invalid="ignore"):  # a non-finite value is reported below, not warned about
        for k, (w, b) in enumerate(zip(ws, bs), 1):
            zk = w @ hs[-1] + b
            _finite(zk, f"the forward pass overflows float64 at layer {k} (z_{k})", k)
            ds.append(dphi(zk))
            hs.append(phi(zk))
        r = hs[-1] - np.asarray(y, dtype=float)
        _finite(r, "the output h_N − y overflows float64", len(ws))
        deltas = [2 * r]
        for k, (w, d) in zip(range(len(ws), 0, -1), zip(reversed(ws), reversed(ds))):
            deltas.append(w.T @ (d * deltas[-1]))
            _finite(deltas[-1], f"the backward pass overflows float64 at δ_{k - 1}", k)
    deltas.reverse()
    bias_grads = tuple(d * deltas[k + 1] for k, d in enumerate(ds))
    grads = tuple(np.outer(g, hs[k]) for k, g in enumerate(bias_grads))
    with np.errstate(over="ignore"):
        loss = float(r @ r)
    _finite(np.asarray(loss), "the loss ‖h_N − y‖² overflows float64", len(ws))
    return Backprop(loss, tuple(deltas), grads, bias_grads, tuple(ds))


def _finite(a: np.ndarray, what: str, layer: int) -> None:
    """Refuse an inf or NaN: φ'(z), ‖δ_k‖ and the bounds' verdict would be read off it (nan 'held')."""
    if not np.all(np.isfinite(a)):
        raise OverflowReport(f"{what}: nothing is measured there; lower the weights (--sigma-w2) or the depth",
                             layers=(layer,))


def _check_shapes(ws: list, bs: list, x: np.ndarray) -> None:
    if not ws or len(ws) != len(bs):
        raise InvalidValueError(f"need one bias per weight matrix, got {len(ws)} weights and {len(bs)} biases")
    prev = x.shape[0] if x.ndim == 1 else -1
    for j, (w, b) in enumerate(zip(ws, bs), 1):
        if w.ndim != 2 or w.shape[1] != prev or b.shape != (w.shape[0],):
            raise InvalidValueError(f"layer {j}: W{j} has shape {w.shape} and b{j} {b.shape}; expected "
                                    f"(n{j}, {prev}) and (n{j},)")
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise InvalidValueError(f"layer {j}: weights and biases must be finite")
        prev = w.shape[0]


# ----------------------------------------------------------------------------- bounds


@lru_cache(maxsize=64)
def derivative_floor(activation: str | Activation) -> sp.Expr:
    """φ'_min = inf|φ'| where it is proved positive: the smallest |piece| when every piece of φ' is a constant.

    Otherwise 0 -- always a valid floor (tanh, sigmoid: φ' → 0 in the tails; ReLU: 0 on the left).
    """
    d = get(activation).derivative
    pieces = [e for e, _ in d.args] if isinstance(d, sp.Piecewise) else [d]
    if all(p.is_number and p.is_real for p in pieces):
        return sp.Min(*(abs(p) for p in pieces))
    return sp.Integer(0)


@dataclass(frozen=True)
class NormBounds:
    """log10 of the bounds on ‖δ_k‖ = ‖∂L/∂h_k‖, k = 0..N, from the spectral norms of the weights.

    ``upper[k]`` = log10(∏_{j>k} γ‖W_j‖₂ · ‖δ_N‖); ``lower[k]`` the same with φ'_min σ_min(W_jᵀ)
    (−inf when the floor is 0). Carried as log10 so depth-200 products neither overflow nor underflow.
    """

    activation: str
    gamma: float
    floor: float
    upper: tuple[float, ...]
    lower: tuple[float, ...]

    def holds(self, norms: Sequence[float], rel: float = 1e-9) -> bool:
        """Whether every measured ‖δ_k‖ lies within its bounds (``rel``: float round-off allowance)."""
        lg = [math.log10(v) if v > 0 else -math.inf for v in norms]
        slack = math.log10(1 + rel)
        return all(lo - slack <= m <= up + slack for m, lo, up in zip(lg, self.lower, self.upper))

    def as_dict(self) -> dict:
        fin = lambda v: v if math.isfinite(v) else None  # noqa: E731
        return {"activation": self.activation, "gamma": fin(self.gamma), "floor": fin(self.floor),
                "log10_upper": [fin(v) for v in self.upper], "log10_lower": [fin(v) for v in self.lower]}

    def __str__(self) -> str:
        return (f"{self.activation}: γ = {self.gamma:.6g}, φ'_min = {self.floor:.6g}; log10 bounds on ‖δ_k‖, k = 0.."
                f"{len(self.upper) - 1}: upper {_lg(self.upper[0])} … {_lg(self.upper[-1])}, "
                f"lower {_lg(self.lower[0])} … {_lg(self.lower[-1])}")

    def _repr_markdown_(self) -> str:
        rows = [f"| {k} | {_lg(lo)} | {_lg(up)} |" for k, (lo, up) in enumerate(zip(self.lower, self.upper))]
        return "\n".join([f"{self.activation}: γ = {self.gamma:.6g}, φ'_min = {self.floor:.6g}", "",
                          "| k | log10 lower | log10 upper |", "|---|---|---|", *rows])


def _lg(v: float) -> str:
    """A log10 bound for text: an exact 0 bound (floor φ'_min = 0) is log10 −∞, said as such, not as float ``-inf``.

    >>> _lg(-0.78191), _lg(-math.inf)
    ('-0.7819', '−∞ (bound 0)')
    """
    return f"{v:.4g}" if math.isfinite(v) else "−∞ (bound 0)"


def norm_bounds(weights: Sequence[np.ndarray], activation: str | Activation, delta_norm: float) -> NormBounds:
    """The proved bounds on every ‖δ_k‖ given the weights and ‖δ_N‖ (see the module docstring).

    >>> b = norm_bounds([2 * np.eye(2), 3 * np.eye(2)], "leaky_relu:0.5", 1.0)
    >>> [round(10**u, 9) for u in b.upper], [round(10**v, 9) for v in b.lower]
    ([6.0, 3.0, 1.0], [1.5, 1.5, 1.0])
    """
    act = get(activation)
    gamma, floor = float(act.gamma), float(derivative_floor(act))
    log_g = math.log10(gamma) if gamma > 0 else -math.inf
    log_f = math.log10(floor) if floor > 0 else -math.inf
    up = [_log10(delta_norm)]
    lo = [up[0]]
    for w in reversed([np.asarray(w, dtype=float) for w in weights]):
        s = np.linalg.svd(w, compute_uv=False)
        smin = float(s[-1]) if w.shape[1] >= w.shape[0] else 0.0  # inf‖Wᵀu‖ is 0 when Wᵀ has a kernel
        up.append(up[-1] + log_g + _log10(float(s[0])))
        lo.append(lo[-1] + log_f + _log10(smin))
    return NormBounds(act.label, gamma, floor, tuple(reversed(up)), tuple(reversed(lo)))


def _log10(v: float) -> float:
    return math.log10(v) if v > 0 else -math.inf


__all__ = ["Backprop", "MatrixFactor", "NormBounds", "VectorDerivation", "backprop", "derivative_floor",
           "derive_vector", "float_activation", "norm_bounds", "numpy_functions"]
