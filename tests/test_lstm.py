"""The LSTM cell path (symvg.theory.lstm) against sympy.diff, torch autograd, and a plain RNN."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from symvg.theory import lstm as L
from symvg.errors import InvalidValueError


@pytest.mark.parametrize("T", range(1, 8))
def test_cell_gradient_is_the_product_of_forget_gates(T):
    for t in range(T):
        expected = sp.Mul(*(sp.Symbol(f"f{s}", real=True) for s in range(t + 1, T + 1)))
        assert L.cell_gradient(T, t) == expected
    assert sp.diff(L.cell_state(T), sp.Symbol("c0", real=True), 2) == 0   # linear in c_t: no squashing


@pytest.mark.parametrize("act", ["sigmoid", "tanh"])
@pytest.mark.parametrize("T", [1, 2, 4])
def test_rnn_diff_equals_the_product_of_w_phiprime(act, T):
    h0 = sp.Symbol("h0", real=True)
    got = sp.diff(L.rnn_state(act, T), h0)
    want = L.rnn_product(act, T)
    rng = np.random.default_rng(T)
    for _ in range(3):
        vals = {s: sp.Rational(int(rng.integers(-30, 31)), 11) for s in got.free_symbols | want.free_symbols}
        assert abs((got - want).xreplace(vals).evalf(40)) < 1e-30


def test_cell_path_matches_torch_autograd_and_a_full_lstm_has_extra_paths():
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(0)
    T = 12
    f, i, gg = (torch.rand(T, generator=g, dtype=torch.float64) for _ in range(3))
    c0 = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    c = c0
    for s in range(T):
        c = f[s] * c + i[s] * gg[s]
    (grad,) = torch.autograd.grad(c, c0)
    assert math.isclose(grad.item(), float(torch.prod(f)), rel_tol=1e-14)
    # A real LSTMCell computes its gates from h = o·tanh(c): dc_T/dc_0 is no longer ∏ f (extra paths).
    torch.manual_seed(0)
    cell = torch.nn.LSTMCell(1, 1).double()
    h, c0 = torch.zeros(1, 1, dtype=torch.float64), torch.full((1, 1), 0.3, dtype=torch.float64, requires_grad=True)
    c, fs = c0, []
    x = torch.randn(T, 1, 1, dtype=torch.float64, generator=g)
    for s in range(T):
        gates = torch.nn.functional.linear(x[s], cell.weight_ih, cell.bias_ih) + \
            torch.nn.functional.linear(h, cell.weight_hh, cell.bias_hh)
        ig, fg, gg_, og = gates.chunk(4, 1)
        fs.append(torch.sigmoid(fg).item())
        h, c = cell(x[s], (h, c))
    (grad,) = torch.autograd.grad(c.sum(), c0)
    assert not math.isclose(grad.item(), float(np.prod(fs)), rel_tol=1e-6)


def test_seed_002_numbers():
    c = L.compare(50, "0.9", 1, "sigmoid")
    assert c.cell == sp.Rational(9, 10) ** 50 and c.rnn_bound == sp.Rational(1, 4) ** 50
    assert 5.15e-3 < c.cell_value < 5.16e-3 and 7.88e-31 < c.rnn_value < 7.89e-31
    assert c.forget_needed == sp.Rational(1, 4)
    far = L.compare(100_000, "0.9", 1)   # log10 stays finite where floats underflow
    assert far.rnn_value == 0.0 and math.isclose(far.log10_rnn, 100_000 * math.log10(0.25), rel_tol=1e-12)
    assert far.as_dict()["log10_cell"] < -4000


@pytest.mark.parametrize("call,msg", [
    (lambda: L.compare(0), "steps"), (lambda: L.compare(5, "1.5"), "forget"),
    (lambda: L.cell_gradient(3, 3), "start"), (lambda: L.cell_state(10_000), "steps"),
])
def test_bad_input(call, msg):
    with pytest.raises(InvalidValueError, match=msg):
        call()


def test_a_billion_steps_in_logs():
    c = L.compare(10**9, "0.9", 1, "sigmoid")
    assert c.cell == sp.Pow(sp.Rational(9, 10), 10**9, evaluate=False)   # exact, unexpanded
    assert c.log10_cell == pytest.approx(1e9 * math.log10(0.9), rel=1e-12)
    d = c.as_dict()
    assert d["cell_value"] == 0.0 and "log10_cell" in d["note"] and "underflows" in d["note"]


def test_huge_weight_json_has_null_and_log10_not_inf():
    d = L.compare(50, "0.9", "1e999", "sigmoid").as_dict()
    assert d["rnn_value"] is None and "overflows" in d["note"] and "'rnn_bound'" in d["note"]
    assert d["log10_rnn"] == pytest.approx(50 * (998 + math.log10(2.5)), rel=1e-14)


def test_an_unbounded_gamma_is_refused_not_printed(monkeypatch):
    """Once a proof says sup|φ'| = ∞ (exp(z)), no (γ|w|)^T is built on it: one specific error, not inf."""
    from symvg.symbolic.activations import Activation
    from symvg.theory.residual import residual_bounds
    monkeypatch.setattr(Activation, "gamma", property(lambda self: sp.oo))
    with pytest.raises(InvalidValueError, match="unbounded"):
        L.compare(5, activation="sigmoid")
    with pytest.raises(InvalidValueError, match="unbounded"):
        residual_bounds("sigmoid", [1, 2])


def test_cli_says_exact_powers_exactly(run):
    """f = 1: f^10 is 1 exactly, and (1/4)^3 is 1/64: both were printed '≈'."""
    code, out, _ = run("lstm", "-T", "3", "-f", "1")
    assert code == 0 and "f^3 = 1 (log10 0)" in out and "(1/4)^3 = 1/64 ≈ 0.015625" in out, out


def test_log10_of_a_gate_next_to_1_is_not_lost_to_cancellation():
    # f = 1 - 1e-30 over 10^40 steps: f^T = exp(-10^10), log10 = -10^10 / ln 10 (mpmath at 60 digits); float64
    # log10(p) - log10(q) gave 0 for it, and for (1 - 2.5e-23)^100
    import mpmath
    from symvg.theory.lstm import compare
    c = compare(10**40, "0.999999999999999999999999999999", "3.9999999999999999999999")
    with mpmath.workdps(60):
        want_cell = float(10**40 * mpmath.log10(1 - mpmath.mpf(10) ** -30))
        want_rnn = float(10**40 * mpmath.log10(1 - mpmath.mpf("2.5e-23")))
    assert abs(c.log10_cell - want_cell) <= 1e-9 * abs(want_cell)
    assert abs(c.log10_rnn - want_rnn) <= 1e-9 * abs(want_rnn)
    assert c.as_dict()["log10_cell"] < -4e9


def test_a_rounded_power_is_not_printed_as_its_exact_value():
    # (1 - 1e-10)^100 = 1 - 9.9999995e-9 exactly (binomial series), so "= 1 - 1e-08" would claim a false equality
    f = 1 - sp.Rational(1, 10**10)
    assert f**100 != 1 - sp.Rational(1, 10**8)
    text = str(L.compare(100, "0.9999999999"))
    assert "f^100 ≈ 1 - 1e-08" in text and "= 1 - 1e-08" not in text
