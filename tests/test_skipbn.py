"""Skip connections of any length and batch normalisation's backward factor, checked independently."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import sympy as sp

from symvg.symbolic.activations import get
from symvg.errors import InvalidValueError
from symvg.theory.residual import dphi, path_expansion
from symvg.theory.skipbn import (bn_backward, bn_forward, bn_jacobian, simulate_batchnorm, simulate_skips, skip_jacobian,
                          skip_paths)


@pytest.mark.parametrize("depth,length", [(5, 2), (6, 3), (4, 4)])
def test_skip_jacobian_equals_the_network_derivative(depth, length):
    # Independent route: mpmath's numerical derivative of the forward pass, at 40 digits.
    mpmath = pytest.importorskip("mpmath")
    act = get("tanh")
    rng = random.Random(depth * 10 + length)
    ws = [sp.Rational(rng.randint(-30, 30), 17) for _ in range(depth)]
    mpmath.mp.dps = 40

    def forward(x):
        hs = [x]
        for k in range(1, depth + 1):
            hs.append(mpmath.tanh(mpmath.mpf(ws[k - 1].p) / ws[k - 1].q * hs[-1]) + (hs[k - length] if k >= length
                                                                                     else 0))
        return hs[-1]

    direct = mpmath.diff(forward, mpmath.mpf(3) / 7)
    phi, dphi = (sp.lambdify(sp.Symbol("z", real=True), e, "mpmath") for e in (act.expr, act.derivative))
    a, h_vals = {}, [mpmath.mpf(3) / 7]
    for k in range(1, depth + 1):
        zk = mpmath.mpf(ws[k - 1].p) / ws[k - 1].q * h_vals[-1]
        a[sp.Symbol(f"a{k}", real=True)] = mpmath.mpf(ws[k - 1].p) / ws[k - 1].q * dphi(zk)
        h_vals.append(phi(zk) + (h_vals[k - length] if k >= length else 0))
    mine = sp.lambdify(list(a), skip_jacobian(depth, length), "mpmath")(*a.values())
    assert abs(float(mine) - float(direct)) < 1e-25 + 1e-20 * abs(float(direct))
    mpmath.mp.dps = 15


def test_length_one_is_the_residual_expansion():
    a = {sp.Symbol(f"a{j}", real=True): sp.Symbol(f"w{j}", real=True) * dphi(sp.Symbol(f"z{j}", real=True))
         for j in range(1, 5)}
    assert sp.expand(skip_jacobian(4, 1).xreplace(a) - path_expansion(4).expanded) == 0


def test_path_counts():
    fib = [1, 1]
    for _ in range(12):
        fib.append(fib[-1] + fib[-2])
    assert [skip_paths(n, 2) for n in range(2, 12)] == fib[2:12]
    assert skip_paths(7, 1) == 128
    for n, t in ((6, 2), (7, 3), (8, 8)):
        assert len(sp.Add.make_args(skip_jacobian(n, t))) == skip_paths(n, t)
    # the all-jump path (the constant 1) exists exactly when t divides N
    assert skip_jacobian(6, 3).as_coeff_Add()[0] == 1 and skip_jacobian(7, 3).as_coeff_Add()[0] == 0
    with pytest.raises(InvalidValueError):
        skip_jacobian(3, 4)


@pytest.mark.parametrize("length", [1, 2, 5])
def test_skip_bound_holds_on_random_networks(length):
    for seed in range(3):
        r = simulate_skips("tanh", width=12, depth=20, length=length, sigma_w2=2.0, seed=seed)
        assert r.log10_norm <= r.log10_bound + 1e-9
    # sigmoid without skips vanishes; skips keep the Jacobian of order one
    r = simulate_skips("sigmoid", width=12, depth=30, length=3, sigma_w2=1.0, seed=1)
    assert r.log10_plain < -10 and r.log10_norm > -1


def test_bn_jacobian_equals_sympy_diff():
    m = 4
    xs = sp.symbols(f"x1:{m + 1}", real=True)
    eps = sp.Rational(1, 10)
    mu = sum(xs) / m
    sigma = sp.sqrt(sum((x - mu) ** 2 for x in xs) / m + eps)
    ys = [(x - mu) / sigma for x in xs]
    point = {x: sp.Rational(v, 5) for x, v in zip(xs, (1, -3, 4, 2))}
    direct = sp.Matrix(m, m, lambda i, j: sp.diff(ys[i], xs[j])).xreplace(point)
    sub = {sp.Symbol(f"y{i + 1}", real=True): ys[i].xreplace(point) for i in range(m)}
    sub[sp.Symbol("sigma", positive=True)] = sigma.xreplace(point)
    diff = (bn_jacobian(m).xreplace(sub) - direct).evalf(40)
    assert max(abs(float(v)) for v in diff) < 1e-30


def test_bn_backward_matches_the_jacobian_and_its_spectrum():
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((3, 6)), rng.standard_normal((3, 6))
    y, sigma = bn_forward(x)
    dx = bn_backward(dy, y, sigma)
    for i in range(3):
        J = (np.eye(6) - np.ones((6, 6)) / 6 - np.outer(y[i], y[i]) / 6) / sigma[i, 0]
        np.testing.assert_allclose(dx[i], J.T @ dy[i], rtol=1e-12)
        ev = np.sort(np.linalg.eigvalsh(J * sigma[i, 0]))
        np.testing.assert_allclose(ev, [0, 0, 1, 1, 1, 1], atol=1e-12)   # ε = 0: a projection


def test_batchnorm_without_skips_explodes_at_init():
    # Yang et al. 2019: gradient explosion at initialisation; measured here as a per-layer factor above 1
    for act in ("linear", "relu"):
        for seed in range(2):
            assert simulate_batchnorm(act, width=32, depth=20, batch=4, seed=seed).growth > 1.1
    with pytest.raises(InvalidValueError):
        simulate_batchnorm(batch=2)


@pytest.mark.parametrize("x, eps", [((1, 2), 0), ((1, 2), "1/10"), ((1, 2, 3, 6), 0), ((1, 1, 1, 1), "1/100000")])
def test_bn_factor_eigenvalues_are_the_jacobians(x, eps):
    # SymPy's own eigenvalues of the exact Jacobian, independently: a batch of two has no 1/σ eigenvalue
    # (it was listed as "2 ≈ 2 (×0)")
    from symvg.theory.skipbn import bn_factor
    f = bn_factor(list(x), eps)
    assert f.eigenvalues == {sp.nsimplify(k): n for k, n in f.jacobian.eigenvals().items()}
    assert all(n > 0 for n in f.eigenvalues.values())


def test_bn_factor_beyond_float64_is_not_printed_as_0_or_inf():
    """x = (1, 2), ε = 1e-400: ∂y/∂x = (1/σ)·½(1 − y²)·[[1, −1], [−1, 1]] with 1 − y² = ε/(¼ + ε), so
    the entries are ±4e-400 (to 400 digits) and the y-eigenvalue ε/σ³ is 8e-400: floats printed them as 0.
    ε = 1e700 made σ ≈ 1e350 an inf float, and JSON refused it (internal error)."""
    import json
    from symvg.theory.skipbn import bn_factor
    tiny = bn_factor(["1", "2"], "1e-400")
    text = str(tiny)
    assert "[ 4.0e-400, -4.0e-400]" in text and "≈ 8.0e-400 (×1)" in text, text
    d = json.loads(json.dumps(bn_factor(["1", "2", "3"], "1e700").as_dict(), allow_nan=False))
    assert d["sigma_float"] is None and "float_note" in d
    assert "float_note" not in bn_factor(["1", "2", "3", "6"]).as_dict()


def test_bn_factor_json_beyond_float64_fits_the_schema():
    import json
    from pathlib import Path
    jsonschema = pytest.importorskip("jsonschema")
    from symvg.theory.skipbn import bn_factor
    schema = json.loads((Path(__file__).parents[1] / "symvg/views/schemas/batchnorm.schema.json").read_text())
    factor_schema = dict(schema["properties"]["factor"], **{"$schema": schema["$schema"]})
    for eps in ("1e700", "1e-400"):
        jsonschema.validate(bn_factor(["1", "2", "3"], eps).as_dict(), factor_schema)


def test_skip_bound_beyond_float64_and_a_plain_product_that_underflowed():
    """σw² = 1e300: γ‖W‖₂ ≈ 2·1e150 per layer, so U_6 ≈ 1e902 is past float64: it was 'bound inf'. tanh'(z) at
    |z| ~ 1e150 underflows to 0, so the plain product is 0 in float64: it was printed 'without skips -inf'."""
    run = simulate_skips("tanh", 8, 6, 2, "1e300", 0, 1)
    # ‖W‖₂ of an 8×8 Gaussian matrix with entry std √(1e300/8) lies within a factor 4 of 2·√(1e300)
    assert 6 * 149.5 < run.log10_bound < 6 * 151.5 and math.isfinite(run.log10_bound)
    assert abs(run.log10_norm) < 1e-9 <= run.log10_bound  # the identity path: ‖J‖ = 1 to float precision
    text = str(run)
    assert "bound inf" not in text and "-inf" not in text and "0 in float64" in text, text


def test_skip_jacobians_past_float64_are_carried_in_log10_and_a_forward_overflow_is_reported():
    # skip -N 1000 -t 1 -a linear --sigma-w2 1e6 -n 2: J_k overflowed float64 and LAPACK's SVD failed on inf/NaN
    # ("internal error"); relu there read φ'(z) off an overflowed forward pass
    from symvg.errors import OverflowReport
    run = simulate_skips("linear", 2, 300, 1, "1e6", 0, 2)
    # t = 1, linear: J_N = ∏ (W_k + I); ‖W_k + I‖₂ ≈ 10^3, so log10 ‖J_N‖ is near 300·3 (bound: U_N, ≥ it)
    assert 800 < run.log10_norm <= run.log10_bound + 1e-9 and math.isfinite(run.log10_mean_square)
    assert run.exact_mean_square is None   # (1e6 + 1)^300: too many digits to print; its log10 instead
    assert run.log10_exact_mean_square == pytest.approx(300 * math.log10(1e6 + 1), rel=1e-12)
    assert "10^1800" in str(run)
    with pytest.raises(OverflowReport, match="overflows float64 at layer"):
        simulate_skips("relu", 2, 400, 1, "1e6", 0, 1)


def test_skip_steps_and_batchnorm_work_are_bounded_to_seconds():
    # skip -N 1000 -n 2 --samples 256 ran past a minute (the work cap counted width³ only, not the 256 000
    # Python steps); batchnorm -L 1000 -n 64 -B 1024 took 47 s under the old cap
    with pytest.raises(InvalidValueError, match="samples × depth"):
        simulate_skips("tanh", 2, 1000, 2, 1, 0, 256)
    with pytest.raises(InvalidValueError, match="depth × width² × batch"):
        simulate_batchnorm("relu", width=64, depth=1000, batch=1024)


def test_a_bn_gradient_that_is_zero_in_float64_is_said_not_a_crash_or_a_growth_of_zero():
    # batchnorm -L 1000 -n 2 -B 3: the batch collapses to equal samples in float64, ReLU's mask then zeroes the
    # gradient, and math.log10(0) raised ("internal error: math domain error")
    run = simulate_batchnorm("relu", width=2, depth=1000, batch=3, seed=0)
    assert run.log10_grad[0] == -math.inf and run.zero_note and "×0" not in str(run)
    d = run.as_dict()
    assert d["growth_per_layer"] is None and "note" in d
    json.dumps(d, allow_nan=False)
    ok = simulate_batchnorm("linear", width=16, depth=40, batch=8, seed=0)
    assert not ok.zero_note and all(math.isfinite(v) for v in ok.log10_grad)


def test_skip_weight_variance_beyond_float64_is_refused_in_one_line():
    # skip --sigma-w2 1e400: W = inf·N(0, 1) was NaN and the SVD failed ("internal error")
    with pytest.raises(InvalidValueError, match="beyond float64"):
        simulate_skips("linear", 4, 3, 2, "1e400", 0, 1)
