"""RNNs through time (bound, PMB condition, width 1 against symvg.theory.lstm) and gradient clipping (exact, torch)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from symvg.theory import lstm
from symvg.theory.clipping import TORCH_EPS, clip_by_norm
from symvg.errors import InvalidValueError
from symvg.theory.rnn import derive_rnn, pmb_condition, simulate_rnn


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu", "linear"])
@pytest.mark.parametrize("rho", [0.5, 1.0, 2.0])
def test_bound_never_violated(act, rho):
    for seed in range(3):
        s = simulate_rnn(act, width=12, steps=40, spectral_radius=rho, seed=seed)
        assert s.bound_holds, (act, rho, seed)


def test_linear_orthogonal_rnn_meets_the_bound_exactly():
    s = simulate_rnn("linear", width=10, steps=30, spectral_radius=1.3, init="orthogonal")
    assert s.sigma_max == pytest.approx(1.3, rel=1e-12)
    np.testing.assert_allclose(s.log10_norms, s.log10_bound, atol=1e-9)
    assert s.measured_rate == pytest.approx(1.3, rel=1e-9)


def test_sufficient_condition_for_vanishing():
    # γσ_max < 1 proves vanishing; the measured norms then fall at least as fast as the bound
    s = simulate_rnn("tanh", width=16, steps=60, spectral_radius=0.3, init="orthogonal")
    c = pmb_condition("tanh", repr(s.sigma_max))
    assert c.verdict.startswith("vanishing (proved")
    assert s.log10_norms[-1] <= 60 * math.log10(0.3) + 1e-9


def test_exploding_needs_gamma_sigma_above_one_but_it_is_not_enough():
    c = pmb_condition("sigmoid", 8)     # γσ_max = 2 > 1: explosion is possible, not proved
    assert c.rate == 2 and "not proved" in c.verdict
    # a saturated tanh RNN with γσ_max ≈ 3 still vanishes: the condition is necessary, not sufficient
    s = simulate_rnn("tanh", width=32, steps=80, spectral_radius=1.5, input_scale=3.0)
    assert s.gamma * s.sigma_max > 1 and s.log10_norms[-1] < 0


def test_width_one_equals_symvg_lstm_rnn_product():
    # symvg.theory.lstm builds ∏ w·φ'(z_s) symbolically; simulate_rnn's width-1 run must give the same number.
    steps, seed = 6, 4
    s = simulate_rnn("tanh", width=1, steps=steps, spectral_radius=0.8, input_scale=0.7, seed=seed)
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((1, 1))
    w = float(g[0, 0] * (0.8 / abs(g[0, 0])))
    u = float(rng.standard_normal((1, 1))[0, 0] * 0.7)
    xs = [float(rng.standard_normal(1)[0]) for _ in range(steps)]
    expr = lstm.rnn_product("tanh", steps)
    subs = {sp.Symbol("w", real=True): w, sp.Symbol("u", real=True): u, sp.Symbol("h0", real=True): 0.0}
    subs.update({sp.Symbol(f"x{i}", real=True): v for i, v in enumerate(xs, 1)})
    exact = abs(float(expr.xreplace(subs).evalf(30)))
    assert s.log10_norms[-1] == pytest.approx(math.log10(exact), abs=1e-10)


def test_derivation_shows_every_step_or_marks_the_gap():
    assert str(derive_rnn(2, 0, 3).product) == "D2*W*D1*W"
    text = str(derive_rnn(50, 0, 3))
    assert "D50*W*D49*W*D48*W*⋯*D3*W*D2*W*D1*W" in text
    with pytest.raises(InvalidValueError):
        derive_rnn(3, 3)
    with pytest.raises(InvalidValueError):
        simulate_rnn("tanh", spectral_radius=float("nan"))


def test_clipping_is_exact():
    c = clip_by_norm([1, 2, 2], "1/2", direction=[0, 0, 1])
    assert c.norm == 3 and c.scale == sp.Rational(1, 6) and c.clipped == (sp.Rational(1, 6), sp.Rational(1, 3),
                                                                            sp.Rational(1, 3))
    assert c.clipped_norm == sp.Rational(1, 2) and c.clipped_step_along == sp.Rational(1, 3)
    d = clip_by_norm([1, 1], 1)
    assert d.clipped == (sp.sqrt(2) / 2, sp.sqrt(2) / 2) and d.clipped_norm == 1
    assert clip_by_norm([3, 4], 5).was_clipped is False       # ‖g‖ = τ exactly: unchanged
    for bad in (([], 1), ([1], 0), ([1], "nan")):
        with pytest.raises(InvalidValueError):
            clip_by_norm(*bad)
    with pytest.raises(InvalidValueError):
        clip_by_norm([1, 2], 1, direction=[0, 0])


def test_clipped_step_along_any_direction_is_at_most_tau():
    rng = np.random.default_rng(0)
    for _ in range(10):
        g = [int(v) for v in rng.integers(-1000, 1000, 4)]
        u = [int(v) for v in rng.integers(-5, 6, 4)] or [1]
        if not any(u) or not any(g):
            continue
        c = clip_by_norm(g, 3, direction=u)
        assert float(abs(c.clipped_step_along)) <= 3 + 1e-12
        # direction kept: the clipped vector is a positive multiple of g
        assert all(sp.radsimp(cv - c.scale * gv) == 0 for cv, gv in zip(c.clipped, g)) and c.scale > 0


def test_clipping_matches_torch_up_to_its_epsilon():
    torch = pytest.importorskip("torch")
    g = [30.0, -40.0, 12.5]
    t = torch.tensor(g, dtype=torch.float64, requires_grad=True)
    t.grad = torch.tensor(g, dtype=torch.float64)
    torch.nn.utils.clip_grad_norm_([t], max_norm=5.0)
    c = clip_by_norm(g, 5)
    eps_factor = float(c.norm / (c.norm + TORCH_EPS))
    np.testing.assert_allclose(t.grad.numpy(), [float(v) * eps_factor for v in c.clipped], rtol=1e-13)


def test_oversized_rnn_is_refused():
    with pytest.raises(InvalidValueError, match="exceeds"):
        simulate_rnn("tanh", width=1024, steps=10_000)


def test_a_product_that_reached_zero_in_float64_is_said_not_printed_as_nan():
    # ρ = 1e6 drives |z| far past 19, where tanh'(z) = 1 - tanh(z)^2 is 0 in float64 (truly ~4e^(-2|z|) > 0):
    # the measured norm is a float64 0, and the per-step fit used to print "≈ nan".
    r = simulate_rnn("tanh", width=8, steps=20, spectral_radius=1e6)
    assert r.log10_norms[-1] == -math.inf and math.isnan(r.measured_rate)
    text = str(r)
    assert "nan" not in text and "came out 0" in text and "not measured" in text
    zero = simulate_rnn("tanh", width=8, steps=5, spectral_radius=0)
    assert "exactly 0" in str(zero) and "nan" not in str(zero)


def test_clip_beyond_float64_is_not_printed_as_inf_or_0():
    """g = (1e999, 1), τ = 1e-999: ‖g‖ = √(1e1998 + 1) ≈ 1e999 and the scale τ/‖g‖ ≈ 1e-1998 were printed
    '≈ inf' and '≈ 0', and --format json was an internal error (inf)."""
    import json
    from symvg.theory.clipping import clip_by_norm
    c = clip_by_norm(["1e999", "1"], "1e-999")
    text = str(c)
    assert "≈ 1.0e+999" in text and "≈ 1.0e-1998" in text and "inf" not in text, text
    d = json.loads(json.dumps(c.as_dict(), allow_nan=False))
    assert d["norm"]["value"] is None and d["scale"]["value"] == 0.0 and "note" in d
    assert "note" not in clip_by_norm(["30", "40"], "5").as_dict()


def test_rnn_forward_overflow_is_reported_not_measured_off_nan():
    # relu with ρ = 1e6 overflows h_s past step ~50; φ'(NaN) then gave D_s that are not the network's, and
    # the "measured" ‖∂h_T/∂h_0‖ was printed as if it were (a linear φ' needs no z, so it still runs)
    from symvg.errors import OverflowReport
    with pytest.raises(OverflowReport, match="overflows float64 at step"):
        simulate_rnn("relu", width=8, steps=200, spectral_radius=1e6)
    with np.errstate(all="raise"):  # no RuntimeWarning leaks out either
        s = simulate_rnn("linear", width=4, steps=120, spectral_radius=1e6, init="orthogonal")
    assert s.log10_norms[-1] == pytest.approx(120 * 6, rel=1e-9)   # ‖(ρQ)^T‖ = ρ^T exactly


def test_a_rate_within_float_error_of_one_proves_nothing_and_is_not_shown_as_1_above_1():
    # rnn -a linear --init orthogonal --spectral-radius 1 -n 2: σ_max(W) = 1 exactly, LAPACK gave
    # 1.0000000000000002, and the verdict read "γ·σ_max = 1 > 1" (a 0.9999999999999998 would have "proved" vanishing)
    from symvg.theory.rnn import sigma_max_error
    for s in ("1.0000000000000002", "0.9999999999999998"):
        v = pmb_condition("linear", s, sigma_max_error(2)).verdict
        assert v.startswith("not proved either way") and s in v, v
    assert pmb_condition("linear", "0.999", sigma_max_error(2)).verdict.startswith("vanishing (proved")
    assert "1 > 1" not in pmb_condition("linear", "1.0000000000000002").verdict   # exact input: shown in full


def test_rnn_work_is_bounded_to_seconds():
    # rnn -T 200 -n 512 (the old cap, 200·512³) ran past a minute: one SVD of an n×n matrix per step
    with pytest.raises(InvalidValueError, match="exceeds"):
        simulate_rnn("tanh", width=512, steps=200)
