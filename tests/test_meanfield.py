"""Mean-field signal propagation: closed forms vs quadrature vs Monte Carlo, critical lines, CLI.

References checked here:
* Poole et al. 2016, "Exponential expressivity in deep neural networks through transient chaos";
* Schoenholz et al. 2017, "Deep Information Propagation" (arXiv:1611.01232): for tanh the
  order/chaos boundary at σb² = 0.05 sits at σw² ≈ 1.76 (the operating point quoted for their
  critical-initialisation experiments; the value is read from the paper's discussion of the phase
  diagram, Fig. 1, to the two decimals they give);
* He et al. 2015 (σw² = 2 for ReLU), Cho & Saul 2009 (arc-cosine kernel), Williams 1997 (erf kernel),
  Klambauer et al. 2017 (SELU: q* = 1 at σw² = 1).
"""

from __future__ import annotations

import json
import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

from symvg.theory import meanfield as mf
from symvg.symbolic.activations import SELU_ALPHA, SELU_SCALE, get
from symvg.symbolic.parse import z
from symvg.exact import to_rational
from symvg.cli import cli
from symvg.errors import InvalidValueError, SymvgInputError, SymvgRuntimeError
from symvg.theory.meanfield.quadrature import _numpy_function

mpmath.mp.dps = 30


def mp_expect(expr: sp.Expr, q: float, kinks=()) -> float:
    """E[f(√q u)] by mpmath.quad at 30 digits, split at kinks: the independent reference."""
    f = sp.lambdify(z, expr, modules="mpmath")
    s = mpmath.sqrt(mpmath.mpf(q))
    pts = [-mpmath.inf] + sorted({mpmath.mpf(k) / s for k in kinks} | {mpmath.mpf(0)}) + [mpmath.inf]
    return float(mpmath.quad(lambda u: f(s * u) * mpmath.npdf(u), pts))


# ----------------------------------------------------------------------------- closed forms


def test_relu_closed_forms_are_derived_exactly():
    m = mf.moments("relu")
    assert m.V == mf.Q / 2 and m.D == sp.Rational(1, 2) and m.homogeneous


@pytest.mark.parametrize("a", ["0.2", "1/3", "0"])
def test_leaky_relu_closed_forms(a):
    r = sp.Rational(a) if "/" in a else to_rational(a)
    m = mf.moments(f"leaky_relu:{a}")
    assert sp.simplify(m.V - (1 + r**2) / 2 * mf.Q) == 0
    assert m.D == (1 + r**2) / 2


def test_linear_closed_forms():
    m = mf.moments("linear")
    assert (m.V, m.D) == (mf.Q, 1)


def test_erf_closed_forms_match_the_literature_and_quadrature():
    m = mf.moments("erf")
    q = mf.Q
    assert sp.simplify(m.V - 2 / sp.pi * sp.asin(2 * q / (1 + 2 * q))) == 0
    assert sp.simplify(m.D - 4 / sp.pi / sp.sqrt(1 + 4 * q)) == 0
    act = get("erf")
    for qv in (0.01, 0.7, 3.0, 40.0):
        assert m.v(qv) == pytest.approx(mp_expect(act.expr**2, qv), abs=1e-13)
        assert m.d(qv) == pytest.approx(mp_expect(act.derivative**2, qv), abs=1e-13)
        assert mf.gauss_expect(lambda x: np.asarray(sp.lambdify(z, act.expr, "scipy")(x)) ** 2, qv) == \
            pytest.approx(m.v(qv), abs=1e-12)


def test_erf_variance_is_the_integral_of_prices_kernel():
    # dV/dq must equal the diagonal of Price's-theorem kernel integrated as in _erf_moments: check
    # d/dq V(q) = ∂/∂q ∫_0^q (4/π)/√((1+2q)²−4s²) ds, by SymPy's Leibniz rule, numerically at a point
    q, s = sp.symbols("q s", positive=True)
    V = mf.moments("erf").V.subs(mf.Q, q)
    integrand = 4 / sp.pi / sp.sqrt((1 + 2 * q) ** 2 - 4 * s**2)
    leibniz = integrand.subs(s, q) + sp.Integral(sp.diff(integrand, q), (s, 0, q))
    assert float(sp.diff(V, q).subs(q, sp.Rational(7, 10))) == pytest.approx(
        float(leibniz.subs(q, sp.Rational(7, 10)).evalf(30)), rel=1e-12)


def test_hard_sigmoid_closed_form_matches_quadrature():
    m = mf.moments("hard_sigmoid")
    assert m.V is not None and not m.homogeneous
    act = get("hard_sigmoid")
    for qv in (0.5, 9.0, 100.0):
        assert m.v(qv) == pytest.approx(mp_expect(act.expr**2, qv, (-3, 3)), abs=1e-12)
        assert m.d(qv) == pytest.approx(mp_expect(act.derivative**2, qv, (-3, 3)), abs=1e-12)


# ----------------------------------------------------------------------------- quadrature


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "gelu", "silu", "softplus", "elu", "selu"])
@pytest.mark.parametrize("q", [0.05, 1.0, 30.0])
def test_quadrature_matches_mpmath_to_1e10(name, q):
    act = get(name)
    ks = mf.kinks(act.expr) + mf.kinks(act.derivative)
    m = mf.moments(act)
    assert m.method == "quadrature"
    assert m.v(q) == pytest.approx(mp_expect(act.expr**2, q, ks), rel=1e-10, abs=1e-12)
    assert m.d(q) == pytest.approx(mp_expect(act.derivative**2, q, ks), rel=1e-10, abs=1e-12)


def test_quadrature_matches_gauss_hermite_for_smooth_tanh():
    x, w = np.polynomial.hermite_e.hermegauss(120)
    w = w / math.sqrt(2 * math.pi)
    # Gauss–Hermite converges only geometrically here (tanh has poles at ±iπ/(2√q)), so it is the
    # looser of the two references; mpmath above is the 1e-10 one
    for q in (0.3, 2.0):
        assert mf.moments("tanh").v(q) == pytest.approx(float(w @ np.tanh(math.sqrt(q) * x) ** 2), abs=1e-8)


def test_quadrature_matches_monte_carlo():
    rng = np.random.default_rng(7)
    u = rng.standard_normal(1_000_000)
    vals = np.tanh(math.sqrt(2.0) * u) ** 2
    mc, err = vals.mean(), vals.std() / math.sqrt(u.size)
    assert abs(mf.moments("tanh").v(2.0) - mc) < 4 * err


def test_gauss_expect_rejects_bad_variance():
    with pytest.raises(InvalidValueError, match="variance q"):
        mf.gauss_expect(np.tanh, -1.0)


# ----------------------------------------------------------------------------- mean field


@pytest.mark.parametrize("sw", ["3/7", "2", "5/2", "0.1"])
def test_relu_chi1_is_sigma_w2_over_two_exactly(sw):
    r = mf.mean_field("relu", sw, "0.3")
    assert r.exact and r.chi1 == to_rational(sw) / 2


def test_relu_fixed_point_exact_and_divergent_cases():
    assert mf.mean_field("relu", 1, "1/2").q_star == 1  # σb²/(1 − σw²/2)
    crit = mf.mean_field("relu", 2, "0.1")
    assert crit.q_star == sp.oo and crit.verdict == "critical" and crit.as_dict()["q_star"] is None
    chaos = mf.mean_field("relu", 3, 0)
    assert chaos.q_star == sp.oo and chaos.chi1 == sp.Rational(3, 2) and chaos.verdict == "chaotic"
    assert mf.mean_field("relu", 1, 0).q_star == 0


def test_relu_above_he_says_the_map_diverges_not_nan():
    # q ↦ (3/2)q has no fixed point: q^l = (3/2)^l q0, so ξ_q and c* are undefined, and said so
    r = mf.mean_field("relu", 3, 0)
    assert "diverges" in r.note and "3/2" in r.note
    assert "nan" not in r.text() and "undefined" in r.text() and "note: no fixed point" in r.text()
    assert r.as_dict()["xi_q"] is None and r.as_dict()["note"] == r.note


def test_relu_at_he_without_bias_says_every_q_is_fixed():
    r = mf.mean_field("relu", 2, 0, q0="2.5")  # the map is q ↦ q: q* is whatever comes in
    assert r.q_star == sp.Rational(5, 2) and "every q is a fixed point" in r.note
    assert "every q is a fixed point" in r.text()
    assert mf.mean_field("relu", 2, "0.1").note.startswith("no fixed point: q grows by σb² = 1/10 per layer")


def test_tanh_mean_field_against_mpmath_iteration():
    r = mf.mean_field("tanh", "1.5", "0.05")
    act = get("tanh")
    q = r.q_star  # a fixed point of the map evaluated with mpmath, and attracting (slope < 1 below)
    assert 1.5 * mp_expect(act.expr**2, q) + 0.05 == pytest.approx(q, rel=1e-11)
    assert r.chi1 == pytest.approx(1.5 * mp_expect(act.derivative**2, q), rel=1e-10)
    # ξ_q from the slope of the variance map, by an mpmath central difference
    h = 1e-6
    slope = 1.5 * (mp_expect(act.expr**2, float(q) + h) - mp_expect(act.expr**2, float(q) - h)) / (2 * h)
    assert r.slope_q == pytest.approx(slope, rel=1e-7)
    assert r.xi_q == pytest.approx(-1 / math.log(slope), rel=1e-6)
    assert r.verdict == "ordered" and r.c_star == 1 and r.xi_c == pytest.approx(-1 / math.log(r.chi1))


def test_chaotic_tanh_has_a_correlation_fixed_point_below_one():
    r = mf.mean_field("tanh", 3, "0.05")
    assert r.verdict == "chaotic" and 0 < r.c_star < 1
    assert mf.correlation_map("tanh", 3, 0.05, r.q_star, r.c_star) == pytest.approx(r.c_star, abs=1e-10)
    assert r.chi_c < 1 and r.xi_c == pytest.approx(-1 / math.log(r.chi_c))


@pytest.mark.parametrize("name", ["tanh", "erf", "relu"])
def test_correlation_map_slope_at_one_is_chi1(name):
    r = mf.mean_field(name, "1.3", "0.2")
    q, eps = float(r.q_star), 1e-5
    slope = (1 - mf.correlation_map(name, 1.3, 0.2, q, 1 - eps)) / eps
    assert slope == pytest.approx(float(r.chi1), rel=1e-3)
    assert mf.correlation_map(name, 1.3, 0.2, q, 1.0) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("name,c", [("relu", 0.3), ("leaky_relu:0.2", -0.6), ("erf", 0.8), ("linear", 0.5)])
def test_correlation_kernels_closed_form_vs_monte_carlo(name, c):
    act = get(name)
    q = 1.7
    k, kp = mf.correlation_kernels(act, q, c)
    rng = np.random.default_rng(3)
    z1, z2 = rng.standard_normal((2, 400_000))
    u1, u2 = math.sqrt(q) * z1, math.sqrt(q) * (c * z1 + math.sqrt(1 - c * c) * z2)
    f, fp = _numpy_function(act.expr), _numpy_function(act.derivative)
    for exact, samples in ((k, f(u1) * f(u2)), (kp, np.broadcast_to(fp(u1) * fp(u2), u1.shape))):
        assert abs(exact - samples.mean()) < 5 * samples.std() / math.sqrt(u1.size) + 1e-12


def test_verdict_tolerance_and_exactness():
    assert mf.verdict(sp.Integer(1)) == "critical"
    assert mf.verdict(sp.Rational(10**9 + 1, 10**9)) == "chaotic"  # exact χ1 is never rounded
    assert mf.verdict(0.5) == "ordered" and mf.verdict(1 - 1e-12) == "critical"


def test_as_dict_keys_and_json():
    d = mf.mean_field("tanh", "1.2", "0.1").as_dict()
    assert {"activation", "sigma_w2", "sigma_b2", "q_star", "chi1", "xi_c", "verdict"} <= set(d)
    json.dumps(d, allow_nan=False)


def test_selu_self_normalises_at_sigma_w2_one():
    assert mf.mean_field("selu", 1, 0).q_star == pytest.approx(1.0, abs=1e-9)


def test_erf_and_selu_come_from_the_catalogue():
    assert mf.moments("selu").activation == get("selu") and mf.moments("erf").activation == get("erf")
    assert not hasattr(mf, "resolve") and not hasattr(mf, "EXTRA")


@pytest.mark.parametrize("name,sw,d0", [("tanh", "0.5", 1), ("gelu", "2", sp.Rational(1, 4)),
                                        ("erf", "0.5", 4 / sp.pi)])
def test_zero_bias_fixed_point_is_exactly_zero(name, sw, d0):
    # σb² = 0 and φ(0) = 0: q = 0 is a fixed point, attracting when σw²φ'(0)² ≤ 1; the float solver
    # lands at ~1e-17 (rounding), the answer is 0 and χ1 = σw²φ'(0)² exactly
    r = mf.mean_field(name, sw, 0)
    assert r.q_star == 0 and r.exact and sp.simplify(r.chi1 - sp.Rational(sw) * d0) == 0
    assert float(r.chi1) == pytest.approx(float(sw) * mp_expect(get(name).derivative ** 2, 1e-12), rel=1e-6)


def test_selu_origin_slope_averages_both_sides_of_the_kink():
    # V(q)/q → (φ'(0−)² + φ'(0+)²)/2 = λ²(α² + 1)/2 as q → 0, checked with mpmath at q = 1e-8
    act = get("selu")
    d0 = mf.origin_slope(act)
    assert d0 == SELU_SCALE**2 * (SELU_ALPHA**2 + 1) / 2
    assert mp_expect(act.expr**2, 1e-8, (0,)) / 1e-8 == pytest.approx(float(d0), rel=1e-3)


def test_bad_inputs_raise_input_errors():
    with pytest.raises(InvalidValueError, match="sigma_w2"):
        mf.mean_field("tanh", -1)
    with pytest.raises(SymvgInputError, match="unknown activation"):
        mf.mean_field("tanhh", 1)
    with pytest.raises(InvalidValueError, match="finite"):
        mf.mean_field("tanh", "inf")


# ----------------------------------------------------------------------------- critical line


def test_tanh_critical_point_at_sigma_b2_005_reproduces_schoenholz():
    cp = mf.critical_sigma_w2("tanh", "0.05")
    assert round(cp.sigma_w2, 2) == 1.76  # Schoenholz et al. 2017: σw² ≈ 1.76 at σb² = 0.05
    # independent check: χ1 = 1 there with mpmath quadrature on the q* symvg found
    act = get("tanh")
    assert cp.q_star == pytest.approx(cp.sigma_w2 * mp_expect(act.expr**2, cp.q_star) + 0.05, rel=1e-10)
    assert cp.sigma_w2 * mp_expect(act.derivative**2, cp.q_star) == pytest.approx(1, abs=1e-9)


def test_tanh_critical_point_is_reached_from_a_huge_q0():
    """From q0 = 1e300 one layer of tanh brings q below σw² < 2 (tanh² < 1), so the same q* is reached; the check
    read the map's saturated images (V = 1 to the float) as not increasing: 'fails its check: q* is not reached'."""
    cp = mf.critical_sigma_w2("tanh", "0.05", q0="1e300")
    act = get("tanh")
    assert cp.q_star == pytest.approx(cp.sigma_w2 * mp_expect(act.expr**2, cp.q_star) + 0.05, rel=1e-10)
    assert cp.sigma_w2 * mp_expect(act.derivative**2, cp.q_star) == pytest.approx(1, abs=1e-9)


def test_tanh_critical_at_zero_bias_is_exactly_one():
    cp = mf.critical_sigma_w2("tanh", 0)
    assert cp.exact and cp.sigma_w2 == 1 and cp.q_star == 0
    assert mf.mean_field("tanh", "0.99", 0).verdict == "ordered"
    assert mf.mean_field("tanh", "1.1", 0).verdict == "chaotic"


@pytest.mark.parametrize("sb", ["0", "0.05", "2"])
def test_relu_critical_is_two_for_any_bias(sb):
    cp = mf.critical_sigma_w2("relu", sb)
    assert cp.exact and cp.sigma_w2 == 2
    assert cp.q_star == (1 if sb == "0" else sp.oo)  # σb² > 0: q* diverges at σw² = 2


def _gh_map(phi, dphi, sw, sb):
    """The variance map and χ1 by 160-point Gauss–Hermite: an independent route for smooth φ."""
    x, w = np.polynomial.hermite_e.hermegauss(160)
    w = w / math.sqrt(2 * math.pi)
    return (lambda q: sw * float(w @ phi(math.sqrt(q) * x) ** 2) + sb,
            lambda q: sw * float(w @ dphi(math.sqrt(q) * x) ** 2))


def _gelu(x):
    from scipy.special import ndtr
    return x * ndtr(x)


def _dgelu(x):
    from scipy.special import ndtr
    return ndtr(x) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def _silu(x):
    from scipy.special import expit
    return x * expit(x)


def _dsilu(x):
    from scipy.special import expit
    s = expit(x)
    return s * (1 + x * (1 - s))


def _iterate(vmap, q, steps):
    for _ in range(steps):
        q = vmap(q)
        if q > 1e8:
            return math.inf
    return q


@pytest.mark.parametrize("name,phi,dphi,div", [("gelu", _gelu, _dgelu, 2.234129833),
                                               ("silu", _silu, _dsilu, 2.670223068)])
def test_gelu_and_silu_have_no_critical_point_at_bias_005(name, phi, dphi, div):
    # issue 14: the old answer (GELU 2.2341, χ1 there 0.73; SiLU 2.6702 with q* = inf) was where q* jumps
    # to ∞, not where χ1 = 1. Independently (Gauss–Hermite, iterating the map from q0 = 1): below the
    # reported σw² the map settles with χ1 < 1, above it q runs off; so no σw² gives χ1 = 1
    cp = mf.critical_sigma_w2(name, "0.05")
    assert not cp.exists and cp.sigma_w2 is None and cp.diverges_from == pytest.approx(div, rel=1e-6)
    assert "does not exist" in cp.note and "q diverges from σw² ≈ 2." in cp.text()
    for sw in (0.5 * div, 0.9 * div, 0.995 * div):
        vmap, chi = _gh_map(phi, dphi, sw, 0.05)
        q = _iterate(vmap, 1.0, 3000)
        assert q < math.inf and abs(vmap(q) - q) < 1e-6 and chi(q) < 1
    assert _iterate(_gh_map(phi, dphi, 1.005 * div, 0.05)[0], 1.0, 3000) == math.inf


@pytest.mark.parametrize("sb", ["0", "0.05"])
def test_softplus_has_no_critical_point_and_diverges_from_two(sb):
    # a proof: softplus² > relu², so V(q) > q/2 and σw² ≥ 2 sends q to ∞; below, χ1 = σw²E[σ(z)²] and
    # E[σ(z)²] = E[σ² + (1−σ)²]/2 < 1/2 (z symmetric), so χ1 < σw²/2 < 1. The boundary is σw² = 2, with
    # χ1 → 1 only as q* → ∞. (This used to end in "Gaussian expectation overflowed": e^z at z ≈ 740.)
    cp = mf.critical_sigma_w2("softplus", sb)
    assert not cp.exists and cp.diverges_from == pytest.approx(2, rel=1e-4)
    assert "stays below 1" in cp.note


def test_gelu_at_zero_bias_has_no_reachable_critical_point():
    # σw² = 1/φ'(0)² = 4 would put χ1 = 1 at q* = 0, but from q0 = 1 the map runs off there
    cp = mf.critical_sigma_w2("gelu", 0)
    assert not cp.exists and cp.diverges_from < 4
    vmap, _ = _gh_map(_gelu, _dgelu, 4.0, 0.0)
    assert _iterate(vmap, 1.0, 200) == math.inf
    assert cp.diverges_from == pytest.approx(1 / (vmap(1.0) / 4), rel=1e-6)  # σw²·V(1) = 1: q0 is the edge


def test_critical_point_is_checked_and_says_so():
    cp = mf.critical_sigma_w2("tanh", "0.05", q0="0.5")
    assert cp.exists and "checked" in cp.note and "reached from q0 = 1/2" in cp.note
    assert cp.sigma_w2 == pytest.approx(mf.critical_sigma_w2("tanh", "0.05").sigma_w2, rel=1e-9)  # one basin
    d = cp.as_dict()
    assert d["exists"] and d["q0"] == 0.5 and d["diverges_from"] is None


def test_cli_critical_without_a_boundary_says_what_happens():
    r = run("meanfield", "-a", "gelu", "--sigma-b2", "0.05", "--critical")
    assert r.exit_code == 0 and "no critical σw²" in r.output and "diverges from σw² ≈ 2.23412983" in r.output
    d = json.loads(run("meanfield", "-a", "gelu", "--sigma-b2", "0.05", "--critical", "--format", "json").output)
    assert d["exists"] is False and d["sigma_w2"] is None and d["diverges_from"] == pytest.approx(2.234129833)


def test_he_and_linear_rules_derived():
    assert mf.critical_sigma_w2("leaky_relu:0.1").sigma_w2 == sp.Rational(200, 101)  # 2/(1+a²)
    assert mf.critical_sigma_w2("linear").sigma_w2 == 1


def test_tanh_critical_line_increases_with_bias():
    line = [mf.critical_sigma_w2("tanh", b).sigma_w2 for b in ("0.01", "0.05", "0.2")]
    assert line == sorted(line) and line[0] > 1


def test_phase_diagram_grids():
    pd = mf.phase_diagram("tanh", (0.5, 3.0), (0.0, 0.2), 4)
    assert pd.chi1.shape == (4, 4) and pd.critical_sigma_w2.shape == (4,)
    assert pd.critical_sigma_w2[0] == pytest.approx(1.0)
    assert np.all(np.diff(pd.chi1, axis=1) > 0)  # χ1 grows with σw² at fixed σb²
    for i, b in enumerate(pd.sigma_b2):
        for j, w in enumerate(pd.sigma_w2):
            assert (pd.chi1[i, j] < 1) == (w < pd.critical_sigma_w2[i] - 1e-9)
    with pytest.raises(InvalidValueError):
        mf.phase_diagram("tanh", (3, 1), (0, 1), 4)


# ----------------------------------------------------------------------------- init rules


def test_init_rules_reproduce_calculate_gain():
    rules = {r.name: r for r in mf.init_rules()}
    assert rules["linear"].gain == 1 and rules["relu"].gain == sp.sqrt(2)
    assert rules["leaky_relu"].gain == sp.sqrt(sp.Rational(2) / (1 + sp.Rational(1, 100) ** 2))
    assert rules["tanh"].gain == sp.Rational(5, 3) and rules["sigmoid"].gain == 1
    assert rules["selu"].gain == sp.Rational(3, 4)
    assert all(rules[k].derived for k in ("linear", "relu", "leaky_relu"))
    assert rules["tanh"].gain_squared == sp.Rational(25, 9) and rules["tanh"].critical_sigma_w2 == 1
    assert rules["tanh"].chi1_at_gain > 1  # 5/3 puts tanh on the chaotic side at σb² = 0
    assert rules["sigmoid"].critical_sigma_w2 > 16  # σ' ≤ 1/4 ⇒ χ1 ≤ σw²/16
    assert rules["sigmoid"].chi1_at_gain < 1 / 16


def test_init_rules_agree_with_torch():
    torch = pytest.importorskip("torch")
    rules = {r.name: r for r in mf.init_rules("0.01")}
    for name in ("linear", "sigmoid", "tanh", "relu", "selu"):
        assert float(rules[name].gain) == pytest.approx(torch.nn.init.calculate_gain(name), rel=1e-12)
    assert float(rules["leaky_relu"].gain) == pytest.approx(torch.nn.init.calculate_gain("leaky_relu", 0.01))


# ----------------------------------------------------------------------------- simulation


@pytest.mark.parametrize("name,sw,sb", [("relu", "2", "0"), ("tanh", "1.76", "0.05"), ("relu", "1.5", "0.1")])
def test_simulation_agrees_with_mean_field_within_statistical_error(name, sw, sb):
    s = mf.simulate(name, sw, sb, width=256, depth=8, batch=16, seeds=10, jacobian_inputs=0)
    assert abs(s.z_score) < 4, s.text()
    assert abs(s.chi1_fit - s.chi1) < 0.03
    if 0 < s.q_star < math.inf and name == "tanh":
        assert abs(s.q_mean - s.q_star) < 4 * s.q_stderr + 0.01


def test_simulation_jacobian_mean_tracks_chi1_power():
    s = mf.simulate("tanh", "1.2", "0.05", width=128, depth=6, batch=4, seeds=4, jacobian_inputs=2)
    chi = s.chi1
    for l, (m, e) in enumerate(zip(s.jac_mean, s.jac_mean_stderr), start=1):
        assert abs(m - chi**l) < 5 * e + 0.05 * chi**l


def _relu_log_ratio_bias(n: int) -> float:
    """E[log r] − log χ1 for one input through a width-n ReLU layer, exactly.

    r = (σw²/n)·χ²_K with K ~ Bin(n, 1/2) active units and χ1 = σw²/2, and
    E[log χ²_K] = ψ(K/2) + log 2, so the bias is E[ψ(K/2)] + log 2 − log(n/2), given K ≥ 1.
    """
    from scipy.special import digamma
    from scipy.stats import binom
    k = np.arange(1, n + 1)
    p = binom.pmf(k, n, 0.5) / (1 - 0.5**n)
    return float(p @ digamma(k / 2)) + math.log(2) - math.log(n / 2)


def test_simulation_ratio_is_unbiased_where_a_log_fit_is_not():
    # width 16, one input: the log fit's bias is ≈ −2.5/n per layer (−0.176 exactly, ψ-derived above,
    # 7 standard errors); the mean of per-layer ratios has none. Both checked against their own errors.
    n, L, seeds = 16, 31, 16
    s = mf.simulate("relu", 2, 0, width=n, depth=L, batch=1, seeds=seeds, jacobian_inputs=0, seed=11)
    bias = _relu_log_ratio_bias(n)
    assert bias == pytest.approx(-2.5 / n, rel=0.15)  # the O(1/n) rule, 13% off at n = 16
    assert abs(s.z_score) < 4, s.text()
    se_log = math.sqrt(5 / n) / math.sqrt((L - 1) * seeds)  # sd of log r ≈ √(Var log χ²_K + Var log K) ≈ √(5/n)
    assert abs(math.log(s.chi1_logfit) - bias) < 4 * se_log
    assert s.log_gap == pytest.approx(-bias, rel=0.3)  # the Jensen gap it measured ≈ Var(log r)/2 ≈ 2.5/n
    assert "a fit on log norms gives" in s.text()


def test_simulation_refuses_runaway_sizes_with_one_guard():
    with pytest.raises(InvalidValueError, match="depth 1000000000"):
        mf.simulate("relu", 2, width=8, depth=10**9)  # issue 15: the API had no guard
    with pytest.raises(InvalidValueError, match="multiply-adds"):
        mf.check_simulation_size(64, 2000, 1, seeds=10**5)  # fits in memory (66 MB), not in time
    with pytest.raises(InvalidValueError, match="--width 100000000"):
        mf.check_simulation_size(10**8, 10, 1, cli=True)
    assert mf.simulate("relu", 2, width=np.int64(8), depth=2, batch=2, seeds=2).width == 8


def test_simulation_rejects_bad_sizes_and_backend():
    with pytest.raises(InvalidValueError, match="width"):
        mf.simulate("relu", 2, width=1)
    with pytest.raises(InvalidValueError, match="backend"):
        mf.simulate("relu", 2, width=8, depth=2, batch=2, seeds=2, backend="jax")


# ----------------------------------------------------------------------------- CLI


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_cli_text_and_json():
    r = run("meanfield", "--activation", "relu", "--sigma-w2", "2", "--sigma-b2", "0")
    assert r.exit_code == 0 and "χ1  = 1" in r.output and "critical" in r.output
    r = run("meanfield", "-a", "tanh", "--sigma-w2", "1.5", "--sigma-b2", "0.05", "--format", "json")
    d = json.loads(r.output)
    assert d["verdict"] == "ordered" and d["chi1"] == pytest.approx(mf.mean_field("tanh", "1.5", "0.05").chi1)


def test_cli_critical_and_output_file(tmp_path):
    out = tmp_path / "c.json"
    r = run("meanfield", "-a", "tanh", "--sigma-b2", "0.05", "--critical", "--format", "json", "-o", str(out))
    assert r.exit_code == 0 and r.output == ""
    assert round(json.loads(out.read_text())["sigma_w2"], 2) == 1.76
    r = run("meanfield", "-a", "relu", "--sigma-b2", "0.05", "--critical")
    assert "critical σw² = 2" in r.output and "q* = oo" in r.output


def test_cli_simulate():
    r = run("meanfield", "-a", "relu", "--sigma-w2", "2", "--simulate", "--width", "64", "--depth", "4",
            "--batch", "4", "--seeds", "2")
    assert r.exit_code == 0 and "gradient ratio per layer" in r.output


@pytest.mark.parametrize("args", [
    ["--activation", "tanh", "--sigma-w2", "-1"],
    ["--activation", "nope", "--sigma-w2", "1"],
    ["--activation", "tanh"],
    ["--activation", "tanh", "--sigma-w2", "1", "--critical"],
    ["--activation", "tanh", "--sigma-w2", "1; rm -rf /"],
    ["--activation", "tanh", "--sigma-w2", "1", "--width", "0", "--simulate"],
])
def test_cli_bad_input_exits_2_with_one_line(args):
    r = run("meanfield", *args)
    assert r.exit_code == 2
    assert r.stderr.startswith("symvg: error: ") and r.stderr.count("\n") == 1


def test_a_bounded_activation_never_diverges_however_large_sigma_w2():
    # |tanh| <= 1 keeps q <= σw²; for large q, E[tanh²(√q u)] = 1 − 2/√(2πq) + … (∫sech² = 2) and
    # E[sech⁴(√q u)] = (4/3)/√(2πq) + … (∫sech⁴ = 4/3), so q* ≈ σw²(1 − 2/√(2πσw²)), χ1 ≈ σw²·(4/3)/√(2πq*).
    sw = 1e20
    r = mf.mean_field("tanh", "1e20")
    assert r.q_star == pytest.approx(sw * (1 - 2 / math.sqrt(2 * math.pi * sw)), rel=1e-12)
    assert r.chi1 == pytest.approx(sw * (4 / 3) / math.sqrt(2 * math.pi * r.q_star), rel=1e-6)
    assert r.verdict == "chaotic"


def test_chaotic_odd_activation_without_bias_has_c_star_zero_not_one():
    # φ odd and σb² = 0: c = 0 is a fixed point of the correlation map, and the stable one in the chaotic
    # phase (c = 1 is then unstable); at σw² = 1e4 the quadrature cannot resolve map(c) − c next to 1.
    r = mf.mean_field("tanh", "1e4")
    assert r.verdict == "chaotic" and abs(r.c_star) < 1e-9


def test_derivative_kernel_is_resolved_at_large_variance():
    # At q = 1e8, tanh' has width 1e-4 in u; E[φ'(u1)φ'(u2)] at c = 0 is E[sech²(√q u)]², a 1-D integral
    # done here by mpmath. The fixed 2-D grid gave ~0 (so ξ_c = 0 for tanh at σw² = 1e8; truly 2.2148).
    q = 1e8
    s = mpmath.sqrt(q)
    one = mpmath.quad(lambda u: mpmath.sech(s * u) ** 2 * mpmath.npdf(u), [-10, -1, -10 / s, 0, 10 / s, 1, 10])
    kk, kp = mf.correlation_kernels("tanh", q, 0.0)
    assert kp == pytest.approx(float(one) ** 2, rel=1e-9) and abs(kk) < 1e-12
    r = mf.mean_field("tanh", "1e8")
    chi_c = 1e8 * float(mpmath.quad(lambda u: mpmath.sech(mpmath.sqrt(r.q_star) * u) ** 2 * mpmath.npdf(u),
                                    [-10, -1, 0, 1, 10])) ** 2
    assert r.c_star == 0 and r.xi_c == pytest.approx(-1 / math.log(chi_c), rel=1e-6)


def test_sigmoid_kernels_at_large_variance_are_finite_and_match_the_step_limit():
    # σ' = e^-z/(1 + e^-z)² gave inf/inf = NaN at large |z| (meanfield -a sigmoid --sigma-w2 1e12 exited
    # 'the activation grows too fast'). As q → ∞, σ → a step: E[σσ] → 1/4 + asin(c)/(2π) and
    # E[σ'σ'] → 1/(2πq√(1 − c²)) (∫σ' = 1 against the bivariate density at 0); corrections are O(1/√q).
    q, c = 1e8, 0.5
    kk, kp = mf.correlation_kernels("sigmoid", q, c)
    assert kk == pytest.approx(0.25 + math.asin(c) / (2 * math.pi), abs=1e-3)
    assert kp * 2 * math.pi * q * math.sqrt(1 - c * c) == pytest.approx(1.0, abs=1e-3)


# ξ_q at extreme σw². As q → ∞, a squashing φ becomes a step and, by hand (z = √q u, u's density √(1/2π) across
# φ's transition): q·V'(q) = E[z·φφ'(z)] → ∫ z·φφ' dz/√(2πq), with ∫ z σσ' = 1/2 (sigmoid) and ∫ z tanh·tanh' = 1;
# q* = σw²·V(q*) ≈ σw²/2 and σw², so the slope σw²·V'(q*) → 1/√(πσw²) (sigmoid) and 1/√(2πσw²) (tanh); erf's
# V'(q) = (4/π)/((1 + 2q)√(1 + 4q)) exactly. Corrections are O(1/√q) ≤ 1e-50 here; the quadrature's own is ~1e-7.
# A finite difference of V printed ξ_q = 0 there (V(q ± h) equal to the last bit), erf raised OverflowError at
# 1e200 and gave q* = 0 at 1e308.
@pytest.mark.parametrize("name,sw,slope", [
    ("tanh", "1e300", 1 / mpmath.sqrt(2 * mpmath.pi * mpmath.mpf("1e300"))),
    ("erf", "1e300", mpmath.mpf("1e300") * 4 / mpmath.pi / ((1 + 2 * mpmath.mpf("1e300")) * mpmath.sqrt(1 + 4 * mpmath.mpf("1e300")))),
    ("erf", "1e308", mpmath.mpf("1e308") * 4 / mpmath.pi / ((1 + 2 * mpmath.mpf("1e308")) * mpmath.sqrt(1 + 4 * mpmath.mpf("1e308")))),
    # tiny σw²: q* ~ σw²·φ(0)², slope = σw²·V'(0) = σw²(φ'(0)² + φ(0)φ''(0)): 1/16 (sigmoid), (1 + ln 2)/4 (softplus)
    ("sigmoid", "1e-300", mpmath.mpf("1e-300") / 16),
    ("softplus", "1e-300", mpmath.mpf("1e-300") * (1 + mpmath.log(2)) / 4),
])
def test_depth_scale_of_the_variance_map_at_extreme_sigma_w2(name, sw, slope):
    r = mf.mean_field(name, sw)
    assert r.slope_q == pytest.approx(float(slope), rel=1e-6, abs=0)
    assert r.xi_q == pytest.approx(float(-1 / mpmath.log(slope)), rel=1e-9) and r.xi_q > 0


@pytest.mark.parametrize("q", [5e299, 5e99])
def test_sigmoid_variance_map_slope_at_large_q(q):
    # q·V'(q) = E[z·σσ'(z)] → ∫ z σσ' dz/√(2πq) = 1/(2√(2πq)) (by hand, above); the full mean_field adds c*,
    # seconds at this q, so the map's slope is checked here (the CLI test below checks ξ_q end to end with tanh)
    assert mf.moments("sigmoid").q_dv(q) == pytest.approx(0.5 / math.sqrt(2 * math.pi * q), rel=1e-6, abs=0)


@pytest.mark.parametrize("name,q", [("sigmoid", 1.0), ("sigmoid", 1e4), ("elu:0.5", 2.0), ("tanh", 1e-20)])
def test_variance_map_slope_against_mpmath(name, q):
    # q·V'(q) = E[z·φ(z)φ'(z)], z ~ N(0, q), by mpmath.quad; at q = 1e-20 (below the quadrature's own
    # threshold) V' is taken at 1e-16, where tanh's V'(q) = 1 − 4q + O(q²) differs from V'(1e-20) by 4e-16
    act = get(name)
    ref = mp_expect(z * act.expr * act.derivative, q, mf.kinks(act.expr))
    assert mf.moments(name).q_dv(q) == pytest.approx(ref, rel=1e-8, abs=0)


def test_erf_at_the_top_of_the_float_range():
    # q* = σw²·V(q*) with V → 1; χ1 = σw²·(4/π)/√(1 + 4q*); at c* = 0, χ_c = σw²·(4/π)/(1 + 2q*) → 2/π (by hand)
    r = mf.mean_field("erf", "1e308")
    assert r.q_star == pytest.approx(1e308, rel=1e-12)
    assert r.chi1 == pytest.approx(float(mpmath.mpf("1e308") * 4 / mpmath.pi / mpmath.sqrt(1 + 4 * mpmath.mpf("1e308"))), rel=1e-12)
    assert r.c_star == 0 and r.xi_c == pytest.approx(-1 / math.log(2 / math.pi), rel=1e-9)


def test_a_variance_map_that_overflows_is_reported_as_divergent():
    # ELU's map at σw² = 1e300 reaches inf in two steps; the cap of 1e15·σw² was itself inf, so the inf q went on
    # into the quadrature, which answered 'variance q must be finite ... got inf'.
    with pytest.raises(SymvgRuntimeError, match="diverges"):
        mf.mean_field("elu", "1e300")


def test_cli_prints_huge_and_tiny_variances_in_exponent_form():
    out = CliRunner().invoke(cli, ["meanfield", "-a", "tanh", "--sigma-w2", "1e300", "--sigma-b2", "1e-300"]).output
    assert "σw² = 1.0e+300, σb² = 1.0e-300" in out and "0" * 30 not in out
    assert "ξ_q = 0 " not in out and "ξ_q = 0.00288761 " in out  # −1/ln(1/√(2π·1e300)) = 0.002887607


@pytest.mark.parametrize("name,slope0", [("elu:0.5", sp.Rational(5, 8)), ("tanh", 1), ("gelu", sp.Rational(1, 4))])
def test_a_tiny_bias_gives_its_tiny_fixed_point(name, slope0):
    # φ(0) = 0: near 0 the map is q ↦ σw²·D0·q + σb² (D0 = mean of φ'(0±)², by hand: ELU(α=1/2) (1/4 + 1)/2 = 5/8),
    # so q* = σb²/(1 − σw²D0). The root search stopped at 1e-30·q0 and answered ~1e-41; ELU's α(e^z − 1) was 0
    # at z ~ 1e-150 (e^z − 1 rounded), so its map's slope there came out σw²/4, not σw²·5/8.
    r = mf.mean_field(name, "1/2", "1e-300")
    assert r.q_star == pytest.approx(float(sp.Rational(1, 10**300) / (1 - slope0 / 2)), rel=1e-9, abs=0)
    assert r.slope_q == pytest.approx(float(slope0 / 2), rel=1e-7)


def test_variances_beyond_float64_are_reported_not_answered():
    from symvg.errors import OverflowReport, UnderflowReport

    # σw² = 1e309 became inf, and a bounded φ's map was called divergent (its q* = σw²/2 is finite)
    with pytest.raises(OverflowReport, match="beyond float64"):
        mf.mean_field("sigmoid", "1e309")
    # 1e-320 is subnormal (q* came out 2.49997e-321, not 2.5e-321), 1e-400 is 0.0 (χ1 = 0, ξ = 0 were printed)
    for sw in ("1e-320", "1e-400"):
        with pytest.raises(UnderflowReport, match="below float64's normal range"):
            mf.mean_field("sigmoid", sw)
    with pytest.raises(UnderflowReport, match="χ1 ≈ 6.25e-309"):  # σw²/16 at q* ≈ σw²/4: subnormal
        mf.mean_field("sigmoid", "1e-307")


@pytest.mark.parametrize("name,sw,chi1", [("relu", "1e400", sp.Integer(10) ** 400 / 2),
                                          ("relu", "1e-400", sp.Rational(1, 2 * 10**400)),
                                          ("tanh", "1e-400", sp.Rational(1, 10**400))])
def test_exact_answers_beyond_float64_keep_their_magnitude(name, sw, chi1):
    # exact χ1 = σw²·E[φ'²] (ReLU: 1/2; tanh at the proved q* = 0: φ'(0)² = 1); it was printed as inf or 0, and
    # ξ = −1/ln χ1 as 0 where it is 1/(400 ln 10 + ln 2) or 1/(400 ln 10) (ordered: ξ_c = −1/ln χ1, by hand)
    r = mf.mean_field(name, sw)
    assert r.chi1 == chi1
    text = r.text()
    assert ("5.0e+399" if sw == "1e400" else "e-40") in text and "inf" not in text and "= 0 " not in text
    if r.verdict == "ordered":
        assert r.xi_c == pytest.approx(-1 / float(mpmath.log(mpmath.mpf(chi1.p) / chi1.q)), rel=1e-12)


def test_critical_search_says_how_far_it_looked():
    # at σb² = 1e300, q* ~ 1e300 and χ1 ~ σw²·1e-150: χ1 = 1 lies near σw² ~ 1e150, beyond the scanned 1e4,
    # so "order throughout" was false; a slope of 1 − 2e-8 was printed "map slope 1 < 1"
    cp = mf.critical_sigma_w2("tanh", "1e300")
    assert not cp.exists and "order throughout" not in cp.note and "above 10000 was not searched" in cp.note
    cp = mf.critical_sigma_w2("tanh", "1e-300")
    assert "map slope 1 < 1" not in cp.note and "map slope 1 - " in cp.note


# ----------------------------------------------------------------------------- the critical line at tiny σb²


@pytest.mark.parametrize("name, slope", [("tanh", 2), ("erf", sp.pi / 2)])
def test_critical_at_tiny_bias_matches_the_hand_asymptotics(name, slope):
    """At σb² = 1e-300 the float route printed tanh's σw² = 1.000000022 (q* = 1.09e-8): right to 1e-8 only. By hand,
    V/D = q − (4/3)q³ + O(q⁴) for tanh and erf alike (tanh² = z² − (2/3)z⁴ + (17/45)z⁶, sech⁴ = 1 − 2z² + (7/3)z⁴;
    erf² ∝ z² − (2/3)z⁴ + (14/45)z⁶, erf'² ∝ 1 − 2z² + 2z⁴; E[u^2k] = (2k−1)!!), so q* = (3σb²/4)^(1/3)·(1 + O(q*)),
    and 1/D = base·(1 + 2q + O(q²)): σw² − base = slope·q*, to a relative 1e-100."""
    cp = mf.critical_sigma_w2(name, "1e-300")
    q = mpmath.cbrt(mpmath.mpf("0.75e-300"))
    assert float(cp.q_star / sp.Float(q, 30)) == pytest.approx(1, rel=1e-11)
    assert float(cp.offset / sp.Float(float(slope) * q, 30)) == pytest.approx(1, rel=1e-11)
    assert cp.base == 1 / mf.origin_slope(get(name)) and "stable" in cp.note
    assert cp.text().startswith(f"{name}: critical σw² = {'1' if name == 'tanh' else 'pi/4'} + ")
    assert "1.000000022" not in cp.text()


# σw² and q* where χ1 = 1, from mpmath.quad of V and D at 40 digits and findroot on q − V(q)/D(q) = σb²
# (an independent route: no series, no float quadrature), rounded to 15 digits
QUAD_REFERENCE = [("tanh", "1e-20", "1.00000039148680243", "1.95743458689383e-7"),
                  ("tanh", "1e-12", "1.00018172031290202", "9.08725389282692e-5"),
                  ("erf", "1e-12", "0.785540884037446245", "9.08670366657888e-5"),
                  ("erf", "1e-20", "0.785398470870453903", "1.95743433145745e-7"),
                  ("elu", "1e-12", "1.00134159847541106", "2.83159394594913e-6"),
                  ("elu", "1e-20", "1.00001341873758569", "2.82845875347785e-10")]


@pytest.mark.parametrize("name, sb, sw, q", QUAD_REFERENCE)
def test_critical_at_small_bias_matches_mpmath_quadrature(name, sb, sw, q):
    cp = mf.critical_sigma_w2(name, sb)
    assert cp.offset is not None  # the series route (the float one held 8 digits of σw² − 1 here)
    with mpmath.workdps(30):
        offset = mpmath.mpf(sw) - mpmath.mpf(sp.N(cp.base, 30))
        assert abs(mpmath.mpf(str(cp.offset)) / offset - 1) < 1e-10  # all 10 printed digits of the offset
        assert abs(mpmath.mpf(str(cp.q_star)) / mpmath.mpf(q) - 1) < 1e-10


def test_critical_at_tiny_bias_elu_leading_order():
    """ELU: V/D = q − q²/8 + O(q^(5/2)) and 1/D = 1 + √(2/π)·√q + O(q) (E[e^(2√q u); u < 0] = 1/2 − √(2q/π) + …),
    so q* = √(8σb²) and σw² − 1 = √(2/π)·(8σb²)^(1/4), to a relative 1e-75 at σb² = 1e-300."""
    cp = mf.critical_sigma_w2("elu", "1e-300")
    q = mpmath.sqrt(mpmath.mpf("8e-300"))
    assert float(cp.q_star / sp.Float(q, 30)) == pytest.approx(1, rel=1e-11)
    assert float(cp.offset / sp.Float(mpmath.sqrt(2 / mpmath.pi) * mpmath.sqrt(q), 30)) == pytest.approx(1, rel=1e-11)


def test_critical_at_tiny_bias_cli_text_and_json():
    r = CliRunner().invoke(cli, ["meanfield", "-a", "tanh", "--sigma-b2", "1e-300", "--critical", "--format", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["sigma_w2_base"] == "1" and float(d["sigma_w2_offset"]) == pytest.approx(1.8171205928321e-100, rel=1e-10)
    assert float(d["q_star_text"]) == pytest.approx(9.0856029641607e-101, rel=1e-10)  # (3e-300/4)^(1/3)


@pytest.mark.parametrize("q0", ["1e-200", "1e-6", "1"])
def test_critical_at_tiny_bias_is_reached_from_either_side(q0):
    """From q0 = 1e-200 < q* ≈ 9.1e-101 the iterates rise to q*: the float route printed σw² = 1.000000012 with
    q* = 6e-9 there. The critical point does not depend on q0 when it is reached: 1 + 2(3σb²/4)^(1/3)."""
    cp = mf.critical_sigma_w2("tanh", "1e-300", q0=q0)
    assert float(cp.offset / sp.Float(2 * mpmath.cbrt(mpmath.mpf("0.75e-300")), 30)) == pytest.approx(1, rel=1e-11)
