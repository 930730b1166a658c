"""Vanishing and exploding both ways (symvg.symbolic.regime), and the catalogue's erf and selu."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import sympy as sp

from symvg.symbolic import activations as A
from symvg.symbolic import bounds
from symvg.symbolic.parse import z
from symvg.errors import InvalidValueError
from symvg.symbolic.bounds import derivative_floor
from symvg.symbolic.regime import regime


def test_erf_and_selu_suprema_and_constants():
    assert A.get("erf").gamma == 2 / sp.sqrt(sp.pi)
    selu = A.get("selu")
    assert selu.gamma == A.SELU_SCALE * A.SELU_ALPHA and selu.supremum.argmax == sp.FiniteSet(0)
    assert float(A.SELU_SCALE) == 1.0507009873554805 and float(A.SELU_ALPHA) == 1.6732632423543772
    assert A.get("selu", at_zero="sympy").derivative_at(0) == (A.SELU_SCALE + A.SELU_SCALE * A.SELU_ALPHA) / 2
    for name in ("erf", "selu"):  # φ' is diff(φ) away from the kink
        a = A.get(name)
        for v in (sp.Rational(-3, 7), sp.Rational(5, 3)):
            assert sp.simplify(sp.diff(a.expr, z).subs(z, v) - a.derivative.subs(z, v)) == 0


def test_erf_and_selu_match_torch():
    torch = pytest.importorskip("torch")
    t = torch.linspace(-4, 4, 801, dtype=torch.float64)
    for name, fn in (("erf", torch.erf), ("selu", torch.nn.functional.selu)):
        f = sp.lambdify(z, A.get(name).expr, modules=["numpy", "scipy"])
        assert np.allclose(f(t.numpy()), fn(t).numpy(), rtol=1e-14, atol=1e-15), name


def test_floor_is_the_infimum_on_a_grid():
    grid = np.linspace(-30, 30, 60001)
    for name in A.names():
        a = A.get(name)
        m = derivative_floor(a)
        d = np.abs(np.broadcast_to(sp.lambdify(z, a.derivative, modules=["numpy", "scipy"])(grid), grid.shape))
        assert d.min() >= float(m) - 1e-12, name                  # a lower bound ...
        assert d.min() <= float(m) + 1e-3, name                   # ... and tight
    assert derivative_floor("leaky_relu:0.3") == sp.Rational(3, 10)


def test_plain_regime_agrees_with_bounds():
    r = regime("tanh", "0.9", 50, "1e-6")
    db = bounds.depth_bound("tanh", "0.9", 50, "1e-6")
    assert (r.factor, r.verdict, r.depth_to_cross) == (db.factor, db.verdict, db.depth_to_vanish)
    assert r.stable_range == bounds.stable_weight_range("tanh", 50, "1e-6")
    lo, hi = r.stable_range   # at the edges the bound is exactly tol and 1/tol
    assert sp.simplify((r.gamma * lo) ** 50 - sp.Rational(1, 10**6)) == 0
    assert sp.simplify((r.gamma * hi) ** 50 - 10**6) == 0


def test_residual_held_range_and_depth_are_exact_edges():
    r = regime("sigmoid", 1, 10, "1e-6", residual=True)
    lo, hi = r.held_range
    assert lo == 0 and sp.simplify((1 - r.gamma * hi) ** 10 - sp.Rational(1, 10**6)) == 0
    t = sp.Rational(1, 10**6)
    assert r.floor ** r.held_to >= t > r.floor ** (r.held_to + 1)   # 48
    assert r.held_to == 48 and r.status == "held"
    assert regime("sigmoid", 1, 49, "1e-6", residual=True).status == "may vanish"


@pytest.mark.parametrize("act,w,n,status", [
    ("sigmoid", 1, 9, "may vanish"), ("sigmoid", 1, 10, "vanishes"),
    ("linear", 2, 19, "held"), ("linear", 2, 20, "explodes"),
    ("selu", 1, 50, "may vanish or explode"), ("gelu", 1, 50, "may vanish"),
])
def test_status_at_depth(act, w, n, status):
    assert regime(act, w, n, "1e-6").status == status


def test_a_power_landing_on_tol_is_not_past_it():
    r = regime("linear", "0.5", 10, "1/1024")       # (1/2)^10 == tol exactly
    assert r.status == "held" and r.depth_to_cross == 11 and r.held_to == 10


def test_log10_never_underflows():
    r = regime("sigmoid", 1, 100_000, "1e-6")
    assert float(r.factor ** 10) > 0 and math.isclose(r.log10_bound, 100_000 * math.log10(0.25), rel_tol=1e-12)
    d = r.as_dict()
    assert d["bound"] == "(1/4)**100000" and d["log10_floor"] is None


@pytest.mark.parametrize("kw,msg", [({"layers": 0}, "layers"), ({"tol": "2"}, "tol"), ({"weight": "nan"}, "weight")])
def test_bad_input(kw, msg):
    args = {"activation": "sigmoid", "weight": 1, "layers": 3, "tol": "1e-6", **kw}
    with pytest.raises(InvalidValueError, match=msg):
        regime(**args)


def test_unbounded_activation_has_no_ceiling_and_no_range():
    r = regime("expr:exp(z)", weight=1, layers=10, tol="1e-6")
    assert (r.verdict, r.status, r.depth_to_cross, r.held_to) == ("unbounded", "no ceiling", None, 0)
    assert r.stable_range is None and r.held_range is None and r.log10_bound == math.inf
    d = r.as_dict()
    json.dumps(d, allow_nan=False)
    assert d["bound"] == "oo" and d["log10_bound"] is None


@pytest.mark.parametrize("layers", [10**9, 10**30])
def test_regime_at_huge_depth_in_logs(layers):
    r = regime("sigmoid", weight="0.5", layers=layers, tol="1e-6")
    assert r.status == "vanishes" and r.log10_bound == pytest.approx(layers * math.log10(1 / 8), rel=1e-12)
    json.dumps(r.as_dict(), allow_nan=False)


def test_regime_takes_numpy_scalars():
    assert regime("tanh", np.float64(0.5), np.int64(4)) == regime("tanh", "0.5", 4)


def test_a_residual_floor_is_not_claimed_where_gamma_w_is_1_to_its_known_digits():
    # SiLU's γ is a 30-digit root: at |w| = 0.90922372177313240824109644657 γ|w| = 1 - 8e-29 as computed, within
    # the digits γ is known to, so "1 + w·φ' >= 8e-29" was stated as proved; only the floor 0 always holds
    near = regime("silu", weight="0.9092237217731324082410964465", residual=True)
    assert near.floor == 0 and "1 to the 28 digits" in str(near.decision)
    far = regime("silu", weight="0.5", residual=True)
    assert 0 < far.floor < 1 and math.isclose(float(far.floor), 1 - 0.5 * float(A.get("silu").gamma), rel_tol=1e-15)


def test_an_unbounded_activation_gives_the_true_cause_of_its_floor():
    """exp(z): the floor is 0 because exp' -> 0 as z -> -oo; the reason said '(sup|phi'| is unbounded)'."""
    from symvg.symbolic.regime import regime
    plain = regime("expr:exp(z)", 1, 5).decision.reason
    assert plain.endswith("the floor is 0 (expr:exp(z)' -> 0 as z -> -oo: saturation)"), plain
    res = regime("expr:exp(z)", 1, 5, residual=True).decision.reason
    assert "1 + w*phi'(z) can cancel to 0" in res, res
