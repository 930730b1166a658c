"""Zeros the engines return: exact ones pass, lost ones are reported (symvg.engines.kernels.exact_zeros and
symvg.engines.chunked.check_underflow), judged against exact SymPy values and the mpmath oracle."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from symvg.engines.kernels import exact_zeros
from symvg.engines.numeric import gradients
from symvg.engines.reference import reference
from symvg.errors import UnderflowReport
from symvg.symbolic.activations import get
from symvg.symbolic.chain import Chain
from symvg.symbolic.parse import z


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "hard_sigmoid", "expr:Max(0, z)", "expr:Min(Max(0, z), 6)",
                                  "expr:abs(z)", "expr:Min(0, z)", "expr:Max(0, z)**2"])
def test_the_exact_zero_regions_are_where_phi_and_its_derivative_are_exactly_0(name):
    """The region says a 0 is exact where, and only where, the exact φ (φ') is 0 at these rational points (none is a
    root of a non-constant piece). expr:Max(0, z), whose φ' is Heaviside(z), had no region but z = 0: every block
    with a z < 0 was flagged and redone through mpmath (8-15× slower at N = 20, M = 10^6)."""
    act = get(name)
    points = [sp.Rational(k, 4) for k in range(-40, 41, 3)] + [sp.Integer(v) for v in (-3, 0, 3, 6)]
    for region, expr in zip(exact_zeros(act), (act.expr, act.derivative)):
        for v in points:
            assert bool(region.subs(z, v)) == (expr.subs(z, v) == 0), (name, expr, region, v)


@pytest.mark.parametrize("engine", ["chunked", "fused"])
def test_a_lost_pre_activation_among_many_exact_zeros_is_reported(engine):
    """z_1 = 1e-200·1e-200 rounds to 0 in sample 90, whose g_1 = -1e-200 then came out -0; the 90 samples before it
    hold exact zeros (ReLU off). mpmath probed only the first 32 samples holding a 0, all exact, and the lost one
    was returned as an exact -0 with no report."""
    m = 100
    x, y, W = np.full(m, -1.0), np.full(m, 0.5), np.ones((3, m))
    x[90] = W[0, 90] = 1e-200
    chain = Chain(3, "relu")
    ref = reference(chain, x[[0, 90]], y[[0, 90]], W[:, [0, 90]], np.zeros(3))
    assert all(v == 0 for v in ref[:, 0]) and abs(float(ref[0, 1]) + 1e-200) < 1e-214
    with pytest.raises(UnderflowReport, match="came out 0 in float64 .* 10\\^-200.0, within the dtype's range"):
        gradients(chain, x, y, W, np.zeros(3), engine=engine)
    x[90], W[0, 90] = -1.0, 1.0  # every zero exact now: returned as they are
    assert (gradients(chain, x, y, W, np.zeros(3), engine=engine) == 0).all()


@pytest.mark.parametrize("engine", ["chunked", "fused"])
def test_a_loss_that_cancelled_to_zero_is_not_said_to_be_below_the_range(engine):
    """MSE with h_2 = σ(σ(-40)) = 0.5 + 1e-18, which rounds to y = 0.5: δ_2 = h_2 − y = 0 and g = 2.3e-36 (mpmath)
    came out 0: the chunked engine returned it (no floating-point flag is raised), the fused one reported that a
    factor was below float64's range, which δ_2 ≈ 1e-18 is not: it cancelled."""
    chain, x, y, W = Chain(2, "sigmoid"), np.ones(1), np.full(1, 0.5), np.array([-40.0, 1.0])
    ref = reference(chain, x, y, W, np.zeros(2))
    assert 2e-36 < float(ref[0, 0]) < 3e-36
    with pytest.raises(UnderflowReport, match="came out 0 in float64") as e:
        gradients(chain, x, y, W, np.zeros(2), engine=engine)
    assert "cancellation (h_N − y where h_N rounded to y" in str(e.value)


@pytest.mark.parametrize("engine", ["chunked", "fused"])
def test_an_exact_zero_loss_at_a_dead_output_is_not_looked_at(engine, monkeypatch):
    """ReLU with y = 0: ∂L/∂h_N = h_N − y = 0 wherever the output unit is off, an exact 0. The fused kernel flagged
    every such block, and check_underflow redid them in the log domain and with mpmath (10^6 samples, N = 20: 2.7 s
    against the chunked engine's 0.24 s). A 0 at h_N ≠ 0 (h_N rounded to y) is still looked at (test above)."""
    from symvg.engines import chunked, registry

    def fail(*args, **kwargs):
        raise AssertionError("check_underflow was called on exact zeros")
    monkeypatch.setattr(chunked, "check_underflow", fail)
    monkeypatch.setattr(registry, "check_underflow", fail)
    x = np.array([-1.0, 2.0, -3.0, 0.5])
    g = gradients(Chain(2, "relu"), x, np.zeros(4), np.array([1.0, 1.0]), np.zeros(2), engine=engine)
    assert np.abs(g).tolist() == [[0.0, 8.0, 0.0, 0.5]] * 2  # L = (h_2 − y)²: g_k = 2x² where x > 0, h_k = x


def test_a_residual_sum_the_oracle_cancels_at_30_digits_is_probed_again():
    """tanh residual, w_2 = -1, x = 1e-30: h_2 = h_1 + tanh(-h_1) ≈ -2.7e-90 and δ_1 = δ_2·(1 - tanh'(z_2)) ≈ δ_2·4e-60
    cancel to 0 in float64 and in mpmath at 30 and 50 digits alike, so the 0 of dL/dw_1 was confirmed as exact and
    returned. By hand: dL/dw_1 = 2(h_2 - y)·(1 - tanh'(z_2))·tanh'(z_1)·x ≈ 2·(-1)·(2x)²·x = -8e-90."""
    chain, x, y, W, B = Chain(2, "tanh", residual=True), np.array([1e-30, 0.5]), np.ones(2), [1.0, -1.0], [0.0, 0.0]
    with pytest.raises(UnderflowReport, match=r"came out 0 in float64 for 1 value\(s\) in layer\(s\) 1 \(the largest "
                                              r"is 10\^-89\.1, within"):
        gradients(chain, x, y, W, B, engine="chunked")
    # a residual sum that is 0 exactly (linear, w_2 = -1: h_2 = h_1 - h_1) is still taken as 0
    lin = Chain(2, "linear", residual=True)
    g = gradients(lin, x, y, W, B, engine="chunked")
    assert g[0].tolist() == [0.0, 0.0] and reference(lin, x, y, W, B)[0, 0] == 0
