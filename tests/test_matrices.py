"""The vector chain rule: width 1 is the scalar chain, it equals torch.autograd, and the norm bounds hold."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from symvg.symbolic.activations import get
from symvg.symbolic.chain import Chain
from symvg.symbolic.derive import derive
from symvg.errors import InvalidChainError, InvalidValueError
from symvg.theory.matrices import D, H, W, backprop, delta, derivative_floor, derive_vector, norm_bounds


@pytest.mark.parametrize("act", ["tanh", "sigmoid"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_width_one_is_the_scalar_chain(act, k):
    # An independent route: derive.py's scalar chain, written with scalar symbols w_j, z_j, h_j.
    chain, ws = Chain(3, act), (1, 1, 1, 1)
    a = get(act)
    mapping = {delta(3, ws): sp.Matrix([[chain.dloss()]])}
    for j in range(1, 4):
        mapping[W(j, ws)] = sp.Matrix([[chain.w(j)]])
        mapping[D(j, ws)] = sp.Matrix([[a.prime(chain.z(j))]])
    mapping[H(k - 1, ws)] = sp.Matrix([[chain.h(k - 1)]])
    vec = derive_vector(ws, act, wrt=k).substitute(mapping)
    assert vec.shape == (1, 1)
    assert sp.simplify(vec[0, 0] - derive(chain, k).product.doit()) == 0


def test_factors_and_latex_name_every_matrix():
    d = derive_vector((3, 4, 5, 2), "tanh", wrt=1)
    assert [f.kind for f in d.factors] == ["loss", "activation", "weight", "activation", "weight", "activation", "input"]
    assert d.gradient.shape == (4, 3)
    tex = d.latex()
    assert r"W_{2}^{T}" in tex and r"W_{3}^{T}" in tex and r"\delta_{3}" in tex
    assert "dL/dW1" in str(d) and d.as_dict()["gradient"] == str(d.gradient)


def test_bad_specs_are_refused():
    with pytest.raises(InvalidChainError):
        derive_vector((3,), "tanh")
    with pytest.raises(InvalidChainError):
        derive_vector((3, 0), "tanh")
    with pytest.raises(InvalidChainError):
        derive_vector((3, 3), "tanh", wrt=2)
    with pytest.raises(InvalidValueError):
        backprop([np.ones((2, 3))], None, np.ones(2), np.ones(2))


def _net(rng, widths, scale=1.0):
    ws = [rng.normal(0, scale / math.sqrt(a), (b, a)) for a, b in zip(widths, widths[1:])]
    bs = [rng.normal(0, 0.1, b) for b in widths[1:]]
    return ws, bs


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "leaky_relu:0.1", "softplus"])
def test_equals_torch_autograd(act):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    widths = (3, 5, 4, 2)
    ws, bs = _net(rng, widths, 1.5)
    x, y = rng.normal(size=3), rng.normal(size=2)
    bp = backprop(ws, bs, x, y, act)
    tw = [torch.tensor(w, requires_grad=True) for w in ws]
    tb = [torch.tensor(b, requires_grad=True) for b in bs]
    fn = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "softplus": torch.nn.functional.softplus,
          "leaky_relu:0.1": lambda t: torch.nn.functional.leaky_relu(t, 0.1)}[act]
    h = torch.tensor(x)
    for w, b in zip(tw, tb):
        h = fn(w @ h + b)
    loss = ((h - torch.tensor(y)) ** 2).sum()
    loss.backward()
    assert bp.loss == pytest.approx(loss.item(), rel=1e-12)
    for g, t in zip(bp.grads, tw):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-10, atol=1e-14)
    for g, t in zip(bp.bias_grads, tb):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_derivative_floor():
    assert derivative_floor("leaky_relu:0.2") == sp.Rational(1, 5)
    assert derivative_floor("relu") == 0 and derivative_floor("sigmoid") == 0
    assert derivative_floor("linear") == 1


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu", "leaky_relu:0.1", "linear", "elu"])
def test_norm_bounds_never_violated_on_random_networks(act):
    rng = np.random.default_rng(7)
    for trial in range(20):
        depth = int(rng.integers(1, 12))
        widths = tuple(int(v) for v in rng.integers(1, 9, depth + 1))
        ws, bs = _net(rng, widths, float(rng.uniform(0.3, 3)))
        bp = backprop(ws, bs, rng.normal(size=widths[0]), rng.normal(size=widths[-1]), act)
        norms = [float(np.linalg.norm(d)) for d in bp.deltas]
        b = norm_bounds(ws, act, norms[-1])
        assert b.holds(norms), (trial, widths, norms, b)


def test_bounds_are_tight_for_linear_orthogonal_layers():
    # Orthogonal Wᵀ preserves norms and φ' = 1: upper = lower = measured (a bound that was loose would fail).
    rng = np.random.default_rng(3)
    ws = [3 * np.linalg.qr(rng.normal(size=(6, 6)))[0] for _ in range(5)]
    bp = backprop(ws, None, rng.normal(size=6), rng.normal(size=6), "linear")
    b = norm_bounds(ws, "linear", float(np.linalg.norm(bp.deltas[-1])))
    for k, d in enumerate(bp.deltas):
        assert math.log10(np.linalg.norm(d)) == pytest.approx(b.upper[k], abs=1e-12)
        assert b.lower[k] == pytest.approx(b.upper[k], abs=1e-12)
    assert b.lower[0] - b.lower[-1] == pytest.approx(5 * math.log10(3), abs=1e-12)


def test_lower_bound_is_zero_for_a_widening_layer():
    # W2ᵀ maps ℝ^4 → ℝ^2: it has a kernel, so no positive lower bound exists.
    b = norm_bounds([np.ones((2, 3)), np.ones((4, 2))], "leaky_relu:0.5", 1.0)
    assert b.lower[0] == -math.inf and b.lower[1] == -math.inf and b.lower[2] == 0.0


def test_backprop_overflow_is_reported_not_measured_as_nan():
    # vector --widths 8×128 -a relu --sigma-w2 1e6 --check printed ‖δ_k‖ = nan in every row and then
    # "bounds hold at every layer" (a NaN comparison); the forward pass had overflowed float64 at layer 112
    from symvg.errors import OverflowReport
    ws = [1e200 * np.eye(2), 1e200 * np.eye(2)]
    with pytest.raises(OverflowReport, match="forward pass overflows float64 at layer 2"):
        backprop(ws, None, np.ones(2), np.zeros(2), "relu")
    with pytest.raises(OverflowReport, match="backward pass overflows"):   # forward bounded by tanh, δ is not
        # z1 = 1e-150, z2 = 1: forward finite; δ_0 ≈ 1e150·1e150·tanh'(1)·2e10 ≈ 8e309 past float64
        backprop([1e150 * np.eye(2), 1e150 * np.eye(2)], None, np.full(2, 1e-300), np.full(2, -1e10), "tanh")


def test_deep_vector_derivations_print_in_linear_time_and_are_bounded():
    # vector --widths 2×241 took 23 s to print (SymPy's MatMul printer is quadratic); 1000 layers took minutes
    import time
    from symvg.theory.matrices import MAX_LAYERS
    small = derive_vector((2, 3, 4, 2), "tanh", 2)
    assert str(small).endswith(f"= {small.gradient}  [4×3]")          # the same text as SymPy's printer
    assert sp.latex(small.gradient) in small.latex()
    t = time.perf_counter()
    d = derive_vector((2,) * 301, "tanh", 1)
    str(d), d.latex(), d.as_dict()
    assert time.perf_counter() - t < 5          # was about 35 s
    with pytest.raises(InvalidChainError, match="at most"):
        derive_vector((2,) * (MAX_LAYERS + 2), "tanh", 1)
