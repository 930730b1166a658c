"""The matrices commands follow the CLI contract: formats, atomic --output, one-line errors with exit 2."""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import sympy as sp


def test_spectrum_text_json_markdown(run, tmp_path):
    code, out, _ = run("spectrum", "-a", "linear", "--init", "orthogonal", "--sigma-w2", "4", "--width", "8",
                       "--depth", "3")
    assert code == 0 and "exactly σw^L = 8" in out and "agrees" in out
    path = tmp_path / "s.json"
    code, out, _ = run("spectrum", "-a", "tanh", "--width", "16", "--depth", "4", "--samples", "2",
                       "--sigma-b2", "0.01", "--format", "json", "-o", str(path))
    data = json.loads(path.read_text())
    assert code == 0 and out == ""
    assert abs(data["theory"]["chi1"] - 1) < 1e-9 and data["agreement"]["spread_agrees"] in (True, False)
    code, out, _ = run("spectrum", "--width", "8", "--depth", "2", "--format", "markdown")
    assert code == 0 and out.startswith("**tanh**") and "| depth |" in out


def test_spectrum_errors_are_one_line(run, tmp_path):
    for args in (["-a", "nope"], ["--at", "x"], ["--sigma-w2", "nan"], ["--depth", "3", "--at", "7"],
                 ["-o", str(tmp_path / "missing" / "x.json")]):
        code, out, err = run("spectrum", "--width", "4", *args)
        assert code == 2 and err.startswith("symvg: error:") and len(err.strip().splitlines()) == 1, (args, err)


def test_spectrum_plot(run, tmp_path):
    path = tmp_path / "h.png"
    code, _, _ = run("spectrum", "--width", "8", "--depth", "4", "--at", "2", "--plot", str(path))
    assert code == 0 and path.read_bytes().startswith(b"\x89PNG")


def test_rnn_command(run):
    code, out, _ = run("rnn", "--steps", "20", "--width", "8", "--spectral-radius", "0.5", "--init", "orthogonal")
    assert code == 0 and "vanishing (proved" in out and "holds at every gap" in out and "LSTM cell path" in out
    code, out, _ = run("rnn", "--steps", "10", "--width", "4", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["simulation"]["bound_holds"] is True and len(data["simulation"]["log10_norms"]) == 11
    code, _, err = run("rnn", "--activation", "nope")
    assert code == 2 and err.startswith("symvg: error:")


def test_clip_command(run, tmp_path):
    path = tmp_path / "c.json"
    code, out, _ = run("clip", "-g", "30,40", "-t", "5", "-d", "1,0", "--format", "json", "-o", str(path))
    data = json.loads(path.read_text())
    assert code == 0 and data["clipped"] == ["3", "4"] and data["clipped_step_along"]["exact"] == "3"
    for args in (["-g", "1,,2", "-t", "1"], ["-g", "1,2", "-t", "-1"], ["-g", "1,2", "-t", "1", "-d", "1"]):
        code, _, err = run("clip", *args)
        assert code == 2 and len(err.strip().splitlines()) == 1, args


def test_vector_command(run):
    code, out, _ = run("vector", "--widths", "3,4,2", "-a", "leaky_relu:0.2", "--check", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["gradient"] == "D1*W2.T*D2*delta2*h0.T" and data["check"]["holds"] is True
    code, out, _ = run("vector", "--format", "latex")
    assert code == 0 and r"W_{2}^{T}" in out
    for args in (["--widths", "3,x"], ["--wrt", "9"], ["--widths", "3,0"]):
        code, _, err = run("vector", *args)
        assert code == 2 and err.startswith("symvg: error:"), args


# ----------------------------------------------------------------------------- symvg skip, symvg batchnorm

SCHEMAS = Path(__file__).resolve().parents[1] / "symvg" / "views" / "schemas"


def _paths(depth: int, length: int):
    """Every composition of ``depth`` into steps 1 (a layer taken) and ``length`` (a skip), by brute force."""
    for jumps in range(depth // length + 1):
        singles = depth - jumps * length
        yield from (singles for _ in itertools.combinations(range(singles + jumps), jumps))


def test_skip_linear_mean_square_is_a_sum_over_paths(run, tmp_path):
    # Independent route: J is a sum of products of W's, one per path; distinct paths share no moment
    # (some W_k appears once), so E tr(JJᵀ)/n = Σ_paths (σw²)^(layers taken). σw² = 1/2, N = 8, t = 3:
    # 1/256 + 6/32 + 6/4.
    exact = sum(Fraction(1, 2) ** s for s in _paths(8, 3))
    assert exact == Fraction(1, 256) + Fraction(6, 32) + Fraction(6, 4)
    path = tmp_path / "skip.json"
    code, out, _ = run("skip", "-a", "linear", "--depth", "8", "--length", "3", "--sigma-w2", "1/2", "--width", "24",
                       "--samples", "64", "--format", "json", "-o", str(path))
    assert code == 0 and out == ""
    data = json.loads(path.read_text())
    sim = data["simulation"]
    assert Fraction(sim["exact_mean_square"]) == exact and sim["paths"] == len(list(_paths(8, 3))) == 13
    measured, se = 10 ** sim["log10_mean_square"], sim["mean_square_stderr_rel"]
    assert abs(measured / float(exact) - 1) < 4 * se and sim["agrees"] is True
    assert sim["bound_holds"] is True and sim["log10_norm"] <= sim["log10_bound"]
    # the width-1 expansion has one monomial per path, with as many a_k as layers taken
    terms = sp.Add.make_args(sp.sympify(data["expansion"]))
    assert sorted(sp.Poly(t).total_degree() for t in terms) == sorted(_paths(8, 3))
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(data, json.loads((SCHEMAS / "skip.schema.json").read_text()))


def test_skip_text_and_markdown(run):
    code, out, _ = run("skip", "--depth", "20", "--length", "3", "-a", "sigmoid", "--width", "16", "--samples", "2")
    assert code == 0 and "1278 paths" in out and "(holds)" in out
    # sigmoid's φ' <= 1/4 crushes the plain chain; the skips keep order one (a path of jumps only)
    plain = float(out.split("without skips ")[1].split()[0])
    kept = float(out.split("‖₂ = ")[1].split()[0])
    assert plain < -8 and kept > -2
    code, out, _ = run("skip", "--depth", "4", "--length", "2", "--format", "markdown")
    assert code == 0 and out.startswith("$$\\frac{\\partial h_{4}}") and "a_{1} a_{2} a_{3} a_{4}" in out


@pytest.mark.slow  # importing torch takes seconds (the comparison itself is milliseconds)
def test_batchnorm_factor_matches_torch_autograd(run):
    torch = pytest.importorskip("torch")
    x = torch.tensor([1.0, 2.0, 3.0, 6.0], dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(
        lambda v: torch.nn.functional.batch_norm(v.view(4, 1), None, None, training=True, eps=0.1).view(4), x)
    code, out, _ = run("batchnorm", "--values", "1,2,3,6", "--eps", "1/10", "--depth", "2", "--width", "4",
                       "--format", "json")
    assert code == 0
    data = json.loads(out)
    np.testing.assert_allclose(data["factor"]["jacobian_float"], jac.numpy(), rtol=0, atol=1e-12)
    # its exact eigenvalues against an eigensolver on torch's Jacobian (symmetric): 0, ε/σ³, 1/σ (×2)
    ev = sorted(v["float"] for v in data["factor"]["eigenvalues"] for _ in range(v["multiplicity"]))
    np.testing.assert_allclose(ev, np.linalg.eigvalsh(jac.numpy()), atol=1e-12)
    assert data["factor"]["sigma"] == str(sp.sqrt(sp.Rational(36, 10)))    # var 7/2 plus ε
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(data, json.loads((SCHEMAS / "batchnorm.schema.json").read_text()))


def test_batchnorm_without_skips_explodes_at_the_predicted_rate(run):
    # Yang et al. 2019, linear φ, width → ∞: ‖g‖² grows by (B−2)/(B−3) per layer going back. Width 256
    # departs from it by O(1/√n) (measured 0.5% at width 512, batch 8): 4% is allowed.
    code, out, _ = run("batchnorm", "-a", "linear", "--width", "256", "--depth", "20", "--batch", "8",
                       "--format", "json")
    sim = json.loads(out)["simulation"]
    assert code == 0 and sim["predicted_growth_per_layer"] == pytest.approx(math.sqrt(6 / 5), rel=1e-12)
    assert abs(sim["growth_per_layer"] / math.sqrt(6 / 5) - 1) < 0.04 and sim["growth_per_layer"] > 1
    code, out, _ = run("batchnorm", "--depth", "3", "--width", "8", "--format", "markdown")
    assert code == 0 and "| x1 | x2 | x3 | x4 |" in out and "\\frac{\\sqrt{14}}{7}" in out


def test_skip_and_batchnorm_errors_are_one_line(run, tmp_path):
    for args in (["skip", "--depth", "3", "--length", "4"], ["skip", "--sigma-w2", "-1"], ["skip", "-a", "nope"],
                 ["skip", "--depth", "1000", "--width", "1024"], ["batchnorm", "--values", "1,1"],
                 ["batchnorm", "--values", "1,x"], ["batchnorm", "--values", "1,2,"], ["batchnorm", "--eps", "-1"],
                 ["batchnorm", "--depth", "1000", "--width", "1024", "--batch", "4096"],
                 ["batchnorm", "-o", str(tmp_path / "missing" / "x.json")]):
        code, out, err = run(*args)
        assert code == 2 and err.startswith("symvg: error:") and len(err.strip().splitlines()) == 1, (args, err)


@pytest.mark.parametrize("args", [
    ["rnn", "-T", "3", "-n", "4"], ["vector", "--check"], ["skip", "-N", "3", "-t", "2", "-n", "4"],
    ["batchnorm", "-n", "4", "-L", "2"], ["spectrum", "-n", "4", "-L", "2", "--sigma-w2", "1"],
])
def test_a_slope_beyond_float64_is_refused_by_the_float_simulations(run, args):
    """leaky_relu:1e309: φ' = 1e309 on z < 0 is no float64; each command was an internal TypeError or
    OverflowError (exit 1)."""
    code, out, err = run(*args, "-a", "leaky_relu:1e309")
    assert code == 2 and "beyond float64's range" in err and err.count("\n") == 1, err


def test_vector_check_is_refused_in_latex_not_dropped(run):
    # The LaTeX view holds the derivation alone; --check used to be ignored there without a word.
    code, _, err = run("vector", "--widths", "2,2", "--check", "--format", "latex")
    assert code == 2 and "--check" in err and "latex" in err and len(err.strip().splitlines()) == 1


def test_vector_check_bounds_past_float64_are_printed_as_powers_not_a_crash(run):
    # upper bounds ∏γ‖W_j‖₂·‖δ_N‖ past 1e308 raised OverflowError ("internal error") in the table; and a
    # ‖δ_k‖ that is 0 in float64 (tanh' rounded to 0) is said to be so
    widths = ",".join(["2"] * 120)
    code, out, err = run("vector", "--widths", widths, "-a", "tanh", "--sigma-w2", "1e6", "--check")
    assert code == 0, err
    ups = [float(line.split()[-1][3:]) for line in out.splitlines() if line.split()[-1:] and
           line.split()[-1].startswith("10^")]
    assert ups and all(u >= 300 for u in ups)   # log10 of each bound, past float64: 10^u printed, not 10 ** u
    assert "0 in float64" in out


def test_vector_check_work_is_bounded(run):
    # vector --widths 2048,2048,2048 --check ran for minutes (one SVD per layer); refused in one line
    code, _, err = run("vector", "--widths", "2048,2048,2048", "--check")
    assert code == 2 and "SVD" in err and len(err.strip().splitlines()) == 1
