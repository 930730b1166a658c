import math

import mpmath
import pytest
import sympy as sp

from conftest import random_values
from symvg import Chain, derive
from symvg import activations as A
from symvg.bounds import (depth_bound, depth_to_cross, forward_values, gradient_bound, neutral_weights,
                          stable_weight_range, verdict)
from symvg.errors import InvalidValueError


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "leaky_relu:0.2", "elu", "softplus", "gelu"])
@pytest.mark.parametrize("residual", [False, True])
def test_gradient_never_exceeds_bound(name, residual):
    """|g| ≤ bound at random rational inputs, both from a 40-digit forward pass (the exact nested values,
    GELU's erf of erf of ..., cost 80-100 s to evaluate and say nothing more), compared in logs with a
    1e-25 margin: far above the 40-digit rounding, far below any real violation."""
    for seed in range(3):
        c = Chain(4, name, residual=residual)
        vals = random_values(c, seed)
        env = forward_values(c, vals, 40)
        for k in (1, 2, 4):
            d = derive(c, k)
            g = abs(sp.Mul(*(sp.piecewise_fold(f.expr.xreplace(env)).evalf(40) for f in d.factors)))
            b = gradient_bound(d).value(vals, dps=40)
            with mpmath.workdps(40):
                assert g == 0 or mpmath.log(mpmath.mpf(str(g))) <= mpmath.log(mpmath.mpf(str(b))) + 1e-25, \
                    (name, k, g, b)


def test_bound_value_at_a_precision_matches_the_exact_one():
    c = Chain(3, "tanh")
    vals = random_values(c, 1)
    b = gradient_bound(derive(c, 1))
    assert abs(b.value(vals, dps=40) - b.value(vals).evalf(40)) <= sp.Float("1e-35") * abs(b.value(vals).evalf(40))


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
    assert depth_bound("sigmoid", weight=4).verdict == "neutral"  # γ|w| = 1 exactly
    assert depth_bound("sigmoid", weight="4.0000001").verdict == "explode"


@pytest.mark.parametrize("factor,tol", [("1/4", "1e-6"), ("0.9", "1e-3"), ("0.999", "1e-9"), ("3", "1e-4")])
def test_depth_to_cross_against_brute_force(factor, tol):
    f, t = sp.Rational(factor), sp.Rational(tol)
    n = depth_to_cross(f, t)
    assert n == _first_crossing(int(f.p), int(f.q), int(t.p), int(t.q))


def _first_crossing(p: int, q: int, tp: int, tq: int) -> int:
    """Brute force in exact integers: the first m with (p/q)^m < tp/tq (p < q) or > tq/tp (p > q).

    p^m and q^m are built one multiplication at a time (sympy's f**m from scratch for each m took 84 s
    up to m = 20,713 for 0.999 and 1e-9)."""
    num, den = 1, 1
    for m in range(1, 10**6):
        num, den = num * p, den * q
        if (num * tq < tp * den) if p < q else (num * tp > tq * den):
            return m
    raise AssertionError("no crossing below 10**6")


def test_depth_bound_values_and_log_rate():
    b = depth_bound("tanh", weight="0.9", layers=50, tol="1e-6")
    assert b.bound == sp.Rational(9, 10) ** 50
    assert b.depth_to_vanish == 132  # 0.9^131 > 1e-6 > 0.9^132
    assert sp.Rational(9, 10) ** 131 > sp.Rational(1, 10**6) > sp.Rational(9, 10) ** 132
    assert b.log_rate == pytest.approx(math.log(0.9))
    e = depth_bound("relu", weight=2, layers=10, tol="1e-3")
    assert e.verdict == "explode" and e.depth_to_explode == 10 and e.bound == 1024


def test_irrational_gamma_is_handled_exactly():
    b = depth_bound("gelu", weight=1, layers=10, tol="1e-3")
    g = A.get("gelu").gamma
    assert b.factor == g and b.verdict == "explode"
    n = b.depth_to_explode
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
