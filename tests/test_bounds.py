import math

import mpmath
import pytest
import sympy as sp

from conftest import random_values
from symvg import Chain, derive
from symvg import activations as A
from symvg.bounds import (depth_bound, depth_to_cross, gradient_bound, neutral_weights, stable_weight_range,
                          verdict)
from symvg.errors import InvalidValueError


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "leaky_relu:0.2", "elu", "softplus", "gelu"])
@pytest.mark.parametrize("residual", [False, True])
def test_gradient_never_exceeds_bound(name, residual):
    for seed in range(3):
        c = Chain(4, name, residual=residual)
        vals = random_values(c, seed)
        for k in (1, 2, 4):
            d = derive(c, k)
            g = abs(sp.N(d.evaluate(vals).value, 30))
            b = sp.N(gradient_bound(d).value(vals), 30)
            assert g <= b * (1 + sp.Float("1e-25")), (name, k, g, b)


def test_bound_expression_for_sigmoid_is_the_textbook_one():
    c = Chain(3, "sigmoid")
    b = gradient_bound(derive(c, 1)).expr
    h3, y, x = c.h(3), sp.Symbol("y", real=True), sp.Symbol("x", real=True)
    assert sp.simplify(b - 2 * sp.Abs(h3 - y) * sp.Abs(c.w(2)) * sp.Abs(c.w(3)) * sp.Abs(x) / 64) == 0


def test_residual_bound_factor():
    c = Chain(2, "tanh", residual=True)
    pairs = gradient_bound(derive(c, 1)).factors
    assert pairs[1][1] == 1 + sp.Abs(c.w(2))


def test_verdicts_exact():
    assert verdict(sp.Rational(1, 4)) == "vanish"
    assert verdict(sp.Integer(1)) == "neutral"
    assert verdict(sp.Rational(5, 4)) == "explode"
    # verdict(f) is the direction of one power; the printed verdict reads the floor too (decide)
    assert depth_bound("sigmoid", weight=4).verdict == "undecided"  # ceiling exactly 1, floor 0: may vanish
    assert depth_bound("sigmoid", weight=4).decision.possible == ("vanish",)
    assert depth_bound("sigmoid", weight="4.0000001").verdict == "undecided"  # a ceiling > 1 proves nothing
    assert depth_bound("linear", weight=1).verdict == "neutral"  # floor = ceiling = 1
    assert depth_bound("linear", weight="1.0000001").verdict == "explode"  # floor > 1


@pytest.mark.parametrize("factor,tol", [("1/4", "1e-6"), ("0.9", "1e-3"), ("0.999", "1e-9"), ("3", "1e-4")])
def test_depth_to_cross_against_brute_force(factor, tol):
    f, t = sp.Rational(factor), sp.Rational(tol)
    n = depth_to_cross(f, t)
    expected = next(m for m in range(1, 10**6) if (f ** m < t if f < 1 else f ** m > 1 / t))
    assert n == expected


def test_depth_bound_values_and_log_rate():
    b = depth_bound("tanh", weight="0.9", layers=50, tol="1e-6")
    assert b.bound == sp.Rational(9, 10) ** 50
    assert b.depth_to_vanish == 132  # 0.9^131 > 1e-6 > 0.9^132
    assert sp.Rational(9, 10) ** 131 > sp.Rational(1, 10**6) > sp.Rational(9, 10) ** 132
    assert b.log_rate == pytest.approx(math.log(0.9))
    e = depth_bound("relu", weight=2, layers=10, tol="1e-3")
    assert e.verdict == "undecided" and e.depth_to_explode is None and e.bound == 1024
    assert e.depth_may_explode == 10 and e.decision.status == "may vanish or explode"  # 2^10 > 1000, floor 0
    f = depth_bound("leaky_relu:0.5", weight=4, layers=10, tol="1e-3")   # floor 0.5·4 = 2 proves it
    assert f.verdict == "explode" and f.depth_to_explode == 10 and f.decision.status == "explodes"


def test_irrational_gamma_is_handled_exactly():
    b = depth_bound("gelu", weight=1, layers=10, tol="1e-3")
    g = A.get("gelu").gamma
    assert b.factor == g and b.verdict == "undecided" and b.depth_to_explode is None
    n = b.depth_may_explode
    with mpmath.workdps(50):
        gv = mpmath.mpf(str(sp.N(g, 60)))
        assert gv ** n > 1000 > gv ** (n - 1)


def test_stable_range_and_neutral():
    assert neutral_weights("tanh") == 1
    lo, hi = stable_weight_range("sigmoid", 2, "0.01")
    assert (lo, hi) == (sp.Rational(2, 5), 40)
    for w in (lo, hi):
        assert depth_bound("sigmoid", weight=w, layers=2).bound in (sp.Rational(1, 100), 100)


@pytest.mark.parametrize("kwargs", [dict(weight="nan"), dict(layers=0), dict(tol="2"), dict(tol="0"),
                                    dict(weight="inf"), dict(layers=-3)])
def test_bad_input(kwargs):
    with pytest.raises(InvalidValueError):
        depth_bound("sigmoid", **{"weight": 1, **kwargs})
