"""Issue 14: every printed verdict is what the floor and ceiling prove, held against eval's sampled medians.

The sampled medians come from :func:`symvg.engines.sampling.sample` (what ``symvg eval`` runs). With constant
weights w (init (w, 0): every w_j = b_j = w) the gradient obeys, sample by sample,

    m^N·P/|w| <= |dL/dw_1| <= c^N·P/|w|,    P = |dL/dh_N|·|x|,

so the medians are ordered the same way, and a verdict can be checked against them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

from symvg.symbolic.bounds import decide, depth_bound
from symvg.symbolic.chain import Chain
from symvg.cli import cli
from symvg.engines.sampling import sample

SAMPLES = 4000


def _median_log10_g1(act: str, layers: int, init, residual: bool = False) -> float:
    """log10 of the sampled median |dL/dw_1| (k = 1: through all N layers), as symvg eval reports it."""
    stats = sample(Chain(layers, act, residual=residual), samples=SAMPLES, init=init, seed=1)
    with np.errstate(divide="ignore"):               # a median of exactly 0 is log10 = -inf: vanished
        return float(np.log10(stats.layers[0].median_abs))


def _claims(text: str) -> set[str]:
    return {w for w, phrase in (("vanish", "vanishes (proved"), ("explode", "explodes (proved")) if phrase in text}


def test_vanish_means_the_median_is_under_the_ceiling():
    b = depth_bound("sigmoid", 1, layers=10, tol="1e-6")
    assert b.verdict == "vanish" and _claims(b.decision.text) == {"vanish"}
    # P = 2|h_N − y|·|x| <= 2(1 + |y|)|x| for sigmoid (h_N in (0, 1)); its median, by independent draws:
    rng = np.random.default_rng(5)
    p_median = np.median(2 * (1 + np.abs(rng.standard_normal(200_000))) * np.abs(rng.standard_normal(200_000)))
    ceiling = float(b.factor) ** 10
    assert _median_log10_g1("sigmoid", 10, (1, 0)) <= np.log10(1.1 * p_median * ceiling)  # 10% for sampling


def test_explode_means_the_median_exceeds_one():
    b = depth_bound("leaky_relu:0.5", 4, layers=10, tol="1e-3")     # floor 0.5·4 = 2 > 1; 2^10 > 1000
    assert b.verdict == "explode" and _claims(b.decision.text) == {"explode"} and b.decision.status == "explodes"
    assert _median_log10_g1("leaky_relu:0.5", 10, (4, 0)) > 0


def test_large_sigmoid_weights_are_not_called_exploding():
    # issue 14: 'bound -a sigmoid -w 8 -n 10' printed "explode"; eval -n 20 --init 0,8 has median 5e-56
    b = depth_bound("sigmoid", 8, layers=10, tol="1e-6")
    assert b.verdict == "undecided" and "vanish" in b.decision.possible and not _claims(b.decision.text)
    assert "saturation" in b.decision.reason and "symvg eval" in b.decision.text
    assert _median_log10_g1("sigmoid", 20, (0, 8)) < -40
    assert _median_log10_g1("sigmoid", 10, (8, 0)) < -6            # the same |w| = 8, constant: vanishes too
    out = CliRunner().invoke(cli, ["bound", "-a", "sigmoid", "-w", "8", "-n", "10"]).output
    assert "explode" not in out.replace("may vanish or explode", "").replace("exploding is no longer excluded", "")


@pytest.mark.slow   # 3-8 s on a loaded 2-core machine: the CLI sweep proves tanh's γ, then 4000 chains are sampled
def test_tanh_sweep_does_not_say_neither():
    # issue 14: 'sweep --layers 1..50' ended "tanh: … neither vanishes nor explodes"; eval -n 20: median 9e-15
    out = CliRunner().invoke(cli, ["sweep", "--layers", "1..5", "-a", "tanh"]).output   # the note is per activation
    note = out.strip().splitlines()[-1]
    assert note.startswith("tanh:") and "neither" not in note and "undecided, may vanish" in note
    assert _median_log10_g1("tanh", 20, "gaussian") < -6


@pytest.mark.slow   # ~6 s: compare proves γ for GELU and SiLU (a numeric root) afresh
def test_compare_rows_agree_with_their_depth_column():
    # issue 14: GELU, SiLU, erf said "explode" beside "may vanish"; hard-sigmoid residual "explode" beside "held"
    names = "gelu,silu,erf,hard_sigmoid"
    r = CliRunner().invoke(cli, ["compare", "-n", "20", "-a", names, "--both", "--format", "json"])
    rows = json.loads(r.stdout)["rows"]
    assert len(rows) == 8 and [x["status"] for x in rows if x["activation"] == "hard_sigmoid"] == ["vanishes", "held"]
    for row in rows:
        assert row["verdict"] != "explode"                                  # no floor above 1 in these rows
        if row["verdict"] == "vanish":
            assert row["status"] in ("vanishes", "may vanish", "held")
        else:
            assert row["verdict"] == "undecided" and row["possible"]
            # the depth column may only narrow what the verdict leaves open, never contradict it
            assert row["status"] == "held" or all(p in row["possible"] for p in row["status"][4:].split(" or "))
    text = CliRunner().invoke(cli, ["compare", "-n", "20", "-a", names, "--both"]).output
    table = text.split("\n\n")[1]
    assert "explode" not in table.replace("may vanish or explode", "").replace("may explode", "")


def test_residual_rows_are_undecided_and_the_medians_go_either_way():
    # hard-sigmoid residual at N = 20 is 'held': (5/6)^20 <= |dh_N/dh_0| <= (7/6)^20, proved.
    v = decide(sp.Rational(5, 6), sp.Rational(7, 6), layers=20, tol=sp.Rational(1, 10**6))
    assert (v.kind, v.status) == ("undecided", "held")
    lo = _median_log10_g1("hard_sigmoid", 20, (1, 0), residual=True)
    assert np.isfinite(lo)      # a residual chain passes a gradient: no path is blocked at |w| = 1


def test_a_numeric_gamma_times_w_that_is_1_to_its_digits_decides_nothing():
    # SiLU's γ is a 30-digit root. At this |w|, γ|w| = 1 + 1.06e-32 (γ to 50 digits by mpmath below), so
    # growth is not ruled out; the 30-digit γ made it exactly 1 and printed "the ceiling 1 rules out growth".
    import mpmath
    from symvg.symbolic.bounds import depth_bound
    w = "0.90922372177313240824109644657246"
    with mpmath.workdps(50):
        r = mpmath.findroot(lambda t: t * mpmath.exp(t) - t - 2 * mpmath.exp(t) - 2, 2.4)
        s = 1 / (1 + mpmath.exp(-r))
        assert (s + r * s * (1 - s)) * mpmath.mpf(w) - 1 > mpmath.mpf("1e-32")
    b = depth_bound("silu", w, layers=10, tol="1e-6")
    assert b.verdict == "undecided" and "explode" in b.decision.possible
    assert "rules out growth" not in b.decision.text and b.depth_may_explode is None
