"""Residual path expansion (symvg.theory.residual) against sympy.expand, derive, sympy.diff and sampling."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
import sympy as sp

from symvg.theory import residual as Rs
from symvg.symbolic.activations import get
from symvg.symbolic.chain import Chain
from symvg.symbolic.derive import derive
from symvg.errors import InvalidValueError


@pytest.mark.parametrize("n", range(1, 7))
def test_groups_are_the_subset_sums(n):
    e = Rs.path_expansion(n)
    assert e.by_length[0] == 1 and len(e.by_length) == n + 1 and e.paths == 2 ** n
    for length, term in enumerate(e.by_length):
        assert sp.expand(term - Rs.subset_sum(n, 0, length)) == 0
        assert len(sp.Add.make_args(term)) == comb(n, length)
    assert sp.expand(e.expanded - e.product) == 0


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("n", [2, 3, 5])
def test_expansion_equals_derive_residual_factors(act, n):
    for k in range(1, n):
        ours = Rs.path_expansion(n, k).with_activation(act).expanded
        theirs = Rs.derive_jacobian(Chain(n, act, residual=True), k)
        assert sp.expand(ours - theirs) == 0


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "softplus"])
def test_expansion_equals_sympy_diff_of_the_nested_chain(act):
    a, n, k = get(act), 4, 1
    hk = sp.Symbol("hk", real=True)
    w = [sp.Symbol(f"w{j}", real=True) for j in range(n + 1)]
    b = [sp.Symbol(f"b{j}", real=True) for j in range(n + 1)]
    h, zs = hk, {}
    for j in range(k + 1, n + 1):
        zs[sp.Symbol(f"z{j}", real=True)] = w[j] * h + b[j]
        h = h + a(w[j] * h + b[j])
    nested = sp.diff(h, hk)
    paths = Rs.path_expansion(n, k).with_activation(act).expanded
    rng = np.random.default_rng(0)
    for _ in range(3):
        vals = {s: sp.Rational(int(rng.integers(-25, 26)), 13) for s in [hk, *w[k + 1:], *b[k + 1:]]}
        zvals = {}
        hv = vals[hk]
        for j in range(k + 1, n + 1):  # the forward pass, to give paths its z_j
            zj = vals[w[j]] * hv + vals[b[j]]
            zvals[sp.Symbol(f"z{j}", real=True)] = zj
            hv = hv + a(zj)
        diff = nested.xreplace(vals) - paths.xreplace({**vals, **zvals})
        assert abs(diff.evalf(40)) < 1e-30


def _jacobian_value(chain, vals):
    ev = derive(chain, 1).evaluate(vals)
    kinds = [f.kind for f in derive(chain, 1).factors]
    return sp.Mul(*(v for v, kd in zip(ev.factors, kinds) if kd == "residual"))


@pytest.mark.parametrize("sign,law", [(-1, sp.Rational(3, 4)), (1, sp.Rational(5, 4))])
def test_sigmoid_bounds_are_attained_at_z_zero(sign, law):
    n = 5
    # z_j = 0 for every j: h_j = h_{j-1} + 1/2 from h_0 = 0, so b_j = −w_j·h_{j-1} = −sign·(j−1)/2
    vals = {"x": 0, "y": 0, **{f"w{j}": sign for j in range(1, n + 1)},
            **{f"b{j}": -sign * sp.Rational(j - 1, 2) for j in range(1, n + 1)}}
    got = _jacobian_value(Chain(n, "sigmoid", residual=True), vals)   # ∂h_5/∂h_1: 4 residual factors
    b = Rs.residual_bounds("sigmoid", [1] * 4)
    assert got == law ** 4 == (b.lower if sign < 0 else b.upper)


def test_identity_path_survives_dead_relus():
    n = 4
    vals = {"x": 1, "y": 0, **{f"w{j}": 1 for j in range(1, n + 1)}, **{f"b{j}": -100 for j in range(1, n + 1)}}
    assert _jacobian_value(Chain(n, "relu", residual=True), vals) == 1          # every φ' = 0: the 1 remains
    plain = derive(Chain(n, "relu"), 1).evaluate(vals)
    assert plain.value == 0


def test_bounds_hold_by_sampling():
    # tanh, |w| = 0.6 either sign, z ~ N(0, 2²), 10^5 chains of depth 6: every |∏(1 + wφ')| in [lower, upper].
    rng = np.random.default_rng(11)
    n, m, wabs = 6, 100_000, 0.6
    w = wabs * rng.choice([-1.0, 1.0], size=(n, m))
    dphi = 1 - np.tanh(rng.normal(0, 2, size=(n, m))) ** 2
    jac = np.abs(np.prod(1 + w * dphi, axis=0))
    b = Rs.residual_bounds("tanh", ["0.6"] * n)
    assert float(b.lower) == pytest.approx(0.4 ** 6) and float(b.upper) == pytest.approx(1.6 ** 6)
    assert jac.min() >= float(b.lower) * (1 - 1e-12) and jac.max() <= float(b.upper) * (1 + 1e-12)
    assert np.prod(np.abs(w * dphi), axis=0).max() <= float(b.plain) * (1 + 1e-12)


def test_bad_input():
    with pytest.raises(InvalidValueError, match="at most 12"):
        Rs.path_expansion(13)
    with pytest.raises(InvalidValueError, match="start"):
        Rs.path_expansion(3, 3)
    with pytest.raises(InvalidValueError, match="residual=True"):
        Rs.derive_jacobian(Chain(3, "tanh"), 1)
    with pytest.raises(InvalidValueError, match="weights"):
        Rs.residual_bounds("tanh", [])


def test_huge_weights_give_log10_and_null_not_inf():
    import json
    import math
    from symvg.magnitude import log10
    b = Rs.residual_bounds("sigmoid", ["1e999"] * 12)
    assert b.lower == 0
    assert log10(b.upper) == pytest.approx(12 * (998 + math.log10(2.5)), rel=1e-14)   # (1 + 2.5e998)^12
    d = json.loads(json.dumps(b.as_dict(), allow_nan=False))
    assert d["upper_value"] is None and "overflows" in d["upper_note"] and d["lower_value"] == 0.0
