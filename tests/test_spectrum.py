"""Jacobian spectra at initialisation: measured against exact results and the PSG 2017 predictions."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import sympy as sp

from symvg.theory import meanfield as mf
from symvg.errors import BackendUnavailableError, InvalidValueError
from symvg.theory.spectrum import (fuss_catalan, haar_householder, haar_qr, linear_gaussian_m2, random_weights,
                                   spectrum)


def test_fuss_catalan_and_exact_second_moment():
    assert [fuss_catalan(1, k) for k in range(1, 6)] == [1, 2, 5, 14, 42]        # Catalan numbers
    assert [fuss_catalan(2, k) for k in range(1, 5)] == [1, 3, 12, 55]           # ternary trees
    for L in (1, 3, 7):
        assert fuss_catalan(L, 2) == L + 1
        # the exact finite-width second moment tends to FC_L(2) as n → ∞, from above
        m = [linear_gaussian_m2(L, n) for n in (10, 100, 10**6)]
        assert m[0] > m[1] > m[2] > L + 1 and float(m[2]) == pytest.approx(L + 1, rel=1e-4)
    assert linear_gaussian_m2(1, 7) == 2 + sp.Rational(1, 7)   # E tr((WWᵀ)²)/n for one real Ginibre matrix


def test_exact_second_moment_by_brute_force():
    # An independent route for n = 2, L = 2: Monte Carlo of tr((JJᵀ)²)/n with many samples.
    rng = np.random.default_rng(0)
    w = rng.standard_normal((200_000, 2, 2, 2)) / math.sqrt(2)
    j = w[:, 1] @ w[:, 0]
    jj = j @ np.swapaxes(j, 1, 2)
    est = np.einsum("bij,bji->b", jj, jj) / 2
    se = est.std() / math.sqrt(len(est))
    assert abs(est.mean() - float(linear_gaussian_m2(2, 2))) < 4 * se


def test_haar_weights_are_orthogonal():
    rng = np.random.default_rng(1)
    w = random_weights(np, rng, "orthogonal", 5, 4.0, 3)
    np.testing.assert_allclose(np.swapaxes(w, 1, 2) @ w, np.broadcast_to(4 * np.eye(5), (3, 5, 5)), atol=1e-12)
    for o in (haar_householder(rng, 64, 2), haar_qr(np, rng.standard_normal((2, 64, 64)))):
        np.testing.assert_allclose(np.swapaxes(o, 1, 2) @ o, np.broadcast_to(np.eye(64), (2, 64, 64)), atol=1e-12)


@pytest.mark.parametrize("route", ["householder", "qr"])
def test_both_haar_routes_have_haar_statistics(route):
    # Haar O(n) (Diaconis & Shahshahani 1994): tr O has the moments 0, 1, 0, 3 of N(0, 1) up to order n/2,
    # and O e1 is uniform on the sphere: E O11 = 0 (LAPACK's Q alone has O11 <= 0), E O11² = 1/n.
    n, m = 8, 1500
    rng = np.random.default_rng(7)
    o = haar_householder(rng, n, m) if route == "householder" else haar_qr(np, rng.standard_normal((m, n, n)))
    t = np.trace(o, axis1=1, axis2=2)
    for k, exact in ((1, 0.0), (2, 1.0), (3, 0.0), (4, 3.0)):
        se = math.sqrt(np.var(t**k) / m)
        assert abs(np.mean(t**k) - exact) < 4 * se, (k, np.mean(t**k))
    assert abs(o[:, 0, 0].mean()) < 4 * o[:, 0, 0].std() / math.sqrt(m)
    assert abs(np.mean(o[:, 0, 0] ** 2) - 1 / n) < 4 * np.std(o[:, 0, 0] ** 2) / math.sqrt(m)


def test_linear_orthogonal_is_an_exact_isometry():
    r = spectrum("linear", width=32, depth=10, init="orthogonal", sigma_w2="1.21", samples=2, at=(3,))
    for a in r.at:
        expected = a.depth * math.log10(1.1)
        assert all(abs(v - expected) < 1e-10 for v in a.log10_quantiles)
        assert a.log10_condition < 1e-10 and abs(a.spread) < 1e-10
    assert r.agreement()["spread_agrees"]


def test_linear_gaussian_matches_the_exact_finite_width_moments():
    r = spectrum("linear", width=48, depth=4, init="gaussian", sigma_w2=1, samples=24, seed=2)
    g = r.agreement()
    assert g["spread_predicted"] == pytest.approx(float(linear_gaussian_m2(4, 48)) - 1)
    assert g["spread_agrees"] and g["m1_agrees"], g


def _critical_tanh() -> str:
    return repr(float(mf.critical_sigma_w2("tanh", "0.01").sigma_w2))


def test_orthogonal_keeps_tanh_concentrated_where_gaussian_spreads_it():
    sw = _critical_tanh()
    orth = spectrum("tanh", width=64, depth=8, init="orthogonal", sigma_w2=sw, sigma_b2="0.01", samples=8)
    gauss = spectrum("tanh", width=64, depth=8, init="gaussian", sigma_w2=sw, sigma_b2="0.01", samples=8)
    for r in (orth, gauss):
        g = r.agreement()
        assert g["spread_agrees"] and g["m1_agrees"], (r.init, g)
        assert abs(r.theory.log10_m1) < 1e-9          # χ1 = 1 at the critical point
    # PSG: Gaussian adds L to the spread (s1 = −1); measured, the gap is several times the orthogonal spread
    assert gauss.theory.spread - orth.theory.spread == pytest.approx(8)
    assert gauss.at[-1].spread > 4 * orth.at[-1].spread
    assert gauss.at[-1].log10_condition > orth.at[-1].log10_condition + 1


def test_relu_cannot_reach_isometry():
    r = spectrum("relu", width=64, depth=8, init="orthogonal", sigma_w2=2, samples=8)
    assert r.theory.mu2 / r.theory.mu1**2 == pytest.approx(2)
    assert r.theory.spread == pytest.approx(8) and "no isometry" in r.theory.statement
    assert r.agreement()["spread_agrees"]
    assert r.at[-1].log10_quantiles[0] == -math.inf       # dead units: J is singular
    json.dumps(r.as_dict(), allow_nan=False)


def test_deep_products_do_not_overflow():
    r = spectrum("linear", width=8, depth=200, init="orthogonal", sigma_w2=100, samples=1)
    assert r.at[-1].log10_quantiles[-1] == pytest.approx(200.0)
    assert r.at[-1].log10_m1 == pytest.approx(400.0)


def test_bad_requests_are_refused():
    with pytest.raises(InvalidValueError):
        spectrum("tanh", width=0)
    with pytest.raises(InvalidValueError):
        spectrum("tanh", init="xavier")
    with pytest.raises(InvalidValueError):
        spectrum("tanh", depth=5, at=(9,))
    with pytest.raises(InvalidValueError):
        spectrum("tanh", backend="torch")


def test_cupy_backend_is_lazy():
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(BackendUnavailableError):
            spectrum("tanh", width=4, depth=2, backend="cupy")


def test_oversized_requests_are_refused_before_any_work():
    with pytest.raises(InvalidValueError, match="exceeds"):
        spectrum("tanh", width=2048, depth=1000, samples=1)


def test_linear_gaussian_higher_moments_approach_fuss_catalan():
    # FC is the n → ∞ limit; the allowance k·L/n (relative) is the order of the finite-width correction,
    # as the exact second moment shows (s_L = L + 1 + O(L²/n)); measured deviations are ~0.5% here.
    n, L = 256, 3
    r = spectrum("linear", width=n, depth=L, init="gaussian", sigma_w2=1, samples=8, seed=5)
    assert r.theory.fuss_catalan == (1, 4, 22, 140)
    for k, (meas, fc) in enumerate(zip(r.at[-1].moments, r.theory.fuss_catalan), 1):
        assert abs(meas / fc - 1) <= k * L / n, (k, meas, fc)
    assert "Fuss–Catalan" in str(r)


def test_cupy_backend_measures_the_same_spectra():
    # GPU only: CuPy draws its own random numbers, so compare with the exact and predicted values, not with NumPy
    pytest.importorskip("cupy")
    r = spectrum("linear", width=32, depth=10, init="orthogonal", sigma_w2="1.21", samples=2, backend="cupy")
    assert r.backend == "cupy" and all(abs(v - 10 * math.log10(1.1)) < 1e-10 for v in r.at[-1].log10_quantiles)
    r = spectrum("tanh", width=64, depth=8, init="orthogonal", sigma_w2=_critical_tanh(), sigma_b2="0.01", samples=8,
                 backend="cupy")
    g = r.agreement()
    assert g["spread_agrees"] and g["m1_agrees"], g


def test_theory_at_q_star_zero_takes_the_mus_there_too():
    # tanh at σw² = 1, σb² = 0: q* = 0 and χ1 = 1; at q → 0, μ1 = μ2 = tanh'(0)^2 = 1, so PSG predicts a spread
    # of L(1 − 1 − s1): 0 with orthogonal weights (isometry), L with Gaussian ones. The μ's used to be taken
    # at q = 1 (μ1 = 0.4644), predicting 0.58·L beside χ1 = 1 from q* = 0.
    orth = spectrum("tanh", width=8, depth=3, init="orthogonal", sigma_w2=1, samples=1)
    gauss = spectrum("tanh", width=8, depth=3, init="gaussian", sigma_w2=1, samples=1)
    assert orth.theory.q_star == 0 and orth.theory.chi1 == 1
    assert orth.theory.mu1 == 1 and orth.theory.mu2 == 1
    assert orth.theory.spread == 0 and gauss.theory.spread == 3


def test_zero_weight_variance_is_refused_in_one_line():
    """σw² = 0: J = 0 exactly; the summary divided by its mean square singular value 0 (internal error, exit 1)."""
    from click.testing import CliRunner
    import symvg.cli
    r = CliRunner().invoke(symvg.cli.cli, ["spectrum", "-a", "tanh", "-n", "4", "-L", "2", "--sigma-w2", "0"])
    assert r.exit_code == 2 and "J = 0 exactly" in r.output, r.output


def test_forward_overflow_is_reported_not_measured_off_nan():
    # relu, σw² = 1e6: h overflows float64 near layer 100; φ'(NaN) then gave D that are not the network's, and
    # m1 was printed 10^20 above the exact E m1 = χ1^L (a constant φ', linear, still runs: its D need no z)
    from symvg.errors import OverflowReport
    with pytest.raises(OverflowReport, match="overflows float64 at layer"):
        spectrum("relu", width=16, depth=200, init="gaussian", sigma_w2="1e6", samples=1)
    with np.errstate(all="raise"):
        r = spectrum("linear", width=4, depth=150, init="orthogonal", sigma_w2="1e6", samples=1)
    assert r.at[-1].log10_m1 == pytest.approx(150 * 6)   # (σw·O)^L has every σ = σw^L exactly


def test_a_jacobian_that_is_exactly_zero_in_every_sample_is_said_not_a_crash():
    # ReLU at width 1: J = ∏ w_l·1[z_l > 0] is 0 unless all 10 units are active (2^-10 per sample); m1 = 0
    # then raised ZeroDivisionError ("internal error") instead of reporting m1 = 0 and no spread
    r = spectrum("relu", width=1, depth=10, init="gaussian", sigma_w2=2, samples=2)
    last = r.at[-1]
    assert last.log10_m1 == -math.inf and math.isnan(last.spread)
    assert r.agreement()["spread_agrees"] is None
    assert "J = 0 in float64 in every sample" in str(r) and "nan" not in str(r)
    json.dumps(r.as_dict(), allow_nan=False)   # no NaN/inf leaks into JSON


def test_theory_past_float64_is_shown_exactly_not_a_crash_or_inf():
    # linear orthogonal σw² = 1e6, L = 151: σw^L = 10^453 raised OverflowError ("internal error"); linear Gaussian
    # width 1, L = 1000: the exact spread 3^1000 − 1 was printed "inf" and broke --format json
    t = spectrum("linear", width=2, depth=151, init="orthogonal", sigma_w2="1e6").theory
    assert "σw^L = 1.0e+453" in t.statement
    g = spectrum("linear", width=1, depth=1000, init="gaussian", sigma_w2=1)
    assert "1.32207e+477" in g.theory.statement   # 3^1000 − 1 = 1.322070819...e477 (hand: 1000·log10 3 = 477.12)
    assert "inf" not in str(g)
    json.dumps(g.as_dict(), allow_nan=False)


def test_cpu_work_is_bounded_to_seconds():
    # spectrum -n 1024 -L 200 --samples 8 was accepted on NumPy (hours: the default 256³·50 takes ~4 s here)
    with pytest.raises(InvalidValueError, match="on numpy"):
        spectrum("tanh", width=1024, depth=200, samples=8)
    with pytest.raises(InvalidValueError, match="on numpy"):
        spectrum("tanh", width=512, depth=50, samples=1)


def test_weight_variances_at_float64_limits_are_measured_or_refused_in_one_line():
    # --sigma-w2 1e300: J's entries near 1e150 made its squared norm inf, then NaN, and LAPACK's SVD failed
    # ("internal error"); --sigma-w2 1e-400 became 0.0 in float64, so every W was zero and J "= 0"
    r = spectrum("linear", width=4, depth=3, init="orthogonal", sigma_w2="1e300")
    assert r.at[-1].log10_m1 == pytest.approx(900.0) and r.at[-1].spread == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(InvalidValueError, match="float64's range"):
        spectrum("linear", width=4, depth=3, sigma_w2="1e-400")
