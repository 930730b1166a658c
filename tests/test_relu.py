"""ReLU remedies (symvg.theory.relu): inactive units, blocked paths and the leaky floor, against exact maths and sampling."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from symvg.theory import relu as R
from symvg.symbolic.chain import Chain
from symvg.symbolic.derive import derive
from symvg.errors import InvalidValueError


def test_conventions_come_from_the_catalogue():
    assert R.conventions() == {"pytorch": 0, "sympy": sp.Rational(1, 2), "left": 0, "right": 1}


@pytest.mark.parametrize("mu,s", [(0, 1), ("0.5", 1), ("-1.3", 2), (2, "0.7")])
def test_inactive_probability_is_the_gaussian_cdf_at_zero(mu, s):
    from scipy.stats import norm  # here, not at collection: scipy.stats takes ~1 s to import

    p = R.inactive_probability(mu, s)
    assert abs(float(p.evalf(30)) - norm.cdf(0, loc=float(sp.Rational(mu)), scale=float(sp.Rational(s)))) < 1e-15
    z = np.random.default_rng(7).normal(float(sp.Rational(mu)), float(sp.Rational(s)), 1_000_000)
    # binomial standard error ≤ 0.0005 at 10^6 draws; 5 standard errors
    assert abs(np.mean(z <= 0) - float(p)) < 5 * 0.0005


def test_inactive_probability_is_exactly_a_half_at_zero_mean():
    assert R.inactive_probability(0, "0.3") == sp.Rational(1, 2)
    assert R.alive_path_probability(10) == sp.Rational(1, 1024)


@pytest.mark.parametrize("n", [1, 2, 4, 7])
def test_alive_path_probability_by_monte_carlo(n):
    # Not independent layers, but P(z_j > 0 | earlier layers) = 1/2 by symmetry of w_j, b_j: the product law.
    r = R.simulate_alive_path(n, samples=200_000, seed=n)
    assert r.exact == sp.Rational(1, 2 ** n)
    assert abs(r.z_score) < 4.5   # 4.5 binomial standard errors


def test_without_symmetry_the_product_law_breaks():
    # Control: a positive mean makes units more alive; the formula follows, 2^-N no longer does.
    assert R.alive_path_probability(3, "0.5") > sp.Rational(1, 8)


def test_leaky_floor_is_attained_on_the_all_negative_path_and_never_undercut():
    eps, n = sp.Rational(1, 10), 4
    chain = Chain(n, f"leaky_relu:{eps}")
    d = derive(chain, 1)

    def jacobian(vals):  # ∂h_N/∂h_0 = (factors between loss and input) · w_1
        ev = d.evaluate(vals)
        return sp.Mul(*ev.factors[1:-1]) * vals["w1"]

    ws = [2, sp.Rational(1, 2), 3, sp.Rational(5, 4)]
    vals = {"x": 1, "y": 0, **{f"w{j}": ws[j - 1] for j in range(1, n + 1)},
            **{f"b{j}": -100 for j in range(1, n + 1)}}          # every z_j < 0
    floor = R.leaky_floor(ws, eps)
    assert abs(jacobian(vals)) == floor == eps ** 4 * sp.Rational(15, 4)
    rng = np.random.default_rng(3)
    for _ in range(15):
        w = [sp.Rational(int(rng.integers(-40, 41)) or 1, 7) for _ in range(n)]
        v = {"x": sp.Rational(int(rng.integers(-20, 21)), 3), "y": 0,
             **{f"w{j}": w[j - 1] for j in range(1, n + 1)},
             **{f"b{j}": sp.Rational(int(rng.integers(-20, 21)), 9) for j in range(1, n + 1)}}
        assert abs(jacobian(v)) >= R.leaky_floor(w, eps)


@pytest.mark.parametrize("call,msg", [
    (lambda: R.inactive_probability(0, 0), "std"), (lambda: R.alive_path_probability(0), "layers"),
    (lambda: R.leaky_floor([1], 2), "negative_slope"), (lambda: R.leaky_floor([], "0.1"), "weights"),
    (lambda: R.simulate_alive_path(2, 0), "samples"),
])
def test_bad_input(call, msg):
    with pytest.raises(InvalidValueError, match=msg):
        call()


# ----------------------------------------------------------------------------- extreme numbers (issue 15)

def test_tiny_probabilities_match_scipy_log_survival():
    """μ = ±40: P ≈ 1e-350 per unit, 1e-3495 for ten; the erfc form keeps it where ½ − erf/2 cancelled to 0."""
    from scipy.stats import norm  # here, not at collection: scipy.stats takes ~1 s to import

    from symvg.magnitude import log10
    want = 10 * norm.logsf(40) / np.log(10)          # scipy's log-survival function: an independent route
    assert log10(R.alive_path_probability(10, -40)) == pytest.approx(want, rel=1e-12)
    assert log10(R.inactive_probability(40)) == pytest.approx(norm.logcdf(-40) / np.log(10), rel=1e-12)


def test_deep_paths_stay_exact_without_expanding():
    p = R.alive_path_probability(10**9)
    assert p == sp.Pow(sp.Rational(1, 2), 10**9, evaluate=False)        # exact, not 2^-10^9 written out
    from symvg.magnitude import log10
    assert log10(p) == pytest.approx(-1e9 * np.log10(2), rel=1e-14)
    floor = R.uniform_leaky_floor("1e999", 10, "0.01")                   # (10^997)^10
    assert log10(floor) == pytest.approx(9970, rel=1e-15) and floor.doit() == sp.Integer(10) ** 9970


def test_monte_carlo_guards():
    with pytest.raises(InvalidValueError, match="seed"):
        R.simulate_alive_path(3, 10, seed=-1)
    with pytest.raises(InvalidValueError, match="layers <= 100"):
        R.simulate_alive_path(101, 10)


def test_monte_carlo_memory_guard_is_evals(monkeypatch):
    """One guard: patching the memory that ``symvg.engines.sampling`` sees refuses relu's Monte Carlo and eval alike."""
    import symvg.engines.sampling
    from click.testing import CliRunner
    from symvg.cli import cli
    monkeypatch.setattr(symvg.engines.sampling, "available_memory", lambda: 10**6)
    with pytest.raises(InvalidValueError, match="MB"):
        R.simulate_alive_path(10, 100_000)
    for args in (["relu", "--samples", "100000"], ["eval", "-n", "10", "-m", "100000"]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 2 and "only 1 MB are available" in r.stderr, r.stderr


def test_dead_means_every_input_and_the_cli_says_inactive():
    # "dead" is the articles' dying ReLU (z <= 0 for every input); one input's z <= 0 is "inactive".
    from click.testing import CliRunner

    from symvg.cli import cli

    assert not hasattr(R, "dead_probability")
    out = CliRunner().invoke(cli, ["relu", "-n", "3"]).output
    assert "P(unit inactive for one input)" in out and "dead" not in out.lower()


def test_monte_carlo_work_is_bounded_before_any_draw():
    # relu --layers 5 --samples 100000000 ran past a minute (memory allowed it); refused at once, in one line
    from click.testing import CliRunner
    from symvg.cli import cli
    with pytest.raises(InvalidValueError, match="layers × samples"):
        R.simulate_alive_path(5, 10**8)
    r = CliRunner().invoke(cli, ["relu", "--layers", "5", "--samples", "100000000"])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "lower --samples" in r.stderr, r.stderr
