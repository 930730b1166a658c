"""The chain rule's steps (symvg.engines.chainrule) against the chain rule itself, in exact arithmetic.

Every engine prints these steps, so a mistake here would be a mistake everywhere and the engines would still
agree with one another: the steps are checked here against the product rule written out independently, and
the engines against the mpmath oracle (tests/test_numeric.py), which walks the chain on its own.
"""

import itertools

import pytest
import sympy as sp

from symvg.engines import chainrule as cr

# a few exact layers: (φ'_k, h_{k-1}, w_k), signs and a zero included
LAYERS = [(sp.Rational(1, 4), sp.Rational(-3, 2), sp.Rational(5, 7)), (sp.Rational(-2, 3), 2, sp.Rational(-1, 3)),
          (sp.Rational(1, 9), sp.Rational(1, 5), 3)]


def walk(steps_of, start, layers, extra=lambda k: {}):
    """Run a layer's steps from the last layer down: returns each layer's env after its steps."""
    env, seen = dict(start), []
    for k in range(len(layers) - 1, -1, -1):
        d, hp, w = layers[k]
        env.update({cr.dphi: d, cr.hp: hp, cr.w: w, **extra(k)})
        for s in steps_of(k):
            env[s.target] = s.value.xreplace(env)
        seen.append(dict(env))
    return seen[::-1]


def truth(layers, delta_n, residual):
    """g_k = ∂L/∂w_k by the product rule: δ_{k-1} = δ_k·∂h_k/∂h_{k-1}, with ∂h_k/∂h_{k-1} = w_k·φ'_k (+1)."""
    delta, g = delta_n, [None] * len(layers)
    for k in range(len(layers) - 1, -1, -1):
        d, hp, w = layers[k]
        g[k] = delta * d * hp
        delta = delta * (w * d + (1 if residual else 0))
    return g


@pytest.mark.parametrize("residual", [False, True])
def test_the_steps_are_the_chain_rule(residual):
    got = walk(lambda k: cr.backward(residual), {cr.delta: sp.Rational(7, 2)}, LAYERS)
    assert [e[cr.g] for e in got] == truth(LAYERS, sp.Rational(7, 2), residual)


def test_the_folded_walk_is_the_plain_one_regrouped():
    # forward stores w_{k+1}·φ'_k in place of φ'_k; backward starts from a_N = δ_N·φ'_N
    folded_fwd, folded_back = cr.folded()
    wd = {k: folded_fwd[0].value.xreplace({cr.w: LAYERS[k + 1][2], cr.dphi: LAYERS[k][0]})
          for k in range(len(LAYERS) - 1)}
    start = {cr.a: sp.Rational(7, 2) * LAYERS[-1][0]}
    got = walk(lambda k: folded_back if k else tuple(s for s in folded_back if not s.carry), start, LAYERS,
               lambda k: {cr.wd: wd.get(k - 1, sp.nan)})
    assert [e[cr.g] for e in got] == truth(LAYERS, sp.Rational(7, 2), False)


@pytest.mark.parametrize("residual", [False, True])
def test_the_log_domain_is_log_abs_and_sign_of_the_direct_walk(residual):
    delta_n = sp.Rational(-7, 2)
    start = {cr.delta: delta_n}
    for s in cr.start_log():
        start[s.target] = s.value.xreplace(start)
    got = walk(lambda k: cr.backward_log(residual), start, LAYERS)
    for e, g in zip(got, truth(LAYERS, delta_n, residual)):
        assert sp.simplify(e[cr.lg] - sp.log(abs(g))) == 0 and e[cr.sg] == sp.sign(g)


def test_each_product_watched_for_underflow_is_its_value():
    for residual, log in itertools.product([False, True], [False, True]):
        steps = (cr.backward_log(residual) if log else cr.backward(residual)) + cr.forward(residual)
        for s in steps:  # with the terms that must be 0 at 0, the value is the product of the factors
            assert not s.factors or s.value.xreplace(dict.fromkeys(s.zero, 0)) == sp.Mul(*s.factors), s
        # a residual walk keeps δ_k: a 0 of a_k·w_k is not an underflow of anything
        assert any(s.factors for s in steps if s.target == cr.aw) == (not residual and not log)
