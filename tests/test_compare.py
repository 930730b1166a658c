"""CLI: symvg compare, relu, residual, lstm (one table; exact numbers; exit 2 with one line on bad input)."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from symvg.symbolic.activations import names
from symvg.cli import cli
from symvg.symbolic.regime import regime


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_compare_covers_the_catalogue_both_ways():
    r = run("compare", "--layers", "50", "--both", "--format", "json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["rows"]
    assert len(rows) == 2 * len(names()) and {row["residual"] for row in rows} == {False, True}
    sig = next(x for x in rows if x["activation"] == "sigmoid" and not x["residual"])
    assert sig == json.loads(json.dumps(regime("sigmoid", 1, 50, "1e-6").as_dict()))
    assert sig["bound"] == "(1/4)**50" and sig["depth_to_cross"] == 10 and sig["status"] == "vanishes"


def test_compare_text_and_markdown():
    r = run("compare", "-n", "20", "-a", "sigmoid,relu,leaky_relu:0.2", "--residual")
    assert r.exit_code == 0 and r.stdout.count(" yes ") == 3 and "sigmoid" in r.stdout
    md = run("compare", "-n", "20", "-a", "sigmoid", "--format", "markdown").stdout
    assert md.splitlines()[2].startswith("| activation |") and "| sigmoid | no | 1/4 | 0..1/4 | (1/4)**20 |" in md


def test_compare_deep_never_underflows(tmp_path):
    out = tmp_path / "c.json"
    r = run("compare", "-n", "100000", "-a", "sigmoid", "--format", "json", "--output", str(out))
    assert r.exit_code == 0 and r.stdout == ""
    row = json.loads(out.read_text())["rows"][0]
    assert row["log10_bound"] == pytest.approx(-60205.99913279624)


@pytest.mark.parametrize("args,msg", [
    (["compare", "-n", "0"], "layers must be an integer >= 1, got 0"),
    (["compare", "--tol", "5"], "tol must be in (0, 1)"),
    (["compare", "-a", "sigmoid,,tanh"], "comma-separated"),
    (["compare", "-a", "nope"], "unknown activation 'nope'"),
    (["relu", "--std", "-1"], "std (s) must be > 0"),
    (["lstm", "--forget", "2"], "forget must be in [0, 1]"),
    (["residual", "-n", "20"], "at most 12"),
])
def test_bad_input_is_one_line_exit_2(args, msg):
    r = run(*args)
    assert r.exit_code == 2 and msg in r.stderr and r.stderr.count("\n") == 1
    assert r.stderr.startswith("symvg: error:")


def test_relu_command():
    d = json.loads(run("relu", "-n", "6", "--samples", "50000", "--seed", "2", "--format", "json").stdout)
    assert d["alive_path_probability"] == "1/64" and d["inactive_probability"] == "1/2" and "dead_probability" not in d
    assert d["conventions"] == {"pytorch": "0", "sympy": "1/2", "left": "0", "right": "1"}
    assert d["leaky_floor"] == "1/1000000000000" and abs(d["monte_carlo"]["z_score"]) < 4.5


def test_residual_and_lstm_commands():
    t = run("residual", "-n", "2", "-a", "tanh", "-w", "0.5").stdout
    assert "length 0: 1" in t and "1/4 ≈ 0.25  <=  |dh2/dh0|  <=  9/4" in t
    d = json.loads(run("lstm", "--steps", "50", "--format", "json").stdout)
    assert d["cell"] == "(9/10)**50" and d["rnn_bound"] == "(1/4)**50"
    assert d["cell_value"] == pytest.approx(0.9 ** 50, rel=1e-12)
    assert "dc3/dc0 = f1*f2*f3" in run("lstm", "--steps", "3").stdout


def test_compare_huge_weight_prints_magnitudes_not_inf():
    import math
    t = run("compare", "-w", "1e999", "-a", "sigmoid,relu").stdout
    assert "inf" not in t and "0..2.5e+998" in t and "(2.5e+998)**50" in t and "|w| = 1.0e+999" in t
    r = run("compare", "-w", "1e999", "-a", "sigmoid", "--format", "json")
    assert r.exit_code == 0, r.stderr
    row = json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))["rows"][0]
    assert row["factor_value"] is None and row["factor"] == str(25 * 10**997)
    assert row["log10_bound"] == pytest.approx(50 * (998 + math.log10(2.5)), rel=1e-14)


def test_relu_tiny_probability_is_printed_not_zero():
    t = run("relu", "--mean", "-40").stdout
    assert "e-3495" in t and "≈ 0\n" not in t
    d = json.loads(run("relu", "--mean", "-40", "--format", "json").stdout)
    assert d["alive_path_probability_value"] == 0.0 and "underflows" in d["alive_path_probability_note"]
    assert d["log10_alive_path_probability"] == pytest.approx(-3494.370064593, rel=1e-9)


def test_lstm_and_relu_deep_answer_at_once():
    assert "e-45757491" in run("lstm", "--steps", "1000000000").stdout        # 0.9^(10^9)
    assert "10**(-3.0103e+29)" in run("relu", "--layers", "1" + "0" * 30).stdout   # 2^-(10^30)


def test_a_ceiling_just_above_one_is_never_shown_as_one():
    # |w| = 1 + 1e-7 gives tanh a ceiling of 1 + 1e-7 > 1 (undecided) and linear a floor of 1 + 1e-7 > 1
    # (explodes); a rounded "1" in the table would read as "rules out growth" / "neither".
    from click.testing import CliRunner
    from symvg.cli import cli
    r = CliRunner().invoke(cli, ["compare", "--layers", "1000000000", "--weight", "1.0000001",
                                 "--activations", "tanh,linear"])
    assert r.exit_code == 0, r.output
    rows = {line.split()[0]: line for line in r.output.splitlines() if line.startswith(("tanh ", "linear "))}
    assert "(1)**" not in r.output and not re.search(r"\.\.1 (?!\+)", r.output)
    assert "≈ 2.6881e+43" in rows["tanh"]      # (1 + 1e-7)^(10^9) = 2.688103701e+43 (mpmath)
    assert "1 + 1e-07..1 + 1e-07" in rows["linear"]


def test_a_long_ceiling_is_raised_to_n_before_it_is_rounded():
    # sigmoid, |w| = 1 + 1e-7: ceiling 0.250000025; 0.250000025^(10^9) = 1.26e-602059948 (mpmath:
    # 10^9·log10(0.250000025) = -602059947.8985), not 0.25^(10^9) = 4.7e-602059992
    from click.testing import CliRunner
    from symvg.cli import cli
    r = CliRunner().invoke(cli, ["compare", "--layers", "1000000000", "--weight", "1.0000001", "--activations", "sigmoid"])
    assert r.exit_code == 0, r.output
    row = next(line for line in r.output.splitlines() if line.startswith("sigmoid "))
    assert "(0.25)**" not in row and "≈ 1.2" in row and "e-602059948" in row


def test_lstm_forget_gate_just_below_one_is_not_said_to_be_one():
    from click.testing import CliRunner
    from symvg.cli import cli
    r = CliRunner().invoke(cli, ["lstm", "--steps", "10", "--forget", "0.999999999999"])
    assert r.exit_code == 0, r.output
    assert "constant f = 1 - 1e-12:" in r.output


def test_residual_floor_of_a_piecewise_constant_derivative_is_exact():
    """relu at |w| = 4: 1 + wφ' is 1 or 1 ± 4, never 0, so |1 + wφ'| ≥ 1; linear at |w| = 4: |1 ± 4| ≥ 3, which
    proves growth. compare said 'floor is 0 (1 + w*phi'(z) can cancel to 0 once gamma*|w| >= 1)' for both."""
    from symvg.symbolic.regime import regime

    relu = regime("relu", weight=4, layers=10, residual=True)
    assert relu.floor == 1 and relu.status != "vanishes" and "cancel" not in relu.decision.reason
    lin = regime("linear", weight=4, layers=10, residual=True)
    assert lin.floor == 3 and lin.verdict == "explode"
    assert regime("leaky_relu:2", weight=4, layers=10, residual=True).floor == 3   # |1 - 4·1|, |1 - 4·2| = 7
    assert regime("relu", weight=1, layers=10, residual=True).floor == 0           # w = -1, φ' = 1: 1 + wφ' = 0
    assert regime("hard_sigmoid", weight=6, layers=10, residual=True).floor == 0   # |w|·1/6 = 1
    out = run("compare", "-n", "10", "-w", "4", "-a", "relu,linear", "--residual").stdout
    assert "can cancel to 0" not in out and "1..5" in out and "3..5" in out


def test_a_depth_past_12_digits_is_shown_short_in_the_table():
    """compare -w 1e-400 --residual: (1 + 2.5e-401)^N passes 1e6 at N ≈ ln(1e6)/2.5e-401 = 5.52620e+401, printed as
    a 402-digit integer that made the column 400 characters wide; the JSON keeps it exact."""
    text = run("compare", "-n", "10", "-w", "1e-400", "-a", "sigmoid", "--residual").stdout
    assert "> 1/tol at ≈ 5.5262e+401" in text and max(map(len, text.splitlines())) < 250
    js = json.loads(run("compare", "-n", "10", "-w", "1e-400", "-a", "sigmoid", "--residual", "--format", "json").stdout)
    assert len(str(js["rows"][0]["depth_to_cross"])) == 402
