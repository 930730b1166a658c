import json
import math
import time

import mpmath
import pytest
import sympy as sp

from conftest import random_values
from symvg import Chain, derive
from symvg.exact import to_rational
from symvg.symbolic import activations as A
from symvg.symbolic.bounds import depth_bound, floor_cause, gradient_bound, neutral_weights, stable_weight_range, verdict
from symvg.symbolic.derive import forward_values
from symvg.symbolic.powers import compare_power, depth_to_cross
from symvg.errors import InvalidValueError, ProofError


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


# ----------------------------------------------------------------------------- hostile depths and weights
# Issue 15: exact powers of 10^5 digits, 10^9 layers, tol 1e-999: each must answer in bounded time, exactly
# where the numbers are small, in logs at a stated precision where they are not, never an internal error.

@pytest.mark.parametrize("weight,layers", [("0.5", 20000), ("1e999", 10), ("1e-300", 100000), (1, 10**9),
                                          (1, 10**30)])
def test_huge_depth_laws_answer_in_logs(weight, layers):
    t0 = time.monotonic()
    b = depth_bound("sigmoid", weight, layers)
    d = b.as_dict()
    json.dumps(d, allow_nan=False)  # strict JSON: no inf, no nan
    expected = layers * (math.log10(0.25) + float(sp.log(to_rational(weight), 10).evalf(20)))
    assert d["log10_bound"] == pytest.approx(expected, rel=1e-12)
    assert sp.N(b.bound, 15) != 0 and time.monotonic() - t0 < 5


def test_depth_to_cross_at_a_trillion_layers():
    """0.999999999^N < 1e-999 first at N = ceil(999·ln 10 / -ln 0.999999999), checked in 60-digit logs."""
    n = depth_to_cross(sp.Rational(999999999, 10**9), sp.Rational(1, 10**999))
    with mpmath.workdps(60):
        lf, lt = mpmath.log(mpmath.mpf(999999999) / 10**9), -999 * mpmath.log(10)
        assert n * lf < lt < (n - 1) * lf
    assert n == 2300282506751


def test_compare_power_is_exact_at_a_tie_and_in_logs_beyond():
    assert compare_power(sp.Rational(1, 10), 6, sp.Rational(1, 10**6)) == 0
    assert compare_power(sp.Rational(1, 10), 7, sp.Rational(1, 10**6)) == -1
    half = sp.Rational(1, 2)                              # 2^-20000 ≈ 10^-6020.6: too long to expand, so logs
    assert compare_power(half, 20000, sp.Rational(1, 10**6020)) == -1
    assert compare_power(half, 20000, sp.Rational(1, 10**6021)) == 1
    near = sp.Rational(10**100 + 1, 10**100 * 2**20000)   # 2^-20000·(1 + 1e-100): 50 digits cannot tell
    assert compare_power(half, 20000, near) == -1          # the 200-digit pass can
    with pytest.raises(ProofError, match="1000 digits"):   # 1 + 2^-20000 is beyond any stated precision
        compare_power(half, 20000, sp.Rational(2**20000 + 1, 2**40000))


def test_unbounded_activation_has_no_depth_law():
    b = depth_bound("expr:z**3", weight=1, layers=10, tol="1e-6")
    assert b.verdict == "unbounded" and b.factor is sp.oo
    assert b.depth_to_vanish is None and b.depth_to_explode is None and b.log10_bound is None
    d = b.as_dict()
    json.dumps(d, allow_nan=False)
    assert "no ceiling" in d["note"] and d["verdict"] != "vanish"
    assert depth_bound("expr:exp(z)", weight=0).verdict == "unbounded"  # not oo*0 = nan
    with pytest.raises(InvalidValueError, match="oo"):
        neutral_weights("expr:sqrt(abs(z))")  # |φ'| = 1/(2√|z|) → ∞ at 0


def test_numpy_scalars_as_layers_and_weight():
    np = pytest.importorskip("numpy")
    assert depth_bound("sigmoid", np.float64(0.5), np.int64(3)) == depth_bound("sigmoid", "0.5", 3)
    with pytest.raises(InvalidValueError, match="1000 digits"):
        depth_bound("sigmoid", weight=10**5000).as_dict()


# ----------------------------------------------------------------------------- the floor inf|φ'| where sup|φ'| = oo

# (activation, φ' written by hand, inf|φ'| by hand, attained, verdict at |w| = 2)
UNBOUNDED_FLOORS = [
    ("expr:exp(z)+2*z", lambda t: mpmath.exp(t) + 2, 2, False, "explode"),  # e^z + 2 > 2, -> 2 as z -> -oo
    ("expr:z**3+z", lambda t: 3 * t**2 + 1, 1, True, "explode"),            # 3z² + 1 >= 1, = 1 at z = 0
    ("expr:sqrt(z**2+1)*z", lambda t: (2 * t**2 + 1) / mpmath.sqrt(t**2 + 1), 1, True, "explode"),  # >= 1 at 0
    ("expr:exp(z)", mpmath.exp, 0, False, "unbounded"),                      # e^z -> 0 as z -> -oo
    ("expr:z**3", lambda t: 3 * t**2, 0, True, "unbounded"),                 # 3z² = 0 at z = 0
    ("softplus", lambda t: 1 / (1 + mpmath.exp(-t)), 0, False, "undecided"),  # bounded: the ceiling 2 > 1 proves nothing
]


@pytest.mark.parametrize("name, dphi, floor, attained, kind", UNBOUNDED_FLOORS, ids=[c[0] for c in UNBOUNDED_FLOORS])
def test_floor_is_proved_where_the_derivative_is_unbounded(name, dphi, floor, attained, kind):
    """exp(z) + 2z at |w| = 2 was "undecided" although every factor |w·φ'| >= 4 > 1 proves growth: the floor
    inf|φ'| was read only from the supremum's table, which stops at the end where |φ'| grows."""
    act = A.get(name)
    inf = act.infimum
    assert (inf.value, inf.attained, inf.proved) == (floor, attained, True)
    db = depth_bound(name, 2, layers=10, tol="1e-6")
    assert db.floor == 2 * floor and db.verdict == kind
    if kind == "explode":  # proved by the floor alone: (2m)^N > 1e6 from N = ceil(6/log10(2m))
        assert db.decision.text.startswith(f"explodes (proved: the floor {2 * floor} > 1")
        assert db.depth_to_explode == math.ceil(6 / math.log10(2 * floor) + 1e-12)
    # an independent look at |φ'| (written by hand above, at 30 digits): never below the floor, and reaching it
    with mpmath.workdps(30):
        values = [abs(dphi(mpmath.mpf(t) / 8)) for t in range(-400, 401)]
        assert min(values) >= floor
        assert min(values) - floor < (mpmath.mpf("1e-12") if attained or floor == 0 else 1)
        if not attained and floor:
            assert abs(dphi(mpmath.mpf(-60))) - floor < mpmath.mpf("1e-25")  # approached at -oo


def test_a_floor_above_0_but_at_most_1_proves_nothing():
    """exp(z) + 2z at |w| = 1/4: every factor is >= 1/2, which allows decay; sup|φ'| = oo allows growth."""
    db = depth_bound("expr:exp(z)+2*z", "1/4")
    assert db.floor == sp.Rational(1, 2) and db.verdict == "unbounded" and not db.decision.proved


def test_a_floor_that_cannot_be_proved_is_0_and_says_why():
    """φ' = 2z + e^z has a real zero (near -0.35) that SymPy cannot list: the floor stays 0, the true value, but
    as 'not proved', and the verdict says nothing more."""
    inf = A.get("expr:exp(z)+z**2").infimum
    assert inf.value == 0 and not inf.proved and "not a finite set" in inf.why
    db = depth_bound("expr:exp(z)+z**2", 100)
    assert db.verdict == "unbounded" and "no floor above 0 is proved" in db.decision.reason


def test_bound_cli_reports_the_floor_proof():
    from click.testing import CliRunner
    from symvg.cli import cli
    r = CliRunner().invoke(cli, ["bound", "-a", "expr:exp(z)+2*z", "--weight", "2"])
    assert r.exit_code == 0, r.output
    assert "no real zero of φ' on Reals" in r.stdout and "inf|φ'| = 2, approached, not attained" in r.stdout
    assert "verdict: explodes (proved: the floor 4 > 1 gives |dh_N/dh_0| >= 4^N)" in r.stdout
    d = json.loads(CliRunner().invoke(cli, ["bound", "-a", "expr:z**3+z", "--weight", "2", "--format", "json"]).stdout)
    assert (d["inf_derivative"], d["inf_proved"], d["inf_attained"], d["verdict"]) == ("1", True, True, "explode")


@pytest.mark.parametrize("factor", [2 / sp.sqrt(sp.pi) * sp.Rational("0.8862269254527580136490837416705725913987747280611935641069"),
                                    (1 - sp.sqrt(2) / 2) * sp.Rational("3.41421356237309504880168872420969807856967187537695")])
def test_depth_to_cross_for_an_irrational_factor_within_1e50_of_1(factor):
    # erf's γ|w| = 1 - 4.2e-59 and a floor (1 - √2/2)|w| = 1 + 5.6e-52: ln of the 55-digit value of the factor
    # was 0 and depth_to_cross divided by it (bound --tol: 'internal error (ZeroDivisionError)')
    with mpmath.workdps(120):
        f = mpmath.mpf(sp.N(factor, 120))
        truth = mpmath.ceil(mpmath.log(10**6) / abs(mpmath.log(f)))
    assert depth_to_cross(factor, sp.Rational(1, 10**6)) == int(truth)


@pytest.mark.parametrize("name, dphi", [
    ("gelu", lambda t: mpmath.ncdf(t) + t * mpmath.npdf(t)),                                # Φ(z) + zφ(z)
    ("silu", lambda t: 1 / (1 + mpmath.exp(-t)) * (1 + t * (1 - 1 / (1 + mpmath.exp(-t))))),  # σ(1 + z(1 − σ))
])
def test_a_floor_0_approached_is_also_attained_where_the_derivative_changes_sign(name, dphi):
    """GELU' -> 0 as z -> -oo, and bound printed 'inf|φ'| = 0, approached, not attained' (JSON inf_attained
    false), though φ' changes sign (below 0 at z = -1, above at z = 0: written by hand above), so vanishes."""
    assert dphi(mpmath.mpf(-1)) * dphi(mpmath.mpf(0)) < 0 or dphi(mpmath.mpf(-2)) * dphi(mpmath.mpf(0)) < 0
    inf = A.get(name).infimum
    assert (inf.value, inf.attained, inf.proved) == (0, True, True)
    where = inf.candidates[-1].where                    # the interval where the sign changes: check it by hand
    assert dphi(mpmath.mpf(str(where.start))) * dphi(mpmath.mpf(str(where.end))) < 0
    assert f"= 0 for one z in [{where.start}, {where.end}]" in floor_cause(name)   # one point, not the interval


def test_a_floor_0_approached_is_not_attained_where_sympy_proves_no_zero():
    assert [A.get(n).infimum.attained for n in ("sigmoid", "tanh", "softplus", "expr:exp(z)")] == [False] * 4


def test_a_floor_within_1e50_of_1_prints_its_gap():
    """(1 − √2/2)·|w| = 1 + 5.6e-52 printed as 'the floor 1 ± <1e-30 > 1': a reader could not see the side."""
    w = "3.41421356237309504880168872420969807856967187537695"
    with mpmath.workdps(100):
        gap = (1 - mpmath.sqrt(2) / 2) * mpmath.mpf(w) - 1
    text = depth_bound("expr:z-log(z**2+2)", w).decision.text
    assert text.startswith(f"explodes (proved: the floor 1 + {mpmath.nstr(gap, 6)} > 1"), text


def test_a_piece_on_a_set_sympy_cannot_write_as_intervals_is_refused():
    """|tanh z − z/2| switches formula where tanh z = z/2, which SymPy leaves as a ConditionSet: bound answered
    'internal error (NotImplementedError: (ConditionSet(...))._inf)', exit 1."""
    with pytest.raises(ProofError, match="cannot write as intervals"):
        A.get("expr:abs(tanh(z)-z/2)+2*z").supremum


def test_the_floor_at_weight_0_is_0_because_of_the_weight():
    """At |w| = 0 the reason read 'the floor is 0 (expr:z**3+z' = 1 for z = 0)': φ' = 3z² + 1 >= 1 is not why."""
    reason = depth_bound("expr:z**3+z", 0).decision.reason
    assert "the floor is 0 (|w| = 0)" in reason and "= 1 for z = 0" not in reason


def test_two_maximisers_that_tie_to_25_digits_are_told_apart():
    """φ' = 1 + 2e-40·z·e^(-z²) peaks at z = 1/√2 with 1 + √2e^(-1/2)·1e-40 (by hand: d/dz z·e^(-z²) = 0 there);
    its minimum at -1/√2 tied it to 25 digits and came first, so γ = 1 − 8.6e-41 and 'vanishes (proved)'."""
    act = A.get("expr:z-1e-40*exp(-z**2)")
    assert act.supremum.value == 1 + sp.sqrt(2) * sp.exp(-sp.Rational(1, 2)) / 10**40
    assert act.supremum.argmax == sp.FiniteSet(sp.sqrt(2) / 2)
    assert depth_bound(act, 1).verdict != "vanish"


def test_sweep_json_log10_of_a_ceiling_just_below_1_is_not_rounded_to_0():
    # γ|w| = (1/4)(4 - 1e-23) = 1 - 2.5e-24: log10 of its N-th power is N·log10(1 - 2.5e-24) ≈ -1.0857e-24·N (by hand:
    # log10(1 - ε) ≈ -ε / ln 10); rounding to 6 decimals printed -0.0
    from symvg.symbolic.bounds import depth_bound
    from symvg.views.bounds import sweep_to_dict
    d = sweep_to_dict([[depth_bound("sigmoid", "3.99999999999999999999999", n) for n in (1, 2)]])
    want = [-n * 2.5e-24 / math.log(10) for n in (1, 2)]
    assert d["activations"][0]["log10_bound"] == pytest.approx(want, rel=1e-9)


def test_sweep_table_never_shows_a_bound_that_is_not_1_as_1():
    # γ|w| = (1/4)(4 ± 4e-7) = 1 ± 1e-7: (1 + 1e-7)^N grows, (1 - 1e-7)^N vanishes; a cell "1.000" hides which
    from symvg.symbolic.bounds import depth_bound
    from symvg.views.bounds import render_sweep
    for w, sign in (("4.0000004", "+"), ("3.9999996", "-")):
        csv_text = render_sweep([[depth_bound("sigmoid", w, n) for n in (1, 2)]], "csv")
        assert csv_text.splitlines()[1:] == [f"1,1 {sign} 1e-07", f"2,1 {sign} 2e-07"]
    assert render_sweep([[depth_bound("sigmoid", 4, 1)]], "csv").splitlines()[1] == "1,1.000"
